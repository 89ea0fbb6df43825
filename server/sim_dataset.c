/*
 * sim_dataset.c - the simulator's dataset loader (sim_dataset.h).
 *
 * Each file is read whole through zlib (gzopen reads plain and gzip files
 * alike), then parsed in place line by line, so that every refusal can
 * name the file, the line and the field.
 */
#include "sim_dataset.h"

#include "core/error.h"
#include "kernels/kernels.h"

#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#if defined(__GNUC__)
__attribute__((format(printf, 6, 7)))
#endif
static int
perr(char *err, size_t errlen, const char *path, size_t line, size_t col, const char *fmt, ...)
{
    if (!err || !errlen) return PS_SIMDATA_EPARSE;
    int k;
    if (line && col)
        k = snprintf(err, errlen, "%s:%zu:%zu: ", path, line, col);
    else if (line)
        k = snprintf(err, errlen, "%s:%zu: ", path, line);
    else
        k = snprintf(err, errlen, "%s: ", path);
    if (k >= 0 && (size_t)k < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return PS_SIMDATA_EPARSE;
}

/* ------------------------------------------------------------- reading */

static int read_file(const char *path, char **data, size_t *len, char *err, size_t errlen)
{
    *data = NULL;
    *len = 0;
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return ps_fail(err, errlen, PS_SIMDATA_EIO, "%s: cannot open: %s", path,
                       errno ? strerror(errno) : "out of memory");
    gzbuffer(gz, 1u << 17);
    size_t cap = 1u << 16, n = 0;
    char *buf = malloc(cap + 1);
    int rc = buf ? 0 : ps_fail(err, errlen, PS_ENOMEM, "%s: out of memory", path);
    while (!rc) {
        if (n == cap) {
            if (cap >= PS_SIMDATA_MAX_BYTES) {
                rc = ps_fail(err, errlen, PS_SIMDATA_EPARSE, "%s: larger than %zu bytes", path,
                             PS_SIMDATA_MAX_BYTES);
                break;
            }
            char *p = realloc(buf, cap * 2 + 1);
            if (!p) {
                rc = ps_fail(err, errlen, PS_ENOMEM, "%s: out of memory", path);
                break;
            }
            buf = p;
            cap *= 2;
        }
        size_t want = cap - n > (1u << 30) ? (1u << 30) : cap - n;
        int got = gzread(gz, buf + n, (unsigned)want);
        int errnum = Z_OK;
        const char *msg = gzerror(gz, &errnum);
        if (got < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
            if (errnum == Z_ERRNO)
                rc = ps_fail(err, errlen, PS_SIMDATA_EIO, "%s: read error: %s", path,
                             strerror(errno));
            else
                rc = ps_fail(err, errlen, PS_SIMDATA_EPARSE,
                             "%s: corrupt or truncated gzip data (%s)", path, msg);
            break;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    gzclose(gz);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

typedef struct lines {
    const char *path;
    char *p, *end;
    size_t lineno;
    size_t blank; /* first blank line of the current blank run, 0 if none */
} lines;

/* The next non-blank line, NUL-terminated in place: 1, 0 at the end, < 0 on error. */
static int next_line(lines *L, char **out, char *err, size_t errlen)
{
    while (L->p < L->end) {
        char *s = L->p;
        char *nl = memchr(s, '\n', (size_t)(L->end - s));
        char *e = nl ? nl : L->end;
        L->p = nl ? nl + 1 : L->end;
        L->lineno++;
        if ((size_t)(e - s) > PS_SIMDATA_MAX_LINE)
            return perr(err, errlen, L->path, L->lineno, 0, "line longer than %zu bytes",
                        PS_SIMDATA_MAX_LINE);
        if (memchr(s, '\0', (size_t)(e - s)))
            return perr(err, errlen, L->path, L->lineno, 0,
                        "NUL byte in the line (not a text file?)");
        if (e > s && e[-1] == '\r') e--;
        *e = '\0';
        const char *q = s;
        while (*q == ' ' || *q == '\t')
            q++;
        if (!*q) {
            if (!L->blank) L->blank = L->lineno;
            continue;
        }
        if (L->blank) return perr(err, errlen, L->path, L->blank, 0, "blank line between rows");
        *out = s;
        return 1;
    }
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *e = '\0';
    return s;
}

/*
 * Plain decimals ("0.49", "-12", ".5", "3.") of at most 15 digits, the
 * whole of ASD, without strtod: the digits as an exact integer divided by an
 * exact power of ten is one correctly rounded IEEE division, which is the
 * double strtod returns. 0 with *v, -1 for anything else (strtod decides).
 */
static int fast_decimal(const char *s, double *v)
{
    static const double p10[16] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    int neg = 0, digits = 0, frac = 0, dot = 0;
    uint64_t m = 0;
    if (*s == '-' || *s == '+') neg = *s++ == '-';
    for (;; s++) {
        if (*s >= '0' && *s <= '9') {
            if (++digits > 15) return -1;
            m = m * 10 + (uint64_t)(*s - '0');
            frac += dot;
        } else if (*s == '.' && !dot) {
            dot = 1;
        } else {
            break;
        }
    }
    if (*s || !digits) return -1;
    double x = (double)m / p10[frac];
    *v = neg ? -x : x;
    return 0;
}

typedef struct matrix {
    float *v;
    size_t rows, cap;
} matrix;

/*
 * Rows of comma-separated floats from path into m. *cols fixes the width
 * (0: this file's first row sets it, remembered in shape_path/shape_line).
 */
static int read_matrix(const char *path, matrix *m, uint32_t *cols, char *shape_path,
                       size_t shape_len, size_t *shape_line, char *err, size_t errlen)
{
    char *data;
    size_t len;
    int rc = read_file(path, &data, &len, err, errlen);
    if (rc) return rc;
    lines L = {path, data, data + len, 0, 0};
    char *line;
    int more;
    while ((more = next_line(&L, &line, err, errlen)) == 1) {
        /* Split in place. */
        size_t nf = 1;
        for (const char *c = line; *c; c++)
            nf += *c == ',';
        if (!*cols) {
            if (nf > 1u << 20) {
                rc = perr(err, errlen, path, L.lineno, 0, "more than %u values in a row", 1u << 20);
                break;
            }
            *cols = (uint32_t)nf;
            snprintf(shape_path, shape_len, "%s", path);
            *shape_line = L.lineno;
        }
        if (nf != *cols) {
            rc = perr(err, errlen, path, L.lineno, nf < *cols ? nf + 1 : (size_t)*cols + 1,
                      "%zu values, expected %u (as in %s:%zu)", nf, *cols, shape_path, *shape_line);
            break;
        }
        if (m->rows == m->cap) {
            size_t cap = m->cap ? m->cap * 2 : 1024;
            if (cap > (SIZE_MAX / sizeof(float)) / *cols || cap > UINT32_MAX) {
                rc = perr(err, errlen, path, L.lineno, 0, "too many rows");
                break;
            }
            float *p = realloc(m->v, cap * *cols * sizeof *p);
            if (!p) {
                rc = ps_fail(err, errlen, PS_ENOMEM, "%s: out of memory", path);
                break;
            }
            m->v = p;
            m->cap = cap;
        }
        float *row = m->v + m->rows * *cols;
        char *f = line;
        for (size_t j = 0; j < nf && !rc; j++) {
            char *comma = strchr(f, ',');
            if (comma) *comma = '\0';
            char *s = trim(f);
            if (!*s) {
                rc = perr(err, errlen, path, L.lineno, j + 1, "empty value");
                break;
            }
            char *end;
            errno = 0;
            double v;
            if (!fast_decimal(s, &v)) {
                row[j] = (float)v;
                f = comma ? comma + 1 : f + strlen(f);
                continue;
            }
            v = strtod(s, &end);
            if (end == s || *end)
                rc = perr(err, errlen, path, L.lineno, j + 1, "'%s' is not a number", s);
            else if (isnan(v) || (isinf(v) && errno != ERANGE))
                rc = perr(err, errlen, path, L.lineno, j + 1,
                          "'%s' is not finite (NaN and infinity are refused)", s);
            else if (isinf(v) || fabs(v) > FLT_MAX)
                rc = perr(err, errlen, path, L.lineno, j + 1,
                          "'%s' is out of the range of a 32-bit float", s);
            else
                row[j] = (float)v;
            f = comma ? comma + 1 : f + strlen(f);
        }
        if (rc) break;
        m->rows++;
    }
    if (!rc && more < 0) rc = more;
    free(data);
    if (rc < 0) return rc;
    if (m->rows == 0) return perr(err, errlen, path, 0, 0, "no rows");
    return 0;
}

static int read_labels(const char *path, uint32_t rows, uint8_t **out, char *err, size_t errlen)
{
    char *data;
    size_t len;
    int rc = read_file(path, &data, &len, err, errlen);
    if (rc) return rc;
    uint8_t *lab = malloc(rows ? rows : 1);
    if (!lab) {
        free(data);
        return ps_fail(err, errlen, PS_ENOMEM, "%s: out of memory", path);
    }
    lines L = {path, data, data + len, 0, 0};
    char *line;
    uint32_t n = 0;
    int more;
    while ((more = next_line(&L, &line, err, errlen)) == 1) {
        char *s = trim(line);
        if (strcmp(s, "0") && strcmp(s, "1")) {
            rc = perr(err, errlen, path, L.lineno, 1, "label '%s' is not 0 or 1", s);
            break;
        }
        if (n == rows) {
            rc = perr(err, errlen, path, L.lineno, 0, "more labels than the %u test rows", rows);
            break;
        }
        lab[n++] = (uint8_t)(s[0] - '0');
    }
    if (!rc && more < 0) rc = more;
    free(data);
    if (rc == 0 && n != rows)
        rc = perr(err, errlen, path, 0, 0, "%u labels for %u test rows", n, rows);
    if (rc < 0) {
        free(lab);
        return rc;
    }
    *out = lab;
    return 0;
}

/* ------------------------------------------------------- interpretation */

static int parse_u32(const char *s, const char **end, uint32_t *v)
{
    if (*s < '0' || *s > '9') return -1;
    uint64_t x = 0;
    while (*s >= '0' && *s <= '9') {
        x = x * 10 + (uint64_t)(*s - '0');
        if (x > UINT32_MAX) return -1;
        s++;
    }
    *end = s;
    *v = (uint32_t)x;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The event holding rows [a, b], or UINT32_MAX. */
static uint32_t find_event(const ps_sim_entity *e, uint32_t a, uint32_t b)
{
    uint32_t lo = 0, hi = e->n_events;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (e->events[mid].end < a)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < e->n_events && e->events[lo].start <= a && b <= e->events[lo].end) return lo;
    return UINT32_MAX;
}

static int read_interpretation(const char *path, ps_sim_entity *e, uint32_t test_rows,
                               uint32_t cols, char *err, size_t errlen)
{
    char *data;
    size_t len;
    int rc = read_file(path, &data, &len, err, errlen);
    if (rc) return rc;
    lines L = {path, data, data + len, 0, 0};
    char *line;
    uint64_t *pairs = NULL; /* event << 32 | metric */
    size_t n = 0, cap = 0;
    int more;
    while ((more = next_line(&L, &line, err, errlen)) == 1) {
        const char *s = trim(line), *q;
        uint32_t a, b;
        if (parse_u32(s, &q, &a) || *q != '-') {
            rc = perr(err, errlen, path, L.lineno, 1, "expected start-end:m,m,... not '%s'", s);
            break;
        }
        if (parse_u32(q + 1, &q, &b) || *q != ':') {
            rc = perr(err, errlen, path, L.lineno, 1, "expected start-end:m,m,... not '%s'", s);
            break;
        }
        if (a > b || b >= test_rows) {
            rc = perr(err, errlen, path, L.lineno, 1,
                      "rows %u-%u are not a range within the %u test rows", a, b, test_rows);
            break;
        }
        uint32_t ev = find_event(e, a, b);
        if (ev == UINT32_MAX) {
            rc = perr(err, errlen, path, L.lineno, 1,
                      "rows %u-%u are not inside one labelled event", a, b);
            break;
        }
        size_t field = 1;
        q++;
        for (;;) {
            field++;
            uint32_t m;
            const char *r;
            while (*q == ' ')
                q++;
            if (parse_u32(q, &r, &m) || m < 1 || m > cols) {
                rc = perr(err, errlen, path, L.lineno, field, "expected a metric number in [1, %u]",
                          cols);
                break;
            }
            if (n == cap) {
                size_t c2 = cap ? cap * 2 : 256;
                uint64_t *p = realloc(pairs, c2 * sizeof *p);
                if (!p) {
                    rc = ps_fail(err, errlen, PS_ENOMEM, "%s: out of memory", path);
                    break;
                }
                pairs = p;
                cap = c2;
            }
            pairs[n++] = (uint64_t)ev << 32 | (m - 1);
            q = r;
            while (*q == ' ')
                q++;
            if (!*q) break;
            if (*q != ',') {
                rc = perr(err, errlen, path, L.lineno, field, "expected ',' or the line's end");
                break;
            }
            q++;
        }
        if (rc) break;
    }
    if (!rc && more < 0) rc = more;
    free(data);
    if (rc < 0) {
        free(pairs);
        return rc;
    }
    qsort(pairs, n, sizeof *pairs, cmp_u64);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || pairs[i] != pairs[i - 1]) pairs[k++] = pairs[i];
    e->metric_start = calloc((size_t)e->n_events + 1, sizeof *e->metric_start);
    e->metrics = malloc((k ? k : 1) * sizeof *e->metrics);
    if (!e->metric_start || !e->metrics) {
        free(pairs);
        return ps_fail(err, errlen, PS_ENOMEM, "%s: out of memory", path);
    }
    for (size_t i = 0; i < k; i++) {
        e->metric_start[(pairs[i] >> 32) + 1]++;
        e->metrics[i] = (uint32_t)(pairs[i] & 0xffffffffu);
    }
    for (uint32_t i = 0; i < e->n_events; i++)
        e->metric_start[i + 1] += e->metric_start[i];
    free(pairs);
    return 0;
}

/* ---------------------------------------------------------- directories */

typedef struct listing {
    char **stem, **file; /* NAME, NAME.txt or NAME.txt.gz */
    size_t n, cap;
} listing;

static void listing_free(listing *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->stem[i]);
        free(l->file[i]);
    }
    free(l->stem);
    free(l->file);
    memset(l, 0, sizeof *l);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static size_t find_stem(const listing *l, const char *stem)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->stem[i], stem)) return i;
    return SIZE_MAX;
}

