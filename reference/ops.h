// The reference's operators: fp32 storage, plain loops and OpenBLAS, written to read like the math
// in docs/DESIGN.md. Every tensor is row-major; a "row" is one token. Sums of squares and softmax sums
// accumulate in double: the reference is the ground truth, so it spends precision where it is cheap.
#ifndef FUSECHECK_REFERENCE_OPS_H
#define FUSECHECK_REFERENCE_OPS_H

#include "../model/rope_table.h"

// out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight.   x, out: [n_rows, dim]; weight: [dim].
// out may alias x.
void rmsnorm(float *out, const float *x, const float *weight, int n_rows, int dim, float eps);

// Qwen3's qk-norm: rmsnorm applied to each head_dim slice of each row.
// x, out: [n_rows, n_heads * head_dim]; weight: [head_dim]. out may alias x.
void rmsnorm_per_head(float *out, const float *x, const float *weight, int n_rows, int n_heads,
                      int head_dim, float eps);

// Rotary embedding, rotate-half (NeoX) layout, in place: for each head, pairs (i, i + head_dim/2)
// rotate by the angle of row r's position first_position + r, read from the shared table.
// x: [n_rows, n_heads * head_dim]; the table must cover first_position + n_rows positions.
void rope(float *x, int n_rows, int n_heads, int head_dim, int first_position, const RopeTable *table);

// Causal grouped-query attention for rows at positions [first_position, first_position + n_rows).
// q: [n_rows, n_heads * head_dim]; k_cache, v_cache: [>= first_position + n_rows, n_kv_heads * head_dim]
// holding every position up to the last row's; query head h reads kv head h / (n_heads / n_kv_heads).
// out[r, h] = softmax_j<=pos(r) (q[r, h] . k[j, kvh] / sqrt(head_dim)) . v[j, kvh].
// One row: plain loops with double sums. Several rows (prefill): sgemm for Q K^T and P V per head.
// scores: scratch of n_rows * (first_position + n_rows) floats.
void attention(float *out, const float *q, const float *k_cache, const float *v_cache, int n_rows,
               int first_position, int n_heads, int n_kv_heads, int head_dim, float *scores);

// out[i] = silu(gate[i]) * up[i], silu(x) = x / (1 + exp(-x)).  out may alias either input.
void silu_mul(float *out, const float *gate, const float *up, long n);

// out[n_rows, out_dim] = x[n_rows, in_dim] . weight^T, weight [out_dim, in_dim] as torch.nn.Linear
// stores it. sgemv for one row (decode), sgemm otherwise (prefill).
void linear(float *out, const float *x, const float *weight, int n_rows, int in_dim, int out_dim);

// x[i] += y[i]  (the residual stream).
void add_inplace(float *x, const float *y, long n);

// Index of the largest element; the lowest index wins a tie; NaN never wins.
int argmax(const float *x, int n);

#endif
