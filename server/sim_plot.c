/*
 * sim_plot.c - the PNG of `preshift sim`, drawn by gnuplot (sim_plot.h).
 */
#include "sim_plot.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int failf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int failf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* s as a gnuplot single-quoted string ('' stands for '); -1 for a control character. */
static int put_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c < 0x20 || *c == 0x7f) return -1;
        if (*c == '\'') fputc('\'', f);
        fputc(*c, f);
    }
    fputc('\'', f);
    return 0;
}

static const char *color_of(const char *name)
{
    static const char *const known[][2] = {
        {"reactive", "#d62728"},
        {"naive", "#ff7f0e"},
        {"oracle", "#2ca02c"},
        {"preshift", "#1f77b4"},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(name, known[i][0])) return known[i][1];
    return NULL;
}

static int write_data(const char *path, const ps_sim_plot_line *lines, size_t n, uint32_t ticks,
                      double unit, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) return failf(err, errlen, "%s: %s", path, strerror(errno));
    fprintf(f, "# time");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "\t%s_minutes\t%s_unnecessary", lines[i].name, lines[i].name);
    fprintf(f, "\n0");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "\t0\t0");
    fputc('\n', f);
    for (uint32_t t = 0; t < ticks; t++) {
        fprintf(f, "%.10g", (double)(t + 1) * unit);
        for (size_t i = 0; i < n; i++)
            fprintf(f, "\t%.10g\t%u", lines[i].cum_minutes[t],
                    (unsigned)lines[i].cum_unnecessary[t]);
        fputc('\n', f);
    }
    int bad = ferror(f);
    if (fclose(f) || bad) return failf(err, errlen, "%s: write error", path);
    return 0;
}

/* Last line first, so that the first (the baseline, dashed) is drawn on top ('set key invert'). */
static void put_plot(FILE *f, const char *data, const ps_sim_plot_line *lines, size_t n, int col0)
{
    fprintf(f, "plot ");
    for (size_t k = 0; k < n; k++) {
        size_t i = n - 1 - k;
        if (k) fprintf(f, ", \\\n     ");
        put_quoted(f, k ? "" : data);
        fprintf(f, " using 1:%d with lines lw 2", col0 + 2 * (int)i);
        const char *c = color_of(lines[i].name);
        if (c) fprintf(f, " lc rgb '%s'", c);
        if (!strcmp(lines[i].name, "reactive")) fprintf(f, " dt 2");
        fprintf(f, " title ");
        if (put_quoted(f, lines[i].name)) fprintf(f, "''");
    }
    fputc('\n', f);
}

static int write_script(const char *path, const char *data, const char *png, const char *title,
                        const ps_sim_plot_line *lines, size_t n, double xmax, const char *unit,
                        char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) return failf(err, errlen, "%s: %s", path, strerror(errno));
    int bad = 0;
    fprintf(f, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
               "  set terminal pngcairo size 1100,850 noenhanced font 'sans,10'\n"
               "} else {\n"
               "  set terminal png size 1100,850 noenhanced\n"
               "}\n"
               "set output ");
    bad |= put_quoted(f, png);
    fprintf(f, "\nset multiplot layout 2,1 title ");
    bad |= put_quoted(f, title);
    fprintf(f,
            "\nset grid\nset key top left invert\nset xrange [0:%.10g]\nset yrange [0:*]\n"
            "set xlabel 'simulated time (%s)'\n",
            xmax > 0 ? xmax : 1, unit);
    fprintf(f, "set title 'cumulative interrupted workload-minutes'\n"
               "set ylabel 'workload-minutes'\n");
    put_plot(f, data, lines, n, 2);
    fprintf(f, "set title 'cumulative unnecessary shifts'\nset ylabel 'shifts'\n");
    put_plot(f, data, lines, n, 3);
    fprintf(f, "unset multiplot\nset output\n");
    bad |= ferror(f);
    if (fclose(f) || bad)
        return failf(err, errlen, "%s: write error (or a control character in a name)", path);
    return 0;
}

/* The first line of gnuplot's output, for the error message. */
static void first_line(const char *path, char *buf, size_t len)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[strspn(line, " \t^")]) {
            snprintf(buf, len, "%s", line);
            break;
        }
    }
    fclose(f);
}

