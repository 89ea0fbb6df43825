/*
 * protocol_decode.c - the decoders of the wire protocol (docs/protocol.md).
 *
 * This is a direct reader over the message bytes, not msgpack-c's unpacker.
 * The unpacker builds a tree of objects and reserves a declared array's
 * elements before they arrive, so a 5-byte message claiming 2^32 elements
 * asks for ~100 GB; checking every count first would mean walking the bytes
 * anyway. Walking them ourselves, nothing is allocated until the message is
 * known to be sound, and then exactly once.
 *
 * Two passes:
 *  1. Structure. The whole buffer must be one map with at most
 *     PS_PROTO_MAX_KEYS string keys, no key twice, nesting at most
 *     PS_PROTO_MAX_DEPTH deep, every declared length and count possible in
 *     the bytes left (each element takes at least one byte, each map entry
 *     two), and no byte after the map. Each key's value is skipped and its
 *     offset remembered. Cost: one step per byte at worst, no allocation.
 *  2. Meaning. Known keys are read from their offsets in the order their
 *     dependencies need (ids before seqs, k before metrics), so the key
 *     order on the wire does not matter; array lengths are compared before
 *     one block is allocated for the message, then values are type-checked
 *     and converted. Unknown keys are ignored: that is what lets a newer
 *     peer add keys without breaking an older one.
 *
 * Every refusal says where, in the message's own terms ("ids has 3 entries
 * but seqs has 2", "heartbeat 2 metric 1 is NaN"), and which stable code
 * the error reply carries.
 */
#include "protocol_internal.h"

#include "core/error.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the byte reader ------------------------------------------------------ */

typedef struct rd {
    const uint8_t *p;
    size_t len, pos;
    char *err;
    size_t errlen;
} rd;

enum {
    T_NIL,
    T_BOOL,
    T_UINT, /* any integer >= 0, whatever its wire type */
    T_NEG,  /* any integer < 0 */
    T_F32,
    T_F64,
    T_STR,
    T_BIN,
    T_ARRAY,
    T_MAP,
    T_EXT,
};

typedef struct item {
    int type;
    uint64_t u;          /* T_UINT, T_BOOL */
    int64_t i;           /* T_NEG */
    double f;            /* T_F32, T_F64 */
    uint32_t n;          /* T_STR, T_BIN, T_EXT: bytes; T_ARRAY, T_MAP: entries */
    const uint8_t *data; /* T_STR, T_BIN, T_EXT */
    size_t at;           /* offset of its first byte */
} item;

/* The type of it with its article, as messages say it. */
static const char *type_name(const item *it)
{
    switch (it->type) {
    case T_NIL:
        return "nil";
    case T_BOOL:
        return "a boolean";
    case T_UINT:
        return "an unsigned integer";
    case T_NEG:
        return "a negative integer";
    case T_F32:
        return "a float32";
    case T_F64:
        return "a float64";
    case T_STR:
        return "a string";
    case T_BIN:
        return "a bin";
    case T_ARRAY:
        return "an array";
    case T_MAP:
        return "a map";
    default:
        return "an ext";
    }
}

static int bad(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(rd *r, const char *fmt, ...)
{
    if (r->err && r->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, r->errlen, fmt, ap);
        va_end(ap);
    }
    return PS_PROTO_E_BAD_REQUEST;
}

static int need(rd *r, size_t n, const char *what)
{
    if (r->len - r->pos < n)
        return bad(r, "truncated: %s at byte %zu needs %zu bytes, %zu left", what, r->pos, n,
                   r->len - r->pos);
    return 0;
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* A big-endian unsigned of n bytes at the cursor. */
static int get_be(rd *r, int n, const char *what, uint64_t *v)
{
    if (need(r, (size_t)n, what)) return PS_PROTO_E_BAD_REQUEST;
    *v = be(r->p + r->pos, n);
    r->pos += (size_t)n;
    return 0;
}

/* A payload of n bytes (str, bin, ext body). */
static int get_body(rd *r, item *it, uint64_t n, const char *what)
{
    if (n > r->len - r->pos)
        return bad(r, "truncated: %s at byte %zu declares %llu bytes, %zu left", what, it->at,
                   (unsigned long long)n, r->len - r->pos);
    it->n = (uint32_t)n;
    it->data = r->p + r->pos;
    r->pos += (size_t)n;
    return 0;
}

/* Each array element takes a byte at least, each map entry two: a count the
 * bytes left cannot hold is refused before anyone allocates for it. */
static int get_count(rd *r, item *it, uint64_t n, int per)
{
    if (n > (r->len - r->pos) / (size_t)per)
        return bad(r, "%s at byte %zu declares %llu entries but only %zu bytes are left",
                   it->type == T_MAP ? "map" : "array", it->at, (unsigned long long)n,
                   r->len - r->pos);
    it->n = (uint32_t)n;
    return 0;
}

/* The next item's header (and the body of a str, bin or ext). */
static int rd_item(rd *r, item *it)
{
    memset(it, 0, sizeof *it);
    it->at = r->pos;
    if (r->pos >= r->len) return bad(r, "truncated: a value expected at byte %zu", r->pos);
    uint8_t b = r->p[r->pos++];
    uint64_t v = 0;
    if (b <= 0x7f) {
        it->type = T_UINT;
        it->u = b;
        return 0;
    }
    if (b >= 0xe0) {
        it->type = T_NEG;
        it->i = (int8_t)b;
        return 0;
    }
    if (b <= 0x8f) {
        it->type = T_MAP;
        return get_count(r, it, b & 0x0f, 2);
    }
    if (b <= 0x9f) {
        it->type = T_ARRAY;
        return get_count(r, it, b & 0x0f, 1);
    }
    if (b <= 0xbf) {
        it->type = T_STR;
        return get_body(r, it, b & 0x1f, "string");
    }
    switch (b) {
    case 0xc0:
        it->type = T_NIL;
        return 0;
    case 0xc2:
    case 0xc3:
        it->type = T_BOOL;
        it->u = b == 0xc3;
        return 0;
    case 0xc4:
    case 0xc5:
    case 0xc6: {
        int w = 1 << (b - 0xc4);
        it->type = T_BIN;
        if (get_be(r, w, "bin length", &v)) return PS_PROTO_E_BAD_REQUEST;
        return get_body(r, it, v, "bin");
    }
    case 0xc7:
    case 0xc8:
    case 0xc9: {
        int w = 1 << (b - 0xc7);
        it->type = T_EXT;
        if (get_be(r, w, "ext length", &v) || need(r, 1, "ext type")) return PS_PROTO_E_BAD_REQUEST;
        r->pos++;
        return get_body(r, it, v, "ext");
    }
    case 0xca:
        it->type = T_F32;
        if (get_be(r, 4, "float32", &v)) return PS_PROTO_E_BAD_REQUEST;
        {
            uint32_t u = (uint32_t)v;
            float f;
            memcpy(&f, &u, sizeof f);
            it->f = f;
        }
        return 0;
    case 0xcb:
        it->type = T_F64;
        if (get_be(r, 8, "float64", &v)) return PS_PROTO_E_BAD_REQUEST;
        memcpy(&it->f, &v, sizeof it->f);
        return 0;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        it->type = T_UINT;
        return get_be(r, 1 << (b - 0xcc), "unsigned integer", &it->u);
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        int w = 1 << (b - 0xd0);
        if (get_be(r, w, "signed integer", &v)) return PS_PROTO_E_BAD_REQUEST;
        /* Sign-extend from w bytes by arithmetic, not by converting an
         * out-of-range unsigned value. */
        uint64_t mask = w == 8 ? UINT64_MAX : (UINT64_C(1) << (8 * w)) - 1;
        int64_t s = (v >> (8 * w - 1)) & 1 ? -(int64_t)(~v & (mask >> 1)) - 1 : (int64_t)v;
        /* Non-negative values in a signed type count as unsigned: some
         * encoders write every integer signed. */
        if (s >= 0) {
            it->type = T_UINT;
            it->u = (uint64_t)s;
        } else {
            it->type = T_NEG;
            it->i = s;
        }
        return 0;
    }
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        it->type = T_EXT;
        if (need(r, 1, "ext type")) return PS_PROTO_E_BAD_REQUEST;
        r->pos++;
        return get_body(r, it, (uint64_t)1 << (b - 0xd4), "fixext");
    case 0xd9:
    case 0xda:
    case 0xdb:
        it->type = T_STR;
        if (get_be(r, 1 << (b - 0xd9), "string length", &v)) return PS_PROTO_E_BAD_REQUEST;
        return get_body(r, it, v, "string");
    case 0xdc:
    case 0xdd:
        it->type = T_ARRAY;
        if (get_be(r, b == 0xdc ? 2 : 4, "array length", &v)) return PS_PROTO_E_BAD_REQUEST;
        return get_count(r, it, v, 1);
    case 0xde:
    case 0xdf:
        it->type = T_MAP;
        if (get_be(r, b == 0xde ? 2 : 4, "map length", &v)) return PS_PROTO_E_BAD_REQUEST;
        return get_count(r, it, v, 2);
    default: /* 0xc1 */
        return bad(r, "byte 0x%02x at %zu is not a msgpack type", b, it->at);
    }
}

