/*
 * transfer.c - the manager's side of the transfer protocol (transfer.h,
 * docs/transfer.md) on nng's asynchronous I/O.
 *
 * One REQ socket per agent URL, dialled in the background the first time a
 * transfer needs it and kept in a small table (idle ones are closed when
 * the table is full). A transfer has one leg per agent it talks to (the
 * destination's, and the source's unless the source is dead), each with
 * its own REQ context and aio on that agent's socket, so any number of
 * transfers, to any mix of agents, run side by side. REQ resends a request
 * that has no reply every `retry` seconds (NNG_OPT_REQ_RESENDTIME); the
 * agents' idempotency makes the resends harmless.
 *
 * Everything after submit happens in the aio callbacks, under one mutex,
 * without waiting: a callback decodes a reply, moves its transfer to the
 * next phase and starts the next exchange (nng_ctx_send returns at once;
 * REQ completes its callbacks on nng's threads, never inline). A finished
 * transfer is queued for ps_transfers_poll, which waits on a condition
 * variable. Contexts and aios are freed from the manager's thread (poll,
 * submit, stop), never from their own callback.
 *
 * Phases, each with its own deadline (timeout; timeout + expected_seconds
 * for the destination's prepare, which covers the copy):
 *
 *   STATUS (recover only) -> PREP_DEST -> PREP_SOURCE -> COMMIT_DEST
 *                                                     -> RELEASE (commit source)
 *   any failure before the destination's commit        -> ROLLBACK
 *
 * ROLLBACK sends rollback to every agent the transfer reached (both, when
 * recovering). Once a commit has gone to the destination unanswered (or when
 * recovering) the destination is rolled back first and alone: if it answers
 * that it committed, the transfer is committed after all and the source is
 * released instead; if it does not answer, the source is left prepared
 * (still running the workload) rather than risk the workload running on
 * neither or both, and the reason says to recover the transfer.
 *
 * RELEASE retries the source's commit until it is acknowledged. The
 * transfer is reported committed when it is, or when one timeout has passed
 * without an answer (the reason says the release is still pending); in the
 * second case the release goes on in the background, outside the in-flight
 * count, until acknowledged or ps_transfers_stop.
 */
#include "transfer.h"
#include "tls_setup.h"

#include "transfer_proto.h"

#include "core/error.h"
#include "kernels/kernels.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SOCKS_MAX 1024       /* agent sockets kept open */
#define MAX_LIMIT_CAP 65536u /* largest max_limit accepted (preshift manage --max-transfers) */

typedef struct agent_sock {
    char url[PS_TRANSFER_URL_MAX];
    nng_socket sock;
    nng_tls_config *tls;
    unsigned users; /* legs with a context on it */
    uint64_t used;  /* last use, for closing the least recently used idle one */
} agent_sock;

enum { IO_IDLE, IO_SEND, IO_RECV, IO_SLEEP };
enum { LEG_DEST = 0, LEG_SOURCE = 1 };
enum { PH_STATUS, PH_PREP_DEST, PH_PREP_SOURCE, PH_COMMIT_DEST, PH_ROLLBACK, PH_RELEASE, PH_DONE };
/* How an exchange ended. */
enum { ANSWER, TIMEOUT, FAILED };

typedef struct xfer xfer;

typedef struct leg {
    xfer *x;
    int which;
    agent_sock *as;
    nng_ctx ctx;
    nng_aio *aio;
    bool has_ctx;
    int io;
    ps_xfer_op op;   /* the request of the exchange in progress */
    double deadline; /* of that exchange, monotonic seconds */
    bool contacted;  /* a request was sent to this agent */
    bool rb_done;    /* ROLLBACK: this leg is settled */
    char last_err[200];
} leg;

struct xfer {
    ps_transfers *t;
    ps_transfer_spec s;
    bool recovering;
    int phase;
    double started;
    leg legs[2];
    int nlegs;
    ps_transfer_why why;
    char reason[256];
    bool uncertain;      /* the destination may have committed: roll it back first, alone */
    bool dest_committed; /* it did: past the point of no return */
    bool source_after;   /* ROLLBACK: roll the source back once the destination is */
    bool reported;       /* its end is queued (it no longer counts as in flight) */
    bool queued;         /* in the done queue, not yet polled */
    bool finished;       /* no more I/O: the reaper may free it */
    ps_transfer_done done;
    xfer *next;  /* t->all */
    xfer *qnext; /* the done queue */
};

