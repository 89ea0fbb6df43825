/*
 * blas_core.c - whether OpenBLAS runs kernels made for this CPU
 * (kernels.h, ps_blas_better_coretype).
 *
 * OpenBLAS built with DYNAMIC_ARCH picks its kernels from CPUID when it is
 * loaded. Before 0.3.25 (Debian 12 ships 0.3.21) an Intel CPU it does not
 * know, Sapphire Rapids among them, falls back to the Prescott (SSE3)
 * kernels instead of the newest family it does know (OpenBLAS pull request
 * 4268). On the LSTM step that costs about 15 ms of a 10,000-processor
 * tick on the development machine (docs/kernels.md). The choice can only
 * be made at load time, through OPENBLAS_CORETYPE.
 */
#include "kernels/kernels.h"
#include "vecmath.h"

#include <stdlib.h>
#include <strings.h>

char *openblas_get_corename(void);

const char *ps_blas_better_coretype(void)
{
    if (getenv("OPENBLAS_CORETYPE")) return NULL; /* the user's choice, or ours already */
    const char *core = openblas_get_corename();
    if (!core || strcasecmp(core, "prescott") != 0) return NULL;
    if (ps_vecmath_cpu_has_avx512()) return "SkylakeX";
    if (ps_vecmath_cpu_has_avx2()) return "Haswell";
    return NULL;
}
