/*
 * workload_file.c - the manager's workload file (workload_file.h,
 * docs/workloads.md): name tables, the parser, the cluster it builds and
 * the writer.
 *
 * Loading runs in three phases, so that a file is checked whole before
 * anything is built and declarations may come in any order:
 *
 *   1. parse: every line into a record (syntax, numbers and units, names
 *      well formed, names declared once), stopping at the first error;
 *   2. resolve: every reference by name (classes, processors, workloads),
 *      self-dependencies, duplicate dependencies, replica anti-affinity;
 *      the error reported is the earliest in the file;
 *   3. build: the cluster sized to the file (or the caller's room), filled
 *      through core/cluster.h, which checks everything once more.
 */
#include "workload_file.h"

#include "core/error.h"
#include "core/threshold.h"
#include "kernels/kernels.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- name tables ---- */

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

void ps_names_init(ps_names *n)
{
    memset(n, 0, sizeof *n);
    n->groups.first = 1;
    n->groups.len = 1;
}

static void table_free(ps_name_table *t)
{
    for (uint32_t i = 0; i < t->len && t->name; i++)
        free(t->name[i]);
    free(t->name);
    free(t->hash);
    memset(t, 0, sizeof *t);
}

void ps_names_free(ps_names *n)
{
    if (!n) return;
    table_free(&n->classes);
    table_free(&n->processors);
    table_free(&n->workloads);
    table_free(&n->groups);
    for (uint32_t i = 0; i < n->info_cap; i++)
        free(n->info[i].agent);
    free(n->info);
    ps_names_init(n);
}

uint64_t ps_processor_default_id(const char *name)
{
    /* FNV-1a, 64 bits: the hash `preshift agent` makes of its host name. */
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *name; name++)
        h = (h ^ (uint8_t)*name) * 0x100000001b3ull;
    return h;
}

int ps_names_set_info(ps_names *n, uint32_t slot, uint64_t id, const char *agent, char *err,
                      size_t errlen)
{
    if (slot >= n->info_cap) {
        uint64_t cap = n->info_cap ? n->info_cap : 16;
        while (cap <= slot)
            cap *= 2;
        ps_proc_info *ni = cap < PS_NONE ? realloc(n->info, (size_t)cap * sizeof *ni) : NULL;
        if (!ni) return ps_fail(err, errlen, PS_ENOMEM, "out of memory for processor ids");
        memset(ni + n->info_cap, 0, (size_t)(cap - n->info_cap) * sizeof *ni);
        n->info = ni;
        n->info_cap = (uint32_t)cap;
    }
    char *copy = NULL;
    if (agent && *agent) {
        copy = malloc(strlen(agent) + 1);
        if (!copy) return ps_fail(err, errlen, PS_ENOMEM, "out of memory for agent addresses");
        strcpy(copy, agent);
    }
    ps_proc_info *x = &n->info[slot];
    free(x->agent);
    *x = (ps_proc_info){.set = 1, .id = id, .agent = copy};
    return PS_OK;
}

uint64_t ps_names_processor_id(const ps_names *n, uint32_t slot)
{
    if (slot < n->info_cap && n->info[slot].set) return n->info[slot].id;
    const char *name = ps_name_of(&n->processors, slot);
    return name ? ps_processor_default_id(name) : 0;
}

const char *ps_names_agent(const ps_names *n, uint32_t slot)
{
    return slot < n->info_cap && n->info[slot].agent ? n->info[slot].agent : "";
}

void ps_names_remove_processor(ps_names *n, uint32_t slot)
{
    ps_name_remove(&n->processors, slot);
    if (slot < n->info_cap) {
        free(n->info[slot].agent);
        memset(&n->info[slot], 0, sizeof n->info[slot]);
    }
}

static int name_char(unsigned char ch, int first)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
        ch == '_')
        return 1;
    return !first && (ch == '.' || ch == '-' || ch == ':' || ch == '/');
}

/* A printable rendering of one byte for messages: 'x' or \xNN. */
static const char *show_char(unsigned char ch, char buf[8])
{
    if (ch >= 0x21 && ch < 0x7f)
        snprintf(buf, 8, "'%c'", ch);
    else if (ch == ' ')
        snprintf(buf, 8, "a space");
    else
        snprintf(buf, 8, "\\x%02x", ch);
    return buf;
}

int ps_name_check(const char *s, char *err, size_t errlen)
{
    if (!s || !*s) return ps_fail(err, errlen, PS_EINVAL, "empty name");
    size_t n = strlen(s);
    if (n >= PS_NAME_MAX)
        return ps_fail(err, errlen, PS_EINVAL,
                       "name '%.20s...' is too long (%zu bytes, at most %d)", s, n,
                       PS_NAME_MAX - 1);
    char b[8];
    for (size_t i = 0; i < n; i++) {
        if (!name_char((unsigned char)s[i], i == 0))
            return ps_fail(err, errlen, PS_EINVAL, "%s cannot %s a name ('%s')",
                           show_char((unsigned char)s[i], b), i ? "appear in" : "start", s);
        if (s[i] == '-' && s[i + 1] == '>')
            return ps_fail(err, errlen, PS_EINVAL, "a name cannot contain '->' ('%s')", s);
    }
    return PS_OK;
}

uint32_t ps_name_find(const ps_name_table *t, const char *name)
{
    if (!t->hash_cap || !name) return PS_NONE;
    uint32_t mask = t->hash_cap - 1;
    for (uint32_t i = name_hash(name) & mask; t->hash[i]; i = (i + 1) & mask) {
        uint32_t s = t->hash[i] - 1;
        if (!strcmp(t->name[s], name)) return s;
    }
    return PS_NONE;
}

const char *ps_name_of(const ps_name_table *t, uint32_t slot)
{
    return slot < t->len && t->name ? t->name[slot] : NULL;
}

static void hash_put(uint32_t *h, uint32_t cap, const char *name, uint32_t slot)
{
    uint32_t i = name_hash(name) & (cap - 1);
    while (h[i])
        i = (i + 1) & (cap - 1);
    h[i] = slot + 1;
}

/* Room for one more name: the slot array up to `slot` and a hash at most half full. */
static int table_reserve(ps_name_table *t, uint32_t slot)
{
    if (slot >= t->cap) {
        uint64_t cap = t->cap ? t->cap : 16;
        while (cap <= slot)
            cap *= 2;
        if (cap > PS_NONE) cap = PS_NONE;
        char **nn = realloc(t->name, (size_t)cap * sizeof *nn);
        if (!nn) return PS_ENOMEM;
        memset(nn + t->cap, 0, (size_t)(cap - t->cap) * sizeof *nn);
        t->name = nn;
        t->cap = (uint32_t)cap;
    }
    if ((uint64_t)(t->count + 1) * 2 > t->hash_cap) {
        uint64_t cap = t->hash_cap ? (uint64_t)t->hash_cap * 2 : 32;
        if (cap > ((uint64_t)1 << 31)) return PS_ENOMEM;
        uint32_t *h = calloc((size_t)cap, sizeof *h);
        if (!h) return PS_ENOMEM;
        for (uint32_t i = 0; i < t->len; i++)
            if (t->name[i]) hash_put(h, (uint32_t)cap, t->name[i], i);
        free(t->hash);
        t->hash = h;
        t->hash_cap = (uint32_t)cap;
    }
    return PS_OK;
}

