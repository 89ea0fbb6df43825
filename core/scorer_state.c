/*
 * scorer_state.c - the complete state of one processor as bytes, and back
 * (see scorer.h and docs/state-file.md for the layout).
 *
 * A restored processor must produce bit-identical outputs to one that never
 * stopped, so every value a tick reads is written exactly (floats and
 * doubles by their bits), including rings in storage order: a sum over a
 * ring in another order would round differently.
 *
 * The bytes come from disk and are not trusted. An import runs in two
 * phases: decode() checks every section, including the baseline and
 * covariance snapshots (by importing them into one-processor scratch
 * objects, the only check their modules offer), and notes where each
 * section lies; only then does commit() change the scorer. Past the checks
 * commit() can fail only for memory or the device; it then forgets the
 * processor rather than leave it half restored.
 *
 * A warming processor's models have not been touched yet (activation sets
 * all of them from the kept rows), so its record is only its rows; it is
 * restored by forgetting the slot and putting the rows back.
 */
#include "bytes.h"
#include "error.h"
#include "scorer.h"
#include "scorer_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t record_magic[4] = {'P', 'S', 'P', 'S'};

enum {
    HEADER_BYTES = 52, /* magic .. clock, see docs/state-file.md */
    PART_LSTM = 1u << 0,
    PART_ARIMA = 1u << 1,
    PART_SEASONAL = 1u << 2,
    FLAG_READY = 1u << 0,
};

/* ---- the configuration fingerprint ---- */

/* FNV-1a over little-endian values: the same on every host. */
typedef struct hasher {
    uint64_t h;
} hasher;

static void h_bytes(hasher *h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h->h ^= p[i];
        h->h *= 0x100000001b3ull;
    }
}

static void h_u64(hasher *h, uint64_t v)
{
    uint8_t b[8];
    ps_put_u64(b, v);
    h_bytes(h, b, 8);
}

static void h_f32(hasher *h, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    h_u64(h, u);
}

static void h_f64(hasher *h, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    h_u64(h, u);
}

uint64_t ps_scorer_fingerprint_compute(const ps_scorer_config *c, const ps_model *m)
{
    hasher h = {0xcbf29ce484222325ull};
    h_u64(&h, PS_SCORER_STATE_VERSION);
    /* Not the processor count: a server may restart with room for more. */
    h_u64(&h, c->metrics);
    h_u64(&h, c->warmup);
    h_u64(&h, c->burn_in);
    h_f32(&h, c->lstm_weight);
    h_u64(&h, (uint64_t)(int64_t)c->arima_p);
    h_u64(&h, (uint64_t)(int64_t)c->arima_d);
    h_u64(&h, (uint64_t)(int64_t)c->arima_q);
    h_f32(&h, c->residual_floor);
    h_f32(&h, c->smoothing);
    h_f32(&h, c->lateness_weight);
    h_f32(&h, c->level_weight);
    h_f32(&h, c->level_rate);
    h_f32(&h, c->seasonal_weight);
    h_u64(&h, c->seasonal.min_period);
    h_u64(&h, c->seasonal.max_period);
    h_u64(&h, c->seasonal.cycles);
    h_f32(&h, c->seasonal.min_acf);
    h_f32(&h, c->seasonal.rate);
    h_f32(&h, c->seasonal.floor);
    h_f32(&h, c->drift_rate);
    h_f32(&h, c->unstable_pfp);
    const ps_evt_options *e = &c->evt;
    h_f64(&h, e->level);
    h_u64(&h, e->min_tail);
    h_u64(&h, e->window);
    h_u64(&h, e->max_excess);
    h_u64(&h, e->refit_every);
    h_f64(&h, e->horizon);
    h_f64(&h, e->floor_abs);
    h_f64(&h, e->floor_rel);
    h_f64(&h, e->gpd.xi_min);
    h_f64(&h, e->gpd.xi_max);
    h_u64(&h, e->gpd.min_mle);
    h_f64(&h, e->gpd.sigma_floor);

    const ps_lstm_shape *s = &m->shape;
    h_u64(&h, (uint64_t)(int64_t)s->input);
    h_u64(&h, (uint64_t)(int64_t)s->hidden);
    h_u64(&h, (uint64_t)(int64_t)s->layers);
    h_u64(&h, (uint64_t)(int64_t)s->output);
    size_t np = m->params ? ps_lstm_param_count(s) : 0;
    for (size_t i = 0; i < np; i++)
        h_f32(&h, m->params[i]);
    h_u64(&h, (uint64_t)m->norm);
    h_f32(&h, m->clip);
    for (int32_t i = 0; m->norm == PS_NORM_FIXED && i < s->input; i++) {
        h_f32(&h, m->norm_loc ? m->norm_loc[i] : 0);
        h_f32(&h, m->norm_scale ? m->norm_scale[i] : 0);
    }
    const ps_calibration *cal = &m->calibration;
    h_u64(&h, (uint64_t)cal->kind);
    h_f64(&h, cal->a);
    h_f64(&h, cal->b);
    uint32_t nb = cal->count < PS_CALIB_MAX_BREAKPOINTS ? cal->count : PS_CALIB_MAX_BREAKPOINTS;
    h_u64(&h, nb);
    for (uint32_t i = 0; i < nb; i++) {
        h_f64(&h, cal->score[i]);
        h_f64(&h, cal->prob[i]);
    }
    return h.h;
}

