/*
 * scorer.c - the Instability Score and PFP pipeline (see scorer.h).
 *
 * Warm-up rows are kept per processor so that the tick completing them can
 * set every model from the same rows, in one batch for all processors that
 * complete together (a corpus replayed in lockstep completes them all on
 * one tick, and the LSTM replay is then one batched step per row).
 *
 * A tick is checked whole before anything changes, so a refused tick leaves
 * no trace. After that the order within a tick is what keeps it online:
 * score with what was learned up to t-1, then learn from t if it was stable,
 * then forecast t+1.
 */
#include "scorer.h"
#include "scorer_impl.h"

#include "arima.h"
#include "baseline.h"
#include "calibration.h"
#include "forecaster.h"
#include "residual_cov.h"
#include "robust.h"
#include "seasonal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ps_scorer_config ps_scorer_default_config(void)
{
    ps_scorer_config c = {0};
    c.warmup = 750;
    c.burn_in = 32;
    c.lstm_weight = 0.5f;
    c.arima_p = 2;
    c.arima_d = 0;
    c.arima_q = 1;
    c.residual_floor = 0.05f;
    c.smoothing = 0.5f;
    c.lateness_weight = 1.0f;
    c.drift_rate = 0.0f;
    c.level_weight = 0.01f;
    c.level_rate = 0.2f;
    c.seasonal_weight = PS_SEASONAL_AUTO;
    c.seasonal = ps_seasonal_default_config();
    /*
     * Far above the EVT threshold's level (0.98): a gate at 0.99 kept every
     * healthy tick above the 99th percentile out of the tail, whose phi then
     * shrank, which gated more ticks, until 3-50 % of the rows of a healthy
     * series sat at PFP > 0.99 (NAB 3.8, ASD recall 0.28: bench/eval).
     */
    c.unstable_pfp = 0.99999f;
    c.evt = ps_evt_default_options();
    return c;
}

const ps_scorer_config *ps_scorer_config_of(const ps_scorer *s)
{
    return &s->cfg;
}

static int check_config(const ps_scorer_config *c, char *err, size_t errlen)
{
    if (c->processors == 0 || c->metrics == 0 || c->metrics > PS_RESCOV_MAX_METRICS) {
        snprintf(err, errlen, "need 1.. processors and 1..%d metrics", PS_RESCOV_MAX_METRICS);
        return PS_EINVAL;
    }
    if (c->warmup < 16 || c->burn_in + 8 > c->warmup) {
        snprintf(err, errlen, "warm-up %u must be >= 16 and leave 8 rows after the burn-in %u",
                 (unsigned)c->warmup, (unsigned)c->burn_in);
        return PS_EINVAL;
    }
    if (!(c->lstm_weight >= 0 && c->lstm_weight <= 1) || !(c->smoothing > 0 && c->smoothing <= 1) ||
        !(c->lateness_weight >= 0) || !(c->residual_floor > 0) || !(c->level_weight >= 0) ||
        !(c->level_rate > 0 && c->level_rate <= 1) || !(c->seasonal_weight >= 0) ||
        !(c->unstable_pfp > 0 && c->unstable_pfp <= 1)) {
        snprintf(
            err, errlen,
            "lstm weight and unstable PFP must be in [0,1], smoothing and level rate in (0,1], "
            "weights >= 0");
        return PS_EINVAL;
    }
    if (c->arima_p < 0 || c->arima_q < 0 || c->arima_p > PS_ARMA_MAX_ORDER ||
        c->arima_q > PS_ARMA_MAX_ORDER || c->arima_d < 0 || c->arima_d > PS_ARIMA_MAX_D) {
        snprintf(err, errlen, "ARIMA order (%d,%d,%d) out of range", c->arima_p, c->arima_d,
                 c->arima_q);
        return PS_EINVAL;
    }
    if (c->processors > SIZE_MAX / c->metrics / sizeof(double) ||
        c->warmup > SIZE_MAX / c->metrics / sizeof(double)) {
        snprintf(err, errlen, "too many processors or warm-up rows for the buffers");
        return PS_EINVAL;
    }
    return PS_OK;
}