int ps_name_set(ps_name_table *t, uint32_t slot, const char *name, char *err, size_t errlen)
{
    int rc = ps_name_check(name, err, errlen);
    if (rc) return rc;
    if (slot >= PS_NONE || slot < t->first)
        return ps_fail(err, errlen, PS_EINVAL, "slot %u cannot hold a name", slot);
    if (slot < t->len && t->name[slot])
        return ps_fail(err, errlen, PS_CLUSTER_EEXISTS, "slot %u is taken by '%s'", slot,
                       t->name[slot]);
    if (ps_name_find(t, name) != PS_NONE)
        return ps_fail(err, errlen, PS_CLUSTER_EEXISTS, "'%s' already exists", name);
    if (table_reserve(t, slot)) return ps_fail(err, errlen, PS_ENOMEM, "out of memory for names");
    char *copy = malloc(strlen(name) + 1);
    if (!copy) return ps_fail(err, errlen, PS_ENOMEM, "out of memory for names");
    strcpy(copy, name);
    t->name[slot] = copy;
    hash_put(t->hash, t->hash_cap, copy, slot);
    if (slot >= t->len) t->len = slot + 1;
    if (t->len < t->first) t->len = t->first;
    t->count++;
    return PS_OK;
}

int ps_name_add(ps_name_table *t, const char *name, uint32_t limit, uint32_t *slot, char *err,
                size_t errlen)
{
    int rc = ps_name_check(name, err, errlen);
    if (rc) return rc;
    uint32_t at = ps_name_find(t, name);
    if (at != PS_NONE) {
        if (slot) *slot = at;
        return ps_fail(err, errlen, PS_CLUSTER_EEXISTS, "'%s' already exists", name);
    }
    uint32_t lo = t->first, len = t->len < lo ? lo : t->len;
    at = len;
    if (t->count < len - lo) /* there is a hole below len */
        for (at = lo; at < len && t->name[at]; at++)
            ;
    if (at >= limit)
        return ps_fail(err, errlen, PS_CLUSTER_ECONFLICT, "no free slot for '%s' (all %u in use)",
                       name, limit > lo ? limit - lo : 0);
    rc = ps_name_set(t, at, name, err, errlen);
    if (rc == PS_OK && slot) *slot = at;
    return rc;
}

void ps_name_remove(ps_name_table *t, uint32_t slot)
{
    if (slot >= t->len || !t->name[slot]) return;
    uint32_t mask = t->hash_cap - 1, i = name_hash(t->name[slot]) & mask;
    while (t->hash[i] != slot + 1)
        i = (i + 1) & mask;
    /* Backward-shift deletion keeps every probe chain unbroken without tombstones. */
    t->hash[i] = 0;
    for (uint32_t j = (i + 1) & mask; t->hash[j]; j = (j + 1) & mask) {
        uint32_t home = name_hash(t->name[t->hash[j] - 1]) & mask;
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays) continue;
        t->hash[i] = t->hash[j];
        t->hash[j] = 0;
        i = j;
    }
    free(t->name[slot]);
    t->name[slot] = NULL;
    t->count--;
}

/* ---- units ---- */

typedef struct unit {
    const char *suffix;
    double factor;
} unit;

static const unit cpu_units[] = {{"", 1}, {"m", 1e-3}};
/* Largest first: the writer takes the first that is exact. */
static const unit byte_units[] = {{"PiB", 1125899906842624.0},
                                  {"TiB", 1099511627776.0},
                                  {"GiB", 1073741824.0},
                                  {"MiB", 1048576.0},
                                  {"KiB", 1024.0},
                                  {"PB", 1e15},
                                  {"TB", 1e12},
                                  {"GB", 1e9},
                                  {"MB", 1e6},
                                  {"kB", 1e3},
                                  {"KB", 1e3},
                                  {"B", 1},
                                  {"", 1}};
static const unit rate_units[] = {
    {"TB/s", 1e12},    {"GB/s", 1e9},           {"MB/s", 1e6},        {"kB/s", 1e3},
    {"KB/s", 1e3},     {"GiB/s", 1073741824.0}, {"MiB/s", 1048576.0}, {"KiB/s", 1024.0},
    {"Tbit/s", 125e9}, {"Gbit/s", 125e6},       {"Mbit/s", 125e3},    {"kbit/s", 125},
    {"Tbps", 125e9},   {"Gbps", 125e6},         {"Mbps", 125e3},      {"kbps", 125},
    {"bit/s", 0.125},  {"bps", 0.125},          {"B/s", 1},           {"", 1}};
static const unit plain_units[] = {{"", 1}};

#define N_UNITS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the parser's records ---- */

typedef struct pos {
    uint32_t line, col;
} pos;

typedef struct rec_proc {
    pos at, class_at, id_at;
    char cls[PS_NAME_MAX];
    double cpu, mem, net;
    int alive, has_id;
    uint64_t id;
    char agent[PS_AGENT_URL_MAX];
} rec_proc;

typedef struct rec_work {
    pos at, on_at, group_at;
    char on[PS_NAME_MAX], group[PS_NAME_MAX];
    double cpu, mem, state, crit;
    uint32_t proc, grp; /* resolved */
} rec_work;

typedef struct rec_edge {
    pos a_at, b_at;
    char a[PS_NAME_MAX], b[PS_NAME_MAX]; /* a feeds b: b depends on a */
} rec_edge;

typedef struct parser {
    const char *label;
    char *err;
    size_t errlen;
    ps_names names; /* classes, processors, workloads in declaration order; groups on resolve */
    pos *class_at;
    size_t class_cap;
    rec_proc *procs;
    size_t proc_cap;
    rec_work *works;
    size_t work_cap;
    rec_edge *edges;
    size_t n_edges, edge_cap;
    /* The current line. */
    const char *line, *p, *end;
    uint32_t lineno;
    /* The earliest error of the resolve phase. */
    pos first_err;
    int have_err;
    /* Declarations parsed, and the line of the first. */
    uint32_t n_decls, first_decl_line;
} parser;

static uint32_t col_of(const parser *P, const char *at)
{
    return (uint32_t)(at - P->line) + 1;
}

static int perr_v(parser *P, pos at, const char *fmt, va_list ap)
{
    char msg[384];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return ps_fail(P->err, P->errlen, PS_WL_EPARSE, "%s:%u:%u: %s", P->label, at.line, at.col, msg);
}

