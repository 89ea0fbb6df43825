/*
 * client.c - the synchronous client of client.h: one REQ or SUB socket per
 * handle, a reused encode buffer, nng message and decoded reply.
 */
#include "client.h"
#include "tls_setup.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Per-processor seqs of ps_client_heartbeat: open addressing, id 0 kept aside. */
typedef struct seq_table {
    uint64_t *ids, *seqs; /* cap slots; seqs[i] == 0: empty */
    size_t n, cap;
    uint64_t zero_seq; /* processor id 0 */
} seq_table;

struct ps_client {
    nng_socket sock;
    nng_tls_config *tls;
    char url[256];
    int timeout_ms;
    ps_proto_form form;
    uint64_t next_id; /* request id, echoed by the server */
    ps_buf buf;
    nng_msg *msg; /* the last reply, reused for the next request */
    ps_proto_reply reply;
    ps_proto_error last_error;
    seq_table seqs;
};

/* Runs whose next seq the subscriber remembers (one SUB may follow several servers). */
#define SUB_RUNS 16

struct ps_subscriber {
    nng_socket sock;
    nng_tls_config *tls;
    int timeout_ms, cur_timeout_ms;
    ps_proto_pub pub;
    struct {
        uint64_t run, next, used;
    } runs[SUB_RUNS];
    uint64_t clock, last_run, total_missed, total_records;
    /* For ps_sub_dial: the TLS settings, copied. */
    ps_client_options opt;
    char *copies[4];
    atomic_int pipes; /* connections now, kept by nng's pipe callbacks */
};

const char *ps_client_code_name(int rc)
{
    switch (rc) {
    case PS_CLIENT_OK:
        return "ok";
    case PS_CLIENT_E_TIMEOUT:
        return "timeout";
    case PS_CLIENT_E_TRANSPORT:
        return "transport";
    case PS_CLIENT_E_PROTOCOL:
        return "protocol";
    case PS_CLIENT_E_INVALID:
        return "invalid";
    case PS_CLIENT_E_NOMEM:
        return "nomem";
    default:
        return rc > 0 ? ps_proto_code_name(rc) : "unknown";
    }
}

/* ---- TLS ------------------------------------------------------------------------ */

/* Dial url on sock in the background (TLS config for tls+tcp://). */
static int dial(nng_socket sock, const char *url, const ps_client_options *opt,
                nng_tls_config **tls, char *err, size_t errlen)
{
    nng_dialer d;
    int rv = nng_dialer_create(&d, sock, url);
    if (rv != 0) {
        snprintf(err, errlen, "cannot dial %s: %s", url, nng_strerror(rv));
        return -1;
    }
    if (!strncmp(url, "tls+", 4)) {
        if (!*tls && ps_tls_client_config(url, opt->tls_ca, opt->tls_cert, opt->tls_key,
                                          opt->server_name, tls, err, errlen)) {
            nng_dialer_close(d);
            return -1;
        }
        if ((rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, *tls)) != 0) {
            snprintf(err, errlen, "cannot dial %s: TLS: %s", url, nng_strerror(rv));
            nng_dialer_close(d);
            return -1;
        }
    }
    nng_dialer_set_size(d, NNG_OPT_RECVMAXSZ, PS_PROTO_MAX_MESSAGE);
    /* Redial a server that is down after 0.1 s, doubling up to 1 s, not every 0.1 s. */
    nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, 100);
    nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, 1000);
    if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0) {
        snprintf(err, errlen, "cannot dial %s: %s", url, nng_strerror(rv));
        nng_dialer_close(d);
        return -1;
    }
    return 0;
}

/* ---- REQ -------------------------------------------------------------------------- */

ps_client *ps_client_open(const char *url, const ps_client_options *opt, char *err, size_t errlen)
{
    static const ps_client_options defaults = {0};
    if (!opt) opt = &defaults;
    if (!url || !url[0]) {
        snprintf(err, errlen, "no server address");
        return NULL;
    }
    ps_client *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(c->url, sizeof c->url, "%s", url);
    c->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : PS_CLIENT_DEFAULT_TIMEOUT_MS;
    c->form = opt->form;
    c->next_id = 1;
    int rv = nng_req0_open(&c->sock);
    if (rv != 0) {
        snprintf(err, errlen, "cannot open a REQ socket: %s", nng_strerror(rv));
        free(c);
        return NULL;
    }
    nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, c->timeout_ms);
    nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, c->timeout_ms);
    nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, PS_PROTO_MAX_MESSAGE);
    if (opt->resend_ms > 0) nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, opt->resend_ms);
    if (dial(c->sock, url, opt, &c->tls, err, errlen)) {
        ps_client_close(c);
        return NULL;
    }
    return c;
}

