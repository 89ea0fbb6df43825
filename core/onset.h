/*
 * onset.h - a score's onsets: the score at a row where it is higher than at
 * every one of the previous `rows` rows, 0 elsewhere.
 *
 * A PFP stays high for as long as a degradation lasts; a reader who acts
 * once per incident (a pager, NAB's scoring, which counts the first
 * detection in a window and charges every other alarm) wants the rows where
 * the risk reaches a new height, not every row it stays there. Causal: the
 * onset of row t depends on the scores of rows <= t only. O(1) amortized a
 * row (a monotonic queue of the window's candidates for its maximum).
 */
#ifndef PRESHIFT_ONSET_H
#define PRESHIFT_ONSET_H

#include <stddef.h>

typedef struct ps_onset {
    size_t rows; /* the window */
    size_t row;  /* rows seen */
    size_t *at;  /* [rows + 1] ring: rows of the candidates, oldest first */
    double *v;   /* their scores, decreasing */
    size_t head, n;
} ps_onset;

/* 0, or -1 when out of memory (rows >= 1). */
int ps_onset_init(ps_onset *o, size_t rows);
void ps_onset_free(ps_onset *o);

/* The onset value of the next row, whose score is x (rows before the first count as 0). */
double ps_onset_next(ps_onset *o, double x);

#endif
