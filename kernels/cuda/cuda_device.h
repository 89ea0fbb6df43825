/*
 * cuda_device.h - the C view of device discovery, so that only .cu files
 * include CUDA headers. The backend uses it to find a device and name
 * itself; bench/ uses ps_cuda_device_peaks for the card's floors (it is
 * compiled only into cuda builds: callers guard it with PRESHIFT_HAVE_CUDA).
 */
#ifndef PRESHIFT_CUDA_DEVICE_H
#define PRESHIFT_CUDA_DEVICE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable devices (> 0), or 0 with the reason written into err. */
int ps_cuda_device_count(char *err, size_t errlen);
/* Name, compute capability and cuBLAS major version of device 0
 * ("NVIDIA H200, sm_90, cuBLAS 13"). */
void ps_cuda_device_describe(char *out, size_t outlen);
/* Compute capability of device 0 as "sm_90"; "sm_?" if unknown. */
void ps_cuda_device_arch(char *out, size_t outlen);

/*
 * The theoretical ceilings of device 0, from the runtime's attributes. A
 * field the runtime does not report is 0, and so is every figure that
 * depends on it.
 */
typedef struct ps_cuda_peaks {
    char name[96];
    int cc_major, cc_minor;
    int sms;
    int fp32_lanes_per_sm;  /* from a table by compute capability */
    double clock_hz;        /* peak SM clock */
    double mem_clock_hz;    /* peak memory clock */
    int bus_bits;           /* memory bus width */
    double fp32_flops;      /* sms * lanes * 2 (an FMA) * clock */
    double mem_bytes_per_s; /* 2 (double data rate) * mem clock * bus bytes */
} ps_cuda_peaks;

/* 0, or -1 with the reason written into err. */
int ps_cuda_device_peaks(ps_cuda_peaks *out, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
