/*
 * test_workload_file.c - the manager's workload file (server/workload_file.h).
 *
 * A good file loads field by field: units, defaults, classes, groups, both
 * dependency forms, declarations in any order. The bundled example loads
 * and passes the cluster's own checks. Writing a cluster and loading it
 * back gives the same cluster. Every kind of error is refused with the
 * file, line and column, and leaves the cluster zeroed and the names empty.
 * The name tables find, free and reuse slots, and survive growth.
 */
#define _POSIX_C_SOURCE 200809L

#include "core/threshold.h"
#include "kernels/kernels.h"
#include "server/workload_file.h"
#include "testutil.h"

#include <string.h>

static char err[512];

static int err_has(const char *s)
{
    return strstr(err, s) != NULL;
}

static int load(const char *text, ps_cluster *c, ps_names *n)
{
    return ps_workload_load_string(text, strlen(text), "t.workloads", NULL, c, n, err, sizeof err);
}

static uint32_t W(const ps_names *n, const char *name)
{
    return ps_name_find(&n->workloads, name);
}

static uint32_t P(const ps_names *n, const char *name)
{
    return ps_name_find(&n->processors, name);
}

static int has_edge(const ps_cluster *c, uint32_t a, uint32_t b)
{
    uint32_t k;
    const uint32_t *out = ps_cluster_dependents(c, a, &k);
    for (uint32_t i = 0; i < k; i++)
        if (out[i] == b) return 1;
    return 0;
}

static const char GOOD[] =
    "# a comment line\n"
    "\n"
    "workload late on=p2 cpu=250m\t# declared before its processor\n"
    "class small\n"
    "class big   # trailing comment\n"
    "processor p1 class=small cpu=8 mem=16GiB net=10Gbit/s\n"
    "processor p2 class=big cpu=64 mem=1.5TB net=1.25GB/s\n"
    "processor p3 class=small cpu=4.5 mem=8192MiB net=100MB/s alive=no\n"
    "  workload db-a on=p1 cpu=2 mem=4GiB state=2GiB criticality=5 group=db\n"
    "workload db-b on=p2 cpu=2 mem=4GiB state=2GiB criticality=5 group=db\n"
    "workload web on=p1 mem=512MiB state=1000 criticality=0\n"
    "workload sidecar on=p3 cpu=0.5 mem=1e6 state=3kB group=side\r\n"
    "depends web on db-a, db-b\n"
    "depends late on web\n"
    "flow db-a->sidecar -> late\n";

