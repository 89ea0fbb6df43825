/*
 * cmd_agent.c - `preshift agent`: the heartbeat agent of one machine (or one
 * process). Every interval it reads six metrics from /proc (procfs.h), sends
 * them as one heartbeat to the scoring server (client.h) and prints the
 * server's answer: state, Instability Score, PFP and the metric contributing
 * most. docs/agent.md describes it.
 *
 * SIGINT and SIGTERM are blocked before nng starts its threads, and the main
 * loop waits for the next heartbeat with sigtimedwait: a signal ends the
 * wait, and stopping runs as ordinary code. A server that is down or answers
 * an error is reported on stderr and tried again at the next interval.
 *
 * The loop (agent_run) spends its time between heartbeats in agent_wait.
 *
 * With --transfer-listen the agent also answers the shifting manager's
 * transfer requests (docs/transfer.md) on a REP socket. That socket is not
 * polled by the loop: it is served by nng contexts, each with its own aio
 * whose callback decodes a request, applies it to the transfer table of
 * transfer_agent.h under a mutex, prints the event and sends the reply
 * (after a sleep on the same aio when --transfer-delay holds a
 * destination's prepare back). The loop and its heartbeats are unchanged;
 * --server off leaves only the transfers.
 */
#include "cli.h"
#include "client.h"
#include "commands.h"
#include "procfs.h"
#include "stop_signals.h"
#include "tls_setup.h"
#include "transfer_agent.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SERVER "tcp://127.0.0.1:5555" /* `preshift serve --listen`'s default */

typedef struct agent_opts {
    const char *server;
    double interval, timeout; /* seconds; timeout 0 = max(interval, 1 s) */
    long pid;
    bool has_id;
    uint64_t id;
    long count; /* 0 = until stopped */
    const char *tls_ca, *tls_cert, *tls_key, *tls_server_name;
    bool quiet;
    bool no_server; /* --server off: transfers only */
    /* transfers */
    const char *transfer_listen, *name, *transfer_journal;
    bool any_processor, refuse_transfers;
    double transfer_delay;
} agent_opts;

/* The transfer socket: REP contexts served from their aio callbacks. */
#define XFER_WORKERS 16

enum { XW_RECV, XW_WAIT, XW_SEND };

typedef struct xfer_server xfer_server;

typedef struct xfer_worker {
    xfer_server *srv;
    nng_aio *aio;
    nng_ctx ctx;
    int state;
    nng_msg *pending; /* the reply a sleep holds back */
    ps_buf out;
} xfer_worker;

struct xfer_server {
    nng_socket sock;
    bool sock_open;
    nng_tls_config *tls;
    pthread_mutex_t mu; /* the table, the log lines */
    ps_xfer_agent *table;
    bool quiet, stopping;
    xfer_worker w[XFER_WORKERS];
    size_t nw;
};