void ps_client_close(ps_client *c)
{
    if (!c) return;
    nng_close(c->sock);
    if (c->tls) nng_tls_config_free(c->tls);
    if (c->msg) nng_msg_free(c->msg);
    ps_buf_free(&c->buf);
    ps_proto_reply_free(&c->reply);
    free(c->seqs.ids);
    free(c->seqs.seqs);
    free(c);
}

const ps_proto_error *ps_client_last_error(const ps_client *c)
{
    return &c->last_error;
}

/*
 * Encode req (its id set here), send it, receive and decode the reply into
 * c->reply and check it answers req with op `want`.
 */
static int exchange(ps_client *c, ps_proto_request *req, ps_proto_op want, char *err, size_t errlen)
{
    memset(&c->last_error, 0, sizeof c->last_error);
    req->has_id = true;
    req->id = c->next_id++;
    char why[256];
    int rv = ps_proto_encode_request(&c->buf, req, c->form, why, sizeof why);
    if (rv != 0) {
        snprintf(err, errlen, "request not sent: %s", why);
        return rv == PS_PROTO_E_INTERNAL ? PS_CLIENT_E_NOMEM : PS_CLIENT_E_INVALID;
    }
    if (!c->msg) {
        if ((rv = nng_msg_alloc(&c->msg, 0)) != 0) {
            snprintf(err, errlen, "out of memory");
            return PS_CLIENT_E_NOMEM;
        }
    } else {
        nng_msg_clear(c->msg);
        nng_msg_header_clear(c->msg);
    }
    if ((rv = nng_msg_append(c->msg, c->buf.data, c->buf.len)) != 0) {
        snprintf(err, errlen, "out of memory");
        return PS_CLIENT_E_NOMEM;
    }
    if ((rv = nng_sendmsg(c->sock, c->msg, 0)) != 0) {
        /* Not sent: the message is still ours. */
        if (rv == NNG_ETIMEDOUT) {
            snprintf(err, errlen, "no connection to %s within %.3g s (is the server running?)",
                     c->url, c->timeout_ms / 1000.0);
            return PS_CLIENT_E_TIMEOUT;
        }
        snprintf(err, errlen, "send to %s: %s", c->url, nng_strerror(rv));
        return PS_CLIENT_E_TRANSPORT;
    }
    c->msg = NULL;
    if ((rv = nng_recvmsg(c->sock, &c->msg, 0)) != 0) {
        c->msg = NULL;
        if (rv == NNG_ETIMEDOUT) {
            snprintf(err, errlen, "no reply from %s within %.3g s", c->url, c->timeout_ms / 1000.0);
            return PS_CLIENT_E_TIMEOUT;
        }
        snprintf(err, errlen, "receive from %s: %s", c->url, nng_strerror(rv));
        return PS_CLIENT_E_TRANSPORT;
    }
    rv = ps_proto_decode_reply(nng_msg_body(c->msg), nng_msg_len(c->msg), &c->reply, why,
                               sizeof why);
    if (rv != 0) {
        snprintf(err, errlen, "reply from %s does not decode: %s", c->url, why);
        return PS_CLIENT_E_PROTOCOL;
    }
    if (c->reply.has_id && c->reply.id != req->id) {
        snprintf(err, errlen, "reply from %s answers request %llu, not %llu", c->url,
                 (unsigned long long)c->reply.id, (unsigned long long)req->id);
        return PS_CLIENT_E_PROTOCOL;
    }
    if (c->reply.op == PS_PROTO_OP_ERROR) {
        c->last_error = c->reply.error;
        if (c->last_error.code == 0) c->last_error.code = PS_PROTO_E_INTERNAL;
        snprintf(err, errlen, "%s: %s",
                 c->reply.error.name[0] ? c->reply.error.name
                                        : ps_proto_code_name((int)c->last_error.code),
                 c->reply.error.message);
        return c->last_error.code > 0x7fffffffu ? PS_PROTO_E_INTERNAL : (int)c->last_error.code;
    }
    if (c->reply.op != want) {
        snprintf(err, errlen, "reply from %s is op '%s', expected '%s'", c->url,
                 ps_proto_op_name(c->reply.op), ps_proto_op_name(want));
        return PS_CLIENT_E_PROTOCOL;
    }
    return PS_CLIENT_OK;
}