/* Natural order: digit runs compare as numbers, the rest bytewise. */
static int natural_cmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
            while (*a == '0')
                a++;
            while (*b == '0')
                b++;
            size_t la = 0, lb = 0;
            while (a[la] >= '0' && a[la] <= '9')
                la++;
            while (b[lb] >= '0' && b[lb] <= '9')
                lb++;
            if (la != lb) return la < lb ? -1 : 1;
            int c = strncmp(a, b, la);
            if (c) return c;
            a += la;
            b += lb;
            continue;
        }
        if (*a != *b) return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
        a++;
        b++;
    }
    if (*a || *b) return *a ? 1 : -1;
    return 0;
}

static int cmp_names(const void *x, const void *y)
{
    const char *a = *(char *const *)x, *b = *(char *const *)y;
    int c = natural_cmp(a, b);
    return c ? c : strcmp(a, b);
}

static char *join(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + (c ? strlen(c) : 0) + 3;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s%s%s", a, b, c ? "/" : "", c ? c : "");
    return s;
}

/* The .txt / .txt.gz files of dir. missing_ok: a missing dir is an empty listing. */
static int list_dir(const char *dir, listing *l, int missing_ok, int *exists, char *err,
                    size_t errlen)
{
    memset(l, 0, sizeof *l);
    if (exists) *exists = 0;
    errno = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (missing_ok && errno == ENOENT) return 0;
        return ps_fail(err, errlen, PS_SIMDATA_EIO, "%s: cannot open the directory: %s", dir,
                       strerror(errno));
    }
    if (exists) *exists = 1;
    int rc = 0;
    struct dirent *ent;
    while (!rc && (ent = readdir(d))) {
        const char *name = ent->d_name;
        if (name[0] == '.') continue;
        size_t cut;
        if (ends_with(name, ".txt.gz"))
            cut = strlen(name) - 7;
        else if (ends_with(name, ".txt"))
            cut = strlen(name) - 4;
        else
            continue;
        if (cut == 0) continue;
        char *path = join(dir, name, NULL);
        struct stat st;
        if (!path) {
            rc = ps_fail(err, errlen, PS_ENOMEM, "out of memory");
            break;
        }
        int regular = stat(path, &st) == 0 && S_ISREG(st.st_mode);
        free(path);
        if (!regular) continue;
        char *stem = malloc(cut + 1);
        char *file = malloc(strlen(name) + 1);
        if (!stem || !file) {
            free(stem);
            free(file);
            rc = ps_fail(err, errlen, PS_ENOMEM, "out of memory");
            break;
        }
        memcpy(stem, name, cut);
        stem[cut] = '\0';
        memcpy(file, name, strlen(name) + 1);
        size_t dup = find_stem(l, stem);
        if (dup != SIZE_MAX) {
            rc = ps_fail(err, errlen, PS_SIMDATA_EPARSE,
                         "%s: both %s and %s are there: which one is meant?", dir, l->file[dup],
                         file);
            free(stem);
            free(file);
            break;
        }
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 16;
            char **s2 = realloc(l->stem, cap * sizeof *s2);
            if (s2) l->stem = s2;
            char **f2 = s2 ? realloc(l->file, cap * sizeof *f2) : NULL;
            if (f2) l->file = f2;
            if (!s2 || !f2) {
                free(stem);
                free(file);
                rc = ps_fail(err, errlen, PS_ENOMEM, "out of memory");
                break;
            }
            l->cap = cap;
        }
        l->stem[l->n] = stem;
        l->file[l->n] = file;
        l->n++;
    }
    closedir(d);
    if (rc) listing_free(l);
    return rc;
}

