/*
 * kernels.h - the one interface to the numeric kernels.
 *
 * Everything that knows BLAS, SIMD or CUDA sits behind this header. A backend
 * owns the weights of a model and the state of every slot (one slot per
 * processor-metric series); a tick hands it a list of slots and their new
 * inputs, and it returns forecasts. Keeping state inside the backend is what
 * lets the CUDA backend keep it on the device between ticks.
 *
 * The slot list of a step is arbitrary (any subset, any order) but must not
 * repeat a slot: two rows updating one state in one step have no meaning.
 *
 * Functions return 0 on success and a negative PS_E* code on failure;
 * ps_backend_error() describes the last failure on that backend. Nothing here
 * is thread-safe: one thread owns a backend and everything made from it.
 */
#ifndef PRESHIFT_KERNELS_H
#define PRESHIFT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

enum {
    PS_OK = 0,
    PS_EINVAL = -1,  /* bad argument: sizes, slot out of range, null pointer */
    PS_ENOMEM = -2,  /* allocation failed */
    PS_EDEVICE = -3, /* the device or library refused (CUDA, BLAS) */
};

typedef enum ps_backend_kind {
    PS_BACKEND_DEFAULT = 0, /* the one chosen when the project was built */
    PS_BACKEND_CPU,
    PS_BACKEND_CUDA,
} ps_backend_kind;

/* Instruction set of the CPU vector code; AUTO picks the best the CPU has. */
typedef enum ps_isa {
    PS_ISA_AUTO = 0,
    PS_ISA_PORTABLE,
    PS_ISA_AVX2,
    PS_ISA_AVX512,
} ps_isa;

typedef struct ps_backend_params {
    ps_backend_kind kind;
    int threads; /* CPU worker threads; 0 = one per online core */
    ps_isa isa;  /* CPU only; asking for one the CPU lacks is an error */
} ps_backend_params;

typedef struct ps_backend ps_backend;

/* Returns NULL and writes a reason into err (if not NULL) on failure. */
ps_backend *ps_backend_init(const ps_backend_params *params, char *err, size_t errlen);
void ps_backend_free(ps_backend *be);
/* "cpu" or "cuda": for logs. */
const char *ps_backend_name(const ps_backend *be);
/* The vector code the CPU paths run: "avx512", "avx2" or "portable". */
const char *ps_backend_isa(const ps_backend *be);
int ps_backend_threads(const ps_backend *be);
const char *ps_backend_error(const ps_backend *be);
/* Which backend a PS_BACKEND_DEFAULT request gets in this build. */
ps_backend_kind ps_backend_default_kind(void);
const char *ps_isa_name(ps_isa isa);

/*
 * The OPENBLAS_CORETYPE this process should have been started with, or
 * NULL when OpenBLAS already runs kernels made for this CPU (or the
 * variable is set). Older OpenBLAS falls back to its slowest x86-64
 * kernels on CPUs newer than itself; it reads the variable only when it
 * is loaded, so a program that gets a name here re-executes itself with
 * the variable set (server/main.c does).
 */
const char *ps_blas_better_coretype(void);

/*
 * LSTM: shared weights, per-slot hidden and cell state, any number of layers.
 *
 * All parameters sit in one flat float vector, in this order:
 *   for each layer l = 0 .. layers-1:
 *     W_l  [(in_l + hidden) x 4*hidden], row-major
 *     b_l  [4*hidden]
 *   W_y  [hidden x output], row-major
 *   b_y  [output]
 * where in_0 = input and in_l = hidden for l > 0. Column blocks of W_l and
 * b_l are the gates in PyTorch's order i, f, g, o; the rows of W_l are the
 * layer input followed by the previous hidden state, so one step of layer l
 * over a batch is the single product [x_l, h_l] * W_l. PyTorch's two bias
 * vectors (b_ih + b_hh) are summed into b_l.
 *
 *   i = sigmoid(.), f = sigmoid(.), g = tanh(.), o = sigmoid(.)
 *   c' = f*c + i*g,  h' = o*tanh(c'),  y = h'_last * W_y + b_y
 *
 * A slot's state is layers * 2 * hidden floats: for each layer h then c.
 */
