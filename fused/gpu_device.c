// Device presence, cuBLAS status text (engine names are in gpu_engine_kind.c).
#include <dlfcn.h>

#include "cuda_check.h"
#include "gpu_engine.h"

int gpu_device_available(ErrorMessage *err) {
    // Without a driver the runtime answers "CUDA driver version is insufficient for CUDA runtime
    // version", which sends people to upgrade a driver they do not have. Ask the loader first; the
    // runtime's own reason stays for every other case (no device, a driver too old, ...).
    void *driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (!driver) return fail(err, "no CUDA device found: no NVIDIA driver (libcuda.so.1 not found)");
    dlclose(driver);
    int count = 0;
    cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) return fail(err, "no CUDA device found (%s)", cudaGetErrorString(status));
    if (count == 0) return fail(err, "no CUDA device found (the driver reports 0 devices)");
    struct cudaDeviceProp prop;
    status = cudaGetDeviceProperties(&prop, 0);
    if (status != cudaSuccess) return fail(err, "no CUDA device found (%s)", cudaGetErrorString(status));
    if (prop.major < 9)
        return fail(err, "no CUDA device found that fusecheck was built for: %s is compute capability %d.%d, the kernels need 9.0 (Hopper) or newer",
                    prop.name, prop.major, prop.minor);
    return 0;
}

const char *cublas_status_text(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "cuBLAS not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "cuBLAS allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "cuBLAS invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "cuBLAS architecture mismatch";
    case CUBLAS_STATUS_MAPPING_ERROR: return "cuBLAS mapping error";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "cuBLAS execution failed";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "cuBLAS internal error";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "cuBLAS not supported";
    default: return "cuBLAS error";
    }
}
