/*
 * prom_text.c - one value out of a Prometheus text exposition (prom_text.h).
 */
#include "prom_text.h"

#include <stdlib.h>
#include <string.h>

int ps_prom_value(const char *text, const char *series, double *v)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p;) {
        if (!strncmp(p, series, n) && p[n] == ' ') {
            char *end;
            *v = strtod(p + n + 1, &end);
            return end > p + n + 1 ? 0 : -1;
        }
        p = strchr(p, '\n');
        if (p) p++;
    }
    return -1;
}
