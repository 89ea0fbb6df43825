/*
 * test_procfs.c - the /proc parsers on fixture text (values, the whole-disk
 * rule, every truncation and a few corruptions of each file answered with an
 * error, never a crash), the six metrics from two samples, the reader on a
 * directory laid out like /proc, and one real sample of this machine.
 */
#include "server/procfs.h"
#include "testutil.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char stat_a[] = "cpu  100 0 100 700 100 0 0 0 50 0\n"
                             "cpu0 50 0 50 350 50 0 0 0 25 0\n"
                             "cpu1 50 0 50 350 50 0 0 0 25 0\n"
                             "intr 1462898 0 9 0 0 0 0 0\n"
                             "ctxt 2345\n"
                             "btime 1700000000\n"
                             "processes 1234\n"
                             "procs_running 1\n"
                             "procs_blocked 0\n"
                             "softirq 1 2 3 4 5 6 7 8 9 10 11\n";
static const char stat_b[] = "cpu  300 0 200 1300 200 0 0 0 70 0\n"
                             "cpu0 150 0 100 650 100 0 0 0 35 0\n"
                             "cpu1 150 0 100 650 100 0 0 0 35 0\n"
                             "ctxt 2400\n";

static const char meminfo[] = "MemTotal:        1000000 kB\n"
                              "MemFree:          100000 kB\n"
                              "MemAvailable:     250000 kB\n"
                              "Buffers:           20000 kB\n"
                              "Cached:           120000 kB\n"
                              "SwapCached:            0 kB\n"
                              "HugePages_Total:       0\n"
                              "Hugepagesize:       2048 kB\n";
static const char meminfo_old[] = "MemTotal:        1000000 kB\n"
                                  "MemFree:          100000 kB\n"
                                  "Buffers:           20000 kB\n"
                                  "Cached:           130000 kB\n";

#define NETDEV_HEAD                                                                                \
    "Inter-|   Receive                                                |  Transmit\n"               \
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "     \
    "drop fifo colls carrier compressed\n"
static const char netdev_a[] =
    NETDEV_HEAD "    lo:    5000      50    0    0    0     0          0         0     5000      "
                "50    0    0    0     0       0          0\n"
                "  eth0:    1000      10    0    0    0     0          0         0     2000      "
                "20    0    0    0     0       0          0\n"
                " wlan0:     500       5    0    0    0     0          0         0        0       "
                "0    0    0    0     0       0          0\n";
static const char netdev_b[] =
    NETDEV_HEAD "    lo:    9000      90    0    0    0     0          0         0     9000      "
                "90    0    0    0     0       0          0\n"
                "  eth0:3000 30 0 0 0 0 0 0 2500 25 0 0 0 0 0 0\n"
                " wlan0:    1500      15    0    0    0     0          0         0      100       "
                "1    0    0    0     0       0          0\n";

static const char diskstats_a[] =
    "   7       0 loop0 100 0 2000 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    "   1       0 ram0 0 0 0 0 0 0 0 0 0 0 0\n"
    "   8       0 sda 1000 10 8000 500 2000 20 16000 900 0 1000 1400 0 0 0 0 0 0\n"
    "   8       1 sda1 900 10 7000 400 1900 20 15000 800 0 900 1200 0 0 0 0 0 0\n"
    " 259       0 nvme0n1 10 0 100 1 20 0 200 2 0 3 3\n"
    " 259       1 nvme0n1p1 10 0 100 1 20 0 200 2 0 3 3\n"
    " 253       0 dm-0 10 0 5000 1 20 0 5000 2 0 3 3 0 0 0 0\n"
    "   9       0 md0 10 0 5000 1 20 0 5000 2 0 3 3 0 0 0 0\n"
    " 179       0 mmcblk0 1 0 10 1 1 0 20 1 0 1 1\n"
    " 179       1 mmcblk0p1 1 0 10 1 1 0 20 1 0 1 1\n"
    "  11       0 sr0 1 0 4 0 0 0 0 0 0 0 0\n";
