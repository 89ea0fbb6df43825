/*
 * manage.c - the shifting manager's life (manage.h, docs/manage.md): start
 * (store, workload file, cluster, thresholds, pending outcomes, recovery
 * of open transfers, sockets), the thread's loop, stop.
 *
 * The loop, on one thread, in order: the stream (records, and a decision
 * pass per tick), finished transfers (and queued ones handed on), control
 * requests, the counters for /metrics. When the stream is quiet it waits on
 * it for at most 20 ms (1 ms while transfers are in flight), so control
 * requests are answered within that and a transfer's end within 1 ms.
 * Everything the manager knows is touched by this thread only; nng's
 * threads run the sockets, the transfers' exchanges and HTTP.
 *
 * After a restart the store is the truth: the cluster is loaded from it
 * with its open transfers in flight (destinations reserved), each open
 * transfer is recovered (ps_transfers_recover asks the destination whether
 * it committed) before any new transfer is started, committed shifts still
 * waiting for their outcome wait again from their commit time, and each
 * class resumes its threshold from its latest history row. A transfer id is
 * never reused, so an agent's record of an id is never confused with a new
 * move, and no workload is moved twice by one decision.
 */
#include "manage_internal.h"

#include "core/crc32.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void mg_log(ps_manage *m, const char *fmt, ...)
{
    if (m->cfg.quiet) return;
    va_list ap;
    va_start(ap, fmt);
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (isnan(m->now))
        fprintf(stderr, "preshift manage: %s\n", line);
    else
        fprintf(stderr, "preshift manage [t=%.1f]: %s\n", m->now - m->start, line);
    fflush(stderr);
}

void mg_error(ps_manage *m, const char *fmt, ...)
{
    (void)m;
    va_list ap;
    va_start(ap, fmt);
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "preshift manage: error: %s\n", line);
    fflush(stderr);
}

int64_t mg_now_ms(const ps_manage *m)
{
    return isnan(m->now) ? 0 : (int64_t)llround(m->now * 1000);
}

int mg_reserve(void **arr, size_t n, size_t *cap, size_t size)
{
    if (n < *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    void *na = realloc(*arr, nc * size);
    if (!na) return -1;
    *arr = na;
    *cap = nc;
    return 0;
}

double mg_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- processor ids ---- */

static uint32_t ix_home(uint64_t id, uint32_t cap)
{
    uint64_t h = id * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(h ^ (h >> 29)) & (cap - 1);
}

int mg_index_build(ps_manage *m)
{
    uint32_t cap = 16;
    while (cap < 2 * m->c.max_processors + 2)
        cap *= 2;
    if (cap != m->ix_cap) {
        free(m->ix_key);
        free(m->ix_slot);
        m->ix_key = malloc(cap * sizeof *m->ix_key);
        m->ix_slot = malloc(cap * sizeof *m->ix_slot);
        m->ix_cap = m->ix_key && m->ix_slot ? cap : 0;
        if (!m->ix_cap) return PS_ENOMEM;
    }
    memset(m->ix_slot, 0, cap * sizeof *m->ix_slot);
    for (uint32_t p = 0; p < m->c.max_processors; p++) {
        if (!m->c.proc[p].present) continue;
        uint64_t id = ps_names_processor_id(&m->names, p);
        uint32_t i = ix_home(id, cap);
        while (m->ix_slot[i])
            i = (i + 1) & (cap - 1);
        m->ix_key[i] = id;
        m->ix_slot[i] = p + 1;
    }
    return PS_OK;
}

uint32_t mg_index_find(const ps_manage *m, uint64_t id)
{
    if (!m->ix_cap) return PS_NONE;
    for (uint32_t i = ix_home(id, m->ix_cap); m->ix_slot[i]; i = (i + 1) & (m->ix_cap - 1))
        if (m->ix_key[i] == id) return m->ix_slot[i] - 1;
    return PS_NONE;
}

/* ---- loading ---- */

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open the workload file", path);
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            char *nb = realloc(buf, cap = cap ? cap * 2 : 65536);
            if (!nb) break;
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (!got) break;
    }
    int bad = ferror(f) || n == cap;
    fclose(f);
    if (bad) {
        free(buf);
        snprintf(err, errlen, "%s: cannot read the workload file", path);
        return NULL;
    }
    *len = n;
    return buf;
}

