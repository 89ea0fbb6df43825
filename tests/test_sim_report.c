/*
 * test_sim_report.c - the report of `preshift sim` (server/sim_report.h):
 * percentiles against hand-computed values, the reductions and the share
 * of the oracle's with their undefined cases, JSON numbers (shortest
 * round-trip, null for NAN and infinities), a whole JSON line with the
 * edge cases of a run (no averted failure, no lead time, truncation), the
 * table's dashes, the plot refusing names gnuplot could not read, and the
 * thresholds' trajectory summarized per class (start, end, range, changes
 * by cause) with its JSON member.
 */
#include "server/sim_plot.h"
#include "server/sim_report.h"
#include "server/sim_thresholds.h"
#include "testutil.h"

#include <string.h>

static void test_percentile(void)
{
    CHECK(isnan(ps_sim_percentile(NULL, 0, 0.5)));
    uint32_t one[] = {7};
    CHECK_NEAR(ps_sim_percentile(one, 1, 0), 7, 0);
    CHECK_NEAR(ps_sim_percentile(one, 1, 0.5), 7, 0);
    CHECK_NEAR(ps_sim_percentile(one, 1, 1), 7, 0);
    /* Unsorted, left alone: sorted 1 2 3 4, h = 3q. */
    uint32_t v[] = {4, 1, 3, 2};
    CHECK_NEAR(ps_sim_percentile(v, 4, 0.5), 2.5, 1e-12);
    CHECK_NEAR(ps_sim_percentile(v, 4, 0.1), 1.3, 1e-12);
    CHECK_NEAR(ps_sim_percentile(v, 4, 0.9), 3.7, 1e-12);
    CHECK_NEAR(ps_sim_percentile(v, 4, 0), 1, 0);
    CHECK_NEAR(ps_sim_percentile(v, 4, 1), 4, 0);
    CHECK(v[0] == 4 && v[1] == 1 && v[2] == 3 && v[3] == 2);
    /* Odd count: the median is the middle value; big values do not overflow. */
    uint32_t w[] = {UINT32_MAX, 0, 5};
    CHECK_NEAR(ps_sim_percentile(w, 3, 0.5), 5, 0);
    CHECK_NEAR(ps_sim_percentile(w, 3, 0.75), (5.0 + UINT32_MAX) / 2, 1e-3);
}

static void test_ratios(void)
{
    CHECK_NEAR(ps_sim_reduction(100, 25), 0.75, 1e-15);
    CHECK_NEAR(ps_sim_reduction(100, 100), 0, 0);
    CHECK_NEAR(ps_sim_reduction(100, 150), -0.5, 1e-15); /* worse than reactive */
    CHECK(isnan(ps_sim_reduction(0, 0)));                /* reactive interrupted nothing */
    CHECK(isnan(ps_sim_reduction(NAN, 3)));              /* reactive not run */
    CHECK_NEAR(ps_sim_oracle_share(100, 20, 60), 0.5, 1e-15);
    CHECK_NEAR(ps_sim_oracle_share(100, 20, 20), 1, 0);
    CHECK_NEAR(ps_sim_oracle_share(100, 20, 100), 0, 0);
    CHECK(isnan(ps_sim_oracle_share(100, 100, 50))); /* the oracle reduced nothing */
    CHECK(isnan(ps_sim_oracle_share(100, NAN, 50))); /* oracle not run */
    CHECK_NEAR(ps_sim_ratio(6, 3), 2, 0);
    CHECK(isnan(ps_sim_ratio(5, 0))); /* never infinite */
    CHECK(isnan(ps_sim_ratio(0, 0)));
}

static void check_number(double x, const char *want)
{
    char buf[64];
    int n = ps_sim_json_number(buf, sizeof buf, x);
    CHECKF(!strcmp(buf, want), "%.17g gave '%s', expected '%s'", x, buf, want);
    CHECK(n == (int)strlen(buf));
}

