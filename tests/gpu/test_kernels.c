// Every GPU kernel on fresh random inputs against a double-precision CPU loop written here: head_dim
// 64 and 128, GQA 1/2/4/8, contexts 1..32769, sizes that are not multiples of any block size, outputs
// poisoned with NaN before each launch so an unwritten element fails.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../fused/kernels.h"
#include "../../model/rope_table.h"
#include "gpu_test_util.h"

#define TOL 1e-5  // fp32 against double: summation order and rsqrtf/expf only

static double *dalloc(size_t n) {
    double *p = calloc(n ? n : 1, sizeof(double));
    cr_assert_not_null(p);
    return p;
}

static float *frandom(size_t n, uint64_t seed, float scale, float offset) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    cr_assert_not_null(p);
    test_fill_random(p, n, seed, scale);
    for (size_t i = 0; i < n; i++) p[i] += offset;
    return p;
}

static void cpu_rmsnorm(const float *x, const float *w, int n, double eps, double *out) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    double inv = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * inv * w[i];
}

static double cpu_dot(const float *w, const double *x, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)w[i] * x[i];
    return s;
}

// kind 0/1: per-head rmsnorm then rotate-half RoPE; kind 2: copy.
static void cpu_head(const double *raw, int kind, const float *norm_w, int hd, double eps, const RopeTable *rope,
                     int pos, double *out) {
    if (kind == 2) {
        memcpy(out, raw, hd * sizeof(double));
        return;
    }
    double ss = 0;
    for (int i = 0; i < hd; i++) ss += raw[i] * raw[i];
    double inv = 1.0 / sqrt(ss / hd + eps);
    int half = hd / 2;
    for (int i = 0; i < half; i++) {
        double a = raw[i] * inv * norm_w[i], b = raw[i + half] * inv * norm_w[i + half];
        double c = rope->cos[pos * half + i], s = rope->sin[pos * half + i];
        out[i] = a * c - b * s;
        out[i + half] = b * c + a * s;
    }
}

static float *to_float_host(const void *dev, size_t n, int bf16) {
    float *out = malloc(n * sizeof(float));
    cr_assert_not_null(out);
    if (bf16) {
        uint16_t *b = gpu_download(dev, n * 2);
        for (size_t i = 0; i < n; i++) out[i] = bf16_to_float(b[i]);
        free(b);
    } else {
        float *f = gpu_download(dev, n * 4);
        memcpy(out, f, n * 4);
        free(f);
    }
    return out;
}

// Checks the cache row (all kv heads at `pos`) against the fp32 k/v the kernel returned: bit-equal to
// their bf16 rounding (bf16 cache) or to them (fp32 cache).
static void check_cache_row(const char *what, const void *cache, int kv_bf16, int n_kv, int max_context, int hd,
                            int pos, const float *values) {
    size_t n = (size_t)n_kv * max_context * hd;
    float *c = to_float_host(cache, n, kv_bf16);
    for (int h = 0; h < n_kv; h++)
        for (int i = 0; i < hd; i++) {
            float got = c[((size_t)h * max_context + pos) * hd + i];
            float want = kv_bf16 ? round_to_bf16(values[h * hd + i]) : values[h * hd + i];
            cr_assert(got == want, "%s cache head %d pos %d dim %d: %g, expected %g", what, h, pos, i, got, want);
        }
    free(c);
}

typedef struct { int hidden, n_heads, n_kv, hd; } QkvCase;

Test(kernels, rmsnorm_qkv_matches_double_loop) {
    SKIP_WITHOUT_GPU();
    const QkvCase cases[] = {{200, 4, 4, 64}, {100, 8, 4, 128}, {264, 8, 2, 64}, {520, 16, 2, 128}, {1001, 2, 1, 64}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        QkvCase k = cases[ci];
        ModelDims d = {k.hidden, 64, k.n_heads, k.n_kv, k.hd, 10, 1e-6f};
        int QKV = dims_qkv_width(&d), H = d.hidden;
        uint64_t seed = 100 + ci * 10;
        float *x = frandom(H, seed, 2.0f, 0.0f), *norm_w = frandom(H, seed + 1, 0.2f, 1.0f), *w_f;
        uint16_t *w = random_bf16((size_t)QKV * H, seed + 4, 0.1f, &w_f);
        float *dx = gpu_upload(x, H * 4), *dnorm = gpu_upload(norm_w, H * 4);
        uint16_t *dw = gpu_upload(w, (size_t)QKV * H * 2);
        float *an = gpu_poisoned(H * 4), *raw = gpu_poisoned(QKV * 4);
        ErrorMessage err;
        cr_assert_eq(launch_rmsnorm_qkv(&d, dx, dnorm, dw, an, raw, NULL, 0, &err), 0, "%s", err.text);
        double *h = dalloc(H), *want_raw = dalloc(QKV);
        cpu_rmsnorm(x, norm_w, H, d.eps, h);
        for (int r = 0; r < QKV; r++) want_raw[r] = cpu_dot(w_f + (size_t)r * H, h, H);
        float *g_an = gpu_download(an, H * 4), *g_raw = gpu_download(raw, QKV * 4);
        char what[128];
        snprintf(what, sizeof what, "qkv case %zu attn_norm", ci);
        ASSERT_CLOSE(what, g_an, h, H, TOL);
        snprintf(what, sizeof what, "qkv case %zu qkv_raw", ci);
        ASSERT_CLOSE(what, g_raw, want_raw, QKV, TOL);
        free(h); free(want_raw); free(g_an); free(g_raw);
        cudaFree(an); cudaFree(raw); cudaFree(dx); cudaFree(dnorm); cudaFree(dw);
        free(x); free(norm_w); free(w); free(w_f);
    }
}

