/*
 * test_train_grad.c - the trainer's backward pass and its training loop.
 *
 * The analytic gradient is checked against central finite differences of
 * the trainer's own loss, in double, for shapes that exercise every index
 * path (one and two layers, one and three inputs and outputs). The
 * trainer's forward pass is also checked against the CPU kernels, so the
 * trainer cannot silently learn a layout that the run time reads
 * differently. Then a short run on a noisy sine must beat persistence
 * clearly and be bit-identical when repeated with the same seed.
 */
#include "core/model.h"
#include "core/rng.h"
#include "core/robust.h"
#include "core/train.h"
#include "kernels/kernels.h"
#include "server/model_io.h"
#include "testutil.h"

#include <float.h>
#include <string.h>
#include <unistd.h>

/* Max relative error of the analytic gradient against central differences. */
static double grad_check(const ps_lstm_shape *s, size_t steps, uint64_t seed)
{
    ps_model m;
    CHECK(ps_model_init(&m, s) == PS_OK);
    size_t np = ps_lstm_param_count(s);
    double *p = malloc(np * sizeof *p), *g = malloc(np * sizeof *g), *gg = malloc(np * sizeof *g);
    float *x = malloc(steps * (size_t)s->input * sizeof *x);
    float *y = malloc(steps * (size_t)s->output * sizeof *y);
    ps_rng r;
    ps_rng_seed(&r, seed);
    /* Weights larger than the default init, so the gates leave their linear range. */
    for (size_t i = 0; i < np; i++)
        p[i] = ps_rng_uniform(&r) * 1.6 - 0.8;
    for (size_t i = 0; i < steps * (size_t)s->input; i++)
        x[i] = (float)ps_rng_normal(&r);
    for (size_t i = 0; i < steps * (size_t)s->output; i++)
        y[i] = (float)ps_rng_normal(&r);
    double loss = ps_train_loss_grad(&m, p, x, y, steps, g);
    CHECK(loss > 0);
    double worst = 0.0, worst_abs = 0.0;
    const double h = 1e-5;
    for (size_t i = 0; i < np; i++) {
        double keep = p[i];
        p[i] = keep + h;
        double lp = ps_train_loss_grad(&m, p, x, y, steps, gg);
        p[i] = keep - h;
        double lm = ps_train_loss_grad(&m, p, x, y, steps, gg);
        p[i] = keep;
        double num = (lp - lm) / (2 * h);
        double diff = fabs(num - g[i]);
        /* Relative to the gradient's size, with a floor for the near-zero entries. */
        double rel = diff / fmax(fmax(fabs(num), fabs(g[i])), 1e-3);
        if (rel > worst) worst = rel;
        if (diff > worst_abs) worst_abs = diff;
    }
    printf("grad check input %d hidden %d layers %d output %d, %zu params: max rel err %.3g, "
           "max abs err %.3g\n",
           s->input, s->hidden, s->layers, s->output, np, worst, worst_abs);
    free(p);
    free(g);
    free(gg);
    free(x);
    free(y);
    ps_model_free(&m);
    return worst;
}

/* The trainer's forward must be the kernels' forward: compare the losses. */
static void check_against_kernels(const ps_lstm_shape *s, size_t steps)
{
    char err[256];
    ps_backend *be = ps_backend_init(
        &(ps_backend_params){.kind = PS_BACKEND_CPU, .threads = 1, .isa = PS_ISA_PORTABLE}, err,
        sizeof err);
    if (!be) {
        printf("kernel comparison skipped: %s\n", err);
        return;
    }
    ps_model m;
    CHECK(ps_model_init(&m, s) == PS_OK);
    ps_model_init_random(&m, 77);
    size_t np = ps_lstm_param_count(s), in = (size_t)s->input, out = (size_t)s->output;
    double *p = malloc(np * sizeof *p), *g = malloc(np * sizeof *g);
    for (size_t i = 0; i < np; i++)
        p[i] = m.params[i];
    float *x = malloc(steps * in * sizeof *x), *y = malloc(steps * out * sizeof *y);
    float *yk = malloc(out * sizeof *yk);
    ps_rng r;
    ps_rng_seed(&r, 5);
    for (size_t i = 0; i < steps * in; i++)
        x[i] = (float)ps_rng_normal(&r);
    for (size_t i = 0; i < steps * out; i++)
        y[i] = (float)ps_rng_normal(&r);
    double loss = ps_train_loss_grad(&m, p, x, y, steps, g);
    ps_lstm *l = ps_lstm_create(be, s, m.params, 1);
    CHECK(l != NULL);
    double sse = 0;
    uint32_t slot = 0;
    for (size_t t = 0; l && t < steps; t++) {
        CHECK(ps_lstm_step(l, 1, &slot, x + t * in, yk) == PS_OK);
        for (size_t o = 0; o < out; o++)
            sse += ((double)yk[o] - y[t * out + o]) * ((double)yk[o] - y[t * out + o]);
    }
    double kloss = sse / (double)(steps * out);
    CHECKF(fabs(kloss - loss) <= 1e-4 * loss, "trainer loss %.9g, kernels %.9g", loss, kloss);
    ps_lstm_free(l);
    ps_backend_free(be);
    free(p);
    free(g);
    free(x);
    free(y);
    free(yk);
    ps_model_free(&m);
}

