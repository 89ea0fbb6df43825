// cuda_graph.cuh - replaying a step as a CUDA graph, one graph per size
// bucket (rows rounded up to a power of two). See cuda_graph.cu for when a
// graph is captured and what happens when capture fails.
#ifndef PRESHIFT_CUDA_GRAPH_CUH
#define PRESHIFT_CUDA_GRAPH_CUH

#include "cuda_common.cuh"

#define PS_GRAPH_MIN_ROWS 32
#define PS_GRAPH_BUCKETS 16 /* 32 << 15 rows: the largest bucket */

struct ps_graph_cache {
    cudaGraphExec_t exec[PS_GRAPH_BUCKETS];
    unsigned char seen[PS_GRAPH_BUCKETS]; // direct runs at this bucket so far
    int off;                              // a capture failed: direct launches from now on
};

// The bucket of a step of n rows when graphs cover steps of up to max_rows:
// its index, with its padded row count in *rows, or -1 (run directly).
int ps_graph_bucket(size_t n, size_t max_rows, size_t *rows);

// Queues a step's work on the stream it was given; 0 or a PS_E* code.
typedef int (*ps_enqueue_fn)(void *arg);

// Queue the work of fn at bucket b: replay the bucket's graph if there is
// one; capture it if the bucket ran before (so kernels are loaded and
// cuBLAS has chosen its algorithm); otherwise, or if capture fails, call fn
// directly. Either way the work is queued exactly once. fn must not
// allocate or sync, and everything it touches must stay at the addresses it
// had at capture: whoever moves a buffer calls ps_graph_cache_clear.
int ps_graph_run(ps_backend *be, cudaStream_t stream, ps_graph_cache *gc, int b, ps_enqueue_fn fn,
                 void *arg);
void ps_graph_cache_clear(ps_graph_cache *gc);

#endif