Test(kernels, qk_norm_rope_rows_matches_double_loop) {
    SKIP_WITHOUT_GPU();
    ModelDims d = {64, 64, 8, 2, 128, 10, 1e-6f};
    int Q = dims_q_width(&d), KV = dims_kv_width(&d), QKV = dims_qkv_width(&d), T = 3, max_context = 20, first = 11;
    for (int kv_bf16 = 0; kv_bf16 < 2; kv_bf16++) {
        float *raw = frandom((size_t)T * QKV, 7 + kv_bf16, 3.0f, 0.0f), *qn = frandom(d.head_dim, 8, 0.2f, 1.0f),
              *kn = frandom(d.head_dim, 9, 0.2f, 1.0f);
        RopeTable rope;
        ErrorMessage err;
        cr_assert_eq(rope_table_init(&rope, d.head_dim, 1e6, max_context, &err), 0, "%s", err.text);
        size_t rope_bytes = (size_t)max_context * d.head_dim / 2 * 4;
        float *draw = gpu_upload(raw, (size_t)T * QKV * 4), *dqn = gpu_upload(qn, d.head_dim * 4),
              *dkn = gpu_upload(kn, d.head_dim * 4), *dcos = gpu_upload(rope.cos, rope_bytes),
              *dsin = gpu_upload(rope.sin, rope_bytes);
        int *dpos = gpu_upload(&first, 4);
        size_t cache_bytes = (size_t)KV * max_context * (kv_bf16 ? 2 : 4);
        void *kc = gpu_poisoned(cache_bytes), *vc = gpu_poisoned(cache_bytes);
        float *q = gpu_poisoned((size_t)T * Q * 4), *k = gpu_poisoned((size_t)T * KV * 4), *v = gpu_poisoned((size_t)T * KV * 4);
        cr_assert_eq(launch_qk_norm_rope_rows(&d, draw, dqn, dkn, dcos, dsin, dpos, T, q, k, v, kc, vc, kv_bf16,
                                              max_context, 0, &err), 0, "%s", err.text);
        double *wq = dalloc((size_t)T * Q), *wk = dalloc((size_t)T * KV), *wv = dalloc((size_t)T * KV), *rd = dalloc(QKV);
        for (int t = 0; t < T; t++) {
            for (int i = 0; i < QKV; i++) rd[i] = raw[(size_t)t * QKV + i];
            for (int h = 0; h < d.n_heads; h++) cpu_head(rd + h * d.head_dim, 0, qn, d.head_dim, d.eps, &rope, first + t, wq + (size_t)t * Q + h * d.head_dim);
            for (int h = 0; h < d.n_kv_heads; h++) {
                cpu_head(rd + Q + h * d.head_dim, 1, kn, d.head_dim, d.eps, &rope, first + t, wk + (size_t)t * KV + h * d.head_dim);
                cpu_head(rd + Q + KV + h * d.head_dim, 2, kn, d.head_dim, d.eps, &rope, first + t, wv + (size_t)t * KV + h * d.head_dim);
            }
        }
        float *gq = gpu_download(q, (size_t)T * Q * 4), *gk = gpu_download(k, (size_t)T * KV * 4), *gv = gpu_download(v, (size_t)T * KV * 4);
        ASSERT_CLOSE("rows q", gq, wq, (size_t)T * Q, TOL);
        ASSERT_CLOSE("rows k", gk, wk, (size_t)T * KV, TOL);
        ASSERT_CLOSE("rows v", gv, wv, (size_t)T * KV, TOL);
        for (int t = 0; t < T; t++) {
            check_cache_row("rows k", kc, kv_bf16, d.n_kv_heads, max_context, d.head_dim, first + t, gk + (size_t)t * KV);
            check_cache_row("rows v", vc, kv_bf16, d.n_kv_heads, max_context, d.head_dim, first + t, gv + (size_t)t * KV);
        }
        free(raw); free(qn); free(kn); free(wq); free(wk); free(wv); free(rd); free(gq); free(gk); free(gv);
        cudaFree(draw); cudaFree(dqn); cudaFree(dkn); cudaFree(dcos); cudaFree(dsin); cudaFree(dpos);
        cudaFree(kc); cudaFree(vc); cudaFree(q); cudaFree(k); cudaFree(v);
        rope_table_free(&rope);
    }
}

