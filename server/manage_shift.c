/*
 * manage_shift.c - one decision pass and what follows from it: transfers
 * begun, handed to the orchestrator (server/transfer.h), finished; shifts'
 * outcomes decided; thresholds learnt from them and from the environment
 * (docs/manage.md, "A pass", "Outcomes").
 *
 * A transfer is begun in the cluster (its destination reserved) and in the
 * store (the decision that made it as its reason) before it is queued; the
 * queue is handed to ps_transfers in order, as far as the in-flight limit
 * allows, so transfers recovered after a restart go first. A destination
 * with no agent (no agent= in the workload file) cannot be asked anything:
 * such a transfer is committed at once, on paper.
 *
 * A target that rolled a workload back (refused, timed out, failed) is
 * passed over for that workload for --retry-backoff seconds of stream
 * time, and the workload may be chosen again at once: placement would
 * otherwise pick the same best target again, since its reservation is
 * released. The policy is pure and takes no exclusions, so the manager
 * re-places a MOVE whose target is backed off (or full by now) itself,
 * hiding the backed-off targets (alive = 0) for that one call.
 */
#include "manage_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *pname(const ps_manage *m, uint32_t p)
{
    const char *n = ps_name_of(&m->names.processors, p);
    return n ? n : "?";
}

static const char *wname(const ps_manage *m, uint32_t w)
{
    const char *n = ps_name_of(&m->names.workloads, w);
    return n ? n : "?";
}

/* ---- backoff ---- */

int mg_in_backoff(const ps_manage *m, uint32_t w, uint32_t target)
{
    for (size_t i = 0; i < m->n_backoff; i++)
        if (m->backoff[i].w == w && m->backoff[i].target == target && m->backoff[i].until > m->now)
            return 1;
    return 0;
}

size_t mg_hide_backoff(ps_manage *m, uint32_t w, uint32_t *hidden, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_backoff && n < cap; i++) {
        const mg_backoff *b = &m->backoff[i];
        if (b->w != w || !(b->until > m->now) || !m->c.proc[b->target].alive) continue;
        m->c.proc[b->target].alive = 0;
        hidden[n++] = b->target;
    }
    return n;
}

void mg_unhide(ps_manage *m, const uint32_t *hidden, size_t n)
{
    for (size_t i = 0; i < n; i++)
        m->c.proc[hidden[i]].alive = 1;
}

static void add_backoff(ps_manage *m, uint32_t w, uint32_t target)
{
    if (m->cfg.retry_backoff <= 0 || isnan(m->now)) return;
    if (MG_RESERVE(m->backoff, m->n_backoff, m->cap_backoff)) return;
    m->backoff[m->n_backoff++] = (mg_backoff){w, target, m->now + m->cfg.retry_backoff};
}

static void expire_backoff(ps_manage *m)
{
    for (size_t i = 0; i < m->n_backoff;)
        if (m->backoff[i].until <= m->now)
            m->backoff[i] = m->backoff[--m->n_backoff];
        else
            i++;
}

void mg_forget(ps_manage *m, uint32_t p, uint32_t w)
{
    for (size_t i = 0; i < m->n_backoff;)
        if (m->backoff[i].w == w || m->backoff[i].target == p)
            m->backoff[i] = m->backoff[--m->n_backoff];
        else
            i++;
    for (size_t i = 0; i < m->n_pending;)
        if (m->pending[i].src == p || m->pending[i].dst == p)
            m->pending[i] = m->pending[--m->n_pending];
        else
            i++;
}

/* ---- outcomes and learning ---- */

void mg_learn(ps_manage *m, uint32_t cls, ps_outcome o)
{
    ps_threshold_change ch;
    if (ps_thresholds_outcome(&m->th, cls, o, m->tick, &ch) != 1) return;
    char err[512];
    if (ps_store_append_thresholds(m->store, &ch, 1, &m->names, mg_now_ms(m), err, sizeof err)) {
        m->st.store_errors++;
        mg_error(m, "%s", err);
    }
    mg_log(m, "threshold of class %s: %.4f -> %.4f (%s)", ps_name_of(&m->names.classes, cls),
           ch.old_threshold, ch.new_threshold, ps_threshold_cause_name(ch.cause));
}

void mg_outcome(ps_manage *m, int64_t id, uint32_t cls, ps_outcome o, const char *why)
{
    char err[512];
    if (ps_store_record_outcome(m->store, id, o, mg_now_ms(m), err, sizeof err) < 0) {
        m->st.store_errors++;
        mg_error(m, "%s", err);
    }
    m->st.outcomes[o]++;
    mg_log(m, "outcome of transfer %lld: %s (%s)", (long long)id,
           ps_threshold_cause_name((ps_threshold_cause)o), why);
    mg_learn(m, cls, o);
}

