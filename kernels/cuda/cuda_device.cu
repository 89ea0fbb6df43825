// cuda_device.cu - device discovery. The batched kernels come with the CUDA
// backend proper; until then the backend runs the CPU code (cuda_backend.c).
#include "cuda_device.h"

#include <cstdio>
#include <cublas_v2.h>
#include <cuda_runtime.h>

extern "C" int ps_cuda_device_count(char *err, size_t errlen)
{
    int count = 0;
    cudaError_t rc = cudaGetDeviceCount(&count);
    if (rc != cudaSuccess) {
        if (err) std::snprintf(err, errlen, "no usable CUDA device: %s", cudaGetErrorString(rc));
        return 0;
    }
    if (count == 0 && err) std::snprintf(err, errlen, "no CUDA device present");
    return count;
}

extern "C" void ps_cuda_device_describe(char *out, size_t outlen)
{
    cudaDeviceProp prop;
    int major = 0;
    cublasGetProperty(MAJOR_VERSION, &major);
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
        std::snprintf(out, outlen, "unknown device");
        return;
    }
    std::snprintf(out, outlen, "%s, sm_%d%d, cuBLAS %d", prop.name, prop.major, prop.minor, major);
}
