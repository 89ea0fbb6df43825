/*
 * cuda_device.h - the C view of the CUDA runtime calls the backend needs, so
 * that only .cu files include CUDA headers.
 */
#ifndef PRESHIFT_CUDA_DEVICE_H
#define PRESHIFT_CUDA_DEVICE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable devices (> 0), or 0 with the reason written into err. */
int ps_cuda_device_count(char *err, size_t errlen);
/* Name and compute capability of device 0 ("NVIDIA H200, sm_90"). */
void ps_cuda_device_describe(char *out, size_t outlen);

#ifdef __cplusplus
}
#endif

#endif