static void test_good(void)
{
    ps_cluster c;
    ps_names n;
    int rc = load(GOOD, &c, &n);
    CHECKF(rc == PS_OK, "%s", err);
    if (rc) return;
    CHECKF(ps_cluster_check(&c, err, sizeof err) == PS_OK, "%s", err);
    CHECK(c.n_classes == 2 && c.n_processors == 3 && c.n_workloads == 5 && c.n_edges == 5);
    CHECK(c.max_processors == 3 && c.max_workloads == 5 && c.max_groups == 2);
    /* Slots in declaration order. */
    CHECK(ps_name_find(&n.classes, "small") == 0 && ps_name_find(&n.classes, "big") == 1);
    CHECK(P(&n, "p1") == 0 && P(&n, "p2") == 1 && P(&n, "p3") == 2);
    CHECK(W(&n, "late") == 0 && W(&n, "db-a") == 1 && W(&n, "sidecar") == 4);
    CHECK(ps_name_find(&n.groups, "db") == 1 && ps_name_find(&n.groups, "side") == 2);
    CHECK(!strcmp(ps_name_of(&n.workloads, 3), "web"));
    CHECK(ps_name_of(&n.groups, 0) == NULL);

    const ps_processor *p1 = &c.proc[0], *p2 = &c.proc[1], *p3 = &c.proc[2];
    CHECK(p1->cls == 0 && p2->cls == 1 && p3->cls == 0);
    CHECK(p1->cpu_capacity == 8 && p1->mem_capacity == 16.0 * 1073741824.0);
    CHECK(p1->net_bandwidth == 1.25e9 && p1->alive);
    CHECK(p2->cpu_capacity == 64 && p2->mem_capacity == 1.5e12 && p2->net_bandwidth == 1.25e9);
    CHECK(p3->cpu_capacity == 4.5 && p3->mem_capacity == 8192.0 * 1048576.0);
    CHECK(p3->net_bandwidth == 1e8 && !p3->alive);
    CHECK(p1->n_workloads == 2 && p2->n_workloads == 2 && p3->n_workloads == 1);

    const ps_workload *late = &c.work[W(&n, "late")], *dba = &c.work[W(&n, "db-a")];
    const ps_workload *web = &c.work[W(&n, "web")], *side = &c.work[W(&n, "sidecar")];
    CHECK(late->proc == 1 && late->cpu == 0.25 && late->mem == 0 && late->state_bytes == 0);
    CHECK(late->criticality == 1 && late->group == 0); /* the defaults */
    CHECK(dba->proc == 0 && dba->cpu == 2 && dba->mem == 4.0 * 1073741824.0);
    CHECK(dba->state_bytes == 2.0 * 1073741824.0 && dba->criticality == 5 && dba->group == 1);
    CHECK(c.work[W(&n, "db-b")].group == 1 && c.work[W(&n, "db-b")].proc == 1);
    CHECK(web->cpu == 0 && web->mem == 512.0 * 1048576.0 && web->state_bytes == 1000);
    CHECK(web->criticality == 0);
    CHECK(side->proc == 2 && side->cpu == 0.5 && side->mem == 1e6 && side->state_bytes == 3000);
    CHECK(side->group == 2 && side->dest == PS_NONE);

    /* depends web on db-a, db-b: edges db-a -> web, db-b -> web; flow is a chain. */
    CHECK(has_edge(&c, W(&n, "db-a"), W(&n, "web")));
    CHECK(has_edge(&c, W(&n, "db-b"), W(&n, "web")));
    CHECK(has_edge(&c, W(&n, "web"), W(&n, "late")));
    CHECK(has_edge(&c, W(&n, "db-a"), W(&n, "sidecar")));
    CHECK(has_edge(&c, W(&n, "sidecar"), W(&n, "late")));
    CHECK(!has_edge(&c, W(&n, "web"), W(&n, "db-a")));
    ps_cluster_free(&c);
    ps_names_free(&n);

    /* Room for later additions. */
    ps_load_room room = {4, 10, 20, 5};
    rc = ps_workload_load_string(GOOD, strlen(GOOD), "t", &room, &c, &n, err, sizeof err);
    CHECKF(rc == PS_OK, "%s", err);
    CHECK(c.n_classes == 4 && c.max_processors == 10 && c.max_workloads == 20);
    CHECK(c.max_groups == 5 && c.n_workloads == 5);
    ps_cluster_free(&c);
    ps_names_free(&n);
    room.classes = PS_THRESHOLD_MAX_CLASSES + 1;
    rc = ps_workload_load_string(GOOD, strlen(GOOD), "t", &room, &c, &n, err, sizeof err);
    CHECK(rc == PS_EINVAL && c.proc == NULL);

    /* Empty: no processors, an empty (but usable) cluster. */
    CHECKF(load("# nothing\n\n", &c, &n) == PS_OK, "%s", err);
    CHECK(c.n_processors == 0 && c.n_workloads == 0 && c.max_processors == 1);
    ps_cluster_free(&c);
    ps_names_free(&n);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    CHECKF(f != NULL, "cannot open %s", path);
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    (void)n;
    fclose(f);
    return buf;
}

