/*
 * manage_metrics.c - what the manager counts, on HTTP (docs/manage.md,
 * "Metrics"): /metrics in the Prometheus text format, /healthz, /readyz,
 * on nng's HTTP server as `preshift serve` does (serve_http.c).
 *
 * The manager thread keeps its counters in its own ps_manage_stats and
 * copies them here, with the gauges and each class's threshold, once per
 * loop; the HTTP handlers (nng's threads) and ps_manage_get_stats read the
 * copy under its mutex, so a scrape is consistent and never touches the
 * thread's state. No label names a processor or a workload; classes are
 * few (at most 64), so each class's threshold is a gauge with its name.
 */
#include "manage_internal.h"
#include "prom_text.h"

#include <nng/supplemental/http/http.h>

#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ps_manage_metrics {
    pthread_mutex_t mu;
    ps_manage_stats st;
    uint32_t n_classes;
    char class_name[PS_THRESHOLD_MAX_CLASSES][PS_NAME_MAX];
    double threshold[PS_THRESHOLD_MAX_CLASSES];
    int stopping;
};

int mg_metrics_init(ps_manage *m)
{
    m->metrics = calloc(1, sizeof *m->metrics);
    if (!m->metrics) return -1;
    if (pthread_mutex_init(&m->metrics->mu, NULL)) {
        free(m->metrics);
        m->metrics = NULL;
        return -1;
    }
    m->metrics->st.stream_time = NAN;
    return 0;
}

void mg_metrics_free(ps_manage *m)
{
    if (!m->metrics) return;
    pthread_mutex_destroy(&m->metrics->mu);
    free(m->metrics);
    m->metrics = NULL;
}

void mg_metrics_set_ready(ps_manage *m, int ready, int stopping)
{
    pthread_mutex_lock(&m->metrics->mu);
    m->metrics->st.ready = ready;
    m->metrics->stopping = stopping;
    pthread_mutex_unlock(&m->metrics->mu);
}

void mg_metrics_publish(ps_manage *m)
{
    ps_manage_stats *s = &m->st;
    s->alive = s->failed = s->never_seen = 0;
    for (uint32_t p = 0; p < m->c.max_processors; p++) {
        if (!m->c.proc[p].present) continue;
        if (m->c.proc[p].alive)
            s->alive++;
        else
            s->failed++;
        if (isnan(m->procs[p].last_seen)) s->never_seen++;
    }
    s->stream_time = m->now;
    s->in_flight = ps_transfers_in_flight(m->xf);
    s->limit = ps_transfers_limit(m->xf);
    s->stream_connections = 0;
    for (int i = 0; i < m->n_subs; i++)
        s->stream_connections += (uint32_t)ps_sub_connections(m->subs[i].sub);
    s->queued = 0;
    for (size_t i = 0; i < m->n_xfers; i++)
        s->queued += !m->xfers[i].submitted;
    ps_manage_metrics *x = m->metrics;
    pthread_mutex_lock(&x->mu);
    int ready = x->st.ready;
    x->st = *s;
    x->st.ready = ready;
    x->n_classes = 0;
    for (uint32_t k = 0; k < m->c.n_classes; k++) {
        const char *name = ps_name_of(&m->names.classes, k);
        if (!name) continue;
        snprintf(x->class_name[x->n_classes], PS_NAME_MAX, "%s", name);
        x->threshold[x->n_classes++] = ps_thresholds_effective(&m->th, k);
    }
    pthread_mutex_unlock(&x->mu);
}

void ps_manage_get_stats(ps_manage *m, ps_manage_stats *out)
{
    pthread_mutex_lock(&m->metrics->mu);
    *out = m->metrics->st;
    pthread_mutex_unlock(&m->metrics->mu);
}

/* ---- rendering ---- */