/*
 * The workload file: into an empty store; checked against the CRC-32 and
 * size of the file the store was loaded from otherwise, and replacing the
 * store's cluster only with --reload-workloads.
 */
static int load_workloads(ps_manage *m, int store_empty, char *err, size_t errlen)
{
    const char *path = m->cfg.workloads;
    size_t len = 0;
    char *text = read_file(path, &len, err, errlen);
    if (!text) return -1;
    char want[96], have[PS_MANAGE_STR_MAX + 96] = "";
    snprintf(want, sizeof want, "%08x %zu", (unsigned)ps_crc32(0, text, len), len);
    int rc =
        store_empty ? 1 : ps_store_get_meta(m->store, "workloads", have, sizeof have, err, errlen);
    if (rc < 0) {
        free(text);
        return -1;
    }
    int same = rc == 0 && !strncmp(have, want, strlen(want)) && have[strlen(want)] == ' ';
    if (same || (!store_empty && !m->cfg.reload_workloads)) {
        free(text);
        if (same) return 0;
        snprintf(err, errlen,
                 "%s differs from the workload file %s was loaded from%s; start with "
                 "--reload-workloads to replace the store's cluster by it (history is kept), "
                 "or without --workloads to go on with the store's",
                 path, m->cfg.store, rc == 1 ? " (or it was not loaded from one)" : "");
        return -1;
    }
    ps_cluster c;
    ps_names n;
    rc = ps_workload_load_string(text, len, path, NULL, &c, &n, err, errlen);
    free(text);
    if (rc) return -1;
    rc = ps_store_replace_cluster(m->store, &c, &n, err, errlen);
    ps_cluster_free(&c);
    ps_names_free(&n);
    snprintf(have, sizeof have, "%s %s", want, path);
    if (!rc) rc = ps_store_set_meta(m->store, "workloads", have, err, errlen);
    if (!rc) mg_log(m, "loaded %s into %s", path, m->cfg.store);
    return rc ? -1 : 0;
}

static int load_cluster(ps_manage *m, char *err, size_t errlen)
{
    ps_cluster c;
    ps_names n;
    if (ps_store_load_cluster(m->store, NULL, &c, &n, err, errlen)) return -1;
    int empty = n.classes.count == 0 && c.n_processors == 0;
    ps_cluster_free(&c);
    ps_names_free(&n);
    if (m->cfg.workloads[0] && load_workloads(m, empty, err, errlen)) return -1;
    if (ps_store_load_cluster(m->store, NULL, &c, &n, err, errlen)) return -1;
    /* Room for what the control socket may add: as much again and 64 more. */
    ps_load_room room = {(uint32_t)fmin(PS_THRESHOLD_MAX_CLASSES, n.classes.count + 8.0),
                         2 * c.n_processors + 64, 2 * c.n_workloads + 64,
                         2 * (n.groups.len - 1) + 64};
    ps_cluster_free(&c);
    ps_names_free(&n);
    return ps_store_load_cluster(m->store, &room, &m->c, &m->names, err, errlen) ? -1 : 0;
}