// Attention for n_tokens queries ending at context `context`, cache of max_context positions.
// Uploads K and V caches of n values each; with a bf16 cache the host copies are rounded in place
// to the values the device holds, so the double-precision check sees exactly what the kernel reads.
static void upload_kv_cache(float *kf, float *vf, size_t n, int kv_bf16, void **kc, void **vc) {
    if (!kv_bf16) {
        *kc = gpu_upload(kf, n * 4);
        *vc = gpu_upload(vf, n * 4);
        return;
    }
    uint16_t *kb = malloc(n * 2), *vb = malloc(n * 2);
    cr_assert(kb && vb);
    for (size_t i = 0; i < n; i++) {
        kb[i] = float_to_bf16(kf[i]); kf[i] = bf16_to_float(kb[i]);
        vb[i] = float_to_bf16(vf[i]); vf[i] = bf16_to_float(vb[i]);
    }
    *kc = gpu_upload(kb, n * 2);
    *vc = gpu_upload(vb, n * 2);
    free(kb); free(vb);
}

static void check_attention(int hd, int n_heads, int n_kv, int context, int n_tokens, int kv_bf16, uint64_t seed) {
    ModelDims d = {64, 64, n_heads, n_kv, hd, 10, 1e-6f};
    int max_context = context + 70;  // launch more chunk blocks than the context needs: they must exit cleanly
    int first = context - n_tokens, Q = n_heads * hd, group = n_heads / n_kv;
    size_t cache_n = (size_t)n_kv * max_context * hd;
    float *kf = frandom(cache_n, seed, 1.0f, 0.0f), *vf = frandom(cache_n, seed + 1, 1.0f, 0.0f);
    float *q = frandom((size_t)n_tokens * Q, seed + 2, 3.0f, 0.0f);
    void *kc, *vc;
    upload_kv_cache(kf, vf, cache_n, kv_bf16, &kc, &vc);
    int n_chunks = (max_context + ATTENTION_CHUNK - 1) / ATTENTION_CHUNK;
    float *dq = gpu_upload(q, (size_t)n_tokens * Q * 4);
    int *dpos = gpu_upload(&first, 4);
    float *po = gpu_poisoned((size_t)n_tokens * n_heads * n_chunks * hd * 4), *pml = gpu_poisoned((size_t)n_tokens * n_heads * n_chunks * 2 * 4);
    float *attn = gpu_poisoned((size_t)n_tokens * Q * 4);
    ErrorMessage err;
    cr_assert_eq(launch_attention(&d, dq, kc, vc, kv_bf16, max_context, dpos, n_tokens, n_chunks, po, pml, attn, 0, &err),
                 0, "%s", err.text);
    double *want = dalloc((size_t)n_tokens * Q), *scores = dalloc(context);
    double scale = 1.0 / sqrt((double)hd);
    for (int t = 0; t < n_tokens; t++) {
        int ctx = first + t + 1;
        for (int h = 0; h < n_heads; h++) {
            int kvh = h / group;
            const float *qh = q + (size_t)t * Q + h * hd;
            double m = -INFINITY, l = 0;
            for (int p = 0; p < ctx; p++) {
                const float *kr = kf + ((size_t)kvh * max_context + p) * hd;
                double s = 0;
                for (int i = 0; i < hd; i++) s += (double)qh[i] * kr[i];
                scores[p] = s * scale;
                if (scores[p] > m) m = scores[p];
            }
            for (int p = 0; p < ctx; p++) { scores[p] = exp(scores[p] - m); l += scores[p]; }
            double *out = want + (size_t)t * Q + h * hd;
            for (int p = 0; p < ctx; p++) {
                const float *vr = vf + ((size_t)kvh * max_context + p) * hd;
                for (int i = 0; i < hd; i++) out[i] += scores[p] / l * vr[i];
            }
        }
    }
    float *got = gpu_download(attn, (size_t)n_tokens * Q * 4);
    char what[160];
    snprintf(what, sizeof what, "attention hd %d heads %d/%d context %d tokens %d kv_bf16 %d", hd, n_heads, n_kv, context,
             n_tokens, kv_bf16);
    ASSERT_CLOSE(what, got, want, (size_t)n_tokens * Q, TOL);
    free(kf); free(vf); free(q); free(want); free(scores); free(got);
    cudaFree(kc); cudaFree(vc); cudaFree(dq); cudaFree(dpos); cudaFree(po); cudaFree(pml); cudaFree(attn);
}

