/*
 * manage_control.c - run-time changes over the control socket (docs/manage.md,
 * "Control socket"): one text request per message, one answer.
 *
 *   class NAME | processor ... | workload ... | depends B on A, ... | flow A -> B ...
 *                                  a declaration in the workload file's syntax: add it
 *   remove class NAME | remove processor NAME | remove workload NAME
 *   remove depends B on A, ... | remove flow A -> B ...
 *   show [NAME]                    a processor, workload or class; nothing: a summary
 *
 * The answer is "ok" (for show, followed by lines of detail) or
 * "error: <what>". A request is applied to the store first (one
 * transaction that checks everything) and then to the cluster, which holds
 * the same rules; if the cluster still refuses, the store change is undone,
 * so the two never disagree. A request of several edges is all or nothing.
 * Requests run on the manager thread, between passes: nothing the policy
 * reads changes under it.
 */
#include "manage_internal.h"
#include "tls_setup.h"

#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The answer being built. */
typedef struct answer {
    char *buf;
    size_t len, cap;
    int error;
} answer;

static void say(answer *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(answer *a, const char *fmt, ...)
{
    va_list ap;
    for (int pass = 0; pass < 2; pass++) {
        va_start(ap, fmt);
        int n = vsnprintf(a->buf + a->len, a->cap - a->len, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (a->len + (size_t)n < a->cap) {
            a->len += (size_t)n;
            return;
        }
        size_t cap = (a->len + (size_t)n + 1) * 2;
        char *nb = realloc(a->buf, cap);
        if (!nb) return;
        a->buf = nb;
        a->cap = cap;
    }
}

static int fail(answer *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(answer *a, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    a->len = 0;
    a->error = 1;
    say(a, "error: %s", msg);
    return -1;
}

/* ---- additions ---- */

static int add_class(ps_manage *m, const ps_decl *d, answer *a)
{
    char err[512];
    uint32_t k;
    if (ps_name_find(&m->names.classes, d->name) != PS_NONE)
        return fail(a, "class '%s' already exists", d->name);
    if (ps_name_add(&m->names.classes, d->name, m->c.n_classes, &k, err, sizeof err))
        return fail(a,
                    "%s (the cluster was loaded with room for %u classes; restart the manager "
                    "to add more)",
                    err, m->c.n_classes);
    if (ps_store_add_class(m->store, d->name, err, sizeof err)) {
        ps_name_remove(&m->names.classes, k);
        return fail(a, "%s", err);
    }
    ps_thresholds fresh;
    if (ps_thresholds_init(&fresh, &m->cfg.threshold, m->c.n_classes, NULL, 0) == 0)
        m->th.cls[k] = fresh.cls[k];
    return 0;
}

static int add_processor(ps_manage *m, const ps_decl *d, answer *a)
{
    char err[512];
    uint32_t p, cls = ps_name_find(&m->names.classes, d->cls);
    if (cls == PS_NONE) return fail(a, "unknown class '%s'", d->cls);
    uint32_t other = mg_index_find(m, d->id);
    if (other != PS_NONE)
        return fail(a, "processor '%s': id %llu is already the id of '%s'", d->name,
                    (unsigned long long)d->id, ps_name_of(&m->names.processors, other));
    if (ps_name_add(&m->names.processors, d->name, m->c.max_processors, &p, err, sizeof err))
        return fail(a, "processor %s", err);
    ps_store_processor rec;
    memset(&rec, 0, sizeof rec);
    snprintf(rec.name, sizeof rec.name, "%s", d->name);
    snprintf(rec.cls, sizeof rec.cls, "%s", d->cls);
    rec.cpu_capacity = d->cpu;
    rec.mem_capacity = d->mem;
    rec.net_bandwidth = d->net;
    rec.alive = d->alive;
    rec.id = d->id;
    snprintf(rec.agent, sizeof rec.agent, "%s", d->agent);
    ps_processor_spec spec = {(uint16_t)cls, d->cpu, d->mem, d->net};
    int rc = ps_store_add_processor(m->store, &rec, err, sizeof err);
    if (!rc && ps_cluster_add_processor(&m->c, p, &spec, err, sizeof err)) {
        ps_store_remove_processor(m->store, d->name, NULL, 0);
        rc = -1;
    }
    if (!rc && ps_names_set_info(&m->names, p, d->id, d->agent, err, sizeof err)) {
        ps_store_remove_processor(m->store, d->name, NULL, 0);
        ps_cluster_remove_processor(&m->c, p, NULL, 0);
        rc = -1;
    }
    if (rc) {
        ps_names_remove_processor(&m->names, p);
        return fail(a, "%s", err);
    }
    if (!d->alive) ps_cluster_set_alive(&m->c, p, 0, NULL, 0);
    m->procs[p] = (mg_proc){.last_seen = NAN};
    ps_trigger_forget_processor(&m->trig, p);
    mg_apply_load(m, p, NULL, 0);
    mg_index_build(m);
    return 0;
}

static int add_workload(ps_manage *m, const ps_decl *d, answer *a)
{
    char err[512];
    uint32_t proc = ps_name_find(&m->names.processors, d->on), w, g = 0;
    if (proc == PS_NONE) return fail(a, "workload '%s': unknown processor '%s'", d->name, d->on);
    int new_group = 0;
    if (d->group[0] && (g = ps_name_find(&m->names.groups, d->group)) == PS_NONE) {
        if (ps_name_add(&m->names.groups, d->group, m->c.max_groups + 1, &g, err, sizeof err))
            return fail(a, "replica group %s", err);
        new_group = 1;
    }
    if (ps_name_add(&m->names.workloads, d->name, m->c.max_workloads, &w, err, sizeof err)) {
        if (new_group) ps_name_remove(&m->names.groups, g);
        return fail(a, "workload %s", err);
    }
    ps_store_workload rec;
    memset(&rec, 0, sizeof rec);
    snprintf(rec.name, sizeof rec.name, "%s", d->name);
    snprintf(rec.processor, sizeof rec.processor, "%s", d->on);
    snprintf(rec.group, sizeof rec.group, "%s", d->group);
    rec.cpu = d->cpu;
    rec.mem = d->mem;
    rec.state_bytes = d->state;
    rec.criticality = d->criticality;
    ps_workload_spec spec = {proc, d->cpu, d->mem, d->state, d->criticality, g};
    int rc = ps_store_add_workload(m->store, &rec, err, sizeof err);
    if (!rc && ps_cluster_add_workload(&m->c, w, &spec, err, sizeof err)) {
        ps_store_remove_workload(m->store, d->name, NULL, 0);
        rc = -1;
    }
    if (rc) {
        ps_name_remove(&m->names.workloads, w);
        if (new_group) ps_name_remove(&m->names.groups, g);
        return fail(a, "%s", err);
    }
    ps_trigger_forget_workload(&m->trig, w);
    if (isnan(m->procs[proc].last_seen)) mg_apply_load(m, proc, NULL, 0);
    return 0;
}

/* Add (or remove) every edge of d, all or nothing. */
static int edit_edges(ps_manage *m, const ps_decl *d, int add, answer *a)
{
    char err[512];
    uint32_t done = 0;
    int rc = 0;
    for (; done < d->n_edges && !rc; done++) {
        const char *an = d->edges[done][0], *bn = d->edges[done][1];
        uint32_t x = ps_name_find(&m->names.workloads, an),
                 y = ps_name_find(&m->names.workloads, bn);
        if (x == PS_NONE || y == PS_NONE) {
            fail(a, "unknown workload '%s'", x == PS_NONE ? an : bn);
            rc = -1;
            break;
        }
        rc = add ? ps_store_add_dependency(m->store, an, bn, err, sizeof err)
                 : ps_store_remove_dependency(m->store, an, bn, err, sizeof err);
        if (!rc) {
            rc = add ? ps_cluster_add_edge(&m->c, x, y, err, sizeof err)
                     : ps_cluster_remove_edge(&m->c, x, y, err, sizeof err);
            if (rc && add) ps_store_remove_dependency(m->store, an, bn, NULL, 0);
            if (rc && !add) ps_store_add_dependency(m->store, an, bn, NULL, 0);
        }
        if (rc) {
            fail(a, "%s", err);
            break;
        }
    }
    /* Undo the edges already changed. */
    while (rc && done-- > 0) {
        const char *an = d->edges[done][0], *bn = d->edges[done][1];
        uint32_t x = ps_name_find(&m->names.workloads, an),
                 y = ps_name_find(&m->names.workloads, bn);
        if (add) {
            ps_store_remove_dependency(m->store, an, bn, NULL, 0);
            ps_cluster_remove_edge(&m->c, x, y, NULL, 0);
        } else {
            ps_store_add_dependency(m->store, an, bn, NULL, 0);
            ps_cluster_add_edge(&m->c, x, y, NULL, 0);
        }
    }
    return rc;
}

/* ---- removals ---- */

static int remove_processor(ps_manage *m, const char *name, answer *a)
{
    char err[512];
    uint32_t p = ps_name_find(&m->names.processors, name);
    if (p == PS_NONE) return fail(a, "no processor '%s'", name);
    for (size_t i = 0; i < m->n_xfers; i++)
        if (m->xfers[i].src == p || m->xfers[i].dst == p)
            return fail(a, "processor '%s' has transfer %lld in flight; wait for it to end", name,
                        (long long)m->xfers[i].id);
    if (ps_store_remove_processor(m->store, name, err, sizeof err)) return fail(a, "%s", err);
    if (ps_cluster_remove_processor(&m->c, p, err, sizeof err)) {
        ps_store_processor rec;
        if (!ps_store_processor_from(&m->c, &m->names, p, &rec, NULL, 0))
            ps_store_add_processor(m->store, &rec, NULL, 0);
        return fail(a, "%s", err);
    }
    mg_forget(m, p, PS_NONE);
    ps_trigger_forget_processor(&m->trig, p);
    ps_names_remove_processor(&m->names, p);
    mg_index_build(m);
    return 0;
}

static int remove_workload(ps_manage *m, const char *name, answer *a)
{
    char err[512];
    uint32_t w = ps_name_find(&m->names.workloads, name);
    if (w == PS_NONE) return fail(a, "no workload '%s'", name);
    for (size_t i = 0; i < m->n_xfers; i++)
        if (m->xfers[i].w == w)
            return fail(a, "workload '%s' has transfer %lld in flight; wait for it to end", name,
                        (long long)m->xfers[i].id);
    if (ps_store_remove_workload(m->store, name, err, sizeof err)) return fail(a, "%s", err);
    uint32_t g = m->c.work[w].group, host = m->c.work[w].proc;
    ps_cluster_remove_workload(&m->c, w, NULL, 0); /* the store held the same workload */
    if (g && m->c.group_first[g] == PS_NONE) ps_name_remove(&m->names.groups, g);
    mg_forget(m, PS_NONE, w);
    ps_trigger_forget_workload(&m->trig, w);
    ps_name_remove(&m->names.workloads, w);
    if (isnan(m->procs[host].last_seen)) mg_apply_load(m, host, NULL, 0);
    return 0;
}

static int remove_class(ps_manage *m, const char *name, answer *a)
{
    char err[512];
    uint32_t k = ps_name_find(&m->names.classes, name);
    if (k == PS_NONE) return fail(a, "no class '%s'", name);
    if (ps_store_remove_class(m->store, name, err, sizeof err)) return fail(a, "%s", err);
    ps_name_remove(&m->names.classes, k);
    return 0;
}

/* ---- show ---- */

static void show_processor(ps_manage *m, uint32_t p, answer *a)
{
    const ps_processor *x = &m->c.proc[p];
    const mg_proc *s = &m->procs[p];
    say(a, "processor %s class=%s id=%llu agent=%s alive=%s\n", ps_name_of(&m->names.processors, p),
        ps_name_of(&m->names.classes, x->cls),
        (unsigned long long)ps_names_processor_id(&m->names, p),
        *ps_names_agent(&m->names, p) ? ps_names_agent(&m->names, p) : "(none)",
        x->alive ? "yes" : "no");
    say(a, "  pfp %.6f (threshold %.4f, held %u) cpu %.3f mem %.3f net %.3f\n", x->pfp,
        ps_thresholds_effective(&m->th, x->cls), ps_trigger_held(&m->trig, p), x->cpu_util,
        x->mem_util, x->net_util);
    if (isnan(s->last_seen))
        say(a, "  last record: none since the manager started\n");
    else
        say(a, "  last record: %.1f s ago (stream time)\n", m->now - s->last_seen);
    say(a, "  workloads (%u):", x->n_workloads);
    for (uint32_t w = x->first; w != PS_NONE; w = m->c.work[w].next)
        say(a, " %s%s", ps_name_of(&m->names.workloads, w),
            m->c.work[w].dest != PS_NONE ? " (leaving)" : "");
    say(a, "\n  transfers in: %u\n", x->inbound);
}

static void show_workload(ps_manage *m, uint32_t w, answer *a)
{
    const ps_workload *x = &m->c.work[w];
    say(a, "workload %s on=%s cpu=%g mem=%.0f state=%.0f criticality=%g",
        ps_name_of(&m->names.workloads, w), ps_name_of(&m->names.processors, x->proc), x->cpu,
        x->mem, x->state_bytes, x->criticality);
    if (x->group) say(a, " group=%s", ps_name_of(&m->names.groups, x->group));
    say(a, "\n");
    for (size_t i = 0; i < m->n_xfers; i++)
        if (m->xfers[i].w == w)
            say(a, "  transfer %lld (%s) to %s, %s\n", (long long)m->xfers[i].id,
                ps_transfer_kind_name(m->xfers[i].kind), ps_name_of(&m->names.processors, x->dest),
                m->xfers[i].submitted ? "in flight" : "queued");
    for (int dir = 0; dir < 2; dir++) {
        uint32_t n;
        const uint32_t *e =
            dir ? ps_cluster_dependents(&m->c, w, &n) : ps_cluster_dependencies(&m->c, w, &n);
        say(a, "  %s (%u):", dir ? "dependents" : "depends on", n);
        for (uint32_t i = 0; i < n; i++)
            say(a, " %s", ps_name_of(&m->names.workloads, e[i]));
        say(a, "\n");
    }
}

static void show_class(ps_manage *m, uint32_t k, answer *a)
{
    const ps_threshold_class *t = &m->th.cls[k];
    say(a, "class %s threshold %.6f (base %.3f log-odds, environment %+.3f)\n",
        ps_name_of(&m->names.classes, k), ps_thresholds_effective(&m->th, k), t->base,
        m->th.env_offset);
    say(a, "  outcome rates: averted %.3f unnecessary %.3f disruptive %.3f missed %.3f\n",
        t->rate[0], t->rate[1], t->rate[2], t->rate[3]);
}

static int show(ps_manage *m, const char *name, answer *a)
{
    say(a, "ok\n");
    uint32_t k;
    int found = 0;
    if (!*name) {
        say(a,
            "%u processor(s), %u workload(s), %llu dependencies; stream time %.3f; %lld "
            "passes; %zu transfer(s) open; %zu shift(s) await their outcome\n",
            m->c.n_processors, m->c.n_workloads, (unsigned long long)m->c.n_edges, m->now,
            (long long)m->tick, m->n_xfers, m->n_pending);
        for (k = 0; k < m->c.n_classes; k++)
            if (ps_name_of(&m->names.classes, k)) show_class(m, k, a);
        return 0;
    }
    if ((k = ps_name_find(&m->names.processors, name)) != PS_NONE)
        show_processor(m, k, a), found = 1;
    if ((k = ps_name_find(&m->names.workloads, name)) != PS_NONE) show_workload(m, k, a), found = 1;
    if ((k = ps_name_find(&m->names.classes, name)) != PS_NONE) show_class(m, k, a), found = 1;
    return found ? 0 : fail(a, "no processor, workload or class '%s'", name);
}

/* ---- requests ---- */

/* The word at *s (advanced past it and the blanks after), into out. */
static void word(const char **s, char *out, size_t len)
{
    size_t n = 0;
    while (**s && !isspace((unsigned char)**s)) {
        if (n + 1 < len) out[n++] = **s;
        (*s)++;
    }
    out[n] = '\0';
    while (isspace((unsigned char)**s))
        (*s)++;
}

static int request(ps_manage *m, const char *text, answer *a)
{
    char kw[16], what[16], name[PS_NAME_MAX + 8], err[1024];
    const char *s = text;
    while (isspace((unsigned char)*s))
        s++;
    const char *rest = s;
    word(&rest, kw, sizeof kw);
    if (!strcmp(kw, "show")) {
        word(&rest, name, sizeof name);
        if (*rest) return fail(a, "show takes one name at most");
        return show(m, name, a);
    }
    ps_decl *d = malloc(sizeof *d);
    if (!d) return fail(a, "out of memory");
    int rc = 0;
    if (!strcmp(kw, "remove")) {
        const char *after = rest;
        word(&after, what, sizeof what);
        if (!strcmp(what, "depends") || !strcmp(what, "flow")) {
            if (ps_workload_parse_decl(rest, strlen(rest), "request", d, err, sizeof err))
                rc = fail(a, "%s", err);
            else
                rc = edit_edges(m, d, 0, a);
        } else {
            word(&after, name, sizeof name);
            if (!name[0] || *after)
                rc = fail(a, "expected remove class|processor|workload NAME, or remove depends "
                             "B on A[, ...]");
            else if (!strcmp(what, "processor"))
                rc = remove_processor(m, name, a);
            else if (!strcmp(what, "workload"))
                rc = remove_workload(m, name, a);
            else if (!strcmp(what, "class"))
                rc = remove_class(m, name, a);
            else
                rc = fail(a, "cannot remove '%s': a class, processor, workload or depends", what);
        }
    } else if (ps_workload_parse_decl(s, strlen(s), "request", d, err, sizeof err)) {
        rc = fail(a, "%s", err);
    } else {
        switch (d->kind) {
        case PS_DECL_CLASS:
            rc = add_class(m, d, a);
            break;
        case PS_DECL_PROCESSOR:
            rc = add_processor(m, d, a);
            break;
        case PS_DECL_WORKLOAD:
            rc = add_workload(m, d, a);
            break;
        case PS_DECL_EDGES:
            rc = edit_edges(m, d, 1, a);
            break;
        }
    }
    free(d);
    if (!rc) say(a, "ok");
    return rc;
}

int mg_control_open(ps_manage *m, char *err, size_t errlen)
{
    const char *addr = m->cfg.control;
    if (!strcmp(addr, "off")) return 0;
    nng_listener l;
    int rv = nng_rep0_open(&m->ctl);
    if (rv == 0) rv = nng_socket_set_size(m->ctl, NNG_OPT_RECVMAXSZ, 65536);
    if (rv == 0) rv = nng_listener_create(&l, m->ctl, addr);
    if (rv == 0 && !strncmp(addr, "tls+", 4)) {
        nng_tls_config *tls = NULL;
        char msg[512];
        if (ps_tls_server_config(m->cfg.tls_cert, m->cfg.tls_key, m->cfg.tls_ca, &tls, msg,
                                 sizeof msg)) {
            snprintf(err, errlen, "control socket %s: %s", addr, msg);
            nng_close(m->ctl);
            return -1;
        }
        rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, tls);
        nng_tls_config_free(tls);
    }
    if (rv == 0) rv = nng_listener_start(l, 0);
    if (rv) {
        snprintf(err, errlen, "control socket %s: %s", addr, nng_strerror(rv));
        nng_close(m->ctl);
        return -1;
    }
    m->ctl_open = 1;
    return 0;
}

void mg_control_poll(ps_manage *m)
{
    if (!m->ctl_open) return;
    char *buf;
    size_t len;
    while (nng_recv(m->ctl, &buf, &len, NNG_FLAG_ALLOC | NNG_FLAG_NONBLOCK) == 0) {
        char *text = malloc(len + 1);
        answer a = {0};
        if (text) {
            memcpy(text, buf, len);
            text[len] = '\0';
            if (memchr(text, '\0', len))
                fail(&a, "a request is text without NUL bytes");
            else
                request(m, text, &a);
            if (strncmp(text + strspn(text, " \t"), "show", 4)) /* changes, not questions */
                mg_log(m, "control: %.*s -> %s", (int)strcspn(text, "\n"), text,
                       a.error ? a.buf : "ok");
        } else {
            fail(&a, "out of memory");
        }
        nng_free(buf, len);
        free(text);
        if (a.error)
            m->st.control_errors++;
        else
            m->st.control_ok++;
        /* An answer that could not be built (no memory) still answers. */
        static const char nomem[] = "error: out of memory";
        nng_send(m->ctl, a.buf ? a.buf : (char *)nomem, a.buf ? a.len : sizeof nomem - 1, 0);
        free(a.buf);
    }
}

void mg_control_close(ps_manage *m)
{
    if (!m->ctl_open) return;
    nng_close(m->ctl);
    m->ctl_open = 0;
}
