/*
 * bench_kernels.c - preshift's LSTM step beside its peers, in one run.
 *
 * Peers are measured in the same process run because a shared two-core
 * machine drifts from minute to minute: a ratio of two numbers taken an
 * hour apart says little. Order of a run: the square sgemm "peak" for each
 * thread count; then the PyTorch peer as a child process over the whole
 * grid (one interpreter start, and never timing alongside us); then for
 * each (rows, hidden, threads) the bare sgemm on the step's shape and the
 * step itself, so the step's record can carry its ratios as it streams.
 *
 * Every measurement times single calls, since one call is what a tick
 * costs: warm up (first touches of fresh pages, OpenBLAS threads left
 * spinning by a previous measurement), then repeat until min_time has
 * passed and at least 3 calls were timed, and report the median, which a
 * noisy neighbour moves least.
 *
 * OpenBLAS's thread count is process-wide and the CPU backend pins it to 1
 * for its own workers, so it is set again before every sgemm measurement.
 *
 * The CUDA rows (--backend cuda) time the same step on the device, one host
 * thread, copies included, since that is what a tick costs. Their peers are
 * not measured but computed: the card's FP32 peak and memory bandwidth from
 * the runtime's attributes (kernels/cuda/cuda_device.h), which give a floor
 * no implementation can beat; the row reports how close it came.
 */
#include "bench_kernels.h"

#include "bench_clock.h"
#include "core/model.h"
#include "core/rng.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef PRESHIFT_HAVE_CUDA
#include "kernels/cuda/cuda_device.h"
#endif

#ifndef PRESHIFT_SOURCE_DIR
#define PRESHIFT_SOURCE_DIR "."
#endif

/* The square product for the machine's peak: large enough for OpenBLAS to
 * reach its full rate, small enough to time a few calls in a second. */
#define PEAK_DIM 1536
/* Bounds the sample array when a call is very short and min_time long. */
#define MAX_SAMPLES ((size_t)1 << 22)

typedef struct result {
    char impl[16]; /* preshift, sgemm, pytorch, cuda */
    char shape[8]; /* step, peak */
    char isa[32];  /* preshift: its vector code; sgemm: OpenBLAS's core; cuda: sm_XY */
    long rows, hidden, threads;
    double median_s, steps_per_s, gflops;
    size_t runs;
    double flop_floor_s, mem_floor_s; /* cuda: the card's floors; 0 if unknown */
} result;

typedef struct results {
    result *v;
    size_t n, cap;
} results;

typedef struct run_ctx {
    const ps_bench_kernels_opts *o;
    FILE *out, *progress;
    results all;
    size_t done, total; /* measurements of our own, for progress */
    int failed;
    char pytorch_note[512]; /* why the PyTorch peer is missing, if it is */
    int cuda_ok;            /* the CUDA rows are measured */
    char cuda_note[320];    /* why they are not, if asked for */
    char cuda_name[64];
    char cuda_card[256];               /* how the floors were computed */
    double gpu_flops, gpu_bytes_per_s; /* 0 if unknown */
} run_ctx;

void ps_bench_kernels_defaults(ps_bench_kernels_opts *o)
{
    static const long rows[] = {1000, 10000, 100000, 1000000};
    memset(o, 0, sizeof *o);
    memcpy(o->rows, rows, sizeof rows);
    o->n_rows = 4;
    o->hidden[0] = 32;
    o->hidden[1] = 64;
    o->n_hidden = 2;
    o->threads[0] = 1;
    o->threads[1] = 2;
    o->n_threads = 2;
    o->min_time = 0.5;
    o->pytorch = 1;
    o->python = "/usr/bin/python3";
    o->script = ps_bench_pytorch_script();
    o->backend = PS_BACKEND_CPU;
    o->isa = PS_ISA_AUTO;
}

const char *ps_bench_pytorch_script(void)
{
    const char *env = getenv("PRESHIFT_PYTORCH_SCRIPT");
    if (env && *env) return env;
    return PRESHIFT_SOURCE_DIR "/bench/pytorch_lstmcell.py";
}