/* A syntax error at a place on the current line. */
static int perr(parser *P, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int perr(parser *P, const char *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = perr_v(P, (pos){P->lineno, col_of(P, at)}, fmt, ap);
    va_end(ap);
    return rc;
}

/* A resolve error: kept only if it comes before the one already kept. */
static void rerr(parser *P, pos at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void rerr(parser *P, pos at, const char *fmt, ...)
{
    if (P->have_err && (P->first_err.line < at.line ||
                        (P->first_err.line == at.line && P->first_err.col <= at.col)))
        return;
    va_list ap;
    va_start(ap, fmt);
    perr_v(P, at, fmt, ap);
    va_end(ap);
    P->first_err = at;
    P->have_err = 1;
}

static int nomem(parser *P)
{
    return ps_fail(P->err, P->errlen, PS_ENOMEM, "%s: out of memory", P->label);
}

/* Room for one more element in a growing array; NULL (array untouched) when out of memory. */
static void *grow(void *arr, size_t n, size_t *cap, size_t size)
{
    if (n < *cap) return arr;
    size_t nc = *cap ? *cap * 2 : 16;
    void *na = realloc(arr, nc * size);
    if (na) *cap = nc;
    return na;
}

/* ---- tokens ---- */

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

static void skip_space(parser *P)
{
    while (P->p < P->end && is_space(*P->p))
        P->p++;
}

/* Length of the whitespace-delimited token at s, for quoting it in messages. */
static int token_len(const parser *P, const char *s)
{
    const char *e = s;
    while (e < P->end && !is_space(*e) && e - s < 40)
        e++;
    return (int)(e - s);
}

/*
 * A name at the cursor into out. What may follow it: whitespace, the end
 * of the line, and any byte of `then` ("," in lists, "-" of "->").
 */
static int scan_name(parser *P, const char *what, const char *then, char out[PS_NAME_MAX])
{
    skip_space(P);
    const char *s = P->p;
    char b[8];
    if (s == P->end) return perr(P, s, "expected a %s name", what);
    if (!name_char((unsigned char)*s, 1))
        return perr(P, s, "expected a %s name, found %s", what, show_char((unsigned char)*s, b));
    const char *e = s;
    while (e < P->end && name_char((unsigned char)*e, e == s) &&
           !(e[0] == '-' && e + 1 < P->end && e[1] == '>'))
        e++;
    if (e < P->end && !is_space(*e) && !strchr(then, *e))
        return perr(P, e, "%s cannot appear in a %s name", show_char((unsigned char)*e, b), what);
    if (e - s >= PS_NAME_MAX)
        return perr(P, s, "%s name '%.20s...' is too long (%d bytes, at most %d)", what, s,
                    (int)(e - s), PS_NAME_MAX - 1);
    memcpy(out, s, (size_t)(e - s));
    out[e - s] = '\0';
    P->p = e;
    return PS_OK;
}

/* Nothing but whitespace up to the end of the line (a comment is already cut off). */
static int expect_end(parser *P, const char *after)
{
    skip_space(P);
    if (P->p < P->end)
        return perr(P, P->p, "unexpected '%.*s' after %s", token_len(P, P->p), P->p, after);
    return PS_OK;
}

/* ---- attribute values ---- */

enum vkind { V_NAME, V_CPU, V_BYTES, V_RATE, V_PLAIN, V_BOOL, V_ID, V_URL };

typedef struct key_def {
    const char *key;
    enum vkind kind;
    int required, positive;
    const char *example; /* for "needs ..." */
    const char *noun;    /* what a V_NAME value names */
} key_def;

enum { MAX_KEYS = 8 };

typedef struct attr {
    int present;
    pos at; /* of the value */
    double num;
    uint64_t u64;
    char name[PS_NAME_MAX];
    char url[PS_AGENT_URL_MAX];
} attr;

static const char *kind_units(enum vkind k)
{
    switch (k) {
    case V_CPU:
        return "cores, or millicores with m (500m)";
    case V_BYTES:
        return "bytes: B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB";
    case V_RATE:
        return "bytes per second: B/s, kB/s, MB/s, GB/s, TB/s, KiB/s, MiB/s, GiB/s, or bits: "
               "bit/s, kbit/s, Mbit/s, Gbit/s, Tbit/s (bps, kbps, Mbps, Gbps, Tbps)";
    default:
        return "a plain number";
    }
}

/* A non-negative number with an optional unit; the value s..e is one token. */
static int parse_quantity(parser *P, const key_def *k, const char *s, const char *e, double *out)
{
    const char *q = s;
    int negative = 0;
    if (q < e && (*q == '+' || *q == '-')) negative = *q++ == '-';
    const char *digits = q;
    size_t nd = 0;
    while (q < e && *q >= '0' && *q <= '9')
        q++, nd++;
    if (q < e && *q == '.') {
        q++;
        while (q < e && *q >= '0' && *q <= '9')
            q++, nd++;
    }
    if (!nd) return perr(P, s, "%s= needs a number, not '%.*s'", k->key, (int)(e - s), s);
    if (q < e && (*q == 'e' || *q == 'E')) {
        const char *x = q + 1;
        if (x < e && (*x == '+' || *x == '-')) x++;
        if (x < e && *x >= '0' && *x <= '9') {
            while (x < e && *x >= '0' && *x <= '9')
                x++;
            q = x;
        }
    }
    char num[64];
    if (q - digits >= (long)sizeof num)
        return perr(P, s, "%s=: number '%.*s' is too long", k->key, (int)(e - s), s);
    memcpy(num, digits, (size_t)(q - digits));
    num[q - digits] = '\0';
    double v = strtod(num, NULL);
    const unit *units = plain_units;
    size_t nu = N_UNITS(plain_units);
    if (k->kind == V_CPU) units = cpu_units, nu = N_UNITS(cpu_units);
    if (k->kind == V_BYTES) units = byte_units, nu = N_UNITS(byte_units);
    if (k->kind == V_RATE) units = rate_units, nu = N_UNITS(rate_units);
    size_t ul = (size_t)(e - q), u = 0;
    while (u < nu && !(strlen(units[u].suffix) == ul && !memcmp(units[u].suffix, q, ul)))
        u++;
    if (u == nu) {
        if (units == plain_units)
            return perr(P, q, "%s= takes a plain number, without a unit ('%.*s')", k->key, (int)ul,
                        q);
        return perr(P, q, "unknown unit '%.*s' for %s= (%s)", (int)ul, q, k->key,
                    kind_units(k->kind));
    }
    v *= units[u].factor;
    if (negative && v != 0)
        return perr(P, s, "%s= must not be negative (%.*s)", k->key, (int)(e - s), s);
    if (!isfinite(v)) return perr(P, s, "%s= is too large (%.*s)", k->key, (int)(e - s), s);
    if (k->positive && !(v > 0))
        return perr(P, s, "%s= must be greater than 0 (%.*s)", k->key, (int)(e - s), s);
    *out = negative ? 0.0 : v;
    return PS_OK;
}

static int parse_value(parser *P, const key_def *k, const char *s, const char *e, attr *a)
{
    a->at = (pos){P->lineno, col_of(P, s)};
    if (k->kind == V_BOOL) {
        static const char *const yes[] = {"yes", "true", "1", "on"}, *const no[] = {"no", "false",
                                                                                    "0", "off"};
        for (size_t i = 0; i < 4; i++) {
            if (strlen(yes[i]) == (size_t)(e - s) && !memcmp(yes[i], s, (size_t)(e - s))) {
                a->num = 1;
                return PS_OK;
            }
            if (strlen(no[i]) == (size_t)(e - s) && !memcmp(no[i], s, (size_t)(e - s))) {
                a->num = 0;
                return PS_OK;
            }
        }
        return perr(P, s, "%s= must be yes or no, not '%.*s'", k->key, (int)(e - s), s);
    }
    if (k->kind == V_ID) {
        uint64_t v = 0;
        const char *q = s;
        while (q < e && *q >= '0' && *q <= '9' && v <= (UINT64_MAX - (uint64_t)(*q - '0')) / 10)
            v = v * 10 + (uint64_t)(*q++ - '0');
        if (q != e)
            return perr(P, s, "%s= must be a whole number from 0 to %llu, not '%.*s'", k->key,
                        (unsigned long long)UINT64_MAX, (int)(e - s), s);
        a->u64 = v;
        return PS_OK;
    }
    if (k->kind == V_URL) {
        size_t n = (size_t)(e - s);
        int scheme = (n > 6 && (!memcmp(s, "tcp://", 6) || !memcmp(s, "ipc://", 6))) ||
                     (n > 10 && !memcmp(s, "tls+tcp://", 10));
        if (!scheme)
            return perr(P, s, "%s= must be a tcp://, ipc:// or tls+tcp:// address, not '%.*s'",
                        k->key, (int)(n > 60 ? 60 : n), s);
        if (n >= PS_AGENT_URL_MAX)
            return perr(P, s, "%s= is too long (%zu bytes, at most %d)", k->key, n,
                        PS_AGENT_URL_MAX - 1);
        memcpy(a->url, s, n);
        a->url[n] = '\0';
        return PS_OK;
    }
    if (k->kind == V_NAME) {
        const char *save = P->p, *save_end = P->end;
        P->p = s;
        P->end = e;
        int rc = scan_name(P, k->noun, "", a->name);
        P->p = save;
        P->end = save_end;
        return rc;
    }
    return parse_quantity(P, k, s, e, &a->num);
}

/* 1 if s[0..n) is one of the units a value may carry. */
static int is_unit(const char *s, size_t n)
{
    static const struct {
        const unit *u;
        size_t n;
    } tables[] = {{cpu_units, N_UNITS(cpu_units)},
                  {byte_units, N_UNITS(byte_units)},
                  {rate_units, N_UNITS(rate_units)}};
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (size_t i = 0; i < tables[t].n; i++)
            if (tables[t].u[i].suffix[0] && strlen(tables[t].u[i].suffix) == n &&
                !memcmp(tables[t].u[i].suffix, s, n))
                return 1;
    return 0;
}

/* key=value pairs up to the end of the line, into vals[] parallel to keys[]. */
static int parse_attrs(parser *P, const char *what, const key_def *keys, size_t nk, attr *vals,
                       const char *stmt, const char *name)
{
    memset(vals, 0, nk * sizeof *vals);
    for (;;) {
        skip_space(P);
        if (P->p == P->end) break;
        const char *ks = P->p, *ke = ks;
        while (ke < P->end && *ke >= 'a' && *ke <= 'z')
            ke++;
        if (ke == ks || ke == P->end || *ke != '=') {
            if (ke > ks && ke < P->end && is_space(*ke)) {
                const char *n = ke;
                while (n < P->end && is_space(*n))
                    n++;
                if (n < P->end && *n == '=')
                    return perr(P, ke, "no spaces around '=': write %.*s=VALUE", (int)(ke - ks),
                                ks);
            }
            int tl = token_len(P, ks);
            if (is_unit(ks, (size_t)tl))
                return perr(P, ks,
                            "'%.*s' is a unit: write it right after its number, without a space "
                            "(e.g. mem=64GiB)",
                            tl, ks);
            return perr(P, ks, "expected key=value, found '%.*s'", tl, ks);
        }
        size_t k = 0;
        while (k < nk && !(strlen(keys[k].key) == (size_t)(ke - ks) &&
                           !memcmp(keys[k].key, ks, (size_t)(ke - ks))))
            k++;
        if (k == nk) {
            char list[160] = "";
            for (size_t i = 0; i < nk; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                         keys[i].key);
            return perr(P, ks, "unknown attribute '%.*s' of a %s (it takes %s)", (int)(ke - ks), ks,
                        what, list);
        }
        if (vals[k].present)
            return perr(P, ks, "%s= is given twice (first at column %u)", keys[k].key,
                        vals[k].at.col - (uint32_t)strlen(keys[k].key) - 1);
        const char *vs = ke + 1, *ve = vs;
        while (ve < P->end && !is_space(*ve))
            ve++;
        if (ve == vs) return perr(P, vs, "%s= needs a value", keys[k].key);
        int rc = parse_value(P, &keys[k], vs, ve, &vals[k]);
        if (rc) return rc;
        vals[k].present = 1;
        P->p = ve;
    }
    for (size_t k = 0; k < nk; k++)
        if (keys[k].required && !vals[k].present)
            return perr(P, stmt, "%s '%s' needs %s", what, name, keys[k].example);
    return PS_OK;
}

/* ---- statements ---- */

static const key_def proc_keys[] = {
    {"class", V_NAME, 1, 0, "class=CLASS", "class"},
    {"cpu", V_CPU, 1, 1, "cpu= (its CPU capacity, e.g. cpu=16)", NULL},
    {"mem", V_BYTES, 1, 1, "mem= (its memory, e.g. mem=64GiB)", NULL},
    {"net", V_RATE, 1, 1, "net= (its network bandwidth, e.g. net=10Gbit/s)", NULL},
    {"alive", V_BOOL, 0, 0, "", NULL},
    {"id", V_ID, 0, 0, "", NULL},
    {"agent", V_URL, 0, 0, "", NULL},
};
static const key_def work_keys[] = {
    {"on", V_NAME, 1, 0, "on=PROCESSOR (the processor it runs on)", "processor"},
    {"cpu", V_CPU, 0, 0, "", NULL},
    {"mem", V_BYTES, 0, 0, "", NULL},
    {"state", V_BYTES, 0, 0, "", NULL},
    {"criticality", V_PLAIN, 0, 0, "", NULL},
    {"group", V_NAME, 0, 0, "", "replica group"},
};

enum { KIND_CLASS, KIND_PROCESSOR, KIND_WORKLOAD };

/* Where the name in slot of a kind was declared. */
static uint32_t decl_line(const parser *P, int kind, uint32_t slot)
{
    if (kind == KIND_CLASS) return P->class_at[slot].line;
    if (kind == KIND_PROCESSOR) return P->procs[slot].at.line;
    return P->works[slot].at.line;
}

/* Declare a name of one kind, refusing a second declaration (which names the first). */
static int declare(parser *P, ps_name_table *t, int kind, const char *name, const char *name_at,
                   uint32_t *slot)
{
    static const char *const kinds[] = {"class", "processor", "workload"};
    uint32_t at = ps_name_find(t, name);
    if (at != PS_NONE)
        return perr(P, name_at, "duplicate %s '%s' (first declared at line %u)", kinds[kind], name,
                    decl_line(P, kind, at));
    char msg[128];
    int rc = ps_name_add(t, name, PS_NONE, slot, msg, sizeof msg);
    if (rc == PS_ENOMEM) return nomem(P);
    if (rc) return perr(P, name_at, "%s", msg);
    return PS_OK;
}

static int stmt_class(parser *P, const char *stmt)
{
    (void)stmt;
    char name[PS_NAME_MAX];
    skip_space(P);
    const char *at = P->p;
    int rc = scan_name(P, "class", "", name);
    if (!rc) rc = expect_end(P, "the class name");
    if (rc) return rc;
    ps_name_table *t = &P->names.classes;
    if (ps_name_find(t, name) == PS_NONE && t->count >= PS_THRESHOLD_MAX_CLASSES)
        return perr(P, at, "too many classes (at most %d)", PS_THRESHOLD_MAX_CLASSES);
    pos *na = grow(P->class_at, t->count, &P->class_cap, sizeof *na);
    if (!na) return nomem(P);
    P->class_at = na;
    uint32_t slot;
    rc = declare(P, t, KIND_CLASS, name, at, &slot);
    if (rc) return rc;
    P->class_at[slot] = (pos){P->lineno, col_of(P, at)};
    return PS_OK;
}

static int stmt_processor(parser *P, const char *stmt)
{
    char name[PS_NAME_MAX];
    skip_space(P);
    const char *at = P->p;
    int rc = scan_name(P, "processor", "", name);
    if (rc) return rc;
    attr v[MAX_KEYS];
    rc = parse_attrs(P, "processor", proc_keys, N_UNITS(proc_keys), v, stmt, name);
    if (rc) return rc;
    ps_name_table *t = &P->names.processors;
    rec_proc *np = grow(P->procs, t->count, &P->proc_cap, sizeof *np);
    if (!np) return nomem(P);
    P->procs = np;
    uint32_t slot;
    if ((rc = declare(P, t, KIND_PROCESSOR, name, at, &slot))) return rc;
    rec_proc *r = &P->procs[slot];
    memset(r, 0, sizeof *r);
    r->at = (pos){P->lineno, col_of(P, at)};
    r->class_at = v[0].at;
    memcpy(r->cls, v[0].name, sizeof r->cls);
    r->cpu = v[1].num;
    r->mem = v[2].num;
    r->net = v[3].num;
    r->alive = v[4].present ? (int)v[4].num : 1;
    r->has_id = v[5].present;
    r->id = v[5].present ? v[5].u64 : ps_processor_default_id(name);
    r->id_at = v[5].present ? v[5].at : r->at;
    memcpy(r->agent, v[6].url, sizeof r->agent);
    return PS_OK;
}

static int stmt_workload(parser *P, const char *stmt)
{
    char name[PS_NAME_MAX];
    skip_space(P);
    const char *at = P->p;
    int rc = scan_name(P, "workload", "", name);
    if (rc) return rc;
    attr v[MAX_KEYS];
    rc = parse_attrs(P, "workload", work_keys, N_UNITS(work_keys), v, stmt, name);
    if (rc) return rc;
    ps_name_table *t = &P->names.workloads;
    rec_work *nw = grow(P->works, t->count, &P->work_cap, sizeof *nw);
    if (!nw) return nomem(P);
    P->works = nw;
    uint32_t slot;
    if ((rc = declare(P, t, KIND_WORKLOAD, name, at, &slot))) return rc;
    rec_work *r = &P->works[slot];
    memset(r, 0, sizeof *r);
    r->at = (pos){P->lineno, col_of(P, at)};
    r->on_at = v[0].at;
    memcpy(r->on, v[0].name, sizeof r->on);
    r->cpu = v[1].num;
    r->mem = v[2].num;
    r->state = v[3].num;
    r->crit = v[4].present ? v[4].num : 1.0;
    if (v[5].present) {
        r->group_at = v[5].at;
        memcpy(r->group, v[5].name, sizeof r->group);
    }
    return PS_OK;
}

static int add_edge(parser *P, const char *a, pos a_at, const char *b, pos b_at)
{
    rec_edge *ne = grow(P->edges, P->n_edges, &P->edge_cap, sizeof *ne);
    if (!ne) return nomem(P);
    P->edges = ne;
    rec_edge *e = &P->edges[P->n_edges++];
    memcpy(e->a, a, PS_NAME_MAX);
    memcpy(e->b, b, PS_NAME_MAX);
    e->a_at = a_at;
    e->b_at = b_at;
    return PS_OK;
}

/* depends B on A1, A2, ...: B depends on each A (edges A -> B). */
static int stmt_depends(parser *P, const char *stmt)
{
    (void)stmt;
    char b[PS_NAME_MAX], a[PS_NAME_MAX];
    skip_space(P);
    pos b_at = {P->lineno, col_of(P, P->p)};
    int rc = scan_name(P, "workload", "", b);
    if (rc) return rc;
    skip_space(P);
    if (!(P->end - P->p >= 2 && P->p[0] == 'o' && P->p[1] == 'n' &&
          (P->end - P->p == 2 || is_space(P->p[2]))))
        return perr(P, P->p, "expected 'on' after '%s' (depends WORKLOAD on WORKLOAD[, ...])", b);
    P->p += 2;
    for (;;) {
        skip_space(P);
        pos a_at = {P->lineno, col_of(P, P->p)};
        if ((rc = scan_name(P, "workload", ",", a))) return rc;
        if ((rc = add_edge(P, a, a_at, b, b_at))) return rc;
        skip_space(P);
        if (P->p == P->end) return PS_OK;
        if (*P->p != ',')
            return perr(P, P->p, "expected ',' or the end of the line, found '%.*s'",
                        token_len(P, P->p), P->p);
        P->p++;
    }
}

/* flow A -> B -> C: each workload feeds the next (B depends on A, C on B). */
static int stmt_flow(parser *P, const char *stmt)
{
    (void)stmt;
    char prev[PS_NAME_MAX], next[PS_NAME_MAX];
    skip_space(P);
    pos prev_at = {P->lineno, col_of(P, P->p)};
    int rc = scan_name(P, "workload", "-", prev);
    if (rc) return rc;
    int arrows = 0;
    for (;;) {
        skip_space(P);
        if (P->p == P->end) break;
        if (!(P->end - P->p >= 2 && P->p[0] == '-' && P->p[1] == '>'))
            return perr(P, P->p, "expected '->' or the end of the line, found '%.*s'",
                        token_len(P, P->p), P->p);
        P->p += 2;
        skip_space(P);
        pos next_at = {P->lineno, col_of(P, P->p)};
        if ((rc = scan_name(P, "workload", "-", next))) return rc;
        if ((rc = add_edge(P, prev, prev_at, next, next_at))) return rc;
        memcpy(prev, next, sizeof prev);
        prev_at = next_at;
        arrows++;
    }
    if (!arrows) return perr(P, P->p, "expected '->' after '%s' (flow A -> B [-> C ...])", prev);
    return PS_OK;
}

static int parse_line(parser *P)
{
    /* A comment runs from '#' to the end of the line. */
    const char *hash = memchr(P->line, '#', (size_t)(P->end - P->line));
    if (hash) P->end = hash;
    skip_space(P);
    if (P->p == P->end) return PS_OK;
    const char *kw = P->p, *e = kw;
    while (e < P->end && *e >= 'a' && *e <= 'z')
        e++;
    static const struct {
        const char *word;
        int (*fn)(parser *, const char *);
    } stmts[] = {{"class", stmt_class},
                 {"processor", stmt_processor},
                 {"workload", stmt_workload},
                 {"depends", stmt_depends},
                 {"flow", stmt_flow}};
    if (e == P->end || is_space(*e)) {
        for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
            if (strlen(stmts[i].word) == (size_t)(e - kw) &&
                !memcmp(stmts[i].word, kw, (size_t)(e - kw))) {
                P->p = e;
                if (!P->n_decls++) P->first_decl_line = P->lineno;
                return stmts[i].fn(P, kw);
            }
        }
    }
    return perr(P, kw,
                "unknown declaration '%.*s' (expected class, processor, workload, depends or flow)",
                token_len(P, kw), kw);
}

static int parse_text(parser *P, const char *text, size_t len)
{
    const char *s = text, *end = text + len;
    if (len >= 3 && !memcmp(s, "\xef\xbb\xbf", 3)) s += 3; /* a UTF-8 byte order mark */
    for (P->lineno = 1; s < end; P->lineno++) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *le = nl ? nl : end;
        const char *nul = memchr(s, '\0', (size_t)(le - s));
        P->line = P->p = s;
        P->end = le;
        if (nul) return perr(P, nul, "NUL byte in the file");
        int rc = parse_line(P);
        if (rc) return rc;
        s = nl ? nl + 1 : end;
    }
    return PS_OK;
}