struct ps_transfers {
    ps_transfers_config cfg;
    char *tls_ca, *tls_cert, *tls_key;
    int retry_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    agent_sock *socks[SOCKS_MAX];
    uint64_t clock;
    xfer *all;
    xfer *qhead, *qtail;
    size_t in_flight, limit;
    ps_buf buf; /* encoding, under mu */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static nng_duration ms_until(double deadline)
{
    double ms = ceil((deadline - now_s()) * 1000.0);
    if (ms < 1) return 1;
    if (ms > 2e9) return 2000000000;
    return (nng_duration)ms;
}

/* snprintf where cutting a long text short is fine. */
static void say(char *dst, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

static void cat(char *dst, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void cat(char *dst, size_t cap, const char *fmt, ...)
{
    size_t n = strlen(dst);
    if (n + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst + n, cap - n, fmt, ap);
    va_end(ap);
}

const char *ps_transfer_why_name(int why)
{
    switch (why) {
    case PS_TRANSFER_OK:
        return "ok";
    case PS_TRANSFER_REFUSED:
        return "refused";
    case PS_TRANSFER_TIMEOUT:
        return "timeout";
    case PS_TRANSFER_ERROR:
        return "error";
    default:
        return "unknown";
    }
}

const char *ps_transfer_end_name(int end)
{
    return end == PS_TRANSFER_COMMITTED     ? "committed"
           : end == PS_TRANSFER_ROLLED_BACK ? "rolled_back"
                                            : "unknown";
}

ps_transfers_config ps_transfers_default_config(void)
{
    return (ps_transfers_config){.timeout = 30, .retry = 1, .max_limit = 16};
}

/* ---- TLS (as client.c) ------------------------------------------------------------ */

/* ---- agent sockets ---------------------------------------------------------------- */

static void sock_close(agent_sock *as)
{
    nng_close(as->sock);
    if (as->tls) nng_tls_config_free(as->tls);
    free(as);
}

/* A new REQ socket dialled to url in the background. NULL with the reason. */
static agent_sock *sock_open(const ps_transfers *t, const char *url, char *err, size_t errlen)
{
    agent_sock *as = calloc(1, sizeof *as);
    if (!as) {
        say(err, errlen, "out of memory");
        return NULL;
    }
    say(as->url, sizeof as->url, "%s", url);
    int rv = nng_req0_open(&as->sock);
    if (rv != 0) {
        say(err, errlen, "cannot open a REQ socket: %s", nng_strerror(rv));
        free(as);
        return NULL;
    }
    nng_socket_set_ms(as->sock, NNG_OPT_REQ_RESENDTIME, t->retry_ms);
    nng_socket_set_size(as->sock, NNG_OPT_RECVMAXSZ, PS_XFER_MAX_MESSAGE);
    nng_dialer d;
    if ((rv = nng_dialer_create(&d, as->sock, url)) != 0) {
        say(err, errlen, "cannot dial %s: %s", url, nng_strerror(rv));
        sock_close(as);
        return NULL;
    }
    if (!strncmp(url, "tls+", 4)) {
        if (ps_tls_client_config(url, t->tls_ca, t->tls_cert, t->tls_key, NULL, &as->tls, err,
                                 errlen)) {
            sock_close(as);
            return NULL;
        }
        if ((rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, as->tls)) != 0) {
            say(err, errlen, "cannot dial %s: TLS: %s", url, nng_strerror(rv));
            sock_close(as);
            return NULL;
        }
    }
    nng_dialer_set_size(d, NNG_OPT_RECVMAXSZ, PS_XFER_MAX_MESSAGE);
    nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, 100);
    nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, 1000);
    if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0) {
        say(err, errlen, "cannot dial %s: %s", url, nng_strerror(rv));
        sock_close(as);
        return NULL;
    }
    return as;
}

/* The socket for url, one more user counted; NULL with the reason (under mu;
 * a new socket is opened with mu released). */
static agent_sock *sock_get(ps_transfers *t, const char *url, char *err, size_t errlen)
{
    for (int i = 0; i < SOCKS_MAX; i++)
        if (t->socks[i] && !strcmp(t->socks[i]->url, url)) {
            t->socks[i]->users++;
            t->socks[i]->used = ++t->clock;
            return t->socks[i];
        }
    pthread_mutex_unlock(&t->mu);
    agent_sock *as = sock_open(t, url, err, errlen);
    pthread_mutex_lock(&t->mu);
    if (!as) return NULL;
    /* A free slot, else the least recently used idle socket. */
    int slot = -1;
    for (int i = 0; i < SOCKS_MAX; i++) {
        if (!t->socks[i]) {
            slot = i;
            break;
        }
        if (t->socks[i]->users == 0 && (slot < 0 || t->socks[i]->used < t->socks[slot]->used))
            slot = i;
    }
    if (slot < 0) {
        say(err, errlen, "%d agent sockets are in use (at most %d)", SOCKS_MAX, SOCKS_MAX);
        pthread_mutex_unlock(&t->mu);
        sock_close(as);
        pthread_mutex_lock(&t->mu);
        return NULL;
    }
    agent_sock *old = t->socks[slot];
    t->socks[slot] = as;
    as->users = 1;
    as->used = ++t->clock;
    if (old) {
        /* No context uses it; closing it involves none of our callbacks. */
        pthread_mutex_unlock(&t->mu);
        sock_close(old);
        pthread_mutex_lock(&t->mu);
    }
    return as;
}