uint64_t ps_scorer_fingerprint(const ps_scorer *s)
{
    return s->fingerprint;
}

ps_proc_state ps_scorer_proc_state(const ps_scorer *s, uint32_t proc)
{
    return proc < s->cfg.processors && s->ready[proc] ? PS_PROC_SCORED : PS_PROC_WARMING;
}

/* ---- forgetting ---- */

int ps_scorer_forget(ps_scorer *s, uint32_t proc)
{
    if (!s || proc >= s->cfg.processors) return PS_EINVAL;
    size_t K = s->cfg.metrics, o = (size_t)proc * K;
    free(s->warm_x[proc]);
    free(s->warm_t[proc]);
    s->warm_x[proc] = NULL;
    s->warm_t[proc] = NULL;
    s->warm_n[proc] = 0;
    s->warm_len[proc] = s->cfg.warmup;
    s->ready[proc] = 0;
    s->clock[proc] = 0;
    s->smooth[proc] = 0;
    memset(s->forecast + o, 0, K * sizeof(float));
    memset(s->res_scale + o, 0, K * sizeof(float));
    memset(s->level + o, 0, K * sizeof(float));
    memset(s->level_loc + o, 0, K * sizeof(float));
    memset(s->level_scale + o, 0, K * sizeof(float));
    ps_evt_free(&s->evt[proc]);
    int rc = ps_baseline_reset(s->baseline, 1, &proc);
    int r2 = ps_rescov_reset(s->cov, 1, &proc);
    if (!rc) rc = r2;
    if (s->lstm) {
        r2 = ps_forecaster_reset(s->lstm, 1, &proc);
        if (!rc) rc = r2;
    }
    for (size_t k = 0; k < K; k++) {
        uint32_t sid = proc * (uint32_t)K + (uint32_t)k;
        if (s->arima) {
            r2 = ps_arima_bank_reset(s->arima, sid);
            if (!rc) rc = r2;
        }
        if (s->seasonal) ps_seasonal_reset(s->seasonal, sid);
    }
    return rc;
}

/* ---- sizes ---- */

static uint32_t parts_of(const ps_scorer *s)
{
    return (s->lstm ? PART_LSTM : 0) | (s->arima ? PART_ARIMA : 0) |
           (s->seasonal ? PART_SEASONAL : 0);
}

static size_t lstm_floats(const ps_scorer *s)
{
    return s->lstm ? ps_forecaster_state_floats(s->lstm) : 0;
}

