/*
 * procfs.c - parsers of /proc text, the reader, and the metrics of procfs.h.
 */
#include "procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const names[PS_PROCFS_K] = {"cpu",    "mem",     "net_rx",
                                               "net_tx", "disk_rd", "disk_wr"};

const char *ps_procfs_metric_name(int i)
{
    return i >= 0 && i < PS_PROCFS_K ? names[i] : "-";
}

/* ---- text helpers ---------------------------------------------------------------- */

static const char *skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/*
 * A decimal uint64 after optional blanks: 1 parsed (p advanced past it),
 * 0 no digits there, -1 overflow.
 */
static int parse_u64(const char **pp, uint64_t *out)
{
    const char *p = skip_blanks(*pp);
    if (*p < '0' || *p > '9') return 0;
    uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    *pp = p;
    return 1;
}

/* After the last field of a line: optional blanks, then the newline. */
static int line_ends(const char *p)
{
    p = skip_blanks(p);
    return *p == '\n';
}

/* Text as /proc gives it: not empty (unless allowed), ending with a newline. */
static int whole_text(const char *text, bool may_be_empty, char *err, size_t errlen)
{
    size_t n = strlen(text);
    if (n == 0 && !may_be_empty) {
        snprintf(err, errlen, "empty");
        return -1;
    }
    if (n > 0 && text[n - 1] != '\n') {
        snprintf(err, errlen, "truncated: the last line does not end");
        return -1;
    }
    return 0;
}

/* Why a line of counters stopped at p before its newline. */
static const char *problem(const char *p)
{
    p = skip_blanks(p);
    return *p == '\0' ? "line truncated" : *p == '\n' ? "too few counters" : "malformed line";
}

/* The value after `key` at the start of a line ("MemTotal:"), or NULL. */
static const char *find_key(const char *text, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = text; *p;) {
        if (!strncmp(p, key, n)) return p + n;
        const char *nl = strchr(p, '\n');
        if (!nl) break;
        p = nl + 1;
    }
    return NULL;
}

static const char *next_line(const char *p)
{
    const char *nl = strchr(p, '\n');
    return nl ? nl + 1 : p + strlen(p);
}

/* Copy the line at p (without its newline) for a message, cut short. */
static const char *excerpt(const char *p, char *buf, size_t cap)
{
    size_t n = strcspn(p, "\n");
    if (n >= cap) n = cap - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return buf;
}

/* ---- /proc/stat --------------------------------------------------------------------- */

int ps_procfs_parse_stat(const char *text, ps_procfs_cpu *out, char *err, size_t errlen)
{
    if (whole_text(text, false, err, errlen)) return -1;
    const char *line = NULL;
    int ncpu = 0;
    for (const char *p = text; *p; p = next_line(p)) {
        if (!strncmp(p, "cpu", 3)) {
            if (p[3] == ' ' || p[3] == '\t') {
                if (!line) line = p;
            } else if (p[3] >= '0' && p[3] <= '9') {
                ncpu++;
            }
        }
    }
    if (!line) {
        snprintf(err, errlen, "no aggregate 'cpu' line (is this /proc/stat?)");
        return -1;
    }
    uint64_t v[10], total = 0;
    int n = 0;
    const char *p = line + 3;
    for (int rv; n < 10 && (rv = parse_u64(&p, &v[n])) != 0; n++)
        if (rv < 0) {
            snprintf(err, errlen, "'cpu' line: field %d overflows 64 bits", n + 1);
            return -1;
        }
    if (!line_ends(p)) {
        char ex[80];
        snprintf(err, errlen, "'cpu' line is %s: '%s'", *skip_blanks(p) ? "malformed" : "truncated",
                 excerpt(line, ex, sizeof ex));
        return -1;
    }
    if (n < 4) {
        snprintf(err, errlen, "'cpu' line has %d fields, at least 4 expected", n);
        return -1;
    }
    /* user nice system idle iowait irq softirq steal; guest and guest_nice
     * are already inside user and nice. */
    int used = n < 8 ? n : 8;
    for (int i = 0; i < used; i++) {
        if (total > UINT64_MAX - v[i]) {
            snprintf(err, errlen, "'cpu' line: the sum overflows 64 bits");
            return -1;
        }
        total += v[i];
    }
    if (ncpu == 0) {
        snprintf(err, errlen, "no 'cpuN' lines: cannot count the CPUs");
        return -1;
    }
    out->total = total;
    out->idle = v[3] + (n > 4 ? v[4] : 0);
    out->ncpu = ncpu;
    return 0;
}

