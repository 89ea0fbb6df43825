/*
 * serve.c - the network side of the scoring server.
 *
 * One REP socket with N contexts, in the pattern of nng's demo/async/server.c:
 * each context is a small state machine driven by its aio's callback
 * (receive -> decode -> [batcher] -> send -> receive ...), so N requests are
 * in flight at once with no thread per client. A callback decodes, answers
 * health, info and every error itself, and hands score and latest requests
 * to the batcher (the scoring thread owns the processor table a latest
 * request reads); it never waits for scoring. The scoring thread later
 * completes the request (batch_done) by sending the reply on the same
 * context, so while a context waits for its tick no aio of it is pending.
 *
 * The PUB socket is written only by the scoring thread (publish), which
 * numbers records 1, 2, ... within a random run id and sends each record
 * with its heartbeat's metrics (docs/protocol.md).
 */
#include "serve.h"
#include "tls_setup.h"

#include "core/model.h"
#include "model_io.h"
#include "serve_batcher.h"
#include "serve_http.h"
#include "serve_metrics.h"
#include "server/protocol.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef PRESHIFT_VERSION
#define PRESHIFT_VERSION "unknown"
#endif

enum { W_RECV, W_WAIT, W_SEND };

typedef struct work {
    ps_batch_item item; /* first: batch_done gets the work back from it */
    ps_serve *srv;
    nng_aio *aio;
    nng_ctx ctx;
    int state;
    ps_proto_request req;
    ps_buf out;
    double received;
} work;

struct ps_serve {
    ps_serve_config cfg;
    char model_path[PS_SERVE_STR_MAX + 64];
    uint32_t K, hidden;
    ps_serve_metrics metrics;
    int metrics_ok;
    nng_tls_config *tls;
    nng_socket rep, pub;
    int rep_open, pub_open;
    int port[3];
    work *works;
    size_t nworks;
    ps_batcher *batcher;
    ps_serve_http *http;
    /* PUB stream: written by the scoring thread only. */
    uint64_t run, next_seq;
    ps_buf pub_buf;
};

/* ---- replies ---------------------------------------------------------------- */

static void receive(work *w)
{
    w->state = W_RECV;
    nng_ctx_recv(w->ctx, w->aio);
}

/* Send w->out; a reply that cannot be built is dropped (REQ will resend). */
static void send_out(work *w, int encoded)
{
    nng_msg *msg;
    if (encoded != PS_PROTO_OK || nng_msg_alloc(&msg, w->out.len) != 0) {
        receive(w);
        return;
    }
    memcpy(nng_msg_body(msg), w->out.data, w->out.len);
    nng_aio_set_msg(w->aio, msg);
    w->state = W_SEND;
    nng_ctx_send(w->ctx, w->aio);
}

static void reply_error(work *w, int code, const char *message)
{
    ps_serve_metrics_error(&w->srv->metrics, code);
    const uint64_t *id = w->req.has_id ? &w->req.id : NULL;
    send_out(w, ps_proto_encode_error(&w->out, id, code, "%s", message));
}

static void reply_health(work *w)
{
    ps_serve_status st = ps_serve_metrics_status(&w->srv->metrics);
    ps_proto_health h = {
        .status = st.stopping ? PS_PROTO_STATUS_STOPPING
                  : st.ready  ? PS_PROTO_STATUS_OK
                              : PS_PROTO_STATUS_STARTING,
        .uptime = st.uptime,
        .tick = st.tick,
    };
    char err[256];
    const uint64_t *id = w->req.has_id ? &w->req.id : NULL;
    send_out(w, ps_proto_encode_health_reply(&w->out, id, &h, err, sizeof err));
}

