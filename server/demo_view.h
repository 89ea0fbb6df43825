/*
 * demo_view.h - what `preshift demo` shows while it runs: a screen redrawn
 * in place on a terminal, or a line every few seconds otherwise. Pure
 * formatting into a FILE *: the command gathers the figures, this decides
 * how they read.
 */
#ifndef PRESHIFT_DEMO_VIEW_H
#define PRESHIFT_DEMO_VIEW_H

#include "sim_preshift.h"

#include <stdint.h>
#include <stdio.h>

typedef struct ps_demo_view {
    /* The cluster. */
    uint32_t processors, workloads, metrics, entities;
    const char *dataset; /* its name */
    uint64_t seed;
    double tick_seconds;
    const char *const *entity_names; /* [entities]: processor p replays p mod entities */
    /* Now. */
    const ps_sim_live *live;
    double elapsed, budget;  /* wall seconds since the start, and the limit */
    double ticks_per_s;      /* over the last redraw interval */
    double heartbeats_per_s; /* scored, over the same interval */
    double reactive_minutes; /* what reactive failover had lost by this tick */
    double oracle_minutes;   /* and the oracle */
} ps_demo_view;

/* The whole screen, from the top left (ANSI: home, clear). */
void ps_demo_view_screen(FILE *out, const ps_demo_view *v);
/* One line for a log. */
void ps_demo_view_line(FILE *out, const ps_demo_view *v);

/* x with thousands separators ("12,345"), rounded to an integer. */
const char *ps_demo_count(char *buf, size_t len, double x);

#endif