/* Skip one value of nesting depth `depth` (the message map is 1). Recursion
 * is bounded by PS_PROTO_MAX_DEPTH, the work by the bytes. */
static int rd_skip(rd *r, unsigned depth)
{
    item it;
    if (rd_item(r, &it)) return PS_PROTO_E_BAD_REQUEST;
    if (it.type != T_ARRAY && it.type != T_MAP) return 0;
    if (depth > PS_PROTO_MAX_DEPTH)
        return bad(r, "%s at byte %zu is nested %u deep (at most %u)",
                   it.type == T_MAP ? "map" : "array", it.at, depth, PS_PROTO_MAX_DEPTH);
    uint64_t n = it.type == T_MAP ? 2 * (uint64_t)it.n : it.n;
    for (uint64_t i = 0; i < n; i++)
        if (rd_skip(r, depth + 1)) return PS_PROTO_E_BAD_REQUEST;
    return 0;
}

/* A key shown in a message: printable ASCII kept, the rest '?', cut short. */
static const char *show(const uint8_t *s, size_t n, char out[40])
{
    size_t m = n < 32 ? n : 32, i;
    for (i = 0; i < m; i++)
        out[i] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
    if (n > m) {
        memcpy(out + m, "...", 3);
        m += 3;
    }
    out[m] = '\0';
    return out;
}

/* ---- maps ----------------------------------------------------------------- */

typedef struct field {
    const uint8_t *key;
    uint32_t klen;
    size_t val; /* offset of the value */
} field;

typedef struct fields {
    field f[PS_PROTO_MAX_KEYS];
    unsigned n;
} fields;

/* Read a map at the cursor (nesting depth `depth`), remembering where each
 * key's value is. `what` names it in messages ("the message", "'limits'"). */
static int rd_map(rd *r, unsigned depth, const char *what, fields *fs)
{
    fs->n = 0;
    item it;
    if (rd_item(r, &it)) return PS_PROTO_E_BAD_REQUEST;
    if (it.type != T_MAP) return bad(r, "%s is %s, expected a map", what, type_name(&it));
    if (it.n > PS_PROTO_MAX_KEYS)
        return bad(r, "%s has %u keys (at most %u)", what, (unsigned)it.n, PS_PROTO_MAX_KEYS);
    for (uint32_t i = 0; i < it.n; i++) {
        item k;
        if (rd_item(r, &k)) return PS_PROTO_E_BAD_REQUEST;
        char shown[40];
        if (k.type != T_STR)
            return bad(r, "key %u of %s is %s, expected a string", (unsigned)i, what,
                       type_name(&k));
        for (unsigned j = 0; j < fs->n; j++)
            if (fs->f[j].klen == k.n && memcmp(fs->f[j].key, k.data, k.n) == 0)
                return bad(r, "key '%s' appears twice in %s", show(k.data, k.n, shown), what);
        size_t val = r->pos;
        if (rd_skip(r, depth + 1)) return PS_PROTO_E_BAD_REQUEST;
        fs->f[fs->n].key = k.data;
        fs->f[fs->n].klen = k.n;
        fs->f[fs->n].val = val;
        fs->n++;
    }
    return 0;
}

static const field *get(const fields *fs, const char *key)
{
    size_t n = strlen(key);
    for (unsigned i = 0; i < fs->n; i++)
        if (fs->f[i].klen == n && memcmp(fs->f[i].key, key, n) == 0) return &fs->f[i];
    return NULL;
}

/* Position the cursor at a required key's value. */
static int seek(rd *r, const fields *fs, const char *key, const char *context)
{
    const field *f = get(fs, key);
    if (!f) return bad(r, "missing key '%s'%s", key, context);
    r->pos = f->val;
    return 0;
}

/* ---- typed values --------------------------------------------------------- */

