/*
 * test_protocol.c - the wire protocol (server/protocol.h, docs/protocol.md):
 * round trips of every message (op latest and PUB metrics included), every
 * refusal with its code and message,
 * every msgpack number type where a float is expected, limits that must
 * fail before allocating, and a deterministic fuzz loop over byte flips.
 *
 * Messages that break the rules are built with msgpack-c's own packer (which
 * writes whatever it is told: duplicate keys, any type), so the decoder is
 * tested against an independent encoder, and msgpack-c's unpacker checks
 * that every message our encoders write is one whole msgpack object.
 */
#include "server/protocol.h"
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <string.h>

/* ---- building messages ---------------------------------------------------- */

typedef struct bytes {
    uint8_t *p;
    size_t n;
} bytes;

/* One value at a time is packed here, then copied out with val_take. */
static msgpack_sbuffer vsb;
static msgpack_packer vpk;

static msgpack_packer *val(void)
{
    msgpack_sbuffer_clear(&vsb);
    return &vpk;
}

static bytes val_take(void)
{
    bytes b = {malloc(vsb.size ? vsb.size : 1), vsb.size};
    memcpy(b.p, vsb.data, vsb.size);
    return b;
}

static bytes val_uint(uint64_t x)
{
    msgpack_pack_uint64(val(), x);
    return val_take();
}

static bytes val_str(const char *s)
{
    msgpack_pack_str_with_body(val(), s, strlen(s));
    return val_take();
}

static bytes val_raw(const void *p, size_t n)
{
    bytes b = {malloc(n ? n : 1), n};
    memcpy(b.p, p, n);
    return b;
}

/* A message as an ordered list of keys and packed values. */
#define MAXKV 80
typedef struct kvs {
    char *key[MAXKV];
    bytes val[MAXKV];
    int n;
} kvs;

static void kvs_free(kvs *m)
{
    for (int i = 0; i < m->n; i++) {
        free(m->key[i]);
        free(m->val[i].p);
    }
    m->n = 0;
}

static int kvs_find(const kvs *m, const char *key)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->key[i], key) == 0) return i;
    return -1;
}

/* Replace key's value, or append it; takes v. */
static void kvs_set(kvs *m, const char *key, bytes v)
{
    int i = kvs_find(m, key);
    if (i >= 0) {
        free(m->val[i].p);
        m->val[i] = v;
        return;
    }
    m->key[m->n] = strdup(key);
    m->val[m->n] = v;
    m->n++;
}

static void kvs_add(kvs *m, const char *key, bytes v) /* even if present */
{
    m->key[m->n] = strdup(key);
    m->val[m->n] = v;
    m->n++;
}

static void kvs_del(kvs *m, const char *key)
{
    int i = kvs_find(m, key);
    if (i < 0) return;
    free(m->key[i]);
    free(m->val[i].p);
    memmove(&m->key[i], &m->key[i + 1], (size_t)(m->n - i - 1) * sizeof m->key[0]);
    memmove(&m->val[i], &m->val[i + 1], (size_t)(m->n - i - 1) * sizeof m->val[0]);
    m->n--;
}

static void kvs_copy(kvs *dst, const kvs *src)
{
    dst->n = 0;
    for (int i = 0; i < src->n; i++)
        kvs_add(dst, src->key[i], val_raw(src->val[i].p, src->val[i].n));
}

/* The message bytes; free b.p. */
static bytes kvs_build(const kvs *m)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, (size_t)m->n);
    for (int i = 0; i < m->n; i++) {
        msgpack_pack_str_with_body(&pk, m->key[i], strlen(m->key[i]));
        msgpack_sbuffer_write(&sb, (const char *)m->val[i].p, m->val[i].n);
    }
    bytes b = val_raw(sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return b;
}

/* The top-level map of an encoded message back into kvs (msgpack-c unpacks
 * it, its packer re-packs each value: the bytes stay canonical). */
static void kvs_parse(kvs *m, const uint8_t *p, size_t n)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    m->n = 0;
    int rc = msgpack_unpack_next(&u, (const char *)p, n, &off);
    CHECK(rc == MSGPACK_UNPACK_SUCCESS && u.data.type == MSGPACK_OBJECT_MAP);
    if (rc == MSGPACK_UNPACK_SUCCESS && u.data.type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < u.data.via.map.size; i++) {
            msgpack_object_kv *e = &u.data.via.map.ptr[i];
            char key[64];
            snprintf(key, sizeof key, "%.*s", (int)e->key.via.str.size, e->key.via.str.ptr);
            msgpack_pack_object(val(), e->val);
            kvs_add(m, key, val_take());
        }
    }
    msgpack_unpacked_destroy(&u);
}

/* msgpack-c agrees the bytes are exactly one object. */
static int one_object(const uint8_t *p, size_t n)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rc = msgpack_unpack_next(&u, (const char *)p, n, &off);
    msgpack_unpacked_destroy(&u);
    return rc == MSGPACK_UNPACK_SUCCESS && off == n;
}

/* ---- the valid messages every test starts from ---------------------------- */

enum kind {
    REQ_COLS,
    REQ_ROWS,
    REQ_HEALTH,
    REQ_INFO,
    REQ_LATEST, /* the last request */
    REP_SCORE,
    REP_HEALTH,
    REP_INFO,
    REP_ERROR,
    REP_LATEST, /* the last reply */
    PUB,
    PUB_X, /* with metrics */
    NKINDS,
};
#define LAST_REQ REQ_LATEST
#define LAST_REP REP_LATEST
static const char *const kind_names[NKINDS] = {
    "request columns",
    "request rows",
    "request health",
    "request info",
    "request latest",
    "reply score",
    "reply health",
    "reply info",
    "reply error",
    "reply latest",
    "pub",
    "pub with metrics",
};

#define N0 3
#define K0 4
static const uint64_t ids0[N0] = {17, 3, UINT64_MAX};
static const uint64_t seqs0[N0] = {1, 0, UINT64_MAX};
static const double ts0[N0] = {1700000000.25, 1700000000.5, 0.0};
static const float metrics0[N0 * K0] = {0.5f,  -1.25f, 3e38f,   1e-40f, 0.0f, -0.0f,
                                        42.0f, 7.0f,   -3e-38f, 1.0f,   2.0f, 100.0f};
static const ps_proto_result results0[4] = {
    {17, 0.0f, 0.0, -1, PS_PROTO_STATE_WARMING_UP},
    {3, 2.5f, 0.125, 2, PS_PROTO_STATE_SCORED},
    {UINT64_MAX, 9.75f, 1.0, 0, PS_PROTO_STATE_DUPLICATE},
    {5, 1e30f, 1e-300, 255, PS_PROTO_STATE_STALE},
};
static const ps_proto_record records0[3] = {
    {17, 1700000000.25, 2.5f, 0.5, 1},
    {3, 1700000000.5, 0.0f, 0.0, -1},
    {99, -5.0, 1e-3f, 0.999999999, 3},
};
/* A latest reply: scored, warming up, unknown, and a state from the future. */
static const ps_proto_result latest0[4] = {
    {17, 2.5f, 0.125, 2, PS_PROTO_STATE_SCORED},
    {3, 0.0f, 0.0, -1, PS_PROTO_STATE_WARMING_UP},
    {UINT64_MAX, 0.0f, 0.0, -1, PS_PROTO_STATE_UNKNOWN},
    {5, 1e30f, 1e-300, 255, 200},
};
static const double latest_ts0[4] = {1700000000.25, -1.5, 0.0, 1e300};

static ps_proto_request request0(ps_proto_op op, bool with_id)
{
    ps_proto_request r = {0};
    r.op = op;
    r.has_id = with_id;
    r.id = 0x1122334455667788u;
    if (op == PS_PROTO_OP_LATEST) {
        r.n = N0;
        r.ids = ids0;
    }
    if (op == PS_PROTO_OP_SCORE) {
        r.n = N0;
        r.k = K0;
        r.ids = ids0;
        r.seqs = seqs0;
        r.ts = ts0;
        r.metrics = metrics0;
    }
    return r;
}

static ps_proto_info info0(void)
{
    ps_proto_info in;
    memset(&in, 0, sizeof in);
    snprintf(in.version, sizeof in.version, "preshift 0.1.0");
    snprintf(in.model, sizeof in.model, "models/default.psm");
    snprintf(in.backend, sizeof in.backend, "cpu (avx2)");
    in.k = 19;
    in.hidden = 64;
    in.run = 0xdeadbeefcafeu;
    in.warming_up = 3;
    in.scored = 1000;
    in.stale = UINT64_MAX;
    in.max_message_bytes = PS_PROTO_MAX_MESSAGE;
    in.max_batch = PS_PROTO_MAX_BATCH;
    in.max_processors = 100000;
    return in;
}

/* Encode the valid message of a kind. */
static int encode_kind(enum kind k, ps_buf *out)
{
    char err[256] = "";
    uint64_t id = 42;
    int rc;
    ps_proto_request rq;
    switch (k) {
    case REQ_COLS:
    case REQ_ROWS:
        rq = request0(PS_PROTO_OP_SCORE, true);
        rc = ps_proto_encode_request(
            out, &rq, k == REQ_ROWS ? PS_PROTO_FORM_ROWS : PS_PROTO_FORM_COLUMNS, err, sizeof err);
        break;
    case REQ_HEALTH:
    case REQ_INFO:
        rq = request0(k == REQ_HEALTH ? PS_PROTO_OP_HEALTH : PS_PROTO_OP_INFO, true);
        rc = ps_proto_encode_request(out, &rq, PS_PROTO_FORM_COLUMNS, err, sizeof err);
        break;
    case REQ_LATEST:
        rq = request0(PS_PROTO_OP_LATEST, true);
        rc = ps_proto_encode_request(out, &rq, PS_PROTO_FORM_COLUMNS, err, sizeof err);
        break;
    case REP_LATEST: {
        ps_proto_latest_reply l = {78, 4, latest0, latest_ts0};
        rc = ps_proto_encode_latest_reply(out, &id, &l, err, sizeof err);
        break;
    }
    case REP_SCORE: {
        ps_proto_score_reply s = {77, 4, results0};
        rc = ps_proto_encode_score_reply(out, &id, &s, err, sizeof err);
        break;
    }
    case REP_HEALTH: {
        ps_proto_health h = {PS_PROTO_STATUS_STARTING, 12.5, 9};
        rc = ps_proto_encode_health_reply(out, &id, &h, err, sizeof err);
        break;
    }
    case REP_INFO: {
        ps_proto_info in = info0();
        rc = ps_proto_encode_info_reply(out, &id, &in, err, sizeof err);
        break;
    }
    case REP_ERROR:
        rc = ps_proto_encode_error(out, &id, PS_PROTO_E_BAD_REQUEST,
                                   "ids has %d entries but seqs has %d", 3, 2);
        break;
    default: {
        ps_proto_pub p = {0};
        p.run = 12345;
        p.seq = 1000;
        p.tick = 8;
        p.t = 1700000001.0;
        p.n = 3;
        p.records = records0;
        if (k == PUB_X) {
            p.k = K0;
            p.x = metrics0;
        }
        rc = ps_proto_encode_pub(out, &p, err, sizeof err);
        break;
    }
    }
    CHECKF(rc == PS_PROTO_OK, "%s: %s", kind_names[k], err);
    return rc;
}

/* Every decoded form, to compare any two messages of a kind. */
typedef struct decoded {
    int rc;
    char err[512];
    ps_proto_request req;
    ps_proto_reply rep;
    ps_proto_pub pub;
} decoded;

static int decode_kind(enum kind k, const uint8_t *p, size_t n, decoded *d)
{
    d->err[0] = '\0';
    if (k <= LAST_REQ)
        d->rc = ps_proto_decode_request(p, n, &d->req, d->err, sizeof d->err);
    else if (k <= LAST_REP)
        d->rc = ps_proto_decode_reply(p, n, &d->rep, d->err, sizeof d->err);
    else
        d->rc = ps_proto_decode_pub(p, n, &d->pub, d->err, sizeof d->err);
    return d->rc;
}

static void decoded_free(decoded *d)
{
    ps_proto_request_free(&d->req);
    ps_proto_reply_free(&d->rep);
    ps_proto_pub_free(&d->pub);
}

