/*
 * protocol.c - names, buffers and the encoders of the wire protocol
 * (docs/protocol.md); the decoders live in protocol_decode.c.
 *
 * Encoding goes through msgpack-c's packer, whose write callback appends to
 * our ps_buf, so every header is msgpack-c's own choice of the shortest
 * form. The float blocks (metrics, score, pfp) are bins the packer only
 * frames: their bodies are written here, little-endian by construction, so
 * that the bytes on the wire do not depend on the host.
 *
 * An encoder checks what it is given with the rules the decoder applies
 * (bounds, finite numbers, distinct ids), so a message it writes is one the
 * other side accepts; only out-of-memory and a message over
 * PS_PROTO_MAX_MESSAGE remain as failures after the checks.
 */
#include "protocol_internal.h"

#include "core/error.h"

#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- names ---------------------------------------------------------------- */

static const char *const code_names[PS_PROTO_NCODES] = {
    "ok",         "bad_request", "version",     "unknown_op", "too_large",
    "k_mismatch", "busy",        "unavailable", "internal",
};

const char *ps_proto_code_name(int code)
{
    return code >= 0 && code < PS_PROTO_NCODES ? code_names[code] : "unknown";
}

const char *ps_proto_op_name(int op)
{
    switch (op) {
    case PS_PROTO_OP_SCORE:
        return "score";
    case PS_PROTO_OP_HEALTH:
        return "health";
    case PS_PROTO_OP_INFO:
        return "info";
    case PS_PROTO_OP_ERROR:
        return "error";
    case PS_PROTO_OP_PUB:
        return "pub";
    case PS_PROTO_OP_LATEST:
        return "latest";
    default:
        return "";
    }
}

static const char *const state_names[PS_PROTO_NSTATES] = {
    "warming_up", "scored", "stale", "duplicate", "rejected", "unknown",
};

const char *ps_proto_state_name(int state)
{
    return state >= 0 && state < PS_PROTO_NSTATES ? state_names[state] : "unknown";
}

const char *ps_proto_status_name(int status)
{
    switch (status) {
    case PS_PROTO_STATUS_OK:
        return "ok";
    case PS_PROTO_STATUS_STARTING:
        return "starting";
    case PS_PROTO_STATUS_STOPPING:
        return "stopping";
    default:
        return "unknown";
    }
}

/* ---- shared checks -------------------------------------------------------- */

const char *psp_not_finite(double x)
{
    if (isnan(x)) return "NaN";
    if (isinf(x)) return "infinite";
    return NULL;
}

static int cmp_pair(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
    return (x[1] > y[1]) - (x[1] < y[1]);
}

int psp_check_distinct(const uint64_t *ids, size_t n, uint64_t *scratch, char *err, size_t errlen)
{
    /* Clients usually send ids in order, which proves them distinct in one
     * pass; otherwise sort (id, index) pairs: O(n log n) whatever the ids,
     * where a hash table could be driven quadratic by chosen ids. */
    size_t i = 1;
    while (i < n && ids[i - 1] < ids[i])
        i++;
    if (i >= n) return PS_PROTO_OK;
    for (i = 0; i < n; i++) {
        scratch[2 * i] = ids[i];
        scratch[2 * i + 1] = i;
    }
    qsort(scratch, n, 2 * sizeof *scratch, cmp_pair);
    /* Report the repeat a left-to-right reader meets first: the smallest
     * second index among the groups of equal ids. */
    size_t best_first = 0, best_second = SIZE_MAX;
    for (i = 1; i < n; i++) {
        if (scratch[2 * i] == scratch[2 * (i - 1)] &&
            (i < 2 || scratch[2 * (i - 2)] != scratch[2 * i]) && scratch[2 * i + 1] < best_second) {
            best_first = (size_t)scratch[2 * (i - 1) + 1];
            best_second = (size_t)scratch[2 * i + 1];
        }
    }
    if (best_second == SIZE_MAX) return PS_PROTO_OK;
    return ps_fail(err, errlen, PS_PROTO_E_BAD_REQUEST,
                   "ids[%zu] repeats ids[%zu] (processor %llu): each processor may appear once "
                   "per request",
                   best_second, best_first, (unsigned long long)ids[best_first]);
}

