/*
 * procfs.h - the six metrics of a heartbeat from Linux's /proc: pure parsers
 * of the files' text, a reader that reads them into a reused buffer, and the
 * rates computed from two successive samples. docs/agent.md lists the
 * metrics, their sources and units.
 *
 * The parsers take NUL-terminated text and never trust it: a missing line or
 * field, a number that is not a number or overflows 64 bits, or a line cut
 * short returns -1 with what was wrong in err (never a crash, never a guess).
 */
#ifndef PRESHIFT_PROCFS_H
#define PRESHIFT_PROCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The metrics of a heartbeat, in this order. */
enum {
    PS_PROCFS_CPU = 0,     /* CPU utilization, fraction 0..1 of all cores */
    PS_PROCFS_MEM = 1,     /* memory used, fraction 0..1 of MemTotal */
    PS_PROCFS_NET_RX = 2,  /* network receive, bytes/s */
    PS_PROCFS_NET_TX = 3,  /* network transmit, bytes/s */
    PS_PROCFS_DISK_RD = 4, /* disk read, bytes/s */
    PS_PROCFS_DISK_WR = 5, /* disk write, bytes/s */
};
#define PS_PROCFS_K 6

/* "cpu", "mem", "net_rx", "net_tx", "disk_rd", "disk_wr"; "-" outside 0..5. */
const char *ps_procfs_metric_name(int i);

/* ---- parsers ------------------------------------------------------------------ */

/* /proc/stat: the aggregate "cpu" line and the number of "cpuN" lines. */
typedef struct ps_procfs_cpu {
    uint64_t total; /* clock ticks of all CPUs: user nice system idle iowait irq softirq steal */
    uint64_t idle;  /* of which idle + iowait */
    int ncpu;       /* "cpuN" lines (online CPUs) */
} ps_procfs_cpu;
int ps_procfs_parse_stat(const char *text, ps_procfs_cpu *out, char *err, size_t errlen);

/* /proc/meminfo, in bytes. available is MemAvailable, or MemFree + Buffers +
 * Cached on kernels older than 3.14 that lack it. */
typedef struct ps_procfs_mem {
    uint64_t total, available;
} ps_procfs_mem;
int ps_procfs_parse_meminfo(const char *text, ps_procfs_mem *out, char *err, size_t errlen);

/* /proc/net/dev: bytes received and sent, summed over every interface but lo. */
typedef struct ps_procfs_net {
    uint64_t rx, tx;
    int interfaces; /* counted (lo excluded) */
} ps_procfs_net;
int ps_procfs_parse_netdev(const char *text, ps_procfs_net *out, char *err, size_t errlen);

/*
 * /proc/diskstats: bytes read and written (sectors x 512, the unit of the
 * file whatever the device's sector size), summed over whole disks only:
 * - skipped: loop*, ram*, zram* (not disks), dm-* and md* (device-mapper and
 *   software RAID sit on top of disks already counted);
 * - skipped: partitions, recognised as a name that is another device's name
 *   in the same file followed by digits, or by 'p' and digits when that
 *   name ends in a digit: sda1 (of sda), nvme0n1p2 (of nvme0n1), mmcblk0p1.
 */
typedef struct ps_procfs_disk {
    uint64_t read, written;
    int disks; /* counted */
} ps_procfs_disk;
int ps_procfs_parse_diskstats(const char *text, ps_procfs_disk *out, char *err, size_t errlen);

/* Whether diskstats counts a device `name`, given the file's text (the rule above). */
bool ps_procfs_is_whole_disk(const char *text, const char *name);

/* /proc/PID/stat: utime + stime, clock ticks (the command may hold spaces and parentheses). */
int ps_procfs_parse_pid_stat(const char *text, uint64_t *cpu_ticks, char *err, size_t errlen);
/* /proc/PID/status: VmRSS in bytes (0 for a kernel thread or zombie, which have none). */
int ps_procfs_parse_pid_status(const char *text, uint64_t *rss, char *err, size_t errlen);
/* /proc/PID/io: read_bytes and write_bytes (storage I/O, not the page cache's rchar/wchar). */
int ps_procfs_parse_pid_io(const char *text, uint64_t *read, uint64_t *written, char *err,
                           size_t errlen);

/* ---- samples and metrics ----------------------------------------------------------- */

/* Counters at one moment. */
typedef struct ps_procfs_sample {
    double t; /* CLOCK_MONOTONIC seconds */
    ps_procfs_cpu cpu;
    ps_procfs_mem mem;
    ps_procfs_net net;
    ps_procfs_disk disk;
    int pid;            /* 0: host metrics only */
    double pid_cpu;     /* utime + stime, seconds */
    uint64_t pid_rss;   /* bytes */
    uint64_t pid_read;  /* bytes, /proc/PID/io read_bytes */
    uint64_t pid_write; /* bytes, /proc/PID/io write_bytes */
} ps_procfs_sample;

/*
 * The six metrics over the interval between two samples (same pid). Host:
 * CPU is 1 - Δidle/Δtotal; memory 1 - available/total at cur. With a pid:
 * CPU is its CPU seconds per second divided by the CPUs, memory RSS/MemTotal,
 * disk its read_bytes and write_bytes; network stays the host's (Linux keeps
 * no per-process network counters). A counter that went backwards (an
 * interface or disk gone, a wrap) counts as 0 for that interval. -1 when the
 * samples do not go forward in time or differ in pid.
 */
int ps_procfs_metrics(const ps_procfs_sample *prev, const ps_procfs_sample *cur,
                      float out[PS_PROCFS_K], char *err, size_t errlen);

/* ---- reading /proc -------------------------------------------------------------------- */

typedef struct ps_procfs_reader {
    char root[256]; /* "/proc", or a directory laid out like it (tests) */
    int pid;
    double clk_tck; /* sysconf(_SC_CLK_TCK) */
    char *buf;      /* reused between reads */
    size_t cap;
} ps_procfs_reader;

/* root NULL = "/proc"; pid 0 = host only. Reads nothing yet; 0 or -1. */
int ps_procfs_reader_init(ps_procfs_reader *r, const char *root, int pid, char *err, size_t errlen);
/* Read and parse every file of a sample; -1 with "PATH: reason" in err. */
int ps_procfs_read(ps_procfs_reader *r, ps_procfs_sample *out, char *err, size_t errlen);
void ps_procfs_reader_free(ps_procfs_reader *r);

#endif
