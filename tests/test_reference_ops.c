// Each reference operator against a naive double-precision loop on random inputs.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "../model/rope_table.h"
#include "../reference/ops.h"
#include "test_support.h"

// fp32 storage against a double-precision result: rounding alone stays near 1e-7.
#define OP_TOLERANCE 2e-6

static double rel_l2(const float *got, const double *want, long n) {
    double diff = 0, norm = 0;
    for (long i = 0; i < n; i++) {
        diff += (got[i] - want[i]) * (got[i] - want[i]);
        norm += want[i] * want[i];
    }
    return sqrt(diff) / sqrt(norm);
}

static float *random_floats(long n, uint64_t seed, float scale) {
    float *x = malloc(n * sizeof *x);
    cr_assert_not_null(x);
    test_fill_random(x, n, seed, scale);
    return x;
}

static double *doubles(long n) {
    double *x = malloc(n * sizeof *x);
    cr_assert_not_null(x);
    return x;
}

static void naive_rmsnorm(double *out, const float *x, const float *weight, int rows, int dim, double eps) {
    for (int r = 0; r < rows; r++) {
        double ss = 0;
        for (int i = 0; i < dim; i++) ss += (double)x[r * dim + i] * x[r * dim + i];
        double inv = 1.0 / sqrt(ss / dim + eps);
        for (int i = 0; i < dim; i++) out[r * dim + i] = x[r * dim + i] * inv * weight[i];
    }
}

Test(reference_ops, rmsnorm_matches_double) {
    int rows = 5, dim = 1000;
    float *x = random_floats(rows * dim, 1, 3.0f), *w = random_floats(dim, 2, 1.0f), *out = random_floats(rows * dim, 3, 1);
    double *want = doubles(rows * dim);
    rmsnorm(out, x, w, rows, dim, 1e-6f);
    naive_rmsnorm(want, x, w, rows, dim, 1e-6f);
    cr_expect_lt(rel_l2(out, want, rows * dim), OP_TOLERANCE);
    rmsnorm(x, x, w, rows, dim, 1e-6f);  // in place gives the same
    for (int i = 0; i < rows * dim; i++) cr_assert_eq(x[i], out[i]);
    free(x); free(w); free(out); free(want);
}

Test(reference_ops, rmsnorm_per_head_matches_double) {
    int rows = 3, heads = 6, head_dim = 128;
    long n = (long)rows * heads * head_dim;
    float *x = random_floats(n, 4, 2.0f), *w = random_floats(head_dim, 5, 1.0f), *out = random_floats(n, 6, 1);
    double *want = doubles(n);
    rmsnorm_per_head(out, x, w, rows, heads, head_dim, 1e-6f);
    naive_rmsnorm(want, x, w, rows * heads, head_dim, 1e-6f);
    cr_expect_lt(rel_l2(out, want, n), OP_TOLERANCE);
    // Each head is normalised on its own: a head's rms after the norm (weight 1) is 1.
    float *ones = malloc(head_dim * sizeof *ones);
    for (int i = 0; i < head_dim; i++) ones[i] = 1.0f;
    rmsnorm_per_head(out, x, ones, rows, heads, head_dim, 0.0f);
    for (int h = 0; h < rows * heads; h++) {
        double ss = 0;
        for (int i = 0; i < head_dim; i++) ss += (double)out[h * head_dim + i] * out[h * head_dim + i];
        cr_expect_float_eq(sqrt(ss / head_dim), 1.0, 1e-6);
    }
    free(x); free(w); free(out); free(want); free(ones);
}

// eps where it matters: the random tests above use eps 1e-6 on inputs of mean square ~1, where
// dropping eps, or hard-coding Qwen3's 1e-6, changes nothing measurable. Here the expected values are
// written out by hand from the definition, in double, with eps of the order of the mean square.
static void expect_close_to(const float *got, const double *want, int n, const char *what) {
    for (int i = 0; i < n; i++)
        cr_expect(fabs(got[i] - want[i]) <= 1e-6 * fabs(want[i]), "%s: element %d is %.9g, expected %.9g", what, i,
                  got[i], want[i]);
}