static void test_json_numbers(void)
{
    check_number(NAN, "null");
    check_number(INFINITY, "null");
    check_number(-INFINITY, "null");
    check_number(0.0, "0");
    check_number(-0.0, "0");
    check_number(3, "3");
    check_number(-42, "-42");
    check_number(635900, "635900");
    check_number(0.1, "0.1");
    check_number(0.75, "0.75");
    check_number(1e300, "1e+300");
    check_number(2.5e-7, "2.5e-07");
    /* Whatever needs 17 digits reads back exactly. */
    double hard[] = {1.0 / 3, 0.9909970121088222, 9007199254740993.0 * 4, 5e-324};
    for (size_t i = 0; i < sizeof hard / sizeof hard[0]; i++) {
        char buf[64];
        ps_sim_json_number(buf, sizeof buf, hard[i]);
        CHECKF(strtod(buf, NULL) == hard[i], "%.17g printed as %s", hard[i], buf);
        CHECKF(strlen(buf) <= 24, "%s is longer than needed", buf);
    }
}

/* A scenario and results of a run by hand, as far as the report reads them. */
static void fake_run(ps_sim_scenario *sc, ps_sim_results *r, uint32_t *lead, uint64_t n_lead)
{
    memset(sc, 0, sizeof *sc);
    sc->cfg = ps_sim_config_default();
    sc->cfg.seed = 18446744073709551615ull;
    sc->P = 20;
    sc->W = 60;
    sc->T = 100;
    memset(r, 0, sizeof *r);
    r->ticks = 100;
    r->tick_seconds = 300;
    r->failures = 9;
    r->failures_partial = 2;
    r->failures_missed = 7;
    r->interruptions = 11;
    r->interrupted_ticks = 30;
    r->interrupted_minutes = 150;
    r->interrupted_crit_minutes = 75.5;
    r->shifts = 8;
    r->committed = 6;
    r->failed = 2;
    r->averted = 3;
    r->unnecessary = 5;
    r->disruptive = 0;
    r->lead_ticks = lead;
    r->n_lead = n_lead;
}

/* The value of "key": in line, or "" (copied into out). */
static const char *value_of(const char *line, const char *key, char *out, size_t len)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    out[0] = '\0';
    if (!p) return out;
    p += strlen(pat);
    size_t n = strcspn(p, ",}");
    if (n >= len) n = len - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

