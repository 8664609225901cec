// Checking every CUDA runtime and cuBLAS call. Each failure becomes one line in the caller's
// ErrorMessage naming file:line, the call as written, what it was for (usually the kernel name) and
// the runtime's own words; the enclosing function returns -1. Usable from C (.c) and CUDA (.cu) files;
// the enclosing function must have an `ErrorMessage *err` in scope.
#ifndef FUSECHECK_CUDA_CHECK_H
#define FUSECHECK_CUDA_CHECK_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "../model/error.h"
const char *cublas_status_text(cublasStatus_t status);  // defined in gpu_device.c
#ifdef __cplusplus
}
#endif

#define CUDA_CHECK(call, what)                                                                        \
    do {                                                                                              \
        cudaError_t cuda_status_ = (call);                                                            \
        if (cuda_status_ != cudaSuccess)                                                              \
            return fail(err, "%s:%d: %s [%s]: %s", __FILE__, __LINE__, #call, (what),                 \
                        cudaGetErrorString(cuda_status_));                                            \
    } while (0)

#define CUBLAS_CHECK(call, what)                                                                      \
    do {                                                                                              \
        cublasStatus_t cublas_status_ = (call);                                                       \
        if (cublas_status_ != CUBLAS_STATUS_SUCCESS)                                                  \
            return fail(err, "%s:%d: %s [%s]: %s", __FILE__, __LINE__, #call, (what),                 \
                        cublas_status_text(cublas_status_));                                          \
    } while (0)

// After a <<<...>>> launch: the launch's own error (bad configuration, too much shared memory).
#define LAUNCH_CHECK(kernel_name) CUDA_CHECK(cudaGetLastError(), "launch of " kernel_name)

#endif