Test(reference_ops, rmsnorm_with_eps_comparable_to_the_mean_square) {
    // mean(x^2) = (1 + 4 + 9 + 16) / 4 = 7.5; eps = 7.5 doubles it: 1 / sqrt(15).
    const float x[4] = {1, 2, 3, 4}, weight[4] = {1, 0.5f, 2, -1};
    float out[4];
    rmsnorm(out, x, weight, 1, 4, 7.5f);
    double r = 1.0 / sqrt(15.0);
    const double want[4] = {1 * r * 1, 2 * r * 0.5, 3 * r * 2, 4 * r * -1};
    expect_close_to(out, want, 4, "eps = mean square");

    // Two rows, eps 0.5: row 0 mean square 1 -> 1 / sqrt(1.5); row 1 mean square 0.0625 -> 1 / sqrt(0.5625)
    // = 4 / 3. eps is not a bound on the mean square, and it is added once per row, not per element.
    const float rows[8] = {1, -1, 1, -1, 0.25f, 0.25f, -0.25f, 0.25f}, ones[4] = {1, 1, 1, 1};
    float normed[8];
    rmsnorm(normed, rows, ones, 2, 4, 0.5f);
    double r0 = 1.0 / sqrt(1.5), r1 = 4.0 / 3.0;
    const double want_rows[8] = {r0, -r0, r0, -r0, 0.25 * r1, 0.25 * r1, -0.25 * r1, 0.25 * r1};
    expect_close_to(normed, want_rows, 8, "two rows, eps 0.5");

    // eps far above the mean square (1e-6 here, eps 1e-3): the norm is nearly the identity scaled by
    // 1 / sqrt(eps), not a unit-rms output.
    const float small[4] = {1e-3f, -2e-3f, 0, 1e-3f};
    float small_out[4];
    rmsnorm(small_out, small, ones, 1, 4, 1e-3f);
    double ms = (1e-6 + 4e-6 + 0 + 1e-6) / 4, rs = 1.0 / sqrt(ms + 1e-3);
    const double want_small[4] = {(double)1e-3f * rs, (double)-2e-3f * rs, 0, (double)1e-3f * rs};
    expect_close_to(small_out, want_small, 4, "eps above the mean square");
}

Test(reference_ops, rmsnorm_per_head_with_eps_comparable_to_the_mean_square) {
    // Two heads of 4, eps 1: head 0 mean square 1 -> 1 / sqrt(2); head 1 mean square 4 -> 1 / sqrt(5).
    // Each head gets its own mean square and its own eps; the weight is per head_dim element.
    const float x[8] = {1, 1, -1, 1, 2, -2, 2, 2}, weight[4] = {1, 2, 3, 0.5f};
    float out[8];
    rmsnorm_per_head(out, x, weight, 1, 2, 4, 1.0f);
    double r0 = 1.0 / sqrt(2.0), r1 = 1.0 / sqrt(5.0);
    const double want[8] = {1 * r0 * 1, 1 * r0 * 2, -1 * r0 * 3, 1 * r0 * 0.5,
                            2 * r1 * 1, -2 * r1 * 2, 2 * r1 * 3, 2 * r1 * 0.5};
    expect_close_to(out, want, 8, "per head, eps 1");
}

Test(reference_ops, rope_matches_double_at_far_positions) {
    int heads = 3, head_dim = 64, half = head_dim / 2;
    double theta = 1e6;
    int positions[] = {0, 1, 17, 2048, 10007, 32768, 40959};
    RopeTable table;
    ErrorMessage err;
    cr_assert_eq(rope_table_init(&table, head_dim, theta, 40960, &err), 0, "%s", err.text);
    for (size_t p = 0; p < sizeof positions / sizeof positions[0]; p++) {
        int rows = 2, first = positions[p] == 40959 ? 40958 : positions[p];
        long n = (long)rows * heads * head_dim;
        float *x = random_floats(n, 7 + p, 1.0f);
        double *want = doubles(n);
        for (int r = 0; r < rows; r++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < half; i++) {
                    double angle = (first + r) * pow(theta, -2.0 * i / head_dim);
                    long base = ((long)r * heads + h) * head_dim;
                    double x1 = x[base + i], x2 = x[base + i + half];
                    want[base + i] = x1 * cos(angle) - x2 * sin(angle);
                    want[base + i + half] = x2 * cos(angle) + x1 * sin(angle);
                }
        rope(x, rows, heads, head_dim, first, &table);
        cr_expect_lt(rel_l2(x, want, n), OP_TOLERANCE, "position %d", first);
        free(x); free(want);
    }
    rope_table_free(&table);
}

static void naive_attention(double *out, const float *q, const float *k, const float *v, int rows, int first,
                            int heads, int kv_heads, int head_dim) {
    int group = heads / kv_heads;
    double *scores = doubles(first + rows);
    for (int r = 0; r < rows; r++)
        for (int h = 0; h < heads; h++) {
            int visible = first + r + 1, kvh = h / group;
            double max = -INFINITY, sum = 0;
            for (int j = 0; j < visible; j++) {
                double dot = 0;
                for (int d = 0; d < head_dim; d++)
                    dot += (double)q[((long)r * heads + h) * head_dim + d] * k[((long)j * kv_heads + kvh) * head_dim + d];
                scores[j] = dot / sqrt(head_dim);
                if (scores[j] > max) max = scores[j];
            }
            for (int j = 0; j < visible; j++) sum += scores[j] = exp(scores[j] - max);
            for (int d = 0; d < head_dim; d++) {
                double acc = 0;
                for (int j = 0; j < visible; j++) acc += scores[j] * v[((long)j * kv_heads + kvh) * head_dim + d];
                out[((long)r * heads + h) * head_dim + d] = acc / sum;
            }
        }
    free(scores);
}

