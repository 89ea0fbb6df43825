/*
 * cmd_manage.c - `preshift manage`: the shifting manager from the command
 * line, and `preshift manage --ctl ADDR REQUEST` to send one request to a
 * running manager's control socket.
 *
 * SIGINT and SIGTERM are blocked before any thread starts (nng's and the
 * manager's inherit the mask) and the main thread waits for them with
 * sigwait, as `preshift serve` does: stopping runs as ordinary code.
 */
#include "commands.h"
#include "manage.h"
#include "manage_config.h"
#include "stop_signals.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

/* One request to a control socket; the answer on stdout. 0 for ok, 1 for an error, 2 usage. */
static int ctl(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: preshift manage --ctl ADDR 'REQUEST'\n");
        return 2;
    }
    char req[65536] = "";
    for (int i = 1; i < argc; i++)
        snprintf(req + strlen(req), sizeof req - strlen(req), "%s%s", i > 1 ? " " : "", argv[i]);
    nng_socket s;
    int rv = nng_req0_open(&s);
    if (rv == 0) rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 10000);
    if (rv == 0) rv = nng_dial(s, argv[0], NULL, 0);
    if (rv == 0) rv = nng_send(s, req, strlen(req), 0);
    char *buf = NULL;
    size_t len = 0;
    if (rv == 0) rv = nng_recv(s, &buf, &len, NNG_FLAG_ALLOC);
    if (rv) {
        fprintf(stderr, "preshift manage: %s: %s\n", argv[0], nng_strerror(rv));
        nng_close(s);
        return 1;
    }
    int ok = len >= 2 && !memcmp(buf, "ok", 2);
    printf("%.*s\n", (int)len, buf);
    nng_free(buf, len);
    nng_close(s);
    return ok ? 0 : 1;
}

int ps_cmd_manage(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--ctl")) return ctl(argc - 2, argv + 2);
    ps_manage_config cfg;
    ps_manage_config_default(&cfg);
    char err[2048];
    int rc = ps_manage_config_parse(&cfg, argc, argv, err, sizeof err);
    if (rc == 1) return 0;
    if (rc < 0) {
        fprintf(stderr, "manage: %s\n(preshift manage --help lists the options)\n", err);
        return 2;
    }
    if (!cfg.quiet) ps_manage_config_print(&cfg, stderr);

    sigset_t stop, old;
    ps_stop_signals_block(&stop, &old);
    ps_manage *m = ps_manage_start(&cfg, err, sizeof err);
    if (!m) {
        fprintf(stderr, "manage: %s\n", err);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return 1;
    }
    if (!cfg.quiet) {
        fprintf(stderr, "preshift manage: ready\n");
        if (strcmp(cfg.http, "off"))
            fprintf(stderr, "  http     %s (port %d)\n", cfg.http, ps_manage_http_port(m));
        fprintf(stderr, "  control  %s\n", cfg.control);
        fflush(stderr);
    }
    int sig = 0;
    sigwait(&stop, &sig);
    if (!cfg.quiet)
        fprintf(stderr, "preshift manage: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    ps_manage_stop(m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!cfg.quiet) fprintf(stderr, "preshift manage: stopped\n");
    return 0;
}