/* ---- /proc/meminfo ------------------------------------------------------------------- */

/* "Key:   123 kB\n" -> bytes; 1 found, 0 absent, -1 malformed (err set). */
static int meminfo_value(const char *text, const char *key, uint64_t *out, char *err, size_t errlen)
{
    const char *p = find_key(text, key);
    if (!p) return 0;
    uint64_t v;
    int rv = parse_u64(&p, &v);
    if (rv <= 0) {
        snprintf(err, errlen, "%s %s", key, rv < 0 ? "overflows 64 bits" : "is not a number");
        return -1;
    }
    p = skip_blanks(p);
    uint64_t unit = 1;
    if (!strncmp(p, "kB", 2)) {
        unit = 1024;
        p += 2;
    }
    if (!line_ends(p)) {
        snprintf(err, errlen, "%s line is %s", key, *skip_blanks(p) ? "malformed" : "truncated");
        return -1;
    }
    if (v > UINT64_MAX / unit) {
        snprintf(err, errlen, "%s overflows 64 bits in bytes", key);
        return -1;
    }
    *out = v * unit;
    return 1;
}

int ps_procfs_parse_meminfo(const char *text, ps_procfs_mem *out, char *err, size_t errlen)
{
    if (whole_text(text, false, err, errlen)) return -1;
    uint64_t total = 0, avail = 0, free_ = 0, buffers = 0, cached = 0;
    int rv = meminfo_value(text, "MemTotal:", &total, err, errlen);
    if (rv < 0) return -1;
    if (rv == 0 || total == 0) {
        snprintf(err, errlen,
                 rv == 0 ? "no MemTotal line (is this /proc/meminfo?)" : "MemTotal is 0");
        return -1;
    }
    rv = meminfo_value(text, "MemAvailable:", &avail, err, errlen);
    if (rv < 0) return -1;
    if (rv == 1) {
        if (avail > total) {
            snprintf(err, errlen, "MemAvailable (%llu) exceeds MemTotal (%llu)",
                     (unsigned long long)avail, (unsigned long long)total);
            return -1;
        }
    } else {
        /* Before Linux 3.14: an estimate from free memory and the caches. */
        rv = meminfo_value(text, "MemFree:", &free_, err, errlen);
        if (rv <= 0) {
            if (rv == 0) snprintf(err, errlen, "neither MemAvailable nor MemFree");
            return -1;
        }
        if (meminfo_value(text, "Buffers:", &buffers, err, errlen) < 0 ||
            meminfo_value(text, "Cached:", &cached, err, errlen) < 0)
            return -1;
        avail = free_;
        avail = avail > UINT64_MAX - buffers ? UINT64_MAX : avail + buffers;
        avail = avail > UINT64_MAX - cached ? UINT64_MAX : avail + cached;
        if (avail > total) avail = total;
    }
    out->total = total;
    out->available = avail;
    return 0;
}

/* ---- /proc/net/dev -------------------------------------------------------------------- */

