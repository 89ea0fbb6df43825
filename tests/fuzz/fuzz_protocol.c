/*
 * fuzz_protocol.c - libFuzzer target for the wire protocol's decoders
 * (server/protocol.h, docs/protocol.md).
 *
 * Every input goes to all three decoders (request, reply, PUB), each twice:
 * into a fresh struct, and into a struct that lives across inputs, as the
 * server decodes into the same request again and again (so the block reuse
 * path runs too). Both decodes must agree exactly. Then, for a message one
 * decoder accepts:
 *  - the documented invariants hold (bounds, finite numbers, distinct ids,
 *    pfp in [0, 1], the ids of a latest request, the ts of a latest reply,
 *    K and the metrics of a PUB message, ...), and msgpack-c's own unpacker
 *    reads the input as one whole map;
 *  - the matching encoder takes the decoded struct back (a request in both
 *    forms; score, latest and the other replies; PUB with or without
 *    metrics), its output decodes to the same values, and re-encoding that
 *    gives the same bytes;
 * and for a request the decoder refuses, the error reply the server would
 * send decodes to the same code, message and id.
 *
 * A broken invariant calls abort(), which libFuzzer reports as a crash with
 * the input saved. Inputs over PS_PROTO_MAX_MESSAGE are what nng refuses
 * before the decoder sees them: they are only checked to be refused.
 *
 * The structs that live across inputs are freed every RESET_EVERY inputs
 * (memory stays bounded and reachable, so LeakSanitizer has nothing to say);
 * a crash that needs their history may therefore not reproduce on its input
 * alone, though the sanitizer report names the place.
 */
#include "server/protocol.h"

#include <math.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RESET_EVERY 1000

static void broken(int line, const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_protocol.c:%d: invariant broken: %s%s%s\n", line, what,
            detail ? ": " : "", detail ? detail : "");
    abort();
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) broken(__LINE__, #cond, NULL);                                                \
    } while (0)

