/*
 * train.c - BPTT + Adam for the LSTM of kernels.h, in double.
 *
 * One engine holds everything a forward and backward pass over a minibatch
 * needs, sized once: per layer and step the activated gates, cell, tanh of
 * the cell and hidden state of every row, so the backward pass recomputes
 * nothing. Parameters and gradients stay in the flat layout of kernels.h
 * (a row of W_l is one input unit's 4H gate weights, contiguous), and all
 * the heavy work is three kinds of small matrix product per step and layer:
 * [x, h] W (forward), [x, h]^T dz (weight gradient) and dz W^T (through the
 * transposed weights, so that it too reads contiguous rows).
 *
 * Those products go through one register-blocked routine, gemm_acc(). core/
 * may not use intrinsics and the build's -O2 vectorizes only straight-line
 * code, so the blocks are written out as scalar accumulators, which the
 * compiler packs into vector registers. Each element is still summed in a
 * fixed order and the build contracts no multiply-add (ISO C mode), so the
 * result is the same bit for bit at any optimization level.
 *
 * Double keeps the finite-difference check of the gradient crisp, at the
 * price of half the vector lanes of float; the default model still trains
 * in minutes on one core.
 */
#define _POSIX_C_SOURCE 200809L

#include "train.h"
#include "rng.h"
#include "robust.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- small vector helpers ---- */

static inline void axpy(size_t n, double a, const double *restrict x, double *restrict y)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        y[i] += a * x[i];
        y[i + 1] += a * x[i + 1];
        y[i + 2] += a * x[i + 2];
        y[i + 3] += a * x[i + 3];
    }
    for (; i < n; i++)
        y[i] += a * x[i];
}

/*
 * C[m x n] += A[m x k] * B[k x n], where element (i, p) of A is
 * A[i * rsa + p * csa] (so a transposed A costs nothing) and B and C are
 * row-major with leading dimensions ldb and ldc.
 *
 * Blocks of 2 rows x 8 columns of C live in scalar accumulators across the
 * whole k loop: the compiler keeps them in vector registers, so each step
 * loads one row segment of B for two rows of C and stores nothing. Every
 * element is still summed over p in increasing order, as a plain loop would.
 */
static void kern_2x8(size_t k, const double *restrict a0, const double *restrict a1, size_t csa,
                     const double *restrict b, size_t ldb, double *restrict c0, double *restrict c1)
{
    double p0 = c0[0], p1 = c0[1], p2 = c0[2], p3 = c0[3];
    double p4 = c0[4], p5 = c0[5], p6 = c0[6], p7 = c0[7];
    double q0 = c1[0], q1 = c1[1], q2 = c1[2], q3 = c1[3];
    double q4 = c1[4], q5 = c1[5], q6 = c1[6], q7 = c1[7];
    for (size_t p = 0; p < k; p++) {
        const double *w = b + p * ldb;
        double x0 = a0[p * csa], x1 = a1[p * csa];
        p0 += x0 * w[0];
        p1 += x0 * w[1];
        p2 += x0 * w[2];
        p3 += x0 * w[3];
        p4 += x0 * w[4];
        p5 += x0 * w[5];
        p6 += x0 * w[6];
        p7 += x0 * w[7];
        q0 += x1 * w[0];
        q1 += x1 * w[1];
        q2 += x1 * w[2];
        q3 += x1 * w[3];
        q4 += x1 * w[4];
        q5 += x1 * w[5];
        q6 += x1 * w[6];
        q7 += x1 * w[7];
    }
    c0[0] = p0, c0[1] = p1, c0[2] = p2, c0[3] = p3;
    c0[4] = p4, c0[5] = p5, c0[6] = p6, c0[7] = p7;
    c1[0] = q0, c1[1] = q1, c1[2] = q2, c1[3] = q3;
    c1[4] = q4, c1[5] = q5, c1[6] = q6, c1[7] = q7;
}

static void kern_1x8(size_t k, const double *restrict a0, size_t csa, const double *restrict b,
                     size_t ldb, double *restrict c0)
{
    double p0 = c0[0], p1 = c0[1], p2 = c0[2], p3 = c0[3];
    double p4 = c0[4], p5 = c0[5], p6 = c0[6], p7 = c0[7];
    for (size_t p = 0; p < k; p++) {
        const double *w = b + p * ldb;
        double x0 = a0[p * csa];
        p0 += x0 * w[0];
        p1 += x0 * w[1];
        p2 += x0 * w[2];
        p3 += x0 * w[3];
        p4 += x0 * w[4];
        p5 += x0 * w[5];
        p6 += x0 * w[6];
        p7 += x0 * w[7];
    }
    c0[0] = p0, c0[1] = p1, c0[2] = p2, c0[3] = p3;
    c0[4] = p4, c0[5] = p5, c0[6] = p6, c0[7] = p7;
}