/* Run gnuplot on script; 0, PS_SIM_PLOT_NO_GNUPLOT, or -1. */
static int run_gnuplot(const char *script, const char *log, char *err, size_t errlen)
{
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa)) return failf(err, errlen, "posix_spawn: out of memory");
    int rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!rc) rc = posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (!rc) rc = posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid = 0;
    char *argv[] = {"gnuplot", (char *)script, NULL};
    if (!rc) rc = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc == ENOENT) return PS_SIM_PLOT_NO_GNUPLOT;
    if (rc) return failf(err, errlen, "cannot run gnuplot: %s", strerror(rc));
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return failf(err, errlen, "waitpid: %s", strerror(errno));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) return PS_SIM_PLOT_NO_GNUPLOT;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    char line[512];
    first_line(log, line, sizeof line);
    if (WIFSIGNALED(status))
        return failf(err, errlen, "gnuplot was killed by signal %d%s%s", WTERMSIG(status),
                     line[0] ? ": " : "", line);
    return failf(err, errlen, "gnuplot failed (exit %d)%s%s", WEXITSTATUS(status),
                 line[0] ? ": " : "", line);
}

/* Copy src next to dst and rename it over dst. */
static int install(const char *src, const char *dst, char *err, size_t errlen)
{
    FILE *in = fopen(src, "rb");
    if (!in) return failf(err, errlen, "gnuplot wrote no image");
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.%ld.tmp", dst, (long)getpid()) >= (int)sizeof tmp) {
        fclose(in);
        return failf(err, errlen, "%s: name too long", dst);
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0) {
        int e = errno;
        fclose(in);
        return failf(err, errlen, "%s: %s", dst, strerror(e));
    }
    FILE *out = fdopen(fd, "wb");
    if (!out) {
        close(fd);
        unlink(tmp);
        fclose(in);
        return failf(err, errlen, "%s: out of memory", dst);
    }
    char buf[65536];
    size_t k, total = 0;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0) {
        fwrite(buf, 1, k, out);
        total += k;
    }
    int bad = ferror(in) || ferror(out);
    fclose(in);
    if (fclose(out) || bad || total == 0) {
        unlink(tmp);
        return failf(err, errlen, total ? "%s: write error" : "%s: gnuplot wrote an empty image",
                     dst);
    }
    if (rename(tmp, dst)) {
        int e = errno;
        unlink(tmp);
        return failf(err, errlen, "%s: %s", dst, strerror(e));
    }
    return 0;
}

int ps_sim_plot(const char *png, const char *title, const ps_sim_plot_line *lines, size_t n,
                uint32_t ticks, double tick_seconds, char *err, size_t errlen)
{
    if (!png || !*png || n == 0) return failf(err, errlen, "nothing to plot");
    for (const unsigned char *c = (const unsigned char *)png; *c; c++)
        if (*c < 0x20 || *c == 0x7f)
            return failf(err, errlen, "the plot's file name has a control character");
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s/preshift-sim-XXXXXX", base) >= (int)sizeof dir)
        return failf(err, errlen, "TMPDIR is too long");
    if (!mkdtemp(dir)) return failf(err, errlen, "%s: %s", dir, strerror(errno));
    char data[4200], script[4200], log[4200], image[4200];
    snprintf(data, sizeof data, "%s/data.tsv", dir);
    snprintf(script, sizeof script, "%s/plot.gp", dir);
    snprintf(log, sizeof log, "%s/gnuplot.log", dir);
    snprintf(image, sizeof image, "%s/plot.png", dir);

    double span = ticks * tick_seconds;
    double unit_s = span >= 2 * 86400 ? 86400 : span >= 2 * 3600 ? 3600 : 60;
    const char *unit = unit_s == 86400 ? "days" : unit_s == 3600 ? "hours" : "minutes";
    int rc = write_data(data, lines, n, ticks, tick_seconds / unit_s, err, errlen);
    if (!rc)
        rc = write_script(script, data, image, title, lines, n, span / unit_s, unit, err, errlen);
    if (!rc) rc = run_gnuplot(script, log, err, errlen);
    if (!rc) rc = install(image, png, err, errlen);
    if (rc == PS_SIM_PLOT_NO_GNUPLOT)
        snprintf(err, errlen, "gnuplot is not installed (Debian: gnuplot-nox)");
    unlink(data);
    unlink(script);
    unlink(log);
    unlink(image);
    rmdir(dir);
    return rc;
}
