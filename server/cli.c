#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ps_parse_long(const char *flag, const char *s, long lo, long hi, long *out, char *err,
                  size_t errlen)
{
    if (!s || !*s) {
        snprintf(err, errlen, "%s needs a value", flag);
        return -1;
    }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s) {
        snprintf(err, errlen, "%s: '%s' is not an integer", flag, s);
        return -1;
    }
    if (v < lo || v > hi) {
        snprintf(err, errlen, "%s: %ld is out of range %ld..%ld", flag, v, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int ps_parse_double(const char *flag, const char *s, double lo, double hi, double *out, char *err,
                    size_t errlen)
{
    if (!s || !*s) {
        snprintf(err, errlen, "%s needs a value", flag);
        return -1;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !isfinite(v)) {
        snprintf(err, errlen, "%s: '%s' is not a finite number", flag, s);
        return -1;
    }
    if (v < lo || v > hi) {
        snprintf(err, errlen, "%s: %g is out of range %g..%g", flag, v, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int ps_parse_long_list(const char *flag, const char *s, long lo, long hi, long *out, size_t cap,
                       char *err, size_t errlen)
{
    if (!s || !*s) {
        snprintf(err, errlen, "%s needs a comma-separated list", flag);
        return -1;
    }
    size_t n = 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[32];
        if (len == 0 || len >= sizeof item) {
            snprintf(err, errlen, "%s: bad list '%s'", flag, s);
            return -1;
        }
        if (n == cap) {
            snprintf(err, errlen, "%s: at most %zu values", flag, cap);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = 0;
        if (ps_parse_long(flag, item, lo, hi, &out[n], err, errlen)) return -1;
        n++;
        if (!comma) break;
        p = comma + 1;
    }
    return (int)n;
}

int ps_parse_backend(const char *flag, const char *s, ps_backend_kind *out, char *err,
                     size_t errlen)
{
    if (s && !strcmp(s, "cpu")) {
        *out = PS_BACKEND_CPU;
    } else if (s && !strcmp(s, "cuda")) {
        *out = PS_BACKEND_CUDA;
    } else {
        snprintf(err, errlen, "%s: '%s' is not cpu or cuda", flag, s ? s : "");
        return -1;
    }
    return 0;
}