static double step_flops(long rows, long hidden)
{
    return 2.0 * (double)rows * (double)(1 + hidden) * 4.0 * (double)hidden;
}

/* The least device memory a step of the benchmark's shape (input 1, output
 * 1, one layer) must move: slot index, x and y, and the slot's h and c read
 * and written. The weights are read once per step and stay in cache. */
static double step_bytes(long rows, long hidden)
{
    return (double)rows * (4.0 + 4.0 + 4.0 + 2.0 * 2.0 * (double)hidden * 4.0);
}

static result *add_result(run_ctx *r)
{
    if (r->all.n == r->all.cap) {
        size_t cap = r->all.cap ? 2 * r->all.cap : 64;
        result *v = realloc(r->all.v, cap * sizeof *v);
        if (!v) return NULL;
        r->all.v = v;
        r->all.cap = cap;
    }
    result *res = &r->all.v[r->all.n++];
    memset(res, 0, sizeof *res);
    return res;
}

static const result *find(const run_ctx *r, const char *impl, const char *shape, long rows,
                          long hidden, long threads)
{
    for (size_t i = 0; i < r->all.n; i++) {
        const result *x = &r->all.v[i];
        if (!strcmp(x->impl, impl) && !strcmp(x->shape, shape) && x->rows == rows &&
            x->hidden == hidden && x->threads == threads)
            return x;
    }
    return NULL;
}

/* ---- timing ---- */

typedef int (*call_fn)(void *ctx);

static int measure(call_fn fn, void *ctx, double min_time, double *median, size_t *runs)
{
    double warm = min_time / 2 < 0.2 ? min_time / 2 : 0.2;
    double t0 = bench_now();
    do {
        if (fn(ctx)) return -1;
    } while (bench_now() - t0 < warm);

    size_t cap = 256, n = 0;
    double *t = malloc(cap * sizeof *t);
    if (!t) return -1;
    double start = bench_now(), now = start;
    while (n < 3 || (now - start < min_time && n < MAX_SAMPLES)) {
        if (n == cap) {
            double *bigger = realloc(t, 2 * cap * sizeof *t);
            if (!bigger) break; /* enough samples anyway */
            t = bigger;
            cap *= 2;
        }
        double a = bench_now();
        if (fn(ctx)) {
            free(t);
            return -1;
        }
        now = bench_now();
        t[n++] = now - a;
    }
    *median = bench_median(t, n);
    *runs = n;
    free(t);
    return 0;
}

typedef struct gemm_ctx {
    int m, n, k, threads;
    float *a, *b, *c;
} gemm_ctx;

static int call_gemm(void *p)
{
    gemm_ctx *g = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->m, g->n, g->k, 1.0f, g->a, g->k, g->b,
                g->n, 0.0f, g->c, g->n);
    return 0;
}

typedef struct step_ctx {
    ps_lstm *lstm;
    size_t n;
    const uint32_t *slots;
    const float *x;
    float *y;
} step_ctx;

static int call_step(void *p)
{
    step_ctx *s = p;
    return ps_lstm_step(s->lstm, s->n, s->slots, s->x, s->y) == PS_OK ? 0 : -1;
}

static void fill_uniform(float *v, size_t n, uint64_t seed)
{
    ps_rng rng;
    ps_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++)
        v[i] = ps_rng_uniformf(&rng, -1.0f, 1.0f);
}

/* The fastest CPU step measured on this cell, over the thread counts. */
static const result *best_cpu(const run_ctx *r, long rows, long hidden)
{
    const result *best = NULL;
    for (size_t i = 0; i < r->all.n; i++) {
        const result *x = &r->all.v[i];
        if (!strcmp(x->impl, "preshift") && x->rows == rows && x->hidden == hidden &&
            (!best || x->steps_per_s > best->steps_per_s))
            best = x;
    }
    return best;
}

/* ---- output ---- */