static void test_example(void)
{
    ps_cluster c;
    ps_names n;
    const char *path = PRESHIFT_SOURCE_DIR "/docs/examples/cluster.workloads";
    int rc = ps_workload_load_file(path, NULL, &c, &n, err, sizeof err);
    CHECKF(rc == PS_OK, "%s", err);
    if (rc) return;
    CHECKF(ps_cluster_check(&c, err, sizeof err) == PS_OK, "%s", err);
    CHECK(c.n_classes == 2 && c.n_processors == 6);
    CHECK(c.n_workloads == 13 && c.n_edges == 16 && c.max_groups == 1);
    uint32_t db = ps_name_find(&n.groups, "db");
    CHECK(db == 1);
    uint32_t members = 0;
    for (uint32_t w = c.group_first[1]; w != PS_NONE; w = c.work[w].gnext)
        members++;
    CHECK(members == 3);
    /* Every workload fits its processor. */
    for (uint32_t p = 0; p < c.max_processors; p++) {
        double cpu = 0, mem = 0;
        for (uint32_t w = c.proc[p].first; w != PS_NONE; w = c.work[w].next)
            cpu += c.work[w].cpu, mem += c.work[w].mem;
        CHECKF(cpu <= c.proc[p].cpu_capacity && mem <= c.proc[p].mem_capacity,
               "processor %s is overfull", ps_name_of(&n.processors, p));
    }
    uint32_t k;
    ps_cluster_dependencies(&c, W(&n, "api"), &k);
    CHECK(k == 4);
    ps_cluster_free(&c);
    ps_names_free(&n);

    /* docs/workloads.md shows the example as it is. */
    char *example = read_text(path), *doc = read_text(PRESHIFT_SOURCE_DIR "/docs/workloads.md");
    CHECK(example && doc && strstr(doc, example) != NULL);
    free(example);
    free(doc);

    rc = ps_workload_load_file(PRESHIFT_SOURCE_DIR "/docs/examples/no-such.workloads", NULL, &c, &n,
                               err, sizeof err);
    CHECK(rc == PS_WL_EIO);
    CHECKF(err_has("no-such.workloads: cannot open"), "%s", err);
}

/* Two clusters with the same names hold the same things. */
static void check_same(const ps_cluster *a, const ps_names *na, const ps_cluster *b,
                       const ps_names *nb)
{
    CHECK(a->n_processors == b->n_processors && a->n_workloads == b->n_workloads);
    CHECK(a->n_edges == b->n_edges);
    for (uint32_t p = 0; p < a->max_processors; p++) {
        if (!a->proc[p].present) continue;
        uint32_t q = ps_name_find(&nb->processors, ps_name_of(&na->processors, p));
        CHECK(q != PS_NONE);
        if (q == PS_NONE) continue;
        const ps_processor *x = &a->proc[p], *y = &b->proc[q];
        CHECK(!strcmp(ps_name_of(&na->classes, x->cls), ps_name_of(&nb->classes, y->cls)));
        CHECK(x->cpu_capacity == y->cpu_capacity && x->mem_capacity == y->mem_capacity);
        CHECK(x->net_bandwidth == y->net_bandwidth && x->alive == y->alive);
    }
    for (uint32_t w = 0; w < a->max_workloads; w++) {
        if (!a->work[w].present) continue;
        uint32_t v = ps_name_find(&nb->workloads, ps_name_of(&na->workloads, w));
        CHECK(v != PS_NONE);
        if (v == PS_NONE) continue;
        const ps_workload *x = &a->work[w], *y = &b->work[v];
        CHECK(!strcmp(ps_name_of(&na->processors, x->proc), ps_name_of(&nb->processors, y->proc)));
        CHECK(x->cpu == y->cpu && x->mem == y->mem && x->state_bytes == y->state_bytes);
        CHECK(x->criticality == y->criticality);
        CHECK((x->group == 0) == (y->group == 0));
        if (x->group && y->group)
            CHECK(!strcmp(ps_name_of(&na->groups, x->group), ps_name_of(&nb->groups, y->group)));
        uint32_t k;
        const uint32_t *out = ps_cluster_dependents(a, w, &k);
        for (uint32_t i = 0; i < k; i++) {
            uint32_t d = ps_name_find(&nb->workloads, ps_name_of(&na->workloads, out[i]));
            CHECK(d != PS_NONE && has_edge(b, v, d));
        }
    }
}