int ps_procfs_parse_netdev(const char *text, ps_procfs_net *out, char *err, size_t errlen)
{
    if (whole_text(text, false, err, errlen)) return -1;
    uint64_t rx = 0, tx = 0;
    int headers = 0, ifaces = 0, lineno = 0;
    for (const char *p = text; *p; p = next_line(p)) {
        lineno++;
        const char *nl = strchr(p, '\n');
        const char *bar = strchr(p, '|');
        if (bar && (!nl || bar < nl)) {
            headers++;
            continue;
        }
        const char *q = skip_blanks(p);
        if (*q == '\n') continue;
        const char *colon = strchr(q, ':');
        if (!colon || (nl && colon > nl)) {
            char ex[80];
            snprintf(err, errlen, "line %d has no 'interface:': '%s'", lineno,
                     excerpt(p, ex, sizeof ex));
            return -1;
        }
        size_t nlen = (size_t)(colon - q);
        while (nlen && (q[nlen - 1] == ' ' || q[nlen - 1] == '\t'))
            nlen--;
        if (nlen == 0) {
            snprintf(err, errlen, "line %d: empty interface name", lineno);
            return -1;
        }
        uint64_t v[16];
        const char *r = colon + 1;
        int n = 0;
        for (int rv; n < 16 && (rv = parse_u64(&r, &v[n])) != 0; n++)
            if (rv < 0) {
                snprintf(err, errlen, "interface %.*s: field %d overflows 64 bits", (int)nlen, q,
                         n + 1);
                return -1;
            }
        if (n < 16 || !line_ends(r)) {
            snprintf(err, errlen, "interface %.*s: %s (%d of 16 counters)", (int)nlen, q,
                     problem(r), n);
            return -1;
        }
        if (nlen == 2 && !strncmp(q, "lo", 2)) continue;
        /* Counters of different interfaces: a sum that wraps is reported as is,
         * the rate of a counter that went backwards is 0 (ps_procfs_metrics). */
        rx += v[0];
        tx += v[8];
        ifaces++;
    }
    if (headers == 0) {
        snprintf(err, errlen, "no header line (is this /proc/net/dev?)");
        return -1;
    }
    out->rx = rx;
    out->tx = tx;
    out->interfaces = ifaces;
    return 0;
}

/* ---- /proc/diskstats ------------------------------------------------------------------ */

