/*
 * bench_serve.c - `preshift bench serve`: the scoring server end to end,
 * loaded by client threads over tcp loopback.
 *
 * One run = one server (processors N, metrics K) and one pace. The clients
 * first take every processor through its warm-up at full speed, unmeasured;
 * a barrier; then each sends tick after tick of its processors' heartbeats
 * until the measured time is up, paced at one tick per second or back to
 * back. A tick of one client is cut into requests of --request heartbeats
 * and sent --window at a time on REQ contexts; the next tick starts when
 * every reply of this one is in (a processor's heartbeats arrive in order).
 *
 * The peer in the same run is the server's own kernel time: values scored
 * per second of the scoring stage alone say what the kernels could do, and
 * the end-to-end rate is reported as a share of it (e2e_vs_kernels).
 */
#include "bench_serve.h"

#include "bench_clock.h"
#include "server/protocol.h"
#include "server/serve.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void ps_bench_serve_defaults(ps_bench_serve_opts *o)
{
    memset(o, 0, sizeof *o);
    o->processors[0] = 1000;
    o->processors[1] = 10000;
    o->processors[2] = 100000;
    o->n_processors = 3;
    o->metrics = 6;
    o->clients = 4;
    o->request = 1000;
    o->window = 4;
    o->duration = 10;
    o->warmup = 24;
    o->threads = 0;
    o->batch_delay = 0.005;
    o->pace = PS_BENCH_BOTH;
    o->backend = PS_BACKEND_DEFAULT;
}

/* ---- one client ------------------------------------------------------------- */

typedef struct lane {
    nng_ctx ctx;
    nng_aio *aio;
    ps_buf buf;
    ps_proto_reply reply;
    double sent;
    int busy; /* a request is out on this lane */
} lane;

typedef struct run_ctx {
    const ps_bench_serve_opts *o;
    char url[64];
    long processors;
    int paced;
    pthread_barrier_t barrier;
    double start; /* of the measured phase, set by the main thread */
} run_ctx;

typedef struct client {
    run_ctx *run;
    pthread_t thread;
    uint64_t first; /* processor ids first+1 .. first+count */
    size_t count;
    nng_socket sock;
    lane *lanes;
    /* one request's columns */
    uint64_t *ids, *seqs;
    double *ts;
    float *x;
    /* measured phase */
    double *lat;
    size_t nlat, caplat;
    uint64_t scored, requests, errors;
    double end;
    char err[256];
} client;

static float value(uint64_t p, long t, long k)
{
    uint32_t h = (uint32_t)(p * 2654435761u) ^ (uint32_t)((uint64_t)t * 40503u + (uint64_t)k * 97u);
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    return 20.0f + 5.0f * (float)k + (float)(h % 1000) * 1e-3f;
}

static int lat_push(client *c, double v)
{
    if (c->nlat == c->caplat) {
        size_t cap = c->caplat ? 2 * c->caplat : 4096;
        double *n = realloc(c->lat, cap * sizeof *n);
        if (!n) return -1;
        c->lat = n;
        c->caplat = cap;
    }
    c->lat[c->nlat++] = v;
    return 0;
}

/* Encode and send heartbeats of processors [from, from+n) at tick t on lane l. */
static int send_chunk(client *c, lane *l, size_t from, size_t n, long t)
{
    long K = c->run->o->metrics;
    for (size_t i = 0; i < n; i++) {
        uint64_t p = c->first + from + i + 1;
        c->ids[i] = p;
        c->seqs[i] = (uint64_t)t + 1;
        c->ts[i] = 1.6e9 + (double)t;
        for (long k = 0; k < K; k++)
            c->x[i * (size_t)K + (size_t)k] = value(p, t, k);
    }
    ps_proto_request r = {.op = PS_PROTO_OP_SCORE,
                          .n = n,
                          .k = (uint32_t)K,
                          .ids = c->ids,
                          .seqs = c->seqs,
                          .ts = c->ts,
                          .metrics = c->x};
    if (ps_proto_encode_request(&l->buf, &r, PS_PROTO_FORM_COLUMNS, c->err, sizeof c->err))
        return -1;
    nng_msg *msg;
    if (nng_msg_alloc(&msg, l->buf.len)) {
        snprintf(c->err, sizeof c->err, "out of memory");
        return -1;
    }
    memcpy(nng_msg_body(msg), l->buf.data, l->buf.len);
    nng_aio_set_msg(l->aio, msg);
    l->sent = bench_now();
    nng_ctx_send(l->ctx, l->aio);
    l->busy = 1;
    return 0;
}