static bool request_eq(const ps_proto_request *a, const ps_proto_request *b)
{
    if (a->op != b->op || a->has_id != b->has_id || (a->has_id && a->id != b->id) || a->n != b->n ||
        a->k != b->k)
        return false;
    if (a->n == 0) return true;
    if (a->op == PS_PROTO_OP_LATEST)
        return !memcmp(a->ids, b->ids, a->n * 8) && !b->seqs && !b->ts && !b->metrics;
    return !memcmp(a->ids, b->ids, a->n * 8) && !memcmp(a->seqs, b->seqs, a->n * 8) &&
           !memcmp(a->ts, b->ts, a->n * 8) && !memcmp(a->metrics, b->metrics, a->n * a->k * 4);
}

static bool result_eq(const ps_proto_result *a, const ps_proto_result *b)
{
    return a->id == b->id && !memcmp(&a->score, &b->score, 4) && !memcmp(&a->pfp, &b->pfp, 8) &&
           a->top == b->top && a->state == b->state;
}

static bool info_eq(const ps_proto_info *a, const ps_proto_info *b)
{
    return !strcmp(a->version, b->version) && !strcmp(a->model, b->model) &&
           !strcmp(a->backend, b->backend) && a->k == b->k && a->hidden == b->hidden &&
           a->run == b->run && a->warming_up == b->warming_up && a->scored == b->scored &&
           a->stale == b->stale && a->max_message_bytes == b->max_message_bytes &&
           a->max_batch == b->max_batch && a->max_processors == b->max_processors;
}

static bool reply_eq(const ps_proto_reply *a, const ps_proto_reply *b)
{
    if (a->op != b->op || a->has_id != b->has_id || (a->has_id && a->id != b->id)) return false;
    switch (a->op) {
    case PS_PROTO_OP_SCORE:
        if (a->score.tick != b->score.tick || a->score.n != b->score.n) return false;
        for (size_t i = 0; i < a->score.n; i++)
            if (!result_eq(&a->score.results[i], &b->score.results[i])) return false;
        return true;
    case PS_PROTO_OP_LATEST:
        if (a->latest.tick != b->latest.tick || a->latest.n != b->latest.n) return false;
        for (size_t i = 0; i < a->latest.n; i++)
            if (!result_eq(&a->latest.results[i], &b->latest.results[i]) ||
                memcmp(&a->latest.ts[i], &b->latest.ts[i], 8))
                return false;
        return true;
    case PS_PROTO_OP_HEALTH:
        return a->health.status == b->health.status &&
               !memcmp(&a->health.uptime, &b->health.uptime, 8) && a->health.tick == b->health.tick;
    case PS_PROTO_OP_INFO:
        return info_eq(&a->info, &b->info);
    case PS_PROTO_OP_ERROR:
        return a->error.code == b->error.code && !strcmp(a->error.name, b->error.name) &&
               !strcmp(a->error.message, b->error.message);
    default:
        return false;
    }
}

static bool record_eq(const ps_proto_record *a, const ps_proto_record *b)
{
    return a->id == b->id && !memcmp(&a->ts, &b->ts, 8) && !memcmp(&a->score, &b->score, 4) &&
           !memcmp(&a->pfp, &b->pfp, 8) && a->top == b->top;
}

static bool pub_eq(const ps_proto_pub *a, const ps_proto_pub *b)
{
    if (a->run != b->run || a->seq != b->seq || a->tick != b->tick || memcmp(&a->t, &b->t, 8) ||
        a->n != b->n || a->k != b->k)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (!record_eq(&a->records[i], &b->records[i])) return false;
    return a->n * a->k == 0 || !memcmp(a->x, b->x, a->n * a->k * 4);
}

static bool decoded_eq(enum kind k, const decoded *a, const decoded *b)
{
    if (k <= LAST_REQ) return request_eq(&a->req, &b->req);
    if (k <= LAST_REP) return reply_eq(&a->rep, &b->rep);
    return pub_eq(&a->pub, &b->pub);
}

/* Encode what was decoded (d->rc == OK). */
static int reencode(enum kind k, const decoded *d, ps_buf *out, char *err, size_t errlen)
{
    if (k <= LAST_REQ) return ps_proto_encode_request(out, &d->req, d->req.form, err, errlen);
    if (k > LAST_REP) return ps_proto_encode_pub(out, &d->pub, err, errlen);
    const uint64_t *id = d->rep.has_id ? &d->rep.id : NULL;
    switch (d->rep.op) {
    case PS_PROTO_OP_SCORE:
        return ps_proto_encode_score_reply(out, id, &d->rep.score, err, errlen);
    case PS_PROTO_OP_LATEST:
        return ps_proto_encode_latest_reply(out, id, &d->rep.latest, err, errlen);
    case PS_PROTO_OP_HEALTH:
        return ps_proto_encode_health_reply(out, id, &d->rep.health, err, errlen);
    case PS_PROTO_OP_INFO:
        return ps_proto_encode_info_reply(out, id, &d->rep.info, err, errlen);
    default:
        return ps_proto_encode_error(out, id, (int)d->rep.error.code, "%s", d->rep.error.message);
    }
}

/* ---- round trips ---------------------------------------------------------- */

static void test_names(void)
{
    /* The table on the wire: never renumbered. */
    static const char *const names[] = {"ok",         "bad_request", "version",
                                        "unknown_op", "too_large",   "k_mismatch",
                                        "busy",       "unavailable", "internal"};
    for (int c = 0; c < PS_PROTO_NCODES; c++)
        CHECK(strcmp(ps_proto_code_name(c), names[c]) == 0);
    CHECK(strcmp(ps_proto_code_name(99), "unknown") == 0);
    CHECK(strcmp(ps_proto_code_name(-1), "unknown") == 0);
    CHECK(strcmp(ps_proto_state_name(PS_PROTO_STATE_DUPLICATE), "duplicate") == 0);
    CHECK(strcmp(ps_proto_state_name(PS_PROTO_STATE_REJECTED), "rejected") == 0);
    CHECK(strcmp(ps_proto_state_name(PS_PROTO_STATE_UNKNOWN), "unknown") == 0);
    CHECK(PS_PROTO_STATE_UNKNOWN == 5 && PS_PROTO_NSTATES == 6);
    for (int st = 0; st < PS_PROTO_NSTATES; st++)
        CHECK(ps_proto_state_name(st)[0] != '\0');
    CHECK(strcmp(ps_proto_state_name(7), "unknown") == 0);
    CHECK(strcmp(ps_proto_op_name(PS_PROTO_OP_PUB), "pub") == 0);
    CHECK(strcmp(ps_proto_op_name(PS_PROTO_OP_LATEST), "latest") == 0);
    CHECK(PS_PROTO_OP_LATEST + 1 == PS_PROTO_NOPS);
    CHECK(strcmp(ps_proto_op_name(PS_PROTO_NOPS), "") == 0);
    CHECK(strcmp(ps_proto_status_name(PS_PROTO_STATUS_STOPPING), "stopping") == 0);
}

static void test_round_trips(void)
{
    ps_buf b = {0};
    for (int k = 0; k < NKINDS; k++) {
        if (encode_kind((enum kind)k, &b)) continue;
        CHECKF(one_object(b.data, b.len), "%s: msgpack-c does not read one object", kind_names[k]);
        decoded d = {0};
        decode_kind((enum kind)k, b.data, b.len, &d);
        CHECKF(d.rc == PS_PROTO_OK, "%s: %s", kind_names[k], d.err);
        decoded_free(&d);
    }

    /* Requests, field by field, with and without an id. */
    for (int form = 0; form < 2; form++)
        for (int with_id = 0; with_id < 2; with_id++) {
            ps_proto_request in = request0(PS_PROTO_OP_SCORE, with_id);
            char err[256];
            CHECK(ps_proto_encode_request(&b, &in, (ps_proto_form)form, err, sizeof err) == 0);
            ps_proto_request out = {0};
            int rc = ps_proto_decode_request(b.data, b.len, &out, err, sizeof err);
            CHECKF(rc == 0, "%s", err);
            CHECK(request_eq(&in, &out));
            CHECK(out.form == (ps_proto_form)form);
            CHECK(out.op == PS_PROTO_OP_SCORE);
            ps_proto_request_free(&out);
        }
    for (int op = PS_PROTO_OP_HEALTH; op <= PS_PROTO_OP_INFO; op++) {
        ps_proto_request in = request0((ps_proto_op)op, false), out = {0};
        char err[256];
        CHECK(ps_proto_encode_request(&b, &in, PS_PROTO_FORM_COLUMNS, err, sizeof err) == 0);
        CHECK(ps_proto_decode_request(b.data, b.len, &out, err, sizeof err) == 0);
        CHECK((int)out.op == op && !out.has_id && out.n == 0);
        ps_proto_request_free(&out);
    }

    /* Replies. */
    ps_proto_reply rep = {0};
    char err[256];
    uint64_t id = 9;
    ps_proto_score_reply s = {77, 4, results0};
    CHECK(ps_proto_encode_score_reply(&b, &id, &s, err, sizeof err) == 0);
    CHECK(ps_proto_decode_reply(b.data, b.len, &rep, err, sizeof err) == 0);
    CHECK(rep.op == PS_PROTO_OP_SCORE && rep.has_id && rep.id == 9);
    CHECK(rep.score.tick == 77 && rep.score.n == 4);
    for (size_t i = 0; i < 4 && rep.score.n == 4; i++)
        CHECK(result_eq(&rep.score.results[i], &results0[i]));
    ps_proto_score_reply empty = {0, 0, NULL};
    CHECK(ps_proto_encode_score_reply(&b, NULL, &empty, err, sizeof err) == 0);
    CHECK(ps_proto_decode_reply(b.data, b.len, &rep, err, sizeof err) == 0);
    CHECK(rep.score.n == 0 && !rep.has_id);

    for (int st = 0; st < 3; st++) {
        ps_proto_health h = {st, 3600.5, 123456789};
        CHECK(ps_proto_encode_health_reply(&b, NULL, &h, err, sizeof err) == 0);
        CHECK(ps_proto_decode_reply(b.data, b.len, &rep, err, sizeof err) == 0);
        CHECK(rep.op == PS_PROTO_OP_HEALTH && rep.health.status == st &&
              rep.health.uptime == 3600.5 && rep.health.tick == 123456789);
    }

    ps_proto_info in = info0();
    /* The longest text fits whole. */
    memset(in.model, 'm', PS_PROTO_MAX_TEXT);
    in.model[PS_PROTO_MAX_TEXT] = '\0';
    CHECK(ps_proto_encode_info_reply(&b, &id, &in, err, sizeof err) == 0);
    CHECK(ps_proto_decode_reply(b.data, b.len, &rep, err, sizeof err) == 0);
    CHECK(rep.op == PS_PROTO_OP_INFO && info_eq(&rep.info, &in));

    for (int code = 1; code < PS_PROTO_NCODES; code++) {
        CHECK(ps_proto_encode_error(&b, &id, code, "code %d", code) == 0);
        CHECK(ps_proto_decode_reply(b.data, b.len, &rep, err, sizeof err) == 0);
        CHECK(rep.op == PS_PROTO_OP_ERROR && rep.error.code == (uint32_t)code);
        CHECK(strcmp(rep.error.name, ps_proto_code_name(code)) == 0);
        char want[32];
        snprintf(want, sizeof want, "code %d", code);
        CHECK(strcmp(rep.error.message, want) == 0);
    }
    /* A code outside the table goes out as internal. */
    CHECK(ps_proto_encode_error(&b, NULL, 0, "x") == 0);
    CHECK(ps_proto_decode_reply(b.data, b.len, &rep, err, sizeof err) == 0);
    CHECK(rep.error.code == PS_PROTO_E_INTERNAL && strcmp(rep.error.name, "internal") == 0);
    /* A long message is cut at a UTF-8 boundary: 2-byte characters, so the
     * cut leaves an even number of bytes, every character whole. */
    {
        char big[3001];
        for (int i = 0; i < 1500; i++) {
            big[2 * i] = (char)0xc3;
            big[2 * i + 1] = (char)0xa9; /* é */
        }
        big[3000] = '\0';
        CHECK(ps_proto_encode_error(&b, NULL, PS_PROTO_E_INTERNAL, "%s", big) == 0);
        CHECK(ps_proto_decode_reply(b.data, b.len, &rep, err, sizeof err) == 0);
        size_t len = strlen(rep.error.message);
        CHECK(len == PS_PROTO_MAX_TEXT - 1 && len % 2 == 0);
        CHECK((unsigned char)rep.error.message[len - 1] == 0xa9);
        /* "x" then é's: the cut falls between a pair's two bytes. */
        big[0] = 'x';
        big[1] = 'x';
        CHECK(ps_proto_encode_error(&b, NULL, PS_PROTO_E_INTERNAL, "%s", big + 1) == 0);
        CHECK(ps_proto_decode_reply(b.data, b.len, &rep, err, sizeof err) == 0);
        len = strlen(rep.error.message);
        CHECK(len == PS_PROTO_MAX_TEXT && (unsigned char)rep.error.message[len - 1] == 0xa9);
    }
    ps_proto_reply_free(&rep);

    /* PUB, with records and without (a heartbeat of the sequence). */
    ps_proto_pub p = {0}, q = {0};
    p.run = 1;
    p.seq = 1;
    p.tick = 2;
    p.t = 1.5;
    p.n = 3;
    p.records = records0;
    CHECK(ps_proto_encode_pub(&b, &p, err, sizeof err) == 0);
    CHECK(ps_proto_decode_pub(b.data, b.len, &q, err, sizeof err) == 0);
    CHECK(pub_eq(&p, &q));
    p.n = 0;
    p.seq = UINT64_MAX;
    CHECK(ps_proto_encode_pub(&b, &p, err, sizeof err) == 0);
    CHECK(ps_proto_decode_pub(b.data, b.len, &q, err, sizeof err) == 0);
    CHECK(pub_eq(&p, &q));
    p.n = 2; /* seq + n - 1 would overflow */
    CHECK(ps_proto_encode_pub(&b, &p, err, sizeof err) == PS_PROTO_E_INTERNAL);
    ps_proto_pub_free(&q);
    ps_buf_free(&b);
}