/* ---- resolve ---- */

typedef struct pair_key {
    uint32_t k1, k2;
    pos at;
    uint32_t idx;
} pair_key;

static int pos_cmp(pos a, pos b)
{
    if (a.line != b.line) return a.line < b.line ? -1 : 1;
    if (a.col != b.col) return a.col < b.col ? -1 : 1;
    return 0;
}

static int pair_cmp(const void *x, const void *y)
{
    const pair_key *a = x, *b = y;
    if (a->k1 != b->k1) return a->k1 < b->k1 ? -1 : 1;
    if (a->k2 != b->k2) return a->k2 < b->k2 ? -1 : 1;
    return pos_cmp(a->at, b->at);
}

typedef struct id_key {
    uint64_t id;
    pos at;
    uint32_t idx;
} id_key;

static int id_cmp(const void *x, const void *y)
{
    const id_key *a = x, *b = y;
    if (a->id != b->id) return a->id < b->id ? -1 : 1;
    return pos_cmp(a->at, b->at);
}

/* Two processors with one id would be one processor to the scoring server. */
static int check_ids(parser *P)
{
    uint32_t np = P->names.processors.count;
    id_key *keys = malloc((np ? np : 1) * sizeof *keys);
    if (!keys) return nomem(P);
    for (uint32_t i = 0; i < np; i++)
        keys[i] = (id_key){P->procs[i].id, P->procs[i].id_at, i};
    qsort(keys, np, sizeof *keys, id_cmp);
    for (uint32_t i = 1; i < np; i++) {
        if (keys[i].id != keys[i - 1].id) continue;
        const rec_proc *first = &P->procs[keys[i - 1].idx];
        rerr(P, keys[i].at, "processor '%s' has id %llu, the id of '%s' (line %u)%s",
             P->names.processors.name[keys[i].idx], (unsigned long long)keys[i].id,
             P->names.processors.name[keys[i - 1].idx], first->at.line,
             first->has_id ? "" : " by default: a hash of its name");
    }
    free(keys);
    return PS_OK;
}

