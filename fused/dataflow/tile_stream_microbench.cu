// Microbenchmark (not built by CMake; nvcc -O3 -arch=sm_90a -o mb tile_stream_microbench.cu): can a
// persistent grid of one 512-thread block per SM stream 311 MB as register tiles, as the dataflow kernel does?
#include <cstdio>
#include <cstdint>
#include <cuda_runtime.h>
#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("%s: %s\n", #x, cudaGetErrorString(e_)); return 1; } } while (0)
#define WARPS 16
#define THREADS 512
__device__ __forceinline__ uint4 ldw(const uint4 *p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}
__device__ __forceinline__ float dot8(uint4 w, const float *x, float acc) {
    acc = fmaf(__uint_as_float(w.x << 16), x[0], acc); acc = fmaf(__uint_as_float(w.x & 0xffff0000u), x[1], acc);
    acc = fmaf(__uint_as_float(w.y << 16), x[2], acc); acc = fmaf(__uint_as_float(w.y & 0xffff0000u), x[3], acc);
    acc = fmaf(__uint_as_float(w.z << 16), x[4], acc); acc = fmaf(__uint_as_float(w.z & 0xffff0000u), x[5], acc);
    acc = fmaf(__uint_as_float(w.w << 16), x[6], acc); acc = fmaf(__uint_as_float(w.w & 0xffff0000u), x[7], acc);
    return acc;
}
// Tiles of K slots per warp (K * 16 warps * 512 B bytes each). mode 0: round robin tile -> block;
// mode 1: contiguous ranges per block. sync: block barriers per tile (as the engine).
template <int K>
__global__ void __launch_bounds__(THREADS, 1) tiles(const uint16_t *w, size_t n_tiles, int mode, int sync, float *out) {
    __shared__ float vec[2048];
    __shared__ float partial[K * WARPS];
    for (int i = threadIdx.x; i < 2048; i += THREADS) vec[i] = 1.0f / (i + 1);
    __syncthreads();
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    size_t begin, end, step;
    if (mode == 0) { begin = blockIdx.x; end = n_tiles; step = gridDim.x; }
    else { size_t per = (n_tiles + gridDim.x - 1) / gridDim.x; begin = blockIdx.x * per; end = min(n_tiles, begin + per); step = 1; }
    float total = 0.0f;
    const size_t tile_u4 = (size_t)K * WARPS * 32;
    for (size_t t = begin; t < end; t += step) {
        const uint4 *base = (const uint4 *)w + t * tile_u4;
        uint4 r[K];
#pragma unroll
        for (int k = 0; k < K; k++) r[k] = ldw(base + (size_t)(warp + k * WARPS) * 32 + lane);
        float acc[K];
#pragma unroll
        for (int k = 0; k < K; k++) acc[k] = dot8(r[k], vec + ((k * 32 + lane) * 8) % 2048, 0.0f);
#pragma unroll
        for (int o = 16; o > 0; o >>= 1)
#pragma unroll
            for (int k = 0; k < K; k++) acc[k] += __shfl_xor_sync(0xffffffffu, acc[k], o);
        if (sync) {
            if (lane == 0) for (int k = 0; k < K; k++) partial[warp * K + k] = acc[k];
            __syncthreads();
            if (threadIdx.x < 64) total += partial[threadIdx.x];
            __syncthreads();
        } else {
            for (int k = 0; k < K; k++) total += acc[k];
        }
    }
    if (total == 12345.0f) out[0] = total;
}
// Baseline: every warp streams a contiguous range with 8 loads in flight per lane.
__global__ void __launch_bounds__(THREADS, 1) plain(const uint4 *w, size_t n_u4, float *out) {
    const size_t gw = (size_t)gridDim.x * WARPS, wid = (size_t)blockIdx.x * WARPS + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    float total = 0;
    for (size_t i = wid * 256; i < n_u4; i += gw * 256) {
        uint4 r[8];
#pragma unroll
        for (int k = 0; k < 8; k++) r[k] = ldw(w + i + k * 32 + lane);
#pragma unroll
        for (int k = 0; k < 8; k++) total += __uint_as_float(r[k].x) + __uint_as_float(r[k].w);
    }
    if (total == 12345.0f) out[0] = total;
}
template <int K>
int run(const uint16_t *w, size_t bytes, int mode, int sync, float *out, int sms) {
    size_t tile_bytes = (size_t)K * WARPS * 512;
    size_t n_tiles = bytes / tile_bytes;
    cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
    tiles<K><<<sms, THREADS>>>(w, n_tiles, mode, sync, out);
    cudaEventRecord(a);
    for (int i = 0; i < 5; i++) tiles<K><<<sms, THREADS>>>(w, n_tiles, mode, sync, out);
    cudaEventRecord(b);
    CK(cudaEventSynchronize(b));
    float ms; cudaEventElapsedTime(&ms, a, b);
    double us = ms * 1000 / 5;
    printf("tiles K=%2d (%3zu KB) %-11s %-7s: %7.1f us for %zu MB = %6.0f GB/s (%.2f us a tile)\n", K, tile_bytes / 1024,
           mode ? "contiguous" : "round-robin", sync ? "sync" : "no-sync", us, n_tiles * tile_bytes >> 20,
           n_tiles * tile_bytes / us / 1e3, us / ((double)n_tiles / sms));
    return 0;
}
int main() {
    int sms; cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    size_t bytes = 311ull << 20;
    uint16_t *w; float *out;
    CK(cudaMalloc(&w, bytes)); CK(cudaMalloc(&out, 4));
    CK(cudaMemset(w, 0, bytes));
    cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
    plain<<<sms, THREADS>>>((const uint4 *)w, bytes / 16, out);
    cudaEventRecord(a);
    for (int i = 0; i < 5; i++) plain<<<sms, THREADS>>>((const uint4 *)w, bytes / 16, out);
    cudaEventRecord(b);
    CK(cudaEventSynchronize(b));
    float ms; cudaEventElapsedTime(&ms, a, b);
    printf("plain stream: %.1f us = %.0f GB/s\n", ms * 200, bytes / (ms * 200) / 1e3);
    for (int mode = 0; mode < 2; mode++)
        for (int sync = 0; sync < 2; sync++) {
            run<4>(w, bytes, mode, sync, out, sms);
            run<12>(w, bytes, mode, sync, out, sms);
        }
    CK(cudaGetLastError());
    return 0;
}
