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
#include "cli.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: preshift bench <benchmark> [options]\n\n"
                 "benchmarks:\n"
                 "  kernels   the LSTM step against OpenBLAS sgemm and PyTorch's LSTMCell\n\n"
                 "'preshift bench kernels --help' lists its options.\n");
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
    fprintf(stderr, "preshift bench: unknown benchmark '%s'\n\n", what);
    usage(stderr);
    return 2;
}
