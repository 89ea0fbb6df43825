/*
 * onset.c - a score's onsets (onset.h).
 */
#include "onset.h"

#include <stdlib.h>

int ps_onset_init(ps_onset *o, size_t rows)
{
    *o = (ps_onset){.rows = rows};
    if (rows == 0) return -1;
    o->at = malloc((rows + 1) * sizeof *o->at);
    o->v = malloc((rows + 1) * sizeof *o->v);
    if (!o->at || !o->v) {
        ps_onset_free(o);
        return -1;
    }
    return 0;
}

void ps_onset_free(ps_onset *o)
{
    free(o->at);
    free(o->v);
    o->at = NULL;
    o->v = NULL;
}

double ps_onset_next(ps_onset *o, double x)
{
    size_t cap = o->rows + 1, t = o->row++;
    /* Candidates older than the window leave from the front. */
    while (o->n && o->at[o->head] + o->rows < t) {
        o->head = (o->head + 1) % cap;
        o->n--;
    }
    /* Before `rows` rows have been seen, the rows before the first count as 0. */
    double high = o->n ? o->v[o->head] : 0;
    if (t < o->rows && high < 0) high = 0;
    double onset = x > high ? x : 0;
    /* A candidate no higher than x can never be a maximum again. */
    while (o->n && o->v[(o->head + o->n - 1) % cap] <= x)
        o->n--;
    size_t tail = (o->head + o->n) % cap;
    o->at[tail] = t;
    o->v[tail] = x;
    o->n++;
    return onset;
}