static void gemm_acc(size_t m, size_t n, size_t k, const double *A, size_t rsa, size_t csa,
                     const double *B, size_t ldb, double *C, size_t ldc)
{
    size_t n8 = n - n % 8;
    for (size_t i = 0; i < m; i += 2) {
        const double *a0 = A + i * rsa;
        double *c0 = C + i * ldc;
        if (i + 1 < m) {
            for (size_t j = 0; j < n8; j += 8)
                kern_2x8(k, a0, a0 + rsa, csa, B + j, ldb, c0 + j, c0 + ldc + j);
        } else {
            for (size_t j = 0; j < n8; j += 8)
                kern_1x8(k, a0, csa, B + j, ldb, c0 + j);
        }
        for (size_t r = i; r < m && r < i + 2; r++)
            for (size_t j = n8; j < n; j++) {
                double s = C[r * ldc + j];
                for (size_t p = 0; p < k; p++)
                    s += A[r * rsa + p * csa] * B[p * ldb + j];
                C[r * ldc + j] = s;
            }
    }
}

/*
 * Both activations from one exp of a non-positive argument, so nothing can
 * overflow; glibc's exp costs a fraction of its tanh (which goes through
 * expm1), and the activations are a third of the training time. tanh this
 * way loses relative accuracy near 0 but keeps ~1e-16 absolute accuracy,
 * which is what the gradients see.
 */
static inline double sigmoid(double z)
{
    double e = exp(-fabs(z));
    double s = 1.0 / (1.0 + e);
    return z >= 0 ? s : e * s;
}