typedef struct agent {
    agent_opts o;
    sigset_t stop;
    bool stopping;
    ps_client *client;
    ps_procfs_reader reader;
    ps_procfs_sample prev;
    char host[256];
    long sent, answered, failed;
    xfer_server *xs;
} agent;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: preshift agent [options]\n"
            "\n"
            "Send this machine's (or one process's) resource use to the scoring server as\n"
            "one heartbeat per interval, and print each answer: time, state, Instability\n"
            "Score, PFP and the metric contributing most. Six metrics per heartbeat, in\n"
            "this order (docs/agent.md): cpu (fraction of all cores), mem (fraction of\n"
            "memory), net_rx and net_tx (bytes/s, every interface but lo), disk_rd and\n"
            "disk_wr (bytes/s, whole disks); the server must run with --metrics 6.\n"
            "\n"
            "options:\n"
            "  --server URL       scoring server, tcp://, ipc:// or tls+tcp://\n"
            "                     (default %s, preshift serve's default --listen)\n"
            "  --interval S       seconds between heartbeats, 0.01 .. 3600 (default 1)\n"
            "  --timeout S        seconds to wait for a reply (default: the interval,\n"
            "                     at least 1)\n"
            "  --pid PID          measure process PID instead of the machine: its CPU and\n"
            "                     memory, its disk I/O (/proc/PID/io); network stays the\n"
            "                     machine's (default: none, the machine)\n"
            "  --id N             processor id, 0 .. 2^64-1 (default: a hash of the host\n"
            "                     name, with --pid of host name and pid)\n"
            "  --count N          stop after N heartbeats (default 0: until SIGINT/SIGTERM)\n"
            "  --tls-ca FILE      PEM CA certificates to verify the server (tls+tcp://;\n"
            "                     default none: encrypted but the server is not verified)\n"
            "  --tls-cert FILE    PEM certificate of this agent, for mutual TLS (default none)\n"
            "  --tls-key FILE     its PEM private key (default none)\n"
            "  --tls-server-name NAME\n"
            "                     name the server's certificate must carry (default: the\n"
            "                     host of --server)\n"
            "  --server off       send no heartbeats: only answer transfers (needs\n"
            "                     --transfer-listen)\n"
            "\n"
            "transfers (docs/transfer.md): the shifting manager moves workloads to and from\n"
            "this processor through the agent\n"
            "  --transfer-listen ADDR\n"
            "                     answer transfer requests on ADDR, tcp://, ipc:// or\n"
            "                     tls+tcp:// (default: none, no transfers); tls+tcp:// uses\n"
            "                     --tls-cert/--tls-key as this agent's certificate and, with\n"
            "                     --tls-ca, requires the manager's certificate\n"
            "  --name NAME        the processor name transfers are addressed to (default: the\n"
            "                     host name)\n"
            "  --any-processor    answer for any processor name (one agent standing in for\n"
            "                     many processors: tests, simulations)\n"
            "  --transfer-journal FILE\n"
            "                     append every transfer change to FILE and replay it at start,\n"
            "                     so answers stay the same across restarts (default: none,\n"
            "                     memory only)\n"
            "  --refuse-transfers refuse every transfer to this processor (prepare as\n"
            "                     destination)\n"
            "  --transfer-delay S acknowledge a destination's prepare S seconds after it\n"
            "                     arrives, simulating the copy, 0 .. 3600 (default 0)\n"
            "\n"
            "  -q, --quiet        print no line per heartbeat or transfer, only errors\n"
            "  -h, --help         this text\n"
            "\n"
            "A server that is down or answers an error is reported on stderr and tried\n"
            "again at the next interval. Exit status: 0 stopped (by --count or a signal)\n"
            "after at least one answered heartbeat, or before any was sent; 1 no heartbeat\n"
            "was answered, /proc could not be read, or --server, --transfer-listen, the\n"
            "journal or the TLS files are unusable; 2 bad usage.\n",
            DEFAULT_SERVER);
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "preshift agent: %s\n(see 'preshift agent --help')\n", msg);
    return 2;
}

static int parse_u64(const char *flag, const char *s, uint64_t *out, char *err, size_t errlen)
{
    uint64_t v = 0;
    const char *p = s;
    if (!*p) goto bad;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') goto bad;
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) goto bad;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
bad:
    snprintf(err, errlen, "%s: '%s' is not a whole number in 0 .. 18446744073709551615", flag, s);
    return -1;
}