/* ---- start ------------------------------------------------------------------------ */

static int dup_opt(const char *s, char **out)
{
    *out = NULL;
    if (!s || !s[0]) return 0;
    *out = strdup(s);
    return *out ? 0 : -1;
}

ps_transfers *ps_transfers_start(const ps_transfers_config *cfg, char *err, size_t errlen)
{
    ps_transfers_config c = cfg ? *cfg : ps_transfers_default_config();
    if (!(c.timeout > 0) || !isfinite(c.timeout) || c.timeout > 86400) {
        say(err, errlen, "transfer timeout %g s is not in (0, 86400]", c.timeout);
        return NULL;
    }
    if (!(c.retry > 0) || !isfinite(c.retry) || c.retry > 3600) {
        say(err, errlen, "transfer retry %g s is not in (0, 3600]", c.retry);
        return NULL;
    }
    if (c.max_limit < 1 || c.max_limit > MAX_LIMIT_CAP) {
        say(err, errlen, "max_limit %zu is not in 1 .. %u", c.max_limit, MAX_LIMIT_CAP);
        return NULL;
    }
    bool has_cert = c.tls_cert && c.tls_cert[0], has_key = c.tls_key && c.tls_key[0];
    if (has_cert != has_key) {
        say(err, errlen, "TLS: a client certificate needs both the certificate and its key");
        return NULL;
    }
    ps_transfers *t = calloc(1, sizeof *t);
    if (!t || dup_opt(c.tls_ca, &t->tls_ca) || dup_opt(c.tls_cert, &t->tls_cert) ||
        dup_opt(c.tls_key, &t->tls_key)) {
        if (t) {
            free(t->tls_ca);
            free(t->tls_cert);
            free(t->tls_key);
        }
        free(t);
        say(err, errlen, "out of memory");
        return NULL;
    }
    t->cfg = c;
    t->cfg.tls_ca = t->tls_ca;
    t->cfg.tls_cert = t->tls_cert;
    t->cfg.tls_key = t->tls_key;
    t->retry_ms = (int)ceil(c.retry * 1000);
    if (t->retry_ms < 1) t->retry_ms = 1;
    t->limit = c.max_limit;
    /* Check the TLS files now rather than at the first tls+tcp:// transfer. */
    if (t->tls_ca || t->tls_cert) {
        nng_tls_config *tc = NULL;
        if (ps_tls_client_config("tls+tcp://localhost:1", t->tls_ca, t->tls_cert, t->tls_key, NULL,
                                 &tc, err, errlen)) {
            free(t->tls_ca);
            free(t->tls_cert);
            free(t->tls_key);
            free(t);
            return NULL;
        }
        nng_tls_config_free(tc);
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&t->mu, NULL);
    return t;
}

/* ---- exchanges -------------------------------------------------------------------- */

static void leg_cb(void *arg);
static void on_outcome(leg *l, int how, const ps_xfer_reply *rep, const char *text);

static const char *leg_processor(const leg *l)
{
    return l->which == LEG_DEST ? l->x->s.destination : l->x->s.source;
}

static const char *leg_role(const leg *l)
{
    return l->which == LEG_DEST ? "destination" : "source";
}

/* Try the same request again after `retry` (a failed send, an error
 * reply): a timeout instead when that would pass the deadline. */
static void leg_later(leg *l)
{
    ps_transfers *t = l->x->t;
    if (now_s() + t->cfg.retry >= l->deadline) {
        char text[300];
        say(text, sizeof text, "%s", l->last_err);
        on_outcome(l, TIMEOUT, NULL, text);
        return;
    }
    l->io = IO_SLEEP;
    nng_sleep_aio(t->retry_ms, l->aio);
}