size_t ps_scorer_state_size(const ps_scorer *s, uint32_t proc)
{
    if (!s || proc >= s->cfg.processors) return 0;
    size_t K = s->cfg.metrics, n = HEADER_BYTES;
    if (!s->ready[proc]) return n + (size_t)s->warm_n[proc] * (K * 4 + 8);
    n += 5 * K * 4 + 8;
    n += 4 + ps_baseline_state_len(s->baseline) * 8;
    n += 4 + ps_rescov_state_len(s->cov) * 8;
    n += lstm_floats(s) * 4;
    for (size_t k = 0; k < K; k++) {
        uint32_t sid = proc * (uint32_t)K + (uint32_t)k;
        if (s->arima) n += 4 + ps_arima_bank_state_len(s->arima, sid);
        if (s->seasonal) n += 4 + ps_seasonal_state_size(s->seasonal, sid);
    }
    n += 4 + ps_evt_state_size(&s->evt[proc]);
    return n;
}

/* ---- export ---- */

static void w_floats(ps_wcur *w, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ps_w_f32(w, v[i]);
}

static void w_doubles(ps_wcur *w, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ps_w_f64(w, v[i]);
}

/* A length-prefixed blob its module writes in place. */
static uint8_t *w_blob(ps_wcur *w, size_t n)
{
    ps_w_u32(w, (uint32_t)n);
    return ps_wcur_take(w, n);
}

/* The sections only a ready processor has. */
static int export_models(const ps_scorer *s, uint32_t p, ps_wcur *w)
{
    size_t K = s->cfg.metrics, o = (size_t)p * K;
    w_floats(w, s->forecast + o, K);
    w_floats(w, s->res_scale + o, K);
    w_floats(w, s->level + o, K);
    w_floats(w, s->level_loc + o, K);
    w_floats(w, s->level_scale + o, K);
    ps_w_f64(w, s->smooth[p]);

    size_t nb = ps_baseline_state_len(s->baseline), nc = ps_rescov_state_len(s->cov);
    size_t nl = lstm_floats(s), nd = nb > nc ? nb : nc;
    double *d = malloc((nd ? nd : 1) * sizeof(double));
    float *f = malloc((nl ? nl : 1) * sizeof(float));
    int rc = d && f ? PS_OK : PS_ENOMEM;
    if (!rc) rc = ps_baseline_export(s->baseline, p, d);
    if (!rc) {
        ps_w_u32(w, (uint32_t)nb);
        w_doubles(w, d, nb);
        rc = ps_rescov_export(s->cov, p, d);
    }
    if (!rc) {
        ps_w_u32(w, (uint32_t)nc);
        w_doubles(w, d, nc);
        if (s->lstm) rc = ps_forecaster_state_get(s->lstm, p, f);
    }
    if (!rc) w_floats(w, f, nl);
    free(d);
    free(f);
    for (size_t k = 0; k < K && !rc && s->arima; k++) {
        uint32_t sid = p * (uint32_t)K + (uint32_t)k;
        size_t n = ps_arima_bank_state_len(s->arima, sid);
        uint8_t *b = w_blob(w, n);
        rc = b ? ps_arima_bank_state_export(s->arima, sid, b, n) : PS_EINVAL;
    }
    if (rc) return rc;
    size_t ne = ps_evt_state_size(&s->evt[p]);
    uint8_t *b = w_blob(w, ne);
    rc = b ? ps_evt_state_export(&s->evt[p], b, ne) : PS_EINVAL;
    for (size_t k = 0; k < K && !rc && s->seasonal; k++) {
        uint32_t sid = p * (uint32_t)K + (uint32_t)k;
        size_t n = ps_seasonal_state_size(s->seasonal, sid);
        b = w_blob(w, n);
        rc = b ? ps_seasonal_state_export(s->seasonal, sid, b, n) : PS_EINVAL;
    }
    return rc;
}