/* 0 run, 1 help printed, 2 usage error (printed). */
static int parse_args(int argc, char **argv, agent_opts *o)
{
    char err[256];
    *o = (agent_opts){.server = DEFAULT_SERVER, .interval = 1.0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o->quiet = true;
            continue;
        }
        if (!strcmp(a, "--any-processor")) {
            o->any_processor = true;
            continue;
        }
        if (!strcmp(a, "--refuse-transfers")) {
            o->refuse_transfers = true;
            continue;
        }
        static const char *const valued[] = {"--server",
                                             "--interval",
                                             "--timeout",
                                             "--pid",
                                             "--id",
                                             "--count",
                                             "--tls-ca",
                                             "--tls-cert",
                                             "--tls-key",
                                             "--tls-server-name",
                                             "--transfer-listen",
                                             "--name",
                                             "--transfer-journal",
                                             "--transfer-delay"};
        bool known = false;
        for (size_t j = 0; j < sizeof valued / sizeof valued[0]; j++)
            known |= !strcmp(a, valued[j]);
        if (!known) {
            snprintf(err, sizeof err, "unknown option '%s'", a);
            return usage_error(err);
        }
        if (i + 1 >= argc) {
            snprintf(err, sizeof err, "%s needs a value", a);
            return usage_error(err);
        }
        const char *v = argv[++i];
        int rc = 0;
        if (!strcmp(a, "--server")) {
            if (!*v) return usage_error("--server: empty address");
            o->server = v;
        } else if (!strcmp(a, "--interval")) {
            rc = ps_parse_double(a, v, 0.01, 3600, &o->interval, err, sizeof err);
        } else if (!strcmp(a, "--timeout")) {
            rc = ps_parse_double(a, v, 0.01, 3600, &o->timeout, err, sizeof err);
        } else if (!strcmp(a, "--pid")) {
            rc = ps_parse_long(a, v, 1, INT_MAX, &o->pid, err, sizeof err);
        } else if (!strcmp(a, "--id")) {
            rc = parse_u64(a, v, &o->id, err, sizeof err);
            o->has_id = true;
        } else if (!strcmp(a, "--count")) {
            rc = ps_parse_long(a, v, 0, LONG_MAX, &o->count, err, sizeof err);
        } else if (!strcmp(a, "--tls-ca")) {
            o->tls_ca = v;
        } else if (!strcmp(a, "--tls-cert")) {
            o->tls_cert = v;
        } else if (!strcmp(a, "--tls-key")) {
            o->tls_key = v;
        } else if (!strcmp(a, "--tls-server-name")) {
            o->tls_server_name = v;
        } else if (!strcmp(a, "--transfer-listen")) {
            if (!*v) return usage_error("--transfer-listen: empty address");
            o->transfer_listen = v;
        } else if (!strcmp(a, "--name")) {
            if (ps_xfer_name_check("--name", v, err, sizeof err)) return usage_error(err);
            o->name = v;
        } else if (!strcmp(a, "--transfer-journal")) {
            if (!*v) return usage_error("--transfer-journal: empty file name");
            o->transfer_journal = v;
        } else {
            rc = ps_parse_double(a, v, 0, 3600, &o->transfer_delay, err, sizeof err);
        }
        if (rc) return usage_error(err);
    }
    o->no_server = !strcmp(o->server, "off");
    bool server_tls = !strncmp(o->server, "tls+tcp://", 10);
    if (!o->no_server && !server_tls && strncmp(o->server, "tcp://", 6) &&
        strncmp(o->server, "ipc://", 6)) {
        snprintf(err, sizeof err, "--server: '%s' is not tcp://, ipc://, tls+tcp:// or off",
                 o->server);
        return usage_error(err);
    }
    const char *tl = o->transfer_listen;
    bool listen_tls = tl && !strncmp(tl, "tls+tcp://", 10);
    if (tl && !listen_tls && strncmp(tl, "tcp://", 6) && strncmp(tl, "ipc://", 6)) {
        snprintf(err, sizeof err, "--transfer-listen: '%s' is not tcp://, ipc:// or tls+tcp://",
                 tl);
        return usage_error(err);
    }
    if (!tl) {
        const char *needs = o->name                 ? "--name"
                            : o->any_processor      ? "--any-processor"
                            : o->transfer_journal   ? "--transfer-journal"
                            : o->refuse_transfers   ? "--refuse-transfers"
                            : o->transfer_delay > 0 ? "--transfer-delay"
                            : o->no_server          ? "--server off"
                                                    : NULL;
        if (needs) {
            snprintf(err, sizeof err, "%s needs --transfer-listen", needs);
            return usage_error(err);
        }
    }
    if (o->no_server && o->count)
        return usage_error("--count counts heartbeats: it needs a --server, not off");
    if ((o->tls_ca || o->tls_cert || o->tls_key || o->tls_server_name) && !server_tls &&
        !listen_tls)
        return usage_error("--tls-* options need a tls+tcp:// --server or --transfer-listen");
    if (o->tls_server_name && !server_tls)
        return usage_error("--tls-server-name needs a tls+tcp:// --server");
    if (!o->tls_cert != !o->tls_key) return usage_error("--tls-cert and --tls-key go together");
    if (listen_tls && !o->tls_cert)
        return usage_error("a tls+tcp:// --transfer-listen needs --tls-cert and --tls-key");
    if (o->timeout == 0) o->timeout = o->interval > 1 ? o->interval : 1;
    return 0;
}