/* The protocol's texts are bounded: cut a long one at a UTF-8 character boundary. */
static void copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void reply_info(work *w)
{
    ps_serve *s = w->srv;
    ps_serve_status st = ps_serve_metrics_status(&s->metrics);
    ps_proto_info info = {
        .k = s->K,
        .hidden = s->hidden,
        .run = s->run,
        .warming_up = st.processors[PS_PROCS_WARMING],
        .scored = st.processors[PS_PROCS_SCORED],
        .stale = st.processors[PS_PROCS_STALE],
        .max_message_bytes = PS_PROTO_MAX_MESSAGE,
        .max_batch = PS_PROTO_MAX_BATCH,
        .max_processors = (uint64_t)s->cfg.max_processors,
    };
    snprintf(info.version, sizeof info.version, "preshift %s", PRESHIFT_VERSION);
    copy_text(info.model, sizeof info.model, s->model_path);
    copy_text(info.backend, sizeof info.backend, ps_batcher_backend(s->batcher));
    char err[256];
    const uint64_t *id = w->req.has_id ? &w->req.id : NULL;
    send_out(w, ps_proto_encode_info_reply(&w->out, id, &info, err, sizeof err));
}

/* The batcher's completion, on the scoring thread. */
static void batch_done(void *user, ps_batch_item *it, int code, const char *message)
{
    (void)user;
    work *w = (work *)it;
    ps_serve *s = w->srv;
    double received = w->received, t0 = ps_serve_now();
    int latest = w->req.op == PS_PROTO_OP_LATEST;
    if (code != PS_PROTO_OK) {
        reply_error(w, code, message ? message : ps_proto_code_name(code));
    } else {
        char err[256];
        const uint64_t *id = w->req.has_id ? &w->req.id : NULL;
        int rc;
        if (latest) {
            ps_proto_latest_reply r = {
                .tick = it->tick, .n = w->req.n, .results = it->results, .ts = it->ts};
            rc = ps_proto_encode_latest_reply(&w->out, id, &r, err, sizeof err);
        } else {
            ps_proto_score_reply r = {.tick = it->tick, .n = w->req.n, .results = it->results};
            rc = ps_proto_encode_score_reply(&w->out, id, &r, err, sizeof err);
        }
        if (rc != PS_PROTO_OK)
            reply_error(w, PS_PROTO_E_INTERNAL, err);
        else
            send_out(w, rc);
    }
    /* w may be receiving its next request already: only s is used now. */
    double t1 = ps_serve_now();
    if (latest)
        ps_serve_metrics_latest(&s->metrics, t1 - t0);
    else
        ps_serve_metrics_reply(&s->metrics, t1 - received, t1 - t0);
}

/* The batcher's records of one tick and their metrics, on the scoring thread. */
static void publish(void *user, uint64_t tick, double t, const ps_proto_record *records, size_t n,
                    uint32_t k, const float *x)
{
    ps_serve *s = user;
    uint64_t msgs = 0, failures = 0;
    double t0 = ps_serve_now();
    /* At most PS_PROTO_MAX_BATCH records a message, and fewer when their
     * metrics would take it past PS_PROTO_MAX_MESSAGE (K = 256: 15 842). */
    size_t most = ps_proto_pub_max_records(k);
    for (size_t at = 0; at < n; at += most) {
        size_t m = n - at < most ? n - at : most;
        ps_proto_pub pub = {.run = s->run,
                            .seq = s->next_seq,
                            .tick = tick,
                            .t = t,
                            .n = m,
                            .records = records + at,
                            .k = k,
                            .x = x + at * k};
        /* Numbers are spent even when sending fails: the subscriber sees a gap. */
        s->next_seq += m;
        char err[256];
        nng_msg *msg;
        if (ps_proto_encode_pub(&s->pub_buf, &pub, err, sizeof err) != PS_PROTO_OK ||
            nng_msg_alloc(&msg, s->pub_buf.len) != 0) {
            failures++;
            continue;
        }
        memcpy(nng_msg_body(msg), s->pub_buf.data, s->pub_buf.len);
        /* PUB never waits for a subscriber; it drops instead. */
        if (nng_sendmsg(s->pub, msg, NNG_FLAG_NONBLOCK) != 0) {
            nng_msg_free(msg);
            failures++;
            continue;
        }
        msgs++;
    }
    pthread_mutex_lock(&s->metrics.mu);
    s->metrics.published_records += n;
    s->metrics.published_messages += msgs;
    s->metrics.publish_failures += failures;
    s->metrics.stage_seconds[PS_STAGE_PUBLISH] += ps_serve_now() - t0;
    pthread_mutex_unlock(&s->metrics.mu);
}

/* ---- the context state machine --------------------------------------------- */