static void test_write_round_trip(void)
{
    ps_cluster a, b;
    ps_names na, nb;
    CHECKF(load(GOOD, &a, &na) == PS_OK, "%s", err);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f != NULL);
    if (!f) return;
    CHECKF(ps_workload_write(f, &a, &na, err, sizeof err) == PS_OK, "%s", err);
    fclose(f);
    CHECKF(strstr(buf, "processor p1 class=small cpu=8 mem=16GiB net=10Gbit/s\n") != NULL, "%s",
           buf);
    CHECKF(strstr(buf, "processor p3 class=small cpu=4.5 mem=8GiB net=100MB/s alive=no\n"), "%s",
           buf);
    CHECKF(strstr(buf, "workload late on=p2 cpu=0.25 mem=0 state=0 criticality=1\n"), "%s", buf);
    CHECKF(
        strstr(buf, "workload sidecar on=p3 cpu=0.5 mem=1MB state=3kB criticality=1 group=side\n"),
        "%s", buf);
    CHECKF(strstr(buf, "depends web on db-a, db-b\n") != NULL, "%s", buf);
    int rc = ps_workload_load_string(buf, len, "written", NULL, &b, &nb, err, sizeof err);
    CHECKF(rc == PS_OK, "%s\n%s", err, buf);
    if (rc == PS_OK) {
        check_same(&a, &na, &b, &nb);
        check_same(&b, &nb, &a, &na);
        ps_cluster_free(&b);
        ps_names_free(&nb);
    }
    free(buf);

    /* A slot without a name cannot be written. */
    ps_name_remove(&na.workloads, 3);
    f = open_memstream(&buf, &len);
    CHECK(ps_workload_write(f, &a, &na, err, sizeof err) == PS_EINVAL);
    CHECKF(err_has("workload 3 has no name"), "%s", err);
    fclose(f);
    free(buf);
    ps_cluster_free(&a);
    ps_names_free(&na);
}

/* One bad file: refused with this location and message, nothing left behind. */
static void bad_n(const char *text, size_t len, const char *where, const char *what)
{
    ps_cluster c;
    ps_names n;
    memset(&c, 0xab, sizeof c);
    int rc = ps_workload_load_string(text, len, "t.workloads", NULL, &c, &n, err, sizeof err);
    CHECKF(rc == PS_WL_EPARSE, "rc %d for: %s", rc, text);
    char loc[64];
    snprintf(loc, sizeof loc, "t.workloads:%s: ", where);
    CHECKF(strncmp(err, loc, strlen(loc)) == 0, "want '%s', got '%s'", loc, err);
    CHECKF(err_has(what), "want '%s' in '%s'", what, err);
    CHECK(c.proc == NULL && c.work == NULL && c.n_processors == 0);
    CHECK(n.processors.count == 0 && n.workloads.count == 0 && n.processors.name == NULL);
    if (rc == PS_OK) {
        ps_cluster_free(&c);
        ps_names_free(&n);
    }
}

static void bad(const char *text, const char *where, const char *what)
{
    bad_n(text, strlen(text), where, what);
}

#define HEAD "class c\nprocessor p1 class=c cpu=4 mem=8GiB net=1GB/s\n"

