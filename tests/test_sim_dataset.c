/*
 * test_sim_dataset.c - the simulator's dataset loader (server/sim_dataset.h)
 * on small directories written here (plain and gzip), every kind of
 * malformed input refused with its file, line and column, starting the
 * replay later in the test rows (ps_sim_dataset_skip_test), and one load of
 * the bundled ASD (data/asd/).
 */
#include "kernels/kernels.h"
#include "server/sim_dataset.h"
#include "testutil.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static char root[256];
static int case_no;

/* snprintf that fails the test instead of truncating. */
#define FMT(buf, ...) CHECK(snprintf(buf, sizeof buf, __VA_ARGS__) < (int)sizeof buf)

static void write_file(const char *dir, const char *rel, const char *text, int gz)
{
    char path[512];
    FMT(path, "%s/%s", dir, rel);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        CHECK(f != NULL);
        if (!f) return;
        if (*text) gzwrite(f, text, (unsigned)strlen(text));
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        CHECK(f != NULL);
        if (!f) return;
        fwrite(text, 1, strlen(text), f);
        fclose(f);
    }
}

/* A fresh dataset directory with train/, test/, test_label/ (and interpretation_label/). */
static void new_dir(char *dir, size_t len, int interp)
{
    (void)snprintf(dir, len, "%s/case%d", root, ++case_no);
    CHECK(mkdir(dir, 0755) == 0);
    const char *sub[] = {"train", "test", "test_label", "interpretation_label"};
    for (int k = 0; k < 3 + interp; k++) {
        char p[512];
        FMT(p, "%s/%s", dir, sub[k]);
        CHECK(mkdir(p, 0755) == 0);
    }
}

/* A valid two-column entity. */
static void good_entity(const char *dir, const char *name, int gz)
{
    char rel[128];
    FMT(rel, "train/%s.txt%s", name, gz ? ".gz" : "");
    write_file(dir, rel, "0.1,0.2\n0.3,0.4\n0.5,0.6\n", gz);
    FMT(rel, "test/%s.txt%s", name, gz ? ".gz" : "");
    write_file(dir, rel, "1,2\n3,4\n5,6\n7,8\n", gz);
    FMT(rel, "test_label/%s.txt%s", name, gz ? ".gz" : "");
    write_file(dir, rel, "0\n1\n1\n0\n", gz);
}

static void expect_error(const char *dir, int code, const char *want)
{
    ps_sim_dataset d;
    char err[1024];
    int rc = ps_sim_dataset_load(dir, &d, err, sizeof err);
    CHECKF(rc == code, "%s: rc %d, expected %d (%s)", dir, rc, code, err);
    CHECKF(strstr(err, want) != NULL, "%s: '%s' does not contain '%s'", dir, err, want);
    CHECK(d.n == 0 && d.series == NULL && d.entity == NULL);
    if (rc == 0) ps_sim_dataset_free(&d);
}