/* Each decoder refuses the others' messages with unknown_op. */
static void test_wrong_direction(void)
{
    ps_buf b = {0};
    decoded d = {0};
    encode_kind(REP_SCORE, &b);
    /* "score" is both a request and a reply, but a reply has no 'k'. */
    CHECK(decode_kind(REQ_COLS, b.data, b.len, &d) == PS_PROTO_E_BAD_REQUEST);
    CHECKF(strstr(d.err, "missing key 'k'"), "%s", d.err);
    encode_kind(REP_ERROR, &b);
    CHECK(decode_kind(REQ_COLS, b.data, b.len, &d) == PS_PROTO_E_UNKNOWN_OP);
    CHECKF(strstr(d.err, "op 'error' is not a request"), "%s", d.err);
    CHECK(d.req.has_id && d.req.id == 42);
    encode_kind(PUB, &b);
    CHECK(decode_kind(REP_SCORE, b.data, b.len, &d) == PS_PROTO_E_UNKNOWN_OP);
    encode_kind(REQ_HEALTH, &b);
    CHECK(decode_kind(PUB, b.data, b.len, &d) == PS_PROTO_E_UNKNOWN_OP);
    CHECK(d.pub.n == 0 && d.pub.records == NULL && d.pub.k == 0 && d.pub.x == NULL);
    /* "latest" is both too: a request is no reply (it has no 'tick')... */
    encode_kind(REQ_LATEST, &b);
    CHECK(decode_kind(REP_SCORE, b.data, b.len, &d) == PS_PROTO_E_BAD_REQUEST);
    CHECKF(strstr(d.err, "missing key 'tick' (latest reply)"), "%s", d.err);
    CHECK(d.rep.op == PS_PROTO_OP_LATEST && d.rep.latest.n == 0 && d.rep.has_id);
    CHECK(decode_kind(PUB, b.data, b.len, &d) == PS_PROTO_E_UNKNOWN_OP);
    /* ...but a reply names distinct processors in 'ids', which is all a
     * request needs (its other keys are unknown to a request: ignored). */
    encode_kind(REP_LATEST, &b);
    CHECK(decode_kind(REQ_COLS, b.data, b.len, &d) == PS_PROTO_OK);
    CHECK(d.req.op == PS_PROTO_OP_LATEST && d.req.n == 4 && d.req.ids[3] == 5);
    encode_kind(PUB_X, &b);
    CHECK(decode_kind(REQ_COLS, b.data, b.len, &d) == PS_PROTO_E_UNKNOWN_OP);
    CHECK(decode_kind(REP_SCORE, b.data, b.len, &d) == PS_PROTO_E_UNKNOWN_OP);
    CHECKF(strstr(d.err, "op 'pub' is not a reply (score, health, info, latest or error)"), "%s",
           d.err);
    decoded_free(&d);
    ps_buf_free(&b);
}

/* The worked example of docs/protocol.md: a request of one heartbeat of two
 * metrics and its reply, byte for byte. */
static const char doc_request_hex[] =
    "88a17601a26f70a573636f7265a26964cd0102a16b02a3696473912aa4736571739105"
    "a2747391cb41d954fc40000000a76d657472696373c408000080400000c03f";
static const char doc_reply_hex[] =
    "89a17601a26f70a573636f7265a26964cd0102a47469636b07a3696473912aa5737461"
    "74659101a573636f7265c4040000c03fa3706670c408000000000000d03fa3746f709101";

static void hex(const ps_buf *b, char *out)
{
    for (size_t i = 0; i < b->len; i++)
        sprintf(out + 2 * i, "%02x", b->data[i]);
}

static void test_doc_example(void)
{
    ps_buf b = {0};
    char err[256], got[512];
    uint64_t id = 42;
    uint64_t seq = 5;
    double ts = 1700000000.0;
    float m[2] = {4.0f, 1.5f};
    ps_proto_request rq = {0};
    rq.op = PS_PROTO_OP_SCORE;
    rq.has_id = true;
    rq.id = 258;
    rq.n = 1;
    rq.k = 2;
    rq.ids = &id;
    rq.seqs = &seq;
    rq.ts = &ts;
    rq.metrics = m;
    CHECK(ps_proto_encode_request(&b, &rq, PS_PROTO_FORM_COLUMNS, err, sizeof err) == 0);
    hex(&b, got);
    CHECKF(strcmp(got, doc_request_hex) == 0, "request is %s", got);
    ps_proto_request back = {0};
    CHECK(ps_proto_decode_request(b.data, b.len - 3, &back, err, sizeof err) ==
          PS_PROTO_E_BAD_REQUEST);
    CHECKF(strcmp(err, "truncated: bin at byte 56 declares 8 bytes, 5 left") == 0, "%s", err);
    CHECK(back.has_id && back.id == 258);
    ps_proto_request_free(&back);
    ps_proto_result res = {42, 1.5f, 0.25, 1, PS_PROTO_STATE_SCORED};
    ps_proto_score_reply s = {7, 1, &res};
    uint64_t rid = 258;
    CHECK(ps_proto_encode_score_reply(&b, &rid, &s, err, sizeof err) == 0);
    hex(&b, got);
    CHECKF(strcmp(got, doc_reply_hex) == 0, "reply is %s", got);
    ps_buf_free(&b);
}

/* The examples of docs/protocol.md for op "latest" and a PUB message with
 * metrics, byte for byte. */
static const char doc_latest_request_hex[] =
    "84a17601a26f70a66c6174657374a26964cd0103a3696473932a0763";
static const char doc_latest_reply_hex[] =
    "8aa17601a26f70a66c6174657374a26964cd0103a47469636b07a3696473932a0763a5737461746593010005a573"
    "636f7265c40c0000c03f0000000000000000a3706670c418000000000000d03f0000000000000000000000000000"
    "0000a3746f709301ffffa2747393cb41d954fc40000000cb41d954fc3fe00000cb0000000000000000";
static const char doc_pub_hex[] =
    "8da17601a26f70a3707562a372756e03a37365710aa47469636b07a174cb41d954fc40200000a3696473912aa274"
    "7391cb41d954fc40000000a573636f7265c4040000c03fa3706670c408000000000000d03fa3746f709101a16b02"
    "a178c408000080400000c03f";

static void test_doc_latest_and_pub(void)
{
    ps_buf b = {0};
    char err[256], got[1024];
    uint64_t ids[3] = {42, 7, 99}, id = 259;
    ps_proto_request rq = {.op = PS_PROTO_OP_LATEST, .has_id = true, .id = id, .n = 3, .ids = ids};
    CHECK(ps_proto_encode_request(&b, &rq, PS_PROTO_FORM_COLUMNS, err, sizeof err) == 0);
    hex(&b, got);
    CHECKF(strcmp(got, doc_latest_request_hex) == 0, "latest request is %s", got);
    /* One form only: the form argument changes nothing. */
    CHECK(ps_proto_encode_request(&b, &rq, PS_PROTO_FORM_ROWS, err, sizeof err) == 0);
    hex(&b, got);
    CHECK(strcmp(got, doc_latest_request_hex) == 0);

    ps_proto_result res[3] = {{42, 1.5f, 0.25, 1, PS_PROTO_STATE_SCORED},
                              {7, 0.0f, 0.0, -1, PS_PROTO_STATE_WARMING_UP},
                              {99, 0.0f, 0.0, -1, PS_PROTO_STATE_UNKNOWN}};
    double ts[3] = {1700000000.0, 1699999999.5, 0.0};
    ps_proto_latest_reply l = {7, 3, res, ts};
    CHECK(ps_proto_encode_latest_reply(&b, &id, &l, err, sizeof err) == 0);
    hex(&b, got);
    CHECKF(strcmp(got, doc_latest_reply_hex) == 0, "latest reply is %s", got);

    ps_proto_record rec = {42, 1700000000.0, 1.5f, 0.25, 1};
    float x[2] = {4.0f, 1.5f};
    ps_proto_pub p = {
        .run = 3, .seq = 10, .tick = 7, .t = 1700000000.5, .n = 1, .records = &rec, .k = 2, .x = x};
    CHECK(ps_proto_encode_pub(&b, &p, err, sizeof err) == 0);
    hex(&b, got);
    CHECKF(strcmp(got, doc_pub_hex) == 0, "pub is %s", got);
    ps_buf_free(&b);
}

/* ---- refusals ------------------------------------------------------------- */

/* Decode msg as a request: the code, and err must contain want. */
static void expect_request(const bytes *msg, int code, const char *want, int line)
{
    ps_proto_request r = {0};
    char err[512] = "";
    int rc = ps_proto_decode_request(msg->p, msg->n, &r, err, sizeof err);
    if (rc != code || (want && !strstr(err, want))) {
        fprintf(stderr, "line %d: got code %d '%s', want %d '%s'\n", line, rc, err, code,
                want ? want : "");
        test_failures++;
    }
    if (rc) CHECK(r.n == 0 && r.ids == NULL && r.metrics == NULL);
    ps_proto_request_free(&r);
}

#define EXPECT(kv, code, want)                                                                     \
    do {                                                                                           \
        bytes m_ = kvs_build(kv);                                                                  \
        expect_request(&m_, code, want, __LINE__);                                                 \
        free(m_.p);                                                                                \
    } while (0)

static void columns_request(kvs *m)
{
    ps_buf b = {0};
    encode_kind(REQ_COLS, &b);
    kvs_parse(m, b.data, b.len);
    ps_buf_free(&b);
}

static bytes metrics_bin(const float *x, size_t n)
{
    uint8_t *p = malloc(4 * n + 1);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        for (int j = 0; j < 4; j++)
            p[4 * i + j] = (uint8_t)(u >> (8 * j));
    }
    msgpack_pack_bin_with_body(val(), p, 4 * n);
    free(p);
    return val_take();
}

