// Helpers for the GPU tests: skipping without a device, device buffers poisoned with NaN, error
// metrics against double-precision CPU results, random bf16 weights.
#ifndef FUSECHECK_GPU_TEST_UTIL_H
#define FUSECHECK_GPU_TEST_UTIL_H

#include <criterion/criterion.h>
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../fused/gpu_engine.h"
#include "../../model/bf16.h"
#include "../test_support.h"

// Skips the calling test, with the reason, when no usable CUDA device is present.
#define SKIP_WITHOUT_GPU()                                                  \
    do {                                                                    \
        ErrorMessage skip_err_;                                             \
        if (gpu_device_available(&skip_err_)) cr_skip_test("%s", skip_err_.text); \
    } while (0)

#define CUDA_ASSERT(call)                                                                                  \
    do {                                                                                                   \
        cudaError_t status_ = (call);                                                                      \
        cr_assert_eq(status_, cudaSuccess, "%s:%d: %s: %s", __FILE__, __LINE__, #call, cudaGetErrorString(status_)); \
    } while (0)

// Device buffer of `bytes`, every byte 0xFF (NaN as fp32 and as bf16), so unwritten outputs fail.
static inline void *gpu_poisoned(size_t bytes) {
    void *p = NULL;
    CUDA_ASSERT(cudaMalloc(&p, bytes ? bytes : 1));
    CUDA_ASSERT(cudaMemset(p, 0xFF, bytes ? bytes : 1));
    return p;
}

static inline void *gpu_upload(const void *host, size_t bytes) {
    void *p = NULL;
    CUDA_ASSERT(cudaMalloc(&p, bytes ? bytes : 1));
    CUDA_ASSERT(cudaMemcpy(p, host, bytes, cudaMemcpyHostToDevice));
    return p;
}

static inline void *gpu_download(const void *device, size_t bytes) {
    void *host = malloc(bytes ? bytes : 1);
    cr_assert_not_null(host);
    CUDA_ASSERT(cudaDeviceSynchronize());
    CUDA_ASSERT(cudaMemcpy(host, device, bytes, cudaMemcpyDeviceToHost));
    return host;
}

// Random bf16 weights (bit patterns) in [-scale, scale) and their exact fp32 values.
static inline uint16_t *random_bf16(size_t n, uint64_t seed, float scale, float **values) {
    float *f = malloc(n * sizeof(float));
    uint16_t *b = malloc(n * sizeof(uint16_t));
    cr_assert(f && b);
    test_fill_random(f, n, seed, scale);
    for (size_t i = 0; i < n; i++) {
        b[i] = float_to_bf16(f[i]);
        f[i] = bf16_to_float(b[i]);
    }
    if (values) *values = f;
    else free(f);
    return b;
}

typedef struct {
    double rel_l2, norm_max, max_abs;
    long non_finite;
} ErrorStats;

// f (fp32, from the GPU) against r (double): rel_l2 = |f-r|/|r|, norm_max = max|f-r| / max|r|.
static inline ErrorStats error_stats(const float *f, const double *r, size_t n) {
    double diff2 = 0, ref2 = 0, max_diff = 0, max_ref = 0;
    long non_finite = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(f[i])) { non_finite++; continue; }
        double d = (double)f[i] - r[i];
        diff2 += d * d;
        ref2 += r[i] * r[i];
        if (fabs(d) > max_diff) max_diff = fabs(d);
        if (fabs(r[i]) > max_ref) max_ref = fabs(r[i]);
    }
    ErrorStats s = {ref2 > 0 ? sqrt(diff2 / ref2) : sqrt(diff2), max_ref > 0 ? max_diff / max_ref : max_diff, max_diff,
                    non_finite};
    return s;
}

// Asserts every element written and finite and both scale-free errors within tol.
#define ASSERT_CLOSE(what, f, r, n, tol)                                                                        \
    do {                                                                                                        \
        ErrorStats s_ = error_stats((f), (r), (n));                                                             \
        cr_assert_eq(s_.non_finite, 0, "%s: %ld of %zu elements unwritten or not finite", (what), s_.non_finite, \
                     (size_t)(n));                                                                              \
        cr_assert(s_.rel_l2 <= (tol) && s_.norm_max <= (tol), "%s: rel_l2 %.3g norm_max %.3g (max_abs %.3g) > %.1g", \
                  (what), s_.rel_l2, s_.norm_max, s_.max_abs, (double)(tol));                                   \
    } while (0)

#endif
