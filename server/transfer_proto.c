/*
 * transfer_proto.c - the codec of the transfer protocol (docs/transfer.md).
 *
 * The messages are small flat maps, so the decoder is a direct reader over
 * the bytes as in protocol_decode.c, cut down: pass 1 checks the structure
 * of the whole buffer (one map, string keys, no key twice, bounded nesting,
 * every declared length possible in the bytes left, nothing after the map)
 * and remembers where each key's value starts; pass 2 reads the known keys
 * from there, so their order on the wire does not matter, and ignores the
 * others. Nothing is allocated. Encoders use msgpack-c's packer, writing
 * into a ps_buf, after the checks the decoder applies.
 */
#include "transfer_proto.h"

#include "core/error.h"

#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- names ---------------------------------------------------------------- */

static const char *const code_names[PS_XFER_NCODES] = {
    "ok", "bad_request", "version", "unknown_op", "too_large", "wrong_processor", "internal",
};

const char *ps_xfer_code_name(int code)
{
    return code >= 0 && code < PS_XFER_NCODES ? code_names[code] : "unknown";
}

static const char *const op_names[PS_XFER_NOPS] = {
    "", "prepare", "commit", "rollback", "status", "error",
};

const char *ps_xfer_op_name(int op)
{
    return op >= 0 && op < PS_XFER_NOPS ? op_names[op] : "";
}

const char *ps_xfer_role_name(int role)
{
    return role == PS_XFER_ROLE_DESTINATION ? "destination"
           : role == PS_XFER_ROLE_SOURCE    ? "source"
                                            : "none";
}

static const char *const state_names[PS_XFER_NSTATES] = {
    "none",
    "prepared",
    "committed",
    "rolled_back",
};

const char *ps_xfer_state_name(int state)
{
    return state >= 0 && state < PS_XFER_NSTATES ? state_names[state] : "unknown";
}

const char *ps_xfer_result_name(int result)
{
    return result == PS_XFER_RESULT_OK        ? "ok"
           : result == PS_XFER_RESULT_REFUSED ? "refused"
                                              : "unknown";
}

/* A name of n bytes at s (not NUL-terminated): 0 or the reason. */
static int name_check_n(const char *what, const uint8_t *s, size_t n, char *err, size_t errlen)
{
    if (n == 0) return ps_fail(err, errlen, PS_XFER_E_BAD_REQUEST, "'%s' is empty", what);
    if (n > PS_XFER_NAME_MAX)
        return ps_fail(err, errlen, PS_XFER_E_BAD_REQUEST, "'%s' is %zu bytes long (at most %u)",
                       what, n, PS_XFER_NAME_MAX);
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return ps_fail(err, errlen, PS_XFER_E_BAD_REQUEST,
                           "'%s' has byte 0x%02x at %zu: names are printable ASCII without spaces",
                           what, s[i], i);
    return 0;
}

int ps_xfer_name_check(const char *what, const char *s, char *err, size_t errlen)
{
    if (!s) return ps_fail(err, errlen, PS_XFER_E_BAD_REQUEST, "'%s' is missing", what);
    return name_check_n(what, (const uint8_t *)s, strnlen(s, PS_XFER_NAME_MAX + 1), err, errlen);
}

/* ---- the byte reader ------------------------------------------------------ */

typedef struct rd {
    const uint8_t *p;
    size_t len, pos;
    char *err;
    size_t errlen;
} rd;

enum { T_NIL, T_BOOL, T_UINT, T_NEG, T_FLOAT, T_STR, T_BIN, T_ARRAY, T_MAP, T_EXT };

typedef struct item {
    int type;
    uint64_t u;          /* T_UINT */
    int64_t i;           /* T_NEG */
    double f;            /* T_FLOAT */
    uint32_t n;          /* T_STR, T_BIN, T_EXT: bytes; T_ARRAY, T_MAP: entries */
    const uint8_t *data; /* T_STR, T_BIN, T_EXT */
    size_t at;
} item;

