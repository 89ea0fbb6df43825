/*
 * csv.c - the CSV reader of csv.h.
 *
 * zlib's gz* functions read gzip and plain files alike, so there is one code
 * path for both. Lines are assembled from fixed chunks by our own loop rather
 * than gzgets, so that a NUL byte or an over-long line is seen and refused
 * instead of silently cutting the line. Each line is split in place; the
 * first two rows are looked at together to decide whether there is a header
 * and a label column, then every row is checked against that decision, so
 * an error message can always say which line and column broke it.
 */
#define _POSIX_C_SOURCE 200809L

#include "csv.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define CHUNK ((size_t)1 << 16)

typedef struct reader {
    gzFile gz;
    const char *name;
    unsigned char *chunk;
    size_t clen, cpos;
    int eof;
    char *line;
    size_t llen, lcap;
    size_t lineno;
    char *err;
    size_t errlen;
} reader;

typedef struct fields {
    char **f;
    size_t n, cap;
} fields;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int
fail(reader *r, const char *fmt, ...)
{
    if (!r->err || !r->errlen) return -1;
    int k = snprintf(r->err, r->errlen, "%s", r->name);
    if (k < 0 || (size_t)k >= r->errlen) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err + k, r->errlen - (size_t)k, fmt, ap);
    va_end(ap);
    return -1;
}

/* 1: more bytes in the chunk, 0: end of input, -1: error (reported). */
static int fill(reader *r)
{
    int n = gzread(r->gz, r->chunk, (unsigned)CHUNK);
    int errnum = Z_OK;
    const char *msg = gzerror(r->gz, &errnum);
    if (n < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
        if (errnum == Z_ERRNO) return fail(r, ": read error: %s", strerror(errno));
        if (errnum == Z_BUF_ERROR)
            return fail(r, ": truncated gzip data after line %zu (%s)", r->lineno, msg);
        return fail(r, ": corrupt gzip data after line %zu (%s)", r->lineno, msg);
    }
    r->clen = (size_t)n;
    r->cpos = 0;
    return n > 0;
}

/* Next line into r->line (NUL-terminated, no line end). 1, 0 at end, -1 on error. */
static int read_line(reader *r)
{
    r->llen = 0;
    int any = 0;
    for (;;) {
        if (r->cpos == r->clen) {
            if (r->eof) break;
            int k = fill(r);
            if (k < 0) return -1;
            if (k == 0) {
                r->eof = 1;
                break;
            }
        }
        const unsigned char *s = r->chunk + r->cpos;
        size_t avail = r->clen - r->cpos;
        const unsigned char *nl = memchr(s, '\n', avail);
        size_t take = nl ? (size_t)(nl - s) : avail;
        if (r->llen + take > PS_CSV_MAX_LINE)
            return fail(r, ":%zu: line longer than %zu bytes", r->lineno + 1, PS_CSV_MAX_LINE);
        if (r->llen + take + 1 > r->lcap) {
            size_t cap = r->lcap ? r->lcap : 4096;
            while (cap < r->llen + take + 1)
                cap *= 2;
            char *p = realloc(r->line, cap);
            if (!p) return fail(r, ":%zu: out of memory", r->lineno + 1);
            r->line = p;
            r->lcap = cap;
        }
        memcpy(r->line + r->llen, s, take);
        r->llen += take;
        r->cpos += take + (nl ? 1 : 0);
        any = 1;
        if (nl) break;
    }
    if (!any) return 0;
    r->lineno++;
    if (r->llen && r->line[r->llen - 1] == '\r') r->llen--;
    if (memchr(r->line, '\0', r->llen))
        return fail(r, ":%zu: NUL byte in the line (not a text file?)", r->lineno);
    r->line[r->llen] = '\0';
    if (r->lineno == 1 && r->llen >= 3 && !memcmp(r->line, "\xEF\xBB\xBF", 3)) {
        memmove(r->line, r->line + 3, r->llen - 2);
        r->llen -= 3;
    }
    return 1;
}

static int is_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t') return 0;
    return 1;
}

/*
 * Split line in place into fields (NUL-terminated, trimmed, quotes removed).
 * 0, or -1 with the reason reported for the 1-based column it happened in.
 */
static int split(reader *r, char *line, fields *fs)
{
    fs->n = 0;
    char *p = line;
    for (;;) {
        if (fs->n == fs->cap) {
            size_t cap = fs->cap ? 2 * fs->cap : 64;
            char **f = realloc(fs->f, cap * sizeof *f);
            if (!f) return fail(r, ":%zu: out of memory", r->lineno);
            fs->f = f;
            fs->cap = cap;
        }
        while (*p == ' ' || *p == '\t')
            p++;
        char *start = p, *end;
        if (*p == '"') {
            char *w = p;
            p++;
            for (;;) {
                if (!*p)
                    return fail(r, ":%zu:%zu: unterminated quoted field", r->lineno, fs->n + 1);
                if (*p == '"') {
                    if (p[1] != '"') break;
                    p++;
                }
                *w++ = *p++;
            }
            end = w;
            p++; /* the closing quote */
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p && *p != ',')
                return fail(r, ":%zu:%zu: text after a closing quote", r->lineno, fs->n + 1);
        } else {
            while (*p && *p != ',')
                p++;
            end = p;
            while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
        }
        int last = *p == '\0';
        *end = '\0';
        fs->f[fs->n++] = start;
        if (last) break;
        p++; /* the comma */
    }
    return 0;
}

