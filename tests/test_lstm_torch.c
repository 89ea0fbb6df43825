/*
 * test_lstm_torch.c - every backend's LSTM step against PyTorch itself.
 *
 * test_kernels.c compares the backends with a naive reference written by
 * the same hands as the kernels; a misread of PyTorch's conventions (gate
 * order, which bias, which side of the product is transposed) would be
 * wrong in both and pass there. Here the expected values come from
 * nn.LSTM + nn.Linear (tests/gen_lstm_golden.py writes tests/golden/), so a
 * model trained in PyTorch behaves the same under preshift.
 *
 * Each golden is B sequences of T steps. It runs three ways on every
 * backend: slots 0..B-1 in order; the same slots in a new random row order
 * every step; and many replicas of every sequence at scattered slot numbers
 * of a larger pool, again reshuffled every step - enough rows for the CPU
 * workers to split the step into blocks, and a check that slots nobody named
 * stayed zero. Outputs are prefilled with NaN so an element left unwritten
 * fails. Tolerance: |got - want| <= 1e-5 * max(1, |want|), i.e. absolute
 * below 1 and relative above; float32 sums in a different order than
 * PyTorch's stay well inside it at these sizes.
 */
#include "core/rng.h"
#include "each_backend.h"
#include "testutil.h"

#include "kernels/kernels.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>

#define TOL 1e-5

typedef struct golden {
    char name[32];
    ps_lstm_shape shape;
    int steps, seqs;
    size_t n_params, n_inputs, n_outputs, n_state;
    float *params, *inputs, *outputs, *state;
} golden;

/* A whitespace tokenizer over the whole file that skips '#' comments. */
typedef struct scanner {
    char *p;
    const char *path;
    int failed;
} scanner;

static char *next_token(scanner *sc)
{
    for (;;) {
        while (*sc->p && isspace((unsigned char)*sc->p))
            sc->p++;
        if (*sc->p != '#') break;
        while (*sc->p && *sc->p != '\n')
            sc->p++;
    }
    if (!*sc->p) return NULL;
    char *start = sc->p;
    while (*sc->p && !isspace((unsigned char)*sc->p))
        sc->p++;
    if (*sc->p) *sc->p++ = '\0';
    return start;
}

static void scan_fail(scanner *sc, const char *what)
{
    if (!sc->failed) fprintf(stderr, "%s: %s\n", sc->path, what);
    sc->failed = 1;
}

static void expect_word(scanner *sc, const char *word)
{
    char *t = next_token(sc);
    if (!t || strcmp(t, word) != 0) scan_fail(sc, word);
}

static long scan_long(scanner *sc, long lo, long hi)
{
    char *t = next_token(sc), *end;
    if (!t) {
        scan_fail(sc, "file ends early");
        return lo;
    }
    long v = strtol(t, &end, 10);
    if (*end || v < lo || v > hi) {
        scan_fail(sc, "bad integer");
        return lo;
    }
    return v;
}

