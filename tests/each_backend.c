#include "each_backend.h"

#include <stdio.h>

void each_backend(void (*check)(ps_backend *be, void *ctx), void *ctx)
{
    static const ps_isa isas[] = {PS_ISA_PORTABLE, PS_ISA_AVX2, PS_ISA_AVX512};
    char err[256];
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        for (int threads = 1; threads <= 2; threads++) {
            ps_backend_params p = {.kind = PS_BACKEND_CPU, .threads = threads, .isa = isas[i]};
            ps_backend *be = ps_backend_init(&p, err, sizeof err);
            if (!be) {
                printf("skip cpu/%s: %s\n", ps_isa_name(isas[i]), err);
                break;
            }
            check(be, ctx);
            ps_backend_free(be);
        }
    }
    ps_backend *gpu =
        ps_backend_init(&(ps_backend_params){.kind = PS_BACKEND_CUDA}, err, sizeof err);
    if (gpu) {
        check(gpu, ctx);
        ps_backend_free(gpu);
    } else {
        printf("skip cuda: %s\n", err);
    }
}