Test(kernels, attention_decode_matches_double_loop, .timeout = 600) {
    SKIP_WITHOUT_GPU();
    const int shapes[][3] = {{64, 4, 4}, {64, 8, 4}, {128, 8, 2}, {128, 16, 2}};  // hd, heads, kv heads: GQA 1/2/4/8
    const int contexts[] = {1, 7, 64, 1000, 5000, 32769};
    for (size_t s = 0; s < 4; s++)
        for (size_t c = 0; c < sizeof contexts / sizeof contexts[0]; c++)
            check_attention(shapes[s][0], shapes[s][1], shapes[s][2], contexts[c], 1, (int)((s + c) % 2), 1000 + s * 10 + c);
}

Test(kernels, attention_prefill_matches_double_loop) {
    SKIP_WITHOUT_GPU();
    check_attention(128, 16, 2, 7, 7, 1, 2001);    // a whole prompt from position 0
    check_attention(64, 8, 4, 200, 13, 0, 2002);   // a prompt after history, crossing chunk boundaries
    check_attention(128, 8, 8, 1000, 65, 1, 2003);
}

// The fused decode path's one-launch attention (kernels.h 2b), from kernel 1's raw q/k/v: the head
// epilogue (q, k, v outputs, cache row `position`) and the same double loop as above over the history
// and row `position` as the cache holds it afterwards. The grid is fixed by n_splits while the chunk
// follows the context. forced: row `position` holds the host's values before the launch; the kernel
// must attend to them and leave them. Launched twice on the same inputs: the split counters must
// re-arm and the result be bit-identical (deterministic merge order).
static void check_attention_decode(int hd, int n_heads, int n_kv, int context, int kv_bf16, int forced, uint64_t seed) {
    ModelDims d = {64, 64, n_heads, n_kv, hd, 10, 1e-6f};
    int max_context = context + 70, position = context - 1, group = n_heads / n_kv;
    int Q = n_heads * hd, KV = n_kv * hd, QKV = Q + 2 * KV;
    cr_assert(attention_decode_supported(&d, kv_bf16), "no decode attention instance for hd %d group %d", hd, group);
    ErrorMessage err;
    RopeTable rope;
    cr_assert_eq(rope_table_init(&rope, hd, 1e6, max_context, &err), 0, "%s", err.text);
    size_t cache_n = (size_t)n_kv * max_context * hd;
    float *kf = frandom(cache_n, seed, 1.0f, 0.0f), *vf = frandom(cache_n, seed + 1, 1.0f, 0.0f);
    float *raw = frandom(QKV, seed + 2, 3.0f, 0.0f), *qn = frandom(hd, seed + 3, 0.2f, 1.0f),
          *kn = frandom(hd, seed + 4, 0.2f, 1.0f);
    void *kc, *vc;
    upload_kv_cache(kf, vf, cache_n, kv_bf16, &kc, &vc);  // kf, vf now hold the values as stored
    int n_splits;
    cr_assert_eq(attention_decode_splits(&d, &n_splits, &err), 0, "%s", err.text);
    size_t rope_bytes = (size_t)max_context * hd / 2 * 4;
    float *draw = gpu_upload(raw, (size_t)QKV * 4), *dqn = gpu_upload(qn, hd * 4), *dkn = gpu_upload(kn, hd * 4),
          *dcos = gpu_upload(rope.cos, rope_bytes), *dsin = gpu_upload(rope.sin, rope_bytes);
    int *dpos = gpu_upload(&position, 4);
    float *po = gpu_poisoned((size_t)n_heads * n_splits * hd * 4), *pml = gpu_poisoned((size_t)n_heads * n_splits * 2 * 4);
    unsigned *counters = gpu_poisoned((size_t)n_kv * 4);
    CUDA_ASSERT(cudaMemset(counters, 0, (size_t)n_kv * 4));

    double *rawd = dalloc(QKV), *want_q = dalloc(Q), *want_k = dalloc(KV), *want_v = dalloc(KV);
    for (int i = 0; i < QKV; i++) rawd[i] = raw[i];
    for (int h = 0; h < n_heads; h++) cpu_head(rawd + h * hd, 0, qn, hd, d.eps, &rope, position, want_q + h * hd);
    for (int h = 0; h < n_kv; h++) {
        cpu_head(rawd + Q + h * hd, 1, kn, hd, d.eps, &rope, position, want_k + h * hd);
        cpu_head(rawd + Q + KV + h * hd, 2, kn, hd, d.eps, &rope, position, want_v + h * hd);
    }
    char what[192];
    snprintf(what, sizeof what, "attention_decode hd %d heads %d/%d context %d kv_bf16 %d forced %d", hd, n_heads, n_kv,
             context, kv_bf16, forced);
    float *first = NULL;
    for (int launch = 0; launch < 2; launch++) {
        float *q = gpu_poisoned((size_t)Q * 4), *k = gpu_poisoned((size_t)KV * 4), *v = gpu_poisoned((size_t)KV * 4),
              *attn = gpu_poisoned((size_t)Q * 4);
        cr_assert_eq(launch_attention_decode(&d, draw, dqn, dkn, dcos, dsin, dpos, kc, vc, kv_bf16, max_context, forced,
                                             n_splits, po, pml, counters, q, k, v, attn, NULL, 0, &err),
                     0, "%s", err.text);
        float *gq = gpu_download(q, (size_t)Q * 4), *gk = gpu_download(k, (size_t)KV * 4),
              *gv = gpu_download(v, (size_t)KV * 4), *got = gpu_download(attn, (size_t)Q * 4);
        ASSERT_CLOSE(what, gq, want_q, Q, TOL);
        ASSERT_CLOSE(what, gk, want_k, KV, TOL);
        ASSERT_CLOSE(what, gv, want_v, KV, TOL);
        // Row `position` after the launch: the kernel's k, v as stored, or the forced values untouched.
        float *kc_now = to_float_host(kc, cache_n, kv_bf16), *vc_now = to_float_host(vc, cache_n, kv_bf16);
        for (int h = 0; h < n_kv; h++)
            for (int i = 0; i < hd; i++) {
                size_t at = ((size_t)h * max_context + position) * hd + i;
                float want_kc = forced ? kf[at] : kv_bf16 ? round_to_bf16(gk[h * hd + i]) : gk[h * hd + i];
                float want_vc = forced ? vf[at] : kv_bf16 ? round_to_bf16(gv[h * hd + i]) : gv[h * hd + i];
                cr_assert(kc_now[at] == want_kc && vc_now[at] == want_vc, "%s: cache row head %d dim %d: k %g v %g, expected %g %g",
                          what, h, i, kc_now[at], vc_now[at], want_kc, want_vc);
            }
        // The double loop: the history as uploaded, row `position` as the cache holds it now.
        double *want = dalloc(Q), *scores = dalloc(context);
        double scale = 1.0 / sqrt((double)hd);
        for (int h = 0; h < n_heads; h++) {
            int kvh = h / group;
            double m = -INFINITY, l = 0;
            for (int p = 0; p < context; p++) {
                const float *kr = (p == position ? kc_now : kf) + ((size_t)kvh * max_context + p) * hd;
                double sc = 0;
                for (int i = 0; i < hd; i++) sc += want_q[h * hd + i] * kr[i];
                scores[p] = sc * scale;
                if (scores[p] > m) m = scores[p];
            }
            for (int p = 0; p < context; p++) { scores[p] = exp(scores[p] - m); l += scores[p]; }
            for (int p = 0; p < context; p++) {
                const float *vr = (p == position ? vc_now : vf) + ((size_t)kvh * max_context + p) * hd;
                for (int i = 0; i < hd; i++) want[h * hd + i] += scores[p] / l * vr[i];
            }
        }
        ASSERT_CLOSE(what, got, want, (size_t)Q, TOL);
        if (!first) first = got;
        else {
            cr_assert_eq(memcmp(first, got, (size_t)Q * 4), 0, "%s: launch %d differs bitwise from launch 0", what, launch);
            free(got);
        }
        free(gq); free(gk); free(gv); free(kc_now); free(vc_now); free(want); free(scores);
        cudaFree(q); cudaFree(k); cudaFree(v); cudaFree(attn);
    }
    unsigned *c = gpu_download(counters, (size_t)n_kv * 4);
    for (int i = 0; i < n_kv; i++) cr_assert_eq(c[i], 0u, "decode attention counter %d left at %u", i, c[i]);
    free(c); free(first);
    free(kf); free(vf); free(raw); free(qn); free(kn); free(rawd); free(want_q); free(want_k); free(want_v);
    rope_table_free(&rope);
    cudaFree(kc); cudaFree(vc); cudaFree(draw); cudaFree(dqn); cudaFree(dkn); cudaFree(dcos); cudaFree(dsin);
    cudaFree(dpos); cudaFree(po); cudaFree(pml); cudaFree(counters);
}