static int want_uint(rd *r, const char *what, size_t idx, uint64_t max, uint64_t *out)
{
    item it;
    if (rd_item(r, &it)) return PS_PROTO_E_BAD_REQUEST;
    if (it.type == T_UINT && it.u <= max) {
        *out = it.u;
        return 0;
    }
    char where[64];
    if (idx == SIZE_MAX)
        snprintf(where, sizeof where, "'%s'", what);
    else
        snprintf(where, sizeof where, "%s[%zu]", what, idx);
    if (it.type != T_UINT)
        return bad(r, "%s is %s, expected an unsigned integer", where, type_name(&it));
    return bad(r, "%s is %llu (at most %llu)", where, (unsigned long long)it.u,
               (unsigned long long)max);
}

/* Any msgpack number as a double; NULL, or why it is not one. */
static const char *as_number(const item *it, double *out)
{
    switch (it->type) {
    case T_UINT:
        *out = (double)it->u;
        return NULL;
    case T_NEG:
        *out = (double)it->i;
        return NULL;
    case T_F32:
    case T_F64:
        *out = it->f;
        return psp_not_finite(it->f);
    default:
        return "not a number";
    }
}

/* A finite number for "<what>" (idx SIZE_MAX) or "<what>[idx]"; `human`
 * names it in terms of the message ("heartbeat 2 timestamp") when given. */
static int want_number(rd *r, const char *what, size_t idx, const char *human, double *out)
{
    item it;
    if (rd_item(r, &it)) return PS_PROTO_E_BAD_REQUEST;
    const char *why = as_number(&it, out);
    if (!why) return 0;
    char where[64];
    if (idx == SIZE_MAX)
        snprintf(where, sizeof where, "'%s'", what);
    else
        snprintf(where, sizeof where, "%s[%zu]", what, idx);
    if (it.type == T_F32 || it.type == T_F64)
        return human ? bad(r, "%s is %s (%s)", human, why, where) : bad(r, "%s is %s", where, why);
    return bad(r, "%s is %s, expected a number", where, type_name(&it));
}

/* The header of an array of 0 .. max entries at a key. */
static int want_array(rd *r, const char *key, uint32_t max, uint32_t *n)
{
    item it;
    if (rd_item(r, &it)) return PS_PROTO_E_BAD_REQUEST;
    if (it.type != T_ARRAY) return bad(r, "'%s' is %s, expected an array", key, type_name(&it));
    *n = it.n;
    if (it.n > max) {
        bad(r, "'%s' has %u entries (at most %u)", key, (unsigned)it.n, (unsigned)max);
        return PS_PROTO_E_TOO_LARGE;
    }
    return 0;
}

static int want_bin(rd *r, const char *key, item *it)
{
    if (rd_item(r, it)) return PS_PROTO_E_BAD_REQUEST;
    if (it->type != T_BIN) return bad(r, "'%s' is %s, expected a bin", key, type_name(it));
    return 0;
}

/* A string into out (max bytes at most, NUL added). */
static int want_text(rd *r, const char *key, size_t max, char *out)
{
    item it;
    if (rd_item(r, &it)) return PS_PROTO_E_BAD_REQUEST;
    if (it.type != T_STR) return bad(r, "'%s' is %s, expected a string", key, type_name(&it));
    if (it.n > max) return bad(r, "'%s' is %u bytes long (at most %zu)", key, (unsigned)it.n, max);
    /* A NUL would silently cut the C string the caller gets. */
    if (memchr(it.data, 0, it.n)) return bad(r, "'%s' contains a NUL byte", key);
    memcpy(out, it.data, it.n);
    out[it.n] = '\0';
    return 0;
}

static int want_int32(rd *r, const char *what, size_t idx, int32_t *out)
{
    item it;
    if (rd_item(r, &it)) return PS_PROTO_E_BAD_REQUEST;
    if (it.type == T_UINT && it.u <= INT32_MAX) {
        *out = (int32_t)it.u;
        return 0;
    }
    if (it.type == T_NEG && it.i == -1) {
        *out = -1;
        return 0;
    }
    if (it.type == T_UINT || it.type == T_NEG)
        return bad(r, "%s[%zu] is out of range (-1 to %d)", what, idx, INT32_MAX);
    return bad(r, "%s[%zu] is %s, expected an integer", what, idx, type_name(&it));
}

/* ---- owned storage -------------------------------------------------------- */

static void *mem_get(ps_proto_mem *m, size_t bytes)
{
    if (bytes == 0) bytes = 1;
    /* Keep the block between messages, but do not let one huge message pin
     * a huge block forever. */
    if (m->cap < bytes || (m->cap > ((size_t)1 << 20) && m->cap / 4 > bytes)) {
        free(m->p);
        m->p = malloc(bytes);
        m->cap = m->p ? bytes : 0;
    }
    return m->p;
}

static void mem_free(ps_proto_mem *m)
{
    free(m->p);
    m->p = NULL;
    m->cap = 0;
}

static int no_memory(rd *r, size_t bytes)
{
    if (r->err && r->errlen)
        snprintf(r->err, r->errlen, "out of memory (%zu bytes for the message)", bytes);
    return PS_PROTO_E_INTERNAL;
}

/* ---- the envelope --------------------------------------------------------- */

/*
 * Pass 1 over the whole buffer, then the envelope: id (optional), v, op. On a
 * structural failure the id is still read if its value came through whole,
 * so that the error reply can echo it.
 */
