/*
 * serve_config.h - the configuration of `preshift serve`: defaults, flags,
 * an optional file, checks, and the effective configuration printed at start.
 *
 * One table of options serves both the command line and the file: a file
 * line `max-processors = 5000` is the flag `--max-processors 5000`. The file
 * is applied first and the flags after it, so a flag overrides the file.
 * Every value is copied into the struct, so nothing points into argv or into
 * a file buffer after parsing.
 */
#ifndef PRESHIFT_SERVE_CONFIG_H
#define PRESHIFT_SERVE_CONFIG_H

#include "core/scorer.h"
#include "kernels/kernels.h"

#include <stdio.h>

#define PS_SERVE_STR_MAX 1024

typedef struct ps_serve_config {
    /* Addresses: tcp://, ipc://, tls+tcp:// ("off" = no PUB socket / no HTTP). */
    char listen[PS_SERVE_STR_MAX];  /* REP socket, scoring requests */
    char publish[PS_SERVE_STR_MAX]; /* PUB socket, scored records */
    char http[PS_SERVE_STR_MAX];    /* http:// or https://, /metrics /healthz /readyz */
    char tls_cert[PS_SERVE_STR_MAX];
    char tls_key[PS_SERVE_STR_MAX];
    char tls_ca[PS_SERVE_STR_MAX]; /* "" = clients need no certificate */
    char model[PS_SERVE_STR_MAX];  /* "" = $PRESHIFT_MODEL, else the source tree's default */
    char state[PS_SERVE_STR_MAX];  /* snapshot file, "off" = none */

    long metrics;          /* K; 0 = the model's (a multivariate model fixes K) */
    long max_processors;   /* scorer slots */
    long warmup;           /* ticks kept per processor before it is scored */
    long contexts;         /* REP contexts: requests in flight at once */
    long max_batch;        /* heartbeats per tick */
    long max_queue;        /* heartbeats waiting for a tick before `busy` */
    double batch_delay;    /* seconds from the first queued heartbeat to the tick */
    double stale_after;    /* seconds without a heartbeat before a processor is stale */
    double snapshot_every; /* seconds between snapshots of the state file */
    double evict_after;    /* seconds of silence before a processor is forgotten; 0 = never */

    ps_backend_kind backend;
    long threads;
    int quiet;
    ps_scorer_config scorer; /* tuning; processors, metrics, warmup are set at start */
} ps_serve_config;

void ps_serve_config_default(ps_serve_config *c);

/*
 * Apply a config file (when argv names one with --config) and then the
 * flags. 0 = run; 1 = --help was asked for (usage printed to stdout);
 * -1 = error, message in err (exit status 2).
 */
int ps_serve_config_parse(ps_serve_config *c, int argc, char **argv, char *err, size_t errlen);

/* Apply one `key = value` file; -1 with "FILE:LINE: ..." in err. */
int ps_serve_config_load_file(ps_serve_config *c, const char *path, char *err, size_t errlen);

/* Checks across options (address schemes, TLS files, sizes); 0 or -1. */
int ps_serve_config_check(const ps_serve_config *c, char *err, size_t errlen);

/* The model file `serve` loads (c->model, $PRESHIFT_MODEL or the default). */
const char *ps_serve_model_path(const ps_serve_config *c, char *buf, size_t buflen);

/* For people: the effective options, each default told in words. */
void ps_serve_config_print(const ps_serve_config *c, FILE *out);
/* For ps_serve_config_load_file: every option of c (empty ones left out) as key = value. */
void ps_serve_config_write(const ps_serve_config *c, FILE *out);
void ps_serve_usage(FILE *out);

#endif