static void test_envelope(void)
{
    kvs m = {0};
    columns_request(&m);
    EXPECT(&m, PS_PROTO_OK, NULL);

    kvs_set(&m, "v", val_uint(2));
    EXPECT(&m, PS_PROTO_E_VERSION, "protocol version 2 is not supported");
    kvs_set(&m, "v", val_uint(0));
    EXPECT(&m, PS_PROTO_E_VERSION, "version 0");
    kvs_set(&m, "v", val_str("1"));
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "'v' is a string, expected an unsigned integer");
    kvs_del(&m, "v");
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "missing key 'v'");
    kvs_set(&m, "v", val_uint(1));

    kvs_set(&m, "op", val_str("scores"));
    EXPECT(&m, PS_PROTO_E_UNKNOWN_OP, "unknown op 'scores'");
    kvs_set(&m, "op", val_str("pub"));
    EXPECT(&m, PS_PROTO_E_UNKNOWN_OP, "op 'pub' is not a request");
    kvs_set(&m, "op", val_str("sc\x01ore"));
    EXPECT(&m, PS_PROTO_E_UNKNOWN_OP, "unknown op 'sc?ore'");
    kvs_set(&m, "op", val_uint(1));
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "'op' is an unsigned integer, expected a string");
    kvs_del(&m, "op");
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "missing key 'op'");
    kvs_set(&m, "op", val_str("score"));

    /* id: optional, any uint64, anything else refused. */
    kvs_del(&m, "id");
    EXPECT(&m, PS_PROTO_OK, NULL);
    kvs_set(&m, "id", val_uint(UINT64_MAX));
    EXPECT(&m, PS_PROTO_OK, NULL);
    msgpack_pack_int8(val(), -1);
    kvs_set(&m, "id", val_take());
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "'id' is a negative integer");
    kvs_set(&m, "id", val_uint(42));

    /* Duplicate keys, known or not. */
    kvs_add(&m, "k", val_uint(K0));
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "key 'k' appears twice in the message");
    kvs_del(&m, "k");
    kvs_add(&m, "zz", val_uint(1));
    kvs_add(&m, "zz", val_uint(1));
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "key 'zz' appears twice");
    kvs_del(&m, "zz");
    kvs_del(&m, "zz");

    /* Unknown keys are ignored, whatever they hold (within the depth). */
    msgpack_packer *pk = val();
    for (unsigned d = 0; d < PS_PROTO_MAX_DEPTH - 2; d++) /* depths 2 .. 15 */
        msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 1);
    msgpack_pack_nil(pk);
    msgpack_pack_ext_with_body(pk, "abc", 3, 5);
    kvs_set(&m, "future", val_take());
    EXPECT(&m, PS_PROTO_OK, NULL);
    pk = val();
    for (unsigned d = 0; d < PS_PROTO_MAX_DEPTH; d++)
        msgpack_pack_array(pk, 1);
    msgpack_pack_nil(pk);
    kvs_set(&m, "future", val_take());
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "is nested 17 deep (at most 16)");
    kvs_del(&m, "future");

    /* Keys: strings only, at most 64. */
    {
        bytes good = kvs_build(&m), bad = {malloc(good.n + 3), good.n + 2};
        memcpy(bad.p, good.p, good.n);
        bad.p[0]++;            /* one entry more in the fixmap... */
        bad.p[good.n] = 1;     /* ...whose key is 1 */
        bad.p[good.n + 1] = 2; /* ...and value 2 */
        expect_request(&bad, PS_PROTO_E_BAD_REQUEST, "is an unsigned integer, expected a string",
                       __LINE__);
        /* Trailing bytes after a whole message. */
        bad.n = good.n + 1;
        bad.p[0]--;
        expect_request(&bad, PS_PROTO_E_BAD_REQUEST, "1 bytes after the end of the message map",
                       __LINE__);
        free(good.p);
        free(bad.p);
    }
    {
        kvs many = {0};
        kvs_copy(&many, &m);
        for (int i = many.n; i < (int)PS_PROTO_MAX_KEYS; i++) {
            char key[16];
            snprintf(key, sizeof key, "x%d", i);
            kvs_add(&many, key, val_uint(0));
        }
        EXPECT(&many, PS_PROTO_OK, NULL);
        kvs_add(&many, "one_too_many", val_uint(0));
        EXPECT(&many, PS_PROTO_E_BAD_REQUEST, "has 65 keys (at most 64)");
        kvs_free(&many);
    }

    /* Not a map at all, empty, too large. */
    {
        uint8_t arr[] = {0x91, 0x01};
        bytes b = {arr, 2};
        expect_request(&b, PS_PROTO_E_BAD_REQUEST, "the message is an array, expected a map",
                       __LINE__);
        b.n = 0;
        expect_request(&b, PS_PROTO_E_BAD_REQUEST, "empty message", __LINE__);
        uint8_t c1[] = {0x81, 0xa1, 'v', 0xc1};
        bytes c = {c1, 4};
        expect_request(&c, PS_PROTO_E_BAD_REQUEST, "byte 0xc1 at 3 is not a msgpack type",
                       __LINE__);
        bytes huge = {calloc(PS_PROTO_MAX_MESSAGE + 1, 1), PS_PROTO_MAX_MESSAGE + 1};
        expect_request(&huge, PS_PROTO_E_TOO_LARGE, "at most 16777216", __LINE__);
        free(huge.p);
    }
    kvs_free(&m);
}

static void test_score_columns(void)
{
    kvs m = {0};
    columns_request(&m);

    /* N mismatch between arrays, wrong bin length. */
    uint64_t two[2] = {1, 2};
    msgpack_packer *pk = val();
    msgpack_pack_array(pk, 2);
    for (int i = 0; i < 2; i++)
        msgpack_pack_uint64(pk, two[i]);
    bytes seq2 = val_take();
    kvs_set(&m, "seqs", val_raw(seq2.p, seq2.n));
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "ids has 3 entries but seqs has 2");
    kvs_free(&m);
    columns_request(&m);
    kvs_set(&m, "ts", seq2);
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "ids has 3 entries but ts has 2");
    kvs_free(&m);
    columns_request(&m);
    kvs_set(&m, "metrics", metrics_bin(metrics0, 11));
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "metrics bin is 44 bytes, expected 48 (N=3, K=4");
    kvs_set(&m, "k", val_uint(3));
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "metrics bin is 44 bytes, expected 36 (N=3, K=3");
    kvs_set(&m, "k", val_uint(0));
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "'k' is 0");
    kvs_set(&m, "k", val_uint(PS_PROTO_MAX_K + 1));
    EXPECT(&m, PS_PROTO_E_TOO_LARGE, "'k' is 257 (at most 256");
    kvs_set(&m, "k", val_uint(K0));
    kvs_set(&m, "metrics", metrics_bin(metrics0, 12));
    EXPECT(&m, PS_PROTO_OK, NULL);

    /* Missing keys, each. */
    static const char *const keys[] = {"k", "ids", "seqs", "ts", "metrics"};
    for (int i = 0; i < 5; i++) {
        kvs c = {0};
        kvs_copy(&c, &m);
        kvs_del(&c, keys[i]);
        char want[64];
        snprintf(want, sizeof want, "missing key '%s'", keys[i]);
        EXPECT(&c, PS_PROTO_E_BAD_REQUEST, i == 0 || i == 1 ? NULL : want);
        kvs_free(&c);
    }
    {
        kvs c = {0};
        kvs_copy(&c, &m);
        for (int i = 0; i < 5; i++)
            kvs_del(&c, keys[i]);
        EXPECT(&c, PS_PROTO_E_BAD_REQUEST, "a score request needs 'rows', or 'k'");
        kvs_set(&c, "k", val_uint(4));
        EXPECT(&c, PS_PROTO_E_BAD_REQUEST, "a score request needs");
        kvs_free(&c);
    }

    /* NaN and infinities in the bin, named by heartbeat and metric. */
    float x[12];
    memcpy(x, metrics0, sizeof x);
    x[2 * 4 + 1] = NAN;
    kvs_set(&m, "metrics", metrics_bin(x, 12));
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "heartbeat 2 metric 1 is NaN");
    x[2 * 4 + 1] = 0;
    x[3] = -INFINITY;
    kvs_set(&m, "metrics", metrics_bin(x, 12));
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "heartbeat 0 metric 3 is infinite");
    kvs_set(&m, "metrics", metrics_bin(metrics0, 12));

    /* Timestamps: any number, never NaN or infinite. */
    pk = val();
    msgpack_pack_array(pk, 3);
    msgpack_pack_double(pk, 1.0);
    msgpack_pack_double(pk, INFINITY);
    msgpack_pack_double(pk, 2.0);
    kvs_set(&m, "ts", val_take());
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "heartbeat 1 timestamp is infinite (ts[1])");
    pk = val();
    msgpack_pack_array(pk, 3);
    msgpack_pack_float(pk, NAN);
    msgpack_pack_double(pk, 1.0);
    msgpack_pack_double(pk, 2.0);
    kvs_set(&m, "ts", val_take());
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "heartbeat 0 timestamp is NaN");
    pk = val();
    msgpack_pack_array(pk, 3);
    msgpack_pack_double(pk, 1.0);
    msgpack_pack_str_with_body(pk, "now", 3);
    msgpack_pack_double(pk, 2.0);
    kvs_set(&m, "ts", val_take());
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "ts[1] is a string, expected a number");

    /* Elements of the uint arrays. */
    pk = val();
    msgpack_pack_array(pk, 3);
    msgpack_pack_double(pk, 1.0);
    msgpack_pack_double(pk, 1.0);
    msgpack_pack_double(pk, 2.0);
    kvs_set(&m, "ts", val_take());
    pk = val();
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint64(pk, 1);
    msgpack_pack_int64(pk, -5);
    msgpack_pack_uint64(pk, 3);
    kvs_set(&m, "ids", val_take());
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "ids[1] is a negative integer, expected an unsigned");
    pk = val();
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint64(pk, 1);
    msgpack_pack_uint64(pk, 2);
    msgpack_pack_float(pk, 3.0f);
    kvs_set(&m, "seqs", val_take());
    kvs_set(&m, "ids", val_raw(m.val[kvs_find(&m, "seqs")].p, m.val[kvs_find(&m, "seqs")].n));
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "ids[2] is a float32, expected an unsigned integer");

    /* Repeated processors. */
    pk = val();
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint64(pk, 1);
    msgpack_pack_uint64(pk, 2);
    msgpack_pack_uint64(pk, 3);
    kvs_set(&m, "seqs", val_take());
    pk = val();
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint64(pk, 5);
    msgpack_pack_uint64(pk, 7);
    msgpack_pack_uint64(pk, 5);
    kvs_set(&m, "ids", val_take());
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "ids[2] repeats ids[0] (processor 5)");
    pk = val();
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint64(pk, 9);
    msgpack_pack_uint64(pk, 7);
    msgpack_pack_uint64(pk, 5);
    kvs_set(&m, "ids", val_take());
    EXPECT(&m, PS_PROTO_OK, NULL);

    /* Both forms at once. */
    kvs_set(&m, "rows", val_uint(0));
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "both 'rows' and 'ids' given");
    kvs_free(&m);
}