/* Wait for lane l's send, then its reply; count what it says. */
static int finish_lane(client *c, lane *l, int measured)
{
    l->busy = 0;
    nng_aio_wait(l->aio);
    int rv = nng_aio_result(l->aio);
    if (rv) {
        nng_msg_free(nng_aio_get_msg(l->aio));
        snprintf(c->err, sizeof c->err, "send: %s", nng_strerror(rv));
        return -1;
    }
    nng_ctx_recv(l->ctx, l->aio);
    nng_aio_wait(l->aio);
    if ((rv = nng_aio_result(l->aio)) != 0) {
        snprintf(c->err, sizeof c->err, "receive: %s", nng_strerror(rv));
        return -1;
    }
    double got = bench_now();
    nng_msg *msg = nng_aio_get_msg(l->aio);
    rv = ps_proto_decode_reply(nng_msg_body(msg), nng_msg_len(msg), &l->reply, c->err,
                               sizeof c->err);
    nng_msg_free(msg);
    if (rv) return -1;
    if (!measured) return 0;
    c->requests++;
    if (l->reply.op != PS_PROTO_OP_SCORE) {
        c->errors++;
        return 0;
    }
    for (size_t i = 0; i < l->reply.score.n; i++)
        c->scored += l->reply.score.results[i].state == PS_PROTO_STATE_SCORED;
    return lat_push(c, got - l->sent);
}

/* Every heartbeat of tick t, --window requests at a time. */
static int send_tick(client *c, long t, int measured)
{
    const ps_bench_serve_opts *o = c->run->o;
    size_t req = (size_t)o->request, W = (size_t)o->window;
    for (size_t at = 0; at < c->count;) {
        size_t used = 0;
        for (; used < W && at < c->count; used++) {
            size_t n = c->count - at < req ? c->count - at : req;
            if (send_chunk(c, &c->lanes[used], at, n, t)) return -1;
            at += n;
        }
        for (size_t i = 0; i < used; i++)
            if (finish_lane(c, &c->lanes[i], measured)) {
                for (size_t j = i + 1; j < used; j++)
                    nng_aio_wait(c->lanes[j].aio);
                return -1;
            }
    }
    return 0;
}

static void sleep_until(double t)
{
    double d = t - bench_now();
    if (d <= 0) return;
    struct timespec ts = {(time_t)d, (long)((d - floor(d)) * 1e9)};
    nanosleep(&ts, NULL);
}

static void *client_main(void *arg)
{
    client *c = arg;
    run_ctx *run = c->run;
    const ps_bench_serve_opts *o = run->o;
    long t = 0, warm = o->warmup + 2;
    int failed = 0;
    for (; t < warm && !failed; t++)
        failed = send_tick(c, t, 0) != 0;
    pthread_barrier_wait(&run->barrier); /* warmed up */
    pthread_barrier_wait(&run->barrier); /* run->start is set */
    for (long i = 0; !failed; i++, t++) {
        double due = run->start + (double)i;
        if (run->paced) {
            if (due >= run->start + o->duration) break;
            sleep_until(due);
        } else if (bench_now() >= run->start + o->duration) {
            break;
        }
        failed = send_tick(c, t, 1) != 0;
    }
    c->end = bench_now();
    if (failed && !c->err[0]) snprintf(c->err, sizeof c->err, "failed");
    return NULL;
}

