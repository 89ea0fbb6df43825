#include "serve_metrics.h"

#include <string.h>
#include <time.h>

/* Powers of 4 up to the largest tick the protocol can ask for in one request. */
static const double batch_bounds[] = {1, 4, 16, 64, 256, 1024, 4096, 16384, 65536};
/* 100 us .. 10 s, roughly x2.5: a tick of a few processors up to a stalled one. */
static const double seconds_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};

double ps_serve_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int ps_serve_metrics_init(ps_serve_metrics *m)
{
    memset(m, 0, sizeof *m);
    if (pthread_mutex_init(&m->mu, NULL)) return -1;
    m->started = ps_serve_now();
    m->batch_size.bounds = batch_bounds;
    m->batch_size.nbounds = sizeof batch_bounds / sizeof batch_bounds[0];
    m->tick_seconds.bounds = seconds_bounds;
    m->tick_seconds.nbounds = sizeof seconds_bounds / sizeof seconds_bounds[0];
    m->latency = m->tick_seconds;
    return 0;
}

void ps_serve_metrics_destroy(ps_serve_metrics *m)
{
    pthread_mutex_destroy(&m->mu);
}

void ps_histogram_observe(ps_histogram *h, double x)
{
    size_t b = 0;
    while (b < h->nbounds && x > h->bounds[b])
        b++;
    h->counts[b]++;
    h->count++;
    h->sum += x;
}

const char *const ps_stage_names[PS_NSTAGES] = {"decode", "batch", "score", "reply", "publish"};

void ps_serve_metrics_request(ps_serve_metrics *m, int op, double decode_seconds)
{
    if (op < 0 || op >= PS_PROTO_NOPS) op = PS_PROTO_OP_NONE;
    pthread_mutex_lock(&m->mu);
    m->requests[op]++;
    m->stage_seconds[PS_STAGE_DECODE] += decode_seconds;
    pthread_mutex_unlock(&m->mu);
}

void ps_serve_metrics_error(ps_serve_metrics *m, int code)
{
    if (code <= 0 || code >= PS_PROTO_NCODES) code = PS_PROTO_E_INTERNAL;
    pthread_mutex_lock(&m->mu);
    m->errors[code]++;
    pthread_mutex_unlock(&m->mu);
}

void ps_serve_metrics_reply(ps_serve_metrics *m, double latency, double reply_seconds)
{
    pthread_mutex_lock(&m->mu);
    ps_histogram_observe(&m->latency, latency);
    m->stage_seconds[PS_STAGE_REPLY] += reply_seconds;
    pthread_mutex_unlock(&m->mu);
}

void ps_serve_metrics_latest(ps_serve_metrics *m, double reply_seconds)
{
    pthread_mutex_lock(&m->mu);
    m->stage_seconds[PS_STAGE_REPLY] += reply_seconds;
    pthread_mutex_unlock(&m->mu);
}

ps_serve_status ps_serve_metrics_status(ps_serve_metrics *m)
{
    ps_serve_status s;
    pthread_mutex_lock(&m->mu);
    memcpy(s.processors, m->processors, sizeof s.processors);
    s.tick = m->tick;
    s.uptime = ps_serve_now() - m->started;
    s.ready = m->ready;
    s.stopping = m->stopping;
    pthread_mutex_unlock(&m->mu);
    if (s.uptime < 0) s.uptime = 0;
    return s;
}