int ps_client_score(ps_client *c, size_t n, uint32_t k, const uint64_t *ids, const uint64_t *seqs,
                    const double *ts, const float *metrics, ps_proto_score_reply *out, char *err,
                    size_t errlen)
{
    ps_proto_request req = {.op = PS_PROTO_OP_SCORE,
                            .n = n,
                            .k = k,
                            .ids = ids,
                            .seqs = seqs,
                            .ts = ts,
                            .metrics = metrics};
    int rv = exchange(c, &req, PS_PROTO_OP_SCORE, err, errlen);
    if (rv != PS_CLIENT_OK) return rv;
    const ps_proto_score_reply *r = &c->reply.score;
    if (r->n != n) {
        snprintf(err, errlen, "reply from %s has %zu results for %zu heartbeats", c->url, r->n, n);
        return PS_CLIENT_E_PROTOCOL;
    }
    for (size_t i = 0; i < n; i++)
        if (r->results[i].id != ids[i]) {
            snprintf(err, errlen, "reply from %s: result %zu is processor %llu, sent %llu", c->url,
                     i, (unsigned long long)r->results[i].id, (unsigned long long)ids[i]);
            return PS_CLIENT_E_PROTOCOL;
        }
    if (out) *out = *r;
    return PS_CLIENT_OK;
}

int ps_client_health(ps_client *c, ps_proto_health *out, char *err, size_t errlen)
{
    ps_proto_request req = {.op = PS_PROTO_OP_HEALTH};
    int rv = exchange(c, &req, PS_PROTO_OP_HEALTH, err, errlen);
    if (rv == PS_CLIENT_OK && out) *out = c->reply.health;
    return rv;
}

int ps_client_info(ps_client *c, ps_proto_info *out, char *err, size_t errlen)
{
    ps_proto_request req = {.op = PS_PROTO_OP_INFO};
    int rv = exchange(c, &req, PS_PROTO_OP_INFO, err, errlen);
    if (rv == PS_CLIENT_OK && out) *out = c->reply.info;
    return rv;
}

int ps_client_latest(ps_client *c, size_t n, const uint64_t *ids, ps_proto_latest_reply *out,
                     char *err, size_t errlen)
{
    ps_proto_request req = {.op = PS_PROTO_OP_LATEST, .n = n, .ids = ids};
    int rv = exchange(c, &req, PS_PROTO_OP_LATEST, err, errlen);
    if (rv != PS_CLIENT_OK) return rv;
    const ps_proto_latest_reply *r = &c->reply.latest;
    if (r->n != n) {
        snprintf(err, errlen, "reply from %s has %zu results for %zu processors", c->url, r->n, n);
        return PS_CLIENT_E_PROTOCOL;
    }
    for (size_t i = 0; i < n; i++)
        if (r->results[i].id != ids[i]) {
            snprintf(err, errlen, "reply from %s: result %zu is processor %llu, asked %llu", c->url,
                     i, (unsigned long long)r->results[i].id, (unsigned long long)ids[i]);
            return PS_CLIENT_E_PROTOCOL;
        }
    if (out) *out = *r;
    return PS_CLIENT_OK;
}

/* ---- seqs per processor ------------------------------------------------------------- */

