// Error metrics of one tensor under test (f) against its reference (r), and the pass/fail rule.
//
//   max_abs  = max|f-r|          rel_l2 = ||f-r||_2 / ||r||_2        norm_max = max|f-r| / max|r|
//   allclose = count of |f-r| > atol + rtol*|r| (numpy semantics), with the index of the largest excess
//   cosine   = <f,r> / (||f|| ||r||)
// Sums are accumulated in double. The error metrics are taken over the element pairs where both sides
// are finite; NaN and Inf are counted separately on each side and any of them fails the tensor, so a
// single NaN neither hides the rest of the error nor turns every number into nan.
#ifndef FUSECHECK_METRICS_H
#define FUSECHECK_METRICS_H

#include <stddef.h>

typedef struct {
    double max_rel_l2;    // default 1e-3
    double max_norm_max;  // default 1e-3
    int check_allclose;   // 1 when atol/rtol were given: allclose violations then fail the tensor
    double atol;
    double rtol;
} Tolerances;

typedef struct {
    size_t n;                        // elements compared
    double max_abs;
    double rel_l2;                   // +inf when ||r|| == 0 and f != r
    double norm_max;                 // +inf when max|r| == 0 and f != r
    double cosine;                   // 1 when both are all-zero, 0 when only one is
    size_t max_abs_index;            // where max_abs is (the first such element)
    double value_f, value_r;         // the two values at max_abs_index (0 and 0 when nothing finite was compared)
    double max_abs_r;                // max|r| over the finite pairs: norm_max's denominator
    size_t n_beyond;                 // elements with |f-r| > max_norm_max * max|r|: each alone fails norm_max
    // allclose (computed only when tolerances->check_allclose)
    size_t allclose_violations;
    long allclose_worst_index;       // largest |f-r| - (atol + rtol|r|) among violations; -1 if none
    double allclose_worst_excess;
    // non-finite values; any of them fails the tensor
    size_t nan_f, inf_f;             // under test
    size_t nan_r, inf_r;             // reference
    // logits only (metrics_top1): per row, argmax of f vs argmax of r
    int has_top1;
    int top1_rows;
    int top1_mismatches;             // rows whose argmax differs
    int top1_disagreements;          // mismatching rows where the reference's top-2 margin > 2 * max_abs
    long top1_f, top1_r;             // argmax of the reported row (first mismatch, else row 0)
    double top1_margin;              // reference's top-1 minus top-2 logit in that row
} TensorMetrics;

Tolerances tolerances_default(void);

// Computes every metric except top-1 over n elements. tol may be NULL (no allclose; n_beyond then counts
// against tolerances_default()'s max_norm_max).
void metrics_compute(const float *f, const float *r, size_t n, const Tolerances *tol, TensorMetrics *m);

// Adds the top-1 agreement of logits [rows, cols] to m (call after metrics_compute on the same data:
// the near-tie rule uses m->max_abs). Each logit may be off by up to max_abs, so the reference's top two
// can swap whenever their margin is at most 2 * max_abs: such a mismatching row is a near-tie, reported but
// not a failure. Only a mismatch with margin > 2 * max_abs is a disagreement. Note that when m->max_abs is
// the error of these same logits, a flip always has margin <= 2 * max_abs (the two logits that swapped moved
// by at least margin together), so the flip itself never fails: the error that caused it must then fail
// rel_l2 or norm_max. The rule bites when m->max_abs is a bound from elsewhere (e.g. a forced run's error).
void metrics_top1(const float *f, const float *r, int rows, int cols, TensorMetrics *m);

// 1 when any NaN or Inf was seen on either side.
int metrics_has_nonfinite(const TensorMetrics *m);

// rel_l2 used to rank tensors: +inf for a tensor with NaN/Inf, so it always ranks worst.
double metrics_rank(const TensorMetrics *m);

// Returns 1 when m passes tol, else 0 and writes the first reason into why (one short phrase such as
// "rel_l2 2.1e-02 > 1e-03" or "3 NaN in under test"). why may be NULL.
int metrics_pass(const TensorMetrics *m, const Tolerances *tol, char *why, size_t why_size);

#endif
