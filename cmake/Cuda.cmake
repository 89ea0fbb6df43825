# Enable CUDA for the cuda backend. Done at the top level because the CUDA
# objects end up inside ps_kernels, which is defined one level up from them.
if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
  set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
endif()
include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(FATAL_ERROR "PRESHIFT_BACKEND=cuda but no CUDA compiler was found "
                      "(set CMAKE_CUDA_COMPILER or put nvcc on PATH)")
endif()
# "native" fails on a machine without a GPU; name the architectures instead.
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES 75 80 90)
endif()
enable_language(CUDA)
find_package(CUDAToolkit REQUIRED)
# The gate kernels rely on precise expf/tanhf to match the CPU within 1e-5.
if(CMAKE_CUDA_FLAGS MATCHES "use_fast_math")
  message(FATAL_ERROR "--use_fast_math in CMAKE_CUDA_FLAGS would break the CUDA backend's "
                      "agreement with the CPU backend; remove it")
endif()
