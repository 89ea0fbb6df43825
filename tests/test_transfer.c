/*
 * test_transfer.c - the transfer orchestrator (server/transfer.h) against real
 * agents over ipc:// in a temporary directory: in-process agents (the
 * transfer_agent state machine behind a REP socket in a thread, which can
 * also be told to drop the replies to some ops, or never to answer), and
 * `preshift agent --server off --transfer-listen ... --any-processor`
 * processes spawned from the build.
 *
 * Covered: a transfer commits; a refusing destination rolls back (why
 * REFUSED) and another destination then takes it; an agent that never
 * answers, and one that is not there, time out and roll back; a dead source
 * commits on the destination alone; EEXISTS, EBUSY, set_limit, bad specs;
 * recover() of a transfer the destination committed (COMMITTED, the source
 * released) and of one only prepared (ROLLED_BACK, both rolled back), also
 * across a restart of a journaled agent; resends (a slow destination) apply
 * each prepare and commit once; a lost commit reply (the rollback finds the
 * destination committed: COMMITTED); a destination silent after its commit
 * (ROLLED_BACK, source left prepared, settled by recover); a source slow to
 * release (COMMITTED reported, the release finishing in the background); an
 * error reply (ERROR); mutual TLS when openssl can make a certificate.
 */
#include "server/transfer.h"
#include "server/transfer_agent.h"

#include "kernels/kernels.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static char tmpdir[256];
static char err[1024];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* ---- in-process agents ------------------------------------------------------------- */

typedef struct fake {
    char url[300];
    nng_socket sock;
    nng_tls_config *tls;
    pthread_t th;
    pthread_mutex_t mu;
    ps_xfer_agent *table;
    bool silent;             /* never answer anything */
    bool mute[PS_XFER_NOPS]; /* apply these ops but drop the reply */
    bool stop;
    unsigned long received;
} fake;

static void *fake_run(void *arg)
{
    fake *f = arg;
    ps_buf out = {0};
    for (;;) {
        pthread_mutex_lock(&f->mu);
        bool stop = f->stop;
        pthread_mutex_unlock(&f->mu);
        if (stop) break;
        nng_msg *m;
        int rv = nng_recvmsg(f->sock, &m, 0);
        if (rv == NNG_ETIMEDOUT) continue;
        if (rv != 0) break;
        double t0 = now_s(), at = t0;
        ps_xfer_event ev = {0};
        pthread_mutex_lock(&f->mu);
        bool drop = f->silent;
        f->received++;
        if (!drop) {
            ps_xfer_agent_handle(f->table, nng_msg_body(m), nng_msg_len(m), t0, &out, &at, &ev);
            drop = f->mute[ev.op] || out.len == 0;
        }
        pthread_mutex_unlock(&f->mu);
        nng_msg_free(m);
        if (drop) continue;
        while (now_s() < at) {
            pthread_mutex_lock(&f->mu);
            stop = f->stop;
            pthread_mutex_unlock(&f->mu);
            if (stop) break;
            sleep_s(0.01);
        }
        nng_msg *r;
        if (nng_msg_alloc(&r, out.len) != 0) continue;
        memcpy(nng_msg_body(r), out.data, out.len);
        if (nng_sendmsg(f->sock, r, 0) != 0) nng_msg_free(r);
    }
    ps_buf_free(&out);
    return NULL;
}

/* An agent at ipc://TMP/name (or tls+tcp:// on a free port with cert and key), answering
 * for `processor` (NULL: any), acknowledging destinations' prepares after `delay`. */
static fake *fake_start(const char *name, const char *processor, double delay, const char *cert,
                        const char *key)
{
    fake *f = calloc(1, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    ps_xfer_agent_config c = {.name = processor, .any_processor = !processor, .delay = delay};
    f->table = ps_xfer_agent_open(&c, err, sizeof err);
    CHECKF(f->table != NULL, "%s", err);
    int rv = nng_rep0_open(&f->sock);
    CHECK(rv == 0);
    nng_socket_set_ms(f->sock, NNG_OPT_RECVTIMEO, 20);
    nng_listener l;
    if (cert) {
        snprintf(f->url, sizeof f->url, "tls+tcp://127.0.0.1:0");
        CHECK(nng_tls_config_alloc(&f->tls, NNG_TLS_MODE_SERVER) == 0);
        FILE *fc = fopen(cert, "r"), *fk = fopen(key, "r");
        static char cb[8192], kb[8192];
        size_t nc = fc ? fread(cb, 1, sizeof cb - 1, fc) : 0,
               nk = fk ? fread(kb, 1, sizeof kb - 1, fk) : 0;
        cb[nc] = kb[nk] = '\0';
        if (fc) fclose(fc);
        if (fk) fclose(fk);
        CHECK(nng_tls_config_own_cert(f->tls, cb, kb, NULL) == 0);
        CHECK(nng_tls_config_ca_file(f->tls, cert) == 0);
        CHECK(nng_tls_config_auth_mode(f->tls, NNG_TLS_AUTH_MODE_REQUIRED) == 0);
    } else {
        snprintf(f->url, sizeof f->url, "ipc://%s/%s", tmpdir, name);
    }
    rv = nng_listener_create(&l, f->sock, f->url);
    if (rv == 0 && f->tls) rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, f->tls);
    if (rv == 0) rv = nng_listener_start(l, 0);
    CHECKF(rv == 0, "listen on %s: %s", f->url, nng_strerror(rv));
    if (cert) {
        int port = 0;
        nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port);
        snprintf(f->url, sizeof f->url, "tls+tcp://127.0.0.1:%d", port);
    }
    pthread_create(&f->th, NULL, fake_run, f);
    return f;
}