void psp_put_f32le(uint8_t *p, float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(u >> (8 * i));
}

void psp_put_f64le(uint8_t *p, double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(u >> (8 * i));
}

float psp_get_f32le(const uint8_t *p)
{
    uint32_t u = 0;
    for (int i = 0; i < 4; i++)
        u |= (uint32_t)p[i] << (8 * i);
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

double psp_get_f64le(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u |= (uint64_t)p[i] << (8 * i);
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* ---- the output buffer ---------------------------------------------------- */

void ps_buf_free(ps_buf *b)
{
    if (!b) return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}

/* Room for n more bytes at b->data + b->len; NULL (and b->failed) if none. */
static uint8_t *buf_grow(ps_buf *b, size_t n)
{
    if (b->failed) return NULL;
    if (n > b->cap - b->len) {
        if (n > SIZE_MAX / 2 - b->len) {
            b->failed = true;
            return NULL;
        }
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n)
            cap *= 2;
        uint8_t *p = realloc(b->data, cap);
        if (!p) {
            b->failed = true;
            return NULL;
        }
        b->data = p;
        b->cap = cap;
    }
    uint8_t *at = b->data + b->len;
    b->len += n;
    return at;
}

static int buf_write(void *data, const char *src, size_t n)
{
    uint8_t *at = buf_grow(data, n);
    if (!at) return -1;
    memcpy(at, src, n);
    return 0;
}

/* ---- encoding helpers ----------------------------------------------------- */

/* The packer's results are not checked call by call: a failed write marks
 * the buffer, and enc_finish looks once at the end. */
typedef struct enc {
    msgpack_packer pk;
    ps_buf *b;
} enc;

static void enc_start(enc *e, ps_buf *b)
{
    b->len = 0;
    b->failed = false;
    e->b = b;
    msgpack_packer_init(&e->pk, b, buf_write);
}

static int enc_finish(enc *e, char *err, size_t errlen)
{
    if (e->b->failed) {
        e->b->len = 0;
        return ps_fail(err, errlen, PS_PROTO_E_INTERNAL, "out of memory encoding a message");
    }
    if (e->b->len > PS_PROTO_MAX_MESSAGE) {
        size_t len = e->b->len;
        e->b->len = 0;
        return ps_fail(err, errlen, PS_PROTO_E_TOO_LARGE,
                       "the message would be %zu bytes (at most %zu)", len,
                       (size_t)PS_PROTO_MAX_MESSAGE);
    }
    return PS_PROTO_OK;
}

static void put_key(enc *e, const char *key)
{
    msgpack_pack_str_with_body(&e->pk, key, strlen(key));
}

/* Length of s cut to at most max bytes without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n <= max) return n;
    n = max;
    /* s[n] is the first byte dropped; if it continues a sequence, drop the
     * whole sequence. */
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

static void put_text(enc *e, const char *key, const char *s, size_t max)
{
    put_key(e, key);
    size_t n = utf8_cut(s, max);
    msgpack_pack_str_with_body(&e->pk, s, n);
}

/* The envelope every message starts with: v, op, and id when there is one. */
static void put_head(enc *e, size_t body_keys, ps_proto_op op, const uint64_t *id)
{
    msgpack_pack_map(&e->pk, 2 + (id != NULL) + body_keys);
    put_key(e, "v");
    msgpack_pack_uint32(&e->pk, PS_PROTO_VERSION);
    put_key(e, "op");
    const char *name = ps_proto_op_name(op);
    msgpack_pack_str_with_body(&e->pk, name, strlen(name));
    if (id) {
        put_key(e, "id");
        msgpack_pack_uint64(&e->pk, *id);
    }
}

/* A bin header followed by room for its n-byte body, filled by the caller. */
static uint8_t *put_bin(enc *e, const char *key, size_t n)
{
    put_key(e, key);
    msgpack_pack_bin(&e->pk, n);
    return buf_grow(e->b, n);
}

static int check_results(size_t n, const ps_proto_result *res, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const char *why = psp_not_finite(res[i].score);
        if (why)
            return ps_fail(err, errlen, PS_PROTO_E_INTERNAL, "result %zu: score is %s", i, why);
        if (!(res[i].pfp >= 0.0 && res[i].pfp <= 1.0))
            return ps_fail(err, errlen, PS_PROTO_E_INTERNAL, "result %zu: pfp %g is not in [0, 1]",
                           i, res[i].pfp);
        if (res[i].top < -1)
            return ps_fail(err, errlen, PS_PROTO_E_INTERNAL, "result %zu: top is %d", i,
                           (int)res[i].top);
    }
    return PS_PROTO_OK;
}