static void test_errors(void)
{
    /* Syntax. */
    bad("class c\nproccessor p1\n", "2:1", "unknown declaration 'proccessor'");
    bad("Class c\n", "1:1", "unknown declaration 'Class'");
    bad("class\n", "1:6", "expected a class name");
    bad("class c d\n", "1:9", "unexpected 'd' after the class name");
    bad("class c!x\n", "1:8", "'!' cannot appear in a class name");
    bad("class -c\n", "1:7", "expected a class name, found '-'");
    bad("class "
        "a234567890123456789012345678901234567890123456789012345678901234\n",
        "1:7", "too long (64 bytes, at most 63)");
    bad(HEAD "processor p2 class=c cpu=4 mem=8GiB\n", "3:1",
        "processor 'p2' needs net= (its network bandwidth");
    bad(HEAD "processor p2 class=c cpu=4 mem=8GiB net=1GB/s speed=3\n", "3:47",
        "unknown attribute 'speed' of a processor (it takes class, cpu, mem, net, alive, id, "
        "agent)");
    bad(HEAD "processor p2 class=c cpu=4 cpu=5 mem=8GiB net=1GB/s\n", "3:28",
        "cpu= is given twice (first at column 22)");
    bad(HEAD "processor p2 class=c cpu = 4 mem=8GiB net=1GB/s\n", "3:25", "no spaces around '='");
    bad(HEAD "processor p2 class=c cpu= mem=8GiB net=1GB/s\n", "3:26", "cpu= needs a value");
    bad(HEAD "processor p2 class=c cpu=1 mem=8 GiB net=1GB/s\n", "3:34",
        "'GiB' is a unit: write it right after its number, without a space");
    bad(HEAD "processor p2 class=c cpu=1 mem=8GiB net=1GB/s 7\n", "3:47",
        "expected key=value, found '7'");
    bad(HEAD "processor p2 class=c cpu=four mem=8GiB net=1GB/s\n", "3:26",
        "cpu= needs a number, not 'four'");
    bad(HEAD "workload w on=p1 mem=-5GiB\n", "3:22", "mem= must not be negative (-5GiB)");
    bad(HEAD "workload w on=p1 criticality=-1\n", "3:30", "criticality= must not be negative");
    bad(HEAD "workload w on=p1 mem=5Gb\n", "3:23", "unknown unit 'Gb' for mem= (bytes:");
    bad(HEAD "workload w on=p1 criticality=2x\n", "3:31",
        "criticality= takes a plain number, without a unit ('x')");
    bad(HEAD "workload w on=p1 state=inf\n", "3:24", "state= needs a number, not 'inf'");
    bad(HEAD "workload w on=p1 state=nan\n", "3:24", "state= needs a number");
    bad(HEAD "workload w on=p1 state=1e999\n", "3:24", "state= is too large");
    bad(HEAD "processor p2 class=c cpu=0 mem=8GiB net=1GB/s\n", "3:26",
        "cpu= must be greater than 0");
    bad(HEAD "processor p2 class=c cpu=1 mem=8GiB net=1GB/s alive=maybe\n", "3:53",
        "alive= must be yes or no, not 'maybe'");
    bad(HEAD "workload w cpu=1\n", "3:1", "workload 'w' needs on=PROCESSOR");
    bad(HEAD "workload w on=p1 group=a,b\n", "3:25", "',' cannot appear in a replica group name");
    bad(HEAD "depends a b\n", "3:11", "expected 'on' after 'a'");
    bad(HEAD "depends a on b c\n", "3:16", "expected ',' or the end of the line, found 'c'");
    bad(HEAD "depends a on b,\n", "3:16", "expected a workload name");
    bad(HEAD "flow a\n", "3:7", "expected '->' after 'a'");
    bad(HEAD "flow a -> b c\n", "3:13", "expected '->' or the end of the line, found 'c'");
    bad(HEAD "flow a -> \n", "3:11", "expected a workload name");
    bad_n("class c\0processor\n", 18, "1:8", "NUL byte");
    /* Duplicates name the first declaration. */
    bad(HEAD "\nprocessor p1 class=c cpu=4 mem=8GiB net=1GB/s\n", "4:11",
        "duplicate processor 'p1' (first declared at line 2)");
    bad("class c\nclass c\n", "2:7", "duplicate class 'c' (first declared at line 1)");
    bad(HEAD "workload w on=p1\nworkload w on=p1\n", "4:10",
        "duplicate workload 'w' (first declared at line 3)");

    /* References. */
    bad(HEAD "processor p2 class=d cpu=4 mem=8GiB net=1GB/s\n", "3:20",
        "unknown class 'd' (declare it with: class d)");
    bad(HEAD "workload w on=p9\n", "3:15", "unknown processor 'p9'");
    bad(HEAD "workload w on=p1\ndepends w on x\n", "4:14", "unknown workload 'x'");
    bad(HEAD "workload w on=p1\nflow y -> w\n", "4:6", "unknown workload 'y'");
    bad(HEAD "workload w on=p1\ndepends w on w\n", "4:14", "'w' cannot depend on itself");
    bad(HEAD "workload a on=p1\nworkload b on=p1\ndepends b on a\nflow a -> b\n", "6:6",
        "duplicate dependency: 'b' already depends on 'a' (line 5)");
    bad(HEAD "processor p2 class=c cpu=4 mem=8GiB net=1GB/s\n"
             "workload r1 on=p1 group=g\nworkload r2 on=p2 group=g\nworkload r3 on=p1 group=g\n",
        "6:16",
        "replica group 'g' would have two members on processor 'p1': 'r3' and 'r1' (line 4)");
    /* The earliest reference error is the one reported. */
    bad(HEAD "workload w on=p1\ndepends w on zz\nworkload v on=nowhere\n", "4:14",
        "unknown workload 'zz'");
    /* Cycles are allowed: the policy counts a cycle once. */
    ps_cluster c;
    ps_names n;
    CHECKF(load(HEAD "workload a on=p1\nworkload b on=p1\nflow a -> b -> a\n", &c, &n) == PS_OK,
           "%s", err);
    CHECK(c.n_edges == 2);
    ps_cluster_free(&c);
    ps_names_free(&n);

    /* Too many classes. */
    char text[4096] = "";
    for (int i = 0; i <= PS_THRESHOLD_MAX_CLASSES; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "class k%d\n", i);
    char where[16];
    snprintf(where, sizeof where, "%d:7", PS_THRESHOLD_MAX_CLASSES + 1);
    bad(text, where, "too many classes (at most 64)");
}

