#include "ops.h"

#include <cblas.h>
#include <math.h>

void rmsnorm(float *out, const float *x, const float *weight, int n_rows, int dim, float eps) {
    for (int r = 0; r < n_rows; r++) {
        const float *row = x + (long)r * dim;
        double sum_squares = 0.0;
        for (int i = 0; i < dim; i++) sum_squares += (double)row[i] * row[i];
        float inverse_rms = (float)(1.0 / sqrt(sum_squares / dim + eps));
        float *out_row = out + (long)r * dim;
        for (int i = 0; i < dim; i++) out_row[i] = row[i] * inverse_rms * weight[i];
    }
}

void rmsnorm_per_head(float *out, const float *x, const float *weight, int n_rows, int n_heads,
                      int head_dim, float eps) {
    // A row of n_heads heads is n_heads rows of head_dim as far as the norm is concerned.
    rmsnorm(out, x, weight, n_rows * n_heads, head_dim, eps);
}

void rope(float *x, int n_rows, int n_heads, int head_dim, int first_position, const RopeTable *table) {
    int half = head_dim / 2;
    for (int r = 0; r < n_rows; r++) {
        const float *cos_row = table->cos + (long)(first_position + r) * half;
        const float *sin_row = table->sin + (long)(first_position + r) * half;
        for (int h = 0; h < n_heads; h++) {
            float *head = x + ((long)r * n_heads + h) * head_dim;
            for (int i = 0; i < half; i++) {
                float x1 = head[i], x2 = head[i + half];
                head[i] = x1 * cos_row[i] - x2 * sin_row[i];
                head[i + half] = x2 * cos_row[i] + x1 * sin_row[i];
            }
        }
    }
}

// One row (decode): plain loops, sums in double; at batch 1 this is cheaper than BLAS calls.
static void attention_one_row(float *out, const float *q, const float *k_cache, const float *v_cache, int position,
                              int n_heads, int n_kv_heads, int head_dim, float *scores) {
    int group = n_heads / n_kv_heads, kv_width = n_kv_heads * head_dim;
    float scale = 1.0f / sqrtf((float)head_dim);
    int n_visible = position + 1;
    for (int h = 0; h < n_heads; h++) {
        const float *query = q + (long)h * head_dim;
        long kv_offset = (long)(h / group) * head_dim;
        float max_score = -INFINITY;
        for (int j = 0; j < n_visible; j++) {
            const float *key = k_cache + (long)j * kv_width + kv_offset;
            double dot = 0.0;
            for (int d = 0; d < head_dim; d++) dot += (double)query[d] * key[d];
            scores[j] = (float)dot * scale;
            if (scores[j] > max_score) max_score = scores[j];
        }
        double denominator = 0.0;
        for (int j = 0; j < n_visible; j++) {
            scores[j] = expf(scores[j] - max_score);
            denominator += scores[j];
        }
        for (int d = 0; d < head_dim; d++) {
            double sum = 0.0;
            for (int j = 0; j < n_visible; j++) sum += (double)scores[j] * v_cache[(long)j * kv_width + kv_offset + d];
            out[(long)h * head_dim + d] = (float)(sum / denominator);
        }
    }
}

void attention(float *out, const float *q, const float *k_cache, const float *v_cache, int n_rows,
               int first_position, int n_heads, int n_kv_heads, int head_dim, float *scores) {
    if (n_rows == 1) {
        attention_one_row(out, q, k_cache, v_cache, first_position, n_heads, n_kv_heads, head_dim, scores);
        return;
    }
    // Several rows (prefill): per head, S = Q K^T for every row against every cached position through
    // sgemm, a causal softmax per row (masked scores become exact zeros), then O = P V through sgemm.
    int group = n_heads / n_kv_heads;
    int q_width = n_heads * head_dim, kv_width = n_kv_heads * head_dim;
    int n_context = first_position + n_rows;
    float scale = 1.0f / sqrtf((float)head_dim);
    for (int h = 0; h < n_heads; h++) {
        const float *queries = q + (long)h * head_dim;                    // [n_rows, head_dim], stride q_width
        const float *keys = k_cache + (long)(h / group) * head_dim;       // [n_context, head_dim], stride kv_width
        const float *values = v_cache + (long)(h / group) * head_dim;     // likewise
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_rows, n_context, head_dim, scale, queries, q_width,
                    keys, kv_width, 0.0f, scores, n_context);
        for (int r = 0; r < n_rows; r++) {
            float *row = scores + (long)r * n_context;
            int n_visible = first_position + r + 1;  // causal: keys 0..position of this row
            float max_score = -INFINITY;
            for (int j = 0; j < n_visible; j++)
                if (row[j] > max_score) max_score = row[j];
            double denominator = 0.0;
            for (int j = 0; j < n_visible; j++) {
                row[j] = expf(row[j] - max_score);
                denominator += row[j];
            }
            float inverse = (float)(1.0 / denominator);
            for (int j = 0; j < n_visible; j++) row[j] *= inverse;
            for (int j = n_visible; j < n_context; j++) row[j] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n_rows, head_dim, n_context, 1.0f, scores, n_context,
                    values, kv_width, 0.0f, out + (long)h * head_dim, q_width);
    }
}

void silu_mul(float *out, const float *gate, const float *up, long n) {
    for (long i = 0; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void linear(float *out, const float *x, const float *weight, int n_rows, int in_dim, int out_dim) {
    if (n_rows == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, out_dim, in_dim, 1.0f, weight, in_dim, x, 1, 0.0f, out, 1);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_rows, out_dim, in_dim, 1.0f, x, in_dim,
                    weight, in_dim, 0.0f, out, out_dim);
    }
}

void add_inplace(float *x, const float *y, long n) {
    for (long i = 0; i < n; i++) x[i] += y[i];
}

int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best] || (x[best] != x[best] && x[i] == x[i])) best = i;
    return best;
}