static void test_summary_json(void)
{
    ps_sim_scenario sc;
    ps_sim_results r;
    fake_run(&sc, &r, NULL, 0);
    ps_sim_summary s;
    CHECK(ps_sim_summarize(&s, "naive", &sc, &r) == 0);
    CHECK(isnan(s.lead_median) && isnan(s.lead_p10) && isnan(s.lead_p90));
    CHECK(isnan(s.unnecessary_per_averted)); /* 5 unnecessary, no averted failure */
    CHECK(isnan(s.reduction) && isnan(s.oracle_share));
    ps_sim_summary_compare(&s, 600, 0);
    CHECK_NEAR(s.reduction, 0.75, 1e-15);
    CHECK_NEAR(s.oracle_share, 0.75, 1e-15);

    char line[4096], v[64];
    int n = ps_sim_summary_json(&s, line, sizeof line);
    CHECK(n == (int)strlen(line));
    CHECK(line[0] == '{' && line[n - 1] == '}' && !strchr(line, '\n'));
    CHECK(!strcmp(value_of(line, "policy", v, sizeof v), "\"naive\""));
    CHECK(!strcmp(value_of(line, "seed", v, sizeof v), "18446744073709551615"));
    CHECK(!strcmp(value_of(line, "unnecessary_per_averted", v, sizeof v), "null"));
    CHECK(!strcmp(value_of(line, "lead_minutes_median", v, sizeof v), "null"));
    CHECK(!strcmp(value_of(line, "interrupted_workload_minutes", v, sizeof v), "150"));
    CHECK(!strcmp(value_of(line, "interrupted_crit_minutes", v, sizeof v), "75.5"));
    CHECK(!strcmp(value_of(line, "reduction_vs_reactive", v, sizeof v), "0.75"));
    CHECK(!strcmp(value_of(line, "transfers", v, sizeof v), "8"));
    CHECK(!strcmp(value_of(line, "averted", v, sizeof v), "3"));
    CHECK(!strcmp(value_of(line, "failures_averted", v, sizeof v), "0"));
    const char *keys[] = {"policy",
                          "seed",
                          "processors",
                          "workloads",
                          "ticks",
                          "tick_seconds",
                          "failures",
                          "failures_averted",
                          "failures_partial",
                          "failures_missed",
                          "failures_idle",
                          "interruptions",
                          "interrupted_workload_minutes",
                          "interrupted_crit_minutes",
                          "transfers",
                          "committed",
                          "transfer_failed",
                          "dest_failed",
                          "source_failed",
                          "in_flight",
                          "averted",
                          "unnecessary",
                          "disruptive",
                          "pending",
                          "overloaded",
                          "failovers",
                          "lead_minutes_median",
                          "lead_minutes_p10",
                          "lead_minutes_p90",
                          "unnecessary_per_averted",
                          "reduction_vs_reactive",
                          "share_of_oracle_reduction"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        CHECKF(value_of(line, keys[i], v, sizeof v)[0], "no key %s in %s", keys[i], line);
    CHECK(!strstr(line, "nan") && !strstr(line, "inf"));

    /* Too small a buffer: what it needs, and a terminated prefix. */
    char small[16];
    CHECK(ps_sim_summary_json(&s, small, sizeof small) == n);
    CHECK(strlen(small) == sizeof small - 1 && !strncmp(small, line, sizeof small - 1));
    CHECK(ps_sim_summary_json(&s, NULL, 0) == n);

    /* Lead times in minutes (300-s ticks), the ratio once a failure is averted. */
    uint32_t lead[] = {3, 1, 2};
    fake_run(&sc, &r, lead, 3);
    r.failures_averted = 2;
    CHECK(ps_sim_summarize(&s, "oracle", &sc, &r) == 0);
    CHECK_NEAR(s.lead_median, 10, 0);
    CHECK_NEAR(s.lead_p10, 6, 0);  /* 1.2 ticks: exactly 6 minutes after rounding */
    CHECK_NEAR(s.lead_p90, 14, 0); /* 2.8 ticks: exactly 14 */
    CHECK_NEAR(s.unnecessary_per_averted, 2.5, 0);
    ps_sim_summary_json(&s, line, sizeof line);
    CHECK(!strcmp(value_of(line, "lead_minutes_p10", v, sizeof v), "6"));
    CHECK(!strcmp(value_of(line, "lead_minutes_p90", v, sizeof v), "14"));
    CHECK(!strcmp(value_of(line, "unnecessary_per_averted", v, sizeof v), "2.5"));
    CHECK(!strcmp(value_of(line, "reduction_vs_reactive", v, sizeof v), "null"));

    /* A name with characters JSON must escape. */
    CHECK(ps_sim_summarize(&s, "a\"b\\c\n", &sc, &r) == 0);
    ps_sim_summary_json(&s, line, sizeof line);
    CHECKF(strstr(line, "\"policy\":\"a\\\"b\\\\c\\u000a\"") != NULL, "%s", line);
}

static void test_table(void)
{
    ps_sim_scenario sc;
    ps_sim_results r;
    fake_run(&sc, &r, NULL, 0);
    ps_sim_summary s[2];
    CHECK(ps_sim_summarize(&s[0], "reactive", &sc, &r) == 0);
    r.interrupted_minutes = 37.5;
    CHECK(ps_sim_summarize(&s[1], "naive", &sc, &r) == 0);
    for (int i = 0; i < 2; i++)
        ps_sim_summary_compare(&s[i], 150, NAN);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL);
    if (!f) return;
    ps_sim_report_table(f, s, 2);
    fclose(f);
    CHECK(strstr(text, "reactive") && strstr(text, "naive"));
    const char *red = strstr(text, "reduction vs reactive");
    CHECK(red != NULL);
    if (red) CHECKF(strstr(red, "75.0 %") < strchr(red, '\n'), "%s", red);
    const char *share = strstr(text, "share of the oracle's reduction");
    CHECK(share != NULL);
    if (share) {
        char row[256];
        snprintf(row, sizeof row, "%.*s", (int)(strchr(share, '\n') - share), share);
        CHECKF(strstr(row, " -") && !strstr(row, "%"), "oracle not run: %s", row);
    }
    const char *minutes = strstr(text, "interrupted workload-minutes");
    CHECK(minutes && strstr(minutes, "37.5") && strstr(minutes, "150"));
    const char *ratio = strstr(text, "unnecessary per averted failure");
    CHECK(ratio != NULL);
    if (ratio) {
        char row[256];
        snprintf(row, sizeof row, "%.*s", (int)(strchr(ratio, '\n') - ratio), ratio);
        CHECKF(!strstr(row, "inf") && !strstr(row, "nan") && strstr(row, " -"), "%s", row);
    }
    free(text);
}

