/*
 * cpu_lstm.c - the batched LSTM step on the CPU.
 *
 * A step over n slots is cut into blocks of rows small enough that a block's
 * gate matrix stays in L2. For one block and one layer: gather [x, h] of its
 * slots into A, one single-threaded sgemm G = A * W_l, then the fused gate
 * math per row writes the new c and h straight into the slots' state; the
 * next layer reads those h while they are still in cache. Workers take
 * contiguous shares of blocks, so the whole step is one pool wake-up.
 *
 * The head is a dot product per output against the transposed head weights
 * (kept transposed at create so each dot is contiguous): for the usual
 * output of 1 an sgemm would be a matrix-vector product with call overhead.
 */
#include "cpu_internal.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

typedef struct cpu_lstm {
    ps_lstm base;
    float *params;  /* the flat vector of kernels.h */
    float *head_wt; /* W_y transposed: output x hidden */
    float *state;   /* slots x state_floats: per layer h then c */
    size_t state_floats;
    size_t block;          /* rows per block */
    size_t scratch_floats; /* per worker: A block and G block */
    float *scratch;        /* threads x scratch_floats */
} cpu_lstm;

static cpu_lstm *lstm_of(ps_lstm *l)
{
    return (cpu_lstm *)l;
}

/* Rows per block: a block's gate matrix of about 128 KiB, within limits. */
static size_t pick_block(const ps_lstm_shape *s)
{
    size_t b = 32768 / (4 * (size_t)s->hidden);
    if (b < 16) b = 16;
    if (b > 512) b = 512;
    return b;
}

ps_lstm *cpu_lstm_create(ps_backend *be, const ps_lstm_shape *shape, const float *params,
                         size_t slots)
{
    cpu_lstm *l = calloc(1, sizeof *l);
    if (!l || ps_lstm_header_init(&l->base, be, shape, slots) != PS_OK) {
        free(l);
        ps_backend_fail(be, PS_ENOMEM, "out of memory creating LSTM");
        return NULL;
    }
    size_t h = (size_t)shape->hidden, out = (size_t)shape->output;
    size_t in_max = (size_t)shape->input > h ? (size_t)shape->input : h;
    size_t count = ps_lstm_param_count(shape);
    l->state_floats = ps_lstm_state_floats(shape);
    l->block = pick_block(shape);
    l->scratch_floats = l->block * (in_max + h) + l->block * 4 * h;

    l->params = malloc(count * sizeof(float));
    l->head_wt = malloc(out * h * sizeof(float));
    l->state = slots <= SIZE_MAX / sizeof(float) / l->state_floats
                   ? calloc(slots * l->state_floats, sizeof(float))
                   : NULL;
    l->scratch = malloc((size_t)be->threads * l->scratch_floats * sizeof(float));
    if (!l->params || !l->head_wt || !l->state || !l->scratch) {
        cpu_lstm_free(&l->base);
        ps_backend_fail(be, PS_ENOMEM, "out of memory for LSTM state of %zu slots", slots);
        return NULL;
    }
    memcpy(l->params, params, count * sizeof(float));
    const float *wy = l->params + ps_lstm_head_offset(shape);
    for (size_t j = 0; j < h; j++)
        for (size_t o = 0; o < out; o++)
            l->head_wt[o * h + j] = wy[j * out + o];
    return &l->base;
}

void cpu_lstm_free(ps_lstm *lstm)
{
    cpu_lstm *l = lstm_of(lstm);
    free(l->params);
    free(l->head_wt);
    free(l->state);
    free(l->scratch);
    ps_lstm_header_free(&l->base);
    free(l);
}

typedef struct step_job {
    cpu_lstm *l;
    const ps_vecmath *vm;
    size_t n;
    const uint32_t *slots;
    const float *x;
    float *y;
} step_job;