static void metric(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(FILE *out, const char *name, const char *type, const char *help, double v)
{
    metric(out, name, type, help);
    fprintf(out, "%s %.17g\n", name, v);
}

static void render(ps_manage_metrics *x, FILE *out)
{
    pthread_mutex_lock(&x->mu);
    const ps_manage_stats *s = &x->st;
    static const char *const kinds[2] = {"shift", "failover"};
    one(out, "preshift_manage_up", "gauge", "1 while the manager runs", 1);
    one(out, "preshift_manage_ready", "gauge", "1 once loaded, recovered and subscribed",
        s->ready && !x->stopping);
    one(out, "preshift_manage_stream_time_seconds", "gauge",
        "The manager's clock: the latest heartbeat time seen (0 before the first)",
        isnan(s->stream_time) ? 0 : s->stream_time);
    one(out, "preshift_manage_stream_connections", "gauge",
        "Scoring servers' streams connected to now", (double)s->stream_connections);
    one(out, "preshift_manage_passes_total", "counter", "Decision passes (the policy's ticks)",
        (double)s->passes);
    one(out, "preshift_manage_messages_total", "counter", "Stream messages received",
        (double)s->messages);
    one(out, "preshift_manage_records_total", "counter", "Scored records applied to the cluster",
        (double)s->records);
    one(out, "preshift_manage_unknown_records_total", "counter",
        "Records of processor ids the cluster does not hold", (double)s->unknown_records);
    one(out, "preshift_manage_gaps_total", "counter",
        "Gaps in a stream: records lost, or a server restarted", (double)s->gaps);
    one(out, "preshift_manage_missed_records_total", "counter", "Records lost in gaps",
        (double)s->missed_records);
    metric(out, "preshift_manage_latest_requests_total", "counter",
           "Op latest asked of a scoring server after a gap (and at start), by result");
    fprintf(out, "preshift_manage_latest_requests_total{result=\"ok\"} %llu\n",
            (unsigned long long)s->latest_ok);
    fprintf(out, "preshift_manage_latest_requests_total{result=\"failed\"} %llu\n",
            (unsigned long long)s->latest_failed);
    metric(out, "preshift_manage_processors", "gauge",
           "Processors by state (triggered: alive with PFP held above its threshold; "
           "never_seen: no record since the manager started)");
    fprintf(out, "preshift_manage_processors{state=\"alive\"} %u\n", s->alive);
    fprintf(out, "preshift_manage_processors{state=\"failed\"} %u\n", s->failed);
    fprintf(out, "preshift_manage_processors{state=\"triggered\"} %u\n", s->triggered);
    fprintf(out, "preshift_manage_processors{state=\"never_seen\"} %u\n", s->never_seen);
    metric(out, "preshift_manage_transfers_total", "counter",
           "Transfers by kind (shift, failover) and state (begun, committed, rolled_back)");
    for (int k = 0; k < 2; k++) {
        fprintf(out, "preshift_manage_transfers_total{kind=\"%s\",state=\"begun\"} %llu\n",
                kinds[k], (unsigned long long)s->begun[k]);
        fprintf(out, "preshift_manage_transfers_total{kind=\"%s\",state=\"committed\"} %llu\n",
                kinds[k], (unsigned long long)s->committed[k]);
        fprintf(out, "preshift_manage_transfers_total{kind=\"%s\",state=\"rolled_back\"} %llu\n",
                kinds[k], (unsigned long long)s->rolled_back[k]);
    }
    one(out, "preshift_manage_transfers_in_flight", "gauge", "Transfers the agents work on",
        (double)s->in_flight);
    one(out, "preshift_manage_transfers_queued", "gauge",
        "Transfers begun and waiting for room under the limit", (double)s->queued);
    one(out, "preshift_manage_transfer_limit", "gauge",
        "Transfers allowed in flight now (lowered while transfers are slow)", (double)s->limit);
    metric(out, "preshift_manage_outcomes_total", "counter",
           "How shifts ended (missed: a failure with no shift before it)");
    for (int o = 0; o < PS_OUTCOME_COUNT; o++)
        fprintf(out, "preshift_manage_outcomes_total{outcome=\"%s\"} %llu\n",
                ps_threshold_cause_name((ps_threshold_cause)o), (unsigned long long)s->outcomes[o]);
    metric(out, "preshift_manage_threshold", "gauge", "Effective PFP threshold, by class");
    for (uint32_t k = 0; k < x->n_classes; k++)
        fprintf(out, "preshift_manage_threshold{class=\"%s\"} %.9g\n", x->class_name[k],
                x->threshold[k]);
    metric(out, "preshift_manage_decisions_total", "counter",
           "Decision records, by decision (docs/policy.md)");
    for (int d = 0; d <= PS_DECIDE_NO_TARGET; d++)
        fprintf(out, "preshift_manage_decisions_total{decision=\"%s\"} %llu\n",
                ps_decision_reason_name((ps_decision_reason)d),
                (unsigned long long)s->decisions[d]);
    one(out, "preshift_manage_failovers_total", "counter",
        "Processors declared failed (silent past the failure timeout) and failed over",
        (double)s->failures);
    one(out, "preshift_manage_revivals_total", "counter", "Failed processors that reported again",
        (double)s->revivals);
    metric(out, "preshift_manage_control_requests_total", "counter",
           "Control socket requests, by answer");
    fprintf(out, "preshift_manage_control_requests_total{result=\"ok\"} %llu\n",
            (unsigned long long)s->control_ok);
    fprintf(out, "preshift_manage_control_requests_total{result=\"error\"} %llu\n",
            (unsigned long long)s->control_errors);
    one(out, "preshift_manage_store_errors_total", "counter",
        "Store writes that failed (each logged)", (double)s->store_errors);
    pthread_mutex_unlock(&x->mu);
}

/* ---- reading a scrape back ---- */

int ps_manage_stats_from_metrics(const char *text, ps_manage_stats *out, char *err, size_t errlen)
{
    static const char *const kinds[2] = {"shift", "failover"};
    ps_manage_stats s;
    memset(&s, 0, sizeof s);
    char name[160];
    double v;
#define GET(series, field)                                                                         \
    do {                                                                                           \
        if (ps_prom_value(text, series, &v)) {                                                     \
            snprintf(err, errlen, "/metrics has no series %s", series);                            \
            return -1;                                                                             \
        }                                                                                          \
        field = v;                                                                                 \
    } while (0)
    GET("preshift_manage_ready", s.ready);
    GET("preshift_manage_stream_time_seconds", s.stream_time);
    if (s.stream_time == 0) s.stream_time = NAN;
    GET("preshift_manage_stream_connections", s.stream_connections);
    GET("preshift_manage_passes_total", s.passes);
    GET("preshift_manage_messages_total", s.messages);
    GET("preshift_manage_records_total", s.records);
    GET("preshift_manage_unknown_records_total", s.unknown_records);
    GET("preshift_manage_gaps_total", s.gaps);
    GET("preshift_manage_missed_records_total", s.missed_records);
    GET("preshift_manage_latest_requests_total{result=\"ok\"}", s.latest_ok);
    GET("preshift_manage_latest_requests_total{result=\"failed\"}", s.latest_failed);
    GET("preshift_manage_processors{state=\"alive\"}", s.alive);
    GET("preshift_manage_processors{state=\"failed\"}", s.failed);
    GET("preshift_manage_processors{state=\"triggered\"}", s.triggered);
    GET("preshift_manage_processors{state=\"never_seen\"}", s.never_seen);
    static const char *const states[3] = {"begun", "committed", "rolled_back"};
    for (int k = 0; k < 2; k++) {
        uint64_t *by_state[3] = {&s.begun[k], &s.committed[k], &s.rolled_back[k]};
        for (int st = 0; st < 3; st++) {
            snprintf(name, sizeof name, "preshift_manage_transfers_total{kind=\"%s\",state=\"%s\"}",
                     kinds[k], states[st]);
            GET(name, *by_state[st]);
        }
    }
    GET("preshift_manage_transfers_in_flight", s.in_flight);
    GET("preshift_manage_transfers_queued", s.queued);
    GET("preshift_manage_transfer_limit", s.limit);
    for (int o = 0; o < PS_OUTCOME_COUNT; o++) {
        snprintf(name, sizeof name, "preshift_manage_outcomes_total{outcome=\"%s\"}",
                 ps_threshold_cause_name((ps_threshold_cause)o));
        GET(name, s.outcomes[o]);
    }
    for (int d = 0; d <= PS_DECIDE_NO_TARGET; d++) {
        snprintf(name, sizeof name, "preshift_manage_decisions_total{decision=\"%s\"}",
                 ps_decision_reason_name((ps_decision_reason)d));
        GET(name, s.decisions[d]);
    }
    GET("preshift_manage_failovers_total", s.failures);
    GET("preshift_manage_revivals_total", s.revivals);
    GET("preshift_manage_control_requests_total{result=\"ok\"}", s.control_ok);
    GET("preshift_manage_control_requests_total{result=\"error\"}", s.control_errors);
    GET("preshift_manage_store_errors_total", s.store_errors);
#undef GET
    *out = s;
    return 0;
}

/* ---- HTTP ---- */

typedef struct mg_http {
    nng_http_server *server;
    int port;
} mg_http;

static void respond(nng_aio *aio, uint16_t status, const char *type, const char *body, size_t len)
{
    nng_http_res *res = NULL;
    int rv = nng_http_res_alloc(&res);
    if (rv == 0) rv = nng_http_res_set_status(res, status);
    if (rv == 0) rv = nng_http_res_set_header(res, "Content-Type", type);
    if (rv == 0) rv = nng_http_res_copy_data(res, body, len);
    if (rv != 0) {
        if (res) nng_http_res_free(res);
        nng_aio_finish(aio, rv);
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

static ps_manage_metrics *metrics_of(nng_aio *aio)
{
    return nng_http_handler_get_data(nng_aio_get_input(aio, 1));
}

static void on_metrics(nng_aio *aio)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        nng_aio_finish(aio, NNG_ENOMEM);
        return;
    }
    render(metrics_of(aio), f);
    if (fclose(f) != 0) {
        free(text);
        nng_aio_finish(aio, NNG_ENOMEM);
        return;
    }
    respond(aio, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}

static void on_healthz(nng_aio *aio)
{
    respond(aio, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

static void on_readyz(nng_aio *aio)
{
    ps_manage_metrics *x = metrics_of(aio);
    pthread_mutex_lock(&x->mu);
    const char *why = x->stopping ? "stopping\n" : x->st.ready ? "ready\n" : "starting\n";
    pthread_mutex_unlock(&x->mu);
    respond(aio, strcmp(why, "ready\n") ? 503 : 200, "text/plain; charset=utf-8", why, strlen(why));
}

int mg_http_start(ps_manage *m, char *err, size_t errlen)
{
    if (!strcmp(m->cfg.http, "off")) return 0;
    static const struct {
        const char *path;
        void (*cb)(nng_aio *);
    } routes[] = {{"/metrics", on_metrics}, {"/healthz", on_healthz}, {"/readyz", on_readyz}};
    mg_http *h = calloc(1, sizeof *h);
    nng_url *u = NULL;
    int rv = h ? nng_url_parse(&u, m->cfg.http) : NNG_ENOMEM;
    if (rv == 0) rv = nng_http_server_hold(&h->server, u);
    for (size_t i = 0; rv == 0 && i < sizeof routes / sizeof routes[0]; i++) {
        nng_http_handler *hd = NULL;
        if ((rv = nng_http_handler_alloc(&hd, routes[i].path, routes[i].cb)) == 0 &&
            (rv = nng_http_handler_set_data(hd, m->metrics, NULL)) == 0)
            rv = nng_http_server_add_handler(h->server, hd);
        if (rv && hd) nng_http_handler_free(hd);
    }
    if (rv == 0) rv = nng_http_server_start(h->server);
    if (u) nng_url_free(u);
    if (rv) {
        snprintf(err, errlen, "HTTP: cannot serve %s: %s", m->cfg.http, nng_strerror(rv));
        if (h && h->server) nng_http_server_release(h->server);
        free(h);
        return -1;
    }
    nng_sockaddr sa;
    if (nng_http_server_get_addr(h->server, &sa) == 0 &&
        (sa.s_family == NNG_AF_INET || sa.s_family == NNG_AF_INET6))
        h->port = ntohs(sa.s_family == NNG_AF_INET ? sa.s_in.sa_port : sa.s_in6.sa_port);
    m->http = h;
    return 0;
}

int ps_manage_http_port(const ps_manage *m)
{
    return m && m->http ? ((const mg_http *)m->http)->port : 0;
}

void mg_http_stop(ps_manage *m)
{
    mg_http *h = m->http;
    if (!h) return;
    nng_http_server_stop(h->server);
    nng_http_server_release(h->server);
    free(h);
    m->http = NULL;
}
