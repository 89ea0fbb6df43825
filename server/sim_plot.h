/*
 * sim_plot.h - the plot of `preshift sim`: a PNG with two panels over
 * simulated time, cumulative interrupted workload-minutes and cumulative
 * unnecessary shifts, one line per policy.
 *
 * Made by gnuplot (Debian: gnuplot-nox): a data file and a script are
 * written into a fresh temporary directory ($TMPDIR or /tmp), gnuplot runs
 * on them (posix_spawnp, found on PATH, its output kept in that directory
 * for the error message), the image is copied next to the destination and
 * renamed over it, so that the destination is a whole image or untouched;
 * the temporary directory is removed in every case.
 */
#ifndef PRESHIFT_SIM_PLOT_H
#define PRESHIFT_SIM_PLOT_H

#include <stddef.h>
#include <stdint.h>

typedef struct ps_sim_plot_line {
    const char *name;
    const double *cum_minutes;       /* [ticks]: interrupted workload-minutes after each tick */
    const uint32_t *cum_unnecessary; /* [ticks]: unnecessary shifts decided by each tick */
} ps_sim_plot_line;

enum {
    PS_SIM_PLOT_NO_GNUPLOT = 1, /* gnuplot is not on PATH: nothing was written */
};

/*
 * Plot n lines of `ticks` ticks of tick_seconds each into png, under
 * `title`. 0 when written, PS_SIM_PLOT_NO_GNUPLOT, or -1 with the reason in
 * err (a file that could not be written, gnuplot's own error).
 */
int ps_sim_plot(const char *png, const char *title, const ps_sim_plot_line *lines, size_t n,
                uint32_t ticks, double tick_seconds, char *err, size_t errlen);

#endif
