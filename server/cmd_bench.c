/*
 * cmd_bench.c - `preshift bench <what>`: the command line of the benchmarks.
 *
 * Only flags live here; bench/ measures. Each benchmark is a subcommand of
 * its own so that new ones (the server end to end, ARMA) can join without
 * their flags meeting. Every value goes through the shared parsers of
 * cli.h, so a bad one is refused with the flag's name and exit status 2
 * before anything is measured: a long benchmark should not fail half way
 * through on a typo.
 */
#include "bench/bench_kernels.h"
#include "bench/bench_serve.h"
#include "cli.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: preshift bench <benchmark> [options]\n\n"
                 "benchmarks:\n"
                 "  kernels   the LSTM step against OpenBLAS sgemm and PyTorch's LSTMCell\n"
                 "  serve     the scoring server end to end: clients over tcp loopback\n\n"
                 "'preshift bench kernels --help' and 'preshift bench serve --help' list\n"
                 "their options.\n");
}

static void usage_kernels(FILE *out)
{
    fprintf(
        out,
        "usage: preshift bench kernels [options]\n"
        "\n"
        "Times one LSTM step (input 1, output 1, 1 layer, random weights, one slot per\n"
        "row) over a grid of rows x hidden x threads, and in the same run its peers:\n"
        "OpenBLAS's sgemm on the step's product [rows x (1+H)] * [(1+H) x 4H], PyTorch's\n"
        "nn.LSTMCell(1, H) step (CPU, inference mode) and one square sgemm per thread\n"
        "count for the machine's peak. Each measurement: warm-up, then single calls\n"
        "until --min-time has passed and at least 3 ran; the median is reported.\n"
        "steps/s = rows x steps per second; GFLOP/s counts the gemm, 2*rows*(1+H)*4H.\n"
        "\n"
        "options:\n"
        "  --rows LIST           rows (slots) per step, comma-separated\n"
        "                        (default 1000,10000,100000,1000000)\n"
        "  --hidden LIST         hidden sizes (default 32,64)\n"
        "  --threads LIST        thread counts, for preshift's workers, OpenBLAS and\n"
        "                        PyTorch alike (default 1,2)\n"
        "  --min-time SECONDS    timed seconds per measurement, at least 3 runs (default 0.5)\n"
        "  --json                JSON lines on stdout instead of the table, one object per\n"
        "                        measurement: impl (preshift, sgemm, pytorch), shape (step,\n"
        "                        peak), rows, hidden, threads, steps_per_s, gflops,\n"
        "                        median_s, runs, isa; preshift adds vs_pytorch and vs_sgemm\n"
        "                        (its steps/s over the peer's); peak has hidden 0 and m,n,k\n"
        "  --no-pytorch          skip the PyTorch peer\n"
        "  --python PATH         interpreter with torch for the peer (default /usr/bin/python3)\n"
        "  --python-script PATH  the peer script (default $PRESHIFT_PYTORCH_SCRIPT, else\n"
        "                        %s)\n"
        "  --backend KIND        cpu (default) or cuda: cuda adds the CUDA backend's step\n"
        "                        (impl cuda, one host thread) at each rows x hidden, end to\n"
        "                        end with its copies, beside the card's FLOP and memory\n"
        "                        floors (JSON: flop_floor_s, mem_floor_s, vs_floor, vs_cpu);\n"
        "                        where there is no CUDA backend it says so and measures the\n"
        "                        CPU rows as always\n"
        "  --isa ISA             CPU vector code: auto (default), portable, avx2, avx512\n"
        "  -h, --help            this text\n"
        "\n"
        "Progress goes to stderr. Exit status: 0 done, 1 a measurement failed, 2 bad usage.\n",
        ps_bench_pytorch_script());
}

/* "--flag VALUE" or "--flag=VALUE": the value, advancing *i; NULL if absent. */
static const char *flag_value(int argc, char **argv, int *i, const char *flag)
{
    size_t n = strlen(flag);
    const char *a = argv[*i];
    if (strncmp(a, flag, n) != 0) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n] != '\0') return NULL;
    if (*i + 1 >= argc) return "";
    return argv[++*i];
}

static int parse_list(const char *flag, const char *v, long lo, long hi, long *out, size_t *n,
                      char *err, size_t errlen)
{
    int got = ps_parse_long_list(flag, v, lo, hi, out, PS_BENCH_MAX_LIST, err, errlen);
    if (got < 0) return -1;
    *n = (size_t)got;
    return 0;
}

