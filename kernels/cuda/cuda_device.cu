// cuda_device.cu - device discovery and the device's theoretical ceilings.
//
// CUDA 13 removed cudaDeviceProp's clockRate and memoryClockRate, so clocks
// come from cudaDeviceGetAttribute. FP32 lanes per SM are not reported at
// all; they come from NVIDIA's table of compute capabilities (CUDA C++
// Programming Guide, "Arithmetic Instructions": 64 FP32 results per clock
// per SM on 6.0, 7.x and 8.0; 128 on 5.x, 6.1, 6.2, 8.6 and later).
#include "cuda_device.h"

#include <cstdio>
#include <cstring>
#include <cublas_v2.h>
#include <cuda_runtime.h>

extern "C" int ps_cuda_device_count(char *err, size_t errlen)
{
    int count = 0;
    cudaError_t rc = cudaGetDeviceCount(&count);
    if (rc != cudaSuccess) {
        if (err) std::snprintf(err, errlen, "no usable CUDA device: %s", cudaGetErrorString(rc));
        (void)cudaGetLastError();
        return 0;
    }
    if (count == 0 && err) std::snprintf(err, errlen, "no CUDA device present");
    return count;
}

extern "C" void ps_cuda_device_describe(char *out, size_t outlen)
{
    cudaDeviceProp prop;
    int major = 0;
    if (cublasGetProperty(MAJOR_VERSION, &major) != CUBLAS_STATUS_SUCCESS) major = 0;
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
        (void)cudaGetLastError();
        std::snprintf(out, outlen, "unknown device");
        return;
    }
    std::snprintf(out, outlen, "%.48s, sm_%d%d, cuBLAS %d", prop.name, prop.major, prop.minor,
                  major);
}

extern "C" void ps_cuda_device_arch(char *out, size_t outlen)
{
    int major = 0, minor = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0) != cudaSuccess) {
        (void)cudaGetLastError();
        std::snprintf(out, outlen, "sm_?");
        return;
    }
    std::snprintf(out, outlen, "sm_%d%d", major, minor);
}

static int fp32_lanes(int major, int minor)
{
    switch (major) {
    case 5:
        return 128;
    case 6:
        return minor == 0 ? 64 : 128;
    case 7:
        return 64;
    case 8:
        return minor == 0 ? 64 : 128;
    default:
        return major >= 9 ? 128 : 0;
    }
}

static int attr(cudaDeviceAttr a)
{
    int v = 0;
    if (cudaDeviceGetAttribute(&v, a, 0) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return v;
}

extern "C" int ps_cuda_device_peaks(ps_cuda_peaks *out, char *err, size_t errlen)
{
    std::memset(out, 0, sizeof *out);
    if (ps_cuda_device_count(err, errlen) <= 0) return -1;
    cudaDeviceProp prop;
    cudaError_t rc = cudaGetDeviceProperties(&prop, 0);
    if (rc != cudaSuccess) {
        if (err) std::snprintf(err, errlen, "cudaGetDeviceProperties: %s", cudaGetErrorString(rc));
        (void)cudaGetLastError();
        return -1;
    }
    std::snprintf(out->name, sizeof out->name, "%.95s", prop.name);
    out->cc_major = prop.major;
    out->cc_minor = prop.minor;
    out->sms = prop.multiProcessorCount;
    out->fp32_lanes_per_sm = fp32_lanes(prop.major, prop.minor);
    out->clock_hz = 1e3 * attr(cudaDevAttrClockRate);           // reported in kHz
    out->mem_clock_hz = 1e3 * attr(cudaDevAttrMemoryClockRate); // kHz
    out->bus_bits = attr(cudaDevAttrGlobalMemoryBusWidth);
    out->fp32_flops = (double)out->sms * out->fp32_lanes_per_sm * 2.0 * out->clock_hz;
    out->mem_bytes_per_s = 2.0 * out->mem_clock_hz * (out->bus_bits / 8.0);
    return 0;
}