static const char *type_name(int type)
{
    static const char *const names[] = {
        "nil",
        "a boolean",
        "an unsigned integer",
        "a negative integer",
        "a float",
        "a string",
        "a bin",
        "an array",
        "a map",
        "an ext",
    };
    return names[type];
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
    return PS_XFER_E_BAD_REQUEST;
}

static int get_be(rd *r, int n, const char *what, uint64_t *v)
{
    if (r->len - r->pos < (size_t)n)
        return bad(r, "truncated: %s at byte %zu needs %d bytes, %zu left", what, r->pos, n,
                   r->len - r->pos);
    uint64_t x = 0;
    for (int i = 0; i < n; i++)
        x = x << 8 | r->p[r->pos + (size_t)i];
    r->pos += (size_t)n;
    *v = x;
    return 0;
}

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

static int get_count(rd *r, item *it, uint64_t n, int per)
{
    if (n > (r->len - r->pos) / (size_t)per)
        return bad(r, "%s at byte %zu declares %llu entries but only %zu bytes are left",
                   it->type == T_MAP ? "map" : "array", it->at, (unsigned long long)n,
                   r->len - r->pos);
    it->n = (uint32_t)n;
    return 0;
}

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
    case 0xc6:
        it->type = T_BIN;
        if (get_be(r, 1 << (b - 0xc4), "bin length", &v)) return PS_XFER_E_BAD_REQUEST;
        return get_body(r, it, v, "bin");
    case 0xc7:
    case 0xc8:
    case 0xc9:
        it->type = T_EXT;
        if (get_be(r, 1 << (b - 0xc7), "ext length", &v)) return PS_XFER_E_BAD_REQUEST;
        if (r->pos >= r->len) return bad(r, "truncated: ext type at byte %zu", r->pos);
        r->pos++;
        return get_body(r, it, v, "ext");
    case 0xca: {
        it->type = T_FLOAT;
        if (get_be(r, 4, "float32", &v)) return PS_XFER_E_BAD_REQUEST;
        uint32_t u = (uint32_t)v;
        float f;
        memcpy(&f, &u, sizeof f);
        it->f = f;
        return 0;
    }
    case 0xcb:
        it->type = T_FLOAT;
        if (get_be(r, 8, "float64", &v)) return PS_XFER_E_BAD_REQUEST;
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
        if (get_be(r, w, "signed integer", &v)) return PS_XFER_E_BAD_REQUEST;
        uint64_t mask = w == 8 ? UINT64_MAX : (UINT64_C(1) << (8 * w)) - 1;
        int64_t s = (v >> (8 * w - 1)) & 1 ? -(int64_t)(~v & (mask >> 1)) - 1 : (int64_t)v;
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
        if (r->pos >= r->len) return bad(r, "truncated: ext type at byte %zu", r->pos);
        r->pos++;
        return get_body(r, it, (uint64_t)1 << (b - 0xd4), "fixext");
    case 0xd9:
    case 0xda:
    case 0xdb:
        it->type = T_STR;
        if (get_be(r, 1 << (b - 0xd9), "string length", &v)) return PS_XFER_E_BAD_REQUEST;
        return get_body(r, it, v, "string");
    case 0xdc:
    case 0xdd:
        it->type = T_ARRAY;
        if (get_be(r, b == 0xdc ? 2 : 4, "array length", &v)) return PS_XFER_E_BAD_REQUEST;
        return get_count(r, it, v, 1);
    case 0xde:
    case 0xdf:
        it->type = T_MAP;
        if (get_be(r, b == 0xde ? 2 : 4, "map length", &v)) return PS_XFER_E_BAD_REQUEST;
        return get_count(r, it, v, 2);
    default: /* 0xc1 */
        return bad(r, "byte 0x%02x at %zu is not a msgpack type", b, it->at);
    }
}

static int rd_skip(rd *r, unsigned depth)
{
    item it;
    if (rd_item(r, &it)) return PS_XFER_E_BAD_REQUEST;
    if (it.type != T_ARRAY && it.type != T_MAP) return 0;
    if (depth > PS_XFER_MAX_DEPTH)
        return bad(r, "%s at byte %zu is nested %u deep (at most %u)",
                   it.type == T_MAP ? "map" : "array", it.at, depth, PS_XFER_MAX_DEPTH);
    uint64_t n = it.type == T_MAP ? 2 * (uint64_t)it.n : it.n;
    for (uint64_t i = 0; i < n; i++)
        if (rd_skip(r, depth + 1)) return PS_XFER_E_BAD_REQUEST;
    return 0;
}

