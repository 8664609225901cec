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

void attention(float *out, const float *q, const float *k_cache, const float *v_cache, int n_rows,
               int first_position, int n_heads, int n_kv_heads, int head_dim, float *scores) {
    int group = n_heads / n_kv_heads;
    int q_width = n_heads * head_dim, kv_width = n_kv_heads * head_dim;
    float scale = 1.0f / sqrtf((float)head_dim);
    for (int r = 0; r < n_rows; r++) {
        int n_visible = first_position + r + 1;  // causal: keys 0..position of this row
        for (int h = 0; h < n_heads; h++) {
            const float *query = q + (long)r * q_width + (long)h * head_dim;
            int kv_head = h / group;
            float max_score = -INFINITY;
            for (int j = 0; j < n_visible; j++) {
                const float *key = k_cache + (long)j * kv_width + (long)kv_head * head_dim;
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
            float *out_head = out + (long)r * q_width + (long)h * head_dim;
            for (int d = 0; d < head_dim; d++) {
                double sum = 0.0;
                for (int j = 0; j < n_visible; j++)
                    sum += (double)scores[j] * v_cache[(long)j * kv_width + (long)kv_head * head_dim + d];
                out_head[d] = (float)(sum / denominator);
            }
        }
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