ps_scorer *ps_scorer_create(ps_backend *be, const ps_model *m, const ps_scorer_config *given,
                            char *err, size_t errlen)
{
    ps_scorer_config resolved = *given;
    if (resolved.seasonal_weight == PS_SEASONAL_AUTO)
        resolved.seasonal_weight = resolved.metrics == 1 ? 1.0f : 0.0f;
    const ps_scorer_config *cfg = &resolved;
    if (check_config(cfg, err, errlen)) return NULL;
    ps_scorer *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->cfg = *cfg;
    s->be = be;
    s->calibration = m->calibration;
    s->fingerprint = ps_scorer_fingerprint_compute(cfg, m);
    size_t P = cfg->processors, K = cfg->metrics, W = cfg->warmup;

    ps_baseline_config bc = ps_baseline_default_config();
    bc.warmup = 0;
    bc.drift_rate = cfg->drift_rate;
    s->baseline = ps_baseline_create(P, K, &bc, err, errlen);
    if (!s->baseline) goto fail;
    s->cov = ps_rescov_create(P, K, NULL, err, errlen);
    if (!s->cov) goto fail;
    if (cfg->lstm_weight > 0) {
        s->lstm = ps_forecaster_create(be, m, P, K, err, errlen);
        if (!s->lstm) goto fail;
    }
    if (cfg->lstm_weight < 1) {
        s->arima =
            ps_arima_bank_create(be, cfg->arima_p, cfg->arima_d, cfg->arima_q, P * K, err, errlen);
        if (!s->arima) goto fail;
    }
    if (cfg->seasonal_weight > 0) {
        s->seasonal = ps_seasonal_create(P * K, &cfg->seasonal);
        if (!s->seasonal) {
            snprintf(err, errlen, "bad seasonal configuration, or out of memory");
            goto fail;
        }
    }
    s->evt = calloc(P, sizeof *s->evt);
    s->warm_x = calloc(P, sizeof *s->warm_x);
    s->warm_t = calloc(P, sizeof *s->warm_t);
    s->warm_n = calloc(P, sizeof(uint32_t));
    s->warm_len = malloc(P * sizeof(uint32_t));
    s->ready = calloc(P, 1);
    s->clock = calloc(P, sizeof(double));
    s->forecast = calloc(P * K, sizeof(float));
    s->res_scale = malloc(P * K * sizeof(float));
    s->smooth = calloc(P, sizeof(double));
    s->level = calloc(P * K, sizeof(float));
    s->level_loc = calloc(P * K, sizeof(float));
    s->level_scale = malloc(P * K * sizeof(float));
    s->seen = calloc(P, 1);
    s->ids = malloc(P * sizeof(uint32_t));
    s->series = malloc(P * K * sizeof(uint32_t));
    s->z = malloc(P * K * sizeof(float));
    s->x = malloc(P * K * sizeof(float));
    s->res = malloc(P * K * sizeof(float));
    s->next = malloc(P * K * sizeof(float));
    s->fl = malloc(P * K * sizeof(float));
    s->fa = malloc(P * K * sizeof(float));
    s->contrib = malloc(K * sizeof(float));
    s->late = malloc(P * sizeof(float));
    s->seas = calloc(P * K, sizeof(float));
    s->stable = malloc(P);
    s->times = malloc(P * sizeof(double));
    if (!s->evt || !s->warm_x || !s->warm_t || !s->warm_n || !s->warm_len || !s->ready ||
        !s->clock || !s->forecast || !s->res_scale || !s->smooth || !s->level || !s->level_loc ||
        !s->level_scale || !s->seen || !s->ids || !s->series || !s->x || !s->z || !s->res ||
        !s->next || !s->fl || !s->fa || !s->contrib || !s->late || !s->seas || !s->stable ||
        !s->times)
        goto oom;
    for (size_t p = 0; p < P; p++)
        s->warm_len[p] = (uint32_t)W;
    return s;
oom:
    snprintf(err, errlen, "out of memory for the scorer");
fail:
    ps_scorer_free(s);
    return NULL;
}