/* A key or value shown in a message: printable ASCII kept, the rest '?'. */
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

typedef struct field {
    const uint8_t *key;
    uint32_t klen;
    size_t val;
} field;

typedef struct fields {
    field f[PS_XFER_MAX_KEYS];
    unsigned n;
} fields;

/* Pass 1: the whole buffer is one map; remember where each value is. */
static int rd_message(rd *r, fields *fs)
{
    fs->n = 0;
    if (r->len == 0) return bad(r, "empty message");
    if (r->len > PS_XFER_MAX_MESSAGE) {
        bad(r, "message is %zu bytes (at most %zu)", r->len, PS_XFER_MAX_MESSAGE);
        return PS_XFER_E_TOO_LARGE;
    }
    item it;
    if (rd_item(r, &it)) return PS_XFER_E_BAD_REQUEST;
    if (it.type != T_MAP) return bad(r, "the message is %s, expected a map", type_name(it.type));
    if (it.n > PS_XFER_MAX_KEYS)
        return bad(r, "the message has %u keys (at most %u)", (unsigned)it.n, PS_XFER_MAX_KEYS);
    for (uint32_t i = 0; i < it.n; i++) {
        item k;
        char shown[40];
        if (rd_item(r, &k)) return PS_XFER_E_BAD_REQUEST;
        if (k.type != T_STR)
            return bad(r, "key %u of the message is %s, expected a string", (unsigned)i,
                       type_name(k.type));
        for (unsigned j = 0; j < fs->n; j++)
            if (fs->f[j].klen == k.n && memcmp(fs->f[j].key, k.data, k.n) == 0)
                return bad(r, "key '%s' appears twice in the message", show(k.data, k.n, shown));
        size_t val = r->pos;
        if (rd_skip(r, 2)) return PS_XFER_E_BAD_REQUEST;
        fs->f[fs->n++] = (field){k.data, k.n, val};
    }
    if (r->pos != r->len)
        return bad(r, "%zu bytes after the end of the message map", r->len - r->pos);
    return 0;
}

static const field *get(const fields *fs, const char *key)
{
    size_t n = strlen(key);
    for (unsigned i = 0; i < fs->n; i++)
        if (fs->f[i].klen == n && memcmp(fs->f[i].key, key, n) == 0) return &fs->f[i];
    return NULL;
}

/* The value of a required key as an item. */
static int want(rd *r, const fields *fs, const char *key, item *it)
{
    const field *f = get(fs, key);
    if (!f) return bad(r, "missing key '%s'", key);
    r->pos = f->val;
    return rd_item(r, it);
}

static int want_uint(rd *r, const fields *fs, const char *key, uint64_t max, uint64_t *out)
{
    item it;
    if (want(r, fs, key, &it)) return PS_XFER_E_BAD_REQUEST;
    if (it.type != T_UINT)
        return bad(r, "'%s' is %s, expected an unsigned integer", key, type_name(it.type));
    if (it.u > max)
        return bad(r, "'%s' is %llu (at most %llu)", key, (unsigned long long)it.u,
                   (unsigned long long)max);
    *out = it.u;
    return 0;
}

/* A string of 0 .. max bytes without NUL into out (NUL added). */
static int want_text(rd *r, const fields *fs, const char *key, size_t max, char *out)
{
    item it;
    if (want(r, fs, key, &it)) return PS_XFER_E_BAD_REQUEST;
    if (it.type != T_STR) return bad(r, "'%s' is %s, expected a string", key, type_name(it.type));
    if (it.n > max) return bad(r, "'%s' is %u bytes long (at most %zu)", key, (unsigned)it.n, max);
    if (memchr(it.data, 0, it.n)) return bad(r, "'%s' contains a NUL byte", key);
    memcpy(out, it.data, it.n);
    out[it.n] = '\0';
    return 0;
}