static void print_json(FILE *out, const run_ctx *r, const result *x)
{
    fprintf(out,
            "{\"impl\":\"%s\",\"shape\":\"%s\",\"rows\":%ld,\"hidden\":%ld,\"threads\":%ld,"
            "\"steps_per_s\":%.6g,\"gflops\":%.6g,\"median_s\":%.6g,\"runs\":%zu",
            x->impl, x->shape, x->rows, x->hidden, x->threads, x->steps_per_s, x->gflops,
            x->median_s, x->runs);
    if (x->isa[0]) fprintf(out, ",\"isa\":\"%s\"", x->isa);
    if (!strcmp(x->shape, "peak"))
        fprintf(out, ",\"m\":%d,\"n\":%d,\"k\":%d", PEAK_DIM, PEAK_DIM, PEAK_DIM);
    if (!strcmp(x->impl, "preshift")) {
        const result *py = find(r, "pytorch", "step", x->rows, x->hidden, x->threads);
        const result *sg = find(r, "sgemm", "step", x->rows, x->hidden, x->threads);
        if (py) fprintf(out, ",\"vs_pytorch\":%.4g", x->steps_per_s / py->steps_per_s);
        if (sg) fprintf(out, ",\"vs_sgemm\":%.4g", x->steps_per_s / sg->steps_per_s);
    }
    if (!strcmp(x->impl, "cuda")) {
        double floor_s = fmax(x->flop_floor_s, x->mem_floor_s);
        const result *cpu = best_cpu(r, x->rows, x->hidden);
        if (x->flop_floor_s > 0) fprintf(out, ",\"flop_floor_s\":%.6g", x->flop_floor_s);
        if (x->mem_floor_s > 0) fprintf(out, ",\"mem_floor_s\":%.6g", x->mem_floor_s);
        if (floor_s > 0) fprintf(out, ",\"vs_floor\":%.4g", floor_s / x->median_s);
        if (cpu) fprintf(out, ",\"vs_cpu\":%.4g", x->steps_per_s / cpu->steps_per_s);
    }
    fprintf(out, "}\n");
    fflush(out);
}

static void record(run_ctx *r, const result *x)
{
    result *slot = add_result(r);
    if (!slot) {
        fprintf(r->progress, "bench: out of memory keeping results\n");
        r->failed = 1;
        return;
    }
    *slot = *x;
    if (r->o->json) print_json(r->out, r, slot);
}

/* 12345678 -> "12.35M": steps per second span six orders of magnitude. */
static const char *human(char *buf, size_t len, double v)
{
    static const char suffix[] = " kMGT";
    int i = 0;
    while (fabs(v) >= 1000.0 && i < 4) {
        v /= 1000.0;
        i++;
    }
    if (i == 0)
        snprintf(buf, len, "%.4g", v);
    else
        snprintf(buf, len, "%.4g%c", v, suffix[i]);
    return buf;
}

static const char *human_time(char *buf, size_t len, double s)
{
    if (s < 1e-3)
        snprintf(buf, len, "%.1f us", s * 1e6);
    else if (s < 1.0)
        snprintf(buf, len, "%.2f ms", s * 1e3);
    else
        snprintf(buf, len, "%.2f s", s);
    return buf;
}

static void print_row(FILE *out, const run_ctx *r, const result *x)
{
    char rate[32], t[32], pct[16] = "", vs_py[16] = "", vs_sg[16] = "";
    const result *peak = find(r, "sgemm", "peak", PEAK_DIM, 0, x->threads);
    if (peak) snprintf(pct, sizeof pct, "%.0f%%", 100.0 * x->gflops / peak->gflops);
    if (!strcmp(x->impl, "preshift")) {
        const result *py = find(r, "pytorch", "step", x->rows, x->hidden, x->threads);
        const result *sg = find(r, "sgemm", "step", x->rows, x->hidden, x->threads);
        if (py) snprintf(vs_py, sizeof vs_py, "%.2fx", x->steps_per_s / py->steps_per_s);
        if (sg) snprintf(vs_sg, sizeof vs_sg, "%.2fx", x->steps_per_s / sg->steps_per_s);
    }
    if (!strcmp(x->shape, "peak")) {
        char dims[32];
        snprintf(dims, sizeof dims, "%d^3", PEAK_DIM);
        fprintf(out, "%-9s %-16s %7ld %9s %10s %8.1f %6s\n", "sgemm", dims, x->threads, "-",
                human_time(t, sizeof t, x->median_s), x->gflops, pct);
        return;
    }
    fprintf(out, "%-9s %8ld %7ld %7ld %9s %10s %8.1f %6s %10s %8s\n", x->impl, x->rows, x->hidden,
            x->threads, human(rate, sizeof rate, x->steps_per_s),
            human_time(t, sizeof t, x->median_s), x->gflops, pct, vs_py, vs_sg);
}