/* Row form: shapes, K from the first row or from k, values. */
static void test_score_rows(void)
{
    ps_buf b = {0};
    kvs m = {0};
    encode_kind(REQ_ROWS, &b);
    kvs_parse(&m, b.data, b.len);
    EXPECT(&m, PS_PROTO_OK, NULL);
    kvs_del(&m, "k"); /* optional in row form */
    EXPECT(&m, PS_PROTO_OK, NULL);

    msgpack_packer *pk = val();
    msgpack_pack_array(pk, 2);
    msgpack_pack_array(pk, 4);
    msgpack_pack_uint64(pk, 1);
    msgpack_pack_uint64(pk, 1);
    msgpack_pack_double(pk, 1.0);
    msgpack_pack_array(pk, 2);
    msgpack_pack_float(pk, 1.0f);
    msgpack_pack_float(pk, 2.0f);
    msgpack_pack_array(pk, 4);
    msgpack_pack_uint64(pk, 2);
    msgpack_pack_uint64(pk, 1);
    msgpack_pack_double(pk, 1.0);
    msgpack_pack_array(pk, 3);
    msgpack_pack_float(pk, 1.0f);
    msgpack_pack_float(pk, 2.0f);
    msgpack_pack_float(pk, 2.0f);
    kvs_set(&m, "rows", val_take());
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "rows[1] has 3 metrics, expected 2 (as rows[0])");
    kvs_set(&m, "k", val_uint(3));
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "rows[0] has 2 metrics, expected 3 (k)");

    pk = val();
    msgpack_pack_array(pk, 1);
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint64(pk, 1);
    msgpack_pack_uint64(pk, 1);
    msgpack_pack_double(pk, 1.0);
    kvs_set(&m, "rows", val_take());
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "rows[0] has 3 entries, expected 4");
    pk = val();
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 0);
    kvs_set(&m, "rows", val_take());
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "rows[0] is a map, expected an array");
    pk = val();
    msgpack_pack_array(pk, 0);
    kvs_set(&m, "rows", val_take());
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "'rows' is empty");
    kvs_set(&m, "rows", val_str("x"));
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "'rows' is a string, expected an array");

    /* NaN, infinities and out-of-range values in rows, float32 and float64. */
    for (int c = 0; c < 5; c++) {
        pk = val();
        msgpack_pack_array(pk, 3);
        for (int i = 0; i < 3; i++) {
            msgpack_pack_array(pk, 4);
            msgpack_pack_uint64(pk, (uint64_t)i);
            msgpack_pack_uint64(pk, 1);
            msgpack_pack_double(pk, 1.0);
            msgpack_pack_array(pk, 3);
            for (int j = 0; j < 3; j++) {
                if (i == 2 && j == 1 && c == 0)
                    msgpack_pack_float(pk, NAN);
                else if (i == 2 && j == 1 && c == 1)
                    msgpack_pack_double(pk, NAN);
                else if (i == 2 && j == 1 && c == 2)
                    msgpack_pack_double(pk, -INFINITY);
                else if (i == 2 && j == 1 && c == 3)
                    msgpack_pack_double(pk, 1e39);
                else if (i == 2 && j == 1 && c == 4)
                    msgpack_pack_nil(pk);
                else
                    msgpack_pack_double(pk, 0.5);
            }
        }
        kvs_set(&m, "rows", val_take());
        static const char *const want[] = {
            "heartbeat 2 metric 1 is NaN (rows[2][3][1])", "heartbeat 2 metric 1 is NaN",
            "heartbeat 2 metric 1 is infinite", "beyond the float32 range",
            "rows[2][3][1] is nil, expected a number"};
        EXPECT(&m, PS_PROTO_E_BAD_REQUEST, want[c]);
    }
    kvs_free(&m);
    ps_buf_free(&b);
}

/* Every msgpack number type where a float is expected (ts, metrics in row
 * form), and every integer type where an unsigned is (ids, seqs, k, v, id). */
static void test_number_types(void)
{
    enum { NT = 12 };
    /* type t of the list, packed with value index i (small positive or
     * negative values that every type holds). */
    double want[NT];
    bytes vals[NT];
    for (int t = 0; t < NT; t++) {
        msgpack_packer *pk = val();
        switch (t) {
        case 0: /* positive fixint */
            msgpack_pack_uint8(pk, 5), want[t] = 5;
            break;
        case 1: /* negative fixint */
            msgpack_pack_int8(pk, -3), want[t] = -3;
            break;
        case 2:
            msgpack_pack_fix_uint8(pk, 200), want[t] = 200;
            break;
        case 3:
            msgpack_pack_fix_uint16(pk, 60000), want[t] = 60000;
            break;
        case 4:
            msgpack_pack_fix_uint32(pk, 4000000000u), want[t] = 4000000000.0;
            break;
        case 5:
            msgpack_pack_fix_uint64(pk, UINT64_C(1) << 40), want[t] = 1099511627776.0;
            break;
        case 6:
            msgpack_pack_fix_int8(pk, -100), want[t] = -100;
            break;
        case 7:
            msgpack_pack_fix_int16(pk, -30000), want[t] = -30000;
            break;
        case 8:
            msgpack_pack_fix_int32(pk, -2000000000), want[t] = -2000000000.0;
            break;
        case 9:
            msgpack_pack_fix_int64(pk, INT64_MIN), want[t] = -9223372036854775808.0;
            break;
        case 10:
            msgpack_pack_float(pk, 0.25f), want[t] = 0.25;
            break;
        default:
            msgpack_pack_double(pk, -1.5e10), want[t] = -1.5e10;
            break;
        }
        vals[t] = val_take();
    }
    /* One request: heartbeat t has ts of type t and metric 0 of type t. */
    msgpack_packer *pk = val();
    msgpack_pack_array(pk, NT);
    for (int t = 0; t < NT; t++) {
        msgpack_pack_array(pk, 4);
        msgpack_pack_uint64(pk, (uint64_t)t);
        msgpack_pack_uint64(pk, 1);
        msgpack_sbuffer_write(&vsb, (const char *)vals[t].p, vals[t].n);
        msgpack_pack_array(pk, 2);
        msgpack_sbuffer_write(&vsb, (const char *)vals[t].p, vals[t].n);
        msgpack_pack_float(pk, 1.0f);
    }
    bytes rows = val_take();
    kvs m = {0};
    kvs_add(&m, "v", val_uint(1));
    kvs_add(&m, "op", val_str("score"));
    kvs_add(&m, "rows", rows);
    bytes msg = kvs_build(&m);
    ps_proto_request r = {0};
    char err[256];
    CHECKF(ps_proto_decode_request(msg.p, msg.n, &r, err, sizeof err) == 0, "%s", err);
    for (int t = 0; t < NT && r.n == NT; t++) {
        CHECKF(r.ts[t] == want[t], "type %d: ts %.17g", t, r.ts[t]);
        CHECKF(r.metrics[2 * t] == (float)want[t], "type %d: metric %.9g", t, r.metrics[2 * t]);
    }
    free(msg.p);

    /* The same in columnar ts. */
    kvs c = {0};
    columns_request(&c);
    for (int t = 0; t < NT; t++) {
        pk = val();
        msgpack_pack_array(pk, 3);
        msgpack_pack_double(pk, 1.0);
        msgpack_sbuffer_write(&vsb, (const char *)vals[t].p, vals[t].n);
        msgpack_pack_double(pk, 2.0);
        kvs_set(&c, "ts", val_take());
        msg = kvs_build(&c);
        CHECKF(ps_proto_decode_request(msg.p, msg.n, &r, err, sizeof err) == 0, "%s", err);
        CHECK(r.n == 3 && r.ts[1] == want[t]);
        free(msg.p);
    }

    /* Unsigned fields take every integer type holding a value >= 0 and
     * refuse negative values and floats, whatever the type. */
    for (int t = 0; t < 6; t++) {
        static const uint8_t u_types[6][10] = {{0x01},
                                               {0xcc, 0x01},
                                               {0xcd, 0x00, 0x01},
                                               {0xce, 0, 0, 0, 1},
                                               {0xcf, 0, 0, 0, 0, 0, 0, 0, 1},
                                               {0xd3, 0, 0, 0, 0, 0, 0, 0, 1}};
        static const size_t u_len[6] = {1, 2, 3, 5, 9, 9};
        kvs_set(&c, "v", val_raw(u_types[t], u_len[t]));
        kvs_set(&c, "id", val_raw(u_types[t], u_len[t]));
        EXPECT(&c, PS_PROTO_OK, NULL);
        uint8_t s_types[4][9] = {{0xd0, 1}, {0xd1, 0, 1}, {0xd2, 0, 0, 0, 1}, {0}};
        size_t s_len[3] = {2, 3, 5};
        if (t < 3) {
            kvs_set(&c, "k", val_raw(s_types[t], s_len[t]));
            kvs_set(&c, "metrics", metrics_bin(metrics0, 3));
            EXPECT(&c, PS_PROTO_OK, NULL);
        }
    }
    kvs_set(&c, "k", val_raw((const uint8_t[]){0xd0, 0xff}, 2));
    EXPECT(&c, PS_PROTO_E_BAD_REQUEST, "'k' is a negative integer");
    kvs_set(&c, "k", val_raw((const uint8_t[]){0xca, 0x3f, 0x80, 0, 0}, 5));
    EXPECT(&c, PS_PROTO_E_BAD_REQUEST, "'k' is a float32, expected an unsigned integer");
    kvs_set(&c, "k", val_raw((const uint8_t[]){0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0}, 9));
    EXPECT(&c, PS_PROTO_E_BAD_REQUEST, "'k' is a float64");

    for (int t = 0; t < NT; t++)
        free(vals[t].p);
    kvs_free(&m);
    kvs_free(&c);
    ps_proto_request_free(&r);
}

/* Counts that claim more than the bytes hold fail at once, before any
 * allocation; real but too many entries fail as too_large. */
static void test_limits(void)
{
    ps_proto_request r = {0};
    char err[256];
    /* {"v":1,"op":"score","ids": array32 of 2^32-1 entries} */
    uint8_t claim[] = {0x83, 0xa1, 'v', 0x01, 0xa2, 'o',  'p',  0xa5, 's',  'c',  'o', 'r',
                       'e',  0xa3, 'i', 'd',  's',  0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK(ps_proto_decode_request(claim, sizeof claim, &r, err, sizeof err) ==
          PS_PROTO_E_BAD_REQUEST);
    CHECKF(strstr(err, "declares 4294967295 entries but only 1 bytes are left"), "%s", err);
    CHECK(r.mem.cap == 0); /* nothing was allocated */
    /* A map32 and a bin32 and a str32 claiming 4 GiB. */
    uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'v'};
    CHECK(ps_proto_decode_request(map32, sizeof map32, &r, err, sizeof err) ==
          PS_PROTO_E_BAD_REQUEST);
    CHECKF(strstr(err, "map at byte 0 declares"), "%s", err);
    uint8_t bin32[] = {0x81, 0xa1, 'x', 0xc6, 0xff, 0xff, 0xff, 0xff, 0x00};
    CHECK(ps_proto_decode_request(bin32, sizeof bin32, &r, err, sizeof err) ==
          PS_PROTO_E_BAD_REQUEST);
    CHECKF(strstr(err, "bin at byte 3 declares 4294967295 bytes, 1 left"), "%s", err);
    uint8_t str32[] = {0x81, 0xdb, 0x7f, 0xff, 0xff, 0xff, 'v'};
    CHECK(ps_proto_decode_request(str32, sizeof str32, &r, err, sizeof err) ==
          PS_PROTO_E_BAD_REQUEST);
    CHECK(r.mem.cap == 0);

    /* 65537 real heartbeats: too_large, still nothing allocated. */
    size_t n = PS_PROTO_MAX_BATCH + 1;
    msgpack_packer *pk = val();
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_uint64(pk, i);
    bytes ids = val_take();
    kvs m = {0};
    columns_request(&m);
    kvs_set(&m, "ids", val_raw(ids.p, ids.n));
    kvs_set(&m, "seqs", val_raw(ids.p, ids.n));
    bytes msg = kvs_build(&m);
    CHECK(ps_proto_decode_request(msg.p, msg.n, &r, err, sizeof err) == PS_PROTO_E_TOO_LARGE);
    CHECKF(strstr(err, "'ids' has 65537 entries (at most 65536"), "%s", err);
    CHECK(r.mem.cap == 0);
    free(msg.p);
    kvs_del(&m, "ids");
    kvs_del(&m, "seqs");
    kvs_del(&m, "ts");
    kvs_del(&m, "metrics");
    kvs_del(&m, "k");
    /* rows claiming 65536 entries in a few bytes */
    uint8_t rows[] = {0xdc, 0xff, 0xff, 0x90};
    kvs_set(&m, "rows", val_raw(rows, sizeof rows));
    msg = kvs_build(&m);
    CHECK(ps_proto_decode_request(msg.p, msg.n, &r, err, sizeof err) == PS_PROTO_E_BAD_REQUEST);
    CHECKF(strstr(err, "declares 65535 entries"), "%s", err);
    CHECK(r.mem.cap == 0);
    free(msg.p);
    free(ids.p);

    /* The largest request: N = 65536 heartbeats in row form is accepted;
     * the encoder refuses a columnar one over 16 MiB. */
    ps_proto_request big = {0};
    uint64_t *bids = malloc(PS_PROTO_MAX_BATCH * sizeof *bids);
    double *bts = malloc(PS_PROTO_MAX_BATCH * sizeof *bts);
    float *bm = calloc((size_t)PS_PROTO_MAX_BATCH * 80, sizeof *bm);
    for (size_t i = 0; i < PS_PROTO_MAX_BATCH; i++) {
        bids[i] = i;
        bts[i] = (double)i;
    }
    big.op = PS_PROTO_OP_SCORE;
    big.n = PS_PROTO_MAX_BATCH;
    big.k = 1;
    big.ids = bids;
    big.seqs = bids;
    big.ts = bts;
    big.metrics = bm;
    ps_buf b = {0};
    CHECK(ps_proto_encode_request(&b, &big, PS_PROTO_FORM_ROWS, err, sizeof err) == 0);
    CHECKF(ps_proto_decode_request(b.data, b.len, &r, err, sizeof err) == 0, "%s", err);
    CHECK(r.n == PS_PROTO_MAX_BATCH && r.k == 1);
    big.k = 80; /* 65536 x 80 x 4 = 20 MiB of metrics */
    CHECK(ps_proto_encode_request(&b, &big, PS_PROTO_FORM_COLUMNS, err, sizeof err) ==
          PS_PROTO_E_TOO_LARGE);
    CHECKF(strstr(err, "metrics bin would be 20971520 bytes"), "%s", err);
    big.n = PS_PROTO_MAX_BATCH + 1;
    CHECK(ps_proto_encode_request(&b, &big, PS_PROTO_FORM_ROWS, err, sizeof err) ==
          PS_PROTO_E_TOO_LARGE);
    big.n = 2;
    big.k = 257;
    CHECK(ps_proto_encode_request(&b, &big, PS_PROTO_FORM_ROWS, err, sizeof err) ==
          PS_PROTO_E_TOO_LARGE);
    big.k = 0;
    CHECK(ps_proto_encode_request(&b, &big, PS_PROTO_FORM_ROWS, err, sizeof err) ==
          PS_PROTO_E_BAD_REQUEST);
    big.k = 2;
    bm[3] = NAN;
    CHECK(ps_proto_encode_request(&b, &big, PS_PROTO_FORM_ROWS, err, sizeof err) ==
          PS_PROTO_E_BAD_REQUEST);
    CHECKF(strstr(err, "heartbeat 1 metric 1 is NaN"), "%s", err);
    bm[3] = 0;
    bids[1] = 0;
    CHECK(ps_proto_encode_request(&b, &big, PS_PROTO_FORM_COLUMNS, err, sizeof err) ==
          PS_PROTO_E_BAD_REQUEST);
    CHECKF(strstr(err, "ids[1] repeats ids[0]"), "%s", err);
    free(bids);
    free(bts);
    free(bm);
    /* The block shrinks again after a huge message. */
    size_t cap = r.mem.cap;
    ps_buf small = {0};
    encode_kind(REQ_COLS, &small);
    CHECK(ps_proto_decode_request(small.data, small.len, &r, err, sizeof err) == 0);
    CHECK(r.mem.cap < cap);
    ps_buf_free(&small);
    ps_buf_free(&b);
    kvs_free(&m);
    ps_proto_request_free(&r);
}