static int bench_kernels(int argc, char **argv)
{
    ps_bench_kernels_opts o;
    ps_bench_kernels_defaults(&o);
    char err[256] = "";
    int bad = 0;
    for (int i = 1; i < argc && !bad; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage_kernels(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            o.json = 1;
        } else if (!strcmp(a, "--no-pytorch")) {
            o.pytorch = 0;
        } else if ((v = flag_value(argc, argv, &i, "--rows"))) {
            bad = parse_list("--rows", v, 1, 100000000, o.rows, &o.n_rows, err, sizeof err);
        } else if ((v = flag_value(argc, argv, &i, "--hidden"))) {
            bad = parse_list("--hidden", v, 1, PS_LSTM_MAX_HIDDEN, o.hidden, &o.n_hidden, err,
                             sizeof err);
        } else if ((v = flag_value(argc, argv, &i, "--threads"))) {
            bad = parse_list("--threads", v, 1, 64, o.threads, &o.n_threads, err, sizeof err);
        } else if ((v = flag_value(argc, argv, &i, "--min-time"))) {
            bad = ps_parse_double("--min-time", v, 0, 3600, &o.min_time, err, sizeof err);
        } else if ((v = flag_value(argc, argv, &i, "--python-script"))) {
            if (!*v) snprintf(err, sizeof err, "--python-script needs a path");
            bad = !*v;
            o.script = v;
        } else if ((v = flag_value(argc, argv, &i, "--python"))) {
            if (!*v) snprintf(err, sizeof err, "--python needs a path");
            bad = !*v;
            o.python = v;
        } else if ((v = flag_value(argc, argv, &i, "--backend"))) {
            bad = ps_parse_backend("--backend", v, &o.backend, err, sizeof err) != 0;
        } else if ((v = flag_value(argc, argv, &i, "--isa"))) {
            static const ps_isa isas[] = {PS_ISA_AUTO, PS_ISA_PORTABLE, PS_ISA_AVX2, PS_ISA_AVX512};
            static const char *names[] = {"auto", "portable", "avx2", "avx512"};
            bad = 1;
            for (size_t k = 0; k < 4; k++)
                if (!strcmp(v, names[k])) {
                    o.isa = isas[k];
                    bad = 0;
                }
            if (bad)
                snprintf(err, sizeof err, "--isa: '%s' is not auto, portable, avx2 or avx512", v);
        } else {
            snprintf(err, sizeof err, "unknown option '%s'", a);
            bad = 1;
        }
    }
    if (bad) {
        fprintf(stderr, "preshift bench kernels: %s\n(see 'preshift bench kernels --help')\n", err);
        return 2;
    }
    return ps_bench_kernels(&o, stdout, stderr);
}

static void usage_serve(FILE *out)
{
    ps_bench_serve_opts d;
    ps_bench_serve_defaults(&d);
    fprintf(out,
            "usage: preshift bench serve [options]\n"
            "\n"
            "Starts a scoring server in this process (tcp loopback, the PUB stream on, HTTP\n"
            "off, the shipped model) and loads it with client threads, each sending its\n"
            "share of the processors' heartbeats as columnar requests, a window of requests\n"
            "in flight. Every processor first goes through its warm-up (not measured); then\n"
            "each run measures for --duration seconds, paced (every processor one heartbeat\n"
            "per second) or as fast as the server answers. Reported: heartbeats and\n"
            "processor-metric values scored per second, request latency percentiles (send\n"
            "to reply, at the client), the end-to-end rate over the server's kernel-only\n"
            "rate in the same run, and the server's time by stage.\n"
            "\n"
            "options:\n"
            "  --processors LIST   processors per run, comma-separated (default "
            "1000,10000,100000)\n"
            "  --metrics K         metrics per heartbeat (default %ld)\n"
            "  --mode MODE         paced, max or both (default both)\n"
            "  --duration S        measured seconds per run (default %g)\n"
            "  --clients N         client threads (default %ld)\n"
            "  --request N         heartbeats per request (default %ld)\n"
            "  --window N          requests in flight per client (default %ld)\n"
            "  --warmup N          the server's --warmup (default %ld)\n"
            "  --batch-delay MS    the server's --batch-delay (default %g)\n"
            "  --threads N         kernel threads, 0 = all cores (default %ld)\n"
            "  --backend KIND      cpu or cuda (default: the build's)\n"
            "  --state DIR         give each run's server a state file in DIR and time its\n"
            "                      stop, which writes the snapshot (JSON: state_mb, stop_s)\n"
            "  --json              JSON lines on stdout, one per run: processors, metrics,\n"
            "                      mode, heartbeats_per_s, values_per_s, p50_ms, p99_ms,\n"
            "                      p999_ms, kernel_values_per_s, e2e_vs_kernels, and per\n"
            "                      stage <stage>_s and <stage>_share\n"
            "  -h, --help          this text\n"
            "\n"
            "Progress goes to stderr. Exit status: 0 done, 1 a run failed, 2 bad usage.\n",
            d.metrics, d.duration, d.clients, d.request, d.window, d.warmup, d.batch_delay * 1000,
            d.threads);
}