static void print_table(const run_ctx *r)
{
    const ps_bench_kernels_opts *o = r->o;
    FILE *out = r->out;
    fprintf(out,
            "\nLSTM step, input 1, output 1, 1 layer; median of single steps, "
            ">= %.3g s and >= 3 runs each\n",
            o->min_time);
    fprintf(out, "steps/s = rows x steps per second; GFLOP/s counts the step's gemm, "
                 "2*rows*(1+H)*4H;\n%%peak = of the square sgemm with the same threads; "
                 "vs = preshift's steps/s over the peer's\n\n");
    fprintf(out, "%-9s %8s %7s %7s %9s %10s %8s %6s %10s %8s\n", "impl", "rows", "hidden",
            "threads", "steps/s", "median", "GFLOP/s", "%peak", "vs pytorch", "vs sgemm");
    for (size_t i = 0; i < r->all.n; i++)
        if (!strcmp(r->all.v[i].shape, "peak")) print_row(out, r, &r->all.v[i]);
    static const char *order[] = {"preshift", "sgemm", "pytorch"};
    for (size_t a = 0; a < o->n_rows; a++)
        for (size_t b = 0; b < o->n_hidden; b++)
            for (size_t c = 0; c < o->n_threads; c++)
                for (size_t k = 0; k < 3; k++) {
                    const result *x =
                        find(r, order[k], "step", o->rows[a], o->hidden[b], o->threads[c]);
                    if (x) print_row(out, r, x);
                }
    if (r->pytorch_note[0]) fprintf(out, "\nnote: %s\n", r->pytorch_note);
    if (r->cuda_note[0]) fprintf(out, "\nnote: %s\n", r->cuda_note);
}

static void print_cuda_table(const run_ctx *r)
{
    const ps_bench_kernels_opts *o = r->o;
    FILE *out = r->out;
    fprintf(out, "\nCUDA: %s; end to end per step (slots and x in, y out, one sync)\n",
            r->cuda_name);
    fprintf(out, "card: %s\n", r->cuda_card[0] ? r->cuda_card : "peaks unknown");
    fprintf(out, "floor = the larger of the gemm's FLOPs at the FP32 peak and the slot, x, y and "
                 "h, c bytes\nat the memory bandwidth (host<->device copies not counted); "
                 "%%floor = floor / median;\nvs cpu = over the fastest CPU row of the cell\n\n");
    fprintf(out, "%-9s %8s %7s %9s %10s %8s %10s %10s %6s %7s\n", "impl", "rows", "hidden",
            "steps/s", "median", "GFLOP/s", "flop floor", "mem floor", "%floor", "vs cpu");
    for (size_t a = 0; a < o->n_rows; a++)
        for (size_t b = 0; b < o->n_hidden; b++) {
            const result *x = find(r, "cuda", "step", o->rows[a], o->hidden[b], 1);
            if (!x) continue;
            char rate[32], t[32], ff[32] = "-", mf[32] = "-", pct[16] = "-", vs[16] = "";
            double floor_s = fmax(x->flop_floor_s, x->mem_floor_s);
            if (x->flop_floor_s > 0) human_time(ff, sizeof ff, x->flop_floor_s);
            if (x->mem_floor_s > 0) human_time(mf, sizeof mf, x->mem_floor_s);
            if (floor_s > 0) snprintf(pct, sizeof pct, "%.1f%%", 100.0 * floor_s / x->median_s);
            const result *cpu = best_cpu(r, x->rows, x->hidden);
            if (cpu) snprintf(vs, sizeof vs, "%.2fx", x->steps_per_s / cpu->steps_per_s);
            fprintf(out, "%-9s %8ld %7ld %9s %10s %8.1f %10s %10s %6s %7s\n", x->impl, x->rows,
                    x->hidden, human(rate, sizeof rate, x->steps_per_s),
                    human_time(t, sizeof t, x->median_s), x->gflops, ff, mf, pct, vs);
        }
}