/* Rows [r0, r1), all layers and the head, in blocks. */
static void step_rows(const step_job *job, float *scratch, size_t r0, size_t r1)
{
    cpu_lstm *l = job->l;
    const ps_lstm_shape *s = &l->base.shape;
    const ps_vecmath *vm = job->vm;
    const size_t h = (size_t)s->hidden, g4 = 4 * h, out = (size_t)s->output;
    const size_t in0 = (size_t)s->input, sf = l->state_floats;
    float *a = scratch;
    float *g = scratch + l->block * ((in0 > h ? in0 : h) + h);
    const float *bias_y = l->params + ps_lstm_head_offset(s) + h * out;

    for (size_t b0 = r0; b0 < r1; b0 += l->block) {
        size_t rows = r1 - b0 < l->block ? r1 - b0 : l->block;
        for (int layer = 0; layer < s->layers; layer++) {
            size_t in = layer == 0 ? in0 : h, k = in + h;
            size_t hoff = (size_t)layer * 2 * h;
            for (size_t r = 0; r < rows; r++) {
                const float *st = l->state + (size_t)job->slots[b0 + r] * sf;
                const float *xin = layer == 0 ? job->x + (b0 + r) * in0 : st + hoff - 2 * h;
                memcpy(a + r * k, xin, in * sizeof(float));
                memcpy(a + r * k + in, st + hoff, h * sizeof(float));
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)g4, (int)k, 1.0f,
                        a, (int)k, l->params + ps_lstm_weight_offset(s, layer), (int)g4, 0.0f, g,
                        (int)g4);
            const float *bias = l->params + ps_lstm_bias_offset(s, layer);
            for (size_t r = 0; r < rows; r++) {
                float *st = l->state + (size_t)job->slots[b0 + r] * sf + hoff;
                vm->lstm_cell(h, g + r * g4, bias, st + h, st);
            }
        }
        size_t hlast = (size_t)(s->layers - 1) * 2 * h;
        for (size_t r = 0; r < rows; r++) {
            const float *hs = l->state + (size_t)job->slots[b0 + r] * sf + hlast;
            float *yr = job->y + (b0 + r) * out;
            for (size_t o = 0; o < out; o++)
                yr[o] = bias_y[o] + vm->dot(h, hs, l->head_wt + o * h);
        }
    }
}

static void step_worker(void *ctx, int index, int count)
{
    const step_job *job = ctx;
    size_t blocks = (job->n + job->l->block - 1) / job->l->block;
    size_t b_lo = blocks * (size_t)index / (size_t)count;
    size_t b_hi = blocks * (size_t)(index + 1) / (size_t)count;
    size_t r0 = b_lo * job->l->block, r1 = b_hi * job->l->block;
    if (r1 > job->n) r1 = job->n;
    if (r0 < r1) step_rows(job, job->l->scratch + (size_t)index * job->l->scratch_floats, r0, r1);
}

int cpu_lstm_step(ps_lstm *lstm, size_t n, const uint32_t *slots, const float *x, float *y)
{
    cpu_lstm *l = lstm_of(lstm);
    cpu_backend *cpu = cpu_of(lstm->be);
    step_job job = {l, cpu->vm, n, slots, x, y};
    ps_cpu_blas_single_threaded();
    /* A wake-up costs about as much as a couple of small blocks: below that,
     * one thread is faster. */
    if (cpu->pool && n >= 2 * l->block * (size_t)ps_pool_size(cpu->pool))
        ps_pool_run(cpu->pool, step_worker, &job);
    else
        step_rows(&job, l->scratch, 0, n);
    return PS_OK;
}

int cpu_lstm_reset(ps_lstm *lstm, size_t n, const uint32_t *slots)
{
    cpu_lstm *l = lstm_of(lstm);
    for (size_t i = 0; i < n; i++)
        memset(l->state + (size_t)slots[i] * l->state_floats, 0, l->state_floats * sizeof(float));
    return PS_OK;
}

int cpu_lstm_state_get(ps_lstm *lstm, size_t n, const uint32_t *slots, float *state)
{
    cpu_lstm *l = lstm_of(lstm);
    for (size_t i = 0; i < n; i++)
        memcpy(state + i * l->state_floats, l->state + (size_t)slots[i] * l->state_floats,
               l->state_floats * sizeof(float));
    return PS_OK;
}

int cpu_lstm_state_set(ps_lstm *lstm, size_t n, const uint32_t *slots, const float *state)
{
    cpu_lstm *l = lstm_of(lstm);
    for (size_t i = 0; i < n; i++)
        memcpy(l->state + (size_t)slots[i] * l->state_floats, state + i * l->state_floats,
               l->state_floats * sizeof(float));
    return PS_OK;
}