static int resolve(parser *P)
{
    ps_names *N = &P->names;
    uint32_t np = N->processors.count, nw = N->workloads.count;
    for (uint32_t i = 0; i < np; i++) {
        const rec_proc *r = &P->procs[i];
        if (ps_name_find(&N->classes, r->cls) == PS_NONE)
            rerr(P, r->class_at, "unknown class '%s' (declare it with: class %s)", r->cls, r->cls);
    }
    if (check_ids(P)) return PS_ENOMEM;
    for (uint32_t i = 0; i < nw; i++) {
        rec_work *r = &P->works[i];
        r->proc = ps_name_find(&N->processors, r->on);
        if (r->proc == PS_NONE) rerr(P, r->on_at, "unknown processor '%s'", r->on);
    }
    /* Group slots in the order groups first appear (slots are in file order). */
    size_t nk = P->n_edges > nw ? P->n_edges : nw;
    pair_key *keys = malloc((nk ? nk : 1) * sizeof *keys);
    if (!keys) return nomem(P);
    int rc = PS_OK;
    for (uint32_t i = 0; i < nw && !rc; i++) {
        rec_work *r = &P->works[i];
        r->grp = 0;
        if (!r->group[0]) continue;
        r->grp = ps_name_find(&N->groups, r->group);
        if (r->grp != PS_NONE) continue;
        if (ps_name_add(&N->groups, r->group, PS_NONE, &r->grp, P->err, P->errlen)) rc = nomem(P);
    }
    /* Replica anti-affinity: no two members of a group on one processor. */
    size_t n = 0;
    for (uint32_t i = 0; i < nw && !rc; i++) {
        const rec_work *r = &P->works[i];
        if (r->grp && r->proc != PS_NONE) keys[n++] = (pair_key){r->grp, r->proc, r->at, i};
    }
    qsort(keys, n, sizeof *keys, pair_cmp);
    for (size_t i = 1; i < n && !rc; i++) {
        if (keys[i].k1 != keys[i - 1].k1 || keys[i].k2 != keys[i - 1].k2) continue;
        const rec_work *r = &P->works[keys[i].idx], *first = &P->works[keys[i - 1].idx];
        rerr(P, r->on_at,
             "replica group '%s' would have two members on processor '%s': '%s' and '%s' (line "
             "%u); replicas must be on different processors",
             r->group, r->on, N->workloads.name[keys[i].idx], N->workloads.name[keys[i - 1].idx],
             first->at.line);
    }
    /* Dependencies: known workloads, no self-loops, no duplicates. Cycles are allowed:
     * the policy's loss walk counts a cycle once (docs/policy.md). */
    n = 0;
    for (size_t i = 0; i < P->n_edges && !rc; i++) {
        const rec_edge *e = &P->edges[i];
        uint32_t a = ps_name_find(&N->workloads, e->a), b = ps_name_find(&N->workloads, e->b);
        if (a == PS_NONE) rerr(P, e->a_at, "unknown workload '%s'", e->a);
        if (b == PS_NONE) rerr(P, e->b_at, "unknown workload '%s'", e->b);
        if (a == PS_NONE || b == PS_NONE) continue;
        if (a == b) {
            rerr(P, e->a_at, "workload '%s' cannot depend on itself", e->a);
            continue;
        }
        keys[n++] = (pair_key){a, b, e->a_at, (uint32_t)i};
    }
    qsort(keys, n, sizeof *keys, pair_cmp);
    for (size_t i = 1; i < n && !rc; i++) {
        if (keys[i].k1 != keys[i - 1].k1 || keys[i].k2 != keys[i - 1].k2) continue;
        const rec_edge *e = &P->edges[keys[i].idx];
        rerr(P, keys[i].at, "duplicate dependency: '%s' already depends on '%s' (line %u)", e->b,
             e->a, keys[i - 1].at.line);
    }
    free(keys);
    if (rc) return rc;
    return P->have_err ? PS_WL_EPARSE : PS_OK;
}