void ps_scorer_free(ps_scorer *s)
{
    if (!s) return;
    ps_baseline_free(s->baseline);
    ps_rescov_free(s->cov);
    ps_forecaster_free(s->lstm);
    ps_arima_bank_free(s->arima);
    ps_seasonal_free(s->seasonal);
    if (s->evt)
        for (size_t p = 0; p < s->cfg.processors; p++)
            ps_evt_free(&s->evt[p]);
    free(s->evt);
    for (size_t p = 0; s->warm_x && s->warm_t && p < s->cfg.processors; p++) {
        free(s->warm_x[p]);
        free(s->warm_t[p]);
    }
    free(s->warm_x);
    free(s->warm_t);
    free(s->warm_n);
    free(s->warm_len);
    free(s->ready);
    free(s->clock);
    free(s->forecast);
    free(s->res_scale);
    free(s->smooth);
    free(s->level);
    free(s->level_loc);
    free(s->level_scale);
    free(s->seen);
    free(s->ids);
    free(s->series);
    free(s->z);
    free(s->x);
    free(s->res);
    free(s->next);
    free(s->fl);
    free(s->fa);
    free(s->contrib);
    free(s->late);
    free(s->seas);
    free(s->stable);
    free(s->times);
    free(s);
}

int ps_scorer_set_warmup(ps_scorer *s, uint32_t proc, uint32_t warmup)
{
    if (proc >= s->cfg.processors || s->warm_n[proc] > 0 || s->ready[proc]) return PS_EINVAL;
    if (warmup < 16 || warmup > s->cfg.warmup || warmup < s->cfg.burn_in + 8) return PS_EINVAL;
    s->warm_len[proc] = warmup;
    return PS_OK;
}

/* Every check a tick needs, before any state changes. */
static int check_tick(ps_scorer *s, size_t n, const uint32_t *procs, const double *t,
                      const float *x, char *err, size_t errlen)
{
    size_t K = s->cfg.metrics;
    int rc = PS_OK;
    size_t i = 0;
    for (; i < n && rc == PS_OK; i++) {
        uint32_t p = procs[i];
        if (p >= s->cfg.processors) {
            snprintf(err, errlen, "processor %u out of range", (unsigned)p);
            rc = PS_EINVAL;
            break;
        }
        if (s->seen[p]) {
            snprintf(err, errlen, "processor %u appears twice in one tick", (unsigned)p);
            rc = PS_EINVAL;
            break;
        }
        s->seen[p] = 1;
        for (size_t k = 0; k < K; k++)
            if (!isfinite(x[i * K + k])) {
                snprintf(err, errlen, "processor %u metric %zu is not a finite number", (unsigned)p,
                         k);
                rc = PS_EINVAL;
            }
        if (t && !isfinite(t[i])) {
            snprintf(err, errlen, "processor %u: time is not a finite number", (unsigned)p);
            rc = PS_EINVAL;
        }
    }
    for (size_t j = 0; j < i && j < n; j++)
        s->seen[procs[j]] = 0;
    if (rc == PS_OK)
        for (size_t j = 0; j < n; j++)
            s->seen[procs[j]] = 0;
    return rc;
}