/* The device name of a diskstats line (third field): pointer and length, 0 if none. */
static size_t device_name(const char *line, const char **name)
{
    const char *p = line;
    for (int f = 0; f < 2; f++) {
        p = skip_blanks(p);
        if (*p < '0' || *p > '9') return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    p = skip_blanks(p);
    size_t n = strcspn(p, " \t\n");
    *name = p;
    return n;
}

static bool has_device(const char *text, const char *name, size_t len)
{
    for (const char *p = text; *p; p = next_line(p)) {
        const char *d = NULL;
        size_t n = device_name(p, &d);
        if (n == len && !strncmp(d, name, len)) return true;
    }
    return false;
}

static bool starts_with(const char *s, size_t n, const char *prefix)
{
    size_t m = strlen(prefix);
    return n >= m && !strncmp(s, prefix, m);
}

static bool whole_disk(const char *text, const char *name, size_t len)
{
    if (starts_with(name, len, "loop") || starts_with(name, len, "ram") ||
        starts_with(name, len, "zram") || starts_with(name, len, "dm-") ||
        starts_with(name, len, "md"))
        return false;
    size_t base = len;
    while (base > 0 && name[base - 1] >= '0' && name[base - 1] <= '9')
        base--;
    if (base == len || base == 0) return true;      /* no trailing number */
    if (has_device(text, name, base)) return false; /* sda1 of sda */
    if (base >= 2 && name[base - 1] == 'p' && name[base - 2] >= '0' && name[base - 2] <= '9' &&
        has_device(text, name, base - 1))
        return false; /* nvme0n1p1 of nvme0n1 */
    return true;
}

bool ps_procfs_is_whole_disk(const char *text, const char *name)
{
    return whole_disk(text, name, strlen(name));
}

int ps_procfs_parse_diskstats(const char *text, ps_procfs_disk *out, char *err, size_t errlen)
{
    if (whole_text(text, true, err, errlen)) return -1;
    uint64_t rd = 0, wr = 0;
    int disks = 0, lineno = 0;
    for (const char *p = text; *p; p = next_line(p)) {
        lineno++;
        if (*skip_blanks(p) == '\n') continue;
        const char *name = NULL;
        size_t nlen = device_name(p, &name);
        char ex[80];
        if (nlen == 0) {
            snprintf(err, errlen, "line %d is not 'major minor name ...': '%s'", lineno,
                     excerpt(p, ex, sizeof ex));
            return -1;
        }
        uint64_t v[11];
        const char *r = name + nlen;
        int n = 0;
        for (int rv; n < 11 && (rv = parse_u64(&r, &v[n])) != 0; n++)
            if (rv < 0) {
                snprintf(err, errlen, "device %.*s: field %d overflows 64 bits", (int)nlen, name,
                         n + 4);
                return -1;
            }
        /* Newer kernels append discard and flush counters: numbers up to the newline. */
        uint64_t extra;
        int rv;
        while ((rv = parse_u64(&r, &extra)) > 0)
            ;
        if (rv < 0 || n < 11 || !line_ends(r)) {
            snprintf(err, errlen, "device %.*s: %s (%d of at least 11 counters)", (int)nlen, name,
                     rv < 0 ? "a counter overflows 64 bits" : problem(r), n);
            return -1;
        }
        if (!whole_disk(text, name, nlen)) continue;
        /* sectors read (field 6) and written (field 10), 512 bytes each */
        if (v[2] > UINT64_MAX / 512 || v[6] > UINT64_MAX / 512) {
            snprintf(err, errlen, "device %.*s: sectors overflow 64 bits in bytes", (int)nlen,
                     name);
            return -1;
        }
        rd += v[2] * 512;
        wr += v[6] * 512;
        disks++;
    }
    out->read = rd;
    out->written = wr;
    out->disks = disks;
    return 0;
}

/* ---- /proc/PID/... ------------------------------------------------------------------- */

int ps_procfs_parse_pid_stat(const char *text, uint64_t *cpu_ticks, char *err, size_t errlen)
{
    if (whole_text(text, false, err, errlen)) return -1;
    const char *p = strrchr(text, ')');
    if (!p || !strchr(text, '(')) {
        snprintf(err, errlen, "no '(command)' field (is this /proc/PID/stat?)");
        return -1;
    }
    p++;
    /* field 3: state, a letter */
    p = skip_blanks(p);
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))) {
        snprintf(err, errlen, "field 3 (state) is not a letter");
        return -1;
    }
    p++;
    uint64_t v[2] = {0, 0};
    /* fields 4 .. 13 are integers (tty_nr and tpgid may be negative), 14 utime, 15 stime */
    for (int f = 4; f <= 15; f++) {
        p = skip_blanks(p);
        if (f <= 13 && *p == '-') p++;
        uint64_t x;
        int rv = parse_u64(&p, &x);
        if (rv <= 0 || (*p != ' ' && *p != '\n')) {
            snprintf(err, errlen, "field %d %s", f,
                     rv < 0       ? "overflows 64 bits"
                     : *p == '\0' ? "is missing (truncated)"
                                  : "is not a number");
            return -1;
        }
        if (f >= 14) v[f - 14] = x;
    }
    if (!strchr(p, '\n')) {
        snprintf(err, errlen, "truncated: no end of line");
        return -1;
    }
    if (v[0] > UINT64_MAX - v[1]) {
        snprintf(err, errlen, "utime + stime overflows 64 bits");
        return -1;
    }
    *cpu_ticks = v[0] + v[1];
    return 0;
}