static int rd_message(rd *r, fields *fs, bool *has_id, uint64_t *id, int *op)
{
    *has_id = false;
    *id = 0;
    *op = PS_PROTO_OP_NONE;
    if (r->len == 0) return bad(r, "empty message");
    if (r->len > PS_PROTO_MAX_MESSAGE) {
        bad(r, "message is %zu bytes (at most %zu)", r->len, (size_t)PS_PROTO_MAX_MESSAGE);
        return PS_PROTO_E_TOO_LARGE;
    }
    int rc = rd_map(r, 1, "the message", fs);
    if (!rc && r->pos != r->len)
        rc = bad(r, "%zu bytes after the end of the message map", r->len - r->pos);
    const field *f = get(fs, "id");
    if (f) {
        /* Read into a scratch reader: a bad id must not overwrite the
         * message of an earlier failure. */
        rd tmp = *r;
        char scratch[128];
        tmp.err = rc ? scratch : r->err;
        tmp.errlen = rc ? sizeof scratch : r->errlen;
        tmp.pos = f->val;
        int idrc = want_uint(&tmp, "id", SIZE_MAX, UINT64_MAX, id);
        if (!idrc)
            *has_id = true;
        else if (!rc)
            rc = idrc;
    }
    if (rc) return rc;
    uint64_t v = 0;
    if (seek(r, fs, "v", " (protocol version)") || want_uint(r, "v", SIZE_MAX, UINT64_MAX, &v))
        return PS_PROTO_E_BAD_REQUEST;
    if (v != PS_PROTO_VERSION) {
        bad(r, "protocol version %llu is not supported (this side speaks %u)",
            (unsigned long long)v, PS_PROTO_VERSION);
        return PS_PROTO_E_VERSION;
    }
    if (seek(r, fs, "op", "")) return PS_PROTO_E_BAD_REQUEST;
    item it;
    if (rd_item(r, &it)) return PS_PROTO_E_BAD_REQUEST;
    if (it.type != T_STR) return bad(r, "'op' is %s, expected a string", type_name(&it));
    static const int ops[] = {PS_PROTO_OP_SCORE, PS_PROTO_OP_HEALTH, PS_PROTO_OP_INFO,
                              PS_PROTO_OP_ERROR, PS_PROTO_OP_PUB,    PS_PROTO_OP_LATEST};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        const char *name = ps_proto_op_name(ops[i]);
        if (strlen(name) == it.n && memcmp(name, it.data, it.n) == 0) *op = ops[i];
    }
    if (*op == PS_PROTO_OP_NONE) {
        char shown[40];
        bad(r, "unknown op '%s'", show(it.data, it.n, shown));
        return PS_PROTO_E_UNKNOWN_OP;
    }
    return 0;
}

/* The op is known but not one this side takes. */
static int wrong_op(rd *r, int op, const char *expected)
{
    bad(r, "op '%s' is not %s", ps_proto_op_name(op), expected);
    return PS_PROTO_E_UNKNOWN_OP;
}

/* ---- requests ------------------------------------------------------------- */

/* The arrays of a score request, carved from one block. */
typedef struct score_mem {
    uint64_t *ids, *seqs, *scratch;
    double *ts;
    float *metrics;
} score_mem;

static int score_alloc(rd *r, ps_proto_request *req, size_t n, size_t k, score_mem *sm)
{
    /* 8-byte arrays first so that every array is aligned; n <= 65536 and
     * k <= 256, so none of this can overflow. */
    size_t bytes = n * (8 + 8 + 8 + 16) + n * k * 4;
    uint8_t *p = mem_get(&req->mem, bytes);
    if (!p) return no_memory(r, bytes);
    sm->ids = (uint64_t *)p;
    sm->seqs = sm->ids + n;
    sm->ts = (double *)(sm->seqs + n);
    sm->scratch = (uint64_t *)(sm->ts + n);
    sm->metrics = (float *)(sm->scratch + 2 * n);
    return 0;
}

static int want_k(rd *r, uint32_t *k)
{
    uint64_t v = 0;
    if (want_uint(r, "k", SIZE_MAX, UINT64_MAX, &v)) return PS_PROTO_E_BAD_REQUEST;
    if (v == 0) return bad(r, "'k' is 0: a heartbeat carries at least one metric");
    if (v > PS_PROTO_MAX_K) {
        bad(r, "'k' is %llu (at most %u metrics)", (unsigned long long)v, PS_PROTO_MAX_K);
        return PS_PROTO_E_TOO_LARGE;
    }
    *k = (uint32_t)v;
    return 0;
}

static int want_heartbeats(rd *r, const char *key, uint32_t *n)
{
    int rc = want_array(r, key, PS_PROTO_MAX_BATCH, n);
    if (rc == PS_PROTO_E_TOO_LARGE)
        bad(r, "'%s' has %u entries (at most %u heartbeats per request)", key, (unsigned)*n,
            PS_PROTO_MAX_BATCH);
    if (rc) return rc;
    if (*n == 0)
        return bad(r, "'%s' is empty: a score request carries at least one heartbeat", key);
    return 0;
}

static int score_columns(rd *r, const fields *fs, ps_proto_request *req)
{
    static const char *const ctx = " (columnar score request: k, ids, seqs, ts, metrics)";
    uint32_t k = 0, n = 0, n2 = 0;
    int rc;
    if (seek(r, fs, "k", ctx)) return PS_PROTO_E_BAD_REQUEST;
    if ((rc = want_k(r, &k))) return rc;
    if (seek(r, fs, "ids", ctx)) return PS_PROTO_E_BAD_REQUEST;
    if ((rc = want_heartbeats(r, "ids", &n))) return rc;
    size_t ids_at = r->pos;
    static const char *const others[] = {"seqs", "ts"};
    size_t at[2];
    for (int a = 0; a < 2; a++) {
        if (seek(r, fs, others[a], ctx)) return PS_PROTO_E_BAD_REQUEST;
        if ((rc = want_array(r, others[a], UINT32_MAX, &n2))) return rc;
        if (n2 != n)
            return bad(r, "ids has %u entries but %s has %u", (unsigned)n, others[a], (unsigned)n2);
        at[a] = r->pos;
    }
    item bin;
    if (seek(r, fs, "metrics", ctx) || want_bin(r, "metrics", &bin)) return PS_PROTO_E_BAD_REQUEST;
    size_t expect = (size_t)n * k * 4;
    if (bin.n != expect)
        return bad(r, "metrics bin is %u bytes, expected %zu (N=%u, K=%u, float32)",
                   (unsigned)bin.n, expect, (unsigned)n, (unsigned)k);

    score_mem sm;
    if ((rc = score_alloc(r, req, n, k, &sm))) return rc;
    r->pos = ids_at;
    for (uint32_t i = 0; i < n; i++)
        if (want_uint(r, "ids", i, UINT64_MAX, &sm.ids[i])) return PS_PROTO_E_BAD_REQUEST;
    r->pos = at[0];
    for (uint32_t i = 0; i < n; i++)
        if (want_uint(r, "seqs", i, UINT64_MAX, &sm.seqs[i])) return PS_PROTO_E_BAD_REQUEST;
    r->pos = at[1];
    for (uint32_t i = 0; i < n; i++) {
        char human[48];
        snprintf(human, sizeof human, "heartbeat %u timestamp", (unsigned)i);
        if (want_number(r, "ts", i, human, &sm.ts[i])) return PS_PROTO_E_BAD_REQUEST;
    }
    for (size_t i = 0; i < (size_t)n * k; i++) {
        float x = psp_get_f32le(bin.data + 4 * i);
        const char *why = psp_not_finite(x);
        if (why) return bad(r, "heartbeat %zu metric %zu is %s (metrics bin)", i / k, i % k, why);
        sm.metrics[i] = x;
    }
    req->k = k;
    req->n = n;
    req->form = PS_PROTO_FORM_COLUMNS;
    req->ids = sm.ids;
    req->seqs = sm.seqs;
    req->ts = sm.ts;
    req->metrics = sm.metrics;
    return psp_check_distinct(sm.ids, n, sm.scratch, r->err, r->errlen);
}