static int client_open(client *c, char *err, size_t errlen)
{
    const ps_bench_serve_opts *o = c->run->o;
    size_t req = (size_t)o->request, W = (size_t)o->window, K = (size_t)o->metrics;
    c->ids = malloc(req * sizeof *c->ids);
    c->seqs = malloc(req * sizeof *c->seqs);
    c->ts = malloc(req * sizeof *c->ts);
    c->x = malloc(req * K * sizeof *c->x);
    c->lanes = calloc(W, sizeof *c->lanes);
    if (!c->ids || !c->seqs || !c->ts || !c->x || !c->lanes) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rv = nng_req0_open(&c->sock);
    if (rv == 0) {
        nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, PS_PROTO_MAX_MESSAGE);
        /* A slow tick must not look like a lost request: no resends. */
        nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
        rv = nng_dial(c->sock, c->run->url, NULL, 0);
    }
    for (size_t i = 0; rv == 0 && i < W; i++) {
        rv = nng_ctx_open(&c->lanes[i].ctx, c->sock);
        if (rv == 0) rv = nng_aio_alloc(&c->lanes[i].aio, NULL, NULL);
        if (rv == 0) nng_aio_set_timeout(c->lanes[i].aio, 60000);
    }
    if (rv) snprintf(err, errlen, "client on %s: %s", c->run->url, nng_strerror(rv));
    return rv ? -1 : 0;
}

static void client_close(client *c)
{
    const ps_bench_serve_opts *o = c->run->o;
    for (long i = 0; c->lanes && i < o->window; i++) {
        if (c->lanes[i].aio) nng_aio_free(c->lanes[i].aio);
        ps_buf_free(&c->lanes[i].buf);
        ps_proto_reply_free(&c->lanes[i].reply);
    }
    nng_close(c->sock);
    free(c->lanes);
    free(c->ids);
    free(c->seqs);
    free(c->ts);
    free(c->x);
    free(c->lat);
}

/* ---- one run ------------------------------------------------------------------ */

typedef struct result {
    long processors;
    int paced;
    double seconds, heartbeats_per_s, values_per_s;
    double p50, p99, p999; /* ms */
    uint64_t requests, scored, errors, batches;
    double stage[PS_NSTAGES];
    double kernel_values_per_s;
    double stop_s, state_mb; /* with state_dir: the stop (its snapshot) and the file */
} result;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const double *v, size_t n, double q)
{
    if (n == 0) return NAN;
    size_t i = (size_t)ceil(q * (double)n);
    return v[i ? i - 1 : 0];
}

