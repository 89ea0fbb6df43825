/*
 * test_transfer_agent.c - the agent's transfer state machine
 * (server/transfer_agent.h): every op in every state with the reply and state
 * docs/transfer.md's table gives, every request repeated answers the same and
 * changes nothing, conflicting prepares, refusals (--refuse-transfers), the
 * delayed acknowledgement, processors served, the table's capacity, the
 * bytes-in/bytes-out handler, and the journal: replay after a restart, a torn
 * last line cut off, a malformed line refused, a long journal compacted.
 */
#include "server/transfer_agent.h"

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];
static char err[1024];

static ps_xfer_request req(ps_xfer_op op, int64_t id, const char *processor)
{
    ps_xfer_request q = {.op = op, .id = id};
    snprintf(q.processor, sizeof q.processor, "%s", processor);
    return q;
}

static ps_xfer_request prep(int64_t id, const char *processor, ps_xfer_role role,
                            const char *workload, const char *peer)
{
    ps_xfer_request q = req(PS_XFER_OP_PREPARE, id, processor);
    q.role = role;
    snprintf(q.workload, sizeof q.workload, "%s", workload);
    snprintf(q.peer, sizeof q.peer, "%s", peer);
    q.state_bytes = 4096;
    q.expected_seconds = 0.25;
    return q;
}

static ps_xfer_agent *open_agent(const ps_xfer_agent_config *c)
{
    ps_xfer_agent *a = ps_xfer_agent_open(c, err, sizeof err);
    CHECKF(a != NULL, "%s", err);
    if (!a) exit(1);
    return a;
}

static uint64_t applied_total(const ps_xfer_agent *a)
{
    ps_xfer_agent_stats s = ps_xfer_agent_get_stats(a);
    uint64_t n = 0;
    for (int i = 0; i < PS_XFER_NOPS; i++)
        n += s.applied[i];
    return n;
}

/*
 * Apply q; check the result and state; then apply it twice more and check
 * the same reply comes back and nothing changes.
 */