/* "<word> <count>" then count floats; count must be what the shape implies. */
static float *scan_section(scanner *sc, const char *word, size_t want)
{
    expect_word(sc, word);
    size_t count = (size_t)scan_long(sc, 0, 100000000);
    if (sc->failed) return NULL;
    if (count != want) {
        scan_fail(sc, "section size does not match the shape");
        return NULL;
    }
    float *v = malloc((count ? count : 1) * sizeof(float));
    if (!v) {
        scan_fail(sc, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        char *t = next_token(sc), *end;
        if (!t) {
            scan_fail(sc, "file ends early");
            break;
        }
        v[i] = strtof(t, &end);
        if (*end || !isfinite(v[i])) {
            scan_fail(sc, "bad number");
            break;
        }
    }
    if (sc->failed) {
        free(v);
        return NULL;
    }
    return v;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len < cap) break;
        char *bigger = realloc(buf, 2 * cap + 1);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

static void golden_free(golden *g)
{
    free(g->params);
    free(g->inputs);
    free(g->outputs);
    free(g->state);
    memset(g, 0, sizeof *g);
}

static int golden_load(golden *g, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/golden/lstm_%s.txt", PRESHIFT_SOURCE_DIR, name);
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    char *text = read_file(path);
    if (!text) {
        fprintf(stderr, "%s: cannot read (regenerate with tests/gen_lstm_golden.py)\n", path);
        return -1;
    }
    scanner sc = {.p = text, .path = path};
    expect_word(&sc, "shape");
    g->shape.input = (int32_t)scan_long(&sc, 1, PS_LSTM_MAX_INPUT);
    g->shape.hidden = (int32_t)scan_long(&sc, 1, PS_LSTM_MAX_HIDDEN);
    g->shape.layers = (int32_t)scan_long(&sc, 1, PS_LSTM_MAX_LAYERS);
    g->shape.output = (int32_t)scan_long(&sc, 1, PS_LSTM_MAX_INPUT);
    expect_word(&sc, "steps");
    g->steps = (int)scan_long(&sc, 1, 10000);
    g->seqs = (int)scan_long(&sc, 1, 10000);
    if (!sc.failed && ps_lstm_shape_check(&g->shape) != PS_OK) scan_fail(&sc, "bad shape");
    if (!sc.failed) {
        size_t tb = (size_t)g->steps * (size_t)g->seqs;
        g->n_params = ps_lstm_param_count(&g->shape);
        g->n_inputs = tb * (size_t)g->shape.input;
        g->n_outputs = tb * (size_t)g->shape.output;
        g->n_state = (size_t)g->seqs * ps_lstm_state_floats(&g->shape);
        g->params = scan_section(&sc, "params", g->n_params);
        g->inputs = scan_section(&sc, "inputs", g->n_inputs);
        g->outputs = scan_section(&sc, "outputs", g->n_outputs);
        g->state = scan_section(&sc, "state", g->n_state);
        if (!sc.failed && next_token(&sc)) scan_fail(&sc, "trailing data");
    }
    free(text);
    if (sc.failed) {
        golden_free(g);
        return -1;
    }
    return 0;
}

/* Error in units of the tolerance's scale: absolute below 1, relative above. */
static double scaled_err(float got, float want)
{
    if (isnan(got)) return INFINITY;
    double w = fabs((double)want);
    return fabs((double)got - (double)want) / (w > 1.0 ? w : 1.0);
}

static void shuffle(ps_rng *rng, size_t *v, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)ps_rng_below(rng, i);
        size_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

typedef enum arrangement {
    IN_ORDER,  /* slot b holds sequence b, rows in order */
    SHUFFLED,  /* same slots, a new row order every step */
    SCATTERED, /* replicas at scattered slots of a larger pool, reshuffled */
} arrangement;

static const char *arrangement_name(arrangement a)
{
    return a == IN_ORDER ? "in order" : a == SHUFFLED ? "shuffled" : "scattered replicas";
}

/*
 * Runs one golden one way on be. A "copy" is one (sequence, replica) pair
 * living in its own slot; each step feeds every copy its sequence's input
 * and expects its sequence's output.
 */
static void run_golden(ps_backend *be, const golden *g, arrangement how, uint64_t seed)
{
    const ps_lstm_shape *s = &g->shape;
    size_t in = (size_t)s->input, out = (size_t)s->output, sf = ps_lstm_state_floats(s);
    size_t seqs = (size_t)g->seqs;
    /* Enough rows for several CPU blocks (at most 512 rows each) per worker. */
    size_t replicas = how == SCATTERED ? (1500 + seqs - 1) / seqs : 1;
    size_t copies = seqs * replicas;
    size_t pool = how == SCATTERED ? 3 * copies + 5 : copies;

    ps_rng rng;
    ps_rng_seed(&rng, seed);
    size_t *copy_seq = malloc(copies * sizeof(size_t)); /* sequence of each copy */
    uint32_t *copy_slot = malloc(copies * sizeof(uint32_t));
    size_t *order = malloc((pool > copies ? pool : copies) * sizeof(size_t));
    uint32_t *slots = malloc(copies * sizeof(uint32_t));
    uint32_t *all = malloc(pool * sizeof(uint32_t));
    unsigned char *used = calloc(pool, 1);
    float *x = malloc(copies * in * sizeof(float));
    float *y = malloc(copies * out * sizeof(float));
    float *state = malloc(pool * sf * sizeof(float));
    if (!copy_seq || !copy_slot || !order || !slots || !all || !used || !x || !y || !state) {
        CHECKF(0, "out of memory");
        goto out;
    }

    for (size_t c = 0; c < copies; c++)
        copy_seq[c] = c % seqs;
    /* Slot numbers: the identity, or the first copies of a shuffled pool. */
    for (size_t i = 0; i < pool; i++)
        order[i] = i;
    if (how == SCATTERED) shuffle(&rng, order, pool);
    for (size_t c = 0; c < copies; c++) {
        copy_slot[c] = (uint32_t)order[c];
        used[order[c]] = 1;
    }
    for (size_t i = 0; i < pool; i++)
        all[i] = (uint32_t)i;

    ps_lstm *lstm = ps_lstm_create(be, s, g->params, pool);
    CHECKF(lstm != NULL, "%s: create: %s", g->name, ps_backend_error(be));
    if (!lstm) goto out;

    double worst = 0;
    size_t worst_t = 0, worst_seq = 0, worst_k = 0;
    float worst_got = 0, worst_want = 0;
    for (int t = 0; t < g->steps; t++) {
        for (size_t c = 0; c < copies; c++)
            order[c] = c;
        if (how != IN_ORDER) shuffle(&rng, order, copies);
        for (size_t r = 0; r < copies; r++) {
            size_t c = order[r], b = copy_seq[c];
            slots[r] = copy_slot[c];
            memcpy(x + r * in, g->inputs + ((size_t)t * seqs + b) * in, in * sizeof(float));
        }
        for (size_t i = 0; i < copies * out; i++)
            y[i] = NAN;
        int rc = ps_lstm_step(lstm, copies, slots, x, y);
        CHECKF(rc == PS_OK, "%s: step %d: %s", g->name, t, ps_backend_error(be));
        if (rc != PS_OK) break;
        for (size_t r = 0; r < copies; r++) {
            size_t b = copy_seq[order[r]];
            const float *want = g->outputs + ((size_t)t * seqs + b) * out;
            for (size_t k = 0; k < out; k++) {
                double e = scaled_err(y[r * out + k], want[k]);
                if (e > worst) {
                    worst = e;
                    worst_t = (size_t)t;
                    worst_seq = b;
                    worst_k = k;
                    worst_got = y[r * out + k];
                    worst_want = want[k];
                }
            }
        }
    }
    CHECKF(worst <= TOL,
           "%s/%s %d thread(s), %s, %s: output t=%zu seq=%zu k=%zu is %.9g, PyTorch %.9g",
           ps_backend_name(be), ps_backend_isa(be), ps_backend_threads(be), g->name,
           arrangement_name(how), worst_t, worst_seq, worst_k, worst_got, worst_want);

    double worst_state = 0;
    size_t stray = 0;
    CHECK(ps_lstm_state_get(lstm, pool, all, state) == PS_OK);
    for (size_t c = 0; c < copies; c++) {
        const float *got = state + (size_t)copy_slot[c] * sf;
        const float *want = g->state + copy_seq[c] * sf;
        for (size_t i = 0; i < sf; i++) {
            double e = scaled_err(got[i], want[i]);
            if (e > worst_state) worst_state = e;
        }
    }
    for (size_t i = 0; i < pool; i++)
        for (size_t j = 0; !used[i] && j < sf; j++)
            stray += state[i * sf + j] != 0.0f;
    CHECKF(worst_state <= TOL, "%s/%s %d thread(s), %s, %s: final state off by %.3g",
           ps_backend_name(be), ps_backend_isa(be), ps_backend_threads(be), g->name,
           arrangement_name(how), worst_state);
    CHECKF(stray == 0, "%s, %s: %zu state values of slots never named are not zero", g->name,
           arrangement_name(how), stray);
    printf("  %-8s %-18s %5zu rows: worst output err %.2g, state err %.2g\n", g->name,
           arrangement_name(how), copies, worst, worst_state);
    ps_lstm_free(lstm);
out:
    free(copy_seq);
    free(copy_slot);
    free(order);
    free(slots);
    free(all);
    free(used);
    free(x);
    free(y);
    free(state);
}

static void run_all(ps_backend *be, const golden *goldens, size_t n)
{
    printf("%s, isa %s, %d thread(s):\n", ps_backend_name(be), ps_backend_isa(be),
           ps_backend_threads(be));
    for (size_t i = 0; i < n; i++)
        for (int how = IN_ORDER; how <= SCATTERED; how++)
            run_golden(be, &goldens[i], (arrangement)how, 77 + i * 3 + (uint64_t)how);
}

typedef struct golden_set {
    golden *g;
    size_t n;
} golden_set;

static void check_each(ps_backend *be, void *ctx)
{
    golden_set *set = ctx;
    run_all(be, set->g, set->n);
}

int main(void)
{
    static const char *names[] = {"h32", "h16_l2", "h8_l3", "h64"};
    enum { NG = sizeof names / sizeof names[0] };
    golden goldens[NG];
    size_t loaded = 0;
    for (size_t i = 0; i < NG; i++) {
        if (golden_load(&goldens[loaded], names[i]) == 0)
            loaded++;
        else
            CHECKF(0, "golden '%s' did not load", names[i]);
    }

    each_backend(check_each, &(golden_set){goldens, loaded});

    for (size_t i = 0; i < loaded; i++)
        golden_free(&goldens[i]);
    return test_finish("test_lstm_torch");
}