static inline double tanh_(double x)
{
    double e = exp(-2.0 * fabs(x));
    double t = (1.0 - e) / (1.0 + e);
    return x >= 0 ? t : -t;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* a * b with overflow detection; 0 on overflow. */
static size_t mul_sz(size_t a, size_t b)
{
    if (a && b > (size_t)-1 / a) return 0;
    return a * b;
}

/* ---- the engine ---- */

typedef struct engine {
    size_t in, hid, layers, out, gates; /* gates = 4 * hid */
    size_t bmax, tmax;
    size_t nparam;
    size_t in_l[PS_LSTM_MAX_LAYERS];
    size_t woff[PS_LSTM_MAX_LAYERS], boff[PS_LSTM_MAX_LAYERS], yoff;
    /* Per layer. Time-major, row stride bmax: element (t, b) of a width-w array
     * is at (t * bmax + b) * w. h and c have tmax + 1 steps, index 0 being the
     * state before the first step. */
    double *h[PS_LSTM_MAX_LAYERS], *c[PS_LSTM_MAX_LAYERS];
    double *gate[PS_LSTM_MAX_LAYERS]; /* activated i, f, g, o */
    double *tc[PS_LSTM_MAX_LAYERS];   /* tanh(c) */
    double *wt[PS_LSTM_MAX_LAYERS];   /* W_l transposed: gates x (in_l + hid) */
    double *dh[PS_LSTM_MAX_LAYERS];   /* bmax x hid: gradient reaching h of the step */
    double *dc[PS_LSTM_MAX_LAYERS];   /* bmax x hid: likewise for c */
    double *dx;                       /* bmax x hid: gradient into the layer below */
    double *dtot;                     /* bmax x hid: total gradient on this layer's h */
    double *dz;                       /* bmax x gates: pre-activation gradients */
    double *wyt;                      /* W_y transposed: out x hid */
    double *x, *y, *yhat;             /* tmax x bmax x (in | out | out) */
} engine;

static void engine_free(engine *e)
{
    for (size_t l = 0; l < e->layers; l++) {
        free(e->h[l]);
        free(e->c[l]);
        free(e->gate[l]);
        free(e->tc[l]);
        free(e->wt[l]);
        free(e->dh[l]);
        free(e->dc[l]);
    }
    free(e->dx);
    free(e->dtot);
    free(e->dz);
    free(e->wyt);
    free(e->x);
    free(e->y);
    free(e->yhat);
    memset(e, 0, sizeof *e);
}

static double *alloc_d(size_t a, size_t b, size_t c)
{
    size_t n = mul_sz(mul_sz(a, b), c);
    if (!n) return NULL;
    return calloc(n, sizeof(double));
}

static int engine_init(engine *e, const ps_lstm_shape *s, size_t bmax, size_t tmax)
{
    memset(e, 0, sizeof *e);
    if (ps_lstm_shape_check(s) != PS_OK || bmax == 0 || tmax == 0) return PS_EINVAL;
    e->in = (size_t)s->input;
    e->hid = (size_t)s->hidden;
    e->layers = (size_t)s->layers;
    e->out = (size_t)s->output;
    e->gates = 4 * e->hid;
    e->bmax = bmax;
    e->tmax = tmax;
    e->nparam = ps_lstm_param_count(s);
    size_t H = e->hid, G = e->gates;
    int ok = 1;
    for (size_t l = 0; l < e->layers; l++) {
        e->in_l[l] = l == 0 ? e->in : H;
        e->woff[l] = ps_lstm_weight_offset(s, (int)l);
        e->boff[l] = ps_lstm_bias_offset(s, (int)l);
        e->h[l] = alloc_d(tmax + 1, bmax, H);
        e->c[l] = alloc_d(tmax + 1, bmax, H);
        e->gate[l] = alloc_d(tmax, bmax, G);
        e->tc[l] = alloc_d(tmax, bmax, H);
        e->wt[l] = alloc_d(G, e->in_l[l] + H, 1);
        e->dh[l] = alloc_d(bmax, H, 1);
        e->dc[l] = alloc_d(bmax, H, 1);
        ok = ok && e->h[l] && e->c[l] && e->gate[l] && e->tc[l] && e->wt[l] && e->dh[l] && e->dc[l];
    }
    e->yoff = ps_lstm_head_offset(s);
    e->dx = alloc_d(bmax, H, 1);
    e->dtot = alloc_d(bmax, H, 1);
    e->dz = alloc_d(bmax, G, 1);
    e->wyt = alloc_d(e->out, H, 1);
    e->x = alloc_d(tmax, bmax, e->in);
    e->y = alloc_d(tmax, bmax, e->out);
    e->yhat = alloc_d(tmax, bmax, e->out);
    ok = ok && e->dx && e->dtot && e->dz && e->wyt && e->x && e->y && e->yhat;
    if (!ok) {
        engine_free(e);
        return PS_ENOMEM;
    }
    return PS_OK;
}

static inline double *at(double *base, const engine *e, size_t t, size_t b, size_t w)
{
    return base + (t * e->bmax + b) * w;
}

/* Zero the state before step 0 of nb rows. */
static void engine_zero_state(engine *e, size_t nb)
{
    for (size_t l = 0; l < e->layers; l++) {
        memset(e->h[l], 0, nb * e->hid * sizeof(double));
        memset(e->c[l], 0, nb * e->hid * sizeof(double));
    }
}

/* Carry the state after step T over to before step 0, for the next chunk of a series. */
static void engine_carry_state(engine *e, size_t nb, size_t T)
{
    for (size_t l = 0; l < e->layers; l++) {
        memmove(e->h[l], at(e->h[l], e, T, 0, e->hid), nb * e->hid * sizeof(double));
        memmove(e->c[l], at(e->c[l], e, T, 0, e->hid), nb * e->hid * sizeof(double));
    }
}

/* Gate pre-activations z (overwritten by their activations), previous cell cp. */
static void cell_forward(size_t H, double *restrict z, const double *restrict cp,
                         double *restrict cn, double *restrict tcn, double *restrict hn)
{
    for (size_t j = 0; j < H; j++) {
        double i = sigmoid(z[j]);
        double f = sigmoid(z[H + j]);
        double g = tanh_(z[2 * H + j]);
        double o = sigmoid(z[3 * H + j]);
        z[j] = i;
        z[H + j] = f;
        z[2 * H + j] = g;
        z[3 * H + j] = o;
        double cv = f * cp[j] + i * g;
        double tv = tanh_(cv);
        cn[j] = cv;
        tcn[j] = tv;
        hn[j] = o * tv;
    }
}

/* Steps 0..T-1 for nb rows from the state at index 0; inputs in e->x, outputs in e->yhat. */
static void engine_forward(engine *e, const double *p, size_t nb, size_t T)
{
    size_t H = e->hid, G = e->gates, O = e->out, L = e->layers;
    const double *Wy = p + e->yoff, *by = Wy + H * O;
    for (size_t t = 0; t < T; t++) {
        for (size_t l = 0; l < L; l++) {
            const double *W = p + e->woff[l], *bias = p + e->boff[l];
            size_t in = e->in_l[l];
            const double *x = l == 0 ? at(e->x, e, t, 0, in) : at(e->h[l - 1], e, t + 1, 0, H);
            const double *hp = at(e->h[l], e, t, 0, H);
            double *z = at(e->gate[l], e, t, 0, G);
            for (size_t b = 0; b < nb; b++)
                memcpy(z + b * G, bias, G * sizeof *z);
            gemm_acc(nb, G, in, x, in, 1, W, G, z, G);
            gemm_acc(nb, G, H, hp, H, 1, W + in * G, G, z, G);
            for (size_t b = 0; b < nb; b++)
                cell_forward(H, z + b * G, at(e->c[l], e, t, b, H), at(e->c[l], e, t + 1, b, H),
                             at(e->tc[l], e, t, b, H), at(e->h[l], e, t + 1, b, H));
        }
        for (size_t b = 0; b < nb; b++) {
            const double *ht = at(e->h[L - 1], e, t + 1, b, H);
            double *yh = at(e->yhat, e, t, b, O);
            memcpy(yh, by, O * sizeof *yh);
            for (size_t k = 0; k < H; k++)
                axpy(O, ht[k], Wy + k * O, yh);
        }
    }
}

/* Sum of squared errors of steps burn..T-1 (targets in e->y). */
static double engine_sse(const engine *e, size_t nb, size_t T, size_t burn)
{
    double s = 0.0;
    for (size_t t = burn; t < T; t++)
        for (size_t b = 0; b < nb; b++) {
            const double *yh = e->yhat + (t * e->bmax + b) * e->out;
            const double *y = e->y + (t * e->bmax + b) * e->out;
            for (size_t o = 0; o < e->out; o++) {
                double d = yh[o] - y[o];
                s += d * d;
            }
        }
    return s;
}

/* The transposed weights the backward pass multiplies by; after any parameter change. */
static void engine_transpose(engine *e, const double *p)
{
    size_t H = e->hid, G = e->gates, O = e->out;
    for (size_t l = 0; l < e->layers; l++) {
        const double *W = p + e->woff[l];
        size_t ka = e->in_l[l] + H;
        for (size_t k = 0; k < ka; k++)
            for (size_t j = 0; j < G; j++)
                e->wt[l][j * ka + k] = W[k * G + j];
    }
    const double *Wy = p + e->yoff;
    for (size_t k = 0; k < H; k++)
        for (size_t o = 0; o < O; o++)
            e->wyt[o * H + k] = Wy[k * O + o];
}

/*
 * Add to g the gradient of scale * SSE(steps burn..T-1) after engine_forward.
 * The initial state is treated as a constant (zero, or carried from data
 * whose gradient is not wanted).
 */
static void engine_backward(engine *e, size_t nb, size_t T, size_t burn, double scale, double *g)
{
    size_t H = e->hid, G = e->gates, O = e->out, L = e->layers;
    double *gWy = g + e->yoff, *gby = gWy + H * O;
    for (size_t l = 0; l < L; l++) {
        memset(e->dh[l], 0, nb * H * sizeof(double));
        memset(e->dc[l], 0, nb * H * sizeof(double));
    }
    for (size_t t = T; t-- > 0;) {
        /* The head: dL/dyhat, then into the top layer's h. */
        memcpy(e->dtot, e->dh[L - 1], nb * H * sizeof(double));
        if (t >= burn) {
            for (size_t b = 0; b < nb; b++) {
                const double *yh = at(e->yhat, e, t, b, O);
                const double *y = at(e->y, e, t, b, O);
                const double *ht = at(e->h[L - 1], e, t + 1, b, H);
                double *dt = e->dtot + b * H;
                for (size_t o = 0; o < O; o++) {
                    double dy = scale * 2.0 * (yh[o] - y[o]);
                    gby[o] += dy;
                    for (size_t k = 0; k < H; k++)
                        gWy[k * O + o] += ht[k] * dy;
                    axpy(H, dy, e->wyt + o * H, dt);
                }
            }
        }
        for (size_t l = L; l-- > 0;) {
            size_t in = e->in_l[l], ka = in + H;
            double *gW = g + e->woff[l], *gb = g + e->boff[l];
            if (l < L - 1)
                for (size_t i = 0; i < nb * H; i++)
                    e->dtot[i] = e->dh[l][i] + e->dx[i];
            /* Pre-activation gradients of every row, and the cell gradient into step t-1. */
            for (size_t b = 0; b < nb; b++) {
                const double *gt = at(e->gate[l], e, t, b, G);
                const double *cp = at(e->c[l], e, t, b, H);
                const double *tcv = at(e->tc[l], e, t, b, H);
                const double *dht = e->dtot + b * H;
                double *dcr = e->dc[l] + b * H;
                double *dz = e->dz + b * G;
                for (size_t j = 0; j < H; j++) {
                    double i = gt[j], f = gt[H + j], gg = gt[2 * H + j], o = gt[3 * H + j];
                    double tv = tcv[j];
                    double dhj = dht[j];
                    double dcv = dcr[j] + dhj * o * (1.0 - tv * tv);
                    dz[j] = dcv * gg * i * (1.0 - i);
                    dz[H + j] = dcv * cp[j] * f * (1.0 - f);
                    dz[2 * H + j] = dcv * i * (1.0 - gg * gg);
                    dz[3 * H + j] = dhj * tv * o * (1.0 - o);
                    dcr[j] = dcv * f;
                }
                for (size_t j = 0; j < G; j++)
                    gb[j] += dz[j];
            }
            /* dW_l += [x, h_prev]^T dz: the inputs, transposed, times the row gradients. */
            const double *x = l == 0 ? at(e->x, e, t, 0, in) : at(e->h[l - 1], e, t + 1, 0, H);
            const double *hp = at(e->h[l], e, t, 0, H);
            gemm_acc(in, G, nb, x, 1, in, e->dz, G, gW, G);
            gemm_acc(H, G, nb, hp, 1, H, e->dz, G, gW + in * G, G);
            /* [dx, dh_prev] = dz W_l^T; the data's own gradient (layer 0's dx) is not needed. */
            memset(e->dh[l], 0, nb * H * sizeof(double));
            gemm_acc(nb, H, G, e->dz, G, 1, e->wt[l] + in, ka, e->dh[l], H);
            if (l > 0) {
                memset(e->dx, 0, nb * H * sizeof(double));
                gemm_acc(nb, H, G, e->dz, G, 1, e->wt[l], ka, e->dx, H);
            }
        }
    }
}

/* ---- the public gradient, for tests ---- */

double ps_train_loss_grad(const ps_model *m, const double *params, const float *x, const float *y,
                          size_t steps, double *grad)
{
    if (!m || !params || !x || !y || !grad || steps == 0) return -1.0;
    engine e;
    if (engine_init(&e, &m->shape, 1, steps) != PS_OK) return -1.0;
    for (size_t i = 0; i < steps * e.in; i++)
        e.x[i] = x[i];
    for (size_t i = 0; i < steps * e.out; i++)
        e.y[i] = y[i];
    engine_zero_state(&e, 1);
    engine_forward(&e, params, 1, steps);
    double n = (double)(steps * e.out);
    double loss = engine_sse(&e, 1, steps, 0) / n;
    memset(grad, 0, e.nparam * sizeof *grad);
    engine_transpose(&e, params);
    engine_backward(&e, 1, steps, 0, 1.0 / n, grad);
    engine_free(&e);
    return loss;
}

/* ---- training ---- */

void ps_train_config_default(ps_train_config *c)
{
    memset(c, 0, sizeof *c);
    c->hidden = 32;
    c->layers = 1;
    c->multivariate = 0;
    c->window = 64;
    c->burn_in = 16;
    c->batch = 32;
    c->epochs = 20;
    c->lr = 3e-3;
    c->lr_final = 3e-4;
    c->grad_clip = 1.0;
    c->clip = 8.0f;
    c->val_fraction = 0.1;
    c->max_windows = 0;
    c->seed = 1;
}

/* One normalized series: n rows of width w (1, or K when multivariate). */
typedef struct series {
    float *data; /* owned by the trainer's pool */
    size_t n, ntrain;
} series;

typedef struct window_ref {
    uint32_t s; /* series */
    uint32_t pad;
    size_t start; /* first input row */
} window_ref;

typedef struct trainer {
    const ps_train_config *cfg;
    size_t width; /* model input = output */
    series *ser;
    size_t nser;
    float *pool;
    window_ref *win;
    size_t win_cap;
    engine e;
    double *p, *g, *m1, *m2; /* parameters, gradient, Adam moments */
    uint64_t adam_t;
    ps_rng rng;
} trainer;

static int fail(char *err, size_t errlen, int code, const char *msg)
{
    if (err && errlen) snprintf(err, errlen, "%s", msg);
    return code;
}

static int check_config(const ps_train_table *tables, size_t ntables, const ps_train_config *c,
                        char *err, size_t errlen)
{
    char msg[200];
    if (!tables || ntables == 0) return fail(err, errlen, PS_EINVAL, "no training data");
    if (c->hidden < 1 || c->hidden > PS_LSTM_MAX_HIDDEN || c->layers < 1 ||
        c->layers > PS_LSTM_MAX_LAYERS) {
        snprintf(msg, sizeof msg, "hidden must be 1..%d and layers 1..%d", PS_LSTM_MAX_HIDDEN,
                 PS_LSTM_MAX_LAYERS);
        return fail(err, errlen, PS_EINVAL, msg);
    }
    if (c->window < 2 || c->window > 100000)
        return fail(err, errlen, PS_EINVAL, "window must be 2..100000");
    if (c->burn_in >= c->window) return fail(err, errlen, PS_EINVAL, "burn-in must be < window");
    if (c->batch < 1 || c->batch > 65536)
        return fail(err, errlen, PS_EINVAL, "batch must be 1..65536");
    if (c->epochs < 1) return fail(err, errlen, PS_EINVAL, "epochs must be >= 1");
    if (!(c->lr > 0 && c->lr < 1e3) || !(c->lr_final >= 0 && c->lr_final < 1e3))
        return fail(err, errlen, PS_EINVAL, "learning rates must be finite, lr > 0");
    if (!(c->grad_clip >= 0 && c->grad_clip < 1e30))
        return fail(err, errlen, PS_EINVAL, "gradient clip must be finite and >= 0");
    if (!(c->clip > 0 && c->clip < 1e30f))
        return fail(err, errlen, PS_EINVAL, "input clip must be finite and > 0");
    if (!(c->val_fraction >= 0 && c->val_fraction <= 0.5))
        return fail(err, errlen, PS_EINVAL, "validation fraction must be in [0, 0.5]");
    for (size_t i = 0; i < ntables; i++) {
        if (!tables[i].values || tables[i].cols == 0) {
            snprintf(msg, sizeof msg, "table %zu is empty", i + 1);
            return fail(err, errlen, PS_EINVAL, msg);
        }
        if (c->multivariate && tables[i].cols != tables[0].cols) {
            snprintf(msg, sizeof msg,
                     "multivariate training needs one column count: table %zu has %zu, table 1 "
                     "has %zu",
                     i + 1, tables[i].cols, tables[0].cols);
            return fail(err, errlen, PS_EINVAL, msg);
        }
        if (tables[i].rows > UINT32_MAX) return fail(err, errlen, PS_EINVAL, "table too long");
    }
    if (c->multivariate && tables[0].cols > PS_LSTM_MAX_INPUT) {
        snprintf(msg, sizeof msg, "multivariate training takes at most %d columns",
                 PS_LSTM_MAX_INPUT);
        return fail(err, errlen, PS_EINVAL, msg);
    }
    return PS_OK;
}

static size_t val_rows(const ps_train_config *c, size_t n)
{
    return (size_t)((double)n * c->val_fraction);
}

/* A non-finite value (which the caller promised not to pass) becomes 0, not NaN. */
static inline float clampf(float v, float c)
{
    if (v != v) return 0.0f;
    return v > c ? c : v < -c ? -c : v;
}

/*
 * Normalize the data into the trainer's series. Channel-independent: one
 * series per column, by its own robust loc/scale over its training part.
 * Multivariate: one series per table, by per-column loc/scale over the
 * training parts of all tables, returned in loc/scale (width floats).
 */
static int build_series(trainer *tr, const ps_train_table *tables, size_t ntables, float *loc,
                        float *scale)
{
    const ps_train_config *c = tr->cfg;
    size_t total = 0, count = 0;
    for (size_t i = 0; i < ntables; i++) {
        size_t v = mul_sz(tables[i].rows, tables[i].cols);
        if (tables[i].rows && !v) return PS_ENOMEM;
        if (total + v < total) return PS_ENOMEM;
        total += v;
        count += c->multivariate ? 1 : tables[i].cols;
    }
    if (count > UINT32_MAX) return PS_EINVAL;
    tr->pool = malloc((total ? total : 1) * sizeof(float));
    tr->ser = calloc(count, sizeof *tr->ser);
    if (!tr->pool || !tr->ser) return PS_ENOMEM;
    float *dst = tr->pool;
    if (!c->multivariate) {
        size_t maxrows = 1;
        for (size_t i = 0; i < ntables; i++)
            if (tables[i].rows > maxrows) maxrows = tables[i].rows;
        float *work = malloc(maxrows * sizeof *work);
        if (!work) return PS_ENOMEM;
        for (size_t i = 0; i < ntables; i++) {
            size_t n = tables[i].rows, k = tables[i].cols;
            size_t ntrain = n - val_rows(c, n);
            for (size_t j = 0; j < k; j++) {
                float lo, sc;
                ps_robust_loc_scale_work(tables[i].values + j, ntrain, k, work, &lo, &sc);
                for (size_t r = 0; r < n; r++)
                    dst[r] = clampf((tables[i].values[r * k + j] - lo) / sc, c->clip);
                tr->ser[tr->nser++] = (series){dst, n, ntrain};
                dst += n;
            }
        }
        free(work);
    } else {
        size_t k = tables[0].cols, rows = 0;
        for (size_t i = 0; i < ntables; i++)
            rows += tables[i].rows - val_rows(c, tables[i].rows);
        float *col = malloc((rows ? rows : 1) * sizeof *col);
        if (!col) return PS_ENOMEM;
        for (size_t j = 0; j < k; j++) {
            size_t m = 0;
            for (size_t i = 0; i < ntables; i++) {
                size_t ntrain = tables[i].rows - val_rows(c, tables[i].rows);
                for (size_t r = 0; r < ntrain; r++)
                    col[m++] = tables[i].values[r * k + j];
            }
            /* No rows at all leaves loc 0, scale 1: the data check below refuses anyway. */
            float *w = malloc((m ? m : 1) * sizeof *w);
            if (!w) {
                free(col);
                return PS_ENOMEM;
            }
            ps_robust_loc_scale_work(col, m, 1, w, &loc[j], &scale[j]);
            free(w);
        }
        free(col);
        for (size_t i = 0; i < ntables; i++) {
            size_t n = tables[i].rows;
            for (size_t r = 0; r < n; r++)
                for (size_t j = 0; j < k; j++)
                    dst[r * k + j] =
                        clampf((tables[i].values[r * k + j] - loc[j]) / scale[j], c->clip);
            tr->ser[tr->nser++] = (series){dst, n, n - val_rows(c, n)};
            dst += n * k;
        }
    }
    return PS_OK;
}

/* Usable for training: room for one whole window and its last target. */
static int series_trainable(const trainer *tr, const series *s)
{
    return s->ntrain >= (size_t)tr->cfg->window + 1;
}

/* This epoch's windows, shuffled: each series tiled from a random phase. */
static size_t make_windows(trainer *tr)
{
    const ps_train_config *c = tr->cfg;
    size_t stride = c->window - c->burn_in, nw = 0;
    for (size_t s = 0; s < tr->nser; s++) {
        const series *se = &tr->ser[s];
        if (!series_trainable(tr, se)) continue;
        size_t off = (size_t)ps_rng_below(&tr->rng, stride);
        /* The last target row of a window is start + window, inside the training part. */
        for (size_t st = off; st + c->window < se->ntrain && nw < tr->win_cap; st += stride)
            tr->win[nw++] = (window_ref){(uint32_t)s, 0, st};
    }
    for (size_t i = nw; i > 1; i--) {
        size_t j = (size_t)ps_rng_below(&tr->rng, i);
        window_ref t = tr->win[i - 1];
        tr->win[i - 1] = tr->win[j];
        tr->win[j] = t;
    }
    if (c->max_windows && nw > c->max_windows) nw = c->max_windows;
    return nw;
}

/* Load nb windows into the engine's inputs and targets. */
static void gather(trainer *tr, const window_ref *w, size_t nb)
{
    engine *e = &tr->e;
    size_t T = tr->cfg->window, k = tr->width;
    for (size_t b = 0; b < nb; b++) {
        const float *d = tr->ser[w[b].s].data + w[b].start * k;
        for (size_t t = 0; t < T; t++) {
            double *x = at(e->x, e, t, b, k), *y = at(e->y, e, t, b, k);
            for (size_t i = 0; i < k; i++) {
                x[i] = d[t * k + i];
                y[i] = d[(t + 1) * k + i];
            }
        }
    }
}

static void adam_step(trainer *tr, double lr)
{
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    size_t n = tr->e.nparam;
    double norm2 = 0.0;
    for (size_t i = 0; i < n; i++)
        norm2 += tr->g[i] * tr->g[i];
    double norm = sqrt(norm2);
    double gs = 1.0;
    if (tr->cfg->grad_clip > 0 && norm > tr->cfg->grad_clip) gs = tr->cfg->grad_clip / norm;
    tr->adam_t++;
    double bc1 = 1.0 - pow(b1, (double)tr->adam_t);
    double bc2 = sqrt(1.0 - pow(b2, (double)tr->adam_t));
    double step = lr / bc1;
    for (size_t i = 0; i < n; i++) {
        double gi = tr->g[i] * gs;
        tr->m1[i] = b1 * tr->m1[i] + (1.0 - b1) * gi;
        tr->m2[i] = b2 * tr->m2[i] + (1.0 - b2) * gi * gi;
        tr->p[i] -= step * tr->m1[i] / (sqrt(tr->m2[i]) / bc2 + eps);
    }
}

/*
 * Loss on the held-out tails, forecasting online. Series that share a
 * length run side by side as rows of one pass. persist (if not NULL)
 * receives the loss of the persistence forecast on the same targets.
 */
static double validate(trainer *tr, double *persist, size_t *count_out)
{
    engine *e = &tr->e;
    const ps_train_config *c = tr->cfg;
    size_t k = tr->width;
    double sse = 0.0, pse = 0.0;
    size_t count = 0;
    for (size_t s0 = 0; s0 < tr->nser;) {
        const series *first = &tr->ser[s0];
        size_t nb = 1;
        while (s0 + nb < tr->nser && nb < e->bmax && tr->ser[s0 + nb].n == first->n &&
               tr->ser[s0 + nb].ntrain == first->ntrain)
            nb++;
        size_t n = first->n, ntrain = first->ntrain;
        if (!series_trainable(tr, first) || ntrain >= n) {
            s0 += nb;
            continue;
        }
        /* Inputs a .. n-2 (targets a+1 .. n-1); targets from ntrain on are scored. */
        size_t a = ntrain - 1 >= c->window ? ntrain - 1 - c->window : 0;
        engine_zero_state(e, nb);
        for (size_t t0 = a; t0 + 1 < n;) {
            size_t T = n - 1 - t0;
            if (T > e->tmax) T = e->tmax;
            for (size_t b = 0; b < nb; b++) {
                const float *d = tr->ser[s0 + b].data;
                for (size_t t = 0; t < T; t++)
                    for (size_t i = 0; i < k; i++) {
                        at(e->x, e, t, b, k)[i] = d[(t0 + t) * k + i];
                        at(e->y, e, t, b, k)[i] = d[(t0 + t + 1) * k + i];
                    }
            }
            engine_forward(e, tr->p, nb, T);
            size_t burn = t0 + 1 >= ntrain ? 0 : ntrain - (t0 + 1);
            if (burn < T) {
                sse += engine_sse(e, nb, T, burn);
                count += (T - burn) * nb * k;
                for (size_t t = burn; t < T; t++)
                    for (size_t b = 0; b < nb; b++)
                        for (size_t i = 0; i < k; i++) {
                            double d = at(e->x, e, t, b, k)[i] - at(e->y, e, t, b, k)[i];
                            pse += d * d;
                        }
            }
            engine_carry_state(e, nb, T);
            t0 += T;
        }
        s0 += nb;
    }
    if (count_out) *count_out = count;
    if (persist) *persist = count ? pse / (double)count : NAN;
    return count ? sse / (double)count : NAN;
}

static void trainer_free(trainer *tr)
{
    engine_free(&tr->e);
    free(tr->ser);
    free(tr->pool);
    free(tr->win);
    free(tr->p);
    free(tr->g);
    free(tr->m1);
    free(tr->m2);
}

int ps_train(const ps_train_table *tables, size_t ntables, const ps_train_config *cfg,
             ps_model *out, ps_train_result *res, ps_train_progress_fn progress, void *user,
             char *err, size_t errlen)
{
    double t_start = now_seconds();
    if (err && errlen) err[0] = '\0';
    if (!out || !cfg) return fail(err, errlen, PS_EINVAL, "null argument");
    memset(out, 0, sizeof *out);
    ps_train_result r;
    memset(&r, 0, sizeof r);
    r.val_loss = r.val_persistence = NAN;
    if (res) *res = r;
    int rc = check_config(tables, ntables, cfg, err, errlen);
    if (rc) return rc;

    trainer tr;
    memset(&tr, 0, sizeof tr);
    tr.cfg = cfg;
    tr.width = cfg->multivariate ? tables[0].cols : 1;
    ps_lstm_shape shape = {(int32_t)tr.width, cfg->hidden, cfg->layers, (int32_t)tr.width};
    float *loc = NULL, *scale = NULL;

    rc = ps_model_init(out, &shape);
    if (rc) goto done;
    if (cfg->multivariate) {
        loc = calloc(tr.width, sizeof *loc);
        scale = calloc(tr.width, sizeof *scale);
        if (!loc || !scale) {
            rc = PS_ENOMEM;
            goto done;
        }
    }
    rc = build_series(&tr, tables, ntables, loc, scale);
    if (rc) goto done;

    /* Count what there is to learn from before allocating the rest. */
    size_t stride = cfg->window - cfg->burn_in;
    for (size_t s = 0; s < tr.nser; s++) {
        const series *se = &tr.ser[s];
        if (!series_trainable(&tr, se)) {
            r.series_skipped++;
            continue;
        }
        r.series++;
        r.train_steps += (se->ntrain - 1) * tr.width;
        r.val_steps += (se->n - se->ntrain) * tr.width;
        tr.win_cap += (se->ntrain - cfg->window - 1) / stride + 1;
    }
    if (r.series == 0) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "no series is long enough: the training part of a series needs at least "
                 "window + 1 = %u rows",
                 cfg->window + 1);
        rc = fail(err, errlen, PS_EINVAL, msg);
        goto done;
    }
    tr.win = malloc(tr.win_cap * sizeof *tr.win);
    size_t np = ps_lstm_param_count(&shape);
    tr.p = calloc(np, sizeof(double));
    tr.g = calloc(np, sizeof(double));
    tr.m1 = calloc(np, sizeof(double));
    tr.m2 = calloc(np, sizeof(double));
    if (!tr.win || !tr.p || !tr.g || !tr.m1 || !tr.m2) {
        rc = PS_ENOMEM;
        goto done;
    }
    rc = engine_init(&tr.e, &shape, cfg->batch, cfg->window);
    if (rc) goto done;

    ps_model_init_random(out, cfg->seed);
    for (size_t i = 0; i < np; i++)
        tr.p[i] = out->params[i];
    /* The shuffling stream is independent of the initialization's. */
    ps_rng_seed(&tr.rng, cfg->seed ^ 0x7261696e5f736875ull);

    size_t per_epoch = tr.win_cap;
    if (cfg->max_windows && per_epoch > cfg->max_windows) per_epoch = cfg->max_windows;
    double total_steps = (double)cfg->epochs * (double)((per_epoch + cfg->batch - 1) / cfg->batch);
    r.windows = per_epoch;
    uint64_t step = 0;
    size_t scored_per_window = (size_t)(cfg->window - cfg->burn_in) * tr.width;

    for (uint32_t ep = 0; ep < cfg->epochs; ep++) {
        size_t nw = make_windows(&tr);
        double sse = 0.0;
        size_t count = 0;
        for (size_t w0 = 0; w0 < nw; w0 += cfg->batch) {
            size_t nb = nw - w0 < cfg->batch ? nw - w0 : cfg->batch;
            gather(&tr, tr.win + w0, nb);
            engine_zero_state(&tr.e, nb);
            engine_forward(&tr.e, tr.p, nb, cfg->window);
            double n = (double)(nb * scored_per_window);
            sse += engine_sse(&tr.e, nb, cfg->window, cfg->burn_in);
            count += nb * scored_per_window;
            memset(tr.g, 0, np * sizeof *tr.g);
            engine_transpose(&tr.e, tr.p);
            engine_backward(&tr.e, nb, cfg->window, cfg->burn_in, 1.0 / n, tr.g);
            double frac = total_steps > 0 ? (double)step / total_steps : 1.0;
            if (frac > 1.0) frac = 1.0;
            double lr = cfg->lr_final + 0.5 * (cfg->lr - cfg->lr_final) *
                                            (1.0 + cos(3.14159265358979323846 * frac));
            adam_step(&tr, lr);
            step++;
        }
        r.train_loss = count ? sse / (double)count : NAN;
        r.val_loss = validate(&tr, ep == 0 ? &r.val_persistence : NULL, NULL);
        r.epochs_run = ep + 1;
        r.seconds = now_seconds() - t_start;
        if (progress) {
            ps_train_progress pr = {ep + 1, cfg->epochs, r.train_loss, r.val_loss, r.seconds};
            if (progress(user, &pr)) break;
        }
    }

    for (size_t i = 0; i < np; i++)
        out->params[i] = (float)tr.p[i];
    out->norm = cfg->multivariate ? PS_NORM_FIXED : PS_NORM_BASELINE;
    out->clip = cfg->clip;
    out->norm_loc = loc;
    out->norm_scale = scale;
    loc = scale = NULL;
    out->train_seed = cfg->seed;
    out->train_epochs = r.epochs_run;
    out->train_window = cfg->window;
    out->train_loss = (float)r.train_loss;
    r.seconds = now_seconds() - t_start;
    rc = PS_OK;

done:
    free(loc);
    free(scale);
    trainer_free(&tr);
    if (rc) {
        ps_model_free(out);
        if (rc == PS_ENOMEM && err && errlen && !err[0])
            snprintf(err, errlen, "out of memory (the data or the engine for batch %u x window %u)",
                     cfg->batch, cfg->window);
    } else if (res) {
        *res = r;
    }
    return rc;
}