int ps_scorer_state_export(const ps_scorer *s, uint32_t proc, uint8_t *buf, size_t len)
{
    if (!s || proc >= s->cfg.processors || !buf) return PS_EINVAL;
    size_t size = ps_scorer_state_size(s, proc);
    if (len < size) return PS_EINVAL;
    size_t K = s->cfg.metrics;
    ps_wcur w = ps_wcur_init(buf, size);
    ps_w_bytes(&w, record_magic, 4);
    ps_w_u32(&w, PS_SCORER_STATE_VERSION);
    ps_w_u64(&w, s->fingerprint);
    ps_w_u32(&w, (uint32_t)K);
    ps_w_u32(&w, s->cfg.warmup);
    ps_w_u8(&w, (uint8_t)s->cfg.arima_p);
    ps_w_u8(&w, (uint8_t)s->cfg.arima_d);
    ps_w_u8(&w, (uint8_t)s->cfg.arima_q);
    ps_w_u8(&w, (uint8_t)parts_of(s));
    ps_w_u32(&w, (uint32_t)lstm_floats(s));
    ps_w_u32(&w, s->ready[proc] ? FLAG_READY : 0);
    ps_w_u32(&w, s->warm_len[proc]);
    ps_w_u32(&w, s->warm_n[proc]);
    ps_w_f64(&w, s->clock[proc]);
    int rc = PS_OK;
    if (s->ready[proc]) {
        rc = export_models(s, proc, &w);
    } else {
        w_floats(&w, s->warm_x[proc], (size_t)s->warm_n[proc] * K);
        w_doubles(&w, s->warm_t[proc], s->warm_n[proc]);
    }
    if (!rc && (w.over || w.pos != size)) rc = PS_EINVAL; /* a sizing bug */
    return rc;
}

/* ---- decoding and checking ---- */

/* Where the sections of a checked record lie, and what was decoded. */
typedef struct record {
    int ready;
    uint32_t warm_len, warm_n;
    double clock;
    size_t rows_at;   /* warming: warm_n x K floats, then warm_n doubles */
    size_t floats_at; /* ready: forecast .. level_scale, 5 x K floats */
    double smooth;
    size_t base_at, cov_at, lstm_at; /* doubles, doubles, floats */
    size_t arima_at[PS_RESCOV_MAX_METRICS], arima_len[PS_RESCOV_MAX_METRICS];
    size_t seas_at[PS_RESCOV_MAX_METRICS], seas_len[PS_RESCOV_MAX_METRICS];
    ps_evt evt; /* decoded, owned by the record until committed */
} record;

static int all_finite_f32(const uint8_t *p, size_t n, float lo, size_t *bad)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = ps_get_u32(p + 4 * i);
        float f;
        memcpy(&f, &u, sizeof f);
        if (!isfinite(f) || !(f >= lo)) {
            *bad = i;
            return 0;
        }
    }
    return 1;
}

static int all_finite_f64(const uint8_t *p, size_t n, size_t *bad)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t u = ps_get_u64(p + 8 * i);
        double d;
        memcpy(&d, &u, sizeof d);
        if (!isfinite(d)) {
            *bad = i;
            return 0;
        }
    }
    return 1;
}

static void read_doubles(const uint8_t *p, size_t n, double *out)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t u = ps_get_u64(p + 8 * i);
        memcpy(&out[i], &u, sizeof u);
    }
}

static void read_floats(const uint8_t *p, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = ps_get_u32(p + 4 * i);
        memcpy(&out[i], &u, sizeof u);
    }
}

/* Take n bytes of section `what`, or fail naming it and where. */
#define TAKE(r, n, what)                                                                           \
    do {                                                                                           \
        if ((n) > ps_rcur_left(r))                                                                 \
            return ps_fail(err, errlen, PS_EINVAL,                                                 \
                           "processor state truncated in %s: %zu bytes needed at byte %zu, %zu "   \
                           "there",                                                                \
                           what, (size_t)(n), (r)->pos, ps_rcur_left(r));                          \
    } while (0)