static void on_request(work *w)
{
    ps_serve *s = w->srv;
    nng_msg *msg = nng_aio_get_msg(w->aio);
    w->received = ps_serve_now();
    char err[PS_PROTO_MAX_TEXT + 1];
    int rc = ps_proto_decode_request(nng_msg_body(msg), nng_msg_len(msg), &w->req, err, sizeof err);
    nng_msg_free(msg);
    ps_serve_metrics_request(&s->metrics, rc == PS_PROTO_OK ? (int)w->req.op : PS_PROTO_OP_NONE,
                             ps_serve_now() - w->received);
    if (rc != PS_PROTO_OK) {
        reply_error(w, rc, err);
        return;
    }
    switch (w->req.op) {
    case PS_PROTO_OP_HEALTH:
        reply_health(w);
        return;
    case PS_PROTO_OP_INFO:
        reply_info(w);
        return;
    case PS_PROTO_OP_SCORE:
    case PS_PROTO_OP_LATEST:
        break;
    default:
        reply_error(w, PS_PROTO_E_UNKNOWN_OP, "not a request op");
        return;
    }
    if (w->req.op == PS_PROTO_OP_SCORE && w->req.k != s->K) {
        snprintf(err, sizeof err, "heartbeats have %u metrics, the server's model takes %u",
                 (unsigned)w->req.k, (unsigned)s->K);
        reply_error(w, PS_PROTO_E_K_MISMATCH, err);
        return;
    }
    if (ps_batch_item_reserve(&w->item, w->req.n)) {
        reply_error(w, PS_PROTO_E_INTERNAL, "out of memory");
        return;
    }
    w->item.req = &w->req;
    w->state = W_WAIT;
    rc = ps_batcher_submit(s->batcher, &w->item);
    /* Once queued, the work belongs to the scoring thread until it replies. */
    if (rc == PS_PROTO_OK) return;
    reply_error(w, rc,
                rc == PS_PROTO_E_BUSY ? "the queue is full: retry later with the same seqs"
                                      : "the server is stopping");
}

static void work_cb(void *arg)
{
    work *w = arg;
    int rv = nng_aio_result(w->aio);
    switch (w->state) {
    case W_RECV:
        if (rv == NNG_ECLOSED) return;
        if (rv != 0) {
            receive(w);
            return;
        }
        on_request(w);
        return;
    case W_SEND:
        if (rv != 0) nng_msg_free(nng_aio_get_msg(w->aio));
        if (rv == NNG_ECLOSED) return;
        receive(w);
        return;
    default:
        return;
    }
}

/* ---- start and stop ---------------------------------------------------------- */

static int make_tls(ps_serve *s, char *err, size_t errlen)
{
    const ps_serve_config *c = &s->cfg;
    if (!c->tls_cert[0]) return 0;
    return ps_tls_server_config(c->tls_cert, c->tls_key, c->tls_ca, &s->tls, err, errlen);
}

static void count_subscriber(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)p;
    ps_serve_metrics *m = &((ps_serve *)arg)->metrics;
    pthread_mutex_lock(&m->mu);
    if (ev == NNG_PIPE_EV_ADD_POST)
        m->subscribers++;
    else if (m->subscribers)
        m->subscribers--;
    pthread_mutex_unlock(&m->mu);
}

static int listen_on(ps_serve *s, nng_socket sock, const char *addr, int *port, char *err,
                     size_t errlen)
{
    nng_listener l;
    int rv = nng_listener_create(&l, sock, addr);
    if (rv == 0 && !strncmp(addr, "tls+", 4))
        rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, s->tls);
    if (rv == 0) rv = nng_listener_set_size(l, NNG_OPT_RECVMAXSZ, PS_PROTO_MAX_MESSAGE);
    if (rv == 0) rv = nng_listener_start(l, 0);
    if (rv != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, nng_strerror(rv));
        return -1;
    }
    int p = 0;
    if (strncmp(addr, "ipc://", 6) && nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &p) == 0)
        *port = p;
    return 0;
}

static uint64_t random_run(void)
{
    uint64_t r = 0;
    while (r == 0)
        r = (uint64_t)nng_random() << 32 | nng_random();
    return r;
}