/* The policy's state, sized for the cluster; thresholds resumed from the store. */
static int init_policy(ps_manage *m, char *err, size_t errlen)
{
    const ps_cluster *c = &m->c;
    if (ps_trigger_init(&m->trig, &m->cfg.policy.trigger, c, err, errlen) ||
        ps_policy_init(&m->pol, &m->cfg.policy, c, err, errlen) ||
        ps_placement_ws_init(&m->pws, c, err, errlen) ||
        ps_thresholds_init(&m->th, &m->cfg.threshold, c->n_classes, err, errlen))
        return -1;
    m->dec = malloc(c->max_workloads * sizeof *m->dec);
    m->dec_ids = malloc(c->max_workloads * sizeof *m->dec_ids);
    m->procs = malloc(c->max_processors * sizeof *m->procs);
    if (!m->dec || !m->dec_ids || !m->procs || mg_index_build(m)) {
        snprintf(err, errlen, "out of memory for the manager");
        return -1;
    }
    for (uint32_t p = 0; p < c->max_processors; p++) {
        m->procs[p] = (mg_proc){.last_seen = NAN};
        if (!c->proc[p].present) continue;
        mg_apply_load(m, p, NULL, 0); /* until its heartbeats say otherwise */
        if (!c->proc[p].alive && c->proc[p].first != PS_NONE) m->procs[p].failover = 1;
    }
    for (uint32_t k = 0; k < c->n_classes; k++) {
        ps_threshold_change last;
        if (!ps_name_of(&m->names.classes, k)) continue;
        int rc = ps_store_latest_threshold(m->store, &m->names, k, &last, err, errlen);
        if (rc < 0) return -1;
        if (rc == 1 || !isfinite(last.new_base)) continue;
        ps_threshold_class *t = &m->th.cls[k];
        t->base = fmin(fmax(last.new_base, m->th.zmin), m->th.zmax);
        t->recorded = t->base;
        for (int o = 0; o < PS_OUTCOME_COUNT; o++)
            t->rate[o] = isfinite(last.rate[o]) ? last.rate[o] : 0;
        mg_log(m, "class %s resumes at threshold %.4f", ps_name_of(&m->names.classes, k),
               ps_thresholds_effective(&m->th, k));
    }
    return 0;
}

/*
 * What a previous run left: open transfers to recover (first in the queue),
 * committed shifts waiting for their outcome, rolled-back shifts without one.
 */
static int resume(ps_manage *m, char *err, size_t errlen)
{
    if (ps_store_next_transfer_id(m->store, &m->next_id, err, errlen)) return -1;
    ps_store_transfer_list l;
    if (ps_store_open_transfers(m->store, &l, err, errlen)) return -1;
    for (size_t i = 0; i < l.n; i++) {
        const ps_store_transfer *t = &l.items[i];
        uint32_t w = ps_name_find(&m->names.workloads, t->workload);
        uint32_t src = ps_name_find(&m->names.processors, t->source);
        uint32_t dst = ps_name_find(&m->names.processors, t->destination);
        if (MG_RESERVE(m->xfers, m->n_xfers, m->cap_xfers) || w == PS_NONE || src == PS_NONE ||
            dst == PS_NONE) {
            snprintf(err, errlen, "open transfer %lld (%s %s -> %s): %s", (long long)t->id,
                     t->workload, t->source, t->destination,
                     w == PS_NONE || src == PS_NONE || dst == PS_NONE ? "not in the store's map"
                                                                      : "out of memory");
            ps_store_transfer_list_free(&l);
            return -1;
        }
        m->xfers[m->n_xfers++] = (mg_xfer){.id = t->id,
                                           .kind = t->kind,
                                           .w = w,
                                           .src = src,
                                           .dst = dst,
                                           .recover = 1,
                                           .expected = t->expected_seconds};
        mg_log(m, "transfer %lld (%s %s -> %s) was open: recovering it", (long long)t->id,
               t->workload, t->source, t->destination);
    }
    ps_store_transfer_list_free(&l);

    ps_store_transfer_query q = {.kind = PS_STORE_SHIFT + 1, .undecided = 1};
    if (ps_store_query_transfers(m->store, &q, &l, err, errlen)) return -1;
    for (size_t i = l.n; i-- > 0;) { /* oldest first */
        const ps_store_transfer *t = &l.items[i];
        uint32_t src = ps_name_find(&m->names.processors, t->source);
        uint32_t dst = ps_name_find(&m->names.processors, t->destination);
        if (t->state == PS_STORE_PREPARED || src == PS_NONE || dst == PS_NONE) continue;
        uint32_t cls = m->c.proc[src].cls;
        if (t->state == PS_STORE_ROLLED_BACK) {
            mg_outcome(m, t->id, cls, PS_OUTCOME_DISRUPTIVE, "the transfer did not complete");
        } else if (!m->c.proc[src].alive) {
            mg_outcome(m, t->id, cls, PS_OUTCOME_AVERTED, "its source failed");
        } else if (!MG_RESERVE(m->pending, m->n_pending, m->cap_pending)) {
            m->pending[m->n_pending++] =
                (mg_pending){t->id, src, dst, cls, (double)t->finished_ms / 1000};
        }
    }
    if (m->n_pending) mg_log(m, "%zu shift(s) wait for their outcome", m->n_pending);
    ps_store_transfer_list_free(&l);
    return 0;
}