/* ---- the measurements ---- */

static void say_progress(run_ctx *r, const char *what, long rows, long hidden, long threads)
{
    r->done++;
    if (rows)
        fprintf(r->progress, "[%zu/%zu] %s rows=%ld hidden=%ld threads=%ld\n", r->done, r->total,
                what, rows, hidden, threads);
    else
        fprintf(r->progress, "[%zu/%zu] %s threads=%ld\n", r->done, r->total, what, threads);
    fflush(r->progress);
}

static void bench_sgemm(run_ctx *r, const char *shape, long m, long k, long n, long threads,
                        long rows, long hidden)
{
    size_t sa = (size_t)m * (size_t)k, sb = (size_t)k * (size_t)n, sc = (size_t)m * (size_t)n;
    gemm_ctx g = {(int)m,
                  (int)n,
                  (int)k,
                  (int)threads,
                  malloc(sa * sizeof(float)),
                  malloc(sb * sizeof(float)),
                  malloc(sc * sizeof(float))};
    if (!g.a || !g.b || !g.c) {
        fprintf(r->progress, "bench: out of memory for sgemm %ldx%ldx%ld\n", m, k, n);
        r->failed = 1;
        goto out;
    }
    fill_uniform(g.a, sa, 11);
    fill_uniform(g.b, sb, 12);
    openblas_set_num_threads((int)threads);
    result x = {.rows = rows, .hidden = hidden, .threads = threads};
    snprintf(x.impl, sizeof x.impl, "sgemm");
    snprintf(x.shape, sizeof x.shape, "%s", shape);
    snprintf(x.isa, sizeof x.isa, "%s", openblas_get_corename());
    if (measure(call_gemm, &g, r->o->min_time, &x.median_s, &x.runs)) {
        fprintf(r->progress, "bench: sgemm measurement failed\n");
        r->failed = 1;
        goto out;
    }
    x.gflops = 2.0 * (double)m * (double)k * (double)n / x.median_s * 1e-9;
    x.steps_per_s = (double)m / x.median_s;
    record(r, &x);
out:
    free(g.a);
    free(g.b);
    free(g.c);
}