static const char diskstats_b[] =
    "   7       0 loop0 100 0 9000 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    "   8       0 sda 1000 10 10000 500 2000 20 20000 900 0 1000 1400 0 0 0 0 0 0\n"
    "   8       1 sda1 900 10 9000 400 1900 20 19000 800 0 900 1200 0 0 0 0 0 0\n"
    " 259       0 nvme0n1 10 0 2100 1 20 0 200 2 0 3 3\n"
    " 259       1 nvme0n1p1 10 0 2100 1 20 0 200 2 0 3 3\n"
    " 179       0 mmcblk0 1 0 10 1 1 0 20 1 0 1 1\n"
    "  11       0 sr0 1 0 4 0 0 0 0 0 0 0 0\n";

static const char pid_stat[] =
    "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 "
    "1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
static const char pid_status[] = "Name:\tmy (odd) cmd\n"
                                 "State:\tS (sleeping)\n"
                                 "VmPeak:\t  300000 kB\n"
                                 "VmRSS:\t  100000 kB\n"
                                 "Threads:\t1\n";
static const char kthread_status[] = "Name:\tkworker/0:1\nState:\tI (idle)\nThreads:\t1\n";
static const char pid_io[] = "rchar: 5000\n"
                             "wchar: 6000\n"
                             "syscr: 10\n"
                             "syscw: 20\n"
                             "read_bytes: 4096\n"
                             "write_bytes: 8192\n"
                             "cancelled_write_bytes: 100\n";

static char err[512];

static void test_values(void)
{
    ps_procfs_cpu cpu;
    CHECKF(ps_procfs_parse_stat(stat_a, &cpu, err, sizeof err) == 0, "%s", err);
    CHECK(cpu.total == 1000 && cpu.idle == 800 && cpu.ncpu == 2);

    ps_procfs_mem mem;
    CHECKF(ps_procfs_parse_meminfo(meminfo, &mem, err, sizeof err) == 0, "%s", err);
    CHECK(mem.total == 1000000ull * 1024 && mem.available == 250000ull * 1024);
    CHECK(ps_procfs_parse_meminfo(meminfo_old, &mem, err, sizeof err) == 0);
    CHECK(mem.available == 250000ull * 1024); /* free + buffers + cached */

    ps_procfs_net net;
    CHECKF(ps_procfs_parse_netdev(netdev_a, &net, err, sizeof err) == 0, "%s", err);
    CHECK(net.rx == 1500 && net.tx == 2000 && net.interfaces == 2);
    CHECKF(ps_procfs_parse_netdev(netdev_b, &net, err, sizeof err) == 0, "%s", err);
    CHECK(net.rx == 4500 && net.tx == 2600);

    ps_procfs_disk disk;
    CHECKF(ps_procfs_parse_diskstats(diskstats_a, &disk, err, sizeof err) == 0, "%s", err);
    /* sda, nvme0n1, mmcblk0, sr0 */
    CHECKF(disk.disks == 4, "%d disks", disk.disks);
    CHECK(disk.read == (8000 + 100 + 10 + 4) * 512ull);
    CHECK(disk.written == (16000 + 200 + 20) * 512ull);
    static const char *const whole[] = {"sda", "nvme0n1", "mmcblk0", "sr0", "vdb"};
    static const char *const not_whole[] = {"sda1", "nvme0n1p1", "mmcblk0p1", "loop0", "ram0",
                                            "dm-0", "md0",       "zram0",     "loop7", "md127"};
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++)
        CHECKF(ps_procfs_is_whole_disk(diskstats_a, whole[i]), "%s", whole[i]);
    for (size_t i = 0; i < sizeof not_whole / sizeof not_whole[0]; i++)
        CHECKF(!ps_procfs_is_whole_disk(diskstats_a, not_whole[i]), "%s", not_whole[i]);

    uint64_t ticks = 0, rss = 1, rd = 0, wr = 0;
    CHECKF(ps_procfs_parse_pid_stat(pid_stat, &ticks, err, sizeof err) == 0, "%s", err);
    CHECK(ticks == 300);
    CHECKF(ps_procfs_parse_pid_status(pid_status, &rss, err, sizeof err) == 0, "%s", err);
    CHECK(rss == 100000ull * 1024);
    CHECK(ps_procfs_parse_pid_status(kthread_status, &rss, err, sizeof err) == 0 && rss == 0);
    CHECKF(ps_procfs_parse_pid_io(pid_io, &rd, &wr, err, sizeof err) == 0, "%s", err);
    CHECK(rd == 4096 && wr == 8192);

    CHECK(!strcmp(ps_procfs_metric_name(0), "cpu") && !strcmp(ps_procfs_metric_name(5), "disk_wr"));
    CHECK(!strcmp(ps_procfs_metric_name(6), "-") && !strcmp(ps_procfs_metric_name(-1), "-"));
}