static void expect(ps_xfer_agent *a, const ps_xfer_request *q, ps_xfer_result result,
                   ps_xfer_state state, bool changes, const char *reason_part, int line)
{
    ps_xfer_reply r, r2;
    ps_xfer_event ev;
    uint64_t before = applied_total(a);
    int rc = ps_xfer_agent_apply(a, q, 100.0, &r, NULL, &ev);
    if (rc != 0 || r.op != q->op || r.result != result || r.state != state || r.id != q->id ||
        strcmp(r.processor, q->processor) || (reason_part && !strstr(r.reason, reason_part)) ||
        (result == PS_XFER_RESULT_REFUSED && !r.reason[0]) ||
        (applied_total(a) != before + (changes ? 1 : 0)) || ev.changed != changes ||
        ev.after != state) {
        fprintf(stderr,
                "line %d: %s %lld at %s: rc %d, result %s, state %s, reason '%s', changed %d "
                "(expected %s, %s, changes %d)\n",
                line, ps_xfer_op_name(q->op), (long long)q->id, q->processor, rc,
                ps_xfer_result_name(r.result), ps_xfer_state_name(r.state), r.reason,
                (int)ev.changed, ps_xfer_result_name(result), ps_xfer_state_name(state),
                (int)changes);
        test_failures++;
        return;
    }
    for (int k = 0; k < 2; k++) {
        uint64_t n = applied_total(a);
        rc = ps_xfer_agent_apply(a, q, 101.0 + k, &r2, NULL, &ev);
        if (rc != 0 || r2.result != r.result || r2.state != r.state ||
            strcmp(r2.reason, r.reason) || applied_total(a) != n || ev.changed) {
            fprintf(stderr, "line %d: repeating %s %lld changed the answer or the table\n", line,
                    ps_xfer_op_name(q->op), (long long)q->id);
            test_failures++;
        }
    }
}
#define EXPECT(a, q, result, state, changes, reason)                                               \
    do {                                                                                           \
        ps_xfer_request q_ = (q);                                                                  \
        expect(a, &q_, PS_XFER_RESULT_##result, PS_XFER_STATE_##state, changes, reason, __LINE__); \
    } while (0)

/* Bring transfer id at p to a state: none, prepared, committed, rolled_back
 * (from prepared), refused (a refused prepare), tombstone (rolled back unknown). */
enum { S_NONE, S_PREPARED, S_COMMITTED, S_ROLLED_BACK, S_REFUSED, S_TOMBSTONE, S_COUNT };

static void reach(ps_xfer_agent *a, ps_xfer_agent *refuser, int s, int64_t id)
{
    ps_xfer_reply r;
    ps_xfer_request p = prep(id, "p1", PS_XFER_ROLE_DESTINATION, "w", "p0");
    switch (s) {
    case S_PREPARED:
        ps_xfer_agent_apply(a, &p, 0, &r, NULL, NULL);
        break;
    case S_COMMITTED:
        ps_xfer_agent_apply(a, &p, 0, &r, NULL, NULL);
        p = req(PS_XFER_OP_COMMIT, id, "p1");
        ps_xfer_agent_apply(a, &p, 0, &r, NULL, NULL);
        break;
    case S_ROLLED_BACK:
        ps_xfer_agent_apply(a, &p, 0, &r, NULL, NULL);
        p = req(PS_XFER_OP_ROLLBACK, id, "p1");
        ps_xfer_agent_apply(a, &p, 0, &r, NULL, NULL);
        break;
    case S_REFUSED:
        ps_xfer_agent_apply(refuser, &p, 0, &r, NULL, NULL);
        break;
    case S_TOMBSTONE:
        p = req(PS_XFER_OP_ROLLBACK, id, "p1");
        ps_xfer_agent_apply(a, &p, 0, &r, NULL, NULL);
        break;
    default:
        break;
    }
}

/* Every op in every state, as docs/transfer.md's table says. */
static void test_table(void)
{
    ps_xfer_agent_config c = {.name = "p1"};
    ps_xfer_agent *a = open_agent(&c);
    c.refuse_destination = true;
    ps_xfer_agent *ref = open_agent(&c);
    for (int s = 0; s < S_COUNT; s++) {
        for (int op = PS_XFER_OP_PREPARE; op <= PS_XFER_OP_STATUS; op++) {
            int64_t id = 1000 * (s + 1) + op;
            ps_xfer_agent *x = s == S_REFUSED ? ref : a;
            reach(a, ref, s, id);
            ps_xfer_request same = prep(id, "p1", PS_XFER_ROLE_DESTINATION, "w", "p0");
            ps_xfer_request q = op == PS_XFER_OP_PREPARE ? same : req((ps_xfer_op)op, id, "p1");
            switch (s * 10 + op) {
            /* none */
            case S_NONE * 10 + PS_XFER_OP_PREPARE:
                EXPECT(x, q, OK, PREPARED, true, NULL);
                break;
            case S_NONE * 10 + PS_XFER_OP_COMMIT:
                EXPECT(x, q, REFUSED, NONE, false, "unknown");
                break;
            case S_NONE * 10 + PS_XFER_OP_ROLLBACK:
                EXPECT(x, q, OK, ROLLED_BACK, true, NULL);
                break;
            case S_NONE * 10 + PS_XFER_OP_STATUS:
                EXPECT(x, q, OK, NONE, false, NULL);
                break;
            /* prepared */
            case S_PREPARED * 10 + PS_XFER_OP_PREPARE:
                EXPECT(x, q, OK, PREPARED, false, NULL);
                break;
            case S_PREPARED * 10 + PS_XFER_OP_COMMIT:
                EXPECT(x, q, OK, COMMITTED, true, NULL);
                break;
            case S_PREPARED * 10 + PS_XFER_OP_ROLLBACK:
                EXPECT(x, q, OK, ROLLED_BACK, true, NULL);
                break;
            case S_PREPARED * 10 + PS_XFER_OP_STATUS:
                EXPECT(x, q, OK, PREPARED, false, NULL);
                break;
            /* committed */
            case S_COMMITTED * 10 + PS_XFER_OP_PREPARE:
                EXPECT(x, q, OK, COMMITTED, false, NULL);
                break;
            case S_COMMITTED * 10 + PS_XFER_OP_COMMIT:
                EXPECT(x, q, OK, COMMITTED, false, NULL);
                break;
            case S_COMMITTED * 10 + PS_XFER_OP_ROLLBACK:
                EXPECT(x, q, REFUSED, COMMITTED, false, "too late");
                break;
            case S_COMMITTED * 10 + PS_XFER_OP_STATUS:
                EXPECT(x, q, OK, COMMITTED, false, NULL);
                break;
            /* rolled back, refused, tombstone: all final and rolled back */
            default:
                if (op == PS_XFER_OP_PREPARE)
                    EXPECT(x, q, REFUSED, ROLLED_BACK, false,
                           s == S_REFUSED ? "takes no transfers" : "rolled back");
                else if (op == PS_XFER_OP_COMMIT)
                    EXPECT(x, q, REFUSED, ROLLED_BACK, false, "rolled back");
                else
                    EXPECT(x, q, OK, ROLLED_BACK, false, NULL);
                break;
            }
        }
    }
    /* A refusing agent refuses destinations only. */
    EXPECT(ref, prep(77, "p1", PS_XFER_ROLE_SOURCE, "w", "p2"), OK, PREPARED, true, NULL);
    EXPECT(ref, prep(78, "p1", PS_XFER_ROLE_DESTINATION, "w", "p2"), REFUSED, ROLLED_BACK, true,
           "p1 takes no transfers");

    /* A prepare that names another workload, role or peer than the record: refused,
     * the record unchanged. */
    reach(a, ref, S_PREPARED, 90);
    EXPECT(a, prep(90, "p1", PS_XFER_ROLE_DESTINATION, "other", "p0"), REFUSED, PREPARED, false,
           "conflict");
    EXPECT(a, prep(90, "p1", PS_XFER_ROLE_SOURCE, "w", "p0"), REFUSED, PREPARED, false, "conflict");
    EXPECT(a, prep(90, "p1", PS_XFER_ROLE_DESTINATION, "w", "p9"), REFUSED, PREPARED, false,
           "conflict");
    reach(a, ref, S_COMMITTED, 91);
    EXPECT(a, prep(91, "p1", PS_XFER_ROLE_DESTINATION, "other", "p0"), REFUSED, COMMITTED, false,
           "conflict");
    const ps_xfer_record *r = ps_xfer_agent_find(a, "p1", 90);
    CHECK(r && r->state == PS_XFER_STATE_PREPARED && !strcmp(r->workload, "w") &&
          r->state_bytes == 4096 && r->expected_seconds == 0.25);
    CHECK(ps_xfer_agent_find(a, "p1", 999999) == NULL);
    CHECK(ps_xfer_agent_find(a, "p2", 90) == NULL);

    /* Another processor's messages: an error, nothing changes. */
    ps_xfer_reply rep;
    ps_xfer_event ev;
    ps_xfer_request q = prep(5, "p2", PS_XFER_ROLE_DESTINATION, "w", "p1");
    size_t n = ps_xfer_agent_count(a);
    CHECK(ps_xfer_agent_apply(a, &q, 0, &rep, NULL, &ev) == PS_XFER_E_WRONG_PROCESSOR);
    CHECK(rep.op == PS_XFER_OP_ERROR && rep.code == PS_XFER_E_WRONG_PROCESSOR &&
          strstr(rep.message, "serves processor p1, not p2") &&
          ev.code == PS_XFER_E_WRONG_PROCESSOR);
    CHECK(ps_xfer_agent_count(a) == n);
    q = req(PS_XFER_OP_ERROR, 5, "p1");
    CHECK(ps_xfer_agent_apply(a, &q, 0, &rep, NULL, NULL) == PS_XFER_E_UNKNOWN_OP);
    q = req(PS_XFER_OP_STATUS, 0, "p1");
    CHECK(ps_xfer_agent_apply(a, &q, 0, &rep, NULL, NULL) == PS_XFER_E_BAD_REQUEST);
    ps_xfer_agent_stats st = ps_xfer_agent_get_stats(a);
    CHECK(st.errors == 3 && st.repeats > 0 && st.refused > 0);
    ps_xfer_agent_close(a);
    ps_xfer_agent_close(ref);

    /* --any-processor: one table for every name, each (processor, id) its own. */
    c = (ps_xfer_agent_config){.any_processor = true};
    a = open_agent(&c);
    EXPECT(a, prep(5, "p2", PS_XFER_ROLE_DESTINATION, "w", "p1"), OK, PREPARED, true, NULL);
    EXPECT(a, prep(5, "p1", PS_XFER_ROLE_SOURCE, "w", "p2"), OK, PREPARED, true, NULL);
    EXPECT(a, req(PS_XFER_OP_COMMIT, 5, "p2"), OK, COMMITTED, true, NULL);
    EXPECT(a, req(PS_XFER_OP_STATUS, 5, "p1"), OK, PREPARED, false, NULL);
    CHECK(ps_xfer_agent_count(a) == 2);
    ps_xfer_agent_close(a);

    /* Bad configurations. */
    c = (ps_xfer_agent_config){.name = "bad name"};
    CHECK(ps_xfer_agent_open(&c, err, sizeof err) == NULL && strstr(err, "byte 0x20"));
    c = (ps_xfer_agent_config){.name = NULL};
    CHECK(ps_xfer_agent_open(&c, err, sizeof err) == NULL);
    c = (ps_xfer_agent_config){.name = "p", .delay = -1};
    CHECK(ps_xfer_agent_open(&c, err, sizeof err) == NULL && strstr(err, "delay"));
}

static void test_delay(void)
{
    ps_xfer_agent_config c = {.name = "p1", .delay = 2.5};
    ps_xfer_agent *a = open_agent(&c);
    ps_xfer_reply r;
    double at;
    ps_xfer_request q = prep(1, "p1", PS_XFER_ROLE_DESTINATION, "w", "p0");
    CHECK(ps_xfer_agent_apply(a, &q, 10.0, &r, &at, NULL) == 0 && at == 12.5);
    CHECK(r.result == PS_XFER_RESULT_OK && r.state == PS_XFER_STATE_PREPARED);
    /* A resend while the copy runs is answered when the first would be. */
    CHECK(ps_xfer_agent_apply(a, &q, 11.0, &r, &at, NULL) == 0 && at == 12.5);
    CHECK(ps_xfer_agent_apply(a, &q, 13.0, &r, &at, NULL) == 0 && at == 13.0);
    /* Status, commit and a source's prepare are answered at once. */
    q = req(PS_XFER_OP_STATUS, 1, "p1");
    CHECK(ps_xfer_agent_apply(a, &q, 11.0, &r, &at, NULL) == 0 && at == 11.0);
    q = prep(2, "p1", PS_XFER_ROLE_SOURCE, "w", "p3");
    CHECK(ps_xfer_agent_apply(a, &q, 11.0, &r, &at, NULL) == 0 && at == 11.0);
    ps_xfer_agent_close(a);
}

static void test_capacity(void)
{
    ps_xfer_agent_config c = {.name = "p1", .capacity = 3};
    ps_xfer_agent *a = open_agent(&c);
    for (int i = 1; i <= 3; i++)
        EXPECT(a, prep(i, "p1", PS_XFER_ROLE_DESTINATION, "w", "p0"), OK, PREPARED, true, NULL);
    /* Full of prepared transfers: a new one is refused and not recorded. */
    EXPECT(a, prep(4, "p1", PS_XFER_ROLE_DESTINATION, "w", "p0"), REFUSED, NONE, false,
           "holds 3 transfers in progress");
    /* A rollback of an unknown transfer is still acknowledged. */
    ps_xfer_request q = req(PS_XFER_OP_ROLLBACK, 5, "p1");
    ps_xfer_reply r;
    CHECK(ps_xfer_agent_apply(a, &q, 0, &r, NULL, NULL) == 0 && r.result == PS_XFER_RESULT_OK &&
          r.state == PS_XFER_STATE_ROLLED_BACK);
    /* Once one is finished, the oldest finished one makes room. */
    EXPECT(a, req(PS_XFER_OP_COMMIT, 2, "p1"), OK, COMMITTED, true, NULL);
    EXPECT(a, req(PS_XFER_OP_ROLLBACK, 3, "p1"), OK, ROLLED_BACK, true, NULL);
    EXPECT(a, prep(4, "p1", PS_XFER_ROLE_DESTINATION, "w", "p0"), OK, PREPARED, true, NULL);
    CHECK(ps_xfer_agent_find(a, "p1", 2) == NULL); /* committed first: forgotten first */
    CHECK(ps_xfer_agent_find(a, "p1", 3) != NULL && ps_xfer_agent_find(a, "p1", 1) != NULL);
    CHECK(ps_xfer_agent_count(a) == 3);
    ps_xfer_agent_close(a);
}

static void test_handle(void)
{
    ps_xfer_agent_config c = {.name = "p1"};
    ps_xfer_agent *a = open_agent(&c);
    ps_buf in = {0}, out = {0};
    ps_xfer_request q = prep(8, "p1", PS_XFER_ROLE_DESTINATION, "w", "p0");
    CHECK(ps_xfer_encode_request(&in, &q, err, sizeof err) == 0);
    double at = 0;
    ps_xfer_event ev;
    CHECK(ps_xfer_agent_handle(a, in.data, in.len, 5.0, &out, &at, &ev) == 0 && at == 5.0);
    ps_xfer_reply r;
    CHECK(ps_xfer_decode_reply(out.data, out.len, &r, err, sizeof err) == 0);
    CHECK(r.op == PS_XFER_OP_PREPARE && r.id == 8 && r.result == PS_XFER_RESULT_OK &&
          r.state == PS_XFER_STATE_PREPARED && ev.changed && ev.before == PS_XFER_STATE_NONE);
    /* Garbage: a bad_request error reply. */
    static const uint8_t junk[] = {0x93, 1, 2, 3};
    CHECK(ps_xfer_agent_handle(a, junk, sizeof junk, 5.0, &out, NULL, &ev) ==
          PS_XFER_E_BAD_REQUEST);
    CHECK(ps_xfer_decode_reply(out.data, out.len, &r, err, sizeof err) == 0);
    CHECK(r.op == PS_XFER_OP_ERROR && r.code == PS_XFER_E_BAD_REQUEST && ev.code);
    /* A bad prepare still has its id and processor echoed. */
    q.state_bytes = 1;
    CHECK(ps_xfer_encode_request(&in, &q, err, sizeof err) == 0);
    in.data[in.len - 9] = 0xcb; /* expected_seconds: turn the float64 into NaN */
    memcpy(in.data + in.len - 8, "\x7f\xf8\x00\x00\x00\x00\x00\x00", 8);
    CHECK(ps_xfer_agent_handle(a, in.data, in.len, 5.0, &out, NULL, &ev) == PS_XFER_E_BAD_REQUEST);
    CHECK(ps_xfer_decode_reply(out.data, out.len, &r, err, sizeof err) == 0);
    CHECK(r.op == PS_XFER_OP_ERROR && r.id == 8 && !strcmp(r.processor, "p1") &&
          strstr(r.message, "NaN"));
    /* Wrong processor: the error reply carries the code. */
    q = req(PS_XFER_OP_STATUS, 8, "p7");
    CHECK(ps_xfer_encode_request(&in, &q, err, sizeof err) == 0);
    CHECK(ps_xfer_agent_handle(a, in.data, in.len, 5.0, &out, NULL, NULL) ==
          PS_XFER_E_WRONG_PROCESSOR);
    CHECK(ps_xfer_decode_reply(out.data, out.len, &r, err, sizeof err) == 0 &&
          r.code == PS_XFER_E_WRONG_PROCESSOR && r.id == 8 && !strcmp(r.processor, "p7"));
    ps_buf_free(&in);
    ps_buf_free(&out);
    ps_xfer_agent_close(a);
}

static size_t count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = 0;
    int ch;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

static void test_journal(void)
{
    char path[400];
    snprintf(path, sizeof path, "%s/journal", tmpdir);
    ps_xfer_agent_config c = {.any_processor = true, .journal = path, .refuse_destination = true};
    ps_xfer_agent *a = open_agent(&c);
    /* p1 source of 1 (prepared), 2 (committed), 3 (rolled back); a refused
     * prepare (4), a rollback of an unknown transfer (5). */
    EXPECT(a, prep(1, "p1", PS_XFER_ROLE_SOURCE, "w1", "p2"), OK, PREPARED, true, NULL);
    EXPECT(a, prep(2, "p1", PS_XFER_ROLE_SOURCE, "w2", "p2"), OK, PREPARED, true, NULL);
    EXPECT(a, req(PS_XFER_OP_COMMIT, 2, "p1"), OK, COMMITTED, true, NULL);
    EXPECT(a, prep(3, "p1", PS_XFER_ROLE_SOURCE, "w3", "p2"), OK, PREPARED, true, NULL);
    EXPECT(a, req(PS_XFER_OP_ROLLBACK, 3, "p1"), OK, ROLLED_BACK, true, NULL);
    EXPECT(a, prep(4, "p2", PS_XFER_ROLE_DESTINATION, "w4", "p1"), REFUSED, ROLLED_BACK, true,
           "takes no transfers");
    EXPECT(a, req(PS_XFER_OP_ROLLBACK, 5, "p3"), OK, ROLLED_BACK, true, NULL);
    ps_xfer_agent_stats st = ps_xfer_agent_get_stats(a);
    CHECKF(st.journal_lines == 7, "%llu lines", (unsigned long long)st.journal_lines);
    CHECK(count_lines(path) == 8);
    ps_xfer_agent_close(a);

    /* A restart: the same answers, nothing new written. */
    c.refuse_destination = false;
    a = open_agent(&c);
    st = ps_xfer_agent_get_stats(a);
    CHECK(st.replayed == 7 && ps_xfer_agent_count(a) == 5);
    EXPECT(a, prep(1, "p1", PS_XFER_ROLE_SOURCE, "w1", "p2"), OK, PREPARED, false, NULL);
    EXPECT(a, prep(2, "p1", PS_XFER_ROLE_SOURCE, "w2", "p2"), OK, COMMITTED, false, NULL);
    EXPECT(a, req(PS_XFER_OP_ROLLBACK, 2, "p1"), REFUSED, COMMITTED, false, "too late");
    EXPECT(a, prep(3, "p1", PS_XFER_ROLE_SOURCE, "w3", "p2"), REFUSED, ROLLED_BACK, false,
           "rolled back");
    /* The refusal is remembered with its reason, even though this run would accept it. */
    EXPECT(a, prep(4, "p2", PS_XFER_ROLE_DESTINATION, "w4", "p1"), REFUSED, ROLLED_BACK, false,
           "p2 takes no transfers");
    EXPECT(a, prep(5, "p3", PS_XFER_ROLE_DESTINATION, "w5", "p1"), REFUSED, ROLLED_BACK, false,
           "rolled back");
    const ps_xfer_record *r = ps_xfer_agent_find(a, "p1", 1);
    CHECK(r && r->role == PS_XFER_ROLE_SOURCE && !strcmp(r->workload, "w1") &&
          !strcmp(r->peer, "p2") && r->state_bytes == 4096 && r->expected_seconds == 0.25);
    CHECK(ps_xfer_agent_get_stats(a).journal_lines == 0);
    EXPECT(a, req(PS_XFER_OP_COMMIT, 1, "p1"), OK, COMMITTED, true, NULL);
    ps_xfer_agent_close(a);
    CHECK(count_lines(path) == 9);

    /* A torn last line (a crash mid-write) is cut off. */
    FILE *f = fopen(path, "a");
    fputs("committed\t3\tp1\tsou", f);
    fclose(f);
    a = open_agent(&c);
    CHECK(ps_xfer_agent_get_stats(a).replayed == 8);
    EXPECT(a, req(PS_XFER_OP_STATUS, 3, "p1"), OK, ROLLED_BACK, false, NULL);
    EXPECT(a, req(PS_XFER_OP_STATUS, 1, "p1"), OK, COMMITTED, false, NULL);
    ps_xfer_agent_close(a);
    CHECK(count_lines(path) == 9);
    a = open_agent(&c); /* and the file is whole again */
    CHECK(ps_xfer_agent_get_stats(a).replayed == 8);
    ps_xfer_agent_close(a);

    /* A malformed line in the middle is refused, saying where. */
    f = fopen(path, "a");
    fputs("prepared\t9\tp1\tsideways\tw\tp2\t0\t0\t\n", f);
    fputs("prepared\t10\tp1\tsource\tw\tp2\t0\t0\t\n", f);
    fclose(f);
    CHECK(ps_xfer_agent_open(&c, err, sizeof err) == NULL && strstr(err, "journal:10:") &&
          strstr(err, "bad role"));
    static const char *const bad_lines[] = {
        "prepared\t9\tp1\tsource\tw\tp2\t0\t0\n",     /* 8 fields */
        "done\t9\tp1\tsource\tw\tp2\t0\t0\t\n",       /* state */
        "prepared\t-9\tp1\tsource\tw\tp2\t0\t0\t\n",  /* id */
        "prepared\t9\tp 1\tsource\tw\tp2\t0\t0\t\n",  /* processor */
        "prepared\t9\tp1\tsource\t\tp2\t0\t0\t\n",    /* workload */
        "prepared\t9\tp1\tsource\tw\tp2\tNaN\t0\t\n", /* state_bytes */
        "prepared\t9\tp1\tnone\t\t\t0\t0\t\n",        /* no role, not rolled back */
        "rolled_back\t9\tp1\tnone\tw\t\t0\t0\t\n",    /* no role but a workload */
    };
    for (size_t i = 0; i < sizeof bad_lines / sizeof bad_lines[0]; i++) {
        f = fopen(path, "w");
        fprintf(f, "preshift transfer journal 1\n%s", bad_lines[i]);
        fclose(f);
        CHECKF(ps_xfer_agent_open(&c, err, sizeof err) == NULL && strstr(err, "journal:2:"),
               "line %zu: %s", i, err);
    }
    f = fopen(path, "w");
    fputs("something else\n", f);
    fclose(f);
    CHECK(ps_xfer_agent_open(&c, err, sizeof err) == NULL && strstr(err, "line 1"));

    /* A long journal is rewritten with one line per transfer. */
    f = fopen(path, "w");
    fputs("preshift transfer journal 1\n", f);
    for (int i = 1; i <= 1500; i++) {
        fprintf(f, "prepared\t%d\tp1\tdestination\tw%d\tp2\t1024\t0.5\t\n", i, i);
        fprintf(f, "committed\t%d\tp1\tdestination\tw%d\tp2\t1024\t0.5\t\n", i, i);
    }
    fclose(f);
    c.capacity = 200;
    a = open_agent(&c);
    CHECK(ps_xfer_agent_count(a) == 200);
    CHECK(count_lines(path) == 201);
    EXPECT(a, req(PS_XFER_OP_STATUS, 1500, "p1"), OK, COMMITTED, false, NULL);
    EXPECT(a, req(PS_XFER_OP_STATUS, 1, "p1"), OK, NONE, false, NULL); /* forgotten */
    ps_xfer_agent_close(a);
    a = open_agent(&c);
    CHECK(ps_xfer_agent_get_stats(a).replayed == 200);
    ps_xfer_agent_close(a);

    /* More prepared transfers than the table holds: refused. */
    f = fopen(path, "w");
    fputs("preshift transfer journal 1\n", f);
    for (int i = 1; i <= 3; i++)
        fprintf(f, "prepared\t%d\tp1\tdestination\tw\tp2\t0\t0\t\n", i);
    fclose(f);
    c.capacity = 2;
    CHECK(ps_xfer_agent_open(&c, err, sizeof err) == NULL && strstr(err, "in progress"));

    /* A journal that cannot be opened. */
    c = (ps_xfer_agent_config){.any_processor = true, .journal = "/nonexistent/dir/journal"};
    CHECK(ps_xfer_agent_open(&c, err, sizeof err) == NULL && strstr(err, "/nonexistent"));
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ps_xagent_XXXXXX");
    if (!mkdtemp(tmpdir)) TEST_SKIP("cannot make a temporary directory");
    test_table();
    test_delay();
    test_capacity();
    test_handle();
    test_journal();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_finish("test_transfer_agent");
}
