/*
 * cmd_serve.c - `preshift serve`: the scoring server from the command line.
 *
 * SIGINT and SIGTERM are blocked before any thread starts (nng's and the
 * scoring thread inherit the mask), and the main thread waits for them with
 * sigwait: stopping then runs as ordinary code, not in a signal handler
 * (stop_signals.h routes them there from threads libraries started).
 */
#include "commands.h"
#include "serve.h"
#include "serve_config.h"
#include "stop_signals.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>

static void print_endpoint(const char *what, const char *addr, int port)
{
    if (port)
        fprintf(stderr, "  %-8s %s (port %d)\n", what, addr, port);
    else
        fprintf(stderr, "  %-8s %s\n", what, addr);
}

int ps_cmd_serve(int argc, char **argv)
{
    ps_serve_config cfg;
    ps_serve_config_default(&cfg);
    char err[1024];
    int rc = ps_serve_config_parse(&cfg, argc, argv, err, sizeof err);
    if (rc == 1) return 0;
    if (rc < 0) {
        fprintf(stderr, "serve: %s\n(preshift serve --help lists the options)\n", err);
        return 2;
    }
    if (!cfg.quiet) ps_serve_config_print(&cfg, stderr);

    sigset_t stop, old;
    ps_stop_signals_block(&stop, &old);
    ps_serve *s = ps_serve_start(&cfg, err, sizeof err);
    if (!s) {
        fprintf(stderr, "serve: %s\n", err);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return 1;
    }
    if (!cfg.quiet) {
        char note[PS_SERVE_STR_MAX + 256];
        ps_serve_state_note(s, note, sizeof note);
        fprintf(stderr, "preshift serve: %s\n", note);
        fprintf(stderr, "preshift serve: ready\n");
        print_endpoint("scoring", cfg.listen, ps_serve_port(s, PS_SERVE_REP));
        print_endpoint("stream", cfg.publish, ps_serve_port(s, PS_SERVE_PUB));
        print_endpoint("http", cfg.http, ps_serve_port(s, PS_SERVE_HTTP));
        fflush(stderr);
    }
    int sig = 0;
    sigwait(&stop, &sig);
    if (!cfg.quiet)
        fprintf(stderr, "preshift serve: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    ps_serve_stop(s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!cfg.quiet) fprintf(stderr, "preshift serve: stopped\n");
    return 0;
}