static void header(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(FILE *out, const char *name, const char *help, const ps_histogram *h)
{
    header(out, name, "histogram", help);
    uint64_t cum = 0;
    for (size_t b = 0; b < h->nbounds; b++) {
        cum += h->counts[b];
        fprintf(out, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[b], (unsigned long long)cum);
    }
    fprintf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
    fprintf(out, "%s_sum %.9g\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->count);
}

void ps_serve_metrics_render(ps_serve_metrics *m, FILE *out)
{
    static const char *const proc_states[PS_PROCS_NSTATES] = {"warming_up", "scored", "stale"};
    pthread_mutex_lock(&m->mu);
    header(out, "preshift_up", "gauge", "1 while the server runs");
    fprintf(out, "preshift_up 1\n");
    header(out, "preshift_uptime_seconds", "gauge", "Seconds since the server started");
    fprintf(out, "preshift_uptime_seconds %.3f\n", ps_serve_now() - m->started);

    header(out, "preshift_requests_total", "counter",
           "Requests received, by op (invalid: not decodable far enough to tell)");
    static const int request_ops[] = {PS_PROTO_OP_NONE, PS_PROTO_OP_SCORE, PS_PROTO_OP_HEALTH,
                                      PS_PROTO_OP_INFO, PS_PROTO_OP_LATEST};
    for (size_t i = 0; i < sizeof request_ops / sizeof request_ops[0]; i++) {
        int op = request_ops[i];
        fprintf(out, "preshift_requests_total{op=\"%s\"} %llu\n",
                op == PS_PROTO_OP_NONE ? "invalid" : ps_proto_op_name(op),
                (unsigned long long)m->requests[op]);
    }

    header(out, "preshift_rejected_requests_total", "counter",
           "Requests answered with an error reply, by reason (the error name)");
    for (int c = 1; c < PS_PROTO_NCODES; c++)
        fprintf(out, "preshift_rejected_requests_total{reason=\"%s\"} %llu\n",
                ps_proto_code_name(c), (unsigned long long)m->errors[c]);

    header(out, "preshift_heartbeats_total", "counter",
           "Heartbeats in score requests that were not refused whole, by outcome");
    /* Every state but unknown, which only a latest reply says. */
    for (int s = 0; s < PS_PROTO_NSTATES; s++)
        if (s != PS_PROTO_STATE_UNKNOWN)
            fprintf(out, "preshift_heartbeats_total{state=\"%s\"} %llu\n", ps_proto_state_name(s),
                    (unsigned long long)m->heartbeats[s]);

    header(out, "preshift_batches_total", "counter", "Ticks scored (one kernel call each)");
    fprintf(out, "preshift_batches_total %llu\n", (unsigned long long)m->batches);
    histogram(out, "preshift_batch_size", "Heartbeats per tick", &m->batch_size);
    histogram(out, "preshift_tick_duration_seconds", "Time of the scorer's tick alone",
              &m->tick_seconds);
    histogram(out, "preshift_scoring_latency_seconds",
              "Score request received to reply sent, queueing and batching included", &m->latency);

    header(out, "preshift_stage_seconds_total", "counter",
           "Time spent per stage: decode (nng threads), batch, score (kernels), reply "
           "(encode and send), publish");
    for (int s = 0; s < PS_NSTAGES; s++)
        fprintf(out, "preshift_stage_seconds_total{stage=\"%s\"} %.6f\n", ps_stage_names[s],
                m->stage_seconds[s]);

    header(out, "preshift_queue_depth", "gauge",
           "Heartbeats accepted and waiting for their tick or reply");
    fprintf(out, "preshift_queue_depth %llu\n", (unsigned long long)m->queue_heartbeats);
    header(out, "preshift_queue_requests", "gauge",
           "Score and latest requests waiting for their reply");
    fprintf(out, "preshift_queue_requests %llu\n", (unsigned long long)m->queue_requests);

    header(out, "preshift_processors", "gauge", "Processors tracked, by state");
    for (int s = 0; s < PS_PROCS_NSTATES; s++)
        fprintf(out, "preshift_processors{state=\"%s\"} %llu\n", proc_states[s],
                (unsigned long long)m->processors[s]);
    header(out, "preshift_tick", "gauge", "Number of the last tick scored");
    fprintf(out, "preshift_tick %llu\n", (unsigned long long)m->tick);

    header(out, "preshift_stream_subscribers", "gauge",
           "Connections to the PUB socket now (PUB drops what it sends while there are none)");
    fprintf(out, "preshift_stream_subscribers %llu\n", (unsigned long long)m->subscribers);
    header(out, "preshift_published_records_total", "counter", "Scored records sent on PUB");
    fprintf(out, "preshift_published_records_total %llu\n",
            (unsigned long long)m->published_records);
    header(out, "preshift_published_messages_total", "counter", "Messages sent on PUB");
    fprintf(out, "preshift_published_messages_total %llu\n",
            (unsigned long long)m->published_messages);
    header(out, "preshift_publish_failures_total", "counter",
           "PUB messages that could not be sent (their records are a gap on the stream)");
    fprintf(out, "preshift_publish_failures_total %llu\n", (unsigned long long)m->publish_failures);
    header(out, "preshift_evicted_processors_total", "counter",
           "Processors forgotten after --evict-after seconds of silence (slot freed)");
    fprintf(out, "preshift_evicted_processors_total %llu\n", (unsigned long long)m->evicted);
    header(out, "preshift_restored_processors", "gauge",
           "Processors restored from the state file at start");
    fprintf(out, "preshift_restored_processors %llu\n", (unsigned long long)m->restored);
    header(out, "preshift_snapshots_total", "counter", "State snapshots written");
    fprintf(out, "preshift_snapshots_total %llu\n", (unsigned long long)m->snapshots);
    header(out, "preshift_snapshot_failures_total", "counter",
           "State snapshots that failed (the previous file stays)");
    fprintf(out, "preshift_snapshot_failures_total %llu\n",
            (unsigned long long)m->snapshot_failures);
    header(out, "preshift_snapshot_duration_seconds", "gauge",
           "Time the last snapshot held the scoring thread");
    fprintf(out, "preshift_snapshot_duration_seconds %.6f\n", m->snapshot_seconds);
    header(out, "preshift_snapshot_processors", "gauge", "Processors in the last snapshot");
    fprintf(out, "preshift_snapshot_processors %llu\n", (unsigned long long)m->snapshot_processors);
    header(out, "preshift_snapshot_timestamp_seconds", "gauge",
           "Unix time of the last snapshot written, 0 before the first");
    fprintf(out, "preshift_snapshot_timestamp_seconds %.3f\n", m->snapshot_time);
    header(out, "preshift_ready", "gauge",
           "1 when the model is loaded, the state restored and scoring");
    fprintf(out, "preshift_ready %d\n", m->ready && !m->stopping);
    pthread_mutex_unlock(&m->mu);
}