/* Start one exchange: send op to the leg's agent, the answer due by deadline. */
static void leg_send(leg *l, ps_xfer_op op, double deadline)
{
    xfer *x = l->x;
    ps_transfers *t = x->t;
    ps_xfer_request q = {.op = op, .id = x->s.id};
    say(q.processor, sizeof q.processor, "%s", leg_processor(l));
    if (op == PS_XFER_OP_PREPARE) {
        q.role = l->which == LEG_DEST ? PS_XFER_ROLE_DESTINATION : PS_XFER_ROLE_SOURCE;
        say(q.workload, sizeof q.workload, "%s", x->s.workload);
        say(q.peer, sizeof q.peer, "%s", l->which == LEG_DEST ? x->s.source : x->s.destination);
        q.state_bytes = x->s.state_bytes;
        q.expected_seconds = x->s.expected_seconds;
    }
    l->op = op;
    l->deadline = deadline;
    l->contacted = true;
    char why[256];
    nng_msg *m = NULL;
    int rv = ps_xfer_encode_request(&t->buf, &q, why, sizeof why);
    if (rv == 0 && nng_msg_alloc(&m, 0) == 0 && nng_msg_append(m, t->buf.data, t->buf.len) == 0) {
        l->io = IO_SEND;
        nng_aio_set_msg(l->aio, m);
        nng_aio_set_timeout(l->aio, ms_until(deadline));
        nng_ctx_send(l->ctx, l->aio);
        return;
    }
    if (m) nng_msg_free(m);
    say(l->last_err, sizeof l->last_err, "%s %s: request not sent: %s", leg_role(l),
        leg_processor(l), rv ? why : "out of memory");
    leg_later(l);
}

static void leg_cb(void *arg)
{
    leg *l = arg;
    xfer *x = l->x;
    ps_transfers *t = x->t;
    pthread_mutex_lock(&t->mu);
    int rv = nng_aio_result(l->aio);
    int io = l->io;
    l->io = IO_IDLE;
    if (io == IO_SEND && rv != 0) {
        nng_msg *m = nng_aio_get_msg(l->aio);
        nng_aio_set_msg(l->aio, NULL);
        if (m) nng_msg_free(m);
    }
    if (t->stopping || rv == NNG_ECLOSED || io == IO_IDLE) {
        if (io == IO_RECV && rv == 0) { /* a reply nobody will read */
            nng_msg *m = nng_aio_get_msg(l->aio);
            nng_aio_set_msg(l->aio, NULL);
            if (m) nng_msg_free(m);
        }
        pthread_mutex_unlock(&t->mu);
        return;
    }
    char text[PS_XFER_TEXT_MAX + 300];
    switch (io) {
    case IO_SEND:
    case IO_RECV:
        if (rv == NNG_ETIMEDOUT || (rv != 0 && now_s() >= l->deadline)) {
            say(text, sizeof text, "no answer to %s from %s %s at %s", ps_xfer_op_name(l->op),
                leg_role(l), leg_processor(l), l->as->url);
            on_outcome(l, TIMEOUT, NULL, text);
        } else if (rv != 0) {
            say(l->last_err, sizeof l->last_err, "%s to %s %s at %s: %s", ps_xfer_op_name(l->op),
                leg_role(l), leg_processor(l), l->as->url, nng_strerror(rv));
            leg_later(l);
        } else if (io == IO_SEND) {
            l->io = IO_RECV;
            nng_aio_set_timeout(l->aio, ms_until(l->deadline));
            nng_ctx_recv(l->ctx, l->aio);
        } else {
            nng_msg *m = nng_aio_get_msg(l->aio);
            nng_aio_set_msg(l->aio, NULL);
            ps_xfer_reply rep;
            char why[512];
            int rc = ps_xfer_decode_reply(nng_msg_body(m), nng_msg_len(m), &rep, why, sizeof why);
            nng_msg_free(m);
            if (rc) {
                say(text, sizeof text, "the reply of %s %s at %s to %s does not decode: %s",
                    leg_role(l), leg_processor(l), l->as->url, ps_xfer_op_name(l->op), why);
                on_outcome(l, FAILED, NULL, text);
            } else if ((rep.op != l->op && rep.op != PS_XFER_OP_ERROR) ||
                       (rep.id != x->s.id && (rep.op != PS_XFER_OP_ERROR || rep.id != 0)) ||
                       (strcmp(rep.processor, leg_processor(l)) &&
                        (rep.op != PS_XFER_OP_ERROR || rep.processor[0]))) {
                say(text, sizeof text,
                    "%s %s at %s answered %s of transfer %lld at '%s' to %s of transfer %lld",
                    leg_role(l), leg_processor(l), l->as->url, ps_xfer_op_name(rep.op),
                    (long long)rep.id, rep.processor, ps_xfer_op_name(l->op), (long long)x->s.id);
                on_outcome(l, FAILED, NULL, text);
            } else if (rep.op == PS_XFER_OP_ERROR) {
                say(text, sizeof text, "%s %s at %s answered %s with error %s: %s", leg_role(l),
                    leg_processor(l), l->as->url, ps_xfer_op_name(l->op),
                    rep.name[0] ? rep.name : ps_xfer_code_name((int)rep.code), rep.message);
                on_outcome(l, FAILED, &rep, text);
            } else {
                on_outcome(l, ANSWER, &rep, NULL);
            }
        }
        break;
    case IO_SLEEP:
    default:
        if (rv == 0 || rv == NNG_ETIMEDOUT) leg_send(l, l->op, l->deadline);
        break;
    }
    pthread_mutex_unlock(&t->mu);
}