/* ---- the thread ---- */

static void *run(void *arg)
{
    ps_manage *m = arg;
    mg_metrics_set_ready(m, 1, 0);
    while (!atomic_load(&m->stop)) {
        /* With transfers in flight, their ends are what comes next: look often. */
        mg_stream_poll(m, m->n_xfers ? 1 : 20);
        mg_poll_transfers(m);
        mg_control_poll(m);
        mg_metrics_publish(m);
    }
    return NULL;
}

static void cleanup(ps_manage *m)
{
    mg_stream_close(m);
    mg_control_close(m);
    mg_http_stop(m);
    ps_transfers_stop(m->xf);
    ps_store_close(m->store);
    ps_trigger_free(&m->trig);
    ps_policy_free(&m->pol);
    ps_placement_ws_free(&m->pws);
    ps_cluster_free(&m->c);
    ps_names_free(&m->names);
    free(m->dec);
    free(m->dec_ids);
    free(m->procs);
    free(m->ix_key);
    free(m->ix_slot);
    free(m->xfers);
    free(m->pending);
    free(m->backoff);
    mg_metrics_free(m);
    free(m);
}

ps_manage *ps_manage_start(const ps_manage_config *cfg, char *err, size_t errlen)
{
    if (errlen) err[0] = '\0';
    if (ps_manage_config_check(cfg, err, errlen)) return NULL;
    ps_manage *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->cfg = *cfg;
    m->now = m->start = m->env_at = NAN;
    atomic_init(&m->stop, 0);
    ps_transfers_config tc = ps_transfers_default_config();
    tc.timeout = cfg->transfer_timeout;
    tc.max_limit = (size_t)cfg->max_transfers;
    tc.tls_ca = cfg->tls_ca[0] ? cfg->tls_ca : NULL;
    tc.tls_cert = cfg->tls_cert[0] ? cfg->tls_cert : NULL;
    tc.tls_key = cfg->tls_key[0] ? cfg->tls_key : NULL;
    int ok = mg_metrics_init(m) == 0 && mg_http_start(m, err, errlen) == 0 &&
             ps_store_open(cfg->store, PS_STORE_CREATE, &m->store, err, errlen) == 0 &&
             load_cluster(m, err, errlen) == 0 && init_policy(m, err, errlen) == 0 &&
             (m->xf = ps_transfers_start(&tc, err, errlen)) != NULL &&
             resume(m, err, errlen) == 0 && mg_control_open(m, err, errlen) == 0 &&
             mg_stream_open(m, err, errlen) == 0;
    if (ok) {
        mg_log(m, "%u processor(s), %u workload(s), %llu dependencies, %u class(es) from %s",
               m->c.n_processors, m->c.n_workloads, (unsigned long long)m->c.n_edges,
               m->names.classes.count, cfg->store);
        mg_submit_queued(m); /* recoveries first */
        mg_metrics_publish(m);
        ok = pthread_create(&m->thread, NULL, run, m) == 0;
        if (!ok) snprintf(err, errlen, "cannot start the manager thread");
    }
    if (!ok) {
        if (!err[0]) snprintf(err, errlen, "out of memory");
        cleanup(m);
        return NULL;
    }
    m->thread_started = 1;
    return m;
}

void ps_manage_stop(ps_manage *m)
{
    if (!m) return;
    mg_metrics_set_ready(m, 0, 1);
    atomic_store(&m->stop, 1);
    if (m->thread_started) pthread_join(m->thread, NULL);
    if (m->n_xfers)
        mg_log(m, "stopping with %zu transfer(s) open: the next start recovers them", m->n_xfers);
    cleanup(m);
}