/* Every prefix of every valid message is refused; so is every field
 * dropped, doubled or replaced by a value of the wrong type. */
static void test_every_field(void)
{
    ps_buf b = {0};
    decoded d = {0}, d0 = {0};
    for (int k = 0; k < NKINDS; k++) {
        encode_kind((enum kind)k, &b);
        decode_kind((enum kind)k, b.data, b.len, &d0);
        for (size_t len = 0; len < b.len; len++) {
            int rc = decode_kind((enum kind)k, b.data, len, &d);
            CHECKF(rc == PS_PROTO_E_BAD_REQUEST, "%s cut to %zu bytes: %d", kind_names[k], len, rc);
            CHECKF(len == 0 || strstr(d.err, "truncated") || strstr(d.err, "declares"),
                   "%s cut to %zu: %s", kind_names[k], len, d.err);
        }
        kvs m = {0};
        kvs_parse(&m, b.data, b.len);
        for (int f = 0; f < m.n; f++) {
            const char *key = m.key[f];
            bool optional = !strcmp(key, "id") || (k == REQ_ROWS && !strcmp(key, "k"));
            kvs c = {0};
            kvs_copy(&c, &m);
            kvs_del(&c, key);
            bytes msg = kvs_build(&c);
            decode_kind((enum kind)k, msg.p, msg.n, &d);
            CHECKF(optional ? d.rc == 0 : d.rc != 0, "%s without '%s': %d %s", kind_names[k], key,
                   d.rc, d.err);
            free(msg.p);
            kvs_free(&c);

            kvs_copy(&c, &m);
            kvs_add(&c, key, val_raw(m.val[f].p, m.val[f].n));
            msg = kvs_build(&c);
            decode_kind((enum kind)k, msg.p, msg.n, &d);
            CHECKF(d.rc == PS_PROTO_E_BAD_REQUEST && strstr(d.err, "appears twice"),
                   "%s with '%s' twice: %s", kind_names[k], key, d.err);
            free(msg.p);
            kvs_free(&c);

            /* The first byte says the type of what is there now. */
            uint8_t t0 = m.val[f].p[0];
            bool is_float = t0 == 0xca || t0 == 0xcb;
            bool is_str = (t0 >= 0xa0 && t0 <= 0xbf) || (t0 >= 0xd9 && t0 <= 0xdb);
            bool is_array = (t0 >= 0x90 && t0 <= 0x9f) || t0 == 0xdc || t0 == 0xdd;
            bool is_map = (t0 >= 0x80 && t0 <= 0x8f) || t0 == 0xde || t0 == 0xdf;
            bool is_bin = t0 >= 0xc4 && t0 <= 0xc6;
            for (int w = 0; w < 8; w++) {
                msgpack_packer *pk = val();
                bool same = false;
                switch (w) {
                case 0:
                    msgpack_pack_nil(pk);
                    break;
                case 1:
                    msgpack_pack_true(pk);
                    break;
                case 2:
                    msgpack_pack_str_with_body(pk, "wrong", 5), same = is_str;
                    break;
                case 3:
                    msgpack_pack_bin_with_body(pk, "ab", 2), same = is_bin;
                    break;
                case 4:
                    msgpack_pack_array(pk, 0), same = is_array;
                    break;
                case 5:
                    msgpack_pack_map(pk, 0), same = is_map;
                    break;
                case 6:
                    msgpack_pack_int8(pk, -1), same = is_float;
                    break;
                default:
                    msgpack_pack_double(pk, 0.5), same = is_float;
                    break;
                }
                if (same) continue;
                kvs_copy(&c, &m);
                kvs_set(&c, key, val_take());
                msg = kvs_build(&c);
                decode_kind((enum kind)k, msg.p, msg.n, &d);
                CHECKF(d.rc != 0 && strstr(d.err, key), "%s: '%s' as wrong type %d: %d %s",
                       kind_names[k], key, w, d.rc, d.err);
                free(msg.p);
                kvs_free(&c);
            }
        }
        /* An unknown key changes nothing. */
        kvs_add(&m, "x-future", val_str("ignored"));
        bytes msg = kvs_build(&m);
        decode_kind((enum kind)k, msg.p, msg.n, &d);
        CHECKF(d.rc == 0 && decoded_eq((enum kind)k, &d, &d0), "%s with an unknown key: %s",
               kind_names[k], d.err);
        free(msg.p);
        kvs_free(&m);
    }
    decoded_free(&d);
    decoded_free(&d0);
    ps_buf_free(&b);
}

/* Replies and the stream: the refusals a client relies on. */
static void test_reply_refusals(void)
{
    ps_buf b = {0};
    kvs m = {0};
    decoded d = {0};
    encode_kind(REP_SCORE, &b);
    kvs_parse(&m, b.data, b.len);
    kvs_set(&m, "pfp", val_raw((const uint8_t[]){0xc4, 0x08, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f}, 10));
    bytes msg = kvs_build(&m);
    CHECK(decode_kind(REP_SCORE, msg.p, msg.n, &d) == PS_PROTO_E_BAD_REQUEST);
    CHECKF(strstr(d.err, "pfp bin is 8 bytes, expected 32"), "%s", d.err);
    free(msg.p);
    kvs_free(&m);

    /* pfp above 1, top below -1 */
    ps_proto_result bad = results0[1];
    bad.pfp = 1.5;
    ps_proto_score_reply s = {1, 1, &bad};
    char err[256];
    CHECK(ps_proto_encode_score_reply(&b, NULL, &s, err, sizeof err) == PS_PROTO_E_INTERNAL);
    bad.pfp = 0.5;
    bad.top = -2;
    CHECK(ps_proto_encode_score_reply(&b, NULL, &s, err, sizeof err) == PS_PROTO_E_INTERNAL);
    bad.top = 0;
    bad.score = NAN;
    CHECK(ps_proto_encode_score_reply(&b, NULL, &s, err, sizeof err) == PS_PROTO_E_INTERNAL);

    encode_kind(REP_HEALTH, &b);
    kvs_parse(&m, b.data, b.len);
    kvs_set(&m, "status", val_str("sleeping"));
    msg = kvs_build(&m);
    CHECK(decode_kind(REP_HEALTH, msg.p, msg.n, &d) == PS_PROTO_E_BAD_REQUEST);
    CHECKF(strstr(d.err, "unknown health status 'sleeping'"), "%s", d.err);
    free(msg.p);
    kvs_free(&m);

    encode_kind(REP_INFO, &b);
    kvs_parse(&m, b.data, b.len);
    msgpack_packer *pk = val();
    msgpack_pack_map(pk, 2);
    msgpack_pack_str_with_body(pk, "scored", 6);
    msgpack_pack_uint8(pk, 1);
    msgpack_pack_str_with_body(pk, "scored", 6);
    msgpack_pack_uint8(pk, 1);
    kvs_set(&m, "processors", val_take());
    msg = kvs_build(&m);
    CHECK(decode_kind(REP_INFO, msg.p, msg.n, &d) == PS_PROTO_E_BAD_REQUEST);
    CHECKF(strstr(d.err, "key 'scored' appears twice in 'processors'"), "%s", d.err);
    free(msg.p);
    pk = val();
    msgpack_pack_map(pk, 2);
    msgpack_pack_str_with_body(pk, "scored", 6);
    msgpack_pack_uint8(pk, 1);
    msgpack_pack_str_with_body(pk, "stale", 5);
    msgpack_pack_uint8(pk, 1);
    kvs_set(&m, "processors", val_take());
    msg = kvs_build(&m);
    CHECK(decode_kind(REP_INFO, msg.p, msg.n, &d) == PS_PROTO_E_BAD_REQUEST);
    CHECKF(strstr(d.err, "missing key 'warming_up' in 'processors'"), "%s", d.err);
    free(msg.p);
    kvs_set(&m, "model", val_raw((const uint8_t[]){0xa3, 'a', 0, 'b'}, 4));
    msg = kvs_build(&m);
    CHECK(decode_kind(REP_INFO, msg.p, msg.n, &d) == PS_PROTO_E_BAD_REQUEST);
    CHECKF(strstr(d.err, "'model' contains a NUL byte"), "%s", d.err);
    free(msg.p);
    kvs_free(&m);

    encode_kind(PUB, &b);
    kvs_parse(&m, b.data, b.len);
    kvs_set(&m, "seq", val_uint(0));
    msg = kvs_build(&m);
    CHECK(decode_kind(PUB, msg.p, msg.n, &d) == PS_PROTO_E_BAD_REQUEST);
    CHECKF(strstr(d.err, "'seq' is 0"), "%s", d.err);
    free(msg.p);
    kvs_set(&m, "seq", val_uint(UINT64_MAX - 1)); /* 3 records would end past 2^64 - 1 */
    msg = kvs_build(&m);
    CHECK(decode_kind(PUB, msg.p, msg.n, &d) == PS_PROTO_E_BAD_REQUEST);
    CHECKF(strstr(d.err, "overflows"), "%s", d.err);
    free(msg.p);
    kvs_free(&m);
    decoded_free(&d);
    ps_buf_free(&b);
}

/* ---- op latest -------------------------------------------------------------- */

static bytes uint_array(const uint64_t *v, size_t n)
{
    msgpack_packer *pk = val();
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_uint64(pk, v[i]);
    return val_take();
}