typedef struct epochs_seen {
    int n;
    double first_val, last_val;
} epochs_seen;

static int on_epoch(void *user, const ps_train_progress *pr)
{
    epochs_seen *e = user;
    if (e->n++ == 0) e->first_val = pr->val_loss;
    e->last_val = pr->val_loss;
    CHECK(pr->epoch == (uint32_t)e->n && isfinite(pr->train_loss) && pr->seconds >= 0);
    return 0;
}

static void check_training(void)
{
    /* Two noisy sines of different phase and level, 1200 ticks each. */
    enum { rows = 1200, cols = 2 };
    static float v[rows * cols];
    ps_rng r;
    ps_rng_seed(&r, 3);
    for (int t = 0; t < rows; t++) {
        v[t * cols] = (float)(50 + 10 * sin(t * 0.21) + 0.2 * ps_rng_normal(&r));
        v[t * cols + 1] = (float)(0.3 + 0.1 * sin(t * 0.13 + 1) + 0.002 * ps_rng_normal(&r));
    }
    ps_train_table tab = {v, rows, cols};
    ps_train_config c;
    ps_train_config_default(&c);
    c.hidden = 8;
    c.window = 32;
    c.burn_in = 8;
    c.batch = 8;
    c.epochs = 40;
    c.lr = 1e-2;
    c.lr_final = 1e-3;
    c.seed = 11;

    ps_model a, b;
    ps_train_result ra, rb;
    epochs_seen seen = {0, 0, 0};
    char err[256];
    CHECK(ps_train(&tab, 1, &c, &a, &ra, on_epoch, &seen, err, sizeof err) == PS_OK);
    printf("sine: %u epochs in %.2f s, train %.4f, val %.4f (after epoch 1: %.4f), "
           "persistence %.4f\n",
           ra.epochs_run, ra.seconds, ra.train_loss, ra.val_loss, seen.first_val,
           ra.val_persistence);
    CHECK(seen.n == 40 && ra.epochs_run == 40);
    CHECK(ra.series == 2 && ra.series_skipped == 0 && ra.windows > 0);
    CHECK(ra.val_steps == 2 * 120);
    CHECKF(ra.val_loss < 0.3 * ra.val_persistence, "val %.4f vs persistence %.4f", ra.val_loss,
           ra.val_persistence);
    CHECKF(ra.val_loss < 0.5 * seen.first_val, "val %.4f vs first epoch %.4f", ra.val_loss,
           seen.first_val);
    CHECK(a.norm == PS_NORM_BASELINE && a.clip == c.clip && a.shape.input == 1 &&
          a.train_epochs == 40 && a.train_window == 32 && a.train_seed == 11);

    /* What the trainer makes, the model file takes back unchanged. */
    char dir[] = "/tmp/ps_train_XXXXXX", path[64];
    if (mkdtemp(dir)) {
        snprintf(path, sizeof path, "%s/m.psm", dir);
        snprintf(a.train_source, sizeof a.train_source, "test_train_grad");
        CHECKF(ps_model_save(path, &a, err, sizeof err) == 0, "%s", err);
        CHECKF(ps_model_load(path, &b, err, sizeof err) == 0, "%s", err);
        CHECK(b.params && b.shape.hidden == 8 && b.clip == a.clip && b.train_loss == a.train_loss &&
              memcmp(a.params, b.params, ps_lstm_param_count(&a.shape) * sizeof(float)) == 0);
        ps_model_free(&b);
        unlink(path);
        rmdir(dir);
    }

    CHECK(ps_train(&tab, 1, &c, &b, &rb, NULL, NULL, err, sizeof err) == PS_OK);
    size_t np = ps_lstm_param_count(&a.shape);
    CHECK(memcmp(a.params, b.params, np * sizeof(float)) == 0);
    CHECK(memcmp(&ra.val_loss, &rb.val_loss, sizeof(double)) == 0);
    ps_model_free(&b);

    /* A different seed gives a different model. */
    c.seed = 12;
    c.epochs = 1;
    CHECK(ps_train(&tab, 1, &c, &b, NULL, NULL, NULL, err, sizeof err) == PS_OK);
    CHECK(memcmp(a.params, b.params, np * sizeof(float)) != 0);
    ps_model_free(&b);
    ps_model_free(&a);

    /* Multivariate: the model carries the normalization. */
    c.multivariate = 1;
    c.epochs = 2;
    CHECK(ps_train(&tab, 1, &c, &a, &ra, NULL, NULL, err, sizeof err) == PS_OK);
    CHECK(a.shape.input == 2 && a.shape.output == 2 && a.norm == PS_NORM_FIXED);
    CHECK(a.norm_loc && a.norm_scale && fabs(a.norm_loc[0] - 50) < 2 &&
          fabs(a.norm_loc[1] - 0.3) < 0.05 && a.norm_scale[0] > 1 && a.norm_scale[1] > 0.01);
    CHECK(isfinite(ra.val_loss) && ra.val_steps == 120 * 2);
    ps_model_free(&a);

    /* Refusals say why. */
    c.multivariate = 0;
    c.burn_in = c.window;
    CHECK(ps_train(&tab, 1, &c, &a, NULL, NULL, NULL, err, sizeof err) == PS_EINVAL);
    CHECK(strstr(err, "burn-in") != NULL && a.params == NULL);
    c.burn_in = 8;
    ps_train_table shortt = {v, 20, cols};
    CHECK(ps_train(&shortt, 1, &c, &a, NULL, NULL, NULL, err, sizeof err) == PS_EINVAL);
    CHECK(strstr(err, "long enough") != NULL);
    ps_train_table t2[2] = {{v, rows, 2}, {v, rows / 2, 1}};
    c.multivariate = 1;
    CHECK(ps_train(t2, 2, &c, &a, NULL, NULL, NULL, err, sizeof err) == PS_EINVAL);
    CHECK(strstr(err, "column") != NULL);
}