int ps_procfs_parse_pid_status(const char *text, uint64_t *rss, char *err, size_t errlen)
{
    if (whole_text(text, false, err, errlen)) return -1;
    int rv = meminfo_value(text, "VmRSS:", rss, err, errlen);
    if (rv < 0) return -1;
    if (rv == 0) {
        if (!find_key(text, "Name:")) {
            snprintf(err, errlen, "no VmRSS nor Name line (is this /proc/PID/status?)");
            return -1;
        }
        *rss = 0; /* a kernel thread or a zombie */
    }
    return 0;
}

int ps_procfs_parse_pid_io(const char *text, uint64_t *read, uint64_t *written, char *err,
                           size_t errlen)
{
    if (whole_text(text, false, err, errlen)) return -1;
    static const char *const keys[2] = {"read_bytes:", "write_bytes:"};
    uint64_t v[2];
    for (int i = 0; i < 2; i++) {
        const char *p = find_key(text, keys[i]);
        if (!p) {
            snprintf(err, errlen, "no %s line (is this /proc/PID/io?)", keys[i]);
            return -1;
        }
        int rv = parse_u64(&p, &v[i]);
        if (rv <= 0 || !line_ends(p)) {
            snprintf(err, errlen, "%s %s", keys[i],
                     rv < 0            ? "overflows 64 bits"
                     : rv == 0         ? "is not a number"
                     : *skip_blanks(p) ? "is malformed"
                                       : "is truncated");
            return -1;
        }
    }
    *read = v[0];
    *written = v[1];
    return 0;
}

/* ---- metrics ---------------------------------------------------------------------------- */

static double delta(uint64_t a, uint64_t b)
{
    return b >= a ? (double)(b - a) : 0.0;
}

static float clamp01(double x)
{
    return x < 0 ? 0.0f : x > 1 ? 1.0f : (float)x;
}

int ps_procfs_metrics(const ps_procfs_sample *prev, const ps_procfs_sample *cur,
                      float out[PS_PROCFS_K], char *err, size_t errlen)
{
    double dt = cur->t - prev->t;
    if (!(dt > 0)) {
        snprintf(err, errlen, "samples %.6f s apart: time must go forward", dt);
        return -1;
    }
    if (prev->pid != cur->pid) {
        snprintf(err, errlen, "samples of pid %d and pid %d", prev->pid, cur->pid);
        return -1;
    }
    if (cur->cpu.ncpu <= 0 || cur->mem.total == 0) {
        snprintf(err, errlen, "sample without CPU count or MemTotal");
        return -1;
    }
    if (cur->pid) {
        double cpu = cur->pid_cpu >= prev->pid_cpu ? cur->pid_cpu - prev->pid_cpu : 0;
        out[PS_PROCFS_CPU] = clamp01(cpu / dt / cur->cpu.ncpu);
        out[PS_PROCFS_MEM] = clamp01((double)cur->pid_rss / (double)cur->mem.total);
        out[PS_PROCFS_DISK_RD] = (float)(delta(prev->pid_read, cur->pid_read) / dt);
        out[PS_PROCFS_DISK_WR] = (float)(delta(prev->pid_write, cur->pid_write) / dt);
    } else {
        double total = delta(prev->cpu.total, cur->cpu.total);
        double idle = delta(prev->cpu.idle, cur->cpu.idle);
        out[PS_PROCFS_CPU] = total > 0 ? clamp01(1.0 - idle / total) : 0.0f;
        out[PS_PROCFS_MEM] = clamp01(1.0 - (double)cur->mem.available / (double)cur->mem.total);
        out[PS_PROCFS_DISK_RD] = (float)(delta(prev->disk.read, cur->disk.read) / dt);
        out[PS_PROCFS_DISK_WR] = (float)(delta(prev->disk.written, cur->disk.written) / dt);
    }
    out[PS_PROCFS_NET_RX] = (float)(delta(prev->net.rx, cur->net.rx) / dt);
    out[PS_PROCFS_NET_TX] = (float)(delta(prev->net.tx, cur->net.tx) / dt);
    return 0;
}

/* ---- the reader ----------------------------------------------------------------------------- */