/* id= and agent=: what the manager needs to match heartbeats and reach agents. */
static void test_ids_agents(void)
{
    /* FNV-1a 64 of "a" and of "" (the published test vectors). */
    CHECK(ps_processor_default_id("a") == 0xaf63dc4c8601ec8cull);
    CHECK(ps_processor_default_id("") == 0xcbf29ce484222325ull);
    ps_cluster c;
    ps_names n;
    int rc = load(HEAD "processor p2 class=c cpu=4 mem=8GiB net=1GB/s id=18446744073709551615 "
                       "agent=tcp://10.0.0.2:5560\n"
                       "processor p3 class=c cpu=4 mem=8GiB net=1GB/s id=0 agent=ipc:///tmp/a\n",
                  &c, &n);
    CHECKF(rc == PS_OK, "%s", err);
    if (rc) return;
    CHECK(ps_names_processor_id(&n, 0) == ps_processor_default_id("p1"));
    CHECK(ps_names_processor_id(&n, 1) == UINT64_MAX && ps_names_processor_id(&n, 2) == 0);
    CHECK(!strcmp(ps_names_agent(&n, 0), "") &&
          !strcmp(ps_names_agent(&n, 1), "tcp://10.0.0.2:5560"));
    CHECK(!strcmp(ps_names_agent(&n, 2), "ipc:///tmp/a") && !strcmp(ps_names_agent(&n, 9), ""));
    CHECK(ps_names_processor_id(&n, 9) == 0);

    /* Written back: id= only where it is not the default, agent= where there is one. */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f && ps_workload_write(f, &c, &n, err, sizeof err) == PS_OK);
    if (f) fclose(f);
    CHECKF(strstr(buf, "processor p1 class=c cpu=4 mem=8GiB net=1GB/s\n") != NULL, "%s", buf);
    CHECKF(strstr(buf, "net=1GB/s id=18446744073709551615 agent=tcp://10.0.0.2:5560\n"), "%s", buf);
    ps_cluster c2;
    ps_names n2;
    CHECKF(ps_workload_load_string(buf, len, "w", NULL, &c2, &n2, err, sizeof err) == PS_OK, "%s",
           err);
    for (uint32_t p = 0; p < 3; p++) {
        CHECK(ps_names_processor_id(&n2, p) == ps_names_processor_id(&n, p));
        CHECK(!strcmp(ps_names_agent(&n2, p), ps_names_agent(&n, p)));
    }
    ps_cluster_free(&c2);
    ps_names_free(&n2);
    free(buf);

    /* Removing a processor's names forgets its id and agent. */
    ps_names_remove_processor(&n, 1);
    CHECK(ps_name_of(&n.processors, 1) == NULL && ps_names_processor_id(&n, 1) == 0);
    CHECK(!strcmp(ps_names_agent(&n, 1), ""));
    CHECK(ps_names_set_info(&n, 100, 7, "tcp://x:1", err, sizeof err) == PS_OK);
    CHECK(!strcmp(ps_names_agent(&n, 100), "tcp://x:1") && n.info_cap > 100);
    ps_cluster_free(&c);
    ps_names_free(&n);

    bad(HEAD "processor p2 class=c cpu=4 mem=8GiB net=1GB/s id=-1\n", "3:50",
        "id= must be a whole number from 0 to 18446744073709551615, not '-1'");
    bad(HEAD "processor p2 class=c cpu=4 mem=8GiB net=1GB/s id=18446744073709551616\n", "3:50",
        "id= must be a whole number");
    bad(HEAD "processor p2 class=c cpu=4 mem=8GiB net=1GB/s id=0x10\n", "3:50",
        "id= must be a whole number");
    bad(HEAD "processor p2 class=c cpu=4 mem=8GiB net=1GB/s agent=udp://x:1\n", "3:53",
        "agent= must be a tcp://, ipc:// or tls+tcp:// address, not 'udp://x:1'");
    bad(HEAD "processor p2 class=c cpu=4 mem=8GiB net=1GB/s agent=tcp://\n", "3:53",
        "agent= must be a tcp://");
    /* Two processors, one id: explicit, or an explicit one equal to another's default. */
    bad(HEAD "processor p2 class=c cpu=4 mem=8GiB net=1GB/s id=5\n"
             "processor p3 class=c cpu=4 mem=8GiB net=1GB/s id=5\n",
        "4:50", "processor 'p3' has id 5, the id of 'p2' (line 3)");
    char text[512];
    snprintf(text, sizeof text, HEAD "processor p2 class=c cpu=4 mem=8GiB net=1GB/s id=%llu\n",
             (unsigned long long)ps_processor_default_id("p1"));
    bad(text, "3:50", "the id of 'p1' (line 2) by default: a hash of its name");
}