static void test_latest(void)
{
    ps_buf b = {0};
    char err[256];
    ps_proto_request r = {0};

    /* Round trips: with and without an id, one id and the most. */
    for (int with_id = 0; with_id < 2; with_id++) {
        ps_proto_request in = request0(PS_PROTO_OP_LATEST, with_id);
        CHECK(ps_proto_encode_request(&b, &in, PS_PROTO_FORM_COLUMNS, err, sizeof err) == 0);
        CHECK(one_object(b.data, b.len));
        CHECKF(ps_proto_decode_request(b.data, b.len, &r, err, sizeof err) == 0, "%s", err);
        CHECK(request_eq(&in, &r) && r.op == PS_PROTO_OP_LATEST && r.k == 0);
        CHECK(r.form == PS_PROTO_FORM_COLUMNS && !r.seqs && !r.ts && !r.metrics);
    }
    uint64_t *many = malloc((PS_PROTO_MAX_BATCH + 1) * sizeof *many);
    for (size_t i = 0; i <= PS_PROTO_MAX_BATCH; i++)
        many[i] = (uint64_t)(PS_PROTO_MAX_BATCH - i) * 0x9e3779b97f4a7c15u; /* distinct */
    ps_proto_request big = {.op = PS_PROTO_OP_LATEST, .n = PS_PROTO_MAX_BATCH, .ids = many};
    CHECK(ps_proto_encode_request(&b, &big, PS_PROTO_FORM_COLUMNS, err, sizeof err) == 0);
    CHECKF(ps_proto_decode_request(b.data, b.len, &r, err, sizeof err) == 0, "%s", err);
    CHECK(r.n == PS_PROTO_MAX_BATCH && !memcmp(r.ids, many, r.n * 8));

    /* The encoder's refusals. */
    big.n = PS_PROTO_MAX_BATCH + 1;
    CHECK(ps_proto_encode_request(&b, &big, PS_PROTO_FORM_COLUMNS, err, sizeof err) ==
          PS_PROTO_E_TOO_LARGE);
    CHECKF(strstr(err, "65537 processors in one latest request"), "%s", err);
    big.n = 0;
    CHECK(ps_proto_encode_request(&b, &big, PS_PROTO_FORM_COLUMNS, err, sizeof err) ==
          PS_PROTO_E_BAD_REQUEST);
    CHECKF(strstr(err, "at least one processor"), "%s", err);
    big.n = 3;
    big.ids = NULL;
    CHECK(ps_proto_encode_request(&b, &big, PS_PROTO_FORM_COLUMNS, err, sizeof err) ==
          PS_PROTO_E_BAD_REQUEST);
    uint64_t dup[3] = {5, 7, 5};
    big.ids = dup;
    CHECK(ps_proto_encode_request(&b, &big, PS_PROTO_FORM_COLUMNS, err, sizeof err) ==
          PS_PROTO_E_BAD_REQUEST);
    CHECKF(strstr(err, "ids[2] repeats ids[0] (processor 5)"), "%s", err);

    /* The decoder's refusals. */
    kvs m = {0};
    encode_kind(REQ_LATEST, &b);
    kvs_parse(&m, b.data, b.len);
    EXPECT(&m, PS_PROTO_OK, NULL);
    kvs_set(&m, "ids", uint_array(dup, 3));
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "ids[2] repeats ids[0] (processor 5)");
    kvs_set(&m, "ids", uint_array(dup, 0));
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "'ids' is empty: a latest request asks for at least one");
    kvs_set(&m, "ids", val_str("17"));
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "'ids' is a string, expected an array");
    msgpack_packer *pk = val();
    msgpack_pack_map(pk, 0);
    kvs_set(&m, "ids", val_take());
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "'ids' is a map, expected an array");
    pk = val();
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint64(pk, 1);
    msgpack_pack_int64(pk, -1);
    kvs_set(&m, "ids", val_take());
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "ids[1] is a negative integer, expected an unsigned");
    pk = val();
    msgpack_pack_array(pk, 2);
    msgpack_pack_double(pk, 1.0);
    msgpack_pack_uint64(pk, 2);
    kvs_set(&m, "ids", val_take());
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "ids[0] is a float64, expected an unsigned integer");
    pk = val();
    msgpack_pack_array(pk, 1);
    msgpack_pack_nil(pk);
    kvs_set(&m, "ids", val_take());
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "ids[0] is nil");
    kvs_del(&m, "ids");
    EXPECT(&m, PS_PROTO_E_BAD_REQUEST, "missing key 'ids' (latest request)");
    /* The keys of a score request mean nothing here: ignored. */
    kvs_set(&m, "ids", uint_array(ids0, N0));
    kvs_set(&m, "k", val_str("not a number"));
    kvs_set(&m, "rows", val_uint(1));
    EXPECT(&m, PS_PROTO_OK, NULL);
    kvs_del(&m, "k");
    kvs_del(&m, "rows");
    /* 65537 real ids: too_large, nothing allocated; a count the bytes
     * cannot hold: bad_request, nothing allocated. */
    kvs_set(&m, "ids", uint_array(many, PS_PROTO_MAX_BATCH + 1));
    {
        bytes msg = kvs_build(&m);
        ps_proto_request fresh = {0};
        CHECK(ps_proto_decode_request(msg.p, msg.n, &fresh, err, sizeof err) ==
              PS_PROTO_E_TOO_LARGE);
        CHECKF(strstr(err, "'ids' has 65537 entries (at most 65536 processors per latest"), "%s",
               err);
        CHECK(fresh.mem.cap == 0 && fresh.n == 0 && fresh.ids == NULL);
        CHECK(fresh.op == PS_PROTO_OP_LATEST && fresh.has_id);
        free(msg.p);
        static const uint8_t claim[] = {0xdc, 0xff, 0xff, 0x01};
        kvs_set(&m, "ids", val_raw(claim, sizeof claim));
        msg = kvs_build(&m);
        CHECK(ps_proto_decode_request(msg.p, msg.n, &fresh, err, sizeof err) ==
              PS_PROTO_E_BAD_REQUEST);
        CHECKF(strstr(err, "declares 65535 entries"), "%s", err);
        CHECK(fresh.mem.cap == 0);
        free(msg.p);
        ps_proto_request_free(&fresh);
    }
    /* Bytes after the map. */
    kvs_set(&m, "ids", uint_array(ids0, N0));
    {
        bytes good = kvs_build(&m), bad = {malloc(good.n + 1), good.n + 1};
        memcpy(bad.p, good.p, good.n);
        bad.p[good.n] = 0xc0;
        expect_request(&bad, PS_PROTO_E_BAD_REQUEST, "1 bytes after the end of the message map",
                       __LINE__);
        free(good.p);
        free(bad.p);
    }
    kvs_free(&m);

    /* Replies: round trips, the empty one, and refusals. */
    ps_proto_reply rep = {0};
    uint64_t id = 9;
    ps_proto_latest_reply l = {78, 4, latest0, latest_ts0};
    CHECK(ps_proto_encode_latest_reply(&b, &id, &l, err, sizeof err) == 0);
    CHECK(one_object(b.data, b.len));
    CHECKF(ps_proto_decode_reply(b.data, b.len, &rep, err, sizeof err) == 0, "%s", err);
    CHECK(rep.op == PS_PROTO_OP_LATEST && rep.has_id && rep.id == 9 && rep.latest.tick == 78);
    CHECK(rep.latest.n == 4 && rep.score.n == 0);
    for (size_t i = 0; i < 4 && rep.latest.n == 4; i++)
        CHECK(result_eq(&rep.latest.results[i], &latest0[i]) &&
              !memcmp(&rep.latest.ts[i], &latest_ts0[i], 8));
    ps_proto_latest_reply none = {0, 0, NULL, NULL};
    CHECK(ps_proto_encode_latest_reply(&b, NULL, &none, err, sizeof err) == 0);
    CHECK(ps_proto_decode_reply(b.data, b.len, &rep, err, sizeof err) == 0);
    CHECK(rep.op == PS_PROTO_OP_LATEST && rep.latest.n == 0 && !rep.has_id);

    double bad_ts[4] = {1, 2, NAN, 4};
    l.ts = bad_ts;
    CHECK(ps_proto_encode_latest_reply(&b, &id, &l, err, sizeof err) == PS_PROTO_E_INTERNAL);
    CHECKF(strstr(err, "result 2: ts is NaN"), "%s", err);
    l.ts = NULL;
    CHECK(ps_proto_encode_latest_reply(&b, &id, &l, err, sizeof err) == PS_PROTO_E_INTERNAL);
    l.ts = latest_ts0;
    ps_proto_result badr[4];
    memcpy(badr, latest0, sizeof badr);
    badr[1].pfp = 2.0;
    l.results = badr;
    CHECK(ps_proto_encode_latest_reply(&b, &id, &l, err, sizeof err) == PS_PROTO_E_INTERNAL);
    l.results = latest0;
    l.n = PS_PROTO_MAX_BATCH + 1;
    CHECK(ps_proto_encode_latest_reply(&b, &id, &l, err, sizeof err) == PS_PROTO_E_TOO_LARGE);

    decoded d = {0};
    encode_kind(REP_LATEST, &b);
    kvs_parse(&m, b.data, b.len);
    kvs_set(&m, "ts", uint_array(ids0, 3));
    bytes msg = kvs_build(&m);
    CHECK(decode_kind(REP_LATEST, msg.p, msg.n, &d) == PS_PROTO_E_BAD_REQUEST);
    CHECKF(strstr(d.err, "ids has 4 entries but ts has 3"), "%s", d.err);
    free(msg.p);
    pk = val();
    msgpack_pack_array(pk, 4);
    msgpack_pack_double(pk, 1.0);
    msgpack_pack_double(pk, 1.0);
    msgpack_pack_float(pk, INFINITY);
    msgpack_pack_double(pk, 1.0);
    kvs_set(&m, "ts", val_take());
    msg = kvs_build(&m);
    CHECK(decode_kind(REP_LATEST, msg.p, msg.n, &d) == PS_PROTO_E_BAD_REQUEST);
    CHECKF(strstr(d.err, "result timestamp is infinite (ts[2])"), "%s", d.err);
    CHECK(d.rep.latest.n == 0 && d.rep.latest.results == NULL && d.rep.latest.ts == NULL);
    free(msg.p);
    kvs_set(&m, "state", uint_array(ids0, 2));
    msg = kvs_build(&m);
    CHECK(decode_kind(REP_LATEST, msg.p, msg.n, &d) == PS_PROTO_E_BAD_REQUEST);
    CHECKF(strstr(d.err, "ids has 4 entries but state has 2"), "%s", d.err);
    free(msg.p);
    kvs_free(&m);
    decoded_free(&d);
    ps_proto_reply_free(&rep);
    ps_proto_request_free(&r);
    free(many);
    ps_buf_free(&b);
}

/* ---- metrics on the stream ------------------------------------------------- */

