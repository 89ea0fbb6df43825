#include "model.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ps_model_init(ps_model *m, const ps_lstm_shape *shape)
{
    memset(m, 0, sizeof *m);
    if (ps_lstm_shape_check(shape) != PS_OK) return PS_EINVAL;
    m->shape = *shape;
    m->params = calloc(ps_lstm_param_count(shape), sizeof(float));
    return m->params ? PS_OK : PS_ENOMEM;
}

void ps_model_free(ps_model *m)
{
    if (!m) return;
    free(m->params);
    free(m->norm_loc);
    free(m->norm_scale);
    memset(m, 0, sizeof *m);
}

void ps_model_init_random(ps_model *m, uint64_t seed)
{
    ps_rng rng;
    ps_rng_seed(&rng, seed);
    float k = 1.0f / sqrtf((float)m->shape.hidden);
    size_t n = ps_lstm_param_count(&m->shape);
    for (size_t i = 0; i < n; i++)
        m->params[i] = ps_rng_uniformf(&rng, -k, k);
    size_t h = (size_t)m->shape.hidden;
    for (int l = 0; l < m->shape.layers; l++) {
        float *b = m->params + ps_lstm_bias_offset(&m->shape, l);
        for (size_t j = 0; j < h; j++)
            b[h + j] = 1.0f;
    }
}
