/*
 * test_serve_state.c - the scoring server's durable state and eviction:
 *
 *   - a server stopped and restarted from its snapshot goes on scoring
 *     bit for bit as a server that never stopped, and still knows the
 *     processors' last seqs (a resent request is a duplicate);
 *   - a torn, corrupted or foreign state file, or one that cannot be
 *     written, stops the start with a message that says so;
 *   - a `preshift serve` killed with SIGKILL restarts from its last
 *     periodic snapshot;
 *   - processors silent past --evict-after give their slots back.
 */
#include "serve_fixture.h"
#include "server/serve.h"
#include "testutil.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define K 3
#define WARMUP 24
#define NPROC 4

static char tmpdir[256];
static const uint64_t ids[NPROC] = {11, 22, 33, 44};

static ps_serve_config config(const char *name, const char *state)
{
    ps_serve_config c;
    ps_serve_config_default(&c);
    snprintf(c.listen, sizeof c.listen, "ipc://%s/%s.rep", tmpdir, name);
    snprintf(c.publish, sizeof c.publish, "off");
    snprintf(c.http, sizeof c.http, "http://127.0.0.1:0");
    snprintf(c.model, sizeof c.model, "%s/models/default.psm", PRESHIFT_SOURCE_DIR);
    if (state) snprintf(c.state, sizeof c.state, "%s/%s", tmpdir, state);
    c.metrics = K;
    c.max_processors = 16;
    c.warmup = WARMUP;
    c.backend = PS_BACKEND_CPU;
    c.threads = 1;
    c.batch_delay = 0.002;
    c.snapshot_every = 3600; /* only the snapshots at start and at stop */
    c.quiet = 1;
    return c;
}

static ps_serve *start(const ps_serve_config *c)
{
    char err[1024];
    ps_serve *s = ps_serve_start(c, err, sizeof err);
    CHECKF(s != NULL, "start: %s", err);
    return s;
}

static int same_result(const ps_proto_result *a, const ps_proto_result *b)
{
    return a->id == b->id && a->state == b->state && a->top == b->top &&
           memcmp(&a->score, &b->score, sizeof a->score) == 0 &&
           memcmp(&a->pfp, &b->pfp, sizeof a->pfp) == 0;
}

/* Score tick t on both servers; 1 when every result is the same. */
static int score_both(nng_socket a, nng_socket b, int t, uint8_t want)
{
    ps_proto_reply ra = {0}, rb = {0};
    int ok = score(a, ids, NPROC, t, K, &ra) == 0 && score(b, ids, NPROC, t, K, &rb) == 0 &&
             ra.op == PS_PROTO_OP_SCORE && rb.op == PS_PROTO_OP_SCORE && ra.score.n == NPROC &&
             rb.score.n == NPROC;
    for (size_t i = 0; ok && i < NPROC; i++)
        ok = ra.score.results[i].state == want &&
             same_result(&ra.score.results[i], &rb.score.results[i]);
    ps_proto_reply_free(&ra);
    ps_proto_reply_free(&rb);
    return ok;
}

static void test_restart_continues(void)
{
    ps_serve_config ca = config("a", NULL), cb = config("b", "b.state");
    ps_serve *a = start(&ca), *b = start(&cb);
    if (!a || !b) {
        ps_serve_stop(a);
        ps_serve_stop(b);
        return;
    }
    char note[2048];
    ps_serve_state_note(b, note, sizeof note);
    CHECKF(strstr(note, "no snapshot") != NULL, "%s", note);
    nng_socket sa = client(ca.listen), sb = client(cb.listen);
    const int before = WARMUP + 6, after = 8;
    for (int t = 0; t < before; t++)
        CHECKF(
            score_both(sa, sb, t, t < WARMUP ? PS_PROTO_STATE_WARMING_UP : PS_PROTO_STATE_SCORED),
            "tick %d before the restart", t);
    nng_close(sb);
    ps_serve_stop(b); /* writes the last snapshot */
    struct stat st;
    CHECK(stat(cb.state, &st) == 0 && st.st_size > 0);

    b = start(&cb);
    if (!b) {
        nng_close(sa);
        ps_serve_stop(a);
        return;
    }
    ps_serve_state_note(b, note, sizeof note);
    CHECKF(strstr(note, "restored 4 processors (4 scored, 0 warming up)") != NULL, "%s", note);
    char body[65536];
    CHECK(http_get(ps_serve_port(b, PS_SERVE_HTTP), "/metrics", body, sizeof body) == 200);
    CHECK(metric_value(body, "preshift_restored_processors") == NPROC);
    CHECK(metric_value(body, "preshift_snapshots_total") == 1); /* the one at start */
    CHECK(http_get(ps_serve_port(b, PS_SERVE_HTTP), "/readyz", body, sizeof body) == 200);

    /* The last tick again: its seqs are known, the latest results repeated. */
    sb = client(cb.listen);
    ps_proto_reply r = {0};
    CHECK(score(sb, ids, NPROC, before - 1, K, &r) == 0 && r.op == PS_PROTO_OP_SCORE);
    for (size_t i = 0; i < r.score.n; i++)
        CHECK(r.score.results[i].state == PS_PROTO_STATE_DUPLICATE && r.score.results[i].pfp >= 0 &&
              r.score.results[i].top >= 0);
    ps_proto_reply_free(&r);
    /* And on, as if it had never stopped. */
    for (int t = before; t < before + after; t++)
        CHECKF(score_both(sa, sb, t, PS_PROTO_STATE_SCORED), "tick %d after the restart", t);
    /* A processor it never saw starts its warm-up. */
    uint64_t fresh = 99;
    CHECK(score(sb, &fresh, 1, 0, K, &r) == 0 && r.op == PS_PROTO_OP_SCORE && r.score.n == 1 &&
          r.score.results[0].state == PS_PROTO_STATE_WARMING_UP);
    ps_proto_reply_free(&r);
    nng_close(sa);
    nng_close(sb);
    ps_serve_stop(a);
    ps_serve_stop(b);
}