typedef struct ps_lstm_shape {
    int32_t input;
    int32_t hidden;
    int32_t layers;
    int32_t output;
} ps_lstm_shape;

#define PS_LSTM_MAX_LAYERS 8
#define PS_LSTM_MAX_HIDDEN 4096
#define PS_LSTM_MAX_INPUT 4096

/* 0 if the shape is within the limits above, PS_EINVAL otherwise. */
int ps_lstm_shape_check(const ps_lstm_shape *shape);
size_t ps_lstm_param_count(const ps_lstm_shape *shape);
/* Offsets into the flat vector of W_l, b_l, W_y and b_y. */
size_t ps_lstm_weight_offset(const ps_lstm_shape *shape, int layer);
size_t ps_lstm_bias_offset(const ps_lstm_shape *shape, int layer);
size_t ps_lstm_head_offset(const ps_lstm_shape *shape);
size_t ps_lstm_state_floats(const ps_lstm_shape *shape);

typedef struct ps_lstm ps_lstm;

/* Copies the parameters; every slot's state starts at zero. */
ps_lstm *ps_lstm_create(ps_backend *be, const ps_lstm_shape *shape, const float *params,
                        size_t slots);
void ps_lstm_free(ps_lstm *lstm);
size_t ps_lstm_slots(const ps_lstm *lstm);

/*
 * One step for n slots: x is n x input (row i belongs to slots[i]), y is
 * n x output and receives the head's output. Every element of y is written.
 */
int ps_lstm_step(ps_lstm *lstm, size_t n, const uint32_t *slots, const float *x, float *y);
/* Zero the state of n slots (a new series, an evicted processor). */
int ps_lstm_reset(ps_lstm *lstm, size_t n, const uint32_t *slots);
/* Copy n slots' state out of / into state (n x ps_lstm_state_floats). */
int ps_lstm_state_get(ps_lstm *lstm, size_t n, const uint32_t *slots, float *state);
int ps_lstm_state_set(ps_lstm *lstm, size_t n, const uint32_t *slots, const float *state);

/*
 * ARMA(p, q) one-step forecasts over many independent series, each slot with
 * its own coefficients. Differencing (the I of ARIMA) is the caller's: the
 * series here is already differenced.
 *
 * A slot's parameters are 1 + p + q floats: the constant c, then phi_1..phi_p,
 * then theta_1..theta_q. Its state is p + q + 1 floats: the last p values
 * (newest first), the last q residuals (newest first), and the forecast of
 * the next value.
 *
 * A step takes each slot's new value w and does, in order:
 *   e      = w - forecast
 *   lags  <- (w, lags...), residual lags <- (e, residual lags...)
 *   forecast = c + sum phi_k * w_{t+1-k} + sum theta_j * e_{t+1-j}
 * and returns e in resid and the new forecast in forecast (either may be
 * NULL). Parameters and state start at zero.
 */
#define PS_ARMA_MAX_ORDER 16

typedef struct ps_arma ps_arma;

ps_arma *ps_arma_create(ps_backend *be, int p, int q, size_t slots);
void ps_arma_free(ps_arma *arma);
size_t ps_arma_slots(const ps_arma *arma);
int ps_arma_set_params(ps_arma *arma, size_t n, const uint32_t *slots, const float *params);
int ps_arma_step(ps_arma *arma, size_t n, const uint32_t *slots, const float *w, float *resid,
                 float *forecast);
int ps_arma_state_get(ps_arma *arma, size_t n, const uint32_t *slots, float *state);
int ps_arma_state_set(ps_arma *arma, size_t n, const uint32_t *slots, const float *state);

#endif