/* The loopback example of docs/manage.md: ids 1 to 4, one agent for all. */
static void test_loopback_example(void)
{
    ps_cluster c;
    ps_names n;
    int rc = ps_workload_load_file(PRESHIFT_SOURCE_DIR "/docs/examples/loopback.workloads", NULL,
                                   &c, &n, err, sizeof err);
    CHECKF(rc == PS_OK, "%s", err);
    if (rc) return;
    CHECK(c.n_processors == 4 && c.n_workloads == 6 && c.n_edges == 3);
    for (uint32_t p = 0; p < 4; p++) {
        CHECK(ps_names_processor_id(&n, p) == p + 1);
        CHECK(!strcmp(ps_names_agent(&n, p), "ipc://preshift-agent.ipc"));
    }
    ps_cluster_free(&c);
    ps_names_free(&n);
}

/* One declaration at a time, as the manager's control socket takes them. */
static void test_decl(void)
{
    ps_decl d;
#define DECL(t) ps_workload_parse_decl(t, strlen(t), "request", &d, err, sizeof err)
    CHECKF(DECL("processor p9 class=c cpu=2 mem=1GiB net=1Gbit/s agent=tcp://h:1 # new\n") == PS_OK,
           "%s", err);
    CHECK(d.kind == PS_DECL_PROCESSOR && !strcmp(d.name, "p9") && !strcmp(d.cls, "c"));
    CHECK(d.cpu == 2 && d.mem == 1073741824.0 && d.net == 125e6 && d.alive == 1);
    CHECK(d.id == ps_processor_default_id("p9") && !strcmp(d.agent, "tcp://h:1"));
    CHECKF(DECL("workload w on=nowhere cpu=500m state=1MB group=g") == PS_OK, "%s", err);
    CHECK(d.kind == PS_DECL_WORKLOAD && !strcmp(d.on, "nowhere") && d.cpu == 0.5);
    CHECK(d.state == 1e6 && d.criticality == 1 && !strcmp(d.group, "g"));
    CHECKF(DECL("class gpu") == PS_OK, "%s", err);
    CHECK(d.kind == PS_DECL_CLASS && !strcmp(d.name, "gpu"));
    CHECKF(DECL("depends b on a1, a2") == PS_OK, "%s", err);
    CHECK(d.kind == PS_DECL_EDGES && d.n_edges == 2 && !strcmp(d.edges[1][0], "a2"));
    CHECK(!strcmp(d.edges[1][1], "b"));
    CHECKF(DECL("flow x -> y -> z") == PS_OK, "%s", err);
    CHECK(d.kind == PS_DECL_EDGES && d.n_edges == 2 && !strcmp(d.edges[1][0], "y"));
    CHECK(DECL("") == PS_WL_EPARSE && err_has("request:1:1: expected a declaration"));
    CHECK(DECL("class a\nclass b") == PS_WL_EPARSE && err_has("one declaration at a time"));
    CHECK(DECL("workload w cpu=1") == PS_WL_EPARSE && err_has("request:1:1: workload 'w' needs"));
    CHECK(DECL("remove workload w") == PS_WL_EPARSE && err_has("unknown declaration 'remove'"));
#undef DECL
}