/* ---- phases ----------------------------------------------------------------------- */

static void finish(xfer *x, ps_transfer_end end, ps_transfer_why why, bool last)
{
    ps_transfers *t = x->t;
    if (!x->reported) {
        x->reported = true;
        x->done.id = x->s.id;
        x->done.end = end;
        x->done.why = why;
        x->done.seconds = now_s() - x->started;
        say(x->done.reason, sizeof x->done.reason, "%s", x->reason);
        x->queued = true;
        x->qnext = NULL;
        if (t->qtail)
            t->qtail->qnext = x;
        else
            t->qhead = x;
        t->qtail = x;
        t->in_flight--;
        pthread_cond_broadcast(&t->cv);
    }
    if (last) {
        x->phase = PH_DONE;
        x->finished = true;
    }
}

static void go_release(xfer *x)
{
    x->dest_committed = true;
    if (x->nlegs < 2) {
        finish(x, PS_TRANSFER_COMMITTED, PS_TRANSFER_OK, true);
        return;
    }
    x->phase = PH_RELEASE;
    leg_send(&x->legs[LEG_SOURCE], PS_XFER_OP_COMMIT, now_s() + x->t->cfg.timeout);
}

static void start_rollback(xfer *x)
{
    ps_transfers *t = x->t;
    double dl = now_s() + t->cfg.timeout;
    leg *d = &x->legs[LEG_DEST], *s = x->nlegs > 1 ? &x->legs[LEG_SOURCE] : NULL;
    bool roll_source = s && (s->contacted || x->recovering);
    x->phase = PH_ROLLBACK;
    d->rb_done = false;
    if (s) s->rb_done = !roll_source;
    x->source_after = x->uncertain && roll_source;
    leg_send(d, PS_XFER_OP_ROLLBACK, dl);
    if (roll_source && !x->uncertain) leg_send(s, PS_XFER_OP_ROLLBACK, dl);
}

static void fail(xfer *x, ps_transfer_why why, const char *text)
{
    x->why = why;
    say(x->reason, sizeof x->reason, "%s", text);
    start_rollback(x);
}

static void commit_dest(xfer *x)
{
    x->phase = PH_COMMIT_DEST;
    x->uncertain = true;
    leg_send(&x->legs[LEG_DEST], PS_XFER_OP_COMMIT, now_s() + x->t->cfg.timeout);
}

/* A forward phase's exchange ended. */
static void forward(xfer *x, leg *l, int how, const ps_xfer_reply *rep, const char *text)
{
    char msg[PS_XFER_TEXT_MAX + 300];
    if (how == TIMEOUT) {
        fail(x, PS_TRANSFER_TIMEOUT, text);
        return;
    }
    if (how == FAILED) {
        fail(x, PS_TRANSFER_ERROR, text);
        return;
    }
    if (rep->result == PS_XFER_RESULT_REFUSED) {
        say(msg, sizeof msg, "%s %s refused %s: %s", leg_role(l), leg_processor(l),
            ps_xfer_op_name(l->op), rep->reason);
        /* A refused commit leaves the destination uncommitted for good. */
        if (x->phase == PH_COMMIT_DEST) x->uncertain = false;
        fail(x, PS_TRANSFER_REFUSED, msg);
        return;
    }
    ps_xfer_state st = rep->state;
    switch (x->phase) {
    case PH_STATUS:
        if (st == PS_XFER_STATE_COMMITTED) {
            say(x->reason, sizeof x->reason, "recovered: destination %s had committed",
                x->s.destination);
            go_release(x);
        } else {
            x->why = PS_TRANSFER_OK;
            say(x->reason, sizeof x->reason,
                "recovered: destination %s had not committed (state %s)", x->s.destination,
                ps_xfer_state_name(st));
            start_rollback(x);
        }
        return;
    case PH_PREP_DEST:
        if (st == PS_XFER_STATE_COMMITTED) {
            say(x->reason, sizeof x->reason, "destination %s had committed it already",
                x->s.destination);
            go_release(x);
        } else if (st != PS_XFER_STATE_PREPARED) {
            break;
        } else if (x->nlegs > 1) {
            x->phase = PH_PREP_SOURCE;
            leg_send(&x->legs[LEG_SOURCE], PS_XFER_OP_PREPARE, now_s() + x->t->cfg.timeout);
        } else {
            commit_dest(x);
        }
        return;
    case PH_PREP_SOURCE:
        if (st != PS_XFER_STATE_PREPARED && st != PS_XFER_STATE_COMMITTED) break;
        commit_dest(x);
        return;
    case PH_COMMIT_DEST:
        if (st != PS_XFER_STATE_COMMITTED) break;
        go_release(x);
        return;
    default:
        return;
    }
    say(msg, sizeof msg, "%s %s answered %s with state %s", leg_role(l), leg_processor(l),
        ps_xfer_op_name(l->op), ps_xfer_state_name(st));
    fail(x, PS_TRANSFER_ERROR, msg);
}