static void test_good(void)
{
    char dir[512];
    new_dir(dir, sizeof dir, 1);
    good_entity(dir, "b10", 1); /* gzip */
    good_entity(dir, "b2", 0);
    /* Entity a: CRLF, spaces, trailing blank lines, no final newline in labels. */
    write_file(dir, "train/a.txt", "0.5, 1e-3\r\n -2 ,4\r\n\r\n\n", 0);
    write_file(dir, "test/a.txt", "1,1\n2,2\n3,3\n4,4\n5,5\n6,6\n", 0);
    write_file(dir, "test_label/a.txt", "1\n0\n1\n1\n1\n0", 0);
    write_file(dir, "interpretation_label/a.txt", "0-0:2\n2-3:1,2\n4-4:2\n", 0);
    write_file(dir, "interpretation_label/anomaly_type.txt", "whatever,is,here\n", 0);
    write_file(dir, "train/notes.csv", "not,a,dataset\n", 0);
    write_file(dir, "README.md", "hello\n", 0);
    ps_sim_dataset d;
    char err[1024];
    int rc = ps_sim_dataset_load(dir, &d, err, sizeof err);
    CHECKF(rc == 0, "%s", err);
    if (rc) return;
    CHECK(d.n == 3 && d.cols == 2 && d.has_interpretation);
    CHECK(!strcmp(d.entity[0].name, "a") && !strcmp(d.entity[1].name, "b2") &&
          !strcmp(d.entity[2].name, "b10"));
    const ps_sim_series *a = &d.series[0];
    CHECK(!strcmp(a->name, "a") && a->cols == 2 && a->train_rows == 2 && a->test_rows == 6);
    CHECK(a->train[0] == 0.5f && a->train[1] == 1e-3f && a->train[2] == -2.0f &&
          a->train[3] == 4.0f);
    CHECK(a->test[10] == 6.0f && a->labels[0] == 1 && a->labels[1] == 0 && a->labels[5] == 0);
    CHECK(d.entity[0].n_events == 2);
    CHECK(d.entity[0].events[0].start == 0 && d.entity[0].events[0].end == 0);
    CHECK(d.entity[0].events[1].start == 2 && d.entity[0].events[1].end == 4);
    /* Event 0: metric 2; event 1 (two lines merged): metrics 1 and 2; 0-based. */
    const ps_sim_entity *ea = &d.entity[0];
    CHECK(ea->metric_start && ea->metric_start[0] == 0 && ea->metric_start[1] == 1 &&
          ea->metric_start[2] == 3);
    CHECK(ea->metrics[0] == 1 && ea->metrics[1] == 0 && ea->metrics[2] == 1);
    CHECK(d.entity[1].metric_start == NULL && d.entity[2].metric_start == NULL);
    for (int i = 1; i < 3; i++) {
        const ps_sim_series *b = &d.series[i];
        CHECK(b->train_rows == 3 && b->test_rows == 4);
        CHECK(b->train[5] == 0.6f && b->test[7] == 8.0f);
        CHECK(d.entity[i].n_events == 1 && d.entity[i].events[0].start == 1 &&
              d.entity[i].events[0].end == 2);
    }
    CHECK(d.n_events == 4);

    /* What the loader gives, the simulator takes. */
    ps_sim_config c = ps_sim_config_default();
    c.processors = 3;
    c.workloads = 3;
    c.max_offset = 2;
    c.replica_groups = 0;
    ps_sim_scenario sc;
    rc = ps_sim_scenario_build(&sc, &c, d.series, d.n, err, sizeof err);
    CHECKF(rc == 0, "%s", err);
    if (!rc) {
        CHECK(sc.T == 4 && sc.cols == 2);
        ps_sim_scenario_free(&sc);
    }
    /* Starting 3 test rows in: a's rows 0..2 are history now, its event [2, 4] straddles
       the cut and keeps rows 3 and 4 (test rows 0 and 1 now); b's event [1, 2] is history. */
    CHECK(ps_sim_dataset_skip_test(&d, 4, err, sizeof err) == PS_EINVAL);
    CHECKF(strstr(err, "b2 has 4 test rows") != NULL, "%s", err);
    CHECK(ps_sim_dataset_skip_test(&d, 0, err, sizeof err) == 0 && d.n_events == 4);
    CHECK(ps_sim_dataset_skip_test(&d, 3, err, sizeof err) == 0);
    CHECK(a->train_rows == 5 && a->test_rows == 3 && a->train[3] == 4.0f);
    CHECK(a->train[4] == 1.0f && a->train[9] == 3.0f && a->test[0] == 4.0f && a->test[5] == 6.0f);
    CHECK(a->labels[0] == 1 && a->labels[1] == 1 && a->labels[2] == 0);
    CHECK(d.entity[0].n_events == 1 && d.entity[0].events[0].start == 0 &&
          d.entity[0].events[0].end == 1);
    CHECK(d.entity[0].metric_start == NULL && !d.has_interpretation);
    CHECK(d.series[1].train_rows == 6 && d.series[1].test_rows == 1 && d.entity[1].n_events == 0);
    CHECK(d.series[1].test[0] == 7.0f && d.series[1].train[5] == 0.6f &&
          d.series[1].train[11] == 6.0f);
    CHECK(d.n_events == 1);
    ps_sim_dataset_free(&d);
    CHECK(d.n == 0 && d.series == NULL);

    /* No interpretation_label/: fine. */
    new_dir(dir, sizeof dir, 0);
    good_entity(dir, "x", 0);
    rc = ps_sim_dataset_load(dir, &d, err, sizeof err);
    CHECKF(rc == 0, "%s", err);
    if (!rc) {
        CHECK(d.n == 1 && !d.has_interpretation && d.n_events == 1);
        ps_sim_dataset_free(&d);
    }
}