static void test_names(void)
{
    ps_names n;
    ps_names_init(&n);
    uint32_t s = 99;
    CHECK(ps_name_add(&n.workloads, "a", 10, &s, err, sizeof err) == PS_OK && s == 0);
    CHECK(ps_name_add(&n.workloads, "b", 10, &s, err, sizeof err) == PS_OK && s == 1);
    CHECK(ps_name_add(&n.workloads, "c", 10, &s, err, sizeof err) == PS_OK && s == 2);
    CHECK(ps_name_add(&n.workloads, "b", 10, &s, err, sizeof err) == PS_CLUSTER_EEXISTS && s == 1);
    CHECK(ps_name_add(&n.workloads, "bad name", 10, &s, err, sizeof err) == PS_EINVAL);
    CHECKF(err_has("a space cannot appear in a name"), "%s", err);
    CHECK(ps_name_add(&n.workloads, "x->y", 10, &s, err, sizeof err) == PS_EINVAL);
    ps_name_remove(&n.workloads, 1);
    CHECK(ps_name_find(&n.workloads, "b") == PS_NONE && ps_name_of(&n.workloads, 1) == NULL);
    CHECK(ps_name_find(&n.workloads, "c") == 2);
    /* The lowest free slot is reused. */
    CHECK(ps_name_add(&n.workloads, "d", 10, &s, err, sizeof err) == PS_OK && s == 1);
    CHECK(ps_name_add(&n.workloads, "e", 4, &s, err, sizeof err) == PS_OK && s == 3);
    CHECK(ps_name_add(&n.workloads, "f", 4, &s, err, sizeof err) == PS_CLUSTER_ECONFLICT);
    CHECKF(err_has("no free slot for 'f'"), "%s", err);
    CHECK(ps_name_set(&n.workloads, 7, "g", err, sizeof err) == PS_OK);
    CHECK(ps_name_set(&n.workloads, 7, "h", err, sizeof err) == PS_CLUSTER_EEXISTS);
    CHECK(ps_name_set(&n.workloads, 8, "g", err, sizeof err) == PS_CLUSTER_EEXISTS);
    CHECK(ps_name_find(&n.workloads, "g") == 7 && n.workloads.count == 5);
    /* Groups start at 1. */
    CHECK(ps_name_add(&n.groups, "g", 5, &s, err, sizeof err) == PS_OK && s == 1);
    CHECK(ps_name_set(&n.groups, 0, "z", err, sizeof err) == PS_EINVAL);

    /* Many names, removed and found again: the hash's growth and deletion. */
    char name[32];
    for (uint32_t i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "proc-%u", i);
        CHECK(ps_name_add(&n.processors, name, PS_NONE, &s, err, sizeof err) == PS_OK && s == i);
    }
    for (uint32_t i = 0; i < 5000; i += 3)
        ps_name_remove(&n.processors, i);
    int bad_lookups = 0;
    for (uint32_t i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "proc-%u", i);
        uint32_t want = i % 3 == 0 ? PS_NONE : i;
        if (ps_name_find(&n.processors, name) != want) bad_lookups++;
    }
    CHECK(bad_lookups == 0);
    CHECK(n.processors.count == 5000 - 1667);
    ps_names_free(&n);
    CHECK(n.processors.count == 0 && n.groups.first == 1);
}

int main(void)
{
    test_good();
    test_example();
    test_write_round_trip();
    test_errors();
    test_ids_agents();
    test_loopback_example();
    test_decl();
    test_names();
    return test_finish("test_workload_file");
}