/* ---- bad text --------------------------------------------------------------------- */

typedef int (*parser)(const char *text, char *err, size_t errlen);

static int p_stat(const char *t, char *e, size_t n)
{
    ps_procfs_cpu c;
    return ps_procfs_parse_stat(t, &c, e, n);
}
static int p_meminfo(const char *t, char *e, size_t n)
{
    ps_procfs_mem m;
    return ps_procfs_parse_meminfo(t, &m, e, n);
}
static int p_netdev(const char *t, char *e, size_t n)
{
    ps_procfs_net m;
    return ps_procfs_parse_netdev(t, &m, e, n);
}
static int p_diskstats(const char *t, char *e, size_t n)
{
    ps_procfs_disk m;
    return ps_procfs_parse_diskstats(t, &m, e, n);
}
static int p_pid_stat(const char *t, char *e, size_t n)
{
    uint64_t x;
    return ps_procfs_parse_pid_stat(t, &x, e, n);
}
static int p_pid_status(const char *t, char *e, size_t n)
{
    uint64_t x;
    return ps_procfs_parse_pid_status(t, &x, e, n);
}
static int p_pid_io(const char *t, char *e, size_t n)
{
    uint64_t x, y;
    return ps_procfs_parse_pid_io(t, &x, &y, e, n);
}

/* Parse text[0..len) from a buffer of exactly len + 1 bytes (the sanitizer sees overreads). */
static int parse_prefix(parser p, const char *text, size_t len, char *e, size_t elen)
{
    char *buf = malloc(len + 1);
    memcpy(buf, text, len);
    buf[len] = '\0';
    e[0] = '\0';
    int rv = p(buf, e, elen);
    free(buf);
    return rv;
}

/*
 * Every prefix of text parses or fails with a message, never crashes. A
 * prefix that does not end at a line boundary is truncated and must fail;
 * so must one that ends before the line holding `upto` is complete (NULL:
 * any whole lines will do).
 */
static void truncations(const char *what, parser p, const char *text, const char *upto)
{
    size_t len = strlen(text);
    size_t need = 0;
    if (upto) need = (size_t)(strchr(strstr(text, upto), '\n') - text) + 1;
    int fails = 0, silent = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        char e[256];
        int rv = parse_prefix(p, text, cut, e, sizeof e);
        if (rv != 0 && !e[0]) silent++;
        bool must_fail = cut < need || (cut > 0 && text[cut - 1] != '\n');
        if (must_fail && rv == 0) {
            if (!fails) fprintf(stderr, "%s: cut at %zu parses\n", what, cut);
            fails++;
        }
    }
    CHECKF(fails == 0, "%s: %d truncations parsed", what, fails);
    CHECKF(silent == 0, "%s: %d failures without a message", what, silent);
    CHECKF(parse_prefix(p, text, len, err, sizeof err) == 0, "%s whole: %s", what, err);
}

/* text with `from` replaced by `to` must fail, with `want` in the message. */
static void corrupt(const char *what, parser p, const char *text, const char *from, const char *to,
                    const char *want)
{
    char buf[2048];
    const char *at = strstr(text, from);
    CHECKF(at != NULL, "%s: fixture lacks '%s'", what, from);
    if (!at) return;
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    int rv = parse_prefix(p, buf, strlen(buf), err, sizeof err);
    CHECKF(rv == -1 && strstr(err, want), "%s with '%s' -> '%s': rv %d, '%s' (wanted '%s')", what,
           from, to, rv, err, want);
}