static int decode_header(const ps_scorer *s, ps_rcur *r, record *rec, char *err, size_t errlen)
{
    const ps_scorer_config *c = &s->cfg;
    TAKE(r, HEADER_BYTES, "the header");
    const uint8_t *magic = ps_rcur_take(r, 4);
    if (memcmp(magic, record_magic, 4) != 0)
        return ps_fail(err, errlen, PS_EINVAL, "not a processor state (bad magic)");
    uint32_t version = ps_r_u32(r);
    uint64_t fp = ps_r_u64(r);
    uint32_t K = ps_r_u32(r), warmup = ps_r_u32(r);
    int p = ps_r_u8(r), d = ps_r_u8(r), q = ps_r_u8(r);
    uint32_t parts = ps_r_u8(r), nl = ps_r_u32(r), flags = ps_r_u32(r);
    rec->warm_len = ps_r_u32(r);
    rec->warm_n = ps_r_u32(r);
    rec->clock = ps_r_f64(r);
    if (version != PS_SCORER_STATE_VERSION)
        return ps_fail(err, errlen, PS_EINVAL, "processor state version %u, this build reads %d",
                       (unsigned)version, PS_SCORER_STATE_VERSION);
    if (K != c->metrics)
        return ps_fail(err, errlen, PS_EINVAL, "snapshot has %u metrics, the scorer %zu",
                       (unsigned)K, c->metrics);
    if (warmup != c->warmup)
        return ps_fail(err, errlen, PS_EINVAL, "snapshot has a warm-up of %u, the scorer %u",
                       (unsigned)warmup, (unsigned)c->warmup);
    if (p != c->arima_p || d != c->arima_d || q != c->arima_q)
        return ps_fail(err, errlen, PS_EINVAL,
                       "snapshot has ARIMA(%d,%d,%d), the scorer ARIMA(%d,%d,%d)", p, d, q,
                       c->arima_p, c->arima_d, c->arima_q);
    if (parts != parts_of(s) || nl != lstm_floats(s))
        return ps_fail(err, errlen, PS_EINVAL,
                       "snapshot has models %#x with %u LSTM values, the scorer %#x with %zu "
                       "(lstm_weight or seasonal_weight or the model differ)",
                       (unsigned)parts, (unsigned)nl, (unsigned)parts_of(s), lstm_floats(s));
    if (fp != s->fingerprint)
        return ps_fail(err, errlen, PS_EINVAL,
                       "snapshot taken under another configuration or model (fingerprint "
                       "%016llx, the scorer's %016llx)",
                       (unsigned long long)fp, (unsigned long long)s->fingerprint);
    if (flags > FLAG_READY)
        return ps_fail(err, errlen, PS_EINVAL, "processor state: unknown flags %#x",
                       (unsigned)flags);
    rec->ready = (flags & FLAG_READY) != 0;
    if (rec->warm_len < 16 || rec->warm_len > c->warmup || rec->warm_len < c->burn_in + 8)
        return ps_fail(err, errlen, PS_EINVAL, "processor state: warm-up of %u outside 16..%u",
                       (unsigned)rec->warm_len, (unsigned)c->warmup);
    if (rec->ready ? rec->warm_n != rec->warm_len : rec->warm_n >= rec->warm_len)
        return ps_fail(err, errlen, PS_EINVAL, "processor state: %u of %u warm-up rows while %s",
                       (unsigned)rec->warm_n, (unsigned)rec->warm_len,
                       rec->ready ? "ready" : "warming");
    if (!isfinite(rec->clock) || !(rec->clock >= 0))
        return ps_fail(err, errlen, PS_EINVAL, "processor state: clock %g", rec->clock);
    return PS_OK;
}

static int decode_warming(const ps_scorer *s, ps_rcur *r, record *rec, char *err, size_t errlen)
{
    size_t K = s->cfg.metrics, n = rec->warm_n, bad;
    /* warm_n < warm_len <= warmup, and warmup * K * 8 fits: check_config. */
    TAKE(r, n * K * 4 + n * 8, "the warm-up rows");
    rec->rows_at = r->pos;
    const uint8_t *x = ps_rcur_take(r, n * K * 4), *t = ps_rcur_take(r, n * 8);
    if (!all_finite_f32(x, n * K, -INFINITY, &bad))
        return ps_fail(err, errlen, PS_EINVAL, "warm-up row %zu metric %zu is not finite", bad / K,
                       bad % K);
    if (!all_finite_f64(t, n, &bad))
        return ps_fail(err, errlen, PS_EINVAL, "warm-up row %zu: time is not finite", bad);
    return PS_OK;
}

/* A section of n doubles that `check` (a module's import into scratch) judges. */
static int decode_doubles(ps_rcur *r, size_t want, const char *what, size_t *at, char *err,
                          size_t errlen)
{
    TAKE(r, 4, what);
    size_t n = ps_r_u32(r);
    if (n != want)
        return ps_fail(err, errlen, PS_EINVAL, "%s has %zu values, the scorer's %zu", what, n,
                       want);
    TAKE(r, n * 8, what);
    *at = r->pos;
    ps_rcur_take(r, n * 8);
    return PS_OK;
}