static void check_robust(void)
{
    float loc, scale;
    float a[] = {1, 2, 3, 4, 100};
    CHECK(ps_robust_loc_scale(a, 5, 1, &loc, &scale) == PS_OK);
    CHECK(loc == 3.0f);
    CHECK_NEAR(scale, 1.4826, 1e-5); /* |dev| = 2 1 0 1 97: MAD 1 */
    float even[] = {4, 1, 3, 2};
    CHECK(ps_robust_loc_scale(even, 4, 1, &loc, &scale) == PS_OK);
    CHECK(loc == 2.5f);
    /* Constant: the floor, never zero. */
    float k[8] = {5, 5, 5, 5, 5, 5, 5, 5};
    CHECK(ps_robust_loc_scale(k, 8, 1, &loc, &scale) == PS_OK);
    CHECK(loc == 5.0f);
    CHECK_NEAR(scale, ps_robust_floor(5), 1e-7);
    float z[4] = {0, 0, 0, 0};
    CHECK(ps_robust_loc_scale(z, 4, 1, &loc, &scale) == PS_OK && scale > 0);
    /* Mostly constant, quantized: MAD 0, so the mean absolute deviation counts. */
    float q[10] = {0.4f, 0.4f, 0.4f, 0.4f, 0.4f, 0.4f, 0.41f, 0.41f, 0.39f, 0.41f};
    CHECK(ps_robust_loc_scale(q, 10, 1, &loc, &scale) == PS_OK);
    CHECK_NEAR(loc, 0.4, 1e-6);
    CHECK_NEAR(scale, 1.2533141 * 0.004, 1e-5);
    CHECK(scale >= ps_robust_floor(0.4) - 1e-7);
    /* Strided, with NaN and inf skipped. */
    float s[] = {1, NAN, 2, INFINITY, 3, 0, NAN, 0, 10, 0};
    CHECK(ps_robust_loc_scale(s, 5, 2, &loc, &scale) == PS_OK);
    CHECK(loc == 2.5f); /* 1 2 3 10 */
    float allnan[2] = {NAN, NAN};
    CHECK(ps_robust_loc_scale(allnan, 2, 1, &loc, &scale) == PS_EINVAL && loc == 0 && scale == 1);
    CHECK(ps_robust_loc_scale(a, 0, 1, &loc, &scale) == PS_EINVAL && scale == 1);
    CHECK(ps_robust_loc_scale(a, 5, 0, &loc, &scale) == PS_EINVAL);
    /* Larger random input against a sort-free count: the median splits it in half. */
    enum { n = 1001 };
    static float big[n];
    ps_rng r;
    ps_rng_seed(&r, 9);
    for (int i = 0; i < n; i++)
        big[i] = (float)ps_rng_below(&r, 50); /* many ties */
    CHECK(ps_robust_loc_scale(big, n, 1, &loc, &scale) == PS_OK);
    int below = 0, above = 0;
    for (int i = 0; i < n; i++) {
        below += big[i] < loc;
        above += big[i] > loc;
    }
    CHECK(below <= n / 2 && above <= n / 2);
}

int main(void)
{
    check_robust();
    const ps_lstm_shape shapes[] = {
        {1, 4, 1, 1}, {1, 5, 2, 1}, {3, 4, 1, 3}, {3, 3, 2, 3}, {2, 6, 2, 1}, {1, 7, 3, 2},
    };
    double worst = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        double e = grad_check(&shapes[i], 9, 100 + i);
        CHECKF(e < 1e-5, "shape %zu: max relative gradient error %.3g", i, e);
        if (e > worst) worst = e;
        check_against_kernels(&shapes[i], 12);
    }
    printf("worst relative gradient error: %.3g\n", worst);
    check_training();
    return test_finish("test_train_grad");
}
