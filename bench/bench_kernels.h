/*
 * bench_kernels.h - the kernel benchmark behind `preshift bench kernels`.
 *
 * It answers one question: how close is preshift's LSTM step to what the
 * machine can do? So every measurement of the step sits beside two peers
 * measured in the same run on the same shape: OpenBLAS's sgemm alone on the
 * step's product ([N x (1+H)] * [(1+H) x 4H], the floor for any
 * implementation that uses it) and PyTorch's nn.LSTMCell (what a user
 * would otherwise run), plus one square sgemm per thread count for the
 * machine's peak. The command line parses flags; this file measures.
 *
 * With backend PS_BACKEND_CUDA the run adds the CUDA backend's step at each
 * rows x hidden (impl "cuda"), timed end to end (slots and x copied in, y
 * copied out, one sync), beside the card's floors: the step's gemm FLOPs at
 * the FP32 peak and its minimal device memory traffic at the memory
 * bandwidth. Where the build or the machine has no CUDA backend the run
 * says so and measures the CPU rows as always.
 */
#ifndef PRESHIFT_BENCH_KERNELS_H
#define PRESHIFT_BENCH_KERNELS_H

#include "kernels/kernels.h"

#include <stddef.h>
#include <stdio.h>

#define PS_BENCH_MAX_LIST 32

typedef struct ps_bench_kernels_opts {
    long rows[PS_BENCH_MAX_LIST];
    size_t n_rows;
    long hidden[PS_BENCH_MAX_LIST];
    size_t n_hidden;
    long threads[PS_BENCH_MAX_LIST];
    size_t n_threads;
    double min_time;         /* seconds of timed runs per measurement (>= 3 runs) */
    int json;                /* JSON lines instead of the table */
    int pytorch;             /* run the PyTorch peer */
    const char *python;      /* its interpreter */
    const char *script;      /* bench/pytorch_lstmcell.py */
    ps_backend_kind backend; /* CUDA: add the CUDA rows; the preshift rows are the CPU's */
    ps_isa isa;
} ps_bench_kernels_opts;

/* The defaults of `preshift bench kernels`, with the script found as below. */
void ps_bench_kernels_defaults(ps_bench_kernels_opts *o);

/*
 * Where the PyTorch peer script is: $PRESHIFT_PYTORCH_SCRIPT if set, else
 * the source tree this binary was built from.
 */
const char *ps_bench_pytorch_script(void);

/*
 * Runs the grid: results on out (a table, or JSON lines), what it is doing
 * now on progress. Returns 0, or 1 if a measurement could not be made (it
 * says which on progress and goes on with the others). A missing PyTorch
 * peer is not a failure: it is reported and the rest is measured.
 */
int ps_bench_kernels(const ps_bench_kernels_opts *o, FILE *out, FILE *progress);

#endif