static int decode_blob(ps_rcur *r, const char *what, size_t k, size_t *at, size_t *len, char *err,
                       size_t errlen)
{
    TAKE(r, 4, what);
    *len = ps_r_u32(r);
    if (*len > ps_rcur_left(r))
        return ps_fail(err, errlen, PS_EINVAL,
                       "processor state truncated in %s %zu: %zu bytes declared at byte %zu, %zu "
                       "there",
                       what, k, *len, r->pos, ps_rcur_left(r));
    *at = r->pos;
    ps_rcur_take(r, *len);
    return PS_OK;
}

/* The baseline and covariance snapshots, judged by their own importers. */
static int check_stats(const ps_scorer *s, const uint8_t *buf, const record *rec, char *err,
                       size_t errlen)
{
    size_t K = s->cfg.metrics;
    size_t nb = ps_baseline_state_len(s->baseline), nc = ps_rescov_state_len(s->cov);
    double *d = malloc((nb > nc ? nb : nc) * sizeof(double));
    ps_baseline_config bc = ps_baseline_get_config(s->baseline);
    char e2[160];
    ps_baseline *b = ps_baseline_create(1, K, &bc, e2, sizeof e2);
    ps_rescov *c = ps_rescov_create(1, K, NULL, e2, sizeof e2);
    int rc = PS_ENOMEM;
    if (!d || !b || !c) {
        ps_fail(err, errlen, rc, "out of memory checking a processor state");
        goto out;
    }
    read_doubles(buf + rec->base_at, nb, d);
    rc = ps_baseline_import(b, 0, d);
    if (rc) {
        ps_fail(err, errlen, PS_EINVAL, "processor state: the baseline is invalid (error %d)", rc);
        rc = PS_EINVAL;
        goto out;
    }
    read_doubles(buf + rec->cov_at, nc, d);
    rc = ps_rescov_import(c, 0, d);
    if (rc) {
        ps_fail(err, errlen, PS_EINVAL,
                "processor state: the residual covariance is invalid (error %d)", rc);
        rc = PS_EINVAL;
    }
out:
    free(d);
    ps_baseline_free(b);
    ps_rescov_free(c);
    return rc;
}

static int decode_ready(const ps_scorer *s, const uint8_t *buf, ps_rcur *r, record *rec, char *err,
                        size_t errlen)
{
    const ps_scorer_config *c = &s->cfg;
    size_t K = c->metrics, bad;
    static const char *const names[5] = {"forecast", "residual scale", "level", "level location",
                                         "level scale"};
    TAKE(r, 5 * K * 4 + 8, "the per-metric values");
    rec->floats_at = r->pos;
    for (int a = 0; a < 5; a++) {
        /* Scales are divisors, floored when they were set. */
        float lo = a == 1 || a == 4 ? c->residual_floor : -INFINITY;
        if (!all_finite_f32(ps_rcur_take(r, K * 4), K, lo, &bad))
            return ps_fail(err, errlen, PS_EINVAL,
                           "processor state: %s of metric %zu is not finite%s", names[a], bad,
                           lo > 0 ? " or below the floor" : "");
    }
    rec->smooth = ps_r_f64(r);
    if (!isfinite(rec->smooth))
        return ps_fail(err, errlen, PS_EINVAL, "processor state: smoothed score %g", rec->smooth);
    int rc = decode_doubles(r, ps_baseline_state_len(s->baseline), "the baseline", &rec->base_at,
                            err, errlen);
    if (!rc)
        rc = decode_doubles(r, ps_rescov_state_len(s->cov), "the residual covariance", &rec->cov_at,
                            err, errlen);
    if (rc) return rc;
    size_t nl = lstm_floats(s);
    TAKE(r, nl * 4, "the LSTM state");
    rec->lstm_at = r->pos;
    if (!all_finite_f32(ps_rcur_take(r, nl * 4), nl, -INFINITY, &bad))
        return ps_fail(err, errlen, PS_EINVAL,
                       "processor state: LSTM state value %zu is not finite", bad);
    for (size_t k = 0; k < K && s->arima; k++) {
        rc = decode_blob(r, "ARIMA state of metric", k, &rec->arima_at[k], &rec->arima_len[k], err,
                         errlen);
        if (rc) return rc;
        char e2[200];
        if (ps_arima_bank_state_check(s->arima, buf + rec->arima_at[k], rec->arima_len[k], e2,
                                      sizeof e2))
            return ps_fail(err, errlen, PS_EINVAL, "metric %zu: %s", k, e2);
    }
    size_t evt_at, evt_len;
    rc = decode_blob(r, "EVT state", 0, &evt_at, &evt_len, err, errlen);
    if (rc) return rc;
    rc = ps_evt_state_import(&rec->evt, &c->evt, buf + evt_at, evt_len, err, errlen);
    if (rc) return rc;
    for (size_t k = 0; k < K && s->seasonal; k++) {
        rc = decode_blob(r, "seasonal state of metric", k, &rec->seas_at[k], &rec->seas_len[k], err,
                         errlen);
        char e2[200];
        if (!rc && ps_seasonal_state_check(s->seasonal, buf + rec->seas_at[k], rec->seas_len[k], e2,
                                           sizeof e2))
            rc = ps_fail(err, errlen, PS_EINVAL, "metric %zu: %s", k, e2);
        if (rc) break;
    }
    if (!rc) rc = check_stats(s, buf, rec, err, errlen);
    if (rc) ps_evt_free(&rec->evt);
    return rc;
}