static void bench_step(run_ctx *r, ps_backend_kind kind, const char *impl, long rows, long hidden,
                       long threads)
{
    const ps_bench_kernels_opts *o = r->o;
    char err[256];
    ps_backend_params bp = {.kind = kind, .threads = (int)threads, .isa = o->isa};
    if (kind == PS_BACKEND_CUDA) bp.isa = PS_ISA_AUTO;
    ps_backend *be = ps_backend_init(&bp, err, sizeof err);
    if (!be) {
        fprintf(r->progress, "bench: cannot start the backend: %s\n", err);
        r->failed = 1;
        return;
    }
    ps_lstm_shape shape = {.input = 1, .hidden = (int32_t)hidden, .layers = 1, .output = 1};
    ps_model m;
    size_t n = (size_t)rows;
    uint32_t *slots = malloc(n * sizeof *slots);
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    ps_lstm *lstm = NULL;
    int have_model = ps_model_init(&m, &shape) == 0;
    if (!have_model || !slots || !x || !y) {
        fprintf(r->progress, "bench: out of memory for %ld rows\n", rows);
        r->failed = 1;
        goto out;
    }
    ps_model_init_random(&m, 42);
    lstm = ps_lstm_create(be, &shape, m.params, n);
    if (!lstm) {
        fprintf(r->progress, "bench: creating the LSTM failed: %s\n", ps_backend_error(be));
        r->failed = 1;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        slots[i] = (uint32_t)i;
    ps_rng rng;
    ps_rng_seed(&rng, 7);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)ps_rng_normal(&rng);

    step_ctx s = {lstm, n, slots, x, y};
    result res = {.rows = rows, .hidden = hidden, .threads = threads};
    snprintf(res.impl, sizeof res.impl, "%s", impl);
    snprintf(res.shape, sizeof res.shape, "step");
    snprintf(res.isa, sizeof res.isa, "%s", ps_backend_isa(be));
    if (measure(call_step, &s, o->min_time, &res.median_s, &res.runs)) {
        fprintf(r->progress, "bench: %s step failed: %s\n", impl, ps_backend_error(be));
        r->failed = 1;
        goto out;
    }
    res.steps_per_s = (double)rows / res.median_s;
    res.gflops = step_flops(rows, hidden) / res.median_s * 1e-9;
    if (kind == PS_BACKEND_CUDA) {
        if (r->gpu_flops > 0) res.flop_floor_s = step_flops(rows, hidden) / r->gpu_flops;
        if (r->gpu_bytes_per_s > 0) res.mem_floor_s = step_bytes(rows, hidden) / r->gpu_bytes_per_s;
    }
    record(r, &res);
out:
    ps_lstm_free(lstm);
    if (have_model) ps_model_free(&m);
    free(slots);
    free(x);
    free(y);
    ps_backend_free(be);
}

/* ---- the PyTorch peer ---- */

/* Appends s in single quotes for sh; 0, or -1 if it does not fit. */
static int append_quoted(char *buf, size_t cap, size_t *len, const char *s)
{
    size_t need = 3;
    for (const char *p = s; *p; p++)
        need += *p == '\'' ? 4 : 1;
    if (*len + need >= cap) return -1;
    buf[(*len)++] = ' ';
    buf[(*len)++] = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            memcpy(buf + *len, "'\\''", 4);
            *len += 4;
        } else {
            buf[(*len)++] = *p;
        }
    }
    buf[(*len)++] = '\'';
    buf[*len] = '\0';
    return 0;
}

static void join_list(char *buf, size_t cap, const long *v, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, i ? ",%ld" : "%ld", v[i]);
}