static int run_one(const ps_bench_serve_opts *o, long N, int paced, result *res, FILE *err)
{
    memset(res, 0, sizeof *res);
    res->processors = N;
    res->paced = paced;
    ps_serve_config cfg;
    ps_serve_config_default(&cfg);
    snprintf(cfg.listen, sizeof cfg.listen, "tcp://127.0.0.1:0");
    snprintf(cfg.publish, sizeof cfg.publish, "tcp://127.0.0.1:0");
    snprintf(cfg.http, sizeof cfg.http, "off");
    cfg.metrics = o->metrics;
    cfg.max_processors = N;
    cfg.warmup = o->warmup;
    cfg.threads = o->threads;
    cfg.backend = o->backend;
    cfg.batch_delay = o->batch_delay;
    cfg.evict_after = 0;
    long lanes = o->clients * o->window;
    cfg.contexts = lanes > 64 ? lanes : 64;
    if (cfg.max_queue < lanes * o->request) cfg.max_queue = lanes * o->request;
    cfg.quiet = 1;
    if (o->state_dir) {
        snprintf(cfg.state, sizeof cfg.state, "%s/bench-serve-%ld.state", o->state_dir, N);
        cfg.snapshot_every = 1e9; /* at start (empty) and at stop only */
        remove(cfg.state);
    }
    char msg[1024];
    ps_serve *s = ps_serve_start(&cfg, msg, sizeof msg);
    if (!s) {
        fprintf(err, "bench serve: server: %s\n", msg);
        return -1;
    }
    run_ctx run = {.o = o, .processors = N, .paced = paced};
    snprintf(run.url, sizeof run.url, "tcp://127.0.0.1:%d", ps_serve_port(s, PS_SERVE_REP));
    size_t C = (size_t)o->clients;
    if ((long)C > N) C = (size_t)N;
    client *cl = calloc(C, sizeof *cl);
    int rc = cl ? 0 : -1;
    size_t started = 0;
    if (rc == 0 && pthread_barrier_init(&run.barrier, NULL, (unsigned)C + 1)) rc = -1;
    for (size_t i = 0; rc == 0 && i < C; i++) {
        cl[i].run = &run;
        cl[i].first = (uint64_t)((size_t)N * i / C);
        cl[i].count = (size_t)N * (i + 1) / C - (size_t)cl[i].first;
        rc = client_open(&cl[i], msg, sizeof msg);
    }
    if (rc) {
        fprintf(err, "bench serve: %s\n", cl ? msg : "out of memory");
        if (cl)
            for (size_t i = 0; i < C; i++)
                if (cl[i].run) client_close(&cl[i]);
        free(cl);
        ps_serve_stop(s);
        return -1;
    }
    double w0 = bench_now();
    for (; started < C; started++)
        if (pthread_create(&cl[started].thread, NULL, client_main, &cl[started])) break;
    if (started < C) {
        /* Cannot happen short of thread exhaustion; the barrier would hang. */
        fprintf(err, "bench serve: cannot start client threads\n");
        abort();
    }
    pthread_barrier_wait(&run.barrier);
    ps_serve_stats before, after;
    ps_serve_get_stats(s, &before);
    fprintf(err, "  warmed up %ld processors in %.1f s; measuring for %g s\n", N, bench_now() - w0,
            o->duration);
    run.start = bench_now();
    pthread_barrier_wait(&run.barrier);
    double end = run.start;
    size_t nlat = 0;
    for (size_t i = 0; i < C; i++) {
        pthread_join(cl[i].thread, NULL);
        if (cl[i].err[0]) {
            fprintf(err, "bench serve: client %zu: %s\n", i, cl[i].err);
            rc = -1;
        }
        if (cl[i].end > end) end = cl[i].end;
        nlat += cl[i].nlat;
        res->requests += cl[i].requests;
        res->scored += cl[i].scored;
        res->errors += cl[i].errors;
    }
    ps_serve_get_stats(s, &after);
    double *lat = malloc((nlat ? nlat : 1) * sizeof *lat);
    if (lat) {
        size_t at = 0;
        for (size_t i = 0; i < C; i++) {
            memcpy(lat + at, cl[i].lat, cl[i].nlat * sizeof *lat);
            at += cl[i].nlat;
        }
        qsort(lat, nlat, sizeof *lat, cmp_double);
        res->p50 = 1e3 * percentile(lat, nlat, 0.50);
        res->p99 = 1e3 * percentile(lat, nlat, 0.99);
        res->p999 = 1e3 * percentile(lat, nlat, 0.999);
    }
    free(lat);
    /* Paced, the run lasts its ticks' seconds however fast the last one came back. */
    res->seconds = end - run.start;
    if (paced && res->seconds < o->duration) res->seconds = o->duration;
    res->heartbeats_per_s = (double)res->scored / res->seconds;
    res->values_per_s = res->heartbeats_per_s * (double)o->metrics;
    res->batches = after.batches - before.batches;
    for (int k = 0; k < PS_NSTAGES; k++)
        res->stage[k] = after.stage_seconds[k] - before.stage_seconds[k];
    if (res->stage[PS_STAGE_SCORE] > 0)
        res->kernel_values_per_s =
            (double)res->scored * (double)o->metrics / res->stage[PS_STAGE_SCORE];
    if (res->errors) {
        fprintf(err, "bench serve: %llu error replies\n", (unsigned long long)res->errors);
        rc = -1;
    }
    for (size_t i = 0; i < C; i++)
        client_close(&cl[i]);
    free(cl);
    pthread_barrier_destroy(&run.barrier);
    double s0 = bench_now();
    ps_serve_stop(s);
    res->stop_s = bench_now() - s0;
    struct stat st;
    if (o->state_dir && stat(cfg.state, &st) == 0) {
        res->state_mb = (double)st.st_size / 1e6;
        fprintf(err, "  state of %ld processors: %.1f MB, stop with its snapshot %.2f s\n", N,
                res->state_mb, res->stop_s);
        remove(cfg.state);
    }
    return rc;
}

/* ---- output --------------------------------------------------------------------- */