static size_t slot_of(uint64_t id, size_t cap)
{
    uint64_t h = id * 0x9e3779b97f4a7c15ull;
    return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

/* The seq slot of id, inserted when absent (NULL when out of memory). */
static uint64_t *seq_slot(seq_table *t, uint64_t id, bool insert)
{
    if (id == 0) return &t->zero_seq;
    if (t->cap) {
        for (size_t i = slot_of(id, t->cap);; i = (i + 1) & (t->cap - 1)) {
            if (t->seqs[i] == 0) break;
            if (t->ids[i] == id) return &t->seqs[i];
        }
    }
    if (!insert) return NULL;
    if ((t->n + 1) * 4 > t->cap * 3) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        uint64_t *ids = calloc(cap, sizeof *ids), *seqs = calloc(cap, sizeof *seqs);
        if (!ids || !seqs) {
            free(ids);
            free(seqs);
            return NULL;
        }
        for (size_t i = 0; i < t->cap; i++) {
            if (t->seqs[i] == 0) continue;
            size_t j = slot_of(t->ids[i], cap);
            while (seqs[j] != 0)
                j = (j + 1) & (cap - 1);
            ids[j] = t->ids[i];
            seqs[j] = t->seqs[i];
        }
        free(t->ids);
        free(t->seqs);
        t->ids = ids;
        t->seqs = seqs;
        t->cap = cap;
    }
    size_t i = slot_of(id, t->cap);
    while (t->seqs[i] != 0)
        i = (i + 1) & (t->cap - 1);
    t->ids[i] = id;
    t->n++;
    return &t->seqs[i]; /* 0 until the caller stores a seq (seqs are >= 1) */
}

uint64_t ps_client_last_seq(const ps_client *c, uint64_t id)
{
    const uint64_t *s = seq_slot((seq_table *)&c->seqs, id, false);
    return s ? *s : 0;
}

static double wall_time(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int ps_client_heartbeat(ps_client *c, uint64_t id, double ts, uint32_t k, const float *metrics,
                        ps_proto_result *out, uint64_t *tick, char *err, size_t errlen)
{
    uint64_t *last = seq_slot(&c->seqs, id, true);
    if (!last) {
        snprintf(err, errlen, "out of memory");
        return PS_CLIENT_E_NOMEM;
    }
    double now = wall_time();
    uint64_t now_us = now > 0 ? (uint64_t)(now * 1e6) : 0;
    uint64_t seq = *last + 1 > now_us ? *last + 1 : now_us;
    if (ts <= 0) ts = now;
    /* Remembered whatever the outcome: seqs only need to increase. */
    *last = seq;
    ps_proto_score_reply r;
    int rv = ps_client_score(c, 1, k, &id, &seq, &ts, metrics, &r, err, errlen);
    if (rv != PS_CLIENT_OK) return rv;
    if (out) *out = r.results[0];
    if (tick) *tick = r.tick;
    return PS_CLIENT_OK;
}

/* ---- SUB ----------------------------------------------------------------------------- */

/* Copy an optional string into *slot: 0, or -1 when out of memory. */
static int copy_opt(char **slot, const char **s)
{
    if (!*s || !(*s)[0]) {
        *s = NULL;
        return 0;
    }
    *slot = strdup(*s);
    *s = *slot;
    return *slot ? 0 : -1;
}

static void count_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)p;
    ps_subscriber *s = arg;
    atomic_fetch_add(&s->pipes, ev == NNG_PIPE_EV_ADD_POST ? 1 : -1);
}

ps_subscriber *ps_sub_open(const char *url, const ps_client_options *opt, char *err, size_t errlen)
{
    static const ps_client_options defaults = {0};
    if (!opt) opt = &defaults;
    if (!url || !url[0]) {
        snprintf(err, errlen, "no stream address");
        return NULL;
    }
    ps_subscriber *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->opt = *opt;
    if (copy_opt(&s->copies[0], &s->opt.tls_ca) || copy_opt(&s->copies[1], &s->opt.tls_cert) ||
        copy_opt(&s->copies[2], &s->opt.tls_key) || copy_opt(&s->copies[3], &s->opt.server_name)) {
        snprintf(err, errlen, "out of memory");
        for (int i = 0; i < 4; i++)
            free(s->copies[i]);
        free(s);
        return NULL;
    }
    s->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : PS_CLIENT_DEFAULT_TIMEOUT_MS;
    int rv = nng_sub0_open(&s->sock);
    if (rv != 0) {
        snprintf(err, errlen, "cannot open a SUB socket: %s", nng_strerror(rv));
        for (int i = 0; i < 4; i++)
            free(s->copies[i]);
        free(s);
        return NULL;
    }
    if ((rv = nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE, "", 0)) != 0) {
        snprintf(err, errlen, "cannot subscribe: %s", nng_strerror(rv));
        ps_sub_close(s);
        return NULL;
    }
    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, PS_PROTO_MAX_MESSAGE);
    nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, s->timeout_ms);
    s->cur_timeout_ms = s->timeout_ms;
    /* No callback closes a pipe before it is added, so every add is followed by one removal. */
    if ((rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_POST, count_pipe, s)) != 0 ||
        (rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, count_pipe, s)) != 0) {
        snprintf(err, errlen, "cannot watch the SUB socket's connections: %s", nng_strerror(rv));
        ps_sub_close(s);
        return NULL;
    }
    if (dial(s->sock, url, opt, &s->tls, err, errlen)) {
        ps_sub_close(s);
        return NULL;
    }
    return s;
}

