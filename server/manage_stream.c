/*
 * manage_stream.c - the PFP stream into the cluster (docs/manage.md, "The
 * stream" and "Time").
 *
 * One subscriber per --subscribe, so that the manager knows which server
 * each message came from. A record sets its processor's PFP and
 * utilizations (from the heartbeat's metrics when the message carries
 * them, else from the demand the processor hosts) and advances the
 * manager's clock to its heartbeat time: the clock is the stream's, never
 * the wall clock, so a simulation may run faster than real time.
 *
 * A message is one tick of its server, and a decision pass follows each
 * tick. With several servers (processors sharded over them) a pass
 * follows each round: it runs when every server heard from within the
 * failure timeout has delivered a message since the last pass, or when
 * one delivers a second, so that a processor's hysteresis counts its own
 * server's ticks and not the sum of all servers'.
 *
 * A gap (records lost, or a server restarted: a new run after another)
 * makes the manager ask that server, when --server names it, for the
 * latest state of every processor it manages (op latest); processors the
 * server does not hold are left as they were. The same question is asked
 * once at start.
 */
#include "manage_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ps_manage_utilization(const ps_manage_config *cfg, const ps_cluster *c, uint32_t p,
                           const float *x, uint32_t k, double out[3])
{
    const ps_processor *t = &c->proc[p];
    double cpu = 0, mem = 0;
    for (uint32_t w = t->first; w != PS_NONE; w = c->work[w].next) {
        cpu += c->work[w].cpu;
        mem += c->work[w].mem;
    }
    out[0] = cpu / t->cpu_capacity;
    out[1] = mem / t->mem_capacity;
    out[2] = 0;
    if (x && cfg->cpu_metric >= 0 && (uint32_t)cfg->cpu_metric < k) out[0] = x[cfg->cpu_metric];
    if (x && cfg->mem_metric >= 0 && (uint32_t)cfg->mem_metric < k) out[1] = x[cfg->mem_metric];
    for (int i = 0; x && i < cfg->n_net_metric; i++)
        if ((uint32_t)cfg->net_metric[i] < k)
            out[2] = fmax(out[2], x[cfg->net_metric[i]] / t->net_bandwidth);
    for (int i = 0; i < 3; i++)
        out[i] = out[i] > 0 ? fmin(out[i], 1.0) : 0.0; /* NaN too */
}

void mg_apply_load(ps_manage *m, uint32_t p, const float *x, uint32_t k)
{
    double u[3];
    ps_manage_utilization(&m->cfg, &m->c, p, x, k, u);
    ps_cluster_set_load(&m->c, p, u[0], u[1], u[2], NULL, 0);
}

int mg_stream_open(ps_manage *m, char *err, size_t errlen)
{
    const ps_manage_config *cfg = &m->cfg;
    ps_client_options opt = {.timeout_ms = 2000,
                             .tls_ca = cfg->tls_ca[0] ? cfg->tls_ca : NULL,
                             .tls_cert = cfg->tls_cert[0] ? cfg->tls_cert : NULL,
                             .tls_key = cfg->tls_key[0] ? cfg->tls_key : NULL};
    for (int i = 0; i < cfg->n_subscribe; i++) {
        mg_sub *s = &m->subs[i];
        memset(s, 0, sizeof *s);
        s->last = NAN;
        m->n_subs = i + 1;
        s->sub = ps_sub_open(cfg->subscribe[i], &opt, err, errlen);
        if (!s->sub) return -1;
        if (i < cfg->n_server) {
            s->server = ps_client_open(cfg->server[i], &opt, err, errlen);
            if (!s->server) return -1;
            s->want_latest = 1;
        }
    }
    return 0;
}

void mg_stream_close(ps_manage *m)
{
    for (int i = 0; i < m->n_subs; i++) {
        ps_sub_close(m->subs[i].sub);
        ps_client_close(m->subs[i].server);
    }
    m->n_subs = 0;
}

/* Stream time moves forward only. */
static void advance(ps_manage *m, double ts)
{
    if (isnan(m->now)) m->start = ts;
    if (isnan(m->now) || ts > m->now) m->now = ts;
}

/*
 * Processor p's latest heartbeat time and PFP. A record of a failed processor
 * revives it; an op latest answer does not (it may be the last heartbeat
 * before the failure).
 */
static void seen(ps_manage *m, uint32_t p, double ts, double pfp, int revive)
{
    advance(m, ts);
    mg_proc *x = &m->procs[p];
    if (isnan(x->last_seen) || ts > x->last_seen) x->last_seen = ts;
    if (!m->c.proc[p].alive && revive) mg_revive(m, p);
    ps_cluster_set_pfp(&m->c, p, pfp >= 0 && pfp <= 1 ? pfp : pfp > 1 ? 1 : 0, NULL, 0);
}