/* Committed shifts whose target is overloaded now, or whose horizon has passed. */
static void decide_outcomes(ps_manage *m)
{
    for (size_t i = 0; i < m->n_pending;) {
        mg_pending x = m->pending[i];
        const ps_processor *t = &m->c.proc[x.dst];
        char why[160];
        ps_outcome o = PS_OUTCOME_COUNT;
        if (t->present && fmax(t->cpu_util, t->mem_util) > m->cfg.overload) {
            o = PS_OUTCOME_DISRUPTIVE;
            snprintf(why, sizeof why, "its target %s is overloaded: cpu %.2f, mem %.2f",
                     pname(m, x.dst), t->cpu_util, t->mem_util);
        } else if (m->now - x.since >= m->cfg.horizon) {
            o = PS_OUTCOME_UNNECESSARY;
            snprintf(why, sizeof why, "%s did not fail within %g s", pname(m, x.src),
                     m->cfg.horizon);
        }
        if (o == PS_OUTCOME_COUNT) {
            i++;
            continue;
        }
        m->pending[i] = m->pending[--m->n_pending];
        mg_outcome(m, x.id, x.cls, o, why);
    }
}

/*
 * The environment: the cluster's mean utilization (averaged over the passes
 * since the last sample) and the transfers' observed / expected time, one
 * sample every --environment-every stream seconds, into the thresholds; and
 * the transfer limit. Sampling per period rather than per pass keeps the
 * smoothing (and the history it writes) in stream time, whatever the tick
 * rate.
 */
static void environment(ps_manage *m)
{
    m->load_sum += ps_cluster_mean_utilization(&m->c);
    m->load_n++;
    if (isnan(m->env_at)) m->env_at = m->now;
    if (m->now - m->env_at < m->cfg.environment_every) return;
    double load = fmin(1.0, m->load_sum / m->load_n);
    double ratio = m->exp_seconds > 0 ? m->obs_seconds / m->exp_seconds : NAN;
    m->obs_seconds = m->exp_seconds = m->load_sum = 0;
    m->load_n = 0;
    m->env_at = m->now;
    ps_threshold_change ch[PS_THRESHOLD_MAX_CLASSES];
    int got = ps_thresholds_environment(&m->th, load, ratio, m->tick, ch, m->th.n_classes);
    int n = 0; /* only classes with a name: the others are room for the control socket */
    for (int i = 0; i < got; i++)
        if (ps_name_of(&m->names.classes, ch[i].cls)) ch[n++] = ch[i];
    char err[512];
    if (n > 0 && ps_store_append_thresholds(m->store, ch, (size_t)n, &m->names, mg_now_ms(m), err,
                                            sizeof err)) {
        m->st.store_errors++;
        mg_error(m, "%s", err);
    }
    for (int i = 0; i < n; i++)
        mg_log(m, "threshold of class %s: %.4f -> %.4f (environment: load %.2f, congestion %.2f)",
               ps_name_of(&m->names.classes, ch[i].cls), ch[i].old_threshold, ch[i].new_threshold,
               ch[i].load, ch[i].congestion);
    /* Congested transfers: fewer at once, back to the maximum as they speed up. */
    double c = m->th.congestion;
    size_t max = (size_t)m->cfg.max_transfers, limit = max;
    if (c > 1) limit = (size_t)fmax(1.0, floor((double)max / c));
    if (limit != ps_transfers_limit(m->xf)) {
        mg_log(m, "transfer limit %zu -> %zu (transfers take %.2f times as long as expected)",
               ps_transfers_limit(m->xf), limit, c);
        ps_transfers_set_limit(m->xf, limit);
    }
}

/* ---- transfers ---- */