/* ROLLBACK: one leg's exchange ended. */
static void rollback_step(xfer *x, leg *l, int how, const ps_xfer_reply *rep, const char *text)
{
    if (how == FAILED && now_s() + x->t->cfg.retry < l->deadline) {
        say(l->last_err, sizeof l->last_err, "%s", text);
        leg_later(l); /* an error reply: try again */
        return;
    }
    bool unknown = false;
    if (how != ANSWER) {
        cat(x->reason, sizeof x->reason, "; %s %s did not confirm the rollback", leg_role(l),
            leg_processor(l));
        unknown = l->which == LEG_DEST;
    } else if (rep->result == PS_XFER_RESULT_REFUSED && rep->state == PS_XFER_STATE_COMMITTED) {
        if (l->which == LEG_DEST)
            x->dest_committed = true;
        else
            cat(x->reason, sizeof x->reason, "; source %s had committed", leg_processor(l));
    } else if (rep->result == PS_XFER_RESULT_REFUSED) {
        cat(x->reason, sizeof x->reason, "; %s %s refused the rollback: %s", leg_role(l),
            leg_processor(l), rep->reason);
    }
    l->rb_done = true;
    if (l->which == LEG_DEST && x->dest_committed) {
        /* The commit went through after all: release the source instead. */
        cat(x->reason, sizeof x->reason, "; destination %s had committed: transfer completed",
            x->s.destination);
        if (x->uncertain || x->nlegs < 2 || x->legs[LEG_SOURCE].rb_done) {
            go_release(x);
            return;
        }
    }
    if (l->which == LEG_DEST && x->source_after) {
        x->source_after = false;
        if (unknown) {
            cat(x->reason, sizeof x->reason,
                "; its outcome is unknown, so source %s is left prepared: recover the transfer "
                "to settle it",
                x->s.source);
            x->legs[LEG_SOURCE].rb_done = true;
        } else {
            leg_send(&x->legs[LEG_SOURCE], PS_XFER_OP_ROLLBACK, now_s() + x->t->cfg.timeout);
            return;
        }
    }
    for (int i = 0; i < x->nlegs; i++)
        if (!x->legs[i].rb_done) return;
    if (x->dest_committed) {
        go_release(x);
        return;
    }
    ps_transfer_why why = x->why;
    finish(x, PS_TRANSFER_ROLLED_BACK, why, true);
}

/* RELEASE: the source's commit ended. */
static void release_step(xfer *x, leg *l, int how, const ps_xfer_reply *rep, const char *text)
{
    ps_transfers *t = x->t;
    if (how == ANSWER) {
        if (rep->result == PS_XFER_RESULT_REFUSED && !x->reported)
            cat(x->reason, sizeof x->reason, "%ssource %s refused the release: %s",
                x->reason[0] ? "; " : "", leg_processor(l), rep->reason);
        finish(x, PS_TRANSFER_COMMITTED, PS_TRANSFER_OK, true);
        return;
    }
    if (how == FAILED && now_s() + t->cfg.retry < l->deadline) {
        say(l->last_err, sizeof l->last_err, "%s", text);
        leg_later(l);
        return;
    }
    if (!x->reported) {
        cat(x->reason, sizeof x->reason,
            "%ssource %s has not acknowledged the release within %g s (%s); still retrying",
            x->reason[0] ? "; " : "", leg_processor(l), t->cfg.timeout, text);
        finish(x, PS_TRANSFER_COMMITTED, PS_TRANSFER_OK, false);
    }
    leg_send(l, PS_XFER_OP_COMMIT, now_s() + t->cfg.timeout);
}

static void on_outcome(leg *l, int how, const ps_xfer_reply *rep, const char *text)
{
    xfer *x = l->x;
    switch (x->phase) {
    case PH_ROLLBACK:
        rollback_step(x, l, how, rep, text);
        break;
    case PH_RELEASE:
        release_step(x, l, how, rep, text);
        break;
    case PH_DONE:
        break;
    default:
        forward(x, l, how, rep, text);
        break;
    }
}

/* ---- submit ----------------------------------------------------------------------- */

static int check_url(const char *what, const char *url, bool may_be_empty, char *err, size_t errlen)
{
    size_t n = strnlen(url, PS_TRANSFER_URL_MAX);
    if (n >= PS_TRANSFER_URL_MAX)
        return ps_fail(err, errlen, PS_EINVAL, "%s is not a string of at most %d bytes", what,
                       PS_TRANSFER_URL_MAX - 1);
    if (n == 0) return may_be_empty ? 0 : ps_fail(err, errlen, PS_EINVAL, "%s is empty", what);
    static const char *const schemes[] = {"tcp://", "tls+tcp://", "ipc://", "inproc://"};
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
        if (!strncmp(url, schemes[i], strlen(schemes[i])) && n > strlen(schemes[i])) return 0;
    return ps_fail(err, errlen, PS_EINVAL,
                   "%s '%s' is not a tcp://, tls+tcp://, ipc:// or inproc:// address", what, url);
}