/* Forecasts of the next z for m ready processors whose z (m x K) is in z. */
static int forecast_next(ps_scorer *s, size_t m, const uint32_t *ids, const float *z, float *out,
                         char *err, size_t errlen)
{
    size_t K = s->cfg.metrics;
    float w = s->cfg.lstm_weight;
    if (s->lstm && ps_forecaster_step(s->lstm, m, ids, z, s->fl)) {
        snprintf(err, errlen, "LSTM step failed: %s", ps_forecaster_error(s->lstm));
        return PS_EDEVICE;
    }
    if (s->arima) {
        for (size_t i = 0; i < m; i++)
            for (size_t k = 0; k < K; k++)
                s->series[i * K + k] = ids[i] * (uint32_t)K + (uint32_t)k;
        if (ps_arima_bank_step(s->arima, m * K, s->series, z, NULL, s->fa)) {
            snprintf(err, errlen, "ARIMA step failed: %s", ps_arima_bank_error(s->arima));
            return PS_EDEVICE;
        }
    }
    for (size_t i = 0; i < m * K; i++) {
        float fl = s->lstm ? s->fl[i] : 0, fa = s->arima ? s->fa[i] : 0;
        float f = w * fl + (1 - w) * fa;
        out[i] = isfinite(f) ? f : z[i];
    }
    return PS_OK;
}

/*
 * Raw score of processor p: normalized residual u, EW level v and seasonal
 * distance d (K each; d NULL when there is no seasonal term). The top metric
 * is the one with the largest share of the metric terms together.
 */
static double raw_score(ps_scorer *s, uint32_t p, const float *u, const float *v, const float *d,
                        float lateness, int32_t *top, float *share)
{
    size_t K = s->cfg.metrics;
    double d2;
    if (ps_rescov_mahalanobis(s->cov, p, u, &d2, s->contrib) || !isfinite(d2)) {
        d2 = 0;
        memset(s->contrib, 0, K * sizeof(float));
    }
    const float *loc = s->level_loc + (size_t)p * K, *scale = s->level_scale + (size_t)p * K;
    double wl = s->cfg.level_weight, ws = d ? s->cfg.seasonal_weight : 0, total = 0;
    size_t best = 0;
    for (size_t k = 0; k < K; k++) {
        double lv = ((double)v[k] - loc[k]) / scale[k], sd = d ? d[k] : 0;
        double c = s->contrib[k] + wl * lv * lv + ws * sd * sd;
        if (!isfinite(c)) c = 0;
        s->contrib[k] = (float)c;
        total += c;
        if (c > s->contrib[best]) best = k;
    }
    *top = (int32_t)best;
    *share = total > 0 ? (float)(s->contrib[best] / total) : 0;
    return total / (double)K + s->cfg.lateness_weight * (double)lateness * lateness;
}

/*
 * Set every model of the c processors in ids from their kept warm-up rows.
 * The rows are replayed exactly as ticks would be, so the healthy
 * residuals, covariance and scores are those the processor will see.
 */