static void fake_stop(fake *f)
{
    pthread_mutex_lock(&f->mu);
    f->stop = true;
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->th, NULL);
    nng_close(f->sock);
    ps_xfer_agent_close(f->table);
    if (f->tls) nng_tls_config_free(f->tls);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static ps_xfer_state fake_state(fake *f, const char *processor, int64_t id)
{
    pthread_mutex_lock(&f->mu);
    const ps_xfer_record *r = ps_xfer_agent_find(f->table, processor, id);
    ps_xfer_state s = r ? r->state : PS_XFER_STATE_NONE;
    pthread_mutex_unlock(&f->mu);
    return s;
}

static ps_xfer_agent_stats fake_stats(fake *f)
{
    pthread_mutex_lock(&f->mu);
    ps_xfer_agent_stats s = ps_xfer_agent_get_stats(f->table);
    pthread_mutex_unlock(&f->mu);
    return s;
}

static unsigned long fake_received(fake *f)
{
    pthread_mutex_lock(&f->mu);
    unsigned long n = f->received;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static void fake_set(fake *f, bool silent, int mute_op, bool mute)
{
    pthread_mutex_lock(&f->mu);
    f->silent = silent;
    if (mute_op) f->mute[mute_op] = mute;
    pthread_mutex_unlock(&f->mu);
}

/* Apply a request to a fake's table directly (to set up recoveries). */
static void fake_apply(fake *f, ps_xfer_op op, int64_t id, const char *processor, ps_xfer_role role,
                       const char *peer)
{
    ps_xfer_request q = {.op = op, .id = id, .role = role};
    snprintf(q.processor, sizeof q.processor, "%s", processor);
    snprintf(q.workload, sizeof q.workload, "w%lld", (long long)id);
    if (peer) snprintf(q.peer, sizeof q.peer, "%s", peer);
    ps_xfer_reply r;
    pthread_mutex_lock(&f->mu);
    int rc = ps_xfer_agent_apply(f->table, &q, now_s(), &r, NULL, NULL);
    pthread_mutex_unlock(&f->mu);
    CHECK(rc == 0 && r.result == PS_XFER_RESULT_OK);
}

/* ---- spawned agents ------------------------------------------------------------------ */

typedef struct proc {
    pid_t pid;
    char out[400], errf[400];
} proc;

static bool file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f) return false;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static size_t file_count(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f), c = 0;
    fclose(f);
    buf[n] = '\0';
    for (const char *p = buf; (p = strstr(p, needle)); p++)
        c++;
    return c;
}

/* `preshift agent --server off --transfer-listen URL` plus `extra` (NULL-ended). */
static bool spawn_agent(proc *p, const char *tag, const char *url, const char *const *extra)
{
    static const char bin[] = PRESHIFT_BINARY_DIR "/server/preshift";
    if (access(bin, X_OK) != 0) {
        CHECKF(0, "%s is not there: build the preshift target", bin);
        return false;
    }
    const char *argv[32] = {bin, "agent", "--server", "off", "--transfer-listen", url};
    int n = 6;
    for (int i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    snprintf(p->out, sizeof p->out, "%s/%s.out", tmpdir, tag);
    snprintf(p->errf, sizeof p->errf, "%s/%s.err", tmpdir, tag);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, p->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, p->errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = posix_spawn(&p->pid, bin, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        CHECKF(0, "posix_spawn %s: %s", bin, strerror(rc));
        return false;
    }
    for (int i = 0; i < 1000; i++) {
        if (file_has(p->errf, "transfers on")) return true;
        int st;
        if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
            CHECKF(0, "agent %s exited at start: %s", tag, p->errf);
            p->pid = 0;
            return false;
        }
        sleep_s(0.01);
    }
    CHECKF(0, "agent %s did not start", tag);
    return false;
}