/* Op latest for every processor, from server s. */
static void ask_latest(ps_manage *m, mg_sub *s)
{
    s->want_latest = 0;
    uint32_t n = 0, *slot = malloc((m->c.max_processors + 1) * sizeof *slot);
    uint64_t *ids = malloc((m->c.max_processors + 1) * sizeof *ids);
    for (uint32_t p = 0; slot && ids && p < m->c.max_processors; p++)
        if (m->c.proc[p].present) {
            slot[n] = p;
            ids[n++] = ps_names_processor_id(&m->names, p);
        }
    size_t applied = 0;
    int ok = slot && ids;
    for (uint32_t at = 0; ok && at < n; at += PS_PROTO_MAX_BATCH) {
        uint32_t k = n - at < PS_PROTO_MAX_BATCH ? n - at : PS_PROTO_MAX_BATCH;
        ps_proto_latest_reply r;
        char err[512];
        int rc = ps_client_latest(s->server, k, ids + at, &r, err, sizeof err);
        if (rc != PS_CLIENT_OK) {
            mg_log(m, "op latest: %s (%s); going on with what the stream says", err,
                   ps_client_code_name(rc));
            ok = 0;
            break;
        }
        for (uint32_t i = 0; i < k; i++)
            if (r.results[i].state == PS_PROTO_STATE_SCORED && r.ts[i] > 0) {
                seen(m, slot[at + i], r.ts[i], r.results[i].pfp, 0);
                applied++;
            }
    }
    if (ok) {
        m->st.latest_ok++;
        mg_log(m, "op latest: %zu of %u processor(s) updated", applied, n);
    } else {
        m->st.latest_failed++;
    }
    free(slot);
    free(ids);
}

static void end_round(ps_manage *m)
{
    for (int i = 0; i < m->n_subs; i++)
        m->subs[i].in_round = 0;
    mg_pass(m);
}

static void on_message(ps_manage *m, mg_sub *s, const ps_proto_pub *pub, const ps_sub_event *ev)
{
    m->st.messages++;
    if (ev->missed || (ev->new_run && ev->prev_run)) {
        m->st.gaps++;
        m->st.missed_records += ev->missed;
        mg_log(m, "stream %s: %s", m->cfg.subscribe[s - m->subs],
               ev->missed ? "records lost" : "the server restarted (a new run)");
        if (s->server) s->want_latest = 1;
    }
    if (ev->repeat) return;
    if (s->in_round) end_round(m);
    if (s->want_latest) ask_latest(m, s);
    for (size_t i = 0; i < pub->n; i++) {
        const ps_proto_record *r = &pub->records[i];
        uint32_t p = mg_index_find(m, r->id);
        if (p == PS_NONE) {
            m->st.unknown_records++;
            continue;
        }
        m->st.records++;
        seen(m, p, r->ts, r->pfp, 1);
        mg_apply_load(m, p, pub->x ? pub->x + i * pub->k : NULL, pub->k);
    }
    s->in_round = 1;
    s->last = m->now;
    for (int i = 0; i < m->n_subs; i++) {
        const mg_sub *o = &m->subs[i];
        int active = !isnan(o->last) && m->now - o->last <= m->cfg.failure_timeout;
        if (active && !o->in_round) return;
    }
    end_round(m);
}

int mg_stream_poll(ps_manage *m, int wait_ms)
{
    char err[512];
    const ps_proto_pub *pub;
    ps_sub_event ev;
    for (int i = 0; i < m->n_subs; i++)
        if (m->subs[i].want_latest) ask_latest(m, &m->subs[i]);
    int got = 0;
    /* What is waiting, a bounded number of sweeps so the rest of the loop is not starved. */
    for (int sweep = 0; sweep < 64; sweep++) {
        int any = 0;
        for (int i = 0; i < m->n_subs; i++) {
            if (ps_sub_recv(m->subs[i].sub, 0, &pub, &ev, err, sizeof err) != PS_CLIENT_OK)
                continue;
            on_message(m, &m->subs[i], pub, &ev);
            any = got = 1;
        }
        if (!any) break;
    }
    if (got || wait_ms <= 0) return got;
    int slice = wait_ms / m->n_subs > 0 ? wait_ms / m->n_subs : 1;
    for (int i = 0; i < m->n_subs && !got; i++) {
        if (ps_sub_recv(m->subs[i].sub, slice, &pub, &ev, err, sizeof err) != PS_CLIENT_OK)
            continue;
        on_message(m, &m->subs[i], pub, &ev);
        got = 1;
    }
    return got;
}
