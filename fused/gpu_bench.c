// Decode throughput measurement: copy bandwidth, GPU name, per-engine timing. Contract in gpu_bench.h.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "../model/progress.h"
#include "cuda_check.h"
#include "gpu_bench.h"

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_of(double *values, int n) {
    qsort(values, (size_t)n, sizeof *values, compare_doubles);
    return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

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

int bench_engine(const Checkpoint *ck, GpuEngineKind kind, const int *contexts, int n_contexts, int tokens,
                 int repeat, double copy_gb_s, int breakdown, FILE *progress, BenchResult *results,
                 ErrorMessage *err) {
    const ModelConfig *c = &ck->config;
    if (n_contexts < 1 || tokens < 1 || repeat < 1)
        return fail(err, "decode benchmark: need at least one context, one token and one repeat");
    int largest = 0;
    for (int i = 0; i < n_contexts; i++) {
        if (contexts[i] < 1 || contexts[i] >= c->max_position_embeddings)
            return fail(err, "decode benchmark: context %d outside [1, max_position_embeddings %d)", contexts[i],
                        c->max_position_embeddings);
        if (contexts[i] > largest) largest = contexts[i];
    }
    GpuEngine *engine = gpu_engine_create(ck, kind, KV_BF16, largest + 1, err);
    if (!engine) return -1;
    double *ms = malloc((size_t)repeat * sizeof *ms);
    if (!ms) {
        gpu_engine_destroy(engine);
        return fail(err, "decode benchmark: out of memory");
    }
    int rc = 0;
    double weight_bytes = (double)checkpoint_weight_bytes(ck);
    double kv_per_position = 2.0 * c->num_hidden_layers * c->num_key_value_heads * c->head_dim * 2.0;  // K and V, bf16
    // One unit of progress per timed repeat: a long context's repeats are where the minutes go.
    progress_begin("measurement", n_contexts * repeat);
    for (int i = 0; i < n_contexts && rc == 0; i++) {
        BenchResult *r = &results[i];
        memset(r, 0, sizeof *r);
        r->engine = kind;
        r->context = contexts[i];
        r->tokens = tokens;
        r->repeat = repeat;
        double warm = 0.0;
        if (gpu_engine_bench_prepare(engine, contexts[i], 1 + i, 0x5eed0000u + (unsigned)i, err) ||
            gpu_engine_bench_time(engine, tokens < 8 ? tokens : 8, &warm, err)) {
            rc = -1;
            break;
        }
        for (int k = 0; k < repeat; k++) {
            if (gpu_engine_bench_time(engine, tokens, &ms[k], err)) { rc = -1; break; }
            progress_update(i * repeat + k + 1);
        }
        if (rc) break;
        double tok_s[repeat > 0 ? repeat : 1];
        for (int k = 0; k < repeat; k++) {
            ms[k] /= tokens;
            tok_s[k] = 1000.0 / ms[k];
        }
        r->ms_per_token_median = median_of(ms, repeat);
        r->ms_per_token_min = ms[0];
        r->ms_per_token_max = ms[repeat - 1];
        r->tok_s_median = median_of(tok_s, repeat);
        r->tok_s_min = tok_s[0];
        r->tok_s_max = tok_s[repeat - 1];
        r->weight_bytes = weight_bytes;
        r->kv_bytes = kv_per_position * contexts[i];
        r->bytes_per_token = r->weight_bytes + r->kv_bytes;
        r->achieved_gb_s = r->bytes_per_token * r->tok_s_median / 1e9;
        r->copy_gb_s = copy_gb_s;
        r->bandwidth_fraction = copy_gb_s > 0 ? r->achieved_gb_s / copy_gb_s : 0.0;
        r->launches_per_token = gpu_engine_launches_per_token(engine);
        if (breakdown && kind == GPU_ENGINE_FUSED &&
            gpu_engine_bench_profile(engine, r->kernels, BENCH_MAX_KERNELS, &r->n_kernels, err)) {
            rc = -1;
            break;
        }
        progress_clear();  // the per-context result line prints on a clean line
        if (progress)
            fprintf(progress, "bench: %s context %d: %.0f tok/s (%.3f ms/token, %.0f%% of copy bandwidth)\n",
                    gpu_engine_kind_name(kind), contexts[i], r->tok_s_median, r->ms_per_token_median,
                    100.0 * r->bandwidth_fraction);
    }
    progress_end();
    free(ms);
    gpu_engine_destroy(engine);
    return rc;
}