/* Plain decimals take a fast path: it must give strtod's float, bit for bit. */
static void test_decimals(void)
{
    char dir[512];
    new_dir(dir, sizeof dir, 0);
    enum { N = 6000 };
    static char text[N * 48];
    static char vals[N][40];
    size_t len = 0;
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int digits = 1 + (int)(x % 15), point = (int)((x >> 8) % (uint64_t)(digits + 1));
        char *v = vals[i];
        int k = 0;
        if ((x >> 20) & 1) v[k++] = '-';
        uint64_t y = x >> 24;
        for (int d = 0; d < digits; d++) {
            if (d == point && (x >> 21) % 3) v[k++] = '.';
            v[k++] = (char)('0' + y % 10);
            y = y / 10 ? y / 10 : x * 7 + (uint64_t)d;
        }
        if (i % 97 == 0) k += snprintf(v + k, 8, "e-%d", i % 9); /* strtod's path */
        v[k] = '\0';
        if (i % 89 == 0) snprintf(v, 40, ".%u", (unsigned)(x % 100000));
        if (i % 83 == 0) snprintf(v, 40, "%u.", (unsigned)(x % 1000));
        int w = snprintf(text + len, sizeof text - len, "%s,%s\n", v, v);
        CHECK(w > 0 && (size_t)w < sizeof text - len);
        len += (size_t)w;
    }
    {
        char p[600];
        FMT(p, "%s/train/a.txt", dir);
        FILE *f = fopen(p, "wb");
        fwrite(text, 1, len, f);
        fclose(f);
    }
    write_file(dir, "test/a.txt", "1,1\n", 0);
    write_file(dir, "test_label/a.txt", "0\n", 0);
    ps_sim_dataset d;
    char err[1024];
    int rc = ps_sim_dataset_load(dir, &d, err, sizeof err);
    CHECKF(rc == 0, "%s", err);
    if (rc) return;
    CHECK(d.series[0].train_rows == N);
    int bad = 0;
    for (int i = 0; i < N && bad < 5; i++) {
        float want = (float)strtod(vals[i], NULL);
        if (memcmp(&want, &d.series[0].train[2 * i], sizeof want)) {
            fprintf(stderr, "'%s': %.9g, strtod %.9g\n", vals[i], d.series[0].train[2 * i], want);
            bad++;
        }
    }
    CHECK(bad == 0);
    ps_sim_dataset_free(&d);
}