Test(kernels, attention_decode_one_launch_matches_double_loop, .timeout = 600) {
    SKIP_WITHOUT_GPU();
    const int shapes[][3] = {{64, 4, 4}, {64, 8, 4}, {128, 8, 2}, {128, 16, 2}, {128, 16, 8}};  // GQA 1/2/4/8/2
    const int contexts[] = {1, 7, 33, 64, 1000, 5000, 32769};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t c = 0; c < sizeof contexts / sizeof contexts[0]; c++)
            for (int kv_bf16 = 0; kv_bf16 < 2; kv_bf16++)
                check_attention_decode(shapes[s][0], shapes[s][1], shapes[s][2], contexts[c], kv_bf16,
                                       (int)((s + c + kv_bf16) % 3 == 0), 3000 + s * 100 + c * 10 + kv_bf16);
}

Test(kernels, output_projection_residual_matches_double_loop) {
    SKIP_WITHOUT_GPU();
    const int cases[][3] = {{1001, 3, 68}, {1024, 16, 128}, {200, 5, 64}};  // hidden, heads, hd (204: not a multiple of 8)
    for (int ci = 0; ci < 3; ci++) {
        ModelDims d = {cases[ci][0], 64, cases[ci][1], 1, cases[ci][2], 10, 1e-6f};
        int H = d.hidden, Q = dims_q_width(&d);
        float *attn = frandom(Q, 300 + ci, 1.0f, 0.0f), *x = frandom(H, 310 + ci, 1.0f, 0.0f), *wf;
        uint16_t *w = random_bf16((size_t)H * Q, 320 + ci, 0.05f, &wf);
        float *dattn = gpu_upload(attn, Q * 4), *dx = gpu_upload(x, H * 4);
        uint16_t *dw = gpu_upload(w, (size_t)H * Q * 2);
        float *out = gpu_poisoned(H * 4), *resid = gpu_poisoned(H * 4);
        ErrorMessage err;
        cr_assert_eq(launch_output_projection_residual(&d, dattn, dw, dx, out, resid, NULL, 0, &err), 0, "%s", err.text);
        double *a = dalloc(Q), *want_out = dalloc(H), *want_resid = dalloc(H);
        for (int i = 0; i < Q; i++) a[i] = attn[i];
        for (int r = 0; r < H; r++) {
            want_out[r] = cpu_dot(wf + (size_t)r * Q, a, Q);
            want_resid[r] = x[r] + want_out[r];
        }
        float *g_out = gpu_download(out, H * 4), *g_resid = gpu_download(resid, H * 4);
        ASSERT_CLOSE("attn_out", g_out, want_out, H, TOL);
        ASSERT_CLOSE("resid_attn", g_resid, want_resid, H, TOL);
        free(attn); free(x); free(w); free(wf); free(a); free(want_out); free(want_resid); free(g_out); free(g_resid);
        cudaFree(dattn); cudaFree(dx); cudaFree(dw); cudaFree(out); cudaFree(resid);
    }
}