static void print_json(FILE *out, const ps_bench_serve_opts *o, const result *r)
{
    double total = 0;
    for (int k = 0; k < PS_NSTAGES; k++)
        total += r->stage[k];
    fprintf(out,
            "{\"bench\":\"serve\",\"processors\":%ld,\"metrics\":%ld,\"mode\":\"%s\","
            "\"clients\":%ld,\"request\":%ld,\"window\":%ld,\"seconds\":%.3f,"
            "\"requests\":%llu,\"scored\":%llu,\"errors\":%llu,\"batches\":%llu,"
            "\"heartbeats_per_s\":%.1f,\"values_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
            "\"p999_ms\":%.3f,\"kernel_values_per_s\":%.1f,\"e2e_vs_kernels\":%.3f",
            r->processors, o->metrics, r->paced ? "paced" : "max", o->clients, o->request,
            o->window, r->seconds, (unsigned long long)r->requests, (unsigned long long)r->scored,
            (unsigned long long)r->errors, (unsigned long long)r->batches, r->heartbeats_per_s,
            r->values_per_s, r->p50, r->p99, r->p999, r->kernel_values_per_s,
            r->kernel_values_per_s > 0 ? r->values_per_s / r->kernel_values_per_s : 0.0);
    if (o->state_dir) fprintf(out, ",\"state_mb\":%.3f,\"stop_s\":%.3f", r->state_mb, r->stop_s);
    for (int k = 0; k < PS_NSTAGES; k++)
        fprintf(out, ",\"%s_s\":%.4f,\"%s_share\":%.3f", ps_stage_names[k], r->stage[k],
                ps_stage_names[k], total > 0 ? r->stage[k] / total : 0.0);
    fprintf(out, "}\n");
    fflush(out);
}

static void print_header(FILE *out)
{
    fprintf(out, "%10s %6s %12s %12s %9s %9s %9s %8s   %s\n", "processors", "mode", "heartbeats/s",
            "values/s", "p50 ms", "p99 ms", "p99.9 ms", "vs kern",
            "time: decode batch score reply publish");
}

static void print_row(FILE *out, const result *r)
{
    double total = 0;
    for (int k = 0; k < PS_NSTAGES; k++)
        total += r->stage[k];
    fprintf(out, "%10ld %6s %12.0f %12.0f %9.2f %9.2f %9.2f %7.0f%%  ", r->processors,
            r->paced ? "paced" : "max", r->heartbeats_per_s, r->values_per_s, r->p50, r->p99,
            r->p999,
            r->kernel_values_per_s > 0 ? 100 * r->values_per_s / r->kernel_values_per_s : 0.0);
    for (int k = 0; k < PS_NSTAGES; k++)
        fprintf(out, " %5.1f%%", total > 0 ? 100 * r->stage[k] / total : 0.0);
    fprintf(out, "\n");
    fflush(out);
}

int ps_bench_serve(const ps_bench_serve_opts *o, FILE *out, FILE *err)
{
    int failed = 0;
    if (!o->json) {
        fprintf(out,
                "preshift bench serve: K = %ld metrics, %ld clients x %ld requests in flight of "
                "%ld heartbeats, tcp loopback, %g s per run\n",
                o->metrics, o->clients, o->window, o->request, o->duration);
        print_header(out);
    }
    for (size_t i = 0; i < o->n_processors; i++) {
        for (int paced = 1; paced >= 0; paced--) {
            if (!(o->pace & (paced ? PS_BENCH_PACED : PS_BENCH_MAX))) continue;
            fprintf(err, "bench serve: %ld processors, %s\n", o->processors[i],
                    paced ? "one tick per second" : "as fast as possible");
            result r;
            if (run_one(o, o->processors[i], paced, &r, err)) {
                failed = 1;
                continue;
            }
            if (o->json)
                print_json(out, o, &r);
            else
                print_row(out, &r);
        }
    }
    if (!o->json)
        fprintf(out, "vs kern: end-to-end values/s over the server's scoring stage alone\n"
                     "time: share of the server's time by stage (decode on nng's threads, the "
                     "rest on the scoring thread)\n");
    return failed;
}