/* Check a whole record; on success rec owns a decoded EVT model. */
static int decode(const ps_scorer *s, const uint8_t *buf, size_t len, record *rec, char *err,
                  size_t errlen)
{
    memset(rec, 0, sizeof *rec);
    if (!s || (!buf && len)) return ps_fail(err, errlen, PS_EINVAL, "NULL argument");
    ps_rcur r = ps_rcur_init(buf, len);
    int rc = decode_header(s, &r, rec, err, errlen);
    if (!rc)
        rc = rec->ready ? decode_ready(s, buf, &r, rec, err, errlen)
                        : decode_warming(s, &r, rec, err, errlen);
    if (!rc && ps_rcur_left(&r)) {
        if (rec->ready) ps_evt_free(&rec->evt);
        rc = ps_fail(err, errlen, PS_EINVAL, "processor state: %zu bytes left over after byte %zu",
                     ps_rcur_left(&r), r.pos);
    }
    return rc;
}

int ps_scorer_state_check(const ps_scorer *s, const uint8_t *buf, size_t len, char *err,
                          size_t errlen)
{
    record *rec = malloc(sizeof *rec);
    if (!rec) return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    int rc = decode(s, buf, len, rec, err, errlen);
    if (!rc) ps_evt_free(&rec->evt);
    free(rec);
    return rc;
}

/* ---- commit ---- */

static int commit_warming(ps_scorer *s, uint32_t p, const uint8_t *buf, const record *rec,
                          char *err, size_t errlen)
{
    size_t K = s->cfg.metrics, n = rec->warm_n;
    float *x = NULL;
    double *t = NULL;
    if (n > 0) {
        /* Sized for the whole warm-up, as the tick allocates them. */
        x = malloc((size_t)rec->warm_len * K * sizeof(float));
        t = malloc((size_t)rec->warm_len * sizeof(double));
        if (!x || !t) {
            free(x);
            free(t);
            return ps_fail(err, errlen, PS_ENOMEM, "out of memory for the warm-up rows");
        }
        read_floats(buf + rec->rows_at, n * K, x);
        read_doubles(buf + rec->rows_at + n * K * 4, n, t);
    }
    int rc = ps_scorer_forget(s, p);
    if (rc) {
        free(x);
        free(t);
        return ps_fail(err, errlen, rc, "processor %u: resetting its models failed", (unsigned)p);
    }
    s->warm_x[p] = x;
    s->warm_t[p] = t;
    s->warm_n[p] = rec->warm_n;
    s->warm_len[p] = rec->warm_len;
    s->clock[p] = rec->clock;
    return PS_OK;
}