static void test_plot_refuses(void)
{
    double m[1] = {0};
    uint32_t u[1] = {0};
    ps_sim_plot_line l = {"reactive", m, u};
    char err[256];
    CHECK(ps_sim_plot("a\nb.png", "t", &l, 1, 1, 300, err, sizeof err) == -1);
    CHECKF(strstr(err, "control character") != NULL, "%s", err);
    CHECK(ps_sim_plot("x.png", "t", &l, 0, 1, 300, err, sizeof err) == -1);
    CHECK(ps_sim_plot("", "t", &l, 1, 1, 300, err, sizeof err) == -1);
}

static void test_thresholds(void)
{
    char classes[3][64] = {"a", "b", "empty"};
    ps_sim_threshold_point pts[] = {
        {-1, 0, 0.9, -1},                    /* a starts at 0.9 */
        {-1, 1, 0.99, -1},                   /* b at 0.99 */
        {-1, 0, 0.95, PS_CAUSE_UNNECESSARY}, /* during the warm-up */
        {3, 0, 0.8, PS_CAUSE_AVERTED},       /* a's minimum */
        {4, 1, 0.995, PS_CAUSE_ENVIRONMENT}, /* b's maximum and end */
        {7, 0, 0.85, PS_CAUSE_MISSED},       /* a's end */
        {8, 9, 0.1, PS_CAUSE_AVERTED},       /* no such class: skipped */
    };
    ps_sim_preshift_report rep;
    memset(&rep, 0, sizeof rep);
    rep.n_classes = 3;
    rep.classes = classes;
    rep.thresholds = pts;
    rep.n_thresholds = sizeof pts / sizeof pts[0];
    ps_sim_threshold_summary s[3];
    ps_sim_threshold_summarize(&rep, s);
    CHECK(!strcmp(s[0].cls, "a") && s[0].start == 0.9 && s[0].end == 0.85);
    CHECK(s[0].min == 0.8 && s[0].max == 0.95);
    CHECK(s[0].changes[PS_CAUSE_AVERTED] == 1 && s[0].changes[PS_CAUSE_UNNECESSARY] == 1);
    CHECK(s[0].changes[PS_CAUSE_MISSED] == 1 && s[0].changes_during_warmup == 1);
    CHECK(s[1].start == 0.99 && s[1].end == 0.995 && s[1].min == 0.99 && s[1].max == 0.995);
    CHECK(s[1].changes[PS_CAUSE_ENVIRONMENT] == 1 && s[1].changes[PS_CAUSE_AVERTED] == 0);
    CHECK(isnan(s[2].start) && isnan(s[2].end));

    char buf[1024];
    int n = ps_sim_threshold_json(s, 3, buf, sizeof buf);
    CHECK(n == (int)strlen(buf));
    const char *want_a = "\"thresholds\":[{\"class\":\"a\",\"start\":0.9,\"end\":0.85,"
                         "\"min\":0.8,\"max\":0.95,\"averted\":1,\"unnecessary\":1,"
                         "\"disruptive\":0,\"missed\":1,\"environment\":0},";
    CHECKF(!strncmp(buf, want_a, strlen(want_a)), "%s", buf);
    CHECKF(strstr(buf, "{\"class\":\"empty\",\"start\":null,\"end\":null,") != NULL, "%s", buf);
    CHECK(buf[n - 1] == ']');
    /* Too small a buffer: the length it needs, as snprintf. */
    char small[16];
    CHECK(ps_sim_threshold_json(s, 3, small, sizeof small) == n);
    CHECK(ps_sim_threshold_json(s, 3, NULL, 0) == n);
}

int main(void)
{
    test_percentile();
    test_ratios();
    test_json_numbers();
    test_summary_json();
    test_table();
    test_plot_refuses();
    test_thresholds();
    return test_finish("test_sim_report");
}