int ps_procfs_reader_init(ps_procfs_reader *r, const char *root, int pid, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (!root) root = "/proc";
    if (strlen(root) >= sizeof r->root) {
        snprintf(err, errlen, "procfs root '%s' is too long", root);
        return -1;
    }
    if (pid < 0) {
        snprintf(err, errlen, "pid %d is negative", pid);
        return -1;
    }
    memcpy(r->root, root, strlen(root) + 1);
    r->pid = pid;
    long tck = sysconf(_SC_CLK_TCK);
    r->clk_tck = tck > 0 ? (double)tck : 100.0;
    return 0;
}

void ps_procfs_reader_free(ps_procfs_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
}

/* Read root/name (pid > 0: root/pid/name) into r->buf, NUL-terminated. */
static const char *slurp(ps_procfs_reader *r, int pid, const char *name, char *path, size_t pathlen,
                         char *err, size_t errlen)
{
    if (pid > 0)
        snprintf(path, pathlen, "%s/%d/%s", r->root, pid, name);
    else
        snprintf(path, pathlen, "%s/%s", r->root, name);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s%s", path, strerror(e),
                 pid > 0 && e == ENOENT   ? " (no such process?)"
                 : pid > 0 && e == EACCES ? " (another user's process?)"
                                          : "");
        return NULL;
    }
    size_t len = 0;
    for (;;) {
        if (r->cap - len < 4096) {
            size_t cap = r->cap ? r->cap * 2 : 16384;
            if (cap > ((size_t)64 << 20)) {
                snprintf(err, errlen, "%s: larger than 64 MiB", path);
                close(fd);
                return NULL;
            }
            char *nb = realloc(r->buf, cap);
            if (!nb) {
                snprintf(err, errlen, "%s: out of memory", path);
                close(fd);
                return NULL;
            }
            r->buf = nb;
            r->cap = cap;
        }
        ssize_t got = read(fd, r->buf + len, r->cap - len - 1);
        if (got < 0) {
            if (errno == EINTR) continue;
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            close(fd);
            return NULL;
        }
        if (got == 0) break;
        len += (size_t)got;
    }
    close(fd);
    r->buf[len] = '\0';
    if (strlen(r->buf) != len) {
        snprintf(err, errlen, "%s: holds a NUL byte", path);
        return NULL;
    }
    return r->buf;
}

int ps_procfs_read(ps_procfs_reader *r, ps_procfs_sample *out, char *err, size_t errlen)
{
    ps_procfs_sample s;
    memset(&s, 0, sizeof s);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    s.t = (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
    s.pid = r->pid;
    char path[400], why[256];
    const char *text;
#define READ(pid, name, parse)                                                                     \
    do {                                                                                           \
        if (!(text = slurp(r, pid, name, path, sizeof path, err, errlen))) return -1;              \
        if (parse) {                                                                               \
            snprintf(err, errlen, "%s: %s", path, why);                                            \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)
    READ(0, "stat", ps_procfs_parse_stat(text, &s.cpu, why, sizeof why));
    READ(0, "meminfo", ps_procfs_parse_meminfo(text, &s.mem, why, sizeof why));
    READ(0, "net/dev", ps_procfs_parse_netdev(text, &s.net, why, sizeof why));
    if (r->pid > 0) {
        uint64_t ticks;
        READ(r->pid, "stat", ps_procfs_parse_pid_stat(text, &ticks, why, sizeof why));
        s.pid_cpu = (double)ticks / r->clk_tck;
        READ(r->pid, "status", ps_procfs_parse_pid_status(text, &s.pid_rss, why, sizeof why));
        READ(r->pid, "io",
             ps_procfs_parse_pid_io(text, &s.pid_read, &s.pid_write, why, sizeof why));
    } else {
        READ(0, "diskstats", ps_procfs_parse_diskstats(text, &s.disk, why, sizeof why));
    }
#undef READ
    *out = s;
    return 0;
}
