/*
 * manage_config.h - the configuration of `preshift manage`: defaults, flags,
 * an optional `key = value` file, checks, and the effective configuration
 * printed at start (docs/manage.md, "Configuration").
 *
 * One table of options serves the command line, the file, --help and the
 * printed configuration: a file line `failure-timeout = 10` is the flag
 * `--failure-timeout 10`. The file is applied first, flags after it, so a
 * flag overrides the file; a repeatable flag (--subscribe, --server) given
 * on the command line replaces the file's list.
 */
#ifndef PRESHIFT_MANAGE_CONFIG_H
#define PRESHIFT_MANAGE_CONFIG_H

#include "core/policy.h"
#include "core/threshold.h"

#include <stdio.h>

#define PS_MANAGE_STR_MAX 1024
/* Most scoring servers one manager subscribes to. */
#define PS_MANAGE_MAX_SUBS 16
/* A metric index meaning "not in the heartbeat": utilization from hosted demand. */
#define PS_MANAGE_NO_METRIC (-1)

typedef struct ps_manage_config {
    /* Streams: subscribe[i] is a scoring server's PUB address, server[i] (when
     * n_server > 0) the REP address of the same server, for op latest. */
    char subscribe[PS_MANAGE_MAX_SUBS][PS_MANAGE_STR_MAX];
    int n_subscribe;
    char server[PS_MANAGE_MAX_SUBS][PS_MANAGE_STR_MAX];
    int n_server;
    char workloads[PS_MANAGE_STR_MAX]; /* workload file loaded into an empty store; "" = none */
    int reload_workloads;              /* replace the store's cluster by a changed file */
    char store[PS_MANAGE_STR_MAX];     /* SQLite file */
    char control[PS_MANAGE_STR_MAX];   /* REP socket for run-time changes, or "off" */
    char http[PS_MANAGE_STR_MAX];      /* /metrics /healthz /readyz, or "off" */
    char tls_ca[PS_MANAGE_STR_MAX];    /* for tls+tcp:// streams, servers and agents */
    char tls_cert[PS_MANAGE_STR_MAX];
    char tls_key[PS_MANAGE_STR_MAX];

    ps_policy_config policy;
    ps_threshold_config threshold;

    double failure_timeout;   /* stream seconds without a record before a processor fails */
    double horizon;           /* stream seconds after a shift before its outcome is decided */
    double transfer_timeout;  /* seconds a transfer phase may take (wall clock) */
    double retry_backoff;     /* stream seconds a refusing target is passed over */
    double overload;          /* a target above this share after a shift: disruptive */
    double environment_every; /* stream seconds between environment samples */
    long max_transfers;       /* transfers in flight at most */

    /* Heartbeat metrics that are utilizations (docs/agent.md's order by default). */
    int cpu_metric, mem_metric; /* index or PS_MANAGE_NO_METRIC */
    int net_metric[2];          /* bytes per second, the busier counts */
    int n_net_metric;           /* 0 = none */

    int quiet;
} ps_manage_config;

void ps_manage_config_default(ps_manage_config *c);

/*
 * Apply a config file (when argv names one with --config) and then the
 * flags (argv[0] is the command's name). 0 = run; 1 = --help was asked for
 * (usage printed to stdout); -1 = error, message in err (exit status 2).
 */
int ps_manage_config_parse(ps_manage_config *c, int argc, char **argv, char *err, size_t errlen);

/* Apply one `key = value` file; -1 with "FILE:LINE: ..." in err. */
int ps_manage_config_load_file(ps_manage_config *c, const char *path, char *err, size_t errlen);

/* Checks across options (addresses, pairs, policy and threshold bounds); 0 or -1. */
int ps_manage_config_check(const ps_manage_config *c, char *err, size_t errlen);

/* For people: the effective options. */
void ps_manage_config_print(const ps_manage_config *c, FILE *out);
/* For ps_manage_config_load_file: every option of c (empty ones left out) as key = value. */
void ps_manage_config_write(const ps_manage_config *c, FILE *out);
void ps_manage_usage(FILE *out);

#endif