/* ---- build ---- */

static uint32_t max3(uint32_t a, uint32_t b, uint32_t c)
{
    uint32_t m = a > b ? a : b;
    return m > c ? m : c;
}

static int build(parser *P, const ps_load_room *room, ps_cluster *c)
{
    ps_load_room r = room ? *room : (ps_load_room){0, 0, 0, 0};
    ps_names *N = &P->names;
    if (r.classes > PS_THRESHOLD_MAX_CLASSES)
        return ps_fail(P->err, P->errlen, PS_EINVAL, "%s: room for %u classes asked, at most %d",
                       P->label, r.classes, PS_THRESHOLD_MAX_CLASSES);
    uint32_t ng = N->groups.len - 1;
    int rc = ps_cluster_init(c, max3(r.processors, N->processors.count, 1),
                             max3(r.workloads, N->workloads.count, 1), max3(r.groups, ng, 0),
                             (uint16_t)max3(r.classes, N->classes.count, 1), P->err, P->errlen);
    if (rc) return rc;
    char msg[256];
    pos at = {0, 0};
    for (uint32_t i = 0; i < N->processors.count && !rc; i++) {
        const rec_proc *p = &P->procs[i];
        ps_processor_spec s = {(uint16_t)ps_name_find(&N->classes, p->cls), p->cpu, p->mem, p->net};
        at = p->at;
        rc = ps_cluster_add_processor(c, i, &s, msg, sizeof msg);
    }
    for (uint32_t i = 0; i < N->workloads.count && !rc; i++) {
        const rec_work *w = &P->works[i];
        ps_workload_spec s = {w->proc, w->cpu, w->mem, w->state, w->crit, w->grp};
        at = w->at;
        rc = ps_cluster_add_workload(c, i, &s, msg, sizeof msg);
    }
    for (size_t i = 0; i < P->n_edges && !rc; i++) {
        const rec_edge *e = &P->edges[i];
        at = e->a_at;
        rc = ps_cluster_add_edge(c, ps_name_find(&N->workloads, e->a),
                                 ps_name_find(&N->workloads, e->b), msg, sizeof msg);
    }
    for (uint32_t i = 0; i < N->processors.count && !rc; i++) {
        at = P->procs[i].at;
        if (!P->procs[i].alive) rc = ps_cluster_set_alive(c, i, 0, msg, sizeof msg);
    }
    for (uint32_t i = 0; i < N->processors.count && !rc; i++)
        if (ps_names_set_info(&P->names, i, P->procs[i].id, P->procs[i].agent, msg, sizeof msg))
            rc = PS_ENOMEM;
    if (rc) {
        ps_cluster_free(c);
        if (rc == PS_ENOMEM) return nomem(P);
        return ps_fail(P->err, P->errlen, PS_WL_EPARSE, "%s:%u:%u: %s", P->label, at.line, at.col,
                       msg);
    }
    return PS_OK;
}