ps_serve *ps_serve_start(const ps_serve_config *cfg, char *err, size_t errlen)
{
    ps_serve *s = calloc(1, sizeof *s);
    ps_model model = {0};
    int rv;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    if (ps_serve_config_check(cfg, err, errlen)) goto fail;
    if (ps_serve_metrics_init(&s->metrics)) {
        snprintf(err, errlen, "cannot create the metrics mutex");
        goto fail;
    }
    s->metrics_ok = 1;

    char pathbuf[PS_SERVE_STR_MAX + 64], msg[512];
    const char *path = ps_serve_model_path(cfg, pathbuf, sizeof pathbuf);
    snprintf(s->model_path, sizeof s->model_path, "%s", path);
    if (ps_model_load(path, &model, msg, sizeof msg)) {
        snprintf(err, errlen, "%s", msg);
        goto fail;
    }
    int multivariate = model.shape.input > 1;
    if (multivariate && cfg->metrics && cfg->metrics != model.shape.input) {
        snprintf(err, errlen, "--metrics %ld: the model %s takes %d metrics", cfg->metrics, path,
                 (int)model.shape.input);
        goto fail;
    }
    if (!multivariate && !cfg->metrics) {
        snprintf(err, errlen,
                 "the model %s is univariate (one model for any metric set): --metrics K "
                 "says how many metrics a heartbeat carries",
                 path);
        goto fail;
    }
    s->K = multivariate ? (uint32_t)model.shape.input : (uint32_t)cfg->metrics;
    s->hidden = (uint32_t)model.shape.hidden;
    s->run = random_run();
    s->next_seq = 1;

    ps_batcher_config bc = {
        .model = &model,
        .scorer = cfg->scorer,
        .backend = {.kind = cfg->backend, .threads = (int)cfg->threads},
        .max_batch = (size_t)cfg->max_batch,
        .max_queue = (size_t)cfg->max_queue,
        .batch_delay = cfg->batch_delay,
        .stale_after = cfg->stale_after,
        .seed = random_run(),
        .state_path = strcmp(cfg->state, "off") ? cfg->state : NULL,
        .snapshot_every = cfg->snapshot_every,
        .evict_after = cfg->evict_after,
        .metrics = &s->metrics,
        .done = batch_done,
        .publish = strcmp(cfg->publish, "off") ? publish : NULL,
        .user = s,
    };
    bc.scorer.processors = (size_t)cfg->max_processors;
    bc.scorer.metrics = s->K;
    bc.scorer.warmup = (uint32_t)cfg->warmup;
    /* Short warm-ups keep most of their rows for the residual statistics. */
    if (bc.scorer.burn_in > bc.scorer.warmup / 4) bc.scorer.burn_in = bc.scorer.warmup / 4;
    if (make_tls(s, err, errlen)) goto fail;
    /* HTTP first: /healthz answers and /readyz says "starting" while a large
     * state file is restored. */
    if (strcmp(cfg->http, "off")) {
        s->http = ps_serve_http_start(cfg->http, s->tls, &s->metrics, err, errlen);
        if (!s->http) goto fail;
        s->port[PS_SERVE_HTTP] = ps_serve_http_port(s->http);
    }
    s->batcher = ps_batcher_start(&bc, err, errlen);
    ps_model_free(&model); /* the scorer keeps its own copy */
    if (!s->batcher) goto fail;
    pthread_mutex_lock(&s->metrics.mu);
    s->metrics.ready = 1;
    pthread_mutex_unlock(&s->metrics.mu);
    if (strcmp(cfg->publish, "off")) {
        if ((rv = nng_pub0_open(&s->pub)) != 0) {
            snprintf(err, errlen, "PUB socket: %s", nng_strerror(rv));
            goto fail;
        }
        s->pub_open = 1;
        /* No callback closes a pipe before it is added, so every add is followed by one removal. */
        if ((rv = nng_pipe_notify(s->pub, NNG_PIPE_EV_ADD_POST, count_subscriber, s)) != 0 ||
            (rv = nng_pipe_notify(s->pub, NNG_PIPE_EV_REM_POST, count_subscriber, s)) != 0) {
            snprintf(err, errlen, "PUB socket: %s", nng_strerror(rv));
            goto fail;
        }
        if (listen_on(s, s->pub, cfg->publish, &s->port[PS_SERVE_PUB], err, errlen)) goto fail;
    }
    if ((rv = nng_rep0_open(&s->rep)) != 0) {
        snprintf(err, errlen, "REP socket: %s", nng_strerror(rv));
        goto fail;
    }
    s->rep_open = 1;
    /* Before listening, so no pipe ever accepts a larger message. */
    nng_socket_set_size(s->rep, NNG_OPT_RECVMAXSZ, PS_PROTO_MAX_MESSAGE);
    s->works = calloc((size_t)cfg->contexts, sizeof *s->works);
    if (!s->works) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < (size_t)cfg->contexts; i++) {
        work *w = &s->works[i];
        w->srv = s;
        if ((rv = nng_aio_alloc(&w->aio, work_cb, w)) != 0) {
            snprintf(err, errlen, "nng aio: %s", nng_strerror(rv));
            goto fail;
        }
        s->nworks = i + 1;
        if ((rv = nng_ctx_open(&w->ctx, s->rep)) != 0) {
            snprintf(err, errlen, "nng context: %s", nng_strerror(rv));
            goto fail;
        }
    }
    if (listen_on(s, s->rep, cfg->listen, &s->port[PS_SERVE_REP], err, errlen)) goto fail;
    for (size_t i = 0; i < s->nworks; i++)
        receive(&s->works[i]);
    return s;