/* The number after "key": in one of our own JSON lines. */
static int json_number(const char *line, const char *key, double *out)
{
    char pat[48];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p) return -1;
    p += strlen(pat);
    char *end;
    double v = strtod(p, &end);
    if (end == p || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* The string after "key": (no unescaping; for messages only). */
static void json_string(const char *line, const char *key, char *out, size_t len)
{
    char pat[48];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    out[0] = '\0';
    if (!p) return;
    p = strchr(p + strlen(pat), '"');
    if (!p) return;
    p++;
    size_t i = 0;
    while (p[i] && p[i] != '"' && i + 1 < len) {
        if (p[i] == '\\' && p[i + 1]) p++;
        out[i] = p[i];
        i++;
    }
    out[i] = '\0';
}

static int parse_pytorch_line(const char *line, result *x)
{
    double rows, hidden, threads, median, runs, sps, gf;
    if (!strstr(line, "\"impl\": \"pytorch\"") && !strstr(line, "\"impl\":\"pytorch\"")) return -1;
    if (json_number(line, "rows", &rows) || json_number(line, "hidden", &hidden) ||
        json_number(line, "threads", &threads) || json_number(line, "median_s", &median) ||
        json_number(line, "runs", &runs) || json_number(line, "steps_per_s", &sps) ||
        json_number(line, "gflops", &gf))
        return -1;
    if (rows < 1 || hidden < 1 || threads < 1 || median <= 0 || sps <= 0 || gf <= 0 || runs < 1 ||
        rows > 1e12 || hidden > 1e6 || threads > 1e6 || runs > 1e12)
        return -1;
    memset(x, 0, sizeof *x);
    snprintf(x->impl, sizeof x->impl, "pytorch");
    snprintf(x->shape, sizeof x->shape, "step");
    snprintf(x->isa, sizeof x->isa, "torch");
    char ver[24];
    json_string(line, "torch", ver, sizeof ver);
    if (ver[0]) snprintf(x->isa, sizeof x->isa, "torch %s", ver);
    x->rows = (long)rows;
    x->hidden = (long)hidden;
    x->threads = (long)threads;
    x->median_s = median;
    x->runs = (size_t)runs;
    x->steps_per_s = sps;
    x->gflops = gf;
    return 0;
}

static void pytorch_unavailable(run_ctx *r, const char *why)
{
    snprintf(r->pytorch_note, sizeof r->pytorch_note,
             "PyTorch peer not measured: %.400s (skip it with --no-pytorch)", why);
    fprintf(r->progress, "bench: %s\n", r->pytorch_note);
    fflush(r->progress);
}

static void bench_pytorch(run_ctx *r)
{
    const ps_bench_kernels_opts *o = r->o;
    if (access(o->script, R_OK) != 0) {
        char why[400];
        snprintf(why, sizeof why,
                 "no script at %.300s (set PRESHIFT_PYTORCH_SCRIPT or "
                 "--python-script)",
                 o->script);
        pytorch_unavailable(r, why);
        return;
    }
    char cmd[8192], list[PS_BENCH_MAX_LIST * 24], num[64];
    size_t len = 0;
    cmd[0] = '\0';
    int bad = append_quoted(cmd, sizeof cmd, &len, o->python);
    bad |= append_quoted(cmd, sizeof cmd, &len, o->script);
    join_list(list, sizeof list, o->rows, o->n_rows);
    bad |= append_quoted(cmd, sizeof cmd, &len, "--rows");
    bad |= append_quoted(cmd, sizeof cmd, &len, list);
    join_list(list, sizeof list, o->hidden, o->n_hidden);
    bad |= append_quoted(cmd, sizeof cmd, &len, "--hidden");
    bad |= append_quoted(cmd, sizeof cmd, &len, list);
    join_list(list, sizeof list, o->threads, o->n_threads);
    bad |= append_quoted(cmd, sizeof cmd, &len, "--threads");
    bad |= append_quoted(cmd, sizeof cmd, &len, list);
    snprintf(num, sizeof num, "%.9g", o->min_time);
    bad |= append_quoted(cmd, sizeof cmd, &len, "--min-time");
    bad |= append_quoted(cmd, sizeof cmd, &len, num);
    if (bad) {
        pytorch_unavailable(r, "the interpreter or script path is too long");
        return;
    }

    fprintf(r->progress, "bench: running the PyTorch peer:%s\n", cmd);
    fflush(r->progress);
    fflush(r->out); /* the child shares our stdout's buffer position */
    FILE *p = popen(cmd, "r");
    if (!p) {
        pytorch_unavailable(r, "cannot start a shell for it");
        return;
    }
    char line[4096], error[300] = "";
    size_t got = 0;
    while (fgets(line, sizeof line, p)) {
        result x;
        if (strstr(line, "\"error\"")) {
            json_string(line, "error", error, sizeof error);
        } else if (parse_pytorch_line(line, &x) == 0) {
            record(r, &x);
            got++;
        } else {
            fprintf(r->progress, "bench: ignoring a line from the PyTorch peer: %s", line);
        }
    }
    int status = pclose(p);
    char why[512];
    if (error[0]) {
        pytorch_unavailable(r, error);
    } else if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 127)
            snprintf(why, sizeof why, "%.300s not found", o->python);
        else if (status != -1 && WIFSIGNALED(status))
            snprintf(why, sizeof why, "it was killed by signal %d after %zu result(s)",
                     WTERMSIG(status), got);
        else
            snprintf(why, sizeof why, "it exited with status %d after %zu result(s)",
                     status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1, got);
        pytorch_unavailable(r, why);
    } else if (got == 0) {
        pytorch_unavailable(r, "it printed no results");
    }
}