int64_t mg_begin(ps_manage *m, uint32_t w, uint32_t dst, ps_transfer_kind kind, double pfp,
                 double threshold, double expected, const char *reason)
{
    char err[512];
    if (MG_RESERVE(m->xfers, m->n_xfers, m->cap_xfers)) {
        mg_error(m, "out of memory for transfers");
        return 0;
    }
    uint32_t src = m->c.work[w].proc;
    if (ps_cluster_begin_transfer(&m->c, w, dst, err, sizeof err)) {
        mg_error(m, "cannot move %s to %s: %s", wname(m, w), pname(m, dst), err);
        return 0;
    }
    ps_store_transfer t;
    memset(&t, 0, sizeof t);
    t.id = m->next_id;
    t.kind = kind;
    snprintf(t.workload, sizeof t.workload, "%s", wname(m, w));
    snprintf(t.destination, sizeof t.destination, "%s", pname(m, dst));
    t.tick = m->tick;
    t.pfp = pfp;
    t.threshold = threshold;
    t.expected_seconds = expected;
    snprintf(t.reason, sizeof t.reason, "%s", reason);
    t.started_ms = mg_now_ms(m);
    if (ps_store_begin_transfer(m->store, &t, err, sizeof err) < 0) {
        ps_cluster_finish_transfer(&m->c, w, 0, NULL, 0);
        m->st.store_errors++;
        mg_error(m, "%s", err);
        return 0;
    }
    m->next_id++;
    m->xfers[m->n_xfers++] =
        (mg_xfer){.id = t.id, .kind = kind, .w = w, .src = src, .dst = dst, .expected = expected};
    m->st.begun[kind]++;
    mg_log(m, "transfer %lld begun (%s): %s %s -> %s; %s", (long long)t.id,
           ps_transfer_kind_name(kind), wname(m, w), pname(m, src), pname(m, dst), reason);
    return t.id;
}

/*
 * A rollback that could not confirm the destination's side (its commit may
 * have gone through) leaves the transfer open, to be recovered later: the
 * store keeps it prepared and the cluster keeps it in flight.
 */
static int uncertain(const char *note)
{
    return note && strstr(note, "recover the transfer") != NULL;
}

void mg_finish(ps_manage *m, size_t i, int committed, const char *note, double seconds)
{
    if (!committed && uncertain(note)) {
        mg_xfer *u = &m->xfers[i];
        mg_log(m, "transfer %lld unsettled: %s; recovering it in %g s", (long long)u->id, note,
               m->cfg.transfer_timeout);
        u->submitted = 0;
        u->recover = 1;
        u->retry_at = mg_mono() + m->cfg.transfer_timeout;
        return;
    }
    mg_xfer x = m->xfers[i];
    memmove(&m->xfers[i], &m->xfers[i + 1], (m->n_xfers - i - 1) * sizeof *m->xfers);
    m->n_xfers--;
    char err[512];
    if (ps_cluster_finish_transfer(&m->c, x.w, committed, err, sizeof err))
        mg_error(m, "transfer %lld: %s", (long long)x.id, err);
    if (ps_store_finish_transfer(m->store, x.id,
                                 committed ? PS_STORE_COMMITTED : PS_STORE_ROLLED_BACK, note,
                                 mg_now_ms(m), NULL, err, sizeof err) < 0) {
        m->st.store_errors++;
        mg_error(m, "%s", err);
    }
    if (committed)
        m->st.committed[x.kind]++;
    else
        m->st.rolled_back[x.kind]++;
    mg_log(m, "transfer %lld %s: %s %s -> %s in %.3f s%s%s", (long long)x.id,
           committed ? "committed" : "rolled back", wname(m, x.w), pname(m, x.src), pname(m, x.dst),
           seconds, note && *note ? ": " : "", note ? note : "");
    if (seconds > 0 && x.expected > 0) {
        m->obs_seconds += seconds;
        m->exp_seconds += x.expected;
    }
    if (!committed) {
        add_backoff(m, x.w, x.dst);
        ps_trigger_forget_workload(&m->trig, x.w); /* choose again at once, elsewhere */
    }
    if (x.kind != PS_STORE_SHIFT) return;
    uint32_t cls = m->c.proc[x.src].cls;
    if (!committed) {
        mg_outcome(m, x.id, cls, PS_OUTCOME_DISRUPTIVE, "the transfer did not complete");
    } else if (!MG_RESERVE(m->pending, m->n_pending, m->cap_pending)) {
        m->pending[m->n_pending++] = (mg_pending){x.id, x.src, x.dst, cls, m->now};
    }
}