fail:
    ps_model_free(&model);
    ps_serve_stop(s);
    return NULL;
}

int ps_serve_port(const ps_serve *s, ps_serve_endpoint which)
{
    return s && (int)which >= 0 && which <= PS_SERVE_HTTP ? s->port[which] : 0;
}

void ps_serve_get_stats(ps_serve *s, ps_serve_stats *out)
{
    ps_serve_metrics *m = &s->metrics;
    pthread_mutex_lock(&m->mu);
    memcpy(out->stage_seconds, m->stage_seconds, sizeof out->stage_seconds);
    out->batches = m->batches;
    memcpy(out->heartbeats, m->heartbeats, sizeof out->heartbeats);
    out->requests = m->requests[PS_PROTO_OP_SCORE];
    out->subscribers = m->subscribers;
    pthread_mutex_unlock(&m->mu);
}

void ps_serve_state_note(const ps_serve *s, char *buf, size_t len)
{
    const char *path = s->cfg.state;
    if (!strcmp(path, "off")) {
        snprintf(buf, len, "state: off, nothing survives a restart (--state FILE keeps it)");
        return;
    }
    ps_state_load_info r = ps_batcher_restored(s->batcher);
    if (!r.found)
        snprintf(buf, len, "state: no snapshot at %s, starting empty; saving every %gs", path,
                 s->cfg.snapshot_every);
    else
        snprintf(buf, len,
                 "state: restored %zu processors (%zu scored, %zu warming up) from %s "
                 "(%.1f MB); saving every %gs",
                 r.records, r.scored, r.records - r.scored, path, (double)r.bytes / 1e6,
                 s->cfg.snapshot_every);
}

void ps_serve_stop(ps_serve *s)
{
    if (!s) return;
    if (s->metrics_ok) {
        pthread_mutex_lock(&s->metrics.mu);
        s->metrics.stopping = 1;
        pthread_mutex_unlock(&s->metrics.mu);
    }
    /* Queued requests are answered (unavailable) while the socket is open. */
    ps_batcher_stop(s->batcher);
    if (s->rep_open) nng_close(s->rep);
    /* Waits for each context's callback; none re-arms on a closed socket. */
    for (size_t i = 0; i < s->nworks; i++) {
        nng_aio_free(s->works[i].aio);
        ps_proto_request_free(&s->works[i].req);
        ps_buf_free(&s->works[i].out);
        ps_batch_item_free(&s->works[i].item);
    }
    free(s->works);
    ps_batcher_free(s->batcher);
    if (s->pub_open) nng_close(s->pub);
    ps_serve_http_stop(s->http);
    if (s->tls) nng_tls_config_free(s->tls);
    ps_buf_free(&s->pub_buf);
    if (s->metrics_ok) ps_serve_metrics_destroy(&s->metrics);
    free(s);
}
