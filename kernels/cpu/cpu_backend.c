/*
 * cpu_backend.c - the CPU backend: OpenBLAS for the products, our own
 * vector code for everything around them, our own threads.
 *
 * Threads: rather than one multi-threaded sgemm followed by a separate pass
 * for the gates, each worker takes a share of the rows and runs a
 * single-threaded sgemm and the gate math on it while it is still in cache
 * (measured better on LSTM-shaped products, whose inner dimension is small).
 * So OpenBLAS itself must run single-threaded: two pools on two cores fight.
 * OpenBLAS's thread count is process-wide, so every step re-asserts it
 * (cheap when already 1) in case someone else changed it meanwhile.
 */
#include "cpu_internal.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void cpu_free(ps_backend *be)
{
    cpu_backend *cpu = cpu_of(be);
    ps_pool_free(cpu->pool);
    free(cpu);
}

static const struct ps_backend_ops cpu_ops = {
    .free = cpu_free,
    .lstm_create = cpu_lstm_create,
    .lstm_free = cpu_lstm_free,
    .lstm_step = cpu_lstm_step,
    .lstm_reset = cpu_lstm_reset,
    .lstm_state_get = cpu_lstm_state_get,
    .lstm_state_set = cpu_lstm_state_set,
    .arma_create = cpu_arma_create,
    .arma_free = cpu_arma_free,
    .arma_set_params = cpu_arma_set_params,
    .arma_step = cpu_arma_step,
    .arma_state_get = cpu_arma_state_get,
    .arma_state_set = cpu_arma_state_set,
};

static const ps_vecmath *pick_vecmath(ps_isa isa, char *err, size_t errlen)
{
    switch (isa) {
    case PS_ISA_AUTO:
        if (ps_vecmath_cpu_has_avx512()) return &ps_vecmath_avx512;
        if (ps_vecmath_cpu_has_avx2()) return &ps_vecmath_avx2;
        return &ps_vecmath_portable;
    case PS_ISA_PORTABLE:
        return &ps_vecmath_portable;
    case PS_ISA_AVX2:
        if (ps_vecmath_cpu_has_avx2()) return &ps_vecmath_avx2;
        break;
    case PS_ISA_AVX512:
        if (ps_vecmath_cpu_has_avx512()) return &ps_vecmath_avx512;
        break;
    }
    if (err) snprintf(err, errlen, "this CPU cannot run the %s code path", ps_isa_name(isa));
    return NULL;
}

void ps_cpu_blas_single_threaded(void)
{
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
}

ps_backend *ps_backend_cpu_init(const ps_backend_params *params, char *err, size_t errlen)
{
    const ps_vecmath *vm = pick_vecmath(params->isa, err, errlen);
    if (!vm) return NULL;
    int threads = params->threads;
    if (threads == 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        threads = online > 0 ? (int)(online < 64 ? online : 64) : 1;
    }

    cpu_backend *cpu = calloc(1, sizeof *cpu);
    if (!cpu) {
        if (err) snprintf(err, errlen, "out of memory");
        return NULL;
    }
    cpu->base.ops = &cpu_ops;
    cpu->base.kind = PS_BACKEND_CPU;
    cpu->base.threads = threads;
    cpu->base.isa = vm->name;
    snprintf(cpu->base.name, sizeof cpu->base.name, "cpu");
    cpu->vm = vm;
    if (threads > 1) {
        cpu->pool = ps_pool_create(threads);
        if (!cpu->pool) {
            if (err) snprintf(err, errlen, "cannot start %d worker threads", threads);
            free(cpu);
            return NULL;
        }
    }
    ps_cpu_blas_single_threaded();
    return &cpu->base;
}