enum { NUM_OK, NUM_NOT, NUM_NONFINITE, NUM_RANGE, NUM_EMPTY };

static int parse_num(const char *s, float *out)
{
    if (!*s) return NUM_EMPTY;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end) return NUM_NOT;
    if (isnan(v)) return NUM_NONFINITE;
    if (isinf(v)) return errno == ERANGE ? NUM_RANGE : NUM_NONFINITE;
    if (fabs(v) > FLT_MAX) return NUM_RANGE;
    *out = (float)v;
    return NUM_OK;
}

static int numeric(const char *s)
{
    float v;
    int k = parse_num(s, &v);
    return k != NUM_NOT && k != NUM_EMPTY;
}

typedef struct table {
    ps_csv *out;
    size_t label; /* 1 with a label column */
    size_t width; /* fields per row: label + cols */
    size_t rows_cap, labels_cap;
    size_t bytes;
    size_t shape_line; /* the line that fixed the field count */
} table;

static int count_bytes(reader *r, table *t, size_t more)
{
    if (more > PS_CSV_MAX_BYTES - t->bytes)
        return fail(r, ":%zu: more than %zu bytes of data; split the file", r->lineno,
                    PS_CSV_MAX_BYTES);
    t->bytes += more;
    return 0;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* A short, printable rendering of a field for messages. */
static const char *shown(const char *s, char *buf, size_t len)
{
    size_t i = 0;
    for (; s[i] && i + 4 < len; i++)
        buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (s[i]) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

static int add_row(reader *r, table *t, const fields *fs)
{
    ps_csv *c = t->out;
    if (fs->n != t->width)
        return fail(r, ":%zu: %zu field%s, expected %zu as on line %zu", r->lineno, fs->n,
                    fs->n == 1 ? "" : "s", t->width, t->shape_line);
    if (count_bytes(r, t, c->cols * sizeof(float))) return -1;
    if (c->rows == t->rows_cap) {
        size_t cap = t->rows_cap ? 2 * t->rows_cap : 1024;
        float *v = realloc(c->values, cap * c->cols * sizeof *v);
        if (!v) return fail(r, ":%zu: out of memory", r->lineno);
        c->values = v;
        t->rows_cap = cap;
    }
    float *row = c->values + c->rows * c->cols;
    for (size_t j = 0; j < c->cols; j++) {
        const char *s = fs->f[t->label + j];
        char buf[48], nm[80] = "";
        if (c->names) snprintf(nm, sizeof nm, " (column '%s')", shown(c->names[j], buf, 40));
        size_t col = t->label + j + 1;
        switch (parse_num(s, &row[j])) {
        case NUM_OK:
            break;
        case NUM_EMPTY:
            return fail(r, ":%zu:%zu: empty value%s", r->lineno, col, nm);
        case NUM_NONFINITE:
            return fail(r, ":%zu:%zu: '%s' is not finite (NaN and infinity are refused)%s",
                        r->lineno, col, shown(s, buf, 40), nm);
        case NUM_RANGE:
            return fail(r, ":%zu:%zu: '%s' is out of the range of a 32-bit float%s", r->lineno, col,
                        shown(s, buf, 40), nm);
        default:
            return fail(r, ":%zu:%zu: '%s' is not a number%s", r->lineno, col, shown(s, buf, 40),
                        nm);
        }
    }
    if (t->label) {
        size_t n = strlen(fs->f[0]) + 1;
        if (count_bytes(r, t, n + sizeof(char *))) return -1;
        if (c->rows == t->labels_cap) {
            size_t cap = t->labels_cap ? 2 * t->labels_cap : 1024;
            char **l = realloc(c->labels, cap * sizeof *l);
            if (!l) return fail(r, ":%zu: out of memory", r->lineno);
            c->labels = l;
            t->labels_cap = cap;
        }
        if (!(c->labels[c->rows] = dup_str(fs->f[0])))
            return fail(r, ":%zu: out of memory", r->lineno);
    }
    c->rows++;
    return 0;
}

/*
 * Next row with content. Blank lines are skipped before the first row and
 * after the last; a blank line followed by a row is refused.
 */
static int next_row(reader *r, int started)
{
    size_t blank = 0;
    for (;;) {
        int k = read_line(r);
        if (k <= 0) return k;
        if (is_blank(r->line)) {
            if (!blank) blank = r->lineno;
            continue;
        }
        if (blank && started) return fail(r, ":%zu: blank line between rows", blank);
        return 1;
    }
}

static int read_all(reader *r, ps_csv *c)
{
    table t = {c, 0, 0, 0, 0, 0, 0};
    fields f1 = {0}, f2 = {0};
    char *first = NULL;
    int rc = -1;

    int k = next_row(r, 0);
    if (k < 0) goto out;
    if (k == 0) {
        fail(r, ": empty file: no rows");
        goto out;
    }
    size_t line1 = r->lineno;
    first = dup_str(r->line);
    if (!first) {
        fail(r, ": out of memory");
        goto out;
    }
    if (split(r, first, &f1)) goto out;

    k = next_row(r, 1);
    if (k < 0) goto out;
    int have2 = k == 1;
    if (have2 && split(r, r->line, &f2)) goto out;

    /*
     * A non-number after the first column makes line 1 a header; then the
     * second row says whether there is a label column. A non-number only in
     * the first column is a header over a numeric column, or else the label
     * of the first data row.
     */
    int header = 0;
    for (size_t j = 1; j < f1.n; j++)
        if (!numeric(f1.f[j])) header = 1;
    if (header)
        t.label = have2 && !numeric(f2.f[0]);
    else if (!numeric(f1.f[0])) {
        if (have2 && numeric(f2.f[0]))
            header = 1;
        else
            t.label = f1.n > 1;
    }
    t.width = f1.n;
    t.shape_line = line1;
    if (t.width <= t.label) {
        fail(r, ":%zu: no numeric column (only a label column)", have2 ? r->lineno : line1);
        goto out;
    }
    c->cols = t.width - t.label;
    if (header) {
        if (count_bytes(r, &t, c->cols * sizeof(char *))) goto out;
        c->names = calloc(c->cols, sizeof *c->names);
        if (!c->names) {
            fail(r, ": out of memory");
            goto out;
        }
        for (size_t j = 0; j < c->cols; j++) {
            const char *s = f1.f[t.label + j];
            if (count_bytes(r, &t, strlen(s) + 1)) goto out;
            if (!(c->names[j] = dup_str(s))) {
                fail(r, ": out of memory");
                goto out;
            }
        }
        if (t.label && !(c->label_name = dup_str(f1.f[0]))) {
            fail(r, ": out of memory");
            goto out;
        }
    } else {
        size_t keep = r->lineno;
        r->lineno = line1;
        int bad = add_row(r, &t, &f1);
        r->lineno = keep;
        if (bad) goto out;
    }
    if (have2) {
        if (add_row(r, &t, &f2)) goto out;
        while ((k = next_row(r, 1)) == 1) {
            if (split(r, r->line, &f2) || add_row(r, &t, &f2)) goto out;
        }
        if (k < 0) goto out;
    }
    if (c->rows == 0) {
        fail(r, ": no data rows after the header on line %zu", line1);
        goto out;
    }
    /* Give back the slack of the doubling. */
    float *v = realloc(c->values, c->rows * c->cols * sizeof *v);
    if (v) c->values = v;
    rc = 0;
out:
    free(first);
    free(f1.f);
    free(f2.f);
    return rc;
}

int ps_csv_read(const char *path, ps_csv *out, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!out) return -1;
    memset(out, 0, sizeof *out);
    reader r;
    memset(&r, 0, sizeof r);
    r.err = err;
    r.errlen = errlen;
    r.name = path ? path : "(null)";
    if (!path) return fail(&r, ": no file name");
    int is_stdin = !strcmp(path, "-");
    if (is_stdin) r.name = "<stdin>";
    if (is_stdin) {
        int fd = dup(STDIN_FILENO);
        if (fd < 0) return fail(&r, ": cannot read: %s", strerror(errno));
        r.gz = gzdopen(fd, "rb");
        if (!r.gz) close(fd);
    } else {
        errno = 0;
        r.gz = gzopen(path, "rb");
    }
    if (!r.gz) return fail(&r, ": cannot open: %s", errno ? strerror(errno) : "out of memory");
    gzbuffer(r.gz, 1u << 17);
    r.chunk = malloc(CHUNK);
    int rc = r.chunk ? read_all(&r, out) : fail(&r, ": out of memory");
    gzclose(r.gz);
    free(r.chunk);
    free(r.line);
    if (rc) ps_csv_free(out);
    return rc;
}

void ps_csv_free(ps_csv *c)
{
    if (!c) return;
    if (c->names)
        for (size_t j = 0; j < c->cols; j++)
            free(c->names[j]);
    if (c->labels)
        for (size_t i = 0; i < c->rows; i++)
            free(c->labels[i]);
    free(c->names);
    free(c->labels);
    free(c->label_name);
    free(c->values);
    memset(c, 0, sizeof *c);
}