static int want_name(rd *r, const fields *fs, const char *key, char *out)
{
    item it;
    if (want(r, fs, key, &it)) return PS_XFER_E_BAD_REQUEST;
    if (it.type != T_STR) return bad(r, "'%s' is %s, expected a string", key, type_name(it.type));
    if (name_check_n(key, it.data, it.n, r->err, r->errlen)) return PS_XFER_E_BAD_REQUEST;
    memcpy(out, it.data, it.n);
    out[it.n] = '\0';
    return 0;
}

/* A finite number >= 0. */
static int want_amount(rd *r, const fields *fs, const char *key, double *out)
{
    item it;
    if (want(r, fs, key, &it)) return PS_XFER_E_BAD_REQUEST;
    switch (it.type) {
    case T_UINT:
        *out = (double)it.u;
        return 0;
    case T_NEG:
        return bad(r, "'%s' is %lld (at least 0)", key, (long long)it.i);
    case T_FLOAT:
        if (isnan(it.f)) return bad(r, "'%s' is NaN", key);
        if (isinf(it.f)) return bad(r, "'%s' is infinite", key);
        if (it.f < 0) return bad(r, "'%s' is %g (at least 0)", key, it.f);
        *out = it.f + 0.0; /* -0 becomes 0 */
        return 0;
    default:
        return bad(r, "'%s' is %s, expected a number", key, type_name(it.type));
    }
}

/* The index of the text value of key in names[0 .. n) (NULL entries never match). */
static int want_enum(rd *r, const fields *fs, const char *key, const char *const *names, int n,
                     int *out)
{
    item it;
    if (want(r, fs, key, &it)) return PS_XFER_E_BAD_REQUEST;
    if (it.type != T_STR) return bad(r, "'%s' is %s, expected a string", key, type_name(it.type));
    for (int i = 0; i < n; i++)
        if (names[i] && strlen(names[i]) == it.n && memcmp(names[i], it.data, it.n) == 0) {
            *out = i;
            return 0;
        }
    char shown[40];
    return bad(r, "'%s' is '%s', not one of its values", key, show(it.data, it.n, shown));
}

/* The envelope: v, then op: a request op, or also "error" for replies. */
static int rd_envelope(rd *r, const fields *fs, int *op, bool replies)
{
    uint64_t v = 0;
    if (want_uint(r, fs, "v", UINT64_MAX, &v)) return PS_XFER_E_BAD_REQUEST;
    if (v != PS_XFER_VERSION) {
        bad(r, "transfer protocol version %llu is not supported (this side speaks %u)",
            (unsigned long long)v, PS_XFER_VERSION);
        return PS_XFER_E_VERSION;
    }
    item it;
    if (want(r, fs, "op", &it)) return PS_XFER_E_BAD_REQUEST;
    if (it.type != T_STR) return bad(r, "'op' is %s, expected a string", type_name(it.type));
    int last = replies ? PS_XFER_OP_ERROR : PS_XFER_OP_STATUS;
    for (int o = PS_XFER_OP_PREPARE; o <= last; o++)
        if (strlen(op_names[o]) == it.n && memcmp(op_names[o], it.data, it.n) == 0) {
            *op = o;
            return 0;
        }
    char shown[40];
    bad(r, "unknown op '%s'", show(it.data, it.n, shown));
    return PS_XFER_E_UNKNOWN_OP;
}

/* id (1 .. INT64_MAX) and processor, which every request and reply carries. */
static int rd_target(rd *r, const fields *fs, int64_t *id, char *processor)
{
    uint64_t u = 0;
    if (want_uint(r, fs, "id", INT64_MAX, &u)) return PS_XFER_E_BAD_REQUEST;
    if (u == 0) return bad(r, "'id' is 0 (transfer ids start at 1)");
    *id = (int64_t)u;
    return want_name(r, fs, "processor", processor);
}

/* ---- requests ------------------------------------------------------------- */

static const char *const role_names[] = {NULL, "destination", "source"};