static int activate(ps_scorer *s, size_t c, const uint32_t *ids, char *err, size_t errlen)
{
    /* Processors completing together have the same warm-up unless set
     * otherwise; activate() runs once per distinct length. */
    size_t K = s->cfg.metrics, W = s->warm_len[ids[0]], B = s->cfg.burn_in;
    float *z = malloc(c * W * K * sizeof(float)); /* [proc][row][metric] */
    float *f = malloc(c * W * K * sizeof(float)); /* forecast of row r+1 made at r */
    float *row = malloc(c * K * sizeof(float));
    float *frow = malloc(c * K * sizeof(float));
    float *res = malloc(W * K * sizeof(float));
    double *series = malloc(W * sizeof(double));
    double *scores = malloc(W * sizeof(double));
    float *lev = malloc(W * K * sizeof(float)); /* EW level of row r+B+1 */
    float *dist = malloc(W * sizeof(float));
    float *seas = calloc(W * K, sizeof(float)); /* seasonal distance of row r */
    int rc = PS_ENOMEM;
    if (!z || !f || !row || !frow || !res || !series || !scores || !lev || !dist || !seas) {
        snprintf(err, errlen, "out of memory activating %zu processors", c);
        goto out;
    }
    rc = PS_OK;
    for (size_t i = 0; i < c && !rc; i++) {
        uint32_t p = ids[i];
        const float *x = s->warm_x[p];
        rc = ps_baseline_set_from_history(s->baseline, p, W, x, s->warm_t[p]);
        for (size_t r = 0; r < W && !rc; r++)
            rc = ps_baseline_normalize(s->baseline, 1, &p, x + r * K, z + (i * W + r) * K);
        if (rc) snprintf(err, errlen, "baseline of processor %u: error %d", (unsigned)p, rc);
    }
    if (rc) goto out;

    /* LSTM: replay the rows, all c processors in one step per row. */
    if (s->lstm) {
        ps_forecaster_reset(s->lstm, c, ids);
        for (size_t r = 0; r < W && !rc; r++) {
            for (size_t i = 0; i < c; i++)
                memcpy(row + i * K, z + (i * W + r) * K, K * sizeof(float));
            if (ps_forecaster_step(s->lstm, c, ids, row, frow)) {
                snprintf(err, errlen, "LSTM replay failed: %s", ps_forecaster_error(s->lstm));
                rc = PS_EDEVICE;
            }
            for (size_t i = 0; i < c; i++)
                memcpy(f + (i * W + r) * K, frow + i * K, K * sizeof(float));
        }
        if (rc) goto out;
    } else {
        memset(f, 0, c * W * K * sizeof(float));
    }

    /* ARIMA: fit each metric on its normalized rows, then blend the
     * in-sample forecasts with the LSTM's. */
    float w = s->cfg.lstm_weight;
    for (size_t i = 0; i < c; i++) {
        uint32_t p = ids[i];
        for (size_t k = 0; k < K; k++) {
            for (size_t r = 0; r < W; r++) {
                res[r] = z[(i * W + r) * K + k];
                series[r] = res[r];
            }
            if (!s->arima) continue;
            uint32_t sid = p * (uint32_t)K + (uint32_t)k;
            ps_arima_model am;
            if (ps_arima_bank_fit(s->arima, sid, res, W, NULL) ||
                ps_arima_bank_get_model(s->arima, sid, &am) ||
                ps_arima_filter(&am, series, W, NULL, scores)) {
                snprintf(err, errlen, "ARIMA fit of processor %u metric %zu: %s", (unsigned)p, k,
                         ps_arima_bank_error(s->arima));
                rc = PS_EINVAL;
                goto out;
            }
            for (size_t r = 0; r < W; r++) {
                float *fr = f + (i * W + r) * K + k;
                float fa = isfinite(scores[r]) ? (float)scores[r] : res[r];
                *fr = w * *fr + (1 - w) * fa;
            }
        }
    }

    /* Healthy residual scale, covariance, and the tail of the scores. */
    for (size_t i = 0; i < c && !rc; i++) {
        uint32_t p = ids[i];
        size_t rows = W - B - 1;
        for (size_t r = B + 1; r < W; r++)
            for (size_t k = 0; k < K; k++)
                res[(r - B - 1) * K + k] = z[(i * W + r) * K + k] - f[(i * W + r - 1) * K + k];
        float *scale = s->res_scale + (size_t)p * K;
        for (size_t k = 0; k < K; k++) {
            float loc;
            ps_robust_loc_scale(res + k, rows, K, &loc, &scale[k]);
            if (!(scale[k] >= s->cfg.residual_floor)) scale[k] = s->cfg.residual_floor;
        }
        for (size_t r = 0; r < rows; r++)
            for (size_t k = 0; k < K; k++)
                res[r * K + k] /= scale[k];
        ps_rescov_set_from_history(s->cov, p, rows, res);
        /* The EW level runs over every row, so that after the burn-in it is
         * the level a tick would see; its spread over the scored rows is the
         * healthy one. */
        float *level = s->level + (size_t)p * K;
        float a = s->cfg.level_rate;
        memcpy(level, z + i * W * K, K * sizeof(float));
        for (size_t r = 1; r < W; r++) {
            for (size_t k = 0; k < K; k++)
                level[k] = a * z[(i * W + r) * K + k] + (1 - a) * level[k];
            if (r > B) memcpy(lev + (r - B - 1) * K, level, K * sizeof(float));
        }
        for (size_t k = 0; k < K; k++) {
            float *ls = s->level_scale + (size_t)p * K + k;
            ps_robust_loc_scale(lev + k, rows, K, s->level_loc + (size_t)p * K + k, ls);
            /* A flat warm-up must not turn the least later move into an
             * alarm; the residual's floor serves the same purpose. */
            if (!(*ls >= s->cfg.residual_floor)) *ls = s->cfg.residual_floor;
        }
        for (size_t k = 0; k < K && s->seasonal; k++) {
            uint32_t sid = p * (uint32_t)K + (uint32_t)k;
            if (ps_seasonal_set_from_history(s->seasonal, sid, z + i * W * K + k, W, K, dist)) {
                snprintf(err, errlen, "out of memory for the seasonal memory of processor %u",
                         (unsigned)p);
                rc = PS_ENOMEM;
                goto out;
            }
            for (size_t r = 0; r < W; r++)
                seas[r * K + k] = dist[r];
        }
        double sm = 0;
        for (size_t r = 0; r < rows; r++) {
            int32_t top;
            float share;
            double raw = raw_score(s, p, res + r * K, lev + r * K,
                                   s->seasonal ? seas + (r + B + 1) * K : NULL, 0, &top, &share);
            sm = r == 0 ? raw : s->cfg.smoothing * raw + (1 - s->cfg.smoothing) * sm;
            scores[r] = sm;
        }
        s->smooth[p] = sm;
        rc = ps_evt_init(&s->evt[p], scores, rows, &s->cfg.evt, err, errlen);
        memcpy(s->forecast + (size_t)p * K, f + (i * W + W - 1) * K, K * sizeof(float));
        s->ready[p] = 1;
        free(s->warm_x[p]);
        free(s->warm_t[p]);
        s->warm_x[p] = NULL;
        s->warm_t[p] = NULL;
    }
out:
    free(z);
    free(f);
    free(row);
    free(frow);
    free(res);
    free(series);
    free(scores);
    free(lev);
    free(dist);
    free(seas);
    return rc;
}