static int copy_file(const char *from, const char *to, long keep, long flip)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    int ok = in && out;
    long at = 0;
    for (int ch; ok && (ch = fgetc(in)) != EOF && (keep < 0 || at < keep); at++)
        fputc(at == flip ? ch ^ 0x40 : ch, out);
    if (in) fclose(in);
    if (out) fclose(out);
    return ok;
}

/* Starting from path fails, with every one of the words in the message. */
static void refused(ps_serve_config c, const char *state, const char *w1, const char *w2)
{
    snprintf(c.state, sizeof c.state, "%s", state);
    char err[2048] = "";
    ps_serve *s = ps_serve_start(&c, err, sizeof err);
    CHECKF(s == NULL, "%s was accepted", state);
    ps_serve_stop(s);
    CHECKF(strstr(err, w1) && strstr(err, w2), "message for %s: %s", state, err);
}

static void test_refusals(void)
{
    /* A good snapshot with processors in it (written at the stop). */
    ps_serve_config c = config("r", "good.state");
    ps_serve *s = start(&c);
    if (!s) return;
    nng_socket sock = client(c.listen);
    ps_proto_reply r = {0};
    for (int t = 0; t < WARMUP + 2; t++)
        CHECK(score(sock, ids, NPROC, t, K, &r) == 0);
    ps_proto_reply_free(&r);
    nng_close(sock);
    ps_serve_stop(s);
    struct stat st;
    CHECK(stat(c.state, &st) == 0);

    char torn[512], flipped[512], missing[512];
    snprintf(torn, sizeof torn, "%s/torn.state", tmpdir);
    snprintf(flipped, sizeof flipped, "%s/flipped.state", tmpdir);
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.state", tmpdir);
    CHECK(copy_file(c.state, torn, (long)st.st_size / 2, -1));
    CHECK(copy_file(c.state, flipped, -1, (long)st.st_size / 3));
    refused(config("r", NULL), torn, torn, "move it away");
    refused(config("r", NULL), flipped, flipped, "move it away");
    refused(config("r", NULL), missing, "cannot write the state file", missing);
    /* Another scoring configuration: its states do not fit. */
    ps_serve_config other = config("r", NULL);
    other.scorer.smoothing = 0.25f;
    refused(other, c.state, "another configuration", "model and options that wrote it");
    /* The refusals left the good file as it was: it still restores. */
    s = start(&c);
    char note[2048] = "";
    if (s) ps_serve_state_note(s, note, sizeof note);
    CHECKF(strstr(note, "restored 4 processors") != NULL, "%s", note);
    ps_serve_stop(s);
}

static void test_eviction(void)
{
    ps_serve_config c = config("e", NULL);
    c.max_processors = 2;
    c.stale_after = 0.1;
    c.evict_after = 0.2;
    ps_serve *s = start(&c);
    if (!s) return;
    nng_socket sock = client(c.listen);
    ps_proto_reply r = {0};
    uint64_t two[2] = {1, 2}, third = 3;
    CHECK(score(sock, two, 2, 0, K, &r) == 0 && r.score.n == 2 &&
          r.score.results[0].state == PS_PROTO_STATE_WARMING_UP);
    CHECK(score(sock, &third, 1, 0, K, &r) == 0 && r.score.n == 1 &&
          r.score.results[0].state == PS_PROTO_STATE_REJECTED);
    /* Eviction runs with the once-a-second refresh. */
    sleep_ms(1500);
    CHECK(score(sock, &third, 1, 0, K, &r) == 0 && r.score.n == 1 &&
          r.score.results[0].state == PS_PROTO_STATE_WARMING_UP);
    /* An evicted processor that comes back is new: its old seq is forgotten. */
    CHECK(score(sock, two, 1, 0, K, &r) == 0 && r.score.n == 1 &&
          r.score.results[0].state == PS_PROTO_STATE_WARMING_UP);
    ps_proto_reply_free(&r);
    char body[65536];
    CHECK(http_get(ps_serve_port(s, PS_SERVE_HTTP), "/metrics", body, sizeof body) == 200);
    CHECKF(metric_value(body, "preshift_evicted_processors_total") == 2, "evicted %g",
           metric_value(body, "preshift_evicted_processors_total"));
    nng_close(sock);
    ps_serve_stop(s);
}