static int check_spec(const ps_transfer_spec *s, char *err, size_t errlen)
{
    if (!s) return ps_fail(err, errlen, PS_EINVAL, "no transfer");
    if (s->id <= 0)
        return ps_fail(err, errlen, PS_EINVAL, "transfer id %lld is not > 0", (long long)s->id);
    if (ps_xfer_name_check("workload", s->workload, err, errlen) ||
        ps_xfer_name_check("source", s->source, err, errlen) ||
        ps_xfer_name_check("destination", s->destination, err, errlen))
        return PS_EINVAL;
    if (!strcmp(s->source, s->destination))
        return ps_fail(err, errlen, PS_EINVAL, "source and destination are both %s", s->source);
    if (check_url("destination_agent", s->destination_agent, false, err, errlen) ||
        check_url("source_agent", s->source_agent, true, err, errlen))
        return PS_EINVAL;
    if (!isfinite(s->state_bytes) || s->state_bytes < 0)
        return ps_fail(err, errlen, PS_EINVAL, "state_bytes %g is not a finite number >= 0",
                       s->state_bytes);
    if (!isfinite(s->expected_seconds) || s->expected_seconds < 0)
        return ps_fail(err, errlen, PS_EINVAL, "expected_seconds %g is not a finite number >= 0",
                       s->expected_seconds);
    return 0;
}

/* Free finished transfers (from the manager's thread, without mu held). */
static void reap(ps_transfers *t)
{
    xfer *dead = NULL;
    pthread_mutex_lock(&t->mu);
    for (xfer **p = &t->all; *p;) {
        xfer *x = *p;
        if (x->finished && !x->queued) {
            *p = x->next;
            x->next = dead;
            dead = x;
        } else {
            p = &x->next;
        }
    }
    pthread_mutex_unlock(&t->mu);
    while (dead) {
        xfer *x = dead;
        dead = x->next;
        for (int i = 0; i < 2; i++) {
            leg *l = &x->legs[i];
            if (l->aio) {
                nng_aio_stop(l->aio);
                nng_aio_free(l->aio);
            }
            if (l->has_ctx) nng_ctx_close(l->ctx);
        }
        pthread_mutex_lock(&t->mu);
        for (int i = 0; i < 2; i++)
            if (x->legs[i].as) x->legs[i].as->users--;
        pthread_mutex_unlock(&t->mu);
        free(x);
    }
}

static void xfer_free_unstarted(ps_transfers *t, xfer *x)
{
    for (int i = 0; i < 2; i++) {
        leg *l = &x->legs[i];
        if (l->aio) nng_aio_free(l->aio);
        if (l->has_ctx) nng_ctx_close(l->ctx);
        if (l->as) l->as->users--;
    }
    (void)t;
    free(x);
}