/* ----------------------------------------------------------------- load */

int ps_sim_dataset_skip_test(ps_sim_dataset *d, uint32_t rows, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < d->n; i++)
        if (rows >= d->series[i].test_rows)
            return ps_fail(err, errlen, PS_EINVAL,
                           "cannot start at test row %u: %s has %u test rows", rows,
                           d->entity[i].name, d->series[i].test_rows);
    if (rows == 0) return 0;
    /* Allocate everything first, so that a failure leaves d as it was. */
    size_t n = d->n;
    float **train = calloc(n ? n : 1, sizeof *train), **test = calloc(n ? n : 1, sizeof *test);
    uint8_t **labels = calloc(n ? n : 1, sizeof *labels);
    ps_sim_event **events = calloc(n ? n : 1, sizeof *events);
    int ok = train && test && labels && events;
    for (size_t i = 0; ok && i < n; i++) {
        const ps_sim_series *s = &d->series[i];
        size_t rest = s->test_rows - rows;
        train[i] = malloc(((size_t)s->train_rows + rows) * s->cols * sizeof **train);
        test[i] = malloc(rest * s->cols * sizeof **test);
        labels[i] = malloc(rest);
        events[i] =
            malloc((ps_sim_label_events(s->labels + rows, rest, NULL) + 1) * sizeof **events);
        ok = train[i] && test[i] && labels[i] && events[i];
    }
    if (!ok) {
        for (size_t i = 0; train && test && labels && events && i < n; i++) {
            free(train[i]);
            free(test[i]);
            free(labels[i]);
            free(events[i]);
        }
        free(train);
        free(test);
        free(labels);
        free(events);
        return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    }
    d->n_events = 0;
    d->has_interpretation = 0;
    for (size_t i = 0; i < n; i++) {
        ps_sim_series *s = &d->series[i];
        ps_sim_entity *e = &d->entity[i];
        size_t row = (size_t)s->cols * sizeof **train, rest = s->test_rows - rows;
        if (s->train_rows) memcpy(train[i], s->train, s->train_rows * row);
        memcpy((char *)train[i] + s->train_rows * row, s->test, rows * row);
        memcpy(test[i], (const char *)s->test + rows * row, rest * row);
        memcpy(labels[i], s->labels + rows, rest);
        free((void *)s->train);
        free((void *)s->test);
        free((void *)s->labels);
        s->train = train[i];
        s->test = test[i];
        s->labels = labels[i];
        s->train_rows += rows;
        s->test_rows = (uint32_t)rest;
        free(e->events);
        free(e->metric_start);
        free(e->metrics);
        e->metric_start = e->metrics = NULL;
        e->events = events[i];
        e->n_events = (uint32_t)ps_sim_label_events(labels[i], rest, e->events);
        d->n_events += e->n_events;
    }
    free(train);
    free(test);
    free(labels);
    free(events);
    return 0;
}