static void test_bad_text(void)
{
    truncations("stat", p_stat, stat_a, "cpu0");
    truncations("meminfo", p_meminfo, meminfo, "MemFree");
    truncations("net/dev", p_netdev, netdev_a, "Inter-");
    truncations("diskstats", p_diskstats, diskstats_a, NULL);
    truncations("PID/stat", p_pid_stat, pid_stat, "1234");
    truncations("PID/status", p_pid_status, pid_status, "Name:");
    truncations("PID/io", p_pid_io, pid_io, "write_bytes");

    corrupt("stat", p_stat, stat_a, "cpu  100", "cpux 100", "no aggregate 'cpu' line");
    corrupt("stat", p_stat, stat_a, "700 100", "7x0 100", "malformed");
    corrupt("stat", p_stat, stat_a, "cpu  100 0 100 700 100 0 0 0 50 0\n", "cpu  1 2 3\n",
            "3 fields");
    corrupt("stat", p_stat, stat_a, "cpu  100", "cpu  99999999999999999999", "overflows");
    corrupt("stat", p_stat, "cpu  1 2 3 4\ncpu0 1 2 3 4\n", "cpu0", "xpu0", "cpuN");
    corrupt("meminfo", p_meminfo, meminfo, "MemTotal", "MemTotl", "MemTotal");
    corrupt("meminfo", p_meminfo, meminfo, "1000000 kB", "lots kB", "not a number");
    corrupt("meminfo", p_meminfo, meminfo, "250000 kB", "2500000 kB", "exceeds MemTotal");
    corrupt("meminfo", p_meminfo, meminfo, "250000 kB", "250000 kB junk", "malformed");
    corrupt("meminfo", p_meminfo, meminfo, "1000000 kB", "99999999999999999 kB", "overflows");
    corrupt("meminfo", p_meminfo, meminfo_old, "MemFree", "MemFre", "neither");
    corrupt("net/dev", p_netdev, netdev_a, "  eth0:", "  eth0 ", "no 'interface:'");
    corrupt("net/dev", p_netdev, netdev_a, "  eth0:    1000      10", "  eth0:    1000      1x0",
            "eth0: malformed");
    corrupt("net/dev", p_netdev, netdev_b, "2500 25 0 0 0 0 0 0\n", "2500 25\n",
            "too few counters");
    corrupt("net/dev", p_netdev, netdev_a, NETDEV_HEAD, "", "no header");
    corrupt("diskstats", p_diskstats, diskstats_a, " 259       0 nvme0n1 10",
            " 259       x nvme0n1 10", "not 'major minor name");
    corrupt("diskstats", p_diskstats, diskstats_a, "sr0 1 0 4 0 0 0 0 0 0 0 0", "sr0 1 0 4 0 0 0 0",
            "sr0: too few counters");
    corrupt("diskstats", p_diskstats, diskstats_a, "sda 1000 10 8000", "sda 1000 10 8k00",
            "sda: malformed");
    corrupt("PID/stat", p_pid_stat, pid_stat, "(my (odd) cmd)", "my odd cmd", "(command)");
    corrupt("PID/stat", p_pid_stat, pid_stat, ") S 1", ") 7 1", "state");
    corrupt("PID/stat", p_pid_stat, pid_stat, " 250 50 ", " 250 5x0 ", "field 15");
    corrupt("PID/status", p_pid_status, kthread_status, "Name:", "Nam:", "no VmRSS nor Name");
    corrupt("PID/status", p_pid_status, pid_status, "VmRSS:\t  100000 kB\nThreads",
            "Nam:\tx\nVmRSS:\t  1z0 kB\nThreads", "VmRSS");
    corrupt("PID/io", p_pid_io, pid_io, "write_bytes: 8192", "write_bytes: -1", "write_bytes");
    corrupt("PID/io", p_pid_io, pid_io, "\nread_bytes", "\nread-bytes", "read_bytes");

    /* Empty text and binary junk. */
    parser all[] = {p_stat, p_meminfo, p_netdev, p_pid_stat, p_pid_status, p_pid_io};
    static const char junk[] = "\x01\x02 ) ( : | \n\n\t9999999999999999999999 :\n";
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        CHECK(parse_prefix(all[i], "", 0, err, sizeof err) == -1 && err[0]);
        CHECK(parse_prefix(all[i], junk, strlen(junk), err, sizeof err) == -1 && err[0]);
    }
    /* diskstats may be empty (no disks) but not junk. */
    CHECK(parse_prefix(p_diskstats, "", 0, err, sizeof err) == 0);
    CHECK(parse_prefix(p_diskstats, junk, strlen(junk), err, sizeof err) == -1 && err[0]);
}