int ps_scorer_tick(ps_scorer *s, size_t n, const uint32_t *procs, const double *t, const float *x,
                   ps_score *out, char *err, size_t errlen)
{
    if (n == 0) return PS_OK;
    if (!procs || !x || !out) {
        snprintf(err, errlen, "NULL argument");
        return PS_EINVAL;
    }
    int rc = check_tick(s, n, procs, t, x, err, errlen);
    if (rc) return rc;
    size_t K = s->cfg.metrics;
    /* Warm-up buffers before any state changes, so that running out of
     * memory refuses the tick whole; an empty buffer is no state. */
    for (size_t i = 0; i < n; i++) {
        uint32_t p = procs[i];
        if (s->ready[p] || s->warm_x[p]) continue;
        s->warm_x[p] = malloc((size_t)s->warm_len[p] * K * sizeof(float));
        s->warm_t[p] = malloc((size_t)s->warm_len[p] * sizeof(double));
        if (!s->warm_x[p] || !s->warm_t[p]) {
            free(s->warm_x[p]);
            free(s->warm_t[p]);
            s->warm_x[p] = NULL;
            s->warm_t[p] = NULL;
            snprintf(err, errlen, "out of memory for the warm-up rows of processor %u",
                     (unsigned)p);
            return PS_ENOMEM;
        }
    }

    /* Ready processors: score with what was learned up to t-1, learn from
     * t if it was stable, then forecast t+1. */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t p = procs[i];
        double now = t ? t[i] : s->clock[p];
        s->clock[p] += 1;
        if (!s->ready[p]) {
            s->times[n - 1 - (i - m)] = now; /* warming rows fill from the end */
            continue;
        }
        s->ids[m] = p;
        s->times[m] = now;
        memcpy(s->x + m * K, x + i * K, K * sizeof(float));
        m++;
    }
    if (m) {
        ps_baseline_normalize(s->baseline, m, s->ids, s->x, s->z);
        ps_baseline_lateness(s->baseline, m, s->ids, s->times, s->late, NULL);
        size_t j = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t p = procs[i];
            if (!s->ready[p]) continue;
            ps_score *o = &out[i];
            const float *fc = s->forecast + (size_t)p * K;
            const float *scale = s->res_scale + (size_t)p * K;
            float *res = s->res + j * K;
            float *level = s->level + (size_t)p * K, a = s->cfg.level_rate;
            float *seas = s->seasonal ? s->seas + j * K : NULL;
            for (size_t k = 0; k < K; k++) {
                res[k] = (s->z[j * K + k] - fc[k]) / scale[k];
                level[k] = a * s->z[j * K + k] + (1 - a) * level[k];
                if (seas) seas[k] = ps_seasonal_step(s->seasonal, p * K + k, s->z[j * K + k]);
            }
            double raw =
                raw_score(s, p, res, level, seas, s->late[j], &o->top_metric, &o->top_share);
            double sm = s->cfg.smoothing * raw + (1 - s->cfg.smoothing) * s->smooth[p];
            s->smooth[p] = sm;
            o->score = (float)sm;
            /* Stability is judged against the processor's own healthy tail
             * even when a calibration on incidents gives the PFP. */
            double tail_pfp = ps_evt_pfp(&s->evt[p], sm);
            o->pfp = s->calibration.kind != PS_CALIB_NONE
                         ? ps_calibration_apply(&s->calibration, sm)
                         : tail_pfp;
            o->lateness = s->late[j];
            o->state = PS_PROC_SCORED;
            s->stable[j] = tail_pfp < s->cfg.unstable_pfp;
            ps_evt_update(&s->evt[p], sm, !s->stable[j]);
            j++;
        }
        ps_baseline_observe(s->baseline, m, s->ids, s->x, s->times, s->stable);
        ps_rescov_update(s->cov, m, s->ids, s->res, s->stable);
        rc = forecast_next(s, m, s->ids, s->z, s->next, err, errlen);
        if (rc) return rc;
        for (size_t i = 0; i < m; i++)
            memcpy(s->forecast + (size_t)s->ids[i] * K, s->next + i * K, K * sizeof(float));
    }

    /* Warming processors: keep the row; those completing now get activated,
     * grouped by warm-up length. */
    size_t c = 0, w = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t p = procs[i];
        if (s->ready[p]) continue;
        uint32_t r = s->warm_n[p]++;
        memcpy(s->warm_x[p] + (size_t)r * K, x + i * K, K * sizeof(float));
        s->warm_t[p][r] = s->times[n - 1 - w++];
        out[i] = (ps_score){.top_metric = -1, .state = PS_PROC_WARMING};
        if (s->warm_n[p] == s->warm_len[p]) s->ids[c++] = p;
    }
    while (c > 0) {
        uint32_t len = s->warm_len[s->ids[0]];
        size_t same = 0, rest = 0;
        for (size_t i = 0; i < c; i++)
            if (s->warm_len[s->ids[i]] == len)
                s->series[same++] = s->ids[i];
            else
                s->ids[rest++] = s->ids[i];
        char later[256]; /* the first failure's message is the one kept */
        int arc = rc ? activate(s, same, s->series, later, sizeof later)
                     : activate(s, same, s->series, err, errlen);
        /* A group that failed to activate starts its warm-up over: its
         * buffers are full, and the next row would not fit. */
        for (size_t i = 0; arc && i < same; i++) {
            uint32_t p = s->series[i];
            ps_scorer_forget(s, p);
            s->warm_len[p] = len;
        }
        if (!rc) rc = arc;
        c = rest;
    }
    return rc;
}
