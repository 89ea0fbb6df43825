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
 * The loop (agent_run) spends its time between heartbeats in agent_wait,
 * which is where other sockets are to be serviced: the shifting manager's
 * transfer requests to the agent (a REP socket, a later issue) will be
 * polled there, each wait cut into short slices, without changing the rest.
 */
#include "cli.h"
#include "client.h"
#include "commands.h"
#include "procfs.h"

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
} agent_opts;

typedef struct agent {
    agent_opts o;
    sigset_t stop;
    bool stopping;
    ps_client *client;
    ps_procfs_reader reader;
    ps_procfs_sample prev;
    char host[256];
    long sent, answered, failed;
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
            "  -q, --quiet        print no line per heartbeat, only errors\n"
            "  -h, --help         this text\n"
            "\n"
            "A server that is down or answers an error is reported on stderr and tried\n"
            "again at the next interval. Exit status: 0 stopped (by --count or a signal)\n"
            "after at least one answered heartbeat, or before any was sent; 1 no heartbeat\n"
            "was answered, /proc could not be read, or --server or the TLS files are\n"
            "unusable; 2 bad usage.\n",
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
        static const char *const valued[] = {
            "--server", "--interval", "--timeout",  "--pid",     "--id",
            "--count",  "--tls-ca",   "--tls-cert", "--tls-key", "--tls-server-name"};
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
        } else {
            o->tls_server_name = v;
        }
        if (rc) return usage_error(err);
    }
    if (!strncmp(o->server, "tcp://", 6) || !strncmp(o->server, "ipc://", 6)) {
        if (o->tls_ca || o->tls_cert || o->tls_key || o->tls_server_name)
            return usage_error("--tls-* options need a tls+tcp:// --server");
    } else if (strncmp(o->server, "tls+tcp://", 10)) {
        snprintf(err, sizeof err, "--server: '%s' is not tcp://, ipc:// or tls+tcp://", o->server);
        return usage_error(err);
    }
    if (!o->tls_cert != !o->tls_key) return usage_error("--tls-cert and --tls-key go together");
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

int ps_cmd_agent(int argc, char **argv)
{
    agent a;
    memset(&a, 0, sizeof a);
    int rc = parse_args(argc, argv, &a.o);
    if (rc) return rc == 1 ? 0 : 2;

    char err[1024];
    if (ps_procfs_reader_init(&a.reader, NULL, (int)a.o.pid, err, sizeof err) ||
        ps_procfs_read(&a.reader, &a.prev, err, sizeof err)) {
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

    /* Before nng starts threads: they inherit the mask, so only sigtimedwait sees these. */
    sigemptyset(&a.stop);
    sigaddset(&a.stop, SIGINT);
    sigaddset(&a.stop, SIGTERM);
    sigset_t old;
    signal(SIGPIPE, SIG_IGN);
    pthread_sigmask(SIG_BLOCK, &a.stop, &old);

    ps_client_options copt = {.timeout_ms = (int)(a.o.timeout * 1000 + 0.5),
                              .tls_ca = a.o.tls_ca,
                              .tls_cert = a.o.tls_cert,
                              .tls_key = a.o.tls_key,
                              .server_name = a.o.tls_server_name};
    a.client = ps_client_open(a.o.server, &copt, err, sizeof err);
    if (!a.client) {
        fprintf(stderr, "preshift agent: %s\n", err);
        ps_procfs_reader_free(&a.reader);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return 1;
    }
    if (!a.o.quiet) {
        char what[64] = "this machine";
        if (a.o.pid) snprintf(what, sizeof what, "process %ld", a.o.pid);
        fprintf(stderr,
                "preshift agent: %s on %s as processor %llu -> %s, every %g s, metrics "
                "cpu mem net_rx net_tx disk_rd disk_wr\n",
                what, a.host, (unsigned long long)id, a.o.server, a.o.interval);
        fflush(stderr);
    }
    rc = agent_run(&a, id);
    ps_client_close(a.client);
    ps_procfs_reader_free(&a.reader);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!a.o.quiet || a.failed)
        fprintf(stderr, "preshift agent: %s; %ld heartbeat(s) sent, %ld answered, %ld failed\n",
                a.stopping ? "stopped by signal"
                : rc       ? "stopped"
                           : "done",
                a.sent, a.answered, a.failed);
    if (rc) return 1;
    return a.sent > 0 && a.answered == 0 ? 1 : 0;
}
