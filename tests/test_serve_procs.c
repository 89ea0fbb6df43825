/*
 * test_serve_procs.c - the server's id -> slot table under churn: random
 * gets and removals checked against a plain array after every step (every
 * id present is found at its slot, every removed id is gone, slots are
 * unique and reused), and restoring given slots.
 */
#include "server/serve_procs.h"
#include "testutil.h"

#include <stdint.h>
#include <string.h>

#define CAP 64
#define IDS 200

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Every id in ref found at its slot, every other one absent. */
static int consistent(const ps_procs *p, const long *ref)
{
    size_t n = 0;
    for (uint64_t id = 0; id < IDS; id++) {
        long s = ps_procs_find(p, id * 1000003u);
        if (s != ref[id]) return 0;
        if (s >= 0) {
            n++;
            if (!p->rec[s].used || p->rec[s].id != id * 1000003u) return 0;
        }
    }
    return n == p->n;
}

static void test_churn(void)
{
    ps_procs p;
    CHECK(ps_procs_init(&p, CAP, 42) == 0);
    long ref[IDS];
    for (int i = 0; i < IDS; i++)
        ref[i] = -1;
    int bad = 0, full = 0;
    for (int step = 0; step < 20000 && !bad; step++) {
        uint64_t id = next() % IDS;
        if (next() % 3) {
            size_t was = p.n;
            long s = ps_procs_get(&p, id * 1000003u);
            if (ref[id] >= 0) {
                bad |= s != ref[id];
            } else if (was == CAP) {
                full++;
                bad |= s >= 0;
            } else {
                /* A fresh slot: no one else holds it. */
                for (int j = 0; j < IDS; j++)
                    bad |= ref[j] == s;
                ref[id] = s;
            }
        } else if (ref[id] >= 0) {
            ps_procs_remove(&p, (uint32_t)ref[id]);
            ref[id] = -1;
        }
        bad |= !consistent(&p, ref) || p.hi > CAP;
    }
    CHECK(!bad);
    CHECK(full > 0); /* the table did fill and refuse */
    ps_procs_free(&p);
}

static void test_restore(void)
{
    ps_procs p;
    CHECK(ps_procs_init(&p, 8, 7) == 0);
    CHECK(ps_procs_put(&p, 100, 5) == 0);
    CHECK(ps_procs_put(&p, 200, 2) == 0);
    CHECK(ps_procs_put(&p, 100, 3) == -1); /* known id */
    CHECK(ps_procs_put(&p, 300, 5) == -1); /* used slot */
    CHECK(ps_procs_put(&p, 300, 8) == -1); /* out of range */
    ps_procs_restored(&p);
    CHECK(ps_procs_find(&p, 100) == 5 && ps_procs_find(&p, 200) == 2 && p.n == 2);
    /* The slots left between come first, lowest first, then the rest. */
    long want[] = {0, 1, 3, 4, 6, 7};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK(ps_procs_get(&p, 1000 + i) == want[i]);
    CHECK(ps_procs_get(&p, 9999) == -1);
    CHECK(ps_procs_put(&p, 9999, 0) == -1);
    ps_procs_free(&p);
}

int main(void)
{
    test_churn();
    test_restore();
    return test_finish("test_serve_procs");
}