int ps_workload_load_string(const char *text, size_t len, const char *label,
                            const ps_load_room *room, ps_cluster *c, ps_names *names, char *err,
                            size_t errlen)
{
    if (!c || !names || (!text && len))
        return ps_fail(err, errlen, PS_EINVAL, "no text, cluster or names");
    memset(c, 0, sizeof *c);
    ps_names_init(names);
    parser P;
    memset(&P, 0, sizeof P);
    P.label = label ? label : "<workloads>";
    P.err = err;
    P.errlen = errlen;
    ps_names_init(&P.names);
    int rc = parse_text(&P, text ? text : "", len);
    if (!rc) rc = resolve(&P);
    if (!rc) rc = build(&P, room, c);
    free(P.class_at);
    free(P.procs);
    free(P.works);
    free(P.edges);
    if (rc) {
        ps_names_free(&P.names);
        return rc;
    }
    *names = P.names;
    return PS_OK;
}

int ps_workload_load_file(const char *path, const ps_load_room *room, ps_cluster *c,
                          ps_names *names, char *err, size_t errlen)
{
    if (!path || !c || !names) return ps_fail(err, errlen, PS_EINVAL, "no path, cluster or names");
    memset(c, 0, sizeof *c);
    ps_names_init(names);
    FILE *f = fopen(path, "rb");
    if (!f) return ps_fail(err, errlen, PS_WL_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, nc);
            if (!nb) {
                free(buf);
                fclose(f);
                return ps_fail(err, errlen, PS_ENOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap = nc;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    int e = errno;
    fclose(f);
    if (bad) {
        free(buf);
        return ps_fail(err, errlen, PS_WL_EIO, "%s: read error: %s", path, strerror(e));
    }
    int rc = ps_workload_load_string(buf, len, path, room, c, names, err, errlen);
    free(buf);
    return rc;
}

int ps_workload_parse_decl(const char *text, size_t len, const char *label, ps_decl *out, char *err,
                           size_t errlen)
{
    if (!out || (!text && len)) return ps_fail(err, errlen, PS_EINVAL, "no text or declaration");
    memset(out, 0, sizeof *out);
    parser P;
    memset(&P, 0, sizeof P);
    P.label = label ? label : "<declaration>";
    P.err = err;
    P.errlen = errlen;
    ps_names_init(&P.names);
    int rc = parse_text(&P, text ? text : "", len);
    const ps_names *N = &P.names;
    if (!rc && P.n_decls != 1)
        rc = ps_fail(err, errlen, PS_WL_EPARSE, "%s:%u:1: %s", P.label,
                     P.n_decls ? P.first_decl_line : 1,
                     P.n_decls ? "one declaration at a time, please"
                               : "expected a declaration (class, processor, workload, depends "
                                 "or flow)");
    if (!rc && P.n_edges > PS_DECL_MAX_EDGES)
        rc = ps_fail(err, errlen, PS_WL_EPARSE, "%s:%u:1: at most %d dependencies at a time",
                     P.label, P.first_decl_line, PS_DECL_MAX_EDGES);
    if (!rc && N->classes.count) {
        out->kind = PS_DECL_CLASS;
        snprintf(out->name, sizeof out->name, "%s", N->classes.name[0]);
    } else if (!rc && N->processors.count) {
        const rec_proc *r = &P.procs[0];
        out->kind = PS_DECL_PROCESSOR;
        snprintf(out->name, sizeof out->name, "%s", N->processors.name[0]);
        memcpy(out->cls, r->cls, sizeof out->cls);
        out->cpu = r->cpu;
        out->mem = r->mem;
        out->net = r->net;
        out->alive = r->alive;
        out->id = r->id;
        memcpy(out->agent, r->agent, sizeof out->agent);
    } else if (!rc && N->workloads.count) {
        const rec_work *r = &P.works[0];
        out->kind = PS_DECL_WORKLOAD;
        snprintf(out->name, sizeof out->name, "%s", N->workloads.name[0]);
        memcpy(out->on, r->on, sizeof out->on);
        memcpy(out->group, r->group, sizeof out->group);
        out->cpu = r->cpu;
        out->mem = r->mem;
        out->state = r->state;
        out->criticality = r->crit;
    } else if (!rc) {
        out->kind = PS_DECL_EDGES;
        out->n_edges = (uint32_t)P.n_edges;
        for (size_t i = 0; i < P.n_edges; i++) {
            memcpy(out->edges[i][0], P.edges[i].a, PS_NAME_MAX);
            memcpy(out->edges[i][1], P.edges[i].b, PS_NAME_MAX);
        }
    }
    free(P.class_at);
    free(P.procs);
    free(P.works);
    free(P.edges);
    ps_names_free(&P.names);
    return rc;
}

/* ---- writer ---- */

/* The shortest decimal that reads back as v, without an exponent where one is not needed. */
static void shortest(double v, char *buf, size_t len)
{
    char first[40] = "";
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) != v) continue;
        if (!strchr(buf, 'e')) return;
        if (!first[0]) snprintf(first, sizeof first, "%s", buf);
    }
    if (first[0]) snprintf(buf, len, "%s", first);
}