/* ---- requests ------------------------------------------------------------- */

/* n distinct ids; scratch for the check allocated here. */
static int check_ids(const uint64_t *ids, size_t n, char *err, size_t errlen)
{
    uint64_t *scratch = malloc(2 * n * sizeof *scratch);
    if (!scratch) return ps_fail(err, errlen, PS_PROTO_E_INTERNAL, "out of memory");
    int rc = psp_check_distinct(ids, n, scratch, err, errlen);
    free(scratch);
    return rc;
}

static int check_latest_request(const ps_proto_request *req, char *err, size_t errlen)
{
    if (req->n == 0)
        return ps_fail(err, errlen, PS_PROTO_E_BAD_REQUEST,
                       "a latest request asks for at least one processor");
    if (req->n > PS_PROTO_MAX_BATCH)
        return ps_fail(err, errlen, PS_PROTO_E_TOO_LARGE,
                       "%zu processors in one latest request (at most %u)", req->n,
                       PS_PROTO_MAX_BATCH);
    if (!req->ids)
        return ps_fail(err, errlen, PS_PROTO_E_BAD_REQUEST, "a latest request without its ids");
    return check_ids(req->ids, req->n, err, errlen);
}

static int check_score_request(const ps_proto_request *req, char *err, size_t errlen)
{
    if (req->n == 0)
        return ps_fail(err, errlen, PS_PROTO_E_BAD_REQUEST,
                       "a score request carries at least one heartbeat");
    if (req->n > PS_PROTO_MAX_BATCH)
        return ps_fail(err, errlen, PS_PROTO_E_TOO_LARGE,
                       "%zu heartbeats in one request (at most %u)", req->n, PS_PROTO_MAX_BATCH);
    if (req->k == 0 || req->k > PS_PROTO_MAX_K)
        return ps_fail(err, errlen, req->k ? PS_PROTO_E_TOO_LARGE : PS_PROTO_E_BAD_REQUEST,
                       "k is %u (1 to %u)", (unsigned)req->k, PS_PROTO_MAX_K);
    if (!req->ids || !req->seqs || !req->ts || !req->metrics)
        return ps_fail(err, errlen, PS_PROTO_E_BAD_REQUEST, "a score request without its arrays");
    for (size_t i = 0; i < req->n; i++) {
        const char *why = psp_not_finite(req->ts[i]);
        if (why)
            return ps_fail(err, errlen, PS_PROTO_E_BAD_REQUEST, "heartbeat %zu timestamp is %s", i,
                           why);
        for (size_t j = 0; j < req->k; j++) {
            why = psp_not_finite(req->metrics[i * req->k + j]);
            if (why)
                return ps_fail(err, errlen, PS_PROTO_E_BAD_REQUEST,
                               "heartbeat %zu metric %zu is %s", i, j, why);
        }
    }
    return check_ids(req->ids, req->n, err, errlen);
}

