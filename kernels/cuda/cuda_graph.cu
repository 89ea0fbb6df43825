// cuda_graph.cu - a step as one graph launch instead of a dozen launches.
//
// A small step costs more in launches (two copies in, three kernels and a
// gemm per layer, the head, one copy out) than in arithmetic; a graph turns
// them into one launch. Graphs fix their sizes and addresses, so steps are
// padded to a power-of-two bucket (the padding rows name PS_CUDA_NO_SLOT and
// touch no state) and the caller clears the cache whenever it moves a
// buffer. A bucket is captured the second time it is used: the first run,
// direct, loads the kernels and lets cuBLAS pick its algorithm outside any
// capture, and sizes seen once never pay for a capture.
//
// Any failure to capture or instantiate switches graphs off for that object
// and says so once on stderr (it costs speed, never results): the work is
// then queued directly, exactly as without graphs.
#include "cuda_graph.cuh"

#include <cstdio>

int ps_graph_bucket(size_t n, size_t max_rows, size_t *rows)
{
    if (n == 0 || n > max_rows) return -1;
    size_t r = PS_GRAPH_MIN_ROWS;
    int b = 0;
    while (r < n) {
        r <<= 1;
        b++;
    }
    if (b >= PS_GRAPH_BUCKETS) return -1;
    *rows = r;
    return b;
}

void ps_graph_cache_clear(ps_graph_cache *gc)
{
    for (int b = 0; b < PS_GRAPH_BUCKETS; b++) {
        if (gc->exec[b]) cudaGraphExecDestroy(gc->exec[b]);
        gc->exec[b] = nullptr;
    }
}

static int give_up(ps_graph_cache *gc, const char *why, cudaError_t rc, ps_enqueue_fn fn, void *arg)
{
    static int said;
    (void)cudaGetLastError();
    gc->off = 1;
    if (!said) {
        std::fprintf(stderr, "preshift: cuda graphs off (%s: %s); stepping with direct launches\n",
                     why, cudaGetErrorString(rc));
        said = 1;
    }
    return fn(arg);
}

int ps_graph_run(ps_backend *be, cudaStream_t stream, ps_graph_cache *gc, int b, ps_enqueue_fn fn,
                 void *arg)
{
    if (gc->exec[b]) {
        PS_CU(be, cudaGraphLaunch(gc->exec[b], stream));
        return PS_OK;
    }
    if (gc->off || gc->seen[b] == 0) {
        if (gc->seen[b] < 255) gc->seen[b]++;
        return fn(arg);
    }

    // Thread-local mode: only this thread's unsafe calls break the capture,
    // not those of an unrelated thread using CUDA meanwhile.
    cudaError_t rc = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
    if (rc != cudaSuccess) return give_up(gc, "cudaStreamBeginCapture", rc, fn, arg);
    int queued = fn(arg);
    cudaGraph_t graph = nullptr;
    rc = cudaStreamEndCapture(stream, &graph);
    if (queued != PS_OK || rc != cudaSuccess || !graph) {
        if (graph) cudaGraphDestroy(graph);
        if (rc == cudaSuccess) rc = cudaErrorStreamCaptureInvalidated;
        return give_up(gc, "capturing a step", rc, fn, arg);
    }
    cudaGraphExec_t exec = nullptr;
    rc = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    if (rc != cudaSuccess) return give_up(gc, "cudaGraphInstantiate", rc, fn, arg);
    gc->exec[b] = exec;
    PS_CU(be, cudaGraphLaunch(exec, stream));
    return PS_OK;
}