static int bench_serve(int argc, char **argv)
{
    ps_bench_serve_opts o;
    ps_bench_serve_defaults(&o);
    char err[256] = "";
    int bad = 0;
    for (int i = 1; i < argc && !bad; i++) {
        const char *a = argv[i], *v;
        double ms = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage_serve(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            o.json = 1;
        } else if ((v = flag_value(argc, argv, &i, "--processors"))) {
            int got = ps_parse_long_list("--processors", v, 1, 10000000, o.processors,
                                         PS_BENCH_SERVE_MAX_LIST, err, sizeof err);
            bad = got < 0;
            if (!bad) o.n_processors = (size_t)got;
        } else if ((v = flag_value(argc, argv, &i, "--metrics"))) {
            bad = ps_parse_long("--metrics", v, 1, 256, &o.metrics, err, sizeof err);
        } else if ((v = flag_value(argc, argv, &i, "--mode"))) {
            o.pace = !strcmp(v, "paced")  ? PS_BENCH_PACED
                     : !strcmp(v, "max")  ? PS_BENCH_MAX
                     : !strcmp(v, "both") ? PS_BENCH_BOTH
                                          : 0;
            bad = o.pace == 0;
            if (bad) snprintf(err, sizeof err, "--mode: '%s' is not paced, max or both", v);
        } else if ((v = flag_value(argc, argv, &i, "--duration"))) {
            bad = ps_parse_double("--duration", v, 0.1, 3600, &o.duration, err, sizeof err);
        } else if ((v = flag_value(argc, argv, &i, "--clients"))) {
            bad = ps_parse_long("--clients", v, 1, 256, &o.clients, err, sizeof err);
        } else if ((v = flag_value(argc, argv, &i, "--request"))) {
            bad = ps_parse_long("--request", v, 1, 65536, &o.request, err, sizeof err);
        } else if ((v = flag_value(argc, argv, &i, "--window"))) {
            bad = ps_parse_long("--window", v, 1, 256, &o.window, err, sizeof err);
        } else if ((v = flag_value(argc, argv, &i, "--warmup"))) {
            bad = ps_parse_long("--warmup", v, 21, 100000, &o.warmup, err, sizeof err);
        } else if ((v = flag_value(argc, argv, &i, "--batch-delay"))) {
            bad = ps_parse_double("--batch-delay", v, 0, 60000, &ms, err, sizeof err);
            o.batch_delay = ms / 1000;
        } else if ((v = flag_value(argc, argv, &i, "--threads"))) {
            bad = ps_parse_long("--threads", v, 0, 64, &o.threads, err, sizeof err);
        } else if ((v = flag_value(argc, argv, &i, "--backend"))) {
            bad = ps_parse_backend("--backend", v, &o.backend, err, sizeof err) != 0;
        } else if ((v = flag_value(argc, argv, &i, "--state"))) {
            if (!*v) snprintf(err, sizeof err, "--state needs a directory");
            bad = !*v;
            o.state_dir = v;
        } else {
            snprintf(err, sizeof err, "unknown option '%s'", a);
            bad = 1;
        }
    }
    if (bad) {
        fprintf(stderr, "preshift bench serve: %s\n(see 'preshift bench serve --help')\n", err);
        return 2;
    }
    return ps_bench_serve(&o, stdout, stderr);
}

int ps_cmd_bench(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *what = argv[1];
    if (!strcmp(what, "-h") || !strcmp(what, "--help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(what, "kernels")) return bench_kernels(argc - 1, argv + 1);
    if (!strcmp(what, "serve")) return bench_serve(argc - 1, argv + 1);
    fprintf(stderr, "preshift bench: unknown benchmark '%s'\n\n", what);
    usage(stderr);
    return 2;
}
