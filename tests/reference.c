#include "reference.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double sigmoid(double v)
{
    return 1.0 / (1.0 + exp(-v));
}

void ref_lstm_step(const ps_lstm_shape *s, const float *params, float *state, size_t n,
                   const uint32_t *slots, const float *x, float *y)
{
    size_t h = (size_t)s->hidden, sf = ps_lstm_state_floats(s);
    size_t in_max = (size_t)s->input > h ? (size_t)s->input : h;
    double *in = malloc((in_max + h) * sizeof(double));
    double *gate = malloc(4 * h * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        float *st = state + (size_t)slots[i] * sf;
        size_t width = (size_t)s->input;
        for (size_t j = 0; j < width; j++)
            in[j] = x[i * width + j];
        for (int l = 0; l < s->layers; l++) {
            const float *w = params + ps_lstm_weight_offset(s, l);
            const float *b = params + ps_lstm_bias_offset(s, l);
            float *hs = st + (size_t)l * 2 * h, *cs = hs + h;
            size_t k = width + h;
            for (size_t j = 0; j < h; j++)
                in[width + j] = hs[j];
            for (size_t c = 0; c < 4 * h; c++) {
                double acc = b[c];
                for (size_t r = 0; r < k; r++)
                    acc += in[r] * w[r * 4 * h + c];
                gate[c] = acc;
            }
            for (size_t j = 0; j < h; j++) {
                double ig = sigmoid(gate[j]), fg = sigmoid(gate[h + j]);
                double gg = tanh(gate[2 * h + j]), og = sigmoid(gate[3 * h + j]);
                double c = fg * cs[j] + ig * gg;
                cs[j] = (float)c;
                hs[j] = (float)(og * tanh(c));
                in[j] = hs[j];
            }
            width = h;
        }
        const float *wy = params + ps_lstm_head_offset(s);
        const float *by = wy + h * (size_t)s->output;
        const float *hl = st + (size_t)(s->layers - 1) * 2 * h;
        for (int o = 0; o < s->output; o++) {
            double acc = by[o];
            for (size_t j = 0; j < h; j++)
                acc += (double)hl[j] * wy[j * (size_t)s->output + (size_t)o];
            y[i * (size_t)s->output + (size_t)o] = (float)acc;
        }
    }
    free(in);
    free(gate);
}
