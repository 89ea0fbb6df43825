/*
 * cuda_backend.c - the CUDA backend's entry point.
 *
 * The device kernels (cuBLAS gemm, fused gates, device-resident state) are
 * not written yet. So that a cuda build is already usable end to end, this
 * backend checks that a device exists and then runs the CPU backend inside,
 * and says so in its name: anything that prints the backend (every command
 * does at start) shows "cuda (cpu fallback)".
 */
#include "../backend_impl.h"
#include "cuda_device.h"

#include <stdio.h>
#include <string.h>

ps_backend *ps_backend_cuda_init(const ps_backend_params *params, char *err, size_t errlen)
{
    if (ps_cuda_device_count(err, errlen) <= 0) return NULL;
    ps_backend_params cpu = *params;
    cpu.kind = PS_BACKEND_CPU;
    ps_backend *be = ps_backend_cpu_init(&cpu, err, errlen);
    if (!be) return NULL;
    char dev[128];
    ps_cuda_device_describe(dev, sizeof dev);
    snprintf(be->name, sizeof be->name, "cuda (cpu fallback; %.40s)", dev);
    return be;
}