/* FNV-1a, 64 bits. */
static uint64_t hash_text(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

static double monotonic_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double wall_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/*
 * Wait until `deadline` (monotonic seconds) or a stop signal; false when the
 * agent is to stop. Other sockets of the agent are to be serviced here.
 */
static bool agent_wait(agent *a, double deadline)
{
    while (!a->stopping) {
        double left = deadline - monotonic_now();
        if (left <= 0) return true;
        struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
        int sig = sigtimedwait(&a->stop, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) a->stopping = true;
        /* -1: EAGAIN (deadline reached) or EINTR (another signal): look again */
    }
    return false;
}

/* A stop signal that arrived during a request, without waiting. */
static void agent_poll_stop(agent *a)
{
    struct timespec zero = {0, 0};
    int sig = sigtimedwait(&a->stop, NULL, &zero);
    if (sig == SIGINT || sig == SIGTERM) a->stopping = true;
}

static void print_result(const agent *a, double ts, const ps_proto_result *r)
{
    if (a->o.quiet) return;
    time_t sec = (time_t)ts;
    struct tm tm;
    char when[32] = "?";
    if (localtime_r(&sec, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    int ms = (int)((ts - (double)sec) * 1000);
    if (ms > 999) ms = 999;
    const char *top =
        r->top >= 0 && r->top < PS_PROCFS_K ? ps_procfs_metric_name((int)r->top) : "-";
    printf("%s.%03d  %-10s  score %8.3f  pfp %.6f  top %s\n", when, ms,
           ps_proto_state_name(r->state), (double)r->score, r->pfp, top);
    fflush(stdout);
}

/* One heartbeat: sample, send, print. -1 when /proc cannot be read (fatal). */
static int agent_beat(agent *a, uint64_t id)
{
    char err[1024];
    ps_procfs_sample cur;
    if (ps_procfs_read(&a->reader, &cur, err, sizeof err)) {
        fprintf(stderr, "preshift agent: %s\n", err);
        return -1;
    }
    float x[PS_PROCFS_K];
    if (ps_procfs_metrics(&a->prev, &cur, x, err, sizeof err)) {
        /* Two samples in the same instant: skip this beat, keep the older sample. */
        fprintf(stderr, "preshift agent: %s\n", err);
        return 0;
    }
    a->prev = cur;
    double ts = wall_now();
    ps_proto_result r;
    a->sent++;
    int rc = ps_client_heartbeat(a->client, id, ts, PS_PROCFS_K, x, &r, NULL, err, sizeof err);
    if (rc == PS_CLIENT_OK) {
        a->answered++;
        print_result(a, ts, &r);
        return 0;
    }
    a->failed++;
    fprintf(stderr, "preshift agent: heartbeat %ld: %s%s\n", a->sent, err,
            rc == PS_PROTO_E_K_MISMATCH ? " (the server must run with --metrics 6)"
            : rc == PS_CLIENT_E_TIMEOUT ? "; retrying at the next interval"
                                        : "");
    fflush(stderr);
    return 0;
}

/* ---- transfers ---------------------------------------------------------------- */

static void now_text(char *out, size_t cap)
{
    double ts = wall_now();
    time_t sec = (time_t)ts;
    struct tm tm;
    char when[32] = "?";
    if (localtime_r(&sec, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    int ms = (int)((ts - (double)sec) * 1000);
    if (ms > 999) ms = 999;
    snprintf(out, cap, "%s.%03d", when, ms);
}

/* One line per change or refusal on stdout (unless -q); errors on stderr. */
static void xfer_print(const xfer_server *s, const ps_xfer_event *ev)
{
    if (ev->code) {
        fprintf(stderr, "preshift agent: transfer request answered %s: %s\n",
                ps_xfer_code_name(ev->code), ev->reason);
        fflush(stderr);
        return;
    }
    if (s->quiet || (!ev->changed && ev->result != PS_XFER_RESULT_REFUSED)) return;
    char when[48], what[256] = "";
    now_text(when, sizeof when);
    if (ev->role != PS_XFER_ROLE_NONE)
        snprintf(what, sizeof what, " %s of %s (peer %s)", ps_xfer_role_name(ev->role),
                 ev->workload, ev->peer);
    if (ev->result == PS_XFER_RESULT_REFUSED)
        printf("%s  transfer %lld %-8s %s%s: refused: %s\n", when, (long long)ev->id,
               ps_xfer_op_name(ev->op), ev->processor, what, ev->reason);
    else
        printf("%s  transfer %lld %-8s %s%s: %s -> %s\n", when, (long long)ev->id,
               ps_xfer_op_name(ev->op), ev->processor, what, ps_xfer_state_name(ev->before),
               ps_xfer_state_name(ev->after));
    fflush(stdout);
}

static void xfer_recv(xfer_worker *w)
{
    w->state = XW_RECV;
    nng_ctx_recv(w->ctx, w->aio);
}

static void xfer_send(xfer_worker *w, nng_msg *m)
{
    w->state = XW_SEND;
    nng_aio_set_msg(w->aio, m);
    nng_ctx_send(w->ctx, w->aio);
}

/* A request in: apply it, print it, reply now or after the delay. */
static void xfer_request(xfer_worker *w, nng_msg *in)
{
    xfer_server *s = w->srv;
    ps_xfer_event ev;
    double now = monotonic_now(), at = now;
    pthread_mutex_lock(&s->mu);
    bool stopping = s->stopping;
    if (!stopping) {
        ps_xfer_agent_handle(s->table, nng_msg_body(in), nng_msg_len(in), now, &w->out, &at, &ev);
        xfer_print(s, &ev);
    }
    pthread_mutex_unlock(&s->mu);
    nng_msg_free(in);
    if (stopping) return; /* not applied: no reply */
    nng_msg *m = NULL;
    if (w->out.len == 0 || nng_msg_alloc(&m, w->out.len) != 0) {
        xfer_recv(w); /* no reply: the manager's REQ resends */
        return;
    }
    memcpy(nng_msg_body(m), w->out.data, w->out.len);
    double wait = at - monotonic_now();
    if (wait > 0) {
        w->pending = m;
        w->state = XW_WAIT;
        nng_sleep_aio((nng_duration)(wait * 1000 + 1), w->aio);
        return;
    }
    xfer_send(w, m);
}

static void xfer_cb(void *arg)
{
    xfer_worker *w = arg;
    int rv = nng_aio_result(w->aio);
    nng_msg *m;
    switch (w->state) {
    case XW_RECV:
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) return;
        if (rv != 0) {
            xfer_recv(w);
            return;
        }
        m = nng_aio_get_msg(w->aio);
        nng_aio_set_msg(w->aio, NULL);
        xfer_request(w, m);
        return;
    case XW_WAIT:
        m = w->pending;
        w->pending = NULL;
        if (rv != 0 && rv != NNG_ETIMEDOUT) { /* stopped */
            nng_msg_free(m);
            return;
        }
        xfer_send(w, m);
        return;
    default:
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(w->aio));
            nng_aio_set_msg(w->aio, NULL);
        }
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) return;
        xfer_recv(w);
        return;
    }
}

/* The listener's TLS: this agent's certificate, the manager's verified with --tls-ca. */
static int xfer_tls(xfer_server *s, const agent_opts *o, char *err, size_t errlen)
{
    return ps_tls_server_config(o->tls_cert, o->tls_key, o->tls_ca, &s->tls, err, errlen);
}

static void xfer_stop(xfer_server *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < s->nw; i++)
        nng_aio_stop(s->w[i].aio);
    if (s->sock_open) nng_close(s->sock);
    for (size_t i = 0; i < s->nw; i++) {
        if (s->w[i].pending) nng_msg_free(s->w[i].pending);
        nng_aio_free(s->w[i].aio);
        ps_buf_free(&s->w[i].out);
    }
    if (s->table && !s->quiet) {
        ps_xfer_agent_stats st = ps_xfer_agent_get_stats(s->table);
        uint64_t n = 0;
        for (int i = 0; i < PS_XFER_NOPS; i++)
            n += st.received[i];
        fprintf(stderr,
                "preshift agent: %llu transfer request(s): %llu prepare(s), %llu commit(s), "
                "%llu rollback(s) applied, %llu repeat(s), %llu refused, %llu error(s)\n",
                (unsigned long long)n, (unsigned long long)st.applied[PS_XFER_OP_PREPARE],
                (unsigned long long)st.applied[PS_XFER_OP_COMMIT],
                (unsigned long long)st.applied[PS_XFER_OP_ROLLBACK], (unsigned long long)st.repeats,
                (unsigned long long)st.refused, (unsigned long long)st.errors);
        fflush(stderr);
    }
    ps_xfer_agent_close(s->table);
    if (s->tls) nng_tls_config_free(s->tls);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Open the table (replaying the journal) and listen. NULL with the reason. */
static xfer_server *xfer_start(const agent_opts *o, const char *name, char *err, size_t errlen)
{
    xfer_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->quiet = o->quiet;
    ps_xfer_agent_config c = {.name = name,
                              .any_processor = o->any_processor,
                              .refuse_destination = o->refuse_transfers,
                              .delay = o->transfer_delay,
                              .journal = o->transfer_journal};
    s->table = ps_xfer_agent_open(&c, err, errlen);
    if (!s->table) goto fail;
    const char *addr = o->transfer_listen;
    int rv = nng_rep0_open(&s->sock);
    if (rv != 0) {
        snprintf(err, errlen, "cannot open a REP socket: %s", nng_strerror(rv));
        goto fail;
    }
    s->sock_open = true;
    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, PS_XFER_MAX_MESSAGE);
    if (!strncmp(addr, "tls+", 4) && xfer_tls(s, o, err, errlen)) goto fail;
    nng_listener l;
    rv = nng_listener_create(&l, s->sock, addr);
    if (rv == 0 && s->tls) rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, s->tls);
    if (rv == 0) rv = nng_listener_set_size(l, NNG_OPT_RECVMAXSZ, PS_XFER_MAX_MESSAGE);
    if (rv == 0) rv = nng_listener_start(l, 0);
    if (rv != 0) {
        snprintf(err, errlen, "--transfer-listen: cannot listen on %s: %s", addr, nng_strerror(rv));
        goto fail;
    }
    for (size_t i = 0; i < XFER_WORKERS; i++) {
        xfer_worker *w = &s->w[i];
        w->srv = s;
        if ((rv = nng_aio_alloc(&w->aio, xfer_cb, w)) != 0) {
            snprintf(err, errlen, "cannot serve transfers: %s", nng_strerror(rv));
            goto fail;
        }
        s->nw++;
        if ((rv = nng_ctx_open(&w->ctx, s->sock)) != 0) {
            snprintf(err, errlen, "cannot serve transfers: %s", nng_strerror(rv));
            goto fail;
        }
    }
    for (size_t i = 0; i < s->nw; i++)
        xfer_recv(&s->w[i]);
    return s;