/* Whether the CUDA rows can be measured here, and the card's peaks. */
static void cuda_probe(run_ctx *r)
{
    char err[256];
    ps_backend *be =
        ps_backend_init(&(ps_backend_params){.kind = PS_BACKEND_CUDA}, err, sizeof err);
    if (!be) {
        snprintf(r->cuda_note, sizeof r->cuda_note,
                 "cuda backend unavailable: %.256s; measuring the CPU rows only", err);
        fprintf(r->progress, "bench: %s\n", r->cuda_note);
        fflush(r->progress);
        return;
    }
    r->cuda_ok = 1;
    snprintf(r->cuda_name, sizeof r->cuda_name, "%s", ps_backend_name(be));
    ps_backend_free(be);
#ifdef PRESHIFT_HAVE_CUDA
    ps_cuda_peaks pk;
    if (ps_cuda_device_peaks(&pk, err, sizeof err) == 0) {
        r->gpu_flops = pk.fp32_flops;
        r->gpu_bytes_per_s = pk.mem_bytes_per_s;
        snprintf(r->cuda_card, sizeof r->cuda_card,
                 "%d SMs x %d FP32 lanes x 2 x %.3g GHz = %.1f TFLOP/s; memory %d-bit x 2 x "
                 "%.3g GHz = %.2f TB/s",
                 pk.sms, pk.fp32_lanes_per_sm, pk.clock_hz * 1e-9, pk.fp32_flops * 1e-12,
                 pk.bus_bits, pk.mem_clock_hz * 1e-9, pk.mem_bytes_per_s * 1e-12);
    } else {
        fprintf(r->progress, "bench: the card's peaks are unknown: %s\n", err);
    }
#endif
}

int ps_bench_kernels(const ps_bench_kernels_opts *o, FILE *out, FILE *progress)
{
    run_ctx r = {.o = o, .out = out, .progress = progress};
    size_t cells = o->n_rows * o->n_hidden * o->n_threads;
    if (o->backend == PS_BACKEND_CUDA) cuda_probe(&r);
    r.total = o->n_threads + 2 * cells + (r.cuda_ok ? o->n_rows * o->n_hidden : 0);

    if (!o->json) {
        char err[256];
        ps_backend_params bp = {.kind = PS_BACKEND_CPU, .threads = 1, .isa = o->isa};
        ps_backend *be = ps_backend_init(&bp, err, sizeof err);
        if (!be) {
            fprintf(progress, "bench: cannot start the backend: %s\n", err);
            return 1;
        }
        fprintf(out, "preshift bench kernels: backend %s, %s vector code; OpenBLAS %s\n",
                ps_backend_name(be), ps_backend_isa(be), openblas_get_config());
        if (r.cuda_ok) fprintf(out, "and %s\n", r.cuda_name);
        ps_backend_free(be);
    }

    for (size_t t = 0; t < o->n_threads; t++) {
        say_progress(&r, "sgemm peak", 0, 0, o->threads[t]);
        bench_sgemm(&r, "peak", PEAK_DIM, PEAK_DIM, PEAK_DIM, o->threads[t], PEAK_DIM, 0);
    }
    if (o->pytorch) bench_pytorch(&r);
    for (size_t a = 0; a < o->n_rows; a++)
        for (size_t b = 0; b < o->n_hidden; b++) {
            long rows = o->rows[a], hidden = o->hidden[b];
            for (size_t c = 0; c < o->n_threads; c++) {
                long threads = o->threads[c];
                say_progress(&r, "sgemm", rows, hidden, threads);
                bench_sgemm(&r, "step", rows, 1 + hidden, 4 * hidden, threads, rows, hidden);
                say_progress(&r, "preshift", rows, hidden, threads);
                bench_step(&r, PS_BACKEND_CPU, "preshift", rows, hidden, threads);
            }
            if (r.cuda_ok) {
                say_progress(&r, "cuda", rows, hidden, 1);
                bench_step(&r, PS_BACKEND_CUDA, "cuda", rows, hidden, 1);
            }
        }

    if (!o->json) print_table(&r);
    if (!o->json && r.cuda_ok) print_cuda_table(&r);
    free(r.all.v);
    return r.failed ? 1 : 0;
}