int ps_xfer_decode_request(const uint8_t *buf, size_t len, ps_xfer_request *req, char *err,
                           size_t errlen)
{
    memset(req, 0, sizeof *req);
    rd r = {buf, len, 0, err, errlen};
    fields fs;
    int rc = rd_message(&r, &fs);
    if (rc) return rc;
    /* Read what the error reply should echo first, into a scratch message:
     * the envelope's verdict is the one reported. */
    {
        rd tmp = r;
        char scratch[128];
        tmp.err = scratch;
        tmp.errlen = sizeof scratch;
        int64_t id = 0;
        char proc[PS_XFER_NAME_MAX + 1] = "";
        uint64_t u = 0;
        if (!want_uint(&tmp, &fs, "id", INT64_MAX, &u) && u > 0) id = (int64_t)u;
        if (!want_name(&tmp, &fs, "processor", proc))
            snprintf(req->processor, sizeof req->processor, "%s", proc);
        req->id = id;
    }
    int op = PS_XFER_OP_NONE;
    if ((rc = rd_envelope(&r, &fs, &op, false))) return rc;
    req->op = (ps_xfer_op)op;
    if ((rc = rd_target(&r, &fs, &req->id, req->processor))) return rc;
    if (op != PS_XFER_OP_PREPARE) return 0;
    int role = 0;
    if ((rc = want_enum(&r, &fs, "role", role_names, 3, &role))) return rc;
    req->role = (ps_xfer_role)role;
    if ((rc = want_name(&r, &fs, "workload", req->workload)) ||
        (rc = want_name(&r, &fs, "peer", req->peer)) ||
        (rc = want_amount(&r, &fs, "state_bytes", &req->state_bytes)) ||
        (rc = want_amount(&r, &fs, "expected_seconds", &req->expected_seconds)))
        return rc;
    if (!strcmp(req->peer, req->processor))
        return bad(&r, "'peer' is the processor itself ('%s')", req->peer);
    return 0;
}

/* ---- encoding ------------------------------------------------------------- */