int ps_proto_encode_request(ps_buf *out, const ps_proto_request *req, ps_proto_form form, char *err,
                            size_t errlen)
{
    const uint64_t *id = req->has_id ? &req->id : NULL;
    enc e;
    if (req->op == PS_PROTO_OP_HEALTH || req->op == PS_PROTO_OP_INFO) {
        enc_start(&e, out);
        put_head(&e, 0, req->op, id);
        return enc_finish(&e, err, errlen);
    }
    if (req->op == PS_PROTO_OP_LATEST) {
        int rc = check_latest_request(req, err, errlen);
        if (rc) return rc;
        enc_start(&e, out);
        put_head(&e, 1, req->op, id);
        put_key(&e, "ids");
        msgpack_pack_array(&e.pk, req->n);
        for (size_t i = 0; i < req->n; i++)
            msgpack_pack_uint64(&e.pk, req->ids[i]);
        return enc_finish(&e, err, errlen);
    }
    if (req->op != PS_PROTO_OP_SCORE)
        return ps_fail(err, errlen, PS_PROTO_E_UNKNOWN_OP, "op %d is not a request", (int)req->op);
    int rc = check_score_request(req, err, errlen);
    if (rc) return rc;
    size_t n = req->n, k = req->k;
    enc_start(&e, out);
    if (form == PS_PROTO_FORM_ROWS) {
        put_head(&e, 2, req->op, id);
        put_key(&e, "k");
        msgpack_pack_uint32(&e.pk, req->k);
        put_key(&e, "rows");
        msgpack_pack_array(&e.pk, n);
        for (size_t i = 0; i < n; i++) {
            msgpack_pack_array(&e.pk, 4);
            msgpack_pack_uint64(&e.pk, req->ids[i]);
            msgpack_pack_uint64(&e.pk, req->seqs[i]);
            msgpack_pack_double(&e.pk, req->ts[i]);
            msgpack_pack_array(&e.pk, k);
            for (size_t j = 0; j < k; j++)
                msgpack_pack_float(&e.pk, req->metrics[i * k + j]);
        }
        return enc_finish(&e, err, errlen);
    }
    /* The metrics block alone must fit before the rest is written: a
     * request of 65536 x 256 metrics is 64 MiB, four times the limit. */
    if (n * k * 4 > PS_PROTO_MAX_MESSAGE)
        return ps_fail(err, errlen, PS_PROTO_E_TOO_LARGE,
                       "metrics bin would be %zu bytes (N=%zu, K=%zu; messages are at most %zu)",
                       n * k * 4, n, k, (size_t)PS_PROTO_MAX_MESSAGE);
    put_head(&e, 5, req->op, id);
    put_key(&e, "k");
    msgpack_pack_uint32(&e.pk, req->k);
    put_key(&e, "ids");
    msgpack_pack_array(&e.pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_uint64(&e.pk, req->ids[i]);
    put_key(&e, "seqs");
    msgpack_pack_array(&e.pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_uint64(&e.pk, req->seqs[i]);
    put_key(&e, "ts");
    msgpack_pack_array(&e.pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_double(&e.pk, req->ts[i]);
    uint8_t *m = put_bin(&e, "metrics", n * k * 4);
    if (m)
        for (size_t i = 0; i < n * k; i++)
            psp_put_f32le(m + 4 * i, req->metrics[i]);
    return enc_finish(&e, err, errlen);
}

/* ---- replies -------------------------------------------------------------- */

/* The columns a score and a latest reply share: ids, state, score, pfp, top. */
static void put_results(enc *e, size_t n, const ps_proto_result *res)
{
    put_key(e, "ids");
    msgpack_pack_array(&e->pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_uint64(&e->pk, res[i].id);
    put_key(e, "state");
    msgpack_pack_array(&e->pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_uint8(&e->pk, res[i].state);
    uint8_t *p = put_bin(e, "score", 4 * n);
    if (p)
        for (size_t i = 0; i < n; i++)
            psp_put_f32le(p + 4 * i, res[i].score);
    p = put_bin(e, "pfp", 8 * n);
    if (p)
        for (size_t i = 0; i < n; i++)
            psp_put_f64le(p + 8 * i, res[i].pfp);
    put_key(e, "top");
    msgpack_pack_array(&e->pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_int32(&e->pk, res[i].top);
}

static int check_reply_results(const char *what, size_t n, const ps_proto_result *res, char *err,
                               size_t errlen)
{
    if (n > PS_PROTO_MAX_BATCH)
        return ps_fail(err, errlen, PS_PROTO_E_TOO_LARGE, "%zu results in one reply (at most %u)",
                       n, PS_PROTO_MAX_BATCH);
    if (n && !res)
        return ps_fail(err, errlen, PS_PROTO_E_INTERNAL, "a %s reply without its results", what);
    return check_results(n, res, err, errlen);
}

int ps_proto_encode_score_reply(ps_buf *out, const uint64_t *id, const ps_proto_score_reply *r,
                                char *err, size_t errlen)
{
    int rc = check_reply_results("score", r->n, r->results, err, errlen);
    if (rc) return rc;
    enc e;
    enc_start(&e, out);
    put_head(&e, 6, PS_PROTO_OP_SCORE, id);
    put_key(&e, "tick");
    msgpack_pack_uint64(&e.pk, r->tick);
    put_results(&e, r->n, r->results);
    return enc_finish(&e, err, errlen);
}

int ps_proto_encode_latest_reply(ps_buf *out, const uint64_t *id, const ps_proto_latest_reply *r,
                                 char *err, size_t errlen)
{
    size_t n = r->n;
    int rc = check_reply_results("latest", n, r->results, err, errlen);
    if (rc) return rc;
    if (n && !r->ts)
        return ps_fail(err, errlen, PS_PROTO_E_INTERNAL, "a latest reply without its ts");
    for (size_t i = 0; i < n; i++)
        if (psp_not_finite(r->ts[i]))
            return ps_fail(err, errlen, PS_PROTO_E_INTERNAL, "result %zu: ts is %s", i,
                           psp_not_finite(r->ts[i]));
    enc e;
    enc_start(&e, out);
    put_head(&e, 7, PS_PROTO_OP_LATEST, id);
    put_key(&e, "tick");
    msgpack_pack_uint64(&e.pk, r->tick);
    put_results(&e, n, r->results);
    put_key(&e, "ts");
    msgpack_pack_array(&e.pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_double(&e.pk, r->ts[i]);
    return enc_finish(&e, err, errlen);
}

int ps_proto_encode_health_reply(ps_buf *out, const uint64_t *id, const ps_proto_health *h,
                                 char *err, size_t errlen)
{
    if (h->status < PS_PROTO_STATUS_OK || h->status > PS_PROTO_STATUS_STOPPING)
        return ps_fail(err, errlen, PS_PROTO_E_INTERNAL, "health status %d is not one of ours",
                       h->status);
    if (!(h->uptime >= 0.0) || psp_not_finite(h->uptime))
        return ps_fail(err, errlen, PS_PROTO_E_INTERNAL, "uptime %g is not a finite time",
                       h->uptime);
    enc e;
    enc_start(&e, out);
    put_head(&e, 3, PS_PROTO_OP_HEALTH, id);
    put_key(&e, "status");
    const char *s = ps_proto_status_name(h->status);
    msgpack_pack_str_with_body(&e.pk, s, strlen(s));
    put_key(&e, "uptime");
    msgpack_pack_double(&e.pk, h->uptime);
    put_key(&e, "tick");
    msgpack_pack_uint64(&e.pk, h->tick);
    return enc_finish(&e, err, errlen);
}

int ps_proto_encode_info_reply(ps_buf *out, const uint64_t *id, const ps_proto_info *info,
                               char *err, size_t errlen)
{
    if (info->k == 0 || info->k > PS_PROTO_MAX_K)
        return ps_fail(err, errlen, PS_PROTO_E_INTERNAL, "k is %u (1 to %u)", (unsigned)info->k,
                       PS_PROTO_MAX_K);
    enc e;
    enc_start(&e, out);
    put_head(&e, 8, PS_PROTO_OP_INFO, id);
    put_text(&e, "version", info->version, PS_PROTO_MAX_TEXT);
    put_text(&e, "model", info->model, PS_PROTO_MAX_TEXT);
    put_text(&e, "backend", info->backend, PS_PROTO_MAX_TEXT);
    put_key(&e, "k");
    msgpack_pack_uint32(&e.pk, info->k);
    put_key(&e, "hidden");
    msgpack_pack_uint32(&e.pk, info->hidden);
    put_key(&e, "run");
    msgpack_pack_uint64(&e.pk, info->run);
    put_key(&e, "processors");
    msgpack_pack_map(&e.pk, 3);
    put_key(&e, "warming_up");
    msgpack_pack_uint64(&e.pk, info->warming_up);
    put_key(&e, "scored");
    msgpack_pack_uint64(&e.pk, info->scored);
    put_key(&e, "stale");
    msgpack_pack_uint64(&e.pk, info->stale);
    put_key(&e, "limits");
    msgpack_pack_map(&e.pk, 3);
    put_key(&e, "max_message_bytes");
    msgpack_pack_uint64(&e.pk, info->max_message_bytes);
    put_key(&e, "max_batch");
    msgpack_pack_uint64(&e.pk, info->max_batch);
    put_key(&e, "max_processors");
    msgpack_pack_uint64(&e.pk, info->max_processors);
    return enc_finish(&e, err, errlen);
}

int ps_proto_encode_error(ps_buf *out, const uint64_t *id, int code, const char *fmt, ...)
{
    if (code <= PS_PROTO_OK || code >= PS_PROTO_NCODES) code = PS_PROTO_E_INTERNAL;
    /* One byte more than the limit tells utf8_cut whether vsnprintf cut. */
    char text[PS_PROTO_MAX_TEXT + 2];
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (w < 0) text[0] = '\0';
    enc e;
    enc_start(&e, out);
    put_head(&e, 3, PS_PROTO_OP_ERROR, id);
    put_key(&e, "code");
    msgpack_pack_uint32(&e.pk, (uint32_t)code);
    put_text(&e, "name", ps_proto_code_name(code), PS_PROTO_MAX_NAME);
    put_text(&e, "message", text, PS_PROTO_MAX_TEXT);
    return enc_finish(&e, NULL, 0);
}

/* ---- the stream ----------------------------------------------------------- */

/*
 * Bytes of a PUB message at most, whatever the values: the envelope and the
 * keys with the longest headers (uint64 run, seq and tick, float64 t, 32-bit
 * array and bin lengths) come to 130 bytes; each record adds at most 35
 * (uint64 id 9, float64 ts 9, score 4, pfp 8, int32 top 5) plus 4 per metric.
 */
#define PUB_HEAD_BYTES 256u
#define PUB_RECORD_BYTES 35u

size_t ps_proto_pub_max_records(uint32_t k)
{
    if (k > PS_PROTO_MAX_K) k = PS_PROTO_MAX_K;
    size_t m = (PS_PROTO_MAX_MESSAGE - PUB_HEAD_BYTES) / (PUB_RECORD_BYTES + 4 * (size_t)k);
    return m < PS_PROTO_MAX_BATCH ? m : PS_PROTO_MAX_BATCH;
}

int ps_proto_encode_pub(ps_buf *out, const ps_proto_pub *pub, char *err, size_t errlen)
{
    size_t n = pub->n, k = pub->k;
    if (n > PS_PROTO_MAX_BATCH)
        return ps_fail(err, errlen, PS_PROTO_E_TOO_LARGE, "%zu records in one message (at most %u)",
                       n, PS_PROTO_MAX_BATCH);
    if (k > PS_PROTO_MAX_K)
        return ps_fail(err, errlen, PS_PROTO_E_TOO_LARGE, "k is %zu (at most %u metrics)", k,
                       PS_PROTO_MAX_K);
    /* The metrics block alone must fit before anything is written. */
    if (n * k * 4 > PS_PROTO_MAX_MESSAGE)
        return ps_fail(err, errlen, PS_PROTO_E_TOO_LARGE,
                       "x bin would be %zu bytes (n=%zu, K=%zu; messages are at most %zu)",
                       n * k * 4, n, k, (size_t)PS_PROTO_MAX_MESSAGE);
    if (n && k && !pub->x)
        return ps_fail(err, errlen, PS_PROTO_E_INTERNAL, "a PUB message of K=%zu without its x", k);
    if (pub->run == 0 || pub->seq == 0 || pub->seq - 1 > UINT64_MAX - n)
        return ps_fail(err, errlen, PS_PROTO_E_INTERNAL,
                       "run %llu, seq %llu: run and seq start at 1 and seq + n - 1 must fit",
                       (unsigned long long)pub->run, (unsigned long long)pub->seq);
    if (psp_not_finite(pub->t))
        return ps_fail(err, errlen, PS_PROTO_E_INTERNAL, "tick time is %s", psp_not_finite(pub->t));
    if (n && !pub->records)
        return ps_fail(err, errlen, PS_PROTO_E_INTERNAL, "a PUB message without its records");
    for (size_t i = 0; i < n; i++) {
        const ps_proto_record *r = &pub->records[i];
        const char *why = psp_not_finite(r->ts) ? psp_not_finite(r->ts) : psp_not_finite(r->score);
        if (why)
            return ps_fail(err, errlen, PS_PROTO_E_INTERNAL, "record %zu: ts or score is %s", i,
                           why);
        if (!(r->pfp >= 0.0 && r->pfp <= 1.0) || r->top < -1)
            return ps_fail(err, errlen, PS_PROTO_E_INTERNAL,
                           "record %zu: pfp %g outside [0, 1] or top %d below -1", i, r->pfp,
                           (int)r->top);
    }
    for (size_t i = 0; i < n * k; i++) {
        const char *why = psp_not_finite(pub->x[i]);
        if (why)
            return ps_fail(err, errlen, PS_PROTO_E_INTERNAL, "record %zu metric %zu is %s", i / k,
                           i % k, why);
    }
    enc e;
    enc_start(&e, out);
    put_head(&e, k ? 11 : 9, PS_PROTO_OP_PUB, NULL);
    put_key(&e, "run");
    msgpack_pack_uint64(&e.pk, pub->run);
    put_key(&e, "seq");
    msgpack_pack_uint64(&e.pk, pub->seq);
    put_key(&e, "tick");
    msgpack_pack_uint64(&e.pk, pub->tick);
    put_key(&e, "t");
    msgpack_pack_double(&e.pk, pub->t);
    put_key(&e, "ids");
    msgpack_pack_array(&e.pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_uint64(&e.pk, pub->records[i].id);
    put_key(&e, "ts");
    msgpack_pack_array(&e.pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_double(&e.pk, pub->records[i].ts);
    uint8_t *p = put_bin(&e, "score", 4 * n);
    if (p)
        for (size_t i = 0; i < n; i++)
            psp_put_f32le(p + 4 * i, pub->records[i].score);
    p = put_bin(&e, "pfp", 8 * n);
    if (p)
        for (size_t i = 0; i < n; i++)
            psp_put_f64le(p + 8 * i, pub->records[i].pfp);
    put_key(&e, "top");
    msgpack_pack_array(&e.pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_int32(&e.pk, pub->records[i].top);
    if (k) {
        put_key(&e, "k");
        msgpack_pack_uint32(&e.pk, (uint32_t)k);
        p = put_bin(&e, "x", n * k * 4);
        if (p)
            for (size_t i = 0; i < n * k; i++)
                psp_put_f32le(p + 4 * i, pub->x[i]);
    }
    return enc_finish(&e, err, errlen);
}