/* v in the unit whose number reads back exactly in the fewest digits (earlier units win ties). */
static void quantity(double v, const unit *units, size_t n, char *buf, size_t len)
{
    char num[40], best[48];
    shortest(v, best, sizeof best);
    size_t best_digits = strlen(best);
    for (size_t i = 0; i < n && v != 0; i++) {
        if (v < units[i].factor || !units[i].suffix[0]) continue;
        shortest(v / units[i].factor, num, sizeof num);
        if (strtod(num, NULL) * units[i].factor != v || strchr(num, 'e')) continue;
        if (strlen(num) < best_digits) {
            best_digits = strlen(num);
            snprintf(best, sizeof best, "%.30s%.8s", num, units[i].suffix);
        }
    }
    snprintf(buf, len, "%s", best);
}

int ps_workload_write(FILE *f, const ps_cluster *c, const ps_names *names, char *err, size_t errlen)
{
    if (!f || !c || !names) return ps_fail(err, errlen, PS_EINVAL, "no file, cluster or names");
    char a[48], b[48], d[48];
    fprintf(f, "# preshift workloads: %u processors, %u workloads, %llu dependencies\n",
            c->n_processors, c->n_workloads, (unsigned long long)c->n_edges);
    /* Only the classes in use must have names; unused unnamed classes are skipped. */
    for (uint32_t p = 0; p < c->max_processors; p++)
        if (c->proc[p].present && !ps_name_of(&names->classes, c->proc[p].cls))
            return ps_fail(err, errlen, PS_EINVAL, "class %u (of processor %u) has no name",
                           (unsigned)c->proc[p].cls, p);
    fputc('\n', f);
    for (uint32_t k = 0; k < c->n_classes; k++)
        if (ps_name_of(&names->classes, k))
            fprintf(f, "class %s\n", ps_name_of(&names->classes, k));
    fputc('\n', f);
    for (uint32_t p = 0; p < c->max_processors; p++) {
        const ps_processor *x = &c->proc[p];
        if (!x->present) continue;
        const char *name = ps_name_of(&names->processors, p);
        if (!name) return ps_fail(err, errlen, PS_EINVAL, "processor %u has no name", p);
        shortest(x->cpu_capacity, a, sizeof a);
        quantity(x->mem_capacity, byte_units, N_UNITS(byte_units), b, sizeof b);
        quantity(x->net_bandwidth, rate_units, N_UNITS(rate_units), d, sizeof d);
        fprintf(f, "processor %s class=%s cpu=%s mem=%s net=%s%s", name,
                ps_name_of(&names->classes, x->cls), a, b, d, x->alive ? "" : " alive=no");
        uint64_t id = ps_names_processor_id(names, p);
        if (id != ps_processor_default_id(name)) fprintf(f, " id=%llu", (unsigned long long)id);
        if (*ps_names_agent(names, p)) fprintf(f, " agent=%s", ps_names_agent(names, p));
        fputc('\n', f);
    }
    fputc('\n', f);
    for (uint32_t w = 0; w < c->max_workloads; w++) {
        const ps_workload *x = &c->work[w];
        if (!x->present) continue;
        const char *name = ps_name_of(&names->workloads, w);
        if (!name) return ps_fail(err, errlen, PS_EINVAL, "workload %u has no name", w);
        const char *group = x->group ? ps_name_of(&names->groups, x->group) : NULL;
        if (x->group && !group)
            return ps_fail(err, errlen, PS_EINVAL, "replica group %u (of workload %u) has no name",
                           x->group, w);
        char s[48], k[48];
        shortest(x->cpu, a, sizeof a);
        quantity(x->mem, byte_units, N_UNITS(byte_units), b, sizeof b);
        quantity(x->state_bytes, byte_units, N_UNITS(byte_units), s, sizeof s);
        shortest(x->criticality, k, sizeof k);
        fprintf(f, "workload %s on=%s cpu=%s mem=%s state=%s criticality=%s%s%s\n", name,
                ps_name_of(&names->processors, x->proc), a, b, s, k, group ? " group=" : "",
                group ? group : "");
    }
    int first = 1;
    for (uint32_t w = 0; w < c->max_workloads; w++) {
        if (!c->work[w].present) continue;
        uint32_t n;
        const uint32_t *in = ps_cluster_dependencies(c, w, &n);
        if (!n) continue;
        if (first) fputc('\n', f);
        first = 0;
        fprintf(f, "depends %s on", ps_name_of(&names->workloads, w));
        for (uint32_t i = 0; i < n; i++) {
            const char *dep = ps_name_of(&names->workloads, in[i]);
            if (!dep) return ps_fail(err, errlen, PS_EINVAL, "workload %u has no name", in[i]);
            fprintf(f, "%s %s", i ? "," : "", dep);
        }
        fputc('\n', f);
    }
    if (fflush(f) || ferror(f))
        return ps_fail(err, errlen, PS_WL_EIO, "writing the workload file failed: %s",
                       strerror(errno));
    return PS_OK;
}