void ps_sim_dataset_free(ps_sim_dataset *d)
{
    if (!d) return;
    for (uint32_t i = 0; i < d->n; i++) {
        if (d->series) {
            free((void *)d->series[i].train);
            free((void *)d->series[i].test);
            free((void *)d->series[i].labels);
        }
        if (d->entity) {
            free(d->entity[i].name);
            free(d->entity[i].events);
            free(d->entity[i].metric_start);
            free(d->entity[i].metrics);
        }
    }
    free(d->series);
    free(d->entity);
    memset(d, 0, sizeof *d);
}

static int load_entity(ps_sim_dataset *d, uint32_t i, const char *dir, const listing *ls,
                       char *shape_path, size_t shape_len, size_t *shape_line, char *err,
                       size_t errlen)
{
    ps_sim_series *s = &d->series[i];
    ps_sim_entity *e = &d->entity[i];
    const char *name = e->name;
    char *paths[3] = {NULL, NULL, NULL};
    static const char *const sub[3] = {"train", "test", "test_label"};
    for (int k = 0; k < 3; k++) {
        size_t j = find_stem(&ls[k], name);
        paths[k] = join(dir, sub[k], ls[k].file[j]);
        if (!paths[k]) {
            for (int m = 0; m < k; m++)
                free(paths[m]);
            return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
        }
    }
    matrix train = {0}, test = {0};
    uint8_t *labels = NULL;
    int rc =
        read_matrix(paths[0], &train, &d->cols, shape_path, shape_len, shape_line, err, errlen);
    if (!rc)
        rc = read_matrix(paths[1], &test, &d->cols, shape_path, shape_len, shape_line, err, errlen);
    if (!rc) rc = read_labels(paths[2], (uint32_t)test.rows, &labels, err, errlen);
    for (int k = 0; k < 3; k++)
        free(paths[k]);
    s->train = train.v;
    s->test = test.v;
    s->labels = labels;
    if (rc) return rc;
    s->name = e->name;
    s->cols = d->cols;
    s->train_rows = (uint32_t)train.rows;
    s->test_rows = (uint32_t)test.rows;
    size_t ne = ps_sim_label_events(labels, test.rows, NULL);
    e->events = malloc((ne ? ne : 1) * sizeof *e->events);
    if (!e->events) return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    e->n_events = (uint32_t)ps_sim_label_events(labels, test.rows, e->events);
    d->n_events += e->n_events;
    return 0;
}