/* Past decode(): only memory or the device can fail here. */
static int commit_models(ps_scorer *s, uint32_t p, const uint8_t *buf, record *rec, char *err,
                         size_t errlen)
{
    size_t K = s->cfg.metrics, o = (size_t)p * K;
    int rc = PS_OK;
    if (s->lstm) {
        size_t nl = lstm_floats(s);
        float *f = malloc((nl ? nl : 1) * sizeof(float));
        if (!f) return ps_fail(err, errlen, PS_ENOMEM, "out of memory restoring the LSTM state");
        read_floats(buf + rec->lstm_at, nl, f);
        rc = ps_forecaster_state_set(s->lstm, p, f);
        free(f);
        if (rc)
            return ps_fail(err, errlen, rc, "LSTM state refused: %s", ps_forecaster_error(s->lstm));
    }
    for (size_t k = 0; k < K && !rc; k++) {
        uint32_t sid = p * (uint32_t)K + (uint32_t)k;
        if (s->arima)
            rc = ps_arima_bank_state_import(s->arima, sid, buf + rec->arima_at[k],
                                            rec->arima_len[k], err, errlen);
        if (!rc && s->seasonal)
            rc = ps_seasonal_state_import(s->seasonal, sid, buf + rec->seas_at[k], rec->seas_len[k],
                                          err, errlen);
    }
    if (rc) return rc;
    size_t nb = ps_baseline_state_len(s->baseline), nc = ps_rescov_state_len(s->cov);
    double *d = malloc((nb > nc ? nb : nc) * sizeof(double));
    if (!d) return ps_fail(err, errlen, PS_ENOMEM, "out of memory restoring the baseline");
    read_doubles(buf + rec->base_at, nb, d);
    rc = ps_baseline_import(s->baseline, p, d);
    if (!rc) {
        read_doubles(buf + rec->cov_at, nc, d);
        rc = ps_rescov_import(s->cov, p, d);
    }
    free(d);
    if (rc) return ps_fail(err, errlen, rc, "baseline or covariance refused after its check");

    const uint8_t *fl = buf + rec->floats_at;
    float *dst[5] = {s->forecast + o, s->res_scale + o, s->level + o, s->level_loc + o,
                     s->level_scale + o};
    for (int a = 0; a < 5; a++)
        read_floats(fl + (size_t)a * K * 4, K, dst[a]);
    s->smooth[p] = rec->smooth;
    ps_evt_free(&s->evt[p]);
    s->evt[p] = rec->evt;
    memset(&rec->evt, 0, sizeof rec->evt);
    free(s->warm_x[p]);
    free(s->warm_t[p]);
    s->warm_x[p] = NULL;
    s->warm_t[p] = NULL;
    s->warm_n[p] = rec->warm_n;
    s->warm_len[p] = rec->warm_len;
    s->clock[p] = rec->clock;
    s->ready[p] = 1;
    return PS_OK;
}

/*
 * A commit that failed part way may have installed some models: the
 * processor starts over rather than run on a mixture.
 */
static int commit_ready(ps_scorer *s, uint32_t p, const uint8_t *buf, record *rec, char *err,
                        size_t errlen)
{
    int rc = commit_models(s, p, buf, rec, err, errlen);
    if (rc) ps_scorer_forget(s, p);
    return rc;
}

int ps_scorer_state_import(ps_scorer *s, uint32_t proc, const uint8_t *buf, size_t len, char *err,
                           size_t errlen)
{
    if (!s || proc >= s->cfg.processors)
        return ps_fail(err, errlen, PS_EINVAL, "processor %u out of range", (unsigned)proc);
    record *rec = malloc(sizeof *rec);
    if (!rec) return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    int rc = decode(s, buf, len, rec, err, errlen);
    if (!rc) {
        rc = rec->ready ? commit_ready(s, proc, buf, rec, err, errlen)
                        : commit_warming(s, proc, buf, rec, err, errlen);
        if (rec->ready) ps_evt_free(&rec->evt); /* still ours if the commit failed */
    }
    free(rec);
    return rc;
}
