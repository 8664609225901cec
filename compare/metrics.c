// Error metrics of one tensor against its reference; see metrics.h for the definitions.
#include "metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Tolerances tolerances_default(void) {
    Tolerances tol = {.max_rel_l2 = 1e-3, .max_norm_max = 1e-3, .check_allclose = 0, .atol = 0.0, .rtol = 0.0};
    return tol;
}

// A ratio of an error to a reference size with the zero rule: an all-zero reference makes any error
// infinitely large and no error exactly zero.
static double error_ratio(double error, double reference_size) {
    if (reference_size > 0.0) return error / reference_size;
    return error > 0.0 ? INFINITY : 0.0;
}

void metrics_compute(const float *f, const float *r, size_t n, const Tolerances *tol, TensorMetrics *m) {
    memset(m, 0, sizeof *m);
    m->n = n;
    m->allclose_worst_index = -1;
    int check_allclose = tol && tol->check_allclose;
    double max_norm_max = tol ? tol->max_norm_max : tolerances_default().max_norm_max;
    // max|r| first, so the main pass can count the elements that alone break the norm_max bound.
    double max_abs_r = 0.0;
    for (size_t i = 0; i < n; i++) {
        double fi = f[i], ri = r[i];
        if (isfinite(fi) && isfinite(ri) && fabs(ri) > max_abs_r) max_abs_r = fabs(ri);
    }
    m->max_abs_r = max_abs_r;
    double sum_diff2 = 0.0, sum_f2 = 0.0, sum_r2 = 0.0, sum_fr = 0.0;
    for (size_t i = 0; i < n; i++) {
        double fi = f[i], ri = r[i];
        if (isnan(fi)) m->nan_f++;
        else if (isinf(fi)) m->inf_f++;
        if (isnan(ri)) m->nan_r++;
        else if (isinf(ri)) m->inf_r++;
        if (!isfinite(fi) || !isfinite(ri)) continue;
        double diff = fabs(fi - ri);
        sum_diff2 += diff * diff;
        sum_f2 += fi * fi;
        sum_r2 += ri * ri;
        sum_fr += fi * ri;
        if (diff > m->max_abs) {
            m->max_abs = diff;
            m->max_abs_index = i;
            m->value_f = fi;
            m->value_r = ri;
        }
        // The same division as norm_max's, so the worst element is counted exactly when norm_max fails.
        if (error_ratio(diff, max_abs_r) > max_norm_max) m->n_beyond++;
        if (check_allclose) {
            double excess = diff - (tol->atol + tol->rtol * fabs(ri));
            if (excess > 0.0) {
                m->allclose_violations++;
                if (m->allclose_worst_index < 0 || excess > m->allclose_worst_excess) {
                    m->allclose_worst_excess = excess;
                    m->allclose_worst_index = (long)i;
                }
            }
        }
    }
    m->rel_l2 = error_ratio(sqrt(sum_diff2), sqrt(sum_r2));
    m->norm_max = error_ratio(m->max_abs, max_abs_r);
    if (sum_f2 == 0.0 && sum_r2 == 0.0) m->cosine = 1.0;
    else if (sum_f2 == 0.0 || sum_r2 == 0.0) m->cosine = 0.0;
    else m->cosine = sum_fr / (sqrt(sum_f2) * sqrt(sum_r2));
}

// Index of the largest value and the runner-up's value (NaN never wins: comparisons with it are false).
static long argmax_with_second(const float *x, int n, double *best, double *second) {
    long index = -1;
    *best = -INFINITY;
    *second = -INFINITY;
    for (int i = 0; i < n; i++) {
        double v = x[i];
        if (index < 0 || v > *best) {
            if (index >= 0) *second = *best;
            *best = v;
            index = i;
        } else if (v > *second) {
            *second = v;
        }
    }
    return index;
}

void metrics_top1(const float *f, const float *r, int rows, int cols, TensorMetrics *m) {
    m->has_top1 = 1;
    m->top1_rows = rows;
    m->top1_mismatches = 0;
    m->top1_disagreements = 0;
    int reported = 0;
    for (int row = 0; row < rows; row++) {
        double f_best, f_second, r_best, r_second;
        long f_top = argmax_with_second(f + (size_t)row * cols, cols, &f_best, &f_second);
        long r_top = argmax_with_second(r + (size_t)row * cols, cols, &r_best, &r_second);
        double margin = r_best - r_second;
        int mismatch = f_top != r_top;
        if (mismatch) {
            m->top1_mismatches++;
            // Each of the two logits may be off by max_abs, so a flip is explained up to 2 * max_abs.
            if (margin > 2.0 * m->max_abs) m->top1_disagreements++;
        }
        // Report row 0 unless a mismatch shows up; then the first mismatching row.
        if (row == 0 || (mismatch && !reported)) {
            m->top1_f = f_top;
            m->top1_r = r_top;
            m->top1_margin = margin;
            if (mismatch) reported = 1;
        }
    }
}

int metrics_has_nonfinite(const TensorMetrics *m) {
    return m->nan_f || m->inf_f || m->nan_r || m->inf_r;
}

double metrics_rank(const TensorMetrics *m) {
    return metrics_has_nonfinite(m) ? INFINITY : m->rel_l2;
}

// A bound as the user would write it: "1e-03" for 1e-3, more digits only when needed.
static void format_bound(char *out, size_t size, double bound) {
    snprintf(out, size, "%.0e", bound);
    if (strtod(out, NULL) != bound) snprintf(out, size, "%.3e", bound);
}

int metrics_pass(const TensorMetrics *m, const Tolerances *tol, char *why, size_t why_size) {
    char scratch[8];
    if (!why) {
        why = scratch;
        why_size = sizeof scratch;
    }
    if (why_size) why[0] = '\0';
    if (m->nan_f || m->inf_f) {
        snprintf(why, why_size, "%zu NaN, %zu Inf in under test", m->nan_f, m->inf_f);
        return 0;
    }
    if (m->nan_r || m->inf_r) {
        snprintf(why, why_size, "%zu NaN, %zu Inf in reference", m->nan_r, m->inf_r);
        return 0;
    }
    char bound[32], bound2[32];
    // Written as !(x <= bound) so that a NaN metric can never pass.
    if (!(m->rel_l2 <= tol->max_rel_l2)) {
        format_bound(bound, sizeof bound, tol->max_rel_l2);
        snprintf(why, why_size, "rel_l2 %.1e > %s", m->rel_l2, bound);
        return 0;
    }
    if (!(m->norm_max <= tol->max_norm_max)) {
        format_bound(bound, sizeof bound, tol->max_norm_max);
        snprintf(why, why_size, "norm_max %.1e > %s", m->norm_max, bound);
        return 0;
    }
    if (tol->check_allclose && m->allclose_violations) {
        format_bound(bound, sizeof bound, tol->atol);
        format_bound(bound2, sizeof bound2, tol->rtol);
        snprintf(why, why_size, "allclose: %zu elements with |f-r| > %s + %s|r|, worst at [%ld]",
                 m->allclose_violations, bound, bound2, m->allclose_worst_index);
        return 0;
    }
    if (m->has_top1 && m->top1_disagreements) {
        snprintf(why, why_size, "top-1 %ld != reference %ld (margin %.2e > 2*max_abs %.2e)", m->top1_f, m->top1_r,
                 m->top1_margin, 2.0 * m->max_abs);
        return 0;
    }
    return 1;
}