/* Shape of row i: [id, seq, ts, [K numbers]]; *k is set by the first row
 * when the request gave none. The cursor moves past the row. */
static int row_shape(rd *r, uint32_t i, uint32_t *k, bool k_given)
{
    item it;
    if (rd_item(r, &it)) return PS_PROTO_E_BAD_REQUEST;
    if (it.type != T_ARRAY)
        return bad(r, "rows[%u] is %s, expected an array [id, seq, ts, metrics]", (unsigned)i,
                   type_name(&it));
    if (it.n != 4)
        return bad(r, "rows[%u] has %u entries, expected 4 (id, seq, ts, metrics)", (unsigned)i,
                   (unsigned)it.n);
    for (int j = 0; j < 3; j++)
        if (rd_skip(r, 4)) return PS_PROTO_E_BAD_REQUEST;
    if (rd_item(r, &it)) return PS_PROTO_E_BAD_REQUEST;
    if (it.type != T_ARRAY)
        return bad(r, "rows[%u][3] is %s, expected an array of metrics", (unsigned)i,
                   type_name(&it));
    if (*k == 0) {
        if (it.n == 0) return bad(r, "rows[0] has no metrics: a heartbeat carries at least one");
        if (it.n > PS_PROTO_MAX_K) {
            bad(r, "rows[0] has %u metrics (at most %u)", (unsigned)it.n, PS_PROTO_MAX_K);
            return PS_PROTO_E_TOO_LARGE;
        }
        *k = it.n;
    } else if (it.n != *k) {
        return bad(r, "rows[%u] has %u metrics, expected %u (%s)", (unsigned)i, (unsigned)it.n,
                   (unsigned)*k, k_given ? "k" : "as rows[0]");
    }
    for (uint32_t j = 0; j < it.n; j++)
        if (rd_skip(r, 5)) return PS_PROTO_E_BAD_REQUEST;
    return 0;
}

static int score_rows(rd *r, const fields *fs, ps_proto_request *req)
{
    uint32_t k = 0, n;
    int rc;
    bool k_given = get(fs, "k") != NULL;
    if (k_given) {
        seek(r, fs, "k", "");
        if ((rc = want_k(r, &k))) return rc;
    }
    if (seek(r, fs, "rows", "")) return PS_PROTO_E_BAD_REQUEST;
    if ((rc = want_heartbeats(r, "rows", &n))) return rc;
    /* Shapes first, so that the one allocation is exact. */
    size_t rows_at = r->pos;
    for (uint32_t i = 0; i < n; i++)
        if ((rc = row_shape(r, i, &k, k_given))) return rc;

    score_mem sm;
    if ((rc = score_alloc(r, req, n, k, &sm))) return rc;
    r->pos = rows_at;
    for (uint32_t i = 0; i < n; i++) {
        item it;
        char what[32], human[48];
        rd_item(r, &it); /* [id, seq, ts, metrics]: checked above */
        snprintf(what, sizeof what, "rows[%u]", (unsigned)i);
        if (want_uint(r, what, 0, UINT64_MAX, &sm.ids[i]) ||
            want_uint(r, what, 1, UINT64_MAX, &sm.seqs[i]))
            return PS_PROTO_E_BAD_REQUEST;
        snprintf(human, sizeof human, "heartbeat %u timestamp", (unsigned)i);
        if (want_number(r, what, 2, human, &sm.ts[i])) return PS_PROTO_E_BAD_REQUEST;
        rd_item(r, &it);
        snprintf(what, sizeof what, "rows[%u][3]", (unsigned)i);
        for (uint32_t j = 0; j < k; j++) {
            double x;
            snprintf(human, sizeof human, "heartbeat %u metric %u", (unsigned)i, (unsigned)j);
            if (want_number(r, what, j, human, &x)) return PS_PROTO_E_BAD_REQUEST;
            if (x > FLT_MAX || x < -FLT_MAX)
                return bad(r, "%s (%s[%u]) is %g, beyond the float32 range", human, what,
                           (unsigned)j, x);
            sm.metrics[(size_t)i * k + j] = (float)x;
        }
    }
    req->k = k;
    req->n = n;
    req->form = PS_PROTO_FORM_ROWS;
    req->ids = sm.ids;
    req->seqs = sm.seqs;
    req->ts = sm.ts;
    req->metrics = sm.metrics;
    return psp_check_distinct(sm.ids, n, sm.scratch, r->err, r->errlen);
}

/* op LATEST: "ids", 1 .. PS_PROTO_MAX_BATCH distinct processor ids. */
static int latest_ids(rd *r, const fields *fs, ps_proto_request *req)
{
    static const char *const ctx = " (latest request)";
    uint32_t n = 0;
    int rc;
    if (seek(r, fs, "ids", ctx)) return PS_PROTO_E_BAD_REQUEST;
    rc = want_array(r, "ids", PS_PROTO_MAX_BATCH, &n);
    if (rc == PS_PROTO_E_TOO_LARGE)
        bad(r, "'ids' has %u entries (at most %u processors per latest request)", (unsigned)n,
            PS_PROTO_MAX_BATCH);
    if (rc) return rc;
    if (n == 0) return bad(r, "'ids' is empty: a latest request asks for at least one processor");
    /* ids, then 2n of scratch for the distinct check. */
    size_t bytes = (size_t)n * 3 * sizeof(uint64_t);
    uint64_t *ids = mem_get(&req->mem, bytes);
    if (!ids) return no_memory(r, bytes);
    for (uint32_t i = 0; i < n; i++)
        if (want_uint(r, "ids", i, UINT64_MAX, &ids[i])) return PS_PROTO_E_BAD_REQUEST;
    req->n = n;
    req->ids = ids;
    return psp_check_distinct(ids, n, ids + n, r->err, r->errlen);
}

static void request_clear(ps_proto_request *req)
{
    req->n = 0;
    req->k = 0;
    req->form = PS_PROTO_FORM_COLUMNS;
    req->ids = req->seqs = NULL;
    req->ts = NULL;
    req->metrics = NULL;
}