Test(kernels, mlp_fused_matches_double_loop_and_is_deterministic) {
    SKIP_WITHOUT_GPU();
    const int cases[][2] = {{200, 600}, {1001, 2731}, {1024, 3072}};
    for (int ci = 0; ci < 3; ci++) {
        ModelDims d = {cases[ci][0], cases[ci][1], 1, 1, 2, 10, 1e-6f};
        int H = d.hidden, I = d.intermediate;
        float *x = frandom(H, 400 + ci, 1.0f, 0.0f), *nw = frandom(H, 410 + ci, 0.2f, 1.0f), *wguf, *wdf;
        uint16_t *wgu = random_bf16((size_t)2 * I * H, 420 + ci, 0.08f, &wguf), *wd = random_bf16((size_t)H * I, 430 + ci, 0.05f, &wdf);
        float *dx = gpu_upload(x, H * 4), *dnw = gpu_upload(nw, H * 4);
        uint16_t *dwgu = gpu_upload(wgu, (size_t)2 * I * H * 2), *dwd = gpu_upload(wd, (size_t)H * I * 2);
        unsigned long long *barrier = gpu_poisoned(8);
        CUDA_ASSERT(cudaMemset(barrier, 0, 8));
        int blocks;
        ErrorMessage err;
        cr_assert_eq(mlp_fused_grid_blocks(&d, &blocks, &err), 0, "%s", err.text);
        double *h = dalloc(H), *g = dalloc(I), *u = dalloc(I), *act = dalloc(I), *out = dalloc(H), *resid = dalloc(H);
        cpu_rmsnorm(x, nw, H, d.eps, h);
        for (int j = 0; j < I; j++) {
            g[j] = cpu_dot(wguf + (size_t)j * H, h, H);
            u[j] = cpu_dot(wguf + (size_t)(I + j) * H, h, H);
            act[j] = g[j] / (1.0 + exp(-g[j])) * u[j];
        }
        for (int i = 0; i < H; i++) {
            out[i] = cpu_dot(wdf + (size_t)i * I, act, I);
            resid[i] = x[i] + out[i];
        }
        float *first_resid = NULL;
        // Launches 0-2 replay the chosen grid (the barrier must re-arm, results bit-identical); launch 3
        // runs a 7-block grid, where every block loops over many gate/up rows and whole down rows.
        for (int launch = 0; launch < 4; launch++) {
            int grid = launch < 3 ? blocks : 7;
            if (launch == 3) CUDA_ASSERT(cudaMemset(barrier, 0, 8));  // the barrier counts in multiples of the grid
            float *dn = gpu_poisoned(H * 4), *dg = gpu_poisoned(I * 4), *du = gpu_poisoned(I * 4), *da = gpu_poisoned(I * 4),
                  *dout = gpu_poisoned(H * 4), *dres = gpu_poisoned(H * 4);
            cr_assert_eq(launch_mlp_fused(&d, dx, dnw, dwgu, dwd, dn, dg, du, da, dout, dres, barrier, grid, NULL, 0, &err), 0,
                         "%s", err.text);
            float *gn = gpu_download(dn, H * 4), *gg = gpu_download(dg, I * 4), *gu = gpu_download(du, I * 4),
                  *ga = gpu_download(da, I * 4), *gout = gpu_download(dout, H * 4), *gres = gpu_download(dres, H * 4);
            ASSERT_CLOSE("mlp_norm", gn, h, H, TOL);
            ASSERT_CLOSE("gate", gg, g, I, TOL);
            ASSERT_CLOSE("up", gu, u, I, TOL);
            ASSERT_CLOSE("act", ga, act, I, TOL);
            ASSERT_CLOSE("mlp_out", gout, out, H, TOL);
            ASSERT_CLOSE("resid_mlp", gres, resid, H, TOL);
            if (!first_resid) first_resid = gres;
            else {
                if (launch < 3)
                    cr_assert_eq(memcmp(first_resid, gres, H * 4), 0, "mlp case %d: launch %d differs bitwise from launch 0",
                                 ci, launch);
                free(gres);
            }
            free(gn); free(gg); free(gu); free(ga); free(gout);
            cudaFree(dn); cudaFree(dg); cudaFree(du); cudaFree(da); cudaFree(dout); cudaFree(dres);
        }
        free(first_resid);
        free(x); free(nw); free(wgu); free(wguf); free(wd); free(wdf); free(h); free(g); free(u); free(act); free(out); free(resid);
        cudaFree(dx); cudaFree(dnw); cudaFree(dwgu); cudaFree(dwd); cudaFree(barrier);
    }
}

