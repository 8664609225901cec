// What decode benchmarking needs from the GPU: copy bandwidth and the device's name. Contract in gpu_bench.h.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "../model/median.h"
#include "cuda_check.h"
#include "gpu_bench.h"

int bench_gpu_name(char *out, size_t size, ErrorMessage *err) {
    if (gpu_device_available(err)) return -1;
    struct cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0), "bench gpu name");
    snprintf(out, size, "%s", prop.name);
    return 0;
}

int bench_copy_bandwidth(double *gb_per_s, ErrorMessage *err) {
    if (gpu_device_available(err)) return -1;
    const size_t bytes = (size_t)1 << 30;
    enum { COPIES = 9 };
    void *src = NULL, *dst = NULL;
    cudaEvent_t start = NULL, stop = NULL;
    double rates[COPIES];
    int rc = -1;
    cudaError_t status = cudaMalloc(&src, bytes);
    if (status == cudaSuccess) status = cudaMalloc(&dst, bytes);
    if (status == cudaSuccess) status = cudaMemset(src, 0x5a, bytes);  // contents do not matter to a copy
    if (status == cudaSuccess) status = cudaEventCreate(&start);
    if (status == cudaSuccess) status = cudaEventCreate(&stop);
    if (status == cudaSuccess) status = cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice);  // warm-up
    for (int i = 0; i < COPIES && status == cudaSuccess; i++) {
        float ms = 0.0f;
        status = cudaEventRecord(start, 0);
        if (status == cudaSuccess) status = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0);
        if (status == cudaSuccess) status = cudaEventRecord(stop, 0);
        if (status == cudaSuccess) status = cudaEventSynchronize(stop);
        if (status == cudaSuccess) status = cudaEventElapsedTime(&ms, start, stop);
        rates[i] = 2.0 * (double)bytes / (ms * 1e-3) / 1e9;  // read + write
    }
    if (status != cudaSuccess) {
        fail(err, "decode benchmark: device-to-device copy of %zu bytes: %s", bytes, cudaGetErrorString(status));
    } else {
        *gb_per_s = median_of(rates, COPIES);
        rc = 0;
    }
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    cudaFree(src);
    cudaFree(dst);
    return rc;
}
