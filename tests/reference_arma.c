/*
 * reference_arma.c - the ARMA step of kernels.h, one slot at a time, one
 * term at a time, accumulated in double. State is kept in float, as the
 * backends keep it, so that a backend and the reference see the same lags.
 */
#include "reference_arma.h"

void ref_arma_step(int p, int q, const float *params, float *state, size_t n, const uint32_t *slots,
                   const float *w, float *resid, float *forecast)
{
    size_t np = (size_t)(1 + p + q), ns = (size_t)(p + q + 1);
    for (size_t i = 0; i < n; i++) {
        const float *c = params + (size_t)slots[i] * np;
        const float *phi = c + 1, *theta = c + 1 + p;
        float *st = state + (size_t)slots[i] * ns;
        float *wlag = st, *elag = st + p, *fc = st + p + q;

        float e = (float)((double)w[i] - (double)*fc);
        for (int k = p - 1; k > 0; k--)
            wlag[k] = wlag[k - 1];
        if (p > 0) wlag[0] = w[i];
        for (int j = q - 1; j > 0; j--)
            elag[j] = elag[j - 1];
        if (q > 0) elag[0] = e;

        double f = c[0];
        for (int k = 0; k < p; k++)
            f += (double)phi[k] * wlag[k];
        for (int j = 0; j < q; j++)
            f += (double)theta[j] * elag[j];
        *fc = (float)f;
        if (resid) resid[i] = e;
        if (forecast) forecast[i] = (float)f;
    }
}