/* SIGTERM; its exit status (-1 if it did not exit cleanly). */
static int stop_agent(proc *p)
{
    if (p->pid <= 0) return -1;
    kill(p->pid, SIGTERM);
    int st = 0;
    waitpid(p->pid, &st, 0);
    p->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- helpers --------------------------------------------------------------------------- */

static ps_transfer_spec spec(int64_t id, const char *src, const char *src_url, const char *dst,
                             const char *dst_url)
{
    ps_transfer_spec s = {.id = id, .state_bytes = 1 << 20, .expected_seconds = 0};
    snprintf(s.workload, sizeof s.workload, "w%lld", (long long)id);
    snprintf(s.source, sizeof s.source, "%s", src);
    snprintf(s.destination, sizeof s.destination, "%s", dst);
    snprintf(s.source_agent, sizeof s.source_agent, "%s", src_url ? src_url : "");
    snprintf(s.destination_agent, sizeof s.destination_agent, "%s", dst_url);
    return s;
}

static ps_transfers *start(double timeout, double retry, size_t max_limit)
{
    ps_transfers_config c = ps_transfers_default_config();
    c.timeout = timeout;
    c.retry = retry;
    c.max_limit = max_limit;
    ps_transfers *t = ps_transfers_start(&c, err, sizeof err);
    CHECKF(t != NULL, "%s", err);
    if (!t) exit(1);
    return t;
}

/* The next finished transfer within max_s seconds. */
static bool next_done(ps_transfers *t, ps_transfer_done *d, double max_s)
{
    double end = now_s() + max_s;
    while (now_s() < end)
        if (ps_transfers_poll(t, d, 1, 100) == 1) return true;
    return false;
}

static void expect_done(ps_transfers *t, int64_t id, ps_transfer_end end, ps_transfer_why why,
                        const char *reason_part, double max_s, int line)
{
    ps_transfer_done d;
    if (!next_done(t, &d, max_s)) {
        fprintf(stderr, "line %d: transfer %lld did not finish within %g s\n", line, (long long)id,
                max_s);
        test_failures++;
        return;
    }
    if (d.id != id || d.end != end || d.why != why ||
        (reason_part && !strstr(d.reason, reason_part))) {
        fprintf(stderr,
                "line %d: transfer %lld ended %s (%s): '%s'; expected %lld %s (%s) with '%s'\n",
                line, (long long)d.id, ps_transfer_end_name(d.end), ps_transfer_why_name(d.why),
                d.reason, (long long)id, ps_transfer_end_name(end), ps_transfer_why_name(why),
                reason_part ? reason_part : "");
        test_failures++;
    } else {
        printf("  transfer %lld: %s (%s) after %.2f s%s%s\n", (long long)d.id,
               ps_transfer_end_name(d.end), ps_transfer_why_name(d.why), d.seconds,
               d.reason[0] ? ": " : "", d.reason);
    }
}
#define EXPECT_DONE(t, id, end, why, reason, max_s)                                                \
    expect_done(t, id, PS_TRANSFER_##end, PS_TRANSFER_##why, reason, max_s, __LINE__)

/* ---- tests ----------------------------------------------------------------------------- */

static void test_commit_and_refusal(void)
{
    printf("commit, refusal, another destination\n");
    fake *dst = fake_start("dst", NULL, 0, NULL, NULL),
         *src = fake_start("src", "p1", 0, NULL, NULL);
    ps_transfers *t = start(5, 0.2, 16);
    ps_transfer_spec s = spec(1, "p1", src->url, "p2", dst->url);
    CHECKF(ps_transfers_submit(t, &s, err, sizeof err) == 0, "%s", err);
    CHECK(ps_transfers_in_flight(t) == 1);
    EXPECT_DONE(t, 1, COMMITTED, OK, NULL, 10);
    CHECK(ps_transfers_in_flight(t) == 0);
    CHECK(fake_state(dst, "p2", 1) == PS_XFER_STATE_COMMITTED);
    CHECK(fake_state(src, "p1", 1) == PS_XFER_STATE_COMMITTED);
    pthread_mutex_lock(&dst->mu);
    const ps_xfer_record *r = ps_xfer_agent_find(dst->table, "p2", 1);
    CHECK(r && r->role == PS_XFER_ROLE_DESTINATION && !strcmp(r->workload, "w1") &&
          !strcmp(r->peer, "p1") && r->state_bytes == 1 << 20);
    pthread_mutex_unlock(&dst->mu);

    /* A destination that refuses every transfer: rolled back, the source never asked. */
    char url[300];
    snprintf(url, sizeof url, "ipc://%s/refuser", tmpdir);
    proc p;
    static const char *const refuse[] = {"--any-processor", "--refuse-transfers", NULL};
    if (spawn_agent(&p, "refuser", url, refuse)) {
        s = spec(2, "p1", src->url, "p3", url);
        CHECKF(ps_transfers_submit(t, &s, err, sizeof err) == 0, "%s", err);
        EXPECT_DONE(t, 2, ROLLED_BACK, REFUSED, "p3 takes no transfers", 10);
        CHECK(fake_state(src, "p1", 2) == PS_XFER_STATE_NONE);
        /* ... so the manager picks another destination (a new transfer). */
        s = spec(3, "p1", src->url, "p2", dst->url);
        CHECKF(ps_transfers_submit(t, &s, err, sizeof err) == 0, "%s", err);
        EXPECT_DONE(t, 3, COMMITTED, OK, NULL, 10);
        CHECK(stop_agent(&p) == 0);
        CHECK(file_has(p.out, "transfer 2 prepare  p3 destination of w2 (peer p1): refused"));
        CHECK(file_has(p.errf, "1 refused"));
    }
    ps_transfers_stop(t);
    fake_stop(dst);
    fake_stop(src);
}

static void test_timeouts(void)
{
    printf("agents that never answer, or are not there\n");
    fake *silent = fake_start("silent", NULL, 0, NULL, NULL),
         *src = fake_start("src2", NULL, 0, NULL, NULL);
    fake_set(silent, true, 0, false);
    ps_transfers *t = start(0.5, 0.1, 16);
    double t0 = now_s();
    ps_transfer_spec s = spec(10, "p1", src->url, "p2", silent->url);
    CHECKF(ps_transfers_submit(t, &s, err, sizeof err) == 0, "%s", err);
    char nowhere[300];
    snprintf(nowhere, sizeof nowhere, "ipc://%s/nobody", tmpdir);
    s = spec(11, "p1", src->url, "p3", nowhere);
    CHECKF(ps_transfers_submit(t, &s, err, sizeof err) == 0, "%s", err);
    ps_transfer_done d[2];
    size_t n = 0;
    while (n < 2 && now_s() - t0 < 10)
        n += ps_transfers_poll(t, d + n, 2 - n, 200);
    CHECKF(n == 2, "%zu ended", n);
    for (size_t i = 0; i < n; i++) {
        CHECKF(d[i].end == PS_TRANSFER_ROLLED_BACK && d[i].why == PS_TRANSFER_TIMEOUT &&
                   strstr(d[i].reason, "no answer to prepare") &&
                   strstr(d[i].reason, "did not confirm the rollback"),
               "%lld: %s", (long long)d[i].id, d[i].reason);
        /* one timeout for the prepare, one for the rollback */
        CHECKF(d[i].seconds >= 0.9 && d[i].seconds < 3, "%g s", d[i].seconds);
    }
    CHECK(fake_received(silent) >= 2); /* the prepare, resent, and the rollback */
    CHECK(fake_state(src, "p1", 10) == PS_XFER_STATE_NONE);
    CHECK(ps_transfers_in_flight(t) == 0);
    ps_transfers_stop(t);
    fake_stop(silent);
    fake_stop(src);
}

static void test_dead_source(void)
{
    printf("dead source\n");
    fake *dst = fake_start("dst3", NULL, 0, NULL, NULL);
    ps_transfers *t = start(5, 0.2, 16);
    ps_transfer_spec s = spec(20, "p1", NULL, "p2", dst->url);
    CHECKF(ps_transfers_submit(t, &s, err, sizeof err) == 0, "%s", err);
    EXPECT_DONE(t, 20, COMMITTED, OK, NULL, 10);
    CHECK(fake_state(dst, "p2", 20) == PS_XFER_STATE_COMMITTED);
    CHECK(fake_state(dst, "p1", 20) == PS_XFER_STATE_NONE);
    ps_xfer_agent_stats st = fake_stats(dst);
    CHECK(st.received[PS_XFER_OP_PREPARE] == 1 && st.received[PS_XFER_OP_COMMIT] == 1 &&
          st.received[PS_XFER_OP_ROLLBACK] == 0);
    ps_transfers_stop(t);
    fake_stop(dst);
}

static void test_limits(void)
{
    printf("EEXISTS, EBUSY, set_limit, bad specs\n");
    fake *dst = fake_start("slow", NULL, 0.6, NULL, NULL),
         *src = fake_start("src4", NULL, 0, NULL, NULL);
    ps_transfers *t = start(5, 0.2, 4);
    CHECK(ps_transfers_limit(t) == 4);
    ps_transfers_set_limit(t, 2);
    CHECK(ps_transfers_limit(t) == 2);
    ps_transfer_spec a = spec(30, "p1", src->url, "p2", dst->url);
    ps_transfer_spec b = spec(31, "p1", src->url, "p2", dst->url);
    ps_transfer_spec c = spec(32, "p1", src->url, "p2", dst->url);
    CHECKF(ps_transfers_submit(t, &a, err, sizeof err) == 0, "%s", err);
    CHECK(ps_transfers_submit(t, &a, err, sizeof err) == PS_TRANSFER_EEXISTS &&
          strstr(err, "30 is in flight"));
    CHECK(ps_transfers_recover(t, &a, err, sizeof err) == PS_TRANSFER_EEXISTS);
    CHECKF(ps_transfers_submit(t, &b, err, sizeof err) == 0, "%s", err);
    CHECK(ps_transfers_submit(t, &c, err, sizeof err) == PS_TRANSFER_EBUSY &&
          strstr(err, "limit is 2"));
    CHECK(ps_transfers_recover(t, &c, err, sizeof err) == PS_TRANSFER_EBUSY);
    CHECK(ps_transfers_in_flight(t) == 2);
    /* Lowering the limit cancels nothing; it is clamped to 1 .. max_limit. */
    ps_transfers_set_limit(t, 0);
    CHECK(ps_transfers_limit(t) == 1);
    ps_transfers_set_limit(t, 1000);
    CHECK(ps_transfers_limit(t) == 4);
    ps_transfers_set_limit(t, 1);
    CHECK(ps_transfers_in_flight(t) == 2);
    ps_transfer_done d;
    CHECK(ps_transfers_poll(t, &d, 1, 0) == 0); /* still copying */
    for (int i = 0; i < 2; i++) {
        CHECK(next_done(t, &d, 10) && d.end == PS_TRANSFER_COMMITTED && d.seconds >= 0.5);
        CHECK(d.id == 30 || d.id == 31);
    }
    CHECKF(ps_transfers_submit(t, &c, err, sizeof err) == 0, "%s", err);
    CHECK(ps_transfers_submit(t, &a, err, sizeof err) == PS_TRANSFER_EBUSY);
    EXPECT_DONE(t, 32, COMMITTED, OK, NULL, 10);
    /* The same id again after it ended: allowed, and answered from the agents' records. */
    CHECKF(ps_transfers_submit(t, &a, err, sizeof err) == 0, "%s", err);
    EXPECT_DONE(t, 30, COMMITTED, OK, "had committed it already", 10);

    /* Bad specs. */
    ps_transfer_spec s = spec(40, "p1", src->url, "p2", dst->url);
    s.id = 0;
    CHECK(ps_transfers_submit(t, &s, err, sizeof err) == PS_EINVAL && strstr(err, "id"));
    s = spec(40, "p1", src->url, "p1", dst->url);
    CHECK(ps_transfers_submit(t, &s, err, sizeof err) == PS_EINVAL && strstr(err, "both p1"));
    s = spec(40, "p1", src->url, "p2", "udp://x:1");
    CHECK(ps_transfers_submit(t, &s, err, sizeof err) == PS_EINVAL && strstr(err, "udp://"));
    s = spec(40, "p1", src->url, "p2", "");
    CHECK(ps_transfers_submit(t, &s, err, sizeof err) == PS_EINVAL && strstr(err, "empty"));
    s = spec(40, "p1", "tcp://", "p2", dst->url);
    CHECK(ps_transfers_submit(t, &s, err, sizeof err) == PS_EINVAL);
    s = spec(40, "p1", src->url, "p2", dst->url);
    s.state_bytes = NAN;
    CHECK(ps_transfers_submit(t, &s, err, sizeof err) == PS_EINVAL && strstr(err, "state_bytes"));
    s = spec(40, "p1", src->url, "p2", dst->url);
    s.expected_seconds = -1;
    CHECK(ps_transfers_submit(t, &s, err, sizeof err) == PS_EINVAL);
    s = spec(40, "p 1", src->url, "p2", dst->url);
    CHECK(ps_transfers_submit(t, &s, err, sizeof err) == PS_EINVAL && strstr(err, "source"));
    s = spec(40, "p1", src->url, "p2", dst->url);
    memset(s.workload, 'x', sizeof s.workload);
    CHECK(ps_transfers_submit(t, &s, err, sizeof err) == PS_EINVAL && strstr(err, "workload"));
    CHECK(ps_transfers_submit(t, NULL, err, sizeof err) == PS_EINVAL);
    CHECK(ps_transfers_in_flight(t) == 0);
    ps_transfers_stop(t);

    /* Bad configurations. */
    ps_transfers_config cfg = ps_transfers_default_config();
    CHECK(cfg.timeout == 30 && cfg.retry == 1 && cfg.max_limit == 16 && !cfg.tls_ca);
    cfg.timeout = 0;
    CHECK(ps_transfers_start(&cfg, err, sizeof err) == NULL && strstr(err, "timeout"));
    cfg = ps_transfers_default_config();
    cfg.retry = NAN;
    CHECK(ps_transfers_start(&cfg, err, sizeof err) == NULL && strstr(err, "retry"));
    cfg = ps_transfers_default_config();
    cfg.max_limit = 0;
    CHECK(ps_transfers_start(&cfg, err, sizeof err) == NULL && strstr(err, "max_limit"));
    cfg = ps_transfers_default_config();
    cfg.tls_ca = "/nonexistent/ca.pem";
    CHECK(ps_transfers_start(&cfg, err, sizeof err) == NULL && strstr(err, "CA"));
    cfg = ps_transfers_default_config();
    cfg.tls_cert = "/nonexistent/cert.pem";
    CHECK(ps_transfers_start(&cfg, err, sizeof err) == NULL && strstr(err, "both"));
    cfg.tls_key = "/nonexistent/key.pem";
    CHECK(ps_transfers_start(&cfg, err, sizeof err) == NULL && strstr(err, "/nonexistent"));
    fake_stop(dst);
    fake_stop(src);
}

static void test_recover(void)
{
    printf("recover\n");
    fake *dst = fake_start("dst5", NULL, 0, NULL, NULL),
         *src = fake_start("src5", NULL, 0, NULL, NULL);
    /* 50: the destination committed, the source only prepared (a manager died
     * between the two commits). 51: both only prepared. 52: nothing anywhere. */
    fake_apply(dst, PS_XFER_OP_PREPARE, 50, "p2", PS_XFER_ROLE_DESTINATION, "p1");
    fake_apply(dst, PS_XFER_OP_COMMIT, 50, "p2", 0, NULL);
    fake_apply(src, PS_XFER_OP_PREPARE, 50, "p1", PS_XFER_ROLE_SOURCE, "p2");
    fake_apply(dst, PS_XFER_OP_PREPARE, 51, "p2", PS_XFER_ROLE_DESTINATION, "p1");
    fake_apply(src, PS_XFER_OP_PREPARE, 51, "p1", PS_XFER_ROLE_SOURCE, "p2");
    ps_transfers *t = start(5, 0.2, 16);
    ps_transfer_spec s = spec(50, "p1", src->url, "p2", dst->url);
    CHECKF(ps_transfers_recover(t, &s, err, sizeof err) == 0, "%s", err);
    EXPECT_DONE(t, 50, COMMITTED, OK, "had committed", 10);
    CHECK(fake_state(src, "p1", 50) == PS_XFER_STATE_COMMITTED);
    s = spec(51, "p1", src->url, "p2", dst->url);
    CHECKF(ps_transfers_recover(t, &s, err, sizeof err) == 0, "%s", err);
    EXPECT_DONE(t, 51, ROLLED_BACK, OK, "had not committed (state prepared)", 10);
    CHECK(fake_state(dst, "p2", 51) == PS_XFER_STATE_ROLLED_BACK);
    CHECK(fake_state(src, "p1", 51) == PS_XFER_STATE_ROLLED_BACK);
    s = spec(52, "p1", src->url, "p2", dst->url);
    CHECKF(ps_transfers_recover(t, &s, err, sizeof err) == 0, "%s", err);
    EXPECT_DONE(t, 52, ROLLED_BACK, OK, "state none", 10);
    /* Never prepared, now rolled back for good: a late prepare cannot revive it. */
    CHECK(fake_state(dst, "p2", 52) == PS_XFER_STATE_ROLLED_BACK);
    ps_transfers_stop(t);
    fake_stop(dst);
    fake_stop(src);
}

/* A journaled `preshift agent` restarted under a restarted manager. */
static void test_recover_restart(void)
{
    printf("recover across restarts of the manager and the agent\n");
    char url[300], journal[300];
    snprintf(url, sizeof url, "ipc://%s/journaled", tmpdir);
    snprintf(journal, sizeof journal, "%s/journal", tmpdir);
    proc p;
    const char *const slow[] = {
        "--any-processor", "--transfer-journal", journal, "--transfer-delay", "1.5", NULL};
    if (!spawn_agent(&p, "journaled", url, slow)) return;
    /* One agent process for both processors. 60 commits; 61 is abandoned by
     * its manager while the destination is still "copying". */
    ps_transfers *t = start(5, 0.1, 16);
    ps_transfer_spec s60 = spec(60, "p1", url, "p2", url), s61 = spec(61, "p1", url, "p3", url);
    CHECKF(ps_transfers_submit(t, &s60, err, sizeof err) == 0, "%s", err);
    EXPECT_DONE(t, 60, COMMITTED, OK, NULL, 10);
    CHECKF(ps_transfers_submit(t, &s61, err, sizeof err) == 0, "%s", err);
    sleep_s(0.5);
    ps_transfers_stop(t);
    CHECK(stop_agent(&p) == 0);
    /* Resends during the copies applied each prepare and commit once. */
    CHECK(file_count(journal, "prepared\t60\tp2\t") == 1 &&
          file_count(journal, "committed\t60\tp2\t") == 1);
    CHECK(file_count(journal, "prepared\t60\tp1\t") == 1 &&
          file_count(journal, "committed\t60\tp1\t") == 1);
    CHECK(file_count(journal, "prepared\t61\tp3\t") == 1 && file_count(journal, "\t61\t") == 1);
    CHECKF(file_has(p.errf, "repeat(s)") && !file_has(p.errf, " 0 repeat(s)"), "%s", p.errf);

    const char *const plain[] = {"--any-processor", "--transfer-journal", journal, NULL};
    if (!spawn_agent(&p, "journaled2", url, plain)) return;
    t = start(5, 0.1, 16);
    CHECKF(ps_transfers_recover(t, &s60, err, sizeof err) == 0, "%s", err);
    EXPECT_DONE(t, 60, COMMITTED, OK, NULL, 10);
    CHECKF(ps_transfers_recover(t, &s61, err, sizeof err) == 0, "%s", err);
    EXPECT_DONE(t, 61, ROLLED_BACK, OK, "had not committed (state prepared)", 10);
    ps_transfers_stop(t);
    CHECK(stop_agent(&p) == 0);
    CHECK(file_count(journal, "rolled_back\t61\tp3\t") == 1);
    CHECK(file_count(journal, "\t60\t") == 4); /* nothing new for 60 */
    CHECK(file_has(p.out, "transfer 61 rollback p3 destination of w61 (peer p1): prepared -> "
                          "rolled_back"));
}

static void test_resends(void)
{
    printf("resends apply once\n");
    fake *dst = fake_start("dst6", NULL, 0.5, NULL, NULL),
         *src = fake_start("src6", NULL, 0, NULL, NULL);
    ps_transfers *t = start(5, 0.05, 16);
    ps_transfer_spec s = spec(70, "p1", src->url, "p2", dst->url);
    s.expected_seconds = 0.5;
    CHECKF(ps_transfers_submit(t, &s, err, sizeof err) == 0, "%s", err);
    EXPECT_DONE(t, 70, COMMITTED, OK, NULL, 10);
    ps_xfer_agent_stats st = fake_stats(dst);
    CHECKF(st.received[PS_XFER_OP_PREPARE] >= 3, "%llu prepares received",
           (unsigned long long)st.received[PS_XFER_OP_PREPARE]);
    CHECK(st.applied[PS_XFER_OP_PREPARE] == 1 && st.applied[PS_XFER_OP_COMMIT] == 1);
    CHECK(st.repeats >= 2);
    ps_transfers_stop(t);
    fake_stop(dst);
    fake_stop(src);
}

static void test_lost_replies(void)
{
    printf("lost replies: commit, commit and rollback, release; error replies\n");
    fake *dst = fake_start("dst7", NULL, 0, NULL, NULL),
         *src = fake_start("src7", NULL, 0, NULL, NULL);
    ps_transfers *t = start(0.5, 0.1, 16);

    /* The destination commits but its replies are lost: the rollback finds it committed. */
    fake_set(dst, false, PS_XFER_OP_COMMIT, true);
    ps_transfer_spec s = spec(80, "p1", src->url, "p2", dst->url);
    CHECKF(ps_transfers_submit(t, &s, err, sizeof err) == 0, "%s", err);
    EXPECT_DONE(t, 80, COMMITTED, OK, "had committed: transfer completed", 10);
    CHECK(fake_state(src, "p1", 80) == PS_XFER_STATE_COMMITTED);

    /* ... and its rollback replies too: unknown outcome, the source stays prepared. */
    fake_set(dst, false, PS_XFER_OP_ROLLBACK, true);
    s = spec(81, "p1", src->url, "p2", dst->url);
    CHECKF(ps_transfers_submit(t, &s, err, sizeof err) == 0, "%s", err);
    EXPECT_DONE(t, 81, ROLLED_BACK, TIMEOUT, "left prepared", 10);
    CHECK(fake_state(dst, "p2", 81) == PS_XFER_STATE_COMMITTED);
    CHECK(fake_state(src, "p1", 81) == PS_XFER_STATE_PREPARED);
    fake_set(dst, false, PS_XFER_OP_COMMIT, false);
    fake_set(dst, false, PS_XFER_OP_ROLLBACK, false);
    CHECKF(ps_transfers_recover(t, &s, err, sizeof err) == 0, "%s", err);
    EXPECT_DONE(t, 81, COMMITTED, OK, "recovered", 10);
    CHECK(fake_state(src, "p1", 81) == PS_XFER_STATE_COMMITTED);

    /* A source slow to release: COMMITTED reported, the release finishes later. */
    fake_set(src, false, PS_XFER_OP_COMMIT, true);
    s = spec(82, "p1", src->url, "p2", dst->url);
    CHECKF(ps_transfers_submit(t, &s, err, sizeof err) == 0, "%s", err);
    EXPECT_DONE(t, 82, COMMITTED, OK, "still retrying", 10);
    CHECK(ps_transfers_in_flight(t) == 0);
    fake_set(src, false, PS_XFER_OP_COMMIT, false);
    ps_transfer_done d;
    CHECK(ps_transfers_poll(t, &d, 1, 1500) == 0); /* reported once only */
    CHECK(fake_state(src, "p1", 82) == PS_XFER_STATE_COMMITTED);
    unsigned long before = fake_received(src);
    sleep_s(0.3);
    CHECK(fake_received(src) == before); /* the release stopped once acknowledged */

    /* An agent that does not serve the processor answers an error. */
    fake *only = fake_start("only", "p5", 0, NULL, NULL);
    s = spec(83, "p1", src->url, "p9", only->url);
    CHECKF(ps_transfers_submit(t, &s, err, sizeof err) == 0, "%s", err);
    EXPECT_DONE(t, 83, ROLLED_BACK, ERROR, "wrong_processor", 10);
    /* Stopping with transfers in flight abandons them. */
    fake_set(dst, true, 0, false);
    s = spec(84, "p1", src->url, "p2", dst->url);
    CHECKF(ps_transfers_submit(t, &s, err, sizeof err) == 0, "%s", err);
    ps_transfers_stop(t);
    fake_stop(only);
    fake_stop(dst);
    fake_stop(src);
}

static void test_tls(void)
{
    char cmd[1024], cert[300], key[300];
    snprintf(cert, sizeof cert, "%s/cert.pem", tmpdir);
    snprintf(key, sizeof key, "%s/key.pem", tmpdir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s -out %s -days 2 -subj /CN=127.0.0.1 >/dev/null 2>&1",
             key, cert);
    if (system(cmd) != 0) {
        printf("no openssl to make a certificate: TLS not tested\n");
        return;
    }
    printf("mutual TLS\n");
    fake *dst = fake_start("tls", NULL, 0, cert, key);
    ps_transfers_config c = ps_transfers_default_config();
    c.timeout = 5;
    c.retry = 0.2;
    c.tls_ca = cert;
    c.tls_cert = cert;
    c.tls_key = key;
    ps_transfers *t = ps_transfers_start(&c, err, sizeof err);
    CHECKF(t != NULL, "%s", err);
    if (t) {
        ps_transfer_spec s = spec(90, "p1", NULL, "p2", dst->url);
        CHECKF(ps_transfers_submit(t, &s, err, sizeof err) == 0, "%s", err);
        EXPECT_DONE(t, 90, COMMITTED, OK, NULL, 10);
        ps_transfers_stop(t);
    }
    /* Without a client certificate the agent refuses the handshake: a timeout. */
    c.tls_cert = c.tls_key = NULL;
    c.timeout = 0.5;
    t = ps_transfers_start(&c, err, sizeof err);
    CHECKF(t != NULL, "%s", err);
    if (t) {
        ps_transfer_spec s = spec(91, "p1", NULL, "p2", dst->url);
        CHECKF(ps_transfers_submit(t, &s, err, sizeof err) == 0, "%s", err);
        EXPECT_DONE(t, 91, ROLLED_BACK, TIMEOUT, NULL, 10);
        ps_transfers_stop(t);
    }
    CHECK(fake_state(dst, "p2", 91) == PS_XFER_STATE_NONE);
    fake_stop(dst);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ps_xfer_XXXXXX");
    if (!mkdtemp(tmpdir)) TEST_SKIP("cannot make a temporary directory");
    signal(SIGPIPE, SIG_IGN);
    double t0 = now_s();
    test_commit_and_refusal();
    test_timeouts();
    test_dead_source();
    test_limits();
    test_recover();
    test_recover_restart();
    test_resends();
    test_lost_replies();
    test_tls();
    printf("%.1f s\n", now_s() - t0);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    nng_fini();
    return test_finish("test_transfer");
}