static int begin(ps_transfers *t, const ps_transfer_spec *s, bool recovering, char *err,
                 size_t errlen)
{
    if (!t) return ps_fail(err, errlen, PS_EINVAL, "no transfer orchestrator");
    int rc = check_spec(s, err, errlen);
    if (rc) return rc;
    reap(t);
    xfer *x = calloc(1, sizeof *x);
    if (!x) return ps_fail(err, errlen, PS_ENOMEM, "out of memory");
    x->t = t;
    x->s = *s;
    x->recovering = recovering;
    x->nlegs = s->source_agent[0] ? 2 : 1;
    pthread_mutex_lock(&t->mu);
    if (t->stopping) {
        rc = ps_fail(err, errlen, PS_EINVAL, "the orchestrator is stopping");
        goto out;
    }
    for (xfer *o = t->all; o; o = o->next)
        if (!o->reported && o->s.id == s->id) {
            rc = ps_fail(err, errlen, PS_TRANSFER_EEXISTS, "transfer %lld is in flight",
                         (long long)s->id);
            goto out;
        }
    if (t->in_flight >= t->limit) {
        rc = ps_fail(err, errlen, PS_TRANSFER_EBUSY, "%zu transfers in flight (the limit is %zu)",
                     t->in_flight, t->limit);
        goto out;
    }
    for (int i = 0; i < x->nlegs; i++) {
        leg *l = &x->legs[i];
        l->x = x;
        l->which = i;
        l->as = sock_get(t, i == LEG_DEST ? s->destination_agent : s->source_agent, err, errlen);
        if (!l->as) {
            rc = PS_TRANSFER_EBUSY;
            goto out;
        }
        int rv = nng_aio_alloc(&l->aio, leg_cb, l);
        if (rv == 0 && (rv = nng_ctx_open(&l->ctx, l->as->sock)) == 0) l->has_ctx = true;
        if (rv != 0) {
            rc = ps_fail(err, errlen, PS_ENOMEM, "cannot start the transfer: %s", nng_strerror(rv));
            goto out;
        }
        nng_ctx_set_ms(l->ctx, NNG_OPT_REQ_RESENDTIME, t->retry_ms);
    }
    /* The id check above ran before sock_get released mu: check again. */
    for (xfer *o = t->all; o; o = o->next)
        if (!o->reported && o->s.id == s->id) {
            rc = ps_fail(err, errlen, PS_TRANSFER_EEXISTS, "transfer %lld is in flight",
                         (long long)s->id);
            goto out;
        }
    if (t->in_flight >= t->limit) {
        rc = ps_fail(err, errlen, PS_TRANSFER_EBUSY, "%zu transfers in flight (the limit is %zu)",
                     t->in_flight, t->limit);
        goto out;
    }
    x->started = now_s();
    x->next = t->all;
    t->all = x;
    t->in_flight++;
    if (recovering) {
        x->phase = PH_STATUS;
        x->uncertain = true;
        leg_send(&x->legs[LEG_DEST], PS_XFER_OP_STATUS, x->started + t->cfg.timeout);
    } else {
        x->phase = PH_PREP_DEST;
        leg_send(&x->legs[LEG_DEST], PS_XFER_OP_PREPARE,
                 x->started + t->cfg.timeout + s->expected_seconds);
    }
    pthread_mutex_unlock(&t->mu);
    return 0;
out:
    xfer_free_unstarted(t, x);
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int ps_transfers_submit(ps_transfers *t, const ps_transfer_spec *s, char *err, size_t errlen)
{
    return begin(t, s, false, err, errlen);
}

int ps_transfers_recover(ps_transfers *t, const ps_transfer_spec *s, char *err, size_t errlen)
{
    return begin(t, s, true, err, errlen);
}

/* ---- collecting ------------------------------------------------------------------- */

size_t ps_transfers_poll(ps_transfers *t, ps_transfer_done *out, size_t cap, int timeout_ms)
{
    if (!t || !out || cap == 0) return 0;
    reap(t);
    pthread_mutex_lock(&t->mu);
    if (!t->qhead && timeout_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!t->qhead && !t->stopping)
            if (pthread_cond_timedwait(&t->cv, &t->mu, &ts) == ETIMEDOUT) break;
    }
    size_t n = 0;
    while (t->qhead && n < cap) {
        xfer *x = t->qhead;
        out[n++] = x->done;
        t->qhead = x->qnext;
        if (!t->qhead) t->qtail = NULL;
        x->queued = false;
    }
    pthread_mutex_unlock(&t->mu);
    reap(t);
    return n;
}

size_t ps_transfers_in_flight(const ps_transfers *t)
{
    if (!t) return 0;
    ps_transfers *m = (ps_transfers *)t;
    pthread_mutex_lock(&m->mu);
    size_t n = t->in_flight;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void ps_transfers_set_limit(ps_transfers *t, size_t limit)
{
    if (!t) return;
    if (limit < 1) limit = 1;
    pthread_mutex_lock(&t->mu);
    if (limit > t->cfg.max_limit) limit = t->cfg.max_limit;
    t->limit = limit;
    pthread_mutex_unlock(&t->mu);
}

size_t ps_transfers_limit(const ps_transfers *t)
{
    if (!t) return 0;
    ps_transfers *m = (ps_transfers *)t;
    pthread_mutex_lock(&m->mu);
    size_t n = t->limit;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void ps_transfers_stop(ps_transfers *t)
{
    if (!t) return;
    pthread_mutex_lock(&t->mu);
    t->stopping = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    /* Callbacks see `stopping` and start nothing; stop what is in progress. */
    for (xfer *x = t->all; x; x = x->next)
        for (int i = 0; i < 2; i++)
            if (x->legs[i].aio) nng_aio_stop(x->legs[i].aio);
    while (t->all) {
        xfer *x = t->all;
        t->all = x->next;
        for (int i = 0; i < 2; i++) {
            leg *l = &x->legs[i];
            if (l->aio) nng_aio_free(l->aio);
            if (l->has_ctx) nng_ctx_close(l->ctx);
        }
        free(x);
    }
    for (int i = 0; i < SOCKS_MAX; i++)
        if (t->socks[i]) sock_close(t->socks[i]);
    ps_buf_free(&t->buf);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t->tls_ca);
    free(t->tls_cert);
    free(t->tls_key);
    free(t);
}