Test(kernels, lm_head_argmax_matches_double_loop) {
    SKIP_WITHOUT_GPU();
    const int cases[][2] = {{264, 50001}, {100, 1000}, {1024, 151936}};
    for (int ci = 0; ci < 3; ci++) {
        ModelDims d = {cases[ci][0], 64, 1, 1, 2, cases[ci][1], 1e-6f};
        int H = d.hidden, V = d.vocab, blocks = lm_head_argmax_blocks(V);
        float *x = frandom(H, 500 + ci, 1.0f, 0.0f), *nw = frandom(H, 510 + ci, 0.2f, 1.0f), *wf;
        uint16_t *w = random_bf16((size_t)V * H, 520 + ci, 0.05f, &wf);
        float *dx = gpu_upload(x, H * 4), *dnw = gpu_upload(nw, H * 4);
        uint16_t *dw = gpu_upload(w, (size_t)V * H * 2);
        float *pmax = gpu_poisoned(blocks * 4);
        int *pidx = gpu_poisoned(blocks * 4);
        unsigned *counter = gpu_poisoned(4);
        CUDA_ASSERT(cudaMemset(counter, 0, 4));
        double *h = dalloc(H), *logits = dalloc(V);
        cpu_rmsnorm(x, nw, H, d.eps, h);
        for (int r = 0; r < V; r++) logits[r] = cpu_dot(wf + (size_t)r * H, h, H);
        for (int launch = 0; launch < 2; launch++) {
            float *fn = gpu_poisoned(H * 4), *lg = gpu_poisoned((size_t)V * 4);
            int *next = gpu_poisoned(4);
            ErrorMessage err;
            cr_assert_eq(launch_lm_head_argmax(&d, dx, dnw, dw, fn, lg, pmax, pidx, counter, next, NULL, 0, &err), 0, "%s", err.text);
            float *gfn = gpu_download(fn, H * 4), *glg = gpu_download(lg, (size_t)V * 4);
            int *gnext = gpu_download(next, 4);
            ASSERT_CLOSE("final_norm", gfn, h, H, TOL);
            ASSERT_CLOSE("logits", glg, logits, V, TOL);
            int best = 0;
            for (int r = 1; r < V; r++) if (glg[r] > glg[best]) best = r;
            cr_assert_eq(*gnext, best, "case %d: next token %d, argmax of the logits is %d", ci, *gnext, best);
            free(gfn); free(glg); free(gnext);
            cudaFree(fn); cudaFree(lg); cudaFree(next);
        }
        free(x); free(nw); free(w); free(wf); free(h); free(logits);
        cudaFree(dx); cudaFree(dnw); cudaFree(dw); cudaFree(pmax); cudaFree(pidx); cudaFree(counter);
    }
}

