/*
 * demo_view.c - the live view of `preshift demo` (demo_view.h).
 */
#include "demo_view.h"

#include <math.h>
#include <string.h>

const char *ps_demo_count(char *buf, size_t len, double x)
{
    char digits[32];
    if (!isfinite(x)) {
        snprintf(buf, len, "-");
        return buf;
    }
    snprintf(digits, sizeof digits, "%.0f", fabs(x));
    size_t n = strlen(digits), at = 0;
    char tmp[48];
    if (x <= -0.5) tmp[at++] = '-';
    for (size_t i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0) tmp[at++] = ',';
        tmp[at++] = digits[i];
    }
    tmp[at] = '\0';
    snprintf(buf, len, "%s", tmp);
    return buf;
}

/* Simulated time as "2 d 3 h 05 min". */
static void sim_time(char *buf, size_t len, double seconds)
{
    long m = (long)(seconds / 60 + 0.5), d = m / 1440, h = m % 1440 / 60;
    if (d)
        snprintf(buf, len, "%ld d %ld h %02ld min", d, h, m % 60);
    else
        snprintf(buf, len, "%ld h %02ld min", h, m % 60);
}

/* "saves 18 %" or "costs 3 %" of reactive's minutes. */
static void versus(char *buf, size_t len, double reactive, double x)
{
    if (!(reactive > 0))
        snprintf(buf, len, "nothing lost yet");
    else if (x <= reactive)
        snprintf(buf, len, "saves %.0f %%", 100 * (reactive - x) / reactive);
    else
        snprintf(buf, len, "costs %.0f %% more", 100 * (x - reactive) / reactive);
}

void ps_demo_view_screen(FILE *out, const ps_demo_view *v)
{
    const ps_sim_live *l = v->live;
    char a[32], b[32], c[32], d[32], e[32], t[48];
    fputs("\033[H\033[2J", out);
    fprintf(out,
            "preshift demo: %s processors, %s workloads replaying %s (%u servers, %u metrics), "
            "seed %llu\n\n",
            ps_demo_count(a, sizeof a, v->processors), ps_demo_count(b, sizeof b, v->workloads),
            v->dataset, v->entities, v->metrics, (unsigned long long)v->seed);
    if (l->warming_up) {
        fprintf(out,
                "warming up the scorer: history row %u of %u for every processor, %.0f s "
                "(the demo stops at %.0f s)\n",
                l->done, l->total, v->elapsed, v->budget);
        fprintf(out, "  %s heartbeats scored a second\n",
                ps_demo_count(a, sizeof a, v->heartbeats_per_s));
        fprintf(out, "\nCtrl-C stops it.\n");
        fflush(out);
        return;
    }
    sim_time(t, sizeof t, l->done * v->tick_seconds);
    fprintf(out,
            "tick %s of %s (%s simulated)   %.1f ticks/s   %s heartbeats scored/s   "
            "%.0f s of %.0f\n\n",
            ps_demo_count(a, sizeof a, l->done), ps_demo_count(b, sizeof b, l->total), t,
            v->ticks_per_s, ps_demo_count(c, sizeof c, v->heartbeats_per_s), v->elapsed, v->budget);
    fprintf(out,
            "highest PFP this tick    processor  replays      PFP         score  top metric\n");
    for (size_t i = 0; i < l->n_top; i++) {
        const ps_sim_live_pfp *p = &l->top[i];
        char m[16];
        if (p->top >= 0)
            snprintf(m, sizeof m, "%d", p->top + 1);
        else
            snprintf(m, sizeof m, "-");
        fprintf(out, "                         p%-9u %-12s %-11.7f %6.2f  %s\n", p->proc,
                v->entities ? v->entity_names[p->proc % v->entities] : "", p->pfp, (double)p->score,
                m);
    }
    for (size_t i = l->n_top; i < PS_SIM_LIVE_TOP; i++)
        fputc('\n', out);
    const ps_sim_results *r = l->res;
    fprintf(out,
            "\nshifts    %s in flight, %s begun: %s averted a failure, %s unnecessary, "
            "%s disruptive, %s not decided yet\n",
            ps_demo_count(a, sizeof a, (double)r->in_flight),
            ps_demo_count(b, sizeof b, (double)r->shifts),
            ps_demo_count(c, sizeof c, (double)r->averted),
            ps_demo_count(d, sizeof d, (double)r->unnecessary),
            ps_demo_count(e, sizeof e, (double)r->disruptive),
            ps_demo_count(t, sizeof t, (double)r->pending));
    fprintf(out,
            "failures  %s so far: %s averted (emptied in time), %s partly, %s missed; "
            "%s failovers\n",
            ps_demo_count(a, sizeof a, (double)r->failures),
            ps_demo_count(b, sizeof b, (double)r->failures_averted),
            ps_demo_count(c, sizeof c, (double)r->failures_partial),
            ps_demo_count(d, sizeof d, (double)r->failures_missed),
            ps_demo_count(e, sizeof e, (double)r->failovers));
    char vs[48];
    versus(vs, sizeof vs, v->reactive_minutes, r->interrupted_minutes);
    fprintf(out, "\ninterrupted workload-minutes (a workload on a failed processor, until it runs "
                 "again)\n");
    fprintf(out, "  preshift            %12s   (%s against reactive)\n",
            ps_demo_count(a, sizeof a, r->interrupted_minutes), vs);
    fprintf(out, "  reactive failover   %12s   (what failing over after the fact lost)\n",
            ps_demo_count(b, sizeof b, v->reactive_minutes));
    fprintf(out, "  oracle              %12s   (knows the failures: the floor)\n",
            ps_demo_count(c, sizeof c, v->oracle_minutes));
    fprintf(out, "\nCtrl-C stops it early with the summary.\n");
    fflush(out);
}

void ps_demo_view_line(FILE *out, const ps_demo_view *v)
{
    const ps_sim_live *l = v->live;
    char a[32], b[32], c[32];
    if (l->warming_up) {
        fprintf(out, "demo: %.0f s: warm-up, history row %u of %u\n", v->elapsed, l->done,
                l->total);
        fflush(out);
        return;
    }
    const ps_sim_results *r = l->res;
    fprintf(out,
            "demo: %.0f s: tick %u of %u, %.1f ticks/s; %llu shifts (%llu averted, %llu "
            "unnecessary), %llu failures; interrupted minutes: preshift %s, reactive %s, oracle "
            "%s\n",
            v->elapsed, l->done, l->total, v->ticks_per_s, (unsigned long long)r->shifts,
            (unsigned long long)r->averted, (unsigned long long)r->unnecessary,
            (unsigned long long)r->failures, ps_demo_count(a, sizeof a, r->interrupted_minutes),
            ps_demo_count(b, sizeof b, v->reactive_minutes),
            ps_demo_count(c, sizeof c, v->oracle_minutes));
    fflush(out);
}