int ps_proto_decode_request(const uint8_t *buf, size_t len, ps_proto_request *req, char *err,
                            size_t errlen)
{
    rd r = {buf, buf ? len : 0, 0, err, errlen};
    fields fs;
    int op;
    request_clear(req);
    int rc = rd_message(&r, &fs, &req->has_id, &req->id, &op);
    req->op = (ps_proto_op)op;
    if (rc) return rc;
    switch (op) {
    case PS_PROTO_OP_HEALTH:
    case PS_PROTO_OP_INFO:
        return 0;
    case PS_PROTO_OP_LATEST:
        rc = latest_ids(&r, &fs, req);
        if (rc) request_clear(req);
        return rc;
    case PS_PROTO_OP_SCORE:
        break;
    default:
        return wrong_op(&r, op, "a request (score, health, info or latest)");
    }
    bool rows = get(&fs, "rows") != NULL;
    const char *col = get(&fs, "ids")       ? "ids"
                      : get(&fs, "seqs")    ? "seqs"
                      : get(&fs, "ts")      ? "ts"
                      : get(&fs, "metrics") ? "metrics"
                                            : NULL;
    if (rows && col)
        rc = bad(&r,
                 "both 'rows' and '%s' given: a score request is in row or columnar form, "
                 "not both",
                 col);
    else if (rows)
        rc = score_rows(&r, &fs, req);
    else if (col)
        rc = score_columns(&r, &fs, req);
    else
        rc = bad(&r, "a score request needs 'rows', or 'k', 'ids', 'seqs', 'ts' and 'metrics'");
    if (rc) request_clear(req);
    return rc;
}

void ps_proto_request_free(ps_proto_request *req)
{
    if (!req) return;
    mem_free(&req->mem);
    request_clear(req);
}

/* ---- replies -------------------------------------------------------------- */

/* The columns a score reply and a PUB message share: ids, score, pfp, top,
 * with n taken from ids. Results go into out[i] through the setters. */
typedef struct columns {
    uint32_t n;
    size_t ids_at, top_at;
    const uint8_t *score, *pfp;
} columns;

static int want_columns(rd *r, const fields *fs, const char *ctx, columns *c)
{
    int rc;
    uint32_t n2;
    item bin;
    if (seek(r, fs, "ids", ctx)) return PS_PROTO_E_BAD_REQUEST;
    if ((rc = want_array(r, "ids", PS_PROTO_MAX_BATCH, &c->n))) return rc;
    c->ids_at = r->pos;
    if (seek(r, fs, "top", ctx) || want_array(r, "top", UINT32_MAX, &n2))
        return PS_PROTO_E_BAD_REQUEST;
    if (n2 != c->n)
        return bad(r, "ids has %u entries but top has %u", (unsigned)c->n, (unsigned)n2);
    c->top_at = r->pos;
    if (seek(r, fs, "score", ctx) || want_bin(r, "score", &bin)) return PS_PROTO_E_BAD_REQUEST;
    if (bin.n != (size_t)c->n * 4)
        return bad(r, "score bin is %u bytes, expected %zu (N=%u, float32)", (unsigned)bin.n,
                   (size_t)c->n * 4, (unsigned)c->n);
    c->score = bin.data;
    if (seek(r, fs, "pfp", ctx) || want_bin(r, "pfp", &bin)) return PS_PROTO_E_BAD_REQUEST;
    if (bin.n != (size_t)c->n * 8)
        return bad(r, "pfp bin is %u bytes, expected %zu (N=%u, float64)", (unsigned)bin.n,
                   (size_t)c->n * 8, (unsigned)c->n);
    c->pfp = bin.data;
    return 0;
}

/* Value i of the score and pfp bins, checked. */
static int column_values(rd *r, const columns *c, uint32_t i, float *score, double *pfp)
{
    *score = psp_get_f32le(c->score + 4 * (size_t)i);
    *pfp = psp_get_f64le(c->pfp + 8 * (size_t)i);
    const char *why = psp_not_finite(*score);
    if (why) return bad(r, "score of entry %u is %s", (unsigned)i, why);
    if (!(*pfp >= 0.0 && *pfp <= 1.0))
        return bad(r, "pfp of entry %u is %g, not in [0, 1]", (unsigned)i, *pfp);
    return 0;
}

/* The shape of the results of a score or latest reply: the columns, and
 * "state" of as many entries, whose values start at *state_at. */
static int want_results(rd *r, const fields *fs, const char *ctx, columns *c, size_t *state_at)
{
    int rc;
    uint32_t n2;
    if ((rc = want_columns(r, fs, ctx, c))) return rc;
    if (seek(r, fs, "state", ctx) || want_array(r, "state", UINT32_MAX, &n2))
        return PS_PROTO_E_BAD_REQUEST;
    if (n2 != c->n)
        return bad(r, "ids has %u entries but state has %u", (unsigned)c->n, (unsigned)n2);
    *state_at = r->pos;
    return 0;
}

/* The values of the results whose shape want_results checked. */
static int read_results(rd *r, const columns *c, size_t state_at, ps_proto_result *res)
{
    r->pos = c->ids_at;
    for (uint32_t i = 0; i < c->n; i++)
        if (want_uint(r, "ids", i, UINT64_MAX, &res[i].id)) return PS_PROTO_E_BAD_REQUEST;
    r->pos = state_at;
    for (uint32_t i = 0; i < c->n; i++) {
        uint64_t s;
        if (want_uint(r, "state", i, UINT8_MAX, &s)) return PS_PROTO_E_BAD_REQUEST;
        res[i].state = (uint8_t)s;
    }
    r->pos = c->top_at;
    for (uint32_t i = 0; i < c->n; i++)
        if (want_int32(r, "top", i, &res[i].top)) return PS_PROTO_E_BAD_REQUEST;
    for (uint32_t i = 0; i < c->n; i++)
        if (column_values(r, c, i, &res[i].score, &res[i].pfp)) return PS_PROTO_E_BAD_REQUEST;
    return 0;
}

static int reply_score(rd *r, const fields *fs, ps_proto_reply *rep)
{
    static const char *const ctx = " (score reply)";
    columns c;
    size_t state_at = 0;
    int rc;
    if (seek(r, fs, "tick", ctx) || want_uint(r, "tick", SIZE_MAX, UINT64_MAX, &rep->score.tick))
        return PS_PROTO_E_BAD_REQUEST;
    if ((rc = want_results(r, fs, ctx, &c, &state_at))) return rc;
    size_t bytes = (size_t)c.n * sizeof(ps_proto_result);
    ps_proto_result *res = mem_get(&rep->mem, bytes);
    if (!res) return no_memory(r, bytes);
    if (read_results(r, &c, state_at, res)) return PS_PROTO_E_BAD_REQUEST;
    rep->score.n = c.n;
    rep->score.results = res;
    return 0;
}