Test(kernels, unfused_ops_match_double_loops) {
    SKIP_WITHOUT_GPU();
    ErrorMessage err;
    // rmsnorm rows
    int rows = 3, n = 1001;
    float *x = frandom((size_t)rows * n, 600, 2.0f, 0.0f), *w = frandom(n, 601, 0.2f, 1.0f);
    float *dx = gpu_upload(x, (size_t)rows * n * 4), *dw = gpu_upload(w, n * 4), *out = gpu_poisoned((size_t)rows * n * 4);
    cr_assert_eq(launch_rmsnorm_rows(dx, dw, rows, n, 1e-6f, out, 0, &err), 0, "%s", err.text);
    double *want = dalloc((size_t)rows * n);
    for (int r = 0; r < rows; r++) cpu_rmsnorm(x + (size_t)r * n, w, n, 1e-6, want + (size_t)r * n);
    float *got = gpu_download(out, (size_t)rows * n * 4);
    ASSERT_CLOSE("rmsnorm_rows", got, want, (size_t)rows * n, TOL);
    free(got); free(want); cudaFree(out);

    // silu * up from a [rows][2*width] GEMM output
    int width = 333;
    float *gu = frandom((size_t)rows * 2 * width, 602, 4.0f, 0.0f);
    float *dgu = gpu_upload(gu, (size_t)rows * 2 * width * 4);
    float *g = gpu_poisoned((size_t)rows * width * 4), *u = gpu_poisoned((size_t)rows * width * 4), *a = gpu_poisoned((size_t)rows * width * 4);
    cr_assert_eq(launch_silu_mul(dgu, rows, width, g, u, a, 0, &err), 0, "%s", err.text);
    double *wa = dalloc((size_t)rows * width);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < width; c++) {
            double gv = gu[(size_t)r * 2 * width + c], uv = gu[(size_t)r * 2 * width + width + c];
            wa[(size_t)r * width + c] = gv / (1 + exp(-gv)) * uv;
        }
    float *ga = gpu_download(a, (size_t)rows * width * 4);
    ASSERT_CLOSE("silu_mul", ga, wa, (size_t)rows * width, TOL);
    free(ga); free(wa); free(gu); cudaFree(dgu); cudaFree(g); cudaFree(u); cudaFree(a);

    // embed + expand: exact
    int vocab = 77, hidden = 45, tokens[4] = {0, 76, 13, 13};
    float *ef;
    uint16_t *e = random_bf16((size_t)vocab * hidden, 603, 1.0f, &ef);
    uint16_t *de = gpu_upload(e, (size_t)vocab * hidden * 2);
    int *dt = gpu_upload(tokens, sizeof tokens);
    float *emb = gpu_poisoned(4 * (size_t)hidden * 4), *exp_all = gpu_poisoned((size_t)vocab * hidden * 4);
    cr_assert_eq(launch_embed(de, dt, 4, hidden, emb, 0, &err), 0, "%s", err.text);
    cr_assert_eq(launch_expand_bf16(de, exp_all, (size_t)vocab * hidden, 0, &err), 0, "%s", err.text);
    float *gemb = gpu_download(emb, 4 * (size_t)hidden * 4), *gexp = gpu_download(exp_all, (size_t)vocab * hidden * 4);
    for (int t = 0; t < 4; t++)
        cr_assert_eq(memcmp(gemb + (size_t)t * hidden, ef + (size_t)tokens[t] * hidden, hidden * 4), 0, "embed row %d", t);
    cr_assert_eq(memcmp(gexp, ef, (size_t)vocab * hidden * 4), 0, "expand_bf16 is not exact");
    free(e); free(ef); free(gemb); free(gexp); cudaFree(de); cudaFree(dt); cudaFree(emb); cudaFree(exp_all);

    // argmax: ties go to the lowest index, NaN never wins
    int m = 100003;
    float *v = frandom(m, 604, 1.0f, 0.0f);
    v[777] = 5.0f; v[99999] = 5.0f; v[5] = NAN;
    float *dv = gpu_upload(v, (size_t)m * 4);
    int *res = gpu_poisoned(4);
    cr_assert_eq(launch_argmax(dv, m, res, 0, &err), 0, "%s", err.text);
    int *gres = gpu_download(res, 4);
    cr_assert_eq(*gres, 777, "argmax %d, expected 777", *gres);
    free(v); free(gres); cudaFree(dv); cudaFree(res);
    free(x); free(w); cudaFree(dx); cudaFree(dw);
}