/* ---- a real process, killed ------------------------------------------------- */

static pid_t spawn_server(const char *bin, const char *listen, const char *state)
{
    char *argv[] = {(char *)bin,
                    "serve",
                    "--listen",
                    (char *)listen,
                    "--publish",
                    "off",
                    "--http",
                    "off",
                    "--state",
                    (char *)state,
                    "--metrics",
                    "3",
                    "--warmup",
                    "24",
                    "--threads",
                    "1",
                    "--backend",
                    "cpu",
                    "--max-processors",
                    "16",
                    "--snapshot-every",
                    "0.05",
                    "-q",
                    NULL};
    pid_t pid;
    if (posix_spawn(&pid, bin, NULL, NULL, argv, environ)) return -1;
    return pid;
}

/* Wait until the server answers health with status ok; 0 or -1 after 20 s. */
static int wait_ready(const char *addr)
{
    for (int i = 0; i < 400; i++) {
        nng_socket s;
        if (nng_req0_open(&s)) return -1;
        nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 500);
        ps_proto_reply r = {0};
        int ok = nng_dial(s, addr, NULL, 0) == 0 &&
                 simple_request(s, PS_PROTO_OP_HEALTH, 1, &r) == 0 && r.op == PS_PROTO_OP_HEALTH &&
                 r.health.status == PS_PROTO_STATUS_OK;
        ps_proto_reply_free(&r);
        nng_close(s);
        if (ok) return 0;
        sleep_ms(50);
    }
    return -1;
}

static void test_sigkill(void)
{
    char bin[512], listen[512], state[512];
    snprintf(bin, sizeof bin, "%s/server/preshift", PRESHIFT_BINARY_DIR);
    if (access(bin, X_OK)) {
        fprintf(stderr, "SIGKILL test skipped: no %s\n", bin);
        return;
    }
    snprintf(listen, sizeof listen, "ipc://%s/k.rep", tmpdir);
    snprintf(state, sizeof state, "%s/k.state", tmpdir);
    pid_t pid = spawn_server(bin, listen, state);
    CHECK(pid > 0 && wait_ready(listen) == 0);
    nng_socket sock = client(listen);
    ps_proto_reply r = {0};
    const int ticks = WARMUP + 4;
    for (int t = 0; t < ticks; t++)
        CHECK(score(sock, ids, NPROC, t, K, &r) == 0 && r.op == PS_PROTO_OP_SCORE);
    nng_close(sock);
    sleep_ms(400); /* several snapshot periods */
    int status = 0;
    CHECK(kill(pid, SIGKILL) == 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    pid = spawn_server(bin, listen, state);
    CHECK(pid > 0 && wait_ready(listen) == 0);
    sock = client(listen);
    /* Everything up to the kill was snapshotted: the last tick is known ... */
    CHECK(score(sock, ids, NPROC, ticks - 1, K, &r) == 0 && r.op == PS_PROTO_OP_SCORE &&
          r.score.n == NPROC);
    for (size_t i = 0; i < r.score.n; i++)
        CHECKF(r.score.results[i].state == PS_PROTO_STATE_DUPLICATE, "state %u",
               (unsigned)r.score.results[i].state);
    /* ... and the next one is scored, without a new warm-up. */
    CHECK(score(sock, ids, NPROC, ticks, K, &r) == 0 && r.op == PS_PROTO_OP_SCORE &&
          r.score.n == NPROC);
    for (size_t i = 0; i < r.score.n; i++)
        CHECK(r.score.results[i].state == PS_PROTO_STATE_SCORED);
    ps_proto_reply_free(&r);
    nng_close(sock);
    CHECK(kill(pid, SIGTERM) == 0 && waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d", status);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ps_state_XXXXXX");
    if (!mkdtemp(tmpdir)) TEST_SKIP("cannot make a temporary directory");
    test_restart_continues();
    test_refusals();
    test_eviction();
    test_sigkill();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_finish("test_serve_state");
}