static int reply_latest(rd *r, const fields *fs, ps_proto_reply *rep)
{
    static const char *const ctx = " (latest reply)";
    columns c;
    size_t state_at = 0;
    int rc;
    uint32_t n2;
    if (seek(r, fs, "tick", ctx) || want_uint(r, "tick", SIZE_MAX, UINT64_MAX, &rep->latest.tick))
        return PS_PROTO_E_BAD_REQUEST;
    if ((rc = want_results(r, fs, ctx, &c, &state_at))) return rc;
    if (seek(r, fs, "ts", ctx) || want_array(r, "ts", UINT32_MAX, &n2))
        return PS_PROTO_E_BAD_REQUEST;
    if (n2 != c.n) return bad(r, "ids has %u entries but ts has %u", (unsigned)c.n, (unsigned)n2);
    size_t ts_at = r->pos;
    /* The doubles first: both arrays stay aligned. */
    size_t bytes = (size_t)c.n * (sizeof(double) + sizeof(ps_proto_result));
    double *ts = mem_get(&rep->mem, bytes);
    if (!ts) return no_memory(r, bytes);
    ps_proto_result *res = (ps_proto_result *)(ts + c.n);
    if (read_results(r, &c, state_at, res)) return PS_PROTO_E_BAD_REQUEST;
    r->pos = ts_at;
    for (uint32_t i = 0; i < c.n; i++)
        if (want_number(r, "ts", i, "result timestamp", &ts[i])) return PS_PROTO_E_BAD_REQUEST;
    rep->latest.n = c.n;
    rep->latest.results = res;
    rep->latest.ts = ts;
    return 0;
}

static int reply_health(rd *r, const fields *fs, ps_proto_reply *rep)
{
    static const char *const ctx = " (health reply)";
    char status[PS_PROTO_MAX_NAME + 1];
    if (seek(r, fs, "status", ctx) || want_text(r, "status", PS_PROTO_MAX_NAME, status))
        return PS_PROTO_E_BAD_REQUEST;
    rep->health.status = -1;
    for (int s = PS_PROTO_STATUS_OK; s <= PS_PROTO_STATUS_STOPPING; s++)
        if (strcmp(status, ps_proto_status_name(s)) == 0) rep->health.status = s;
    if (rep->health.status < 0) {
        char shown[40];
        return bad(r, "unknown health status '%s'",
                   show((const uint8_t *)status, strlen(status), shown));
    }
    if (seek(r, fs, "uptime", ctx) ||
        want_number(r, "uptime", SIZE_MAX, NULL, &rep->health.uptime) || seek(r, fs, "tick", ctx) ||
        want_uint(r, "tick", SIZE_MAX, UINT64_MAX, &rep->health.tick))
        return PS_PROTO_E_BAD_REQUEST;
    if (rep->health.uptime < 0) return bad(r, "'uptime' is negative");
    return 0;
}

/* A nested map of uints: each key of names into out. */
static int want_counts(rd *r, const fields *fs, const char *key, const char *const *names,
                       uint64_t *const *out, int count)
{
    char what[48];
    snprintf(what, sizeof what, "'%s'", key);
    fields sub;
    if (seek(r, fs, key, " (info reply)") || rd_map(r, 2, what, &sub))
        return PS_PROTO_E_BAD_REQUEST;
    for (int i = 0; i < count; i++) {
        char context[64];
        snprintf(context, sizeof context, " in '%s'", key);
        if (seek(r, &sub, names[i], context) ||
            want_uint(r, names[i], SIZE_MAX, UINT64_MAX, out[i]))
            return PS_PROTO_E_BAD_REQUEST;
    }
    return 0;
}

static int reply_info(rd *r, const fields *fs, ps_proto_reply *rep)
{
    static const char *const ctx = " (info reply)";
    ps_proto_info *in = &rep->info;
    uint64_t v = 0;
    if (seek(r, fs, "version", ctx) || want_text(r, "version", PS_PROTO_MAX_TEXT, in->version) ||
        seek(r, fs, "model", ctx) || want_text(r, "model", PS_PROTO_MAX_TEXT, in->model) ||
        seek(r, fs, "backend", ctx) || want_text(r, "backend", PS_PROTO_MAX_TEXT, in->backend))
        return PS_PROTO_E_BAD_REQUEST;
    if (seek(r, fs, "k", ctx)) return PS_PROTO_E_BAD_REQUEST;
    int rc = want_k(r, &in->k);
    if (rc) return rc;
    if (seek(r, fs, "hidden", ctx) || want_uint(r, "hidden", SIZE_MAX, UINT32_MAX, &v))
        return PS_PROTO_E_BAD_REQUEST;
    in->hidden = (uint32_t)v;
    if (seek(r, fs, "run", ctx) || want_uint(r, "run", SIZE_MAX, UINT64_MAX, &in->run))
        return PS_PROTO_E_BAD_REQUEST;
    static const char *const states[] = {"warming_up", "scored", "stale"};
    uint64_t *const state_out[] = {&in->warming_up, &in->scored, &in->stale};
    static const char *const limits[] = {"max_message_bytes", "max_batch", "max_processors"};
    uint64_t *const limit_out[] = {&in->max_message_bytes, &in->max_batch, &in->max_processors};
    if (want_counts(r, fs, "processors", states, state_out, 3) ||
        want_counts(r, fs, "limits", limits, limit_out, 3))
        return PS_PROTO_E_BAD_REQUEST;
    return 0;
}

static int reply_error(rd *r, const fields *fs, ps_proto_reply *rep)
{
    static const char *const ctx = " (error reply)";
    uint64_t code;
    if (seek(r, fs, "code", ctx) || want_uint(r, "code", SIZE_MAX, UINT32_MAX, &code) ||
        seek(r, fs, "name", ctx) || want_text(r, "name", PS_PROTO_MAX_NAME, rep->error.name) ||
        seek(r, fs, "message", ctx) ||
        want_text(r, "message", PS_PROTO_MAX_TEXT, rep->error.message))
        return PS_PROTO_E_BAD_REQUEST;
    rep->error.code = (uint32_t)code;
    return 0;
}

static void reply_clear(ps_proto_reply *rep)
{
    ps_proto_mem mem = rep->mem;
    memset(rep, 0, sizeof *rep);
    rep->mem = mem;
}