static int buf_write(void *data, const char *src, size_t n)
{
    ps_buf *b = data;
    if (b->failed) return -1;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->failed = true;
                return -1;
            }
            cap *= 2;
        }
        uint8_t *p = realloc(b->data, cap);
        if (!p) {
            b->failed = true;
            return -1;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

typedef struct enc {
    msgpack_packer pk;
    ps_buf *b;
} enc;

static void enc_start(enc *e, ps_buf *b, unsigned keys)
{
    b->len = 0;
    b->failed = false;
    e->b = b;
    msgpack_packer_init(&e->pk, b, buf_write);
    msgpack_pack_map(&e->pk, keys);
}

static int enc_finish(enc *e, char *err, size_t errlen)
{
    if (e->b->failed) {
        e->b->len = 0;
        return ps_fail(err, errlen, PS_XFER_E_INTERNAL, "out of memory encoding a message");
    }
    return 0;
}

static void put_str(enc *e, const char *s, size_t n)
{
    msgpack_pack_str(&e->pk, n);
    msgpack_pack_str_body(&e->pk, s, n);
}

static void put_key(enc *e, const char *key)
{
    put_str(e, key, strlen(key));
}

static void put_text(enc *e, const char *key, const char *s)
{
    put_key(e, key);
    put_str(e, s, strlen(s));
}

static void put_uint(enc *e, const char *key, uint64_t v)
{
    put_key(e, key);
    msgpack_pack_uint64(&e->pk, v);
}

static void put_double(enc *e, const char *key, double v)
{
    put_key(e, key);
    msgpack_pack_double(&e->pk, v);
}

static void put_envelope(enc *e, int op)
{
    put_uint(e, "v", PS_XFER_VERSION);
    put_text(e, "op", op_names[op]);
}

static int check_target(int64_t id, const char *processor, char *err, size_t errlen)
{
    if (id <= 0)
        return ps_fail(err, errlen, PS_XFER_E_BAD_REQUEST, "'id' is %lld (transfer ids start at 1)",
                       (long long)id);
    return ps_xfer_name_check("processor", processor, err, errlen);
}

static int check_amount(const char *what, double x, char *err, size_t errlen)
{
    if (isnan(x)) return ps_fail(err, errlen, PS_XFER_E_BAD_REQUEST, "'%s' is NaN", what);
    if (isinf(x)) return ps_fail(err, errlen, PS_XFER_E_BAD_REQUEST, "'%s' is infinite", what);
    if (x < 0)
        return ps_fail(err, errlen, PS_XFER_E_BAD_REQUEST, "'%s' is %g (at least 0)", what, x);
    return 0;
}

/* The length of a C string within max bytes, or max + 1 when longer. */
static size_t text_len(const char *s, size_t max)
{
    return strnlen(s, max + 1);
}

int ps_xfer_encode_request(ps_buf *out, const ps_xfer_request *req, char *err, size_t errlen)
{
    int rc;
    if (req->op < PS_XFER_OP_PREPARE || req->op > PS_XFER_OP_STATUS)
        return ps_fail(err, errlen, PS_XFER_E_UNKNOWN_OP, "op %d is not a request", (int)req->op);
    if ((rc = check_target(req->id, req->processor, err, errlen))) return rc;
    enc e;
    if (req->op != PS_XFER_OP_PREPARE) {
        enc_start(&e, out, 4);
        put_envelope(&e, req->op);
        put_uint(&e, "id", (uint64_t)req->id);
        put_text(&e, "processor", req->processor);
        return enc_finish(&e, err, errlen);
    }
    if (req->role != PS_XFER_ROLE_DESTINATION && req->role != PS_XFER_ROLE_SOURCE)
        return ps_fail(err, errlen, PS_XFER_E_BAD_REQUEST,
                       "'role' %d is neither destination nor source", (int)req->role);
    if ((rc = ps_xfer_name_check("workload", req->workload, err, errlen)) ||
        (rc = ps_xfer_name_check("peer", req->peer, err, errlen)) ||
        (rc = check_amount("state_bytes", req->state_bytes, err, errlen)) ||
        (rc = check_amount("expected_seconds", req->expected_seconds, err, errlen)))
        return rc;
    if (!strcmp(req->peer, req->processor))
        return ps_fail(err, errlen, PS_XFER_E_BAD_REQUEST, "'peer' is the processor itself ('%s')",
                       req->peer);
    enc_start(&e, out, 9);
    put_envelope(&e, req->op);
    put_uint(&e, "id", (uint64_t)req->id);
    put_text(&e, "processor", req->processor);
    put_text(&e, "role", role_names[req->role]);
    put_text(&e, "workload", req->workload);
    put_text(&e, "peer", req->peer);
    put_double(&e, "state_bytes", req->state_bytes + 0.0);
    put_double(&e, "expected_seconds", req->expected_seconds + 0.0);
    return enc_finish(&e, err, errlen);
}

/* ---- replies -------------------------------------------------------------- */

int ps_xfer_encode_reply(ps_buf *out, const ps_xfer_reply *rep, char *err, size_t errlen)
{
    int rc;
    if (rep->op < PS_XFER_OP_PREPARE || rep->op > PS_XFER_OP_STATUS)
        return ps_fail(err, errlen, PS_XFER_E_UNKNOWN_OP,
                       "op %d is not a request's reply (errors: ps_xfer_encode_error)",
                       (int)rep->op);
    if ((rc = check_target(rep->id, rep->processor, err, errlen))) return rc;
    if (rep->result != PS_XFER_RESULT_OK && rep->result != PS_XFER_RESULT_REFUSED)
        return ps_fail(err, errlen, PS_XFER_E_BAD_REQUEST, "result %d is neither ok nor refused",
                       (int)rep->result);
    if ((int)rep->state < 0 || rep->state >= PS_XFER_NSTATES)
        return ps_fail(err, errlen, PS_XFER_E_BAD_REQUEST, "state %d is not a state",
                       (int)rep->state);
    size_t rlen = text_len(rep->reason, PS_XFER_TEXT_MAX);
    if (rlen > PS_XFER_TEXT_MAX)
        return ps_fail(err, errlen, PS_XFER_E_BAD_REQUEST, "'reason' is longer than %u bytes",
                       PS_XFER_TEXT_MAX);
    if (rep->result == PS_XFER_RESULT_REFUSED && rlen == 0)
        return ps_fail(err, errlen, PS_XFER_E_BAD_REQUEST, "a refusal needs a reason");
    enc e;
    enc_start(&e, out, rlen ? 7 : 6);
    put_envelope(&e, rep->op);
    put_uint(&e, "id", (uint64_t)rep->id);
    put_text(&e, "processor", rep->processor);
    put_text(&e, "result", ps_xfer_result_name(rep->result));
    put_text(&e, "state", state_names[rep->state]);
    if (rlen) put_text(&e, "reason", rep->reason);
    return enc_finish(&e, err, errlen);
}

/* Length of s cut to at most max bytes without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n <= max) return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

int ps_xfer_encode_error(ps_buf *out, const ps_xfer_request *about, int code, const char *fmt, ...)
{
    if (code <= 0 || code >= PS_XFER_NCODES) code = PS_XFER_E_INTERNAL;
    char msg[PS_XFER_TEXT_MAX + 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    msg[utf8_cut(msg, PS_XFER_TEXT_MAX)] = '\0';
    bool has_id = about && about->id > 0;
    bool has_proc = about && !ps_xfer_name_check("processor", about->processor, NULL, 0);
    enc e;
    enc_start(&e, out, 5u + has_id + has_proc);
    put_envelope(&e, PS_XFER_OP_ERROR);
    if (has_id) put_uint(&e, "id", (uint64_t)about->id);
    if (has_proc) put_text(&e, "processor", about->processor);
    put_uint(&e, "code", (uint64_t)code);
    put_text(&e, "name", code_names[code]);
    put_text(&e, "message", msg);
    return enc_finish(&e, NULL, 0);
}

static const char *const result_names[] = {"ok", "refused"};

int ps_xfer_decode_reply(const uint8_t *buf, size_t len, ps_xfer_reply *rep, char *err,
                         size_t errlen)
{
    memset(rep, 0, sizeof *rep);
    rd r = {buf, len, 0, err, errlen};
    fields fs;
    int rc = rd_message(&r, &fs);
    if (rc) return rc;
    int op = PS_XFER_OP_NONE;
    if ((rc = rd_envelope(&r, &fs, &op, true))) return rc;
    rep->op = (ps_xfer_op)op;
    if (op == PS_XFER_OP_ERROR) {
        uint64_t code = 0;
        if (get(&fs, "id")) {
            if ((rc = want_uint(&r, &fs, "id", INT64_MAX, &code))) return rc;
            if (code == 0) return bad(&r, "'id' is 0 (transfer ids start at 1)");
            rep->id = (int64_t)code;
        }
        if (get(&fs, "processor") && (rc = want_name(&r, &fs, "processor", rep->processor)))
            return rc;
        if ((rc = want_uint(&r, &fs, "code", UINT32_MAX, &code))) return rc;
        rep->code = (uint32_t)code;
        if ((rc = want_text(&r, &fs, "name", PS_XFER_CODE_NAME_MAX, rep->name)) ||
            (rc = want_text(&r, &fs, "message", PS_XFER_TEXT_MAX, rep->message)))
            return rc;
        return 0;
    }
    if ((rc = rd_target(&r, &fs, &rep->id, rep->processor))) return rc;
    int v = 0;
    if ((rc = want_enum(&r, &fs, "result", result_names, 2, &v))) return rc;
    rep->result = (ps_xfer_result)v;
    if ((rc = want_enum(&r, &fs, "state", state_names, PS_XFER_NSTATES, &v))) return rc;
    rep->state = (ps_xfer_state)v;
    if (get(&fs, "reason")) {
        if ((rc = want_text(&r, &fs, "reason", PS_XFER_TEXT_MAX, rep->reason))) return rc;
    }
    if (rep->result == PS_XFER_RESULT_REFUSED && !rep->reason[0])
        return bad(&r, "a refusal without a reason");
    return 0;
}