int ps_sub_dial(ps_subscriber *s, const char *url, char *err, size_t errlen)
{
    /* A server name taken from the first URL would be wrong for another host. */
    if (!strncmp(url, "tls+", 4) && s->tls && !s->opt.server_name) {
        nng_tls_config_free(s->tls);
        s->tls = NULL;
    }
    return dial(s->sock, url, &s->opt, &s->tls, err, errlen) ? PS_CLIENT_E_TRANSPORT : PS_CLIENT_OK;
}

int ps_sub_connections(ps_subscriber *s)
{
    return s ? atomic_load(&s->pipes) : 0;
}

int ps_sub_wait_connected(ps_subscriber *s, int timeout_ms)
{
    if (!s) return 0;
    for (int waited = 0;; waited += 5) {
        if (ps_sub_connections(s) > 0) return 1;
        if (waited >= timeout_ms) return 0;
        nng_msleep(5);
    }
}

void ps_sub_close(ps_subscriber *s)
{
    if (!s) return;
    nng_close(s->sock);
    if (s->tls) nng_tls_config_free(s->tls);
    ps_proto_pub_free(&s->pub);
    for (int i = 0; i < 4; i++)
        free(s->copies[i]);
    free(s);
}

int ps_sub_recv(ps_subscriber *s, int timeout_ms, const ps_proto_pub **out, ps_sub_event *ev,
                char *err, size_t errlen)
{
    if (timeout_ms < 0) timeout_ms = s->timeout_ms;
    if (timeout_ms > 0 && timeout_ms != s->cur_timeout_ms) {
        nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, timeout_ms);
        s->cur_timeout_ms = timeout_ms;
    }
    nng_msg *msg = NULL;
    int rv = nng_recvmsg(s->sock, &msg, timeout_ms == 0 ? NNG_FLAG_NONBLOCK : 0);
    if (rv != 0) {
        if (rv == NNG_ETIMEDOUT || rv == NNG_EAGAIN) {
            snprintf(err, errlen, "no stream message within %.3g s", timeout_ms / 1000.0);
            return PS_CLIENT_E_TIMEOUT;
        }
        snprintf(err, errlen, "stream: %s", nng_strerror(rv));
        return PS_CLIENT_E_TRANSPORT;
    }
    char why[256];
    rv = ps_proto_decode_pub(nng_msg_body(msg), nng_msg_len(msg), &s->pub, why, sizeof why);
    nng_msg_free(msg);
    if (rv != 0) {
        snprintf(err, errlen, "stream message does not decode: %s", why);
        return PS_CLIENT_E_PROTOCOL;
    }
    const ps_proto_pub *p = &s->pub;
    ps_sub_event e = {.prev_run = s->last_run};
    s->clock++;
    size_t slot = SUB_RUNS, oldest = 0;
    for (size_t i = 0; i < SUB_RUNS; i++) {
        if (s->runs[i].used && s->runs[i].run == p->run) slot = i;
        if (s->runs[i].used < s->runs[oldest].used) oldest = i;
    }
    if (slot == SUB_RUNS) {
        /* A run not seen before (or forgotten among more than SUB_RUNS). */
        e.new_run = true;
        slot = oldest;
        s->runs[slot].run = p->run;
        s->runs[slot].next = p->seq + p->n;
    } else if (p->seq < s->runs[slot].next) {
        e.repeat = true;
    } else {
        e.missed = p->seq - s->runs[slot].next;
        s->runs[slot].next = p->seq + p->n;
    }
    s->runs[slot].used = s->clock;
    s->last_run = p->run;
    s->total_missed += e.missed;
    if (!e.repeat) s->total_records += p->n;
    e.total_missed = s->total_missed;
    e.total_records = s->total_records;
    if (ev) *ev = e;
    if (out) *out = p;
    return PS_CLIENT_OK;
}