int ps_proto_decode_reply(const uint8_t *buf, size_t len, ps_proto_reply *rep, char *err,
                          size_t errlen)
{
    rd r = {buf, buf ? len : 0, 0, err, errlen};
    fields fs;
    int op;
    reply_clear(rep);
    int rc = rd_message(&r, &fs, &rep->has_id, &rep->id, &op);
    rep->op = (ps_proto_op)op;
    if (!rc) {
        switch (op) {
        case PS_PROTO_OP_SCORE:
            rc = reply_score(&r, &fs, rep);
            break;
        case PS_PROTO_OP_HEALTH:
            rc = reply_health(&r, &fs, rep);
            break;
        case PS_PROTO_OP_INFO:
            rc = reply_info(&r, &fs, rep);
            break;
        case PS_PROTO_OP_LATEST:
            rc = reply_latest(&r, &fs, rep);
            break;
        case PS_PROTO_OP_ERROR:
            rc = reply_error(&r, &fs, rep);
            break;
        default:
            rc = wrong_op(&r, op, "a reply (score, health, info, latest or error)");
        }
    }
    if (rc) {
        bool has_id = rep->has_id;
        uint64_t id = rep->id;
        reply_clear(rep);
        rep->op = (ps_proto_op)op;
        rep->has_id = has_id;
        rep->id = id;
    }
    return rc;
}

void ps_proto_reply_free(ps_proto_reply *rep)
{
    if (!rep) return;
    mem_free(&rep->mem);
    reply_clear(rep);
}

/* ---- the stream ----------------------------------------------------------- */

static void pub_clear(ps_proto_pub *pub)
{
    ps_proto_mem mem = pub->mem;
    memset(pub, 0, sizeof *pub);
    pub->mem = mem;
}

static int pub_body(rd *r, const fields *fs, ps_proto_pub *pub)
{
    static const char *const ctx = " (PUB message)";
    columns c;
    int rc;
    uint32_t n2;
    if (seek(r, fs, "run", ctx) || want_uint(r, "run", SIZE_MAX, UINT64_MAX, &pub->run) ||
        seek(r, fs, "seq", ctx) || want_uint(r, "seq", SIZE_MAX, UINT64_MAX, &pub->seq) ||
        seek(r, fs, "tick", ctx) || want_uint(r, "tick", SIZE_MAX, UINT64_MAX, &pub->tick) ||
        seek(r, fs, "t", ctx) || want_number(r, "t", SIZE_MAX, "tick time", &pub->t))
        return PS_PROTO_E_BAD_REQUEST;
    if (pub->run == 0 || pub->seq == 0)
        return bad(r, "'%s' is 0 (it starts at 1)", pub->run == 0 ? "run" : "seq");
    if ((rc = want_columns(r, fs, ctx, &c))) return rc;
    if (pub->seq - 1 > UINT64_MAX - c.n)
        return bad(r, "seq %llu + %u records overflows", (unsigned long long)pub->seq,
                   (unsigned)c.n);
    if (seek(r, fs, "ts", ctx) || want_array(r, "ts", UINT32_MAX, &n2))
        return PS_PROTO_E_BAD_REQUEST;
    if (n2 != c.n) return bad(r, "ids has %u entries but ts has %u", (unsigned)c.n, (unsigned)n2);
    size_t ts_at = r->pos;
    /* The metrics: "k" and "x" together, or neither (a message without
     * them, as an older publisher sends). */
    const field *fk = get(fs, "k"), *fx = get(fs, "x");
    uint32_t k = 0;
    item x = {0};
    if (fk || fx) {
        if (!fk) return bad(r, "'x' without 'k' (PUB message: both or neither)");
        if (!fx) return bad(r, "missing key 'x' (PUB message with 'k': both or neither)");
        r->pos = fk->val;
        if ((rc = want_k(r, &k))) return rc;
        r->pos = fx->val;
        if (want_bin(r, "x", &x)) return PS_PROTO_E_BAD_REQUEST;
        if (x.n != (size_t)c.n * k * 4)
            return bad(r, "x bin is %u bytes, expected %zu (n=%u, K=%u, float32)", (unsigned)x.n,
                       (size_t)c.n * k * 4, (unsigned)c.n, (unsigned)k);
    }
    /* Records first: both arrays stay aligned. */
    size_t bytes = (size_t)c.n * sizeof(ps_proto_record) + (size_t)c.n * k * sizeof(float);
    ps_proto_record *rec = mem_get(&pub->mem, bytes);
    if (!rec) return no_memory(r, bytes);
    float *xs = (float *)(rec + c.n);
    for (size_t i = 0; i < (size_t)c.n * k; i++) {
        xs[i] = psp_get_f32le(x.data + 4 * i);
        const char *why = psp_not_finite(xs[i]);
        if (why) return bad(r, "record %zu metric %zu is %s (x bin)", i / k, i % k, why);
    }
    r->pos = c.ids_at;
    for (uint32_t i = 0; i < c.n; i++)
        if (want_uint(r, "ids", i, UINT64_MAX, &rec[i].id)) return PS_PROTO_E_BAD_REQUEST;
    r->pos = ts_at;
    for (uint32_t i = 0; i < c.n; i++)
        if (want_number(r, "ts", i, "record timestamp", &rec[i].ts)) return PS_PROTO_E_BAD_REQUEST;
    r->pos = c.top_at;
    for (uint32_t i = 0; i < c.n; i++)
        if (want_int32(r, "top", i, &rec[i].top)) return PS_PROTO_E_BAD_REQUEST;
    for (uint32_t i = 0; i < c.n; i++)
        if (column_values(r, &c, i, &rec[i].score, &rec[i].pfp)) return PS_PROTO_E_BAD_REQUEST;
    pub->n = c.n;
    pub->records = rec;
    pub->k = k;
    pub->x = k ? xs : NULL;
    return 0;
}

int ps_proto_decode_pub(const uint8_t *buf, size_t len, ps_proto_pub *pub, char *err, size_t errlen)
{
    rd r = {buf, buf ? len : 0, 0, err, errlen};
    fields fs;
    int op;
    bool has_id;
    uint64_t id;
    pub_clear(pub);
    int rc = rd_message(&r, &fs, &has_id, &id, &op);
    if (!rc)
        rc = op == PS_PROTO_OP_PUB ? pub_body(&r, &fs, pub) : wrong_op(&r, op, "a PUB message");
    if (rc) pub_clear(pub);
    return rc;
}

void ps_proto_pub_free(ps_proto_pub *pub)
{
    if (!pub) return;
    mem_free(&pub->mem);
    pub_clear(pub);
}