void mg_submit_queued(ps_manage *m)
{
    for (size_t i = 0; i < m->n_xfers;) {
        mg_xfer *x = &m->xfers[i];
        if (x->submitted || (x->retry_at > 0 && mg_mono() < x->retry_at)) {
            i++;
            continue;
        }
        const char *dst_agent = ps_names_agent(&m->names, x->dst);
        if (!*dst_agent) {
            char note[160];
            snprintf(note, sizeof note, "recorded only: %s has no agent", pname(m, x->dst));
            mg_finish(m, i, 1, note, 0);
            continue;
        }
        ps_transfer_spec s;
        memset(&s, 0, sizeof s);
        s.id = x->id;
        snprintf(s.workload, sizeof s.workload, "%s", wname(m, x->w));
        snprintf(s.source, sizeof s.source, "%s", pname(m, x->src));
        snprintf(s.destination, sizeof s.destination, "%s", pname(m, x->dst));
        if (m->c.proc[x->src].alive)
            snprintf(s.source_agent, sizeof s.source_agent, "%s",
                     ps_names_agent(&m->names, x->src));
        snprintf(s.destination_agent, sizeof s.destination_agent, "%s", dst_agent);
        s.state_bytes = m->c.work[x->w].state_bytes;
        s.expected_seconds = x->expected > 0 ? x->expected : 0;
        char err[512];
        int rc = x->recover ? ps_transfers_recover(m->xf, &s, err, sizeof err)
                            : ps_transfers_submit(m->xf, &s, err, sizeof err);
        if (rc == PS_TRANSFER_EBUSY) break; /* in order: the rest waits too */
        if (rc == 0 || rc == PS_TRANSFER_EEXISTS) {
            x->submitted = 1;
            i++;
            continue;
        }
        mg_finish(m, i, 0, err, 0);
    }
}

void mg_poll_transfers(ps_manage *m)
{
    ps_transfer_done done[32];
    size_t n;
    while ((n = ps_transfers_poll(m->xf, done, 32, 0)) > 0) {
        for (size_t k = 0; k < n; k++) {
            size_t i = 0;
            while (i < m->n_xfers && m->xfers[i].id != done[k].id)
                i++;
            if (i == m->n_xfers) {
                mg_error(m, "transfer %lld ended, but it is not one of ours",
                         (long long)done[k].id);
                continue;
            }
            mg_finish(m, i, done[k].end == PS_TRANSFER_COMMITTED, done[k].reason, done[k].seconds);
        }
        if (n < 32) break;
    }
    mg_submit_queued(m);
}

/* ---- the pass ---- */

/* Carry out MOVE record d (re-placing it if its target is backed off or full by now). */
static void carry_out(ps_manage *m, ps_decision *d, int64_t *id)
{
    uint32_t w = d->workload;
    const ps_placement_config *pc = &m->pol.cfg.placement;
    ps_placement_reset(&m->pws);
    if (mg_in_backoff(m, w, d->target) || !m->c.proc[d->target].alive ||
        ps_placement_headroom(&m->c, pc, &m->pws, d->target, w) < 0) {
        uint32_t hidden[64];
        size_t nh = mg_hide_backoff(m, w, hidden, 64);
        ps_placement pl;
        ps_place(&m->c, pc, &m->pws, w, &pl);
        mg_unhide(m, hidden, nh);
        d->place = pl;
        d->target = pl.target;
        if (pl.target == PS_NONE) {
            d->reason = PS_DECIDE_NO_TARGET;
            ps_trigger_forget_workload(&m->trig, w);
            return;
        }
    }
    char line[600], reason[PS_STORE_REASON_MAX];
    ps_decision_format(d, line, sizeof line);
    snprintf(reason, sizeof reason, "%s on %s -> %s: %s", wname(m, w), pname(m, d->processor),
             pname(m, d->target), line);
    *id = mg_begin(m, w, d->target, PS_STORE_SHIFT, d->pfp, d->threshold, d->score.pause_seconds,
                   reason);
    if (!*id) ps_trigger_forget_workload(&m->trig, w);
}

void mg_pass(ps_manage *m)
{
    mg_detect_failures(m);
    mg_failover(m);
    expire_backoff(m);
    ps_thresholds_fill(&m->th, m->thr);
    ps_policy_pass pass;
    uint32_t n = ps_policy_tick(&m->pol, &m->c, &m->trig, m->thr, m->tick, m->dec,
                                m->c.max_workloads, &pass);
    m->st.triggered = m->trig.n_triggered;
    for (uint32_t i = 0; i < n; i++) {
        m->dec_ids[i] = 0;
        if (m->dec[i].reason == PS_DECIDE_MOVE) carry_out(m, &m->dec[i], &m->dec_ids[i]);
        m->st.decisions[m->dec[i].reason]++;
    }
    char err[512];
    if (n && ps_store_record_decisions(m->store, m->dec, n, &m->names, m->dec_ids, mg_now_ms(m),
                                       err, sizeof err)) {
        m->st.store_errors++;
        mg_error(m, "%s", err);
    }
    decide_outcomes(m);
    environment(m);
    mg_submit_queued(m);
    m->tick++;
    m->st.passes = m->tick;
}