/* ---- metrics ------------------------------------------------------------------------ */

static void host_sample(ps_procfs_sample *s, double t, const char *stat, const char *net,
                        const char *disk)
{
    memset(s, 0, sizeof *s);
    s->t = t;
    CHECK(ps_procfs_parse_stat(stat, &s->cpu, err, sizeof err) == 0);
    CHECK(ps_procfs_parse_meminfo(meminfo, &s->mem, err, sizeof err) == 0);
    CHECK(ps_procfs_parse_netdev(net, &s->net, err, sizeof err) == 0);
    CHECK(ps_procfs_parse_diskstats(disk, &s->disk, err, sizeof err) == 0);
}

static void test_metrics(void)
{
    ps_procfs_sample a, b;
    float x[PS_PROCFS_K];
    host_sample(&a, 10.0, stat_a, netdev_a, diskstats_a);
    host_sample(&b, 12.0, stat_b, netdev_b, diskstats_b);
    CHECKF(ps_procfs_metrics(&a, &b, x, err, sizeof err) == 0, "%s", err);
    CHECK_NEAR(x[PS_PROCFS_CPU], 0.3, 1e-6);     /* 1 - 700 idle / 1000 */
    CHECK_NEAR(x[PS_PROCFS_MEM], 0.75, 1e-6);    /* 1 - 250000 / 1000000 */
    CHECK_NEAR(x[PS_PROCFS_NET_RX], 1500, 1e-3); /* 3000 bytes in 2 s */
    CHECK_NEAR(x[PS_PROCFS_NET_TX], 300, 1e-3);
    /* sda +2000 sectors, nvme0n1 +2000; sr0, mmcblk0 unchanged; loop0 ignored */
    CHECK_NEAR(x[PS_PROCFS_DISK_RD], 4000 * 512 / 2.0, 1e-3);
    CHECK_NEAR(x[PS_PROCFS_DISK_WR], 4000 * 512 / 2.0, 1e-3);

    /* Counters that went backwards (the wlan0 and sda rows are gone): rates 0, not huge. */
    CHECK(ps_procfs_metrics(&b, &(ps_procfs_sample){.t = 13, .cpu = a.cpu, .mem = a.mem}, x, err,
                            sizeof err) == 0);
    for (int i = 0; i < PS_PROCFS_K; i++)
        CHECKF(x[i] >= 0 && x[i] <= 1, "metric %d = %g", i, (double)x[i]);

    /* A process: 3 CPU-seconds in 2 s on 2 CPUs, RSS 100000 kB of 1000000 kB. */
    ps_procfs_sample p = a, q = b;
    p.pid = q.pid = 42;
    p.pid_cpu = 1.0;
    q.pid_cpu = 4.0;
    q.pid_rss = 100000ull * 1024;
    p.pid_read = 1000;
    q.pid_read = 5000;
    p.pid_write = 0;
    q.pid_write = 1 << 20;
    CHECKF(ps_procfs_metrics(&p, &q, x, err, sizeof err) == 0, "%s", err);
    CHECK_NEAR(x[PS_PROCFS_CPU], 0.75, 1e-6);
    CHECK_NEAR(x[PS_PROCFS_MEM], 0.1, 1e-6);
    CHECK_NEAR(x[PS_PROCFS_NET_RX], 1500, 1e-3); /* the host's */
    CHECK_NEAR(x[PS_PROCFS_DISK_RD], 2000, 1e-3);
    CHECK_NEAR(x[PS_PROCFS_DISK_WR], (1 << 20) / 2.0, 1e-3);

    CHECK(ps_procfs_metrics(&b, &a, x, err, sizeof err) == -1 && strstr(err, "forward"));
    CHECK(ps_procfs_metrics(&a, &a, x, err, sizeof err) == -1);
    CHECK(ps_procfs_metrics(&a, &q, x, err, sizeof err) == -1 && strstr(err, "pid"));
}