int ps_sim_dataset_load(const char *dir, ps_sim_dataset *out, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    if (!out) return ps_fail(err, errlen, PS_EINVAL, "null argument");
    memset(out, 0, sizeof *out);
    if (!dir) return ps_fail(err, errlen, PS_EINVAL, "no dataset directory");
    static const char *const sub[4] = {"train", "test", "test_label", "interpretation_label"};
    listing ls[4];
    memset(ls, 0, sizeof ls);
    int rc = 0;
    for (int k = 0; k < 4 && !rc; k++) {
        char *path = join(dir, sub[k], NULL);
        if (!path) {
            rc = ps_fail(err, errlen, PS_ENOMEM, "out of memory");
            break;
        }
        rc = list_dir(path, &ls[k], k == 3, k == 3 ? &out->has_interpretation : NULL, err, errlen);
        free(path);
    }
    /* Every NAME of train/, test/, test_label/ in all three. */
    for (int k = 0; k < 3 && !rc; k++)
        for (size_t i = 0; i < ls[k].n && !rc; i++)
            for (int m = 0; m < 3 && !rc; m++)
                if (find_stem(&ls[m], ls[k].stem[i]) == SIZE_MAX)
                    rc =
                        ps_fail(err, errlen, PS_SIMDATA_EPARSE, "%s/%s/%s has no %s/%s/%s.txt[.gz]",
                                dir, sub[k], ls[k].file[i], dir, sub[m], ls[k].stem[i]);
    if (!rc && ls[0].n == 0)
        rc = ps_fail(err, errlen, PS_SIMDATA_EPARSE, "%s/train: no NAME.txt or NAME.txt.gz files",
                     dir);
    if (!rc && ls[0].n > UINT32_MAX / 2)
        rc = ps_fail(err, errlen, PS_SIMDATA_EPARSE, "%s: too many entities", dir);
    char **names = NULL;
    if (!rc) {
        names = malloc(ls[0].n * sizeof *names);
        out->series = calloc(ls[0].n, sizeof *out->series);
        out->entity = calloc(ls[0].n, sizeof *out->entity);
        if (!names || !out->series || !out->entity)
            rc = ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    }
    if (!rc) {
        memcpy(names, ls[0].stem, ls[0].n * sizeof *names);
        qsort(names, ls[0].n, sizeof *names, cmp_names);
        out->n = (uint32_t)ls[0].n;
        for (uint32_t i = 0; i < out->n && !rc; i++) {
            out->entity[i].name = malloc(strlen(names[i]) + 1);
            if (!out->entity[i].name)
                rc = ps_fail(err, errlen, PS_ENOMEM, "out of memory");
            else
                memcpy(out->entity[i].name, names[i], strlen(names[i]) + 1);
        }
    }
    free(names);
    char shape_path[4096] = "";
    size_t shape_line = 0;
    for (uint32_t i = 0; i < out->n && !rc; i++)
        rc = load_entity(out, i, dir, ls, shape_path, sizeof shape_path, &shape_line, err, errlen);
    for (uint32_t i = 0; i < out->n && !rc; i++) {
        size_t j = find_stem(&ls[3], out->entity[i].name);
        if (j == SIZE_MAX) continue;
        char *path = join(dir, sub[3], ls[3].file[j]);
        if (!path) {
            rc = ps_fail(err, errlen, PS_ENOMEM, "out of memory");
            break;
        }
        rc = read_interpretation(path, &out->entity[i], out->series[i].test_rows, out->cols, err,
                                 errlen);
        free(path);
    }
    for (int k = 0; k < 4; k++)
        listing_free(&ls[k]);
    if (rc) ps_sim_dataset_free(out);
    return rc;
}