static void test_pub_metrics(void)
{
    ps_buf b = {0};
    char err[256];
    decoded d = {0};

    /* Round trip, and a message without metrics decodes as K = 0. */
    encode_kind(PUB_X, &b);
    CHECK(one_object(b.data, b.len));
    CHECKF(decode_kind(PUB_X, b.data, b.len, &d) == 0, "%s", d.err);
    CHECK(d.pub.n == 3 && d.pub.k == K0 && d.pub.x && !memcmp(d.pub.x, metrics0, sizeof metrics0));
    encode_kind(PUB, &b);
    CHECK(decode_kind(PUB, b.data, b.len, &d) == 0);
    CHECK(d.pub.n == 3 && d.pub.k == 0 && d.pub.x == NULL);
    /* No records but K given: "k" and an empty "x" go out and come back. */
    ps_proto_pub p = {.run = 1, .seq = 4, .tick = 2, .t = 3.0, .k = 7};
    CHECK(ps_proto_encode_pub(&b, &p, err, sizeof err) == 0);
    CHECK(decode_kind(PUB, b.data, b.len, &d) == 0 && d.pub.n == 0 && d.pub.k == 7);

    /* The decoder's refusals. */
    kvs m = {0};
    encode_kind(PUB_X, &b);
    kvs_parse(&m, b.data, b.len);
    struct {
        const char *key;
        bytes v;
        int code;
        const char *want;
    } cases[] = {
        {"x", metrics_bin(metrics0, 11), PS_PROTO_E_BAD_REQUEST,
         "x bin is 44 bytes, expected 48 (n=3, K=4, float32)"},
        {"k", val_uint(3), PS_PROTO_E_BAD_REQUEST, "x bin is 48 bytes, expected 36 (n=3, K=3"},
        {"k", val_uint(0), PS_PROTO_E_BAD_REQUEST, "'k' is 0"},
        {"k", val_uint(PS_PROTO_MAX_K + 1), PS_PROTO_E_TOO_LARGE, "'k' is 257 (at most 256"},
        {"k", val_str("4"), PS_PROTO_E_BAD_REQUEST, "'k' is a string, expected an unsigned"},
        {"k", val_raw((const uint8_t[]){0xcb, 0x40, 0x10, 0, 0, 0, 0, 0, 0}, 9),
         PS_PROTO_E_BAD_REQUEST, "'k' is a float64"},
        {"x", val_str("abcd"), PS_PROTO_E_BAD_REQUEST, "'x' is a string, expected a bin"},
        {"x", uint_array(ids0, 3), PS_PROTO_E_BAD_REQUEST, "'x' is an array, expected a bin"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        kvs t = {0};
        kvs_copy(&t, &m);
        kvs_set(&t, cases[c].key, cases[c].v);
        bytes msg = kvs_build(&t);
        int rc = decode_kind(PUB_X, msg.p, msg.n, &d);
        CHECKF(rc == cases[c].code && strstr(d.err, cases[c].want), "case %zu: %d %s", c, rc,
               d.err);
        CHECK(d.pub.n == 0 && d.pub.k == 0 && d.pub.x == NULL && d.pub.records == NULL);
        free(msg.p);
        kvs_free(&t);
    }
    /* NaN and infinities in x, named by record and metric. */
    float x[N0 * K0];
    memcpy(x, metrics0, sizeof x);
    for (int c = 0; c < 2; c++) {
        x[2 * K0 + 1] = c ? -INFINITY : NAN;
        kvs t = {0};
        kvs_copy(&t, &m);
        kvs_set(&t, "x", metrics_bin(x, N0 * K0));
        bytes msg = kvs_build(&t);
        CHECK(decode_kind(PUB_X, msg.p, msg.n, &d) == PS_PROTO_E_BAD_REQUEST);
        CHECKF(strstr(d.err, c ? "record 2 metric 1 is infinite (x bin)"
                               : "record 2 metric 1 is NaN (x bin)"),
               "%s", d.err);
        free(msg.p);
        kvs_free(&t);
    }
    /* Both or neither. */
    {
        kvs t = {0};
        kvs_copy(&t, &m);
        kvs_del(&t, "k");
        bytes msg = kvs_build(&t);
        CHECK(decode_kind(PUB_X, msg.p, msg.n, &d) == PS_PROTO_E_BAD_REQUEST);
        CHECKF(strstr(d.err, "'x' without 'k'"), "%s", d.err);
        free(msg.p);
        kvs_del(&t, "x");
        msg = kvs_build(&t);
        CHECK(decode_kind(PUB_X, msg.p, msg.n, &d) == 0 && d.pub.k == 0 && d.pub.n == 3);
        free(msg.p);
        kvs_free(&t);
        kvs_copy(&t, &m);
        kvs_del(&t, "x");
        msg = kvs_build(&t);
        CHECK(decode_kind(PUB_X, msg.p, msg.n, &d) == PS_PROTO_E_BAD_REQUEST);
        CHECKF(strstr(d.err, "missing key 'x'"), "%s", d.err);
        free(msg.p);
        kvs_free(&t);
    }
    /* Bytes after the map. */
    {
        bytes good = kvs_build(&m), bad = {malloc(good.n + 2), good.n + 2};
        memcpy(bad.p, good.p, good.n);
        bad.p[good.n] = 0x00;
        bad.p[good.n + 1] = 0x00;
        CHECK(decode_kind(PUB_X, bad.p, bad.n, &d) == PS_PROTO_E_BAD_REQUEST);
        CHECKF(strstr(d.err, "2 bytes after the end of the message map"), "%s", d.err);
        free(good.p);
        free(bad.p);
    }
    kvs_free(&m);

    /* The encoder's refusals. */
    p = (ps_proto_pub){
        .run = 1, .seq = 1, .tick = 1, .t = 1.0, .n = N0, .records = records0, .k = K0, .x = x};
    x[2 * K0 + 1] = NAN;
    CHECK(ps_proto_encode_pub(&b, &p, err, sizeof err) == PS_PROTO_E_INTERNAL);
    CHECKF(strstr(err, "record 2 metric 1 is NaN"), "%s", err);
    x[2 * K0 + 1] = 0;
    p.x = NULL;
    CHECK(ps_proto_encode_pub(&b, &p, err, sizeof err) == PS_PROTO_E_INTERNAL);
    p.x = x;
    p.k = PS_PROTO_MAX_K + 1;
    CHECK(ps_proto_encode_pub(&b, &p, err, sizeof err) == PS_PROTO_E_TOO_LARGE);

    /* How many records one message holds: the most, with the longest
     * encoding of every value, fits; the bin alone of one more message's
     * worth would not, for K = 256, at 65536 records. */
    CHECK(ps_proto_pub_max_records(0) == PS_PROTO_MAX_BATCH);
    CHECK(ps_proto_pub_max_records(55) == PS_PROTO_MAX_BATCH); /* as docs/protocol.md says */
    CHECK(ps_proto_pub_max_records(56) < PS_PROTO_MAX_BATCH);
    CHECK(ps_proto_pub_max_records(PS_PROTO_MAX_K) == 15842);
    CHECK(ps_proto_pub_max_records(1000) == 15842);
    size_t nmax = PS_PROTO_MAX_BATCH;
    ps_proto_record *rec = malloc(nmax * sizeof *rec);
    float *bx = malloc(nmax * PS_PROTO_MAX_K * sizeof *bx);
    for (size_t i = 0; i < nmax; i++)
        rec[i] = (ps_proto_record){UINT64_MAX - i, 1.0 / 3, 1.0f / 3, 0.5, INT32_MAX};
    for (size_t i = 0; i < nmax * PS_PROTO_MAX_K; i++)
        bx[i] = (float)i;
    static const uint32_t ks[] = {0, 1, 80, 81, 255, 256};
    for (size_t c = 0; c < sizeof ks / sizeof ks[0]; c++) {
        size_t most = ps_proto_pub_max_records(ks[c]);
        ps_proto_pub big = {.run = UINT64_MAX,
                            .seq = 1ull << 60,
                            .tick = UINT64_MAX,
                            .t = 1.0 / 7,
                            .n = most,
                            .records = rec,
                            .k = ks[c],
                            .x = bx};
        int rc = ps_proto_encode_pub(&b, &big, err, sizeof err);
        CHECKF(rc == 0, "K=%u, %zu records: %s", (unsigned)ks[c], most, err);
        CHECK(b.len <= PS_PROTO_MAX_MESSAGE);
        if (rc == 0 && ks[c] == PS_PROTO_MAX_K) {
            CHECKF(decode_kind(PUB_X, b.data, b.len, &d) == 0, "%s", d.err);
            CHECK(d.pub.n == most && d.pub.k == PS_PROTO_MAX_K &&
                  !memcmp(d.pub.x, bx, most * PS_PROTO_MAX_K * 4));
        }
        /* Twice as many never fit (unless the batch bound comes first). */
        if (most < PS_PROTO_MAX_BATCH) {
            big.n = most * 2 < nmax ? most * 2 : nmax;
            CHECK(ps_proto_encode_pub(&b, &big, err, sizeof err) == PS_PROTO_E_TOO_LARGE);
        }
    }
    free(rec);
    free(bx);
    decoded_free(&d);
    ps_buf_free(&b);
}

/* A failed request still tells which id to echo. */
static void test_id_on_failure(void)
{
    kvs m = {0};
    columns_request(&m);
    kvs_set(&m, "v", val_uint(3));
    bytes msg = kvs_build(&m);
    ps_proto_request r = {0};
    char err[256];
    CHECK(ps_proto_decode_request(msg.p, msg.n, &r, err, sizeof err) == PS_PROTO_E_VERSION);
    CHECK(r.has_id && r.id == 0x1122334455667788u);
    free(msg.p);
    /* Cut inside "metrics": structure broken, but id came whole first. */
    kvs_del(&m, "id");
    kvs_set(&m, "v", val_uint(1));
    {
        kvs c = {0};
        kvs_add(&c, "id", val_uint(77));
        for (int i = 0; i < m.n; i++)
            kvs_add(&c, m.key[i], val_raw(m.val[i].p, m.val[i].n));
        msg = kvs_build(&c);
        CHECK(ps_proto_decode_request(msg.p, msg.n - 3, &r, err, sizeof err) ==
              PS_PROTO_E_BAD_REQUEST);
        CHECK(r.has_id && r.id == 77);
        CHECK(strstr(err, "truncated") != NULL);
        free(msg.p);
        kvs_free(&c);
    }
    ps_proto_request_free(&r);
    kvs_free(&m);
}

/* ---- fuzz ----------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/*
 * Random byte flips, insertions of interesting bytes, cuts and
 * extensions of every valid message. Whatever is accepted must be
 * consistent: the encoder takes it back (same bounds, finite numbers,
 * distinct ids) and the result decodes to the same content.
 */
static void test_fuzz(void)
{
    static const uint8_t interesting[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
                                          0xc0, 0xc1, 0xc4, 0xc6, 0xca, 0xcb, 0xcf, 0xd3,
                                          0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff};
    ps_buf b = {0}, again = {0};
    decoded d = {0}, d2 = {0};
    size_t accepted = 0, total = 0;
    uint8_t *m = malloc(1 << 16);
    for (int k = 0; k < NKINDS; k++) {
        encode_kind((enum kind)k, &b);
        for (int iter = 0; iter < 3000; iter++) {
            size_t n = b.len;
            memcpy(m, b.data, n);
            int edits = 1 + (int)(rng() % 4);
            for (int e = 0; e < edits; e++) {
                size_t at = (size_t)(rng() % n);
                switch (rng() % 5) {
                case 0:
                    m[at] ^= (uint8_t)(1u << (rng() % 8));
                    break;
                case 1:
                    m[at] = (uint8_t)rng();
                    break;
                case 2:
                    m[at] = interesting[rng() % sizeof interesting];
                    break;
                case 3:
                    if (n > 1) n = 1 + (size_t)(rng() % (n - 1));
                    break;
                default:
                    if (n < (1 << 16) - 8)
                        for (int j = 0; j < 4; j++)
                            m[n++] = (uint8_t)rng();
                    break;
                }
            }
            total++;
            /* Every decoder on every mutant: none may crash or leak. */
            static const enum kind decoders[] = {REQ_COLS, REP_SCORE, PUB};
            for (int di = 0; di < 3; di++) {
                decode_kind(decoders[di], m, n, &d);
                CHECK(d.rc >= 0 && d.rc < PS_PROTO_NCODES);
                CHECK(d.rc == 0 || d.err[0] != '\0');
            }
            if (decode_kind((enum kind)k, m, n, &d) != 0) continue;
            accepted++;
            if (k > LAST_REQ && k <= LAST_REP && d.rep.op == PS_PROTO_OP_ERROR &&
                (d.rep.error.code == 0 || d.rep.error.code >= PS_PROTO_NCODES ||
                 strcmp(d.rep.error.name, ps_proto_code_name((int)d.rep.error.code))))
                continue; /* a code or name from the future: nothing to re-encode */
            char err[256] = "";
            int rc = reencode((enum kind)k, &d, &again, err, sizeof err);
            CHECKF(rc == 0, "%s mutant accepted but not encodable: %s", kind_names[k], err);
            if (rc) continue;
            decode_kind((enum kind)k, again.data, again.len, &d2);
            CHECKF(d2.rc == 0 && decoded_eq((enum kind)k, &d, &d2),
                   "%s mutant does not survive a round trip: %s", kind_names[k], d2.err);
        }
    }
    printf("fuzz: %zu mutants, %zu accepted and consistent\n", total, accepted);
    free(m);
    decoded_free(&d);
    decoded_free(&d2);
    ps_buf_free(&b);
    ps_buf_free(&again);
}

int main(void)
{
    msgpack_sbuffer_init(&vsb);
    msgpack_packer_init(&vpk, &vsb, msgpack_sbuffer_write);
    test_names();
    test_round_trips();
    test_wrong_direction();
    test_doc_example();
    test_doc_latest_and_pub();
    test_envelope();
    test_score_columns();
    test_score_rows();
    test_number_types();
    test_limits();
    test_every_field();
    test_reply_refusals();
    test_latest();
    test_pub_metrics();
    test_id_on_failure();
    test_fuzz();
    msgpack_sbuffer_destroy(&vsb);
    return test_finish("test_protocol");
}