/* ---- the reader ---------------------------------------------------------------------- */

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECKF(f != NULL, "%s: %s", path, strerror(errno));
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void test_reader(void)
{
    char root[] = "/tmp/ps_procfs_XXXXXX", dir[300];
    if (!mkdtemp(root)) {
        CHECK(!"mkdtemp");
        return;
    }
    snprintf(dir, sizeof dir, "%s/net", root);
    mkdir(dir, 0700);
    snprintf(dir, sizeof dir, "%s/42", root);
    mkdir(dir, 0700);
    write_file(root, "stat", stat_a);
    write_file(root, "meminfo", meminfo);
    write_file(root, "net/dev", netdev_a);
    write_file(root, "diskstats", diskstats_a);
    write_file(root, "42/stat", pid_stat);
    write_file(root, "42/status", pid_status);
    write_file(root, "42/io", pid_io);

    ps_procfs_reader r;
    ps_procfs_sample s;
    CHECK(ps_procfs_reader_init(&r, root, 0, err, sizeof err) == 0);
    CHECKF(ps_procfs_read(&r, &s, err, sizeof err) == 0, "%s", err);
    CHECK(s.pid == 0 && s.cpu.total == 1000 && s.mem.total == 1024000000ull && s.net.rx == 1500 &&
          s.disk.disks == 4 && s.t > 0);
    ps_procfs_reader_free(&r);

    CHECK(ps_procfs_reader_init(&r, root, 42, err, sizeof err) == 0);
    CHECKF(ps_procfs_read(&r, &s, err, sizeof err) == 0, "%s", err);
    CHECK(s.pid == 42 && s.pid_rss == 102400000ull && s.pid_read == 4096 && s.pid_write == 8192);
    CHECK_NEAR(s.pid_cpu, 300.0 / r.clk_tck, 1e-9);
    ps_procfs_reader_free(&r);

    /* A process that is not there, a file that is broken: errors naming the file. */
    CHECK(ps_procfs_reader_init(&r, root, 43, err, sizeof err) == 0);
    CHECK(ps_procfs_read(&r, &s, err, sizeof err) == -1 && strstr(err, "43/stat") &&
          strstr(err, "no such process"));
    ps_procfs_reader_free(&r);
    write_file(root, "meminfo", "MemTotal: 12");
    CHECK(ps_procfs_reader_init(&r, root, 0, err, sizeof err) == 0);
    CHECK(ps_procfs_read(&r, &s, err, sizeof err) == -1 && strstr(err, "meminfo: truncated"));
    ps_procfs_reader_free(&r);

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
}

/* This machine, twice, 100 ms apart; and this process. */
static void test_real(void)
{
    if (access("/proc/stat", R_OK) != 0) {
        printf("no /proc here: real sample not tested\n");
        return;
    }
    for (int pid = 0; pid <= 1; pid++) {
        ps_procfs_reader r;
        ps_procfs_sample a, b;
        float x[PS_PROCFS_K];
        CHECK(ps_procfs_reader_init(&r, NULL, pid ? (int)getpid() : 0, err, sizeof err) == 0);
        CHECKF(ps_procfs_read(&r, &a, err, sizeof err) == 0, "%s", err);
        volatile double burn = 0;
        for (int i = 0; i < 2000000; i++)
            burn += i * 1e-9;
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        CHECKF(ps_procfs_read(&r, &b, err, sizeof err) == 0, "%s", err);
        CHECKF(ps_procfs_metrics(&a, &b, x, err, sizeof err) == 0, "%s", err);
        CHECK(x[PS_PROCFS_CPU] >= 0 && x[PS_PROCFS_CPU] <= 1);
        CHECK(x[PS_PROCFS_MEM] > 0 && x[PS_PROCFS_MEM] < 1);
        for (int i = 2; i < PS_PROCFS_K; i++)
            CHECK(x[i] >= 0);
        printf("%s: cpu %.3f mem %.3f net_rx %.0f net_tx %.0f disk_rd %.0f disk_wr %.0f\n",
               pid ? "this process" : "this machine", (double)x[0], (double)x[1], (double)x[2],
               (double)x[3], (double)x[4], (double)x[5]);
        ps_procfs_reader_free(&r);
    }
}

int main(void)
{
    test_values();
    test_bad_text();
    test_metrics();
    test_reader();
    test_real();
    return test_finish("test_procfs");
}