Test(reference_ops, causal_gqa_attention_matches_double) {
    int ratios[] = {1, 2, 4, 8}, lengths[] = {1, 7, 64}, firsts[] = {0, 5};
    for (int a = 0; a < 4; a++)
        for (int t = 0; t < 3; t++)
            for (int f = 0; f < 2; f++) {
                int kv_heads = 2, heads = kv_heads * ratios[a], head_dim = 64, rows = lengths[t], first = firsts[f];
                int context = first + rows;
                long nq = (long)rows * heads * head_dim, nkv = (long)context * kv_heads * head_dim;
                uint64_t seed = 100 + a * 10 + t * 3 + f;
                float *q = random_floats(nq, seed, 2.0f), *k = random_floats(nkv, seed + 1, 2.0f);
                float *v = random_floats(nkv, seed + 2, 1.0f), *out = random_floats(nq, seed + 3, 1.0f);
                float *scores = malloc((size_t)rows * context * sizeof *scores);
                double *want = doubles(nq);
                attention(out, q, k, v, rows, first, heads, kv_heads, head_dim, scores);
                naive_attention(want, q, k, v, rows, first, heads, kv_heads, head_dim);
                cr_expect_lt(rel_l2(out, want, nq), OP_TOLERANCE, "ratio %d, T %d, first %d", ratios[a], rows, first);
                free(q); free(k); free(v); free(out); free(scores); free(want);
            }
}

Test(reference_ops, attention_is_causal) {
    // Changing a key after position p must not change rows at positions <= p.
    int heads = 4, kv_heads = 2, head_dim = 16, rows = 6;
    long nq = (long)rows * heads * head_dim, nkv = (long)rows * kv_heads * head_dim;
    float *q = random_floats(nq, 11, 1), *k = random_floats(nkv, 12, 1), *v = random_floats(nkv, 13, 1);
    float *before = random_floats(nq, 14, 1), *after = random_floats(nq, 15, 1), scores[6 * 6];
    attention(before, q, k, v, rows, 0, heads, kv_heads, head_dim, scores);
    for (long i = 4 * kv_heads * head_dim; i < nkv; i++) { k[i] += 1.0f; v[i] -= 1.0f; }
    attention(after, q, k, v, rows, 0, heads, kv_heads, head_dim, scores);
    for (long i = 0; i < 4L * heads * head_dim; i++) cr_assert_eq(before[i], after[i], "row %ld changed", i / (heads * head_dim));
    int changed = 0;
    for (long i = 4L * heads * head_dim; i < nq; i++) changed |= before[i] != after[i];
    cr_expect(changed);
    free(q); free(k); free(v); free(before); free(after);
}

Test(reference_ops, silu_mul_matches_double) {
    long n = 3001;
    float *gate = random_floats(n, 21, 8.0f), *up = random_floats(n, 22, 2.0f), *out = random_floats(n, 23, 1.0f);
    double *want = doubles(n);
    for (long i = 0; i < n; i++) want[i] = gate[i] / (1.0 + exp(-(double)gate[i])) * up[i];
    silu_mul(out, gate, up, n);
    cr_expect_lt(rel_l2(out, want, n), OP_TOLERANCE);
    free(gate); free(up); free(out); free(want);
}

Test(reference_ops, linear_non_square_gemv_and_gemm) {
    int shapes[][3] = {{1, 37, 53}, {5, 37, 53}, {7, 130, 3}, {1, 1000, 129}, {64, 96, 200}};
    for (int s = 0; s < 5; s++) {
        int rows = shapes[s][0], in = shapes[s][1], out_dim = shapes[s][2];
        float *x = random_floats((long)rows * in, 31 + s, 1.0f), *w = random_floats((long)out_dim * in, 41 + s, 0.1f);
        float *out = random_floats((long)rows * out_dim, 51 + s, 1.0f);
        double *want = doubles((long)rows * out_dim);
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < out_dim; o++) {
                double acc = 0;
                for (int i = 0; i < in; i++) acc += (double)x[(long)r * in + i] * w[(long)o * in + i];
                want[(long)r * out_dim + o] = acc;
            }
        linear(out, x, w, rows, in, out_dim);
        cr_expect_lt(rel_l2(out, want, (long)rows * out_dim), OP_TOLERANCE, "%d x %d -> %d", rows, in, out_dim);
        free(x); free(w); free(out); free(want);
    }
}

Test(reference_ops, argmax_lowest_index_wins_ties_and_nan_never_wins) {
    float a[] = {1, 3, 3, 2};
    cr_expect_eq(argmax(a, 4), 1);
    float b[] = {NAN, -5, -1, NAN};
    cr_expect_eq(argmax(b, 4), 2);
}