static void test_refusals(void)
{
    char dir[512], want[600];

    /* Values. */
    struct {
        const char *text, *where, *what;
    } bad[] = {
        {"0.1,0.2\n0.1,abc\n", ":2:2:", "'abc' is not a number"},
        {"0.1,0.2\n0.1,\n", ":2:2:", "empty value"},
        {"0.1,0.2\nnan,1\n", ":2:1:", "not finite"},
        {"0.1,0.2\n1,inf\n", ":2:2:", "not finite"},
        {"0.1,0.2\n1,1e39\n", ":2:2:", "out of the range of a 32-bit float"},
        {"0.1,0.2\n1 2,3\n", ":2:1:", "'1 2' is not a number"},
        {"0.1,0.2\n\n0.3,0.4\n", ":2:", "blank line between rows"},
        {"0.1,0.2\n0.3,0.4,0.5\n", ":2:3:", "3 values, expected 2"},
        {"0.1,0.2\n0.3\n", ":2:2:", "1 values, expected 2"},
        {"", ": ", "no rows"},
        {"\n\n", ": ", "no rows"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        new_dir(dir, sizeof dir, 0);
        good_entity(dir, "a", 0);
        write_file(dir, "train/a.txt", bad[i].text, i % 2); /* plain and gzip alike */
        FMT(want, "%s/train/a.txt%s", dir, bad[i].where);
        expect_error(dir, PS_SIMDATA_EPARSE, want);
        expect_error(dir, PS_SIMDATA_EPARSE, bad[i].what);
    }

    /* Column counts agree across files: the test file is checked against train's. */
    new_dir(dir, sizeof dir, 0);
    good_entity(dir, "a", 0);
    write_file(dir, "test/a.txt", "1,2\n3,4\n5,6,7\n8,9\n", 0);
    FMT(want, "%s/test/a.txt:3:3: 3 values, expected 2 (as in %s/train/a.txt:1)", dir, dir);
    expect_error(dir, PS_SIMDATA_EPARSE, want);
    new_dir(dir, sizeof dir, 0);
    good_entity(dir, "a", 0);
    write_file(dir, "train/b.txt", "1,2,3\n", 0);
    write_file(dir, "test/b.txt", "1,2,3\n", 0);
    write_file(dir, "test_label/b.txt", "0\n", 0);
    FMT(want, "%s/train/b.txt:1:3: 3 values, expected 2", dir);
    expect_error(dir, PS_SIMDATA_EPARSE, want);

    /* NUL byte. */
    new_dir(dir, sizeof dir, 0);
    good_entity(dir, "a", 0);
    {
        char p[600];
        FMT(p, "%s/test/a.txt", dir);
        FILE *f = fopen(p, "wb");
        fwrite("1,2\n3\0,4\n", 1, 9, f);
        fclose(f);
        FMT(want, "%s/test/a.txt:2: NUL byte", dir);
        expect_error(dir, PS_SIMDATA_EPARSE, want);
    }

    /* Labels. */
    new_dir(dir, sizeof dir, 0);
    good_entity(dir, "a", 0);
    write_file(dir, "test_label/a.txt", "0\n1\n0\n2\n", 0);
    FMT(want, "%s/test_label/a.txt:4:1: label '2' is not 0 or 1", dir);
    expect_error(dir, PS_SIMDATA_EPARSE, want);
    new_dir(dir, sizeof dir, 0);
    good_entity(dir, "a", 0);
    write_file(dir, "test_label/a.txt", "0\n1\n0.5\n0\n", 0);
    expect_error(dir, PS_SIMDATA_EPARSE, "label '0.5' is not 0 or 1");
    new_dir(dir, sizeof dir, 0);
    good_entity(dir, "a", 0);
    write_file(dir, "test_label/a.txt", "0\n1\n0\n", 1);
    FMT(want, "%s/test_label/a.txt: 3 labels for 4 test rows", dir);
    expect_error(dir, PS_SIMDATA_EPARSE, want);
    new_dir(dir, sizeof dir, 0);
    good_entity(dir, "a", 0);
    write_file(dir, "test_label/a.txt", "0\n1\n0\n0\n1\n", 0);
    FMT(want, "%s/test_label/a.txt:5: more labels than the 4 test rows", dir);
    expect_error(dir, PS_SIMDATA_EPARSE, want);

    /* Entities must be complete and unambiguous. */
    new_dir(dir, sizeof dir, 0);
    good_entity(dir, "a", 0);
    write_file(dir, "train/b.txt", "1,2\n", 0);
    write_file(dir, "test/b.txt", "1,2\n", 0);
    FMT(want, "%s/train/b.txt has no %s/test_label/b.txt[.gz]", dir, dir);
    expect_error(dir, PS_SIMDATA_EPARSE, want);
    new_dir(dir, sizeof dir, 0);
    good_entity(dir, "a", 0);
    good_entity(dir, "a", 1);
    expect_error(dir, PS_SIMDATA_EPARSE, "both a.txt");
    new_dir(dir, sizeof dir, 0);
    expect_error(dir, PS_SIMDATA_EPARSE, "no NAME.txt or NAME.txt.gz files");
    FMT(dir, "%s/no-such-dataset", root);
    expect_error(dir, PS_SIMDATA_EIO, "cannot open the directory");

    /* Corrupt gzip: a valid header, then garbage. */
    new_dir(dir, sizeof dir, 0);
    good_entity(dir, "a", 0);
    {
        char p[600];
        FMT(p, "%s/test/a.txt.gz", dir);
        FMT(want, "%s/test/a.txt", dir);
        remove(want);
        FILE *f = fopen(p, "wb");
        const unsigned char junk[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xfe, 0x01, 0x02};
        fwrite(junk, 1, sizeof junk, f);
        fclose(f);
        FMT(want, "%s/test/a.txt.gz: corrupt or truncated gzip", dir);
        expect_error(dir, PS_SIMDATA_EPARSE, want);
    }

    /* Interpretation lines. */
    struct {
        const char *text, *where, *what;
    } ib[] = {
        {"1-2:1\n0-1:2\n", ":2:1:", "rows 0-1 are not inside one labelled event"},
        {"1-2:3\n", ":1:2:", "expected a metric number in [1, 2]"},
        {"1-2:0\n", ":1:2:", "expected a metric number in [1, 2]"},
        {"1-2:\n", ":1:2:", "expected a metric number"},
        {"1-2:1;2\n", ":1:2:", "expected ',' or the line's end"},
        {"1:1\n", ":1:1:", "expected start-end:m,m,..."},
        {"2-9:1\n", ":1:1:", "not a range within the 4 test rows"},
    };
    for (size_t i = 0; i < sizeof ib / sizeof ib[0]; i++) {
        new_dir(dir, sizeof dir, 1);
        good_entity(dir, "a", 0);
        write_file(dir, "interpretation_label/a.txt", ib[i].text, 0);
        FMT(want, "%s/interpretation_label/a.txt%s", dir, ib[i].where);
        expect_error(dir, PS_SIMDATA_EPARSE, want);
        expect_error(dir, PS_SIMDATA_EPARSE, ib[i].what);
    }
}

static void test_asd(void)
{
    const char *dir = PRESHIFT_SOURCE_DIR "/data/asd"; /* bundled */
    ps_sim_dataset d;
    char err[1024];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = ps_sim_dataset_load(dir, &d, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECKF(rc == 0, "%s", err);
    if (rc) return;
    printf("test_sim_dataset: ASD loaded in %.0f ms\n",
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    CHECK(d.n == 12 && d.cols == 19 && d.n_events == 76 && d.has_interpretation);
    for (uint32_t i = 0; i < d.n; i++) {
        char name[16];
        FMT(name, "omi-%u", i + 1);
        CHECKF(!strcmp(d.entity[i].name, name), "entity %u is %s", i, d.entity[i].name);
        CHECK(d.series[i].test_rows == 4320);
        CHECK(d.series[i].train_rows == (i == 11 ? 7291u : 8640u));
        CHECK(d.entity[i].metric_start != NULL);
    }
    /* omi-1: first row 0.49,0.50,...; first event 760-765 explained by 15 metrics. */
    CHECK(d.series[0].train[0] == 0.49f && d.series[0].train[18] == 0.38f);
    CHECK(d.entity[0].n_events == 7);
    CHECK(d.entity[0].events[0].start == 760 && d.entity[0].events[0].end == 765);
    CHECK(d.entity[0].metric_start[1] - d.entity[0].metric_start[0] == 15);
    CHECK(d.entity[0].metrics[0] == 3);
    /* omi-11: 757-815 is one labelled event explained by two lines (17 metrics in all). */
    const ps_sim_entity *e = &d.entity[10];
    CHECK(e->n_events == 9 && e->events[1].start == 757 && e->events[1].end == 815);
    CHECK(e->metric_start[2] - e->metric_start[1] == 17);
    ps_sim_dataset_free(&d);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/ps_sim_dataset_XXXXXX");
    if (!mkdtemp(root)) TEST_SKIP("mkdtemp failed: %s", strerror(errno));
    test_good();
    test_decimals();
    test_refusals();
    test_asd();
    if (!test_failures) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    }
    return test_finish("test_sim_dataset");
}