fail:
    s->quiet = true;
    xfer_stop(s);
    return NULL;
}

/* The main loop: a heartbeat every interval until --count or a signal. */
static int agent_run(agent *a, uint64_t id)
{
    double next = monotonic_now() + a->o.interval;
    while (a->o.count == 0 || a->sent < a->o.count) {
        if (!agent_wait(a, next)) break;
        if (agent_beat(a, id)) return 1;
        agent_poll_stop(a);
        /* Keep the phase; skip beats a slow reply made us miss. */
        double now = monotonic_now();
        next += a->o.interval;
        if (next <= now) next += a->o.interval * (double)(long)((now - next) / a->o.interval + 1);
    }
    return 0;
}

/* --server off: nothing but transfers, until a signal. */
static int agent_idle(agent *a)
{
    while (agent_wait(a, monotonic_now() + 3600))
        ;
    return 0;
}

int ps_cmd_agent(int argc, char **argv)
{
    agent a;
    memset(&a, 0, sizeof a);
    int rc = parse_args(argc, argv, &a.o);
    if (rc) return rc == 1 ? 0 : 2;

    char err[1024];
    bool reader = !a.o.no_server;
    if (reader && (ps_procfs_reader_init(&a.reader, NULL, (int)a.o.pid, err, sizeof err) ||
                   ps_procfs_read(&a.reader, &a.prev, err, sizeof err))) {
        fprintf(stderr, "preshift agent: %s\n", err);
        ps_procfs_reader_free(&a.reader);
        return 1;
    }
    if (gethostname(a.host, sizeof a.host) != 0) snprintf(a.host, sizeof a.host, "localhost");
    a.host[sizeof a.host - 1] = '\0';
    uint64_t id = a.o.id;
    if (!a.o.has_id) {
        char key[300];
        if (a.o.pid)
            snprintf(key, sizeof key, "%s:%ld", a.host, a.o.pid);
        else
            snprintf(key, sizeof key, "%s", a.host);
        id = hash_text(key);
    }
    const char *xname = a.o.name ? a.o.name : a.host;
    if (a.o.transfer_listen && !a.o.any_processor &&
        ps_xfer_name_check("processor name", xname, err, sizeof err)) {
        fprintf(stderr,
                "preshift agent: the host name '%s' cannot be a processor name (%s): give one "
                "with --name\n",
                xname, err);
        if (reader) ps_procfs_reader_free(&a.reader);
        return 1;
    }

    /* Before nng starts threads: they inherit the mask, so only sigtimedwait sees these. */
    sigset_t old;
    ps_stop_signals_block(&a.stop, &old);

    if (a.o.transfer_listen) {
        a.xs = xfer_start(&a.o, xname, err, sizeof err);
        if (!a.xs) {
            fprintf(stderr, "preshift agent: %s\n", err);
            if (reader) ps_procfs_reader_free(&a.reader);
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            return 1;
        }
    }
    if (!a.o.no_server) {
        ps_client_options copt = {.timeout_ms = (int)(a.o.timeout * 1000 + 0.5),
                                  .tls_ca = a.o.tls_ca,
                                  .tls_cert = a.o.tls_cert,
                                  .tls_key = a.o.tls_key,
                                  .server_name = a.o.tls_server_name};
        a.client = ps_client_open(a.o.server, &copt, err, sizeof err);
        if (!a.client) {
            fprintf(stderr, "preshift agent: %s\n", err);
            xfer_stop(a.xs);
            ps_procfs_reader_free(&a.reader);
            pthread_sigmask(SIG_SETMASK, &old, NULL);
            return 1;
        }
    }
    if (!a.o.quiet) {
        if (!a.o.no_server) {
            char what[64] = "this machine";
            if (a.o.pid) snprintf(what, sizeof what, "process %ld", a.o.pid);
            fprintf(stderr,
                    "preshift agent: %s on %s as processor %llu -> %s, every %g s, metrics "
                    "cpu mem net_rx net_tx disk_rd disk_wr\n",
                    what, a.host, (unsigned long long)id, a.o.server, a.o.interval);
        }
        if (a.xs)
            fprintf(stderr, "preshift agent: transfers on %s for %s%s%s%s\n", a.o.transfer_listen,
                    a.o.any_processor ? "any processor" : "processor ",
                    a.o.any_processor ? "" : xname,
                    a.o.refuse_transfers ? ", refusing every transfer to it" : "",
                    a.o.transfer_journal ? ", journal kept" : "");
        fflush(stderr);
    }
    rc = a.o.no_server ? agent_idle(&a) : agent_run(&a, id);
    if (a.client) ps_client_close(a.client);
    xfer_stop(a.xs);
    if (reader) ps_procfs_reader_free(&a.reader);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!a.o.no_server && (!a.o.quiet || a.failed))
        fprintf(stderr, "preshift agent: %s; %ld heartbeat(s) sent, %ld answered, %ld failed\n",
                a.stopping ? "stopped by signal"
                : rc       ? "stopped"
                           : "done",
                a.sent, a.answered, a.failed);
    else if (a.o.no_server && !a.o.quiet)
        fprintf(stderr, "preshift agent: stopped by signal\n");
    if (rc) return 1;
    return a.sent > 0 && a.answered == 0 ? 1 : 0;
}