#define CHECKM(cond, detail)                                                                       \
    do {                                                                                           \
        if (!(cond)) broken(__LINE__, #cond, detail);                                              \
    } while (0)

/* What the server would do with the struct between messages. */
static ps_proto_request live_req;
static ps_proto_reply live_rep;
static ps_proto_pub live_pub;
static ps_buf out, out2;
static unsigned long calls;

/* A message no bigger than an input can make from the same content: the
 * encoders may write up to 9 bytes for a value the input wrote in one (a
 * timestamp as a fixint, written back as a float64). */
static bool may_be_too_large(int rc, size_t in_size)
{
    return rc == PS_PROTO_E_TOO_LARGE && in_size > PS_PROTO_MAX_MESSAGE / 16;
}

/* Codes a decoder returns: never the server's own (k_mismatch, busy,
 * unavailable). */
static bool is_decode_code(int rc)
{
    return rc == PS_PROTO_OK || rc == PS_PROTO_E_BAD_REQUEST || rc == PS_PROTO_E_VERSION ||
           rc == PS_PROTO_E_UNKNOWN_OP || rc == PS_PROTO_E_TOO_LARGE || rc == PS_PROTO_E_INTERNAL;
}

static bool finite_f(double x)
{
    return !isnan(x) && !isinf(x);
}

/* msgpack-c's unpacker reads p as exactly one map. */
static bool one_msgpack_map(const uint8_t *p, size_t n)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    msgpack_unpack_return ret = msgpack_unpack_next(&u, (const char *)p, n, &off);
    bool ok = ret == MSGPACK_UNPACK_SUCCESS && off == n && u.data.type == MSGPACK_OBJECT_MAP;
    msgpack_unpacked_destroy(&u);
    return ok;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static bool distinct(const uint64_t *ids, size_t n)
{
    static uint64_t sorted[PS_PROTO_MAX_BATCH];
    memcpy(sorted, ids, n * sizeof *ids);
    qsort(sorted, n, sizeof *sorted, cmp_u64);
    for (size_t i = 1; i < n; i++)
        if (sorted[i] == sorted[i - 1]) return false;
    return true;
}

/* ---- requests -------------------------------------------------------------- */

static void request_ok(const ps_proto_request *q)
{
    CHECK(q->op == PS_PROTO_OP_SCORE || q->op == PS_PROTO_OP_HEALTH || q->op == PS_PROTO_OP_INFO ||
          q->op == PS_PROTO_OP_LATEST);
    if (q->op == PS_PROTO_OP_LATEST) {
        CHECK(q->n >= 1 && q->n <= PS_PROTO_MAX_BATCH && q->ids);
        CHECK(q->k == 0 && !q->seqs && !q->ts && !q->metrics);
        CHECK(q->form == PS_PROTO_FORM_COLUMNS);
        CHECK(distinct(q->ids, q->n));
        return;
    }
    if (q->op != PS_PROTO_OP_SCORE) {
        CHECK(q->n == 0);
        return;
    }
    CHECK(q->n >= 1 && q->n <= PS_PROTO_MAX_BATCH);
    CHECK(q->k >= 1 && q->k <= PS_PROTO_MAX_K);
    CHECK(q->form == PS_PROTO_FORM_COLUMNS || q->form == PS_PROTO_FORM_ROWS);
    CHECK(q->ids && q->seqs && q->ts && q->metrics);
    for (size_t i = 0; i < q->n; i++) {
        CHECK(finite_f(q->ts[i]));
        for (size_t j = 0; j < q->k; j++)
            CHECK(finite_f(q->metrics[i * q->k + j]));
    }
    CHECK(distinct(q->ids, q->n));
}

/* Same content; the form too when same_form. Bitwise, so -0.0 counts. */
static void request_same(const ps_proto_request *a, const ps_proto_request *b, bool same_form)
{
    CHECK(a->op == b->op && a->has_id == b->has_id && a->id == b->id && a->n == b->n);
    if (a->op == PS_PROTO_OP_LATEST && a->n) {
        CHECK(a->k == b->k && a->form == b->form);
        CHECK(memcmp(a->ids, b->ids, a->n * sizeof *a->ids) == 0);
        return;
    }
    if (a->op != PS_PROTO_OP_SCORE || a->n == 0) return;
    CHECK(a->k == b->k);
    if (same_form) CHECK(a->form == b->form);
    CHECK(memcmp(a->ids, b->ids, a->n * sizeof *a->ids) == 0);
    CHECK(memcmp(a->seqs, b->seqs, a->n * sizeof *a->seqs) == 0);
    CHECK(memcmp(a->ts, b->ts, a->n * sizeof *a->ts) == 0);
    CHECK(memcmp(a->metrics, b->metrics, a->n * a->k * sizeof *a->metrics) == 0);
}

/* The error reply the server sends for a refused request says the same. */
static void error_reply_echoes(const ps_proto_request *q, int rc, const char *err)
{
    CHECK(ps_proto_encode_error(&out, q->has_id ? &q->id : NULL, rc, "%s", err) == PS_PROTO_OK);
    CHECK(one_msgpack_map(out.data, out.len));
    char err2[PS_PROTO_MAX_TEXT + 1] = "";
    ps_proto_reply *r = &live_rep;
    CHECKM(ps_proto_decode_reply(out.data, out.len, r, err2, sizeof err2) == PS_PROTO_OK, err2);
    CHECK(r->op == PS_PROTO_OP_ERROR && r->error.code == (uint32_t)rc);
    CHECK(strcmp(r->error.name, ps_proto_code_name(rc)) == 0);
    CHECK(strcmp(r->error.message, err) == 0);
    CHECK(r->has_id == q->has_id && r->id == q->id);
}

static void fuzz_request(const uint8_t *data, size_t size)
{
    ps_proto_request fresh = {0};
    char err[PS_PROTO_MAX_TEXT + 1] = "", err2[PS_PROTO_MAX_TEXT + 1] = "";
    int rc = ps_proto_decode_request(data, size, &fresh, err, sizeof err);
    CHECK(is_decode_code(rc));
    int rc2 = ps_proto_decode_request(data, size, &live_req, err2, sizeof err2);
    CHECK(rc2 == rc && strcmp(err, err2) == 0);
    request_same(&fresh, &live_req, true);
    if (rc) {
        CHECKM(err[0] != '\0', "a refusal without a reason");
        CHECK(fresh.n == 0 && fresh.ids == NULL);
        error_reply_echoes(&fresh, rc, err);
        ps_proto_request_free(&fresh);
        return;
    }
    request_ok(&fresh);
    CHECK(one_msgpack_map(data, size));
    static const ps_proto_form forms[] = {PS_PROTO_FORM_COLUMNS, PS_PROTO_FORM_ROWS};
    for (int f = 0; f < 2; f++) {
        rc = ps_proto_encode_request(&out, &fresh, forms[f], err, sizeof err);
        if (may_be_too_large(rc, size)) continue;
        CHECKM(rc == PS_PROTO_OK, err);
        CHECK(one_msgpack_map(out.data, out.len));
        rc = ps_proto_decode_request(out.data, out.len, &live_req, err, sizeof err);
        CHECKM(rc == PS_PROTO_OK, err);
        request_ok(&live_req);
        request_same(&fresh, &live_req, false);
        if (fresh.op == PS_PROTO_OP_SCORE) CHECK(live_req.form == forms[f]);
        rc = ps_proto_encode_request(&out2, &live_req, forms[f], err, sizeof err);
        CHECKM(rc == PS_PROTO_OK, err);
        CHECK(out2.len == out.len && memcmp(out.data, out2.data, out.len) == 0);
    }
    ps_proto_request_free(&fresh);
}

/* ---- replies --------------------------------------------------------------- */

static void results_ok(size_t n, const ps_proto_result *res)
{
    CHECK(n <= PS_PROTO_MAX_BATCH);
    CHECK(n == 0 || res);
    for (size_t i = 0; i < n; i++) {
        const ps_proto_result *x = &res[i];
        CHECK(finite_f(x->score));
        CHECK(x->pfp >= 0.0 && x->pfp <= 1.0);
        CHECK(x->top >= -1);
    }
}

static void results_same(size_t n, const ps_proto_result *a, const ps_proto_result *b)
{
    for (size_t i = 0; i < n; i++) {
        const ps_proto_result *x = &a[i], *y = &b[i];
        CHECK(x->id == y->id && x->state == y->state && x->top == y->top);
        CHECK(memcmp(&x->score, &y->score, sizeof x->score) == 0);
        CHECK(memcmp(&x->pfp, &y->pfp, sizeof x->pfp) == 0);
    }
}

static void reply_ok(const ps_proto_reply *r)
{
    /* Only the part op names is filled. */
    if (r->op != PS_PROTO_OP_SCORE) CHECK(r->score.n == 0 && r->score.results == NULL);
    if (r->op != PS_PROTO_OP_LATEST) CHECK(r->latest.n == 0 && r->latest.results == NULL);
    switch (r->op) {
    case PS_PROTO_OP_SCORE:
        results_ok(r->score.n, r->score.results);
        break;
    case PS_PROTO_OP_LATEST:
        results_ok(r->latest.n, r->latest.results);
        CHECK(r->latest.n == 0 || r->latest.ts);
        for (size_t i = 0; i < r->latest.n; i++)
            CHECK(finite_f(r->latest.ts[i]));
        break;
    case PS_PROTO_OP_HEALTH:
        CHECK(r->health.status >= PS_PROTO_STATUS_OK &&
              r->health.status <= PS_PROTO_STATUS_STOPPING);
        CHECK(finite_f(r->health.uptime) && r->health.uptime >= 0.0);
        break;
    case PS_PROTO_OP_INFO:
        CHECK(r->info.k >= 1 && r->info.k <= PS_PROTO_MAX_K);
        CHECK(strlen(r->info.version) <= PS_PROTO_MAX_TEXT);
        CHECK(strlen(r->info.model) <= PS_PROTO_MAX_TEXT);
        CHECK(strlen(r->info.backend) <= PS_PROTO_MAX_TEXT);
        break;
    case PS_PROTO_OP_ERROR:
        CHECK(strlen(r->error.name) <= PS_PROTO_MAX_NAME);
        CHECK(strlen(r->error.message) <= PS_PROTO_MAX_TEXT);
        break;
    default:
        CHECKM(false, "an accepted reply of an op replies do not have");
    }
}

static void reply_same(const ps_proto_reply *a, const ps_proto_reply *b)
{
    CHECK(a->op == b->op && a->has_id == b->has_id && a->id == b->id);
    switch (a->op) {
    case PS_PROTO_OP_SCORE:
        CHECK(a->score.tick == b->score.tick && a->score.n == b->score.n);
        results_same(a->score.n, a->score.results, b->score.results);
        break;
    case PS_PROTO_OP_LATEST:
        CHECK(a->latest.tick == b->latest.tick && a->latest.n == b->latest.n);
        results_same(a->latest.n, a->latest.results, b->latest.results);
        if (a->latest.n)
            CHECK(memcmp(a->latest.ts, b->latest.ts, a->latest.n * sizeof *a->latest.ts) == 0);
        break;
    case PS_PROTO_OP_HEALTH:
        CHECK(a->health.status == b->health.status && a->health.tick == b->health.tick);
        CHECK(memcmp(&a->health.uptime, &b->health.uptime, sizeof a->health.uptime) == 0);
        break;
    case PS_PROTO_OP_INFO: {
        const ps_proto_info *x = &a->info, *y = &b->info;
        CHECK(strcmp(x->version, y->version) == 0 && strcmp(x->model, y->model) == 0 &&
              strcmp(x->backend, y->backend) == 0);
        CHECK(x->k == y->k && x->hidden == y->hidden && x->run == y->run);
        CHECK(x->warming_up == y->warming_up && x->scored == y->scored && x->stale == y->stale);
        CHECK(x->max_message_bytes == y->max_message_bytes && x->max_batch == y->max_batch &&
              x->max_processors == y->max_processors);
        break;
    }
    case PS_PROTO_OP_ERROR:
        CHECK(a->error.code == b->error.code && strcmp(a->error.name, b->error.name) == 0 &&
              strcmp(a->error.message, b->error.message) == 0);
        break;
    default:
        break;
    }
}

static int reply_encode(ps_buf *b, const ps_proto_reply *r, char *err, size_t errlen)
{
    const uint64_t *id = r->has_id ? &r->id : NULL;
    switch (r->op) {
    case PS_PROTO_OP_SCORE:
        return ps_proto_encode_score_reply(b, id, &r->score, err, errlen);
    case PS_PROTO_OP_LATEST:
        return ps_proto_encode_latest_reply(b, id, &r->latest, err, errlen);
    case PS_PROTO_OP_HEALTH:
        return ps_proto_encode_health_reply(b, id, &r->health, err, errlen);
    case PS_PROTO_OP_INFO:
        return ps_proto_encode_info_reply(b, id, &r->info, err, errlen);
    default:
        /* The encoder writes the name of the code itself, and a code
         * outside its table as internal. */
        return ps_proto_encode_error(b, id, (int)r->error.code, "%s", r->error.message);
    }
}

static void fuzz_reply(const uint8_t *data, size_t size)
{
    static ps_proto_reply fresh, again; /* ~3 KiB of text each: not on the stack */
    memset(&fresh, 0, sizeof fresh);
    char err[PS_PROTO_MAX_TEXT + 1] = "", err2[PS_PROTO_MAX_TEXT + 1] = "";
    int rc = ps_proto_decode_reply(data, size, &fresh, err, sizeof err);
    CHECK(is_decode_code(rc));
    int rc2 = ps_proto_decode_reply(data, size, &live_rep, err2, sizeof err2);
    CHECK(rc2 == rc && strcmp(err, err2) == 0);
    reply_same(&fresh, &live_rep);
    if (rc) {
        CHECKM(err[0] != '\0', "a refusal without a reason");
        CHECK(fresh.score.n == 0 && fresh.score.results == NULL);
        CHECK(fresh.latest.n == 0 && fresh.latest.results == NULL && fresh.latest.ts == NULL);
        ps_proto_reply_free(&fresh);
        return;
    }
    reply_ok(&fresh);
    CHECK(one_msgpack_map(data, size));
    rc = reply_encode(&out, &fresh, err, sizeof err);
    if (!may_be_too_large(rc, size)) {
        CHECKM(rc == PS_PROTO_OK, err);
        CHECK(one_msgpack_map(out.data, out.len));
        rc = ps_proto_decode_reply(out.data, out.len, &live_rep, err, sizeof err);
        CHECKM(rc == PS_PROTO_OK, err);
        reply_ok(&live_rep);
        if (fresh.op == PS_PROTO_OP_ERROR) {
            /* What the encoder makes of the code: the rest must survive. */
            uint32_t code = fresh.error.code;
            if (code == PS_PROTO_OK || code >= PS_PROTO_NCODES) code = PS_PROTO_E_INTERNAL;
            CHECK(live_rep.op == PS_PROTO_OP_ERROR && live_rep.error.code == code);
            CHECK(strcmp(live_rep.error.name, ps_proto_code_name((int)code)) == 0);
            CHECK(strcmp(live_rep.error.message, fresh.error.message) == 0);
            CHECK(live_rep.has_id == fresh.has_id && live_rep.id == fresh.id);
        } else {
            reply_same(&fresh, &live_rep);
        }
        rc = reply_encode(&out2, &live_rep, err, sizeof err);
        CHECKM(rc == PS_PROTO_OK, err);
        CHECK(out2.len == out.len && memcmp(out.data, out2.data, out.len) == 0);
        memset(&again, 0, sizeof again);
        CHECK(ps_proto_decode_reply(out2.data, out2.len, &again, err, sizeof err) == PS_PROTO_OK);
        reply_same(&live_rep, &again);
        ps_proto_reply_free(&again);
    }
    ps_proto_reply_free(&fresh);
}

/* ---- the stream ------------------------------------------------------------ */

static void pub_ok(const ps_proto_pub *p)
{
    CHECK(p->run >= 1 && p->seq >= 1);
    CHECK(p->n <= PS_PROTO_MAX_BATCH && p->seq - 1 <= UINT64_MAX - p->n);
    CHECK(finite_f(p->t));
    CHECK(p->n == 0 || p->records);
    for (size_t i = 0; i < p->n; i++) {
        const ps_proto_record *x = &p->records[i];
        CHECK(finite_f(x->ts) && finite_f(x->score));
        CHECK(x->pfp >= 0.0 && x->pfp <= 1.0);
        CHECK(x->top >= -1);
    }
    /* Metrics: none (k 0, x NULL), or k of each record, finite. */
    CHECK(p->k <= PS_PROTO_MAX_K);
    CHECK(p->k == 0 ? p->x == NULL : p->x != NULL);
    for (size_t i = 0; i < p->n * p->k; i++)
        CHECK(finite_f(p->x[i]));
}

static void pub_same(const ps_proto_pub *a, const ps_proto_pub *b)
{
    CHECK(a->run == b->run && a->seq == b->seq && a->tick == b->tick && a->n == b->n);
    CHECK(memcmp(&a->t, &b->t, sizeof a->t) == 0);
    CHECK(a->k == b->k);
    if (a->n && a->k) CHECK(memcmp(a->x, b->x, a->n * a->k * sizeof *a->x) == 0);
    for (size_t i = 0; i < a->n; i++) {
        const ps_proto_record *x = &a->records[i], *y = &b->records[i];
        CHECK(x->id == y->id && x->top == y->top);
        CHECK(memcmp(&x->ts, &y->ts, sizeof x->ts) == 0);
        CHECK(memcmp(&x->score, &y->score, sizeof x->score) == 0);
        CHECK(memcmp(&x->pfp, &y->pfp, sizeof x->pfp) == 0);
    }
}

static void fuzz_pub(const uint8_t *data, size_t size)
{
    ps_proto_pub fresh = {0};
    char err[PS_PROTO_MAX_TEXT + 1] = "", err2[PS_PROTO_MAX_TEXT + 1] = "";
    int rc = ps_proto_decode_pub(data, size, &fresh, err, sizeof err);
    CHECK(is_decode_code(rc));
    int rc2 = ps_proto_decode_pub(data, size, &live_pub, err2, sizeof err2);
    CHECK(rc2 == rc && strcmp(err, err2) == 0);
    pub_same(&fresh, &live_pub);
    if (rc) {
        CHECKM(err[0] != '\0', "a refusal without a reason");
        CHECK(fresh.n == 0 && fresh.records == NULL && fresh.k == 0 && fresh.x == NULL);
        ps_proto_pub_free(&fresh);
        return;
    }
    pub_ok(&fresh);
    CHECK(one_msgpack_map(data, size));
    rc = ps_proto_encode_pub(&out, &fresh, err, sizeof err);
    if (!may_be_too_large(rc, size)) {
        CHECKM(rc == PS_PROTO_OK, err);
        CHECK(one_msgpack_map(out.data, out.len));
        rc = ps_proto_decode_pub(out.data, out.len, &live_pub, err, sizeof err);
        CHECKM(rc == PS_PROTO_OK, err);
        pub_ok(&live_pub);
        pub_same(&fresh, &live_pub);
        rc = ps_proto_encode_pub(&out2, &live_pub, err, sizeof err);
        CHECKM(rc == PS_PROTO_OK, err);
        CHECK(out2.len == out.len && memcmp(out.data, out2.data, out.len) == 0);
    }
    ps_proto_pub_free(&fresh);
}

/* ---- the entry point ------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > PS_PROTO_MAX_MESSAGE) {
        /* nng drops these before anyone decodes them; the decoders refuse
         * them too, by their size alone. */
        ps_proto_request q = {0};
        ps_proto_pub p = {0};
        CHECK(ps_proto_decode_request(data, size, &q, NULL, 0) == PS_PROTO_E_TOO_LARGE);
        CHECK(ps_proto_decode_reply(data, size, &live_rep, NULL, 0) == PS_PROTO_E_TOO_LARGE);
        CHECK(ps_proto_decode_pub(data, size, &p, NULL, 0) == PS_PROTO_E_TOO_LARGE);
        CHECK(q.mem.p == NULL && p.mem.p == NULL);
        return 0;
    }
    fuzz_request(data, size);
    fuzz_reply(data, size);
    fuzz_pub(data, size);
    if (++calls % RESET_EVERY == 0) {
        ps_proto_request_free(&live_req);
        ps_proto_reply_free(&live_rep);
        ps_proto_pub_free(&live_pub);
        ps_buf_free(&out);
        ps_buf_free(&out2);
    }
    return 0;
}
