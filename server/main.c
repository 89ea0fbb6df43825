/*
 * main.c - the preshift command line: one executable, one subcommand each.
 */
#include "commands.h"
#include "kernels/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PRESHIFT_VERSION
#define PRESHIFT_VERSION "unknown"
#endif

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"demo", ps_cmd_demo, "watch a simulated cluster scored and shifted live, against failover"},
    {"train", ps_cmd_train, "train the LSTM forecaster on healthy history (CSV)"},
    {"score", ps_cmd_score, "score CSV series online: Instability Score and PFP per row"},
    {"calibrate", ps_cmd_calibrate, "fit the score-to-PFP map on labelled incidents"},
    {"bench", ps_cmd_bench, "benchmark the kernels against OpenBLAS and PyTorch"},
    {"serve", ps_cmd_serve, "the scoring server: heartbeats in over nng, scores out"},
    {"agent", ps_cmd_agent, "send this machine's metrics to the scoring server as heartbeats"},
    {"manage", ps_cmd_manage, "the shifting manager: moves workloads off processors about to fail"},
    {"sim", ps_cmd_sim, "simulate a cluster on real data: compare failure-handling policies"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: preshift <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-10s %s\n", "version", "print the version and the kernel backend");
    fprintf(out, "\n'preshift <command> --help' describes a command's options.\n");
}

static int version(void)
{
    printf("preshift %s\n", PRESHIFT_VERSION);
    printf("kernel backend (chosen when built): %s\n",
           ps_backend_default_kind() == PS_BACKEND_CUDA ? "cuda" : "cpu");
    char err[256];
    ps_backend *be = ps_backend_init(NULL, err, sizeof err);
    if (!be) {
        printf("backend unavailable here: %s\n", err);
        return 1;
    }
    printf("running on: %s, %s vector code, %d thread(s)\n", ps_backend_name(be),
           ps_backend_isa(be), ps_backend_threads(be));
    ps_backend_free(be);
    return 0;
}

/*
 * Start again with OPENBLAS_CORETYPE set when OpenBLAS fell back to kernels
 * older than the CPU (kernels.h): it reads the variable only when it loads.
 * If the exec fails, go on as we are.
 */
static void run_on_the_right_blas_kernels(char **argv)
{
    const char *core = ps_blas_better_coretype();
    if (!core || setenv("OPENBLAS_CORETYPE", core, 1)) return;
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE");
}

int main(int argc, char **argv)
{
    run_on_the_right_blas_kernels(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "-h") || !strcmp(name, "--help") || !strcmp(name, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(name, "version") || !strcmp(name, "--version")) return version();
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(name, commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "preshift: unknown command '%s'\n\n", name);
    usage(stderr);
    return 2;
}
