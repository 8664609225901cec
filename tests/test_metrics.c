// compare/metrics on crafted inputs whose every metric is known by hand.
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../compare/metrics.h"

#define EPS 1e-12

Test(metrics, defaults) {
    Tolerances tol = tolerances_default();
    cr_assert_eq(tol.max_rel_l2, 1e-3);
    cr_assert_eq(tol.max_norm_max, 1e-3);
    cr_assert_eq(tol.check_allclose, 0);
}

Test(metrics, identical_tensors_have_zero_error_and_cosine_one) {
    float r[] = {1.0f, -2.0f, 3.0f, 4.0f, 0.5f};
    float f[5];
    memcpy(f, r, sizeof r);
    Tolerances tol = {.max_rel_l2 = 1e-3, .max_norm_max = 1e-3, .check_allclose = 1, .atol = 0.0, .rtol = 0.0};
    TensorMetrics m;
    metrics_compute(f, r, 5, &tol, &m);
    cr_assert_eq(m.n, 5);
    cr_assert_eq(m.max_abs, 0.0);
    cr_assert_eq(m.rel_l2, 0.0);
    cr_assert_eq(m.norm_max, 0.0);
    cr_assert_float_eq(m.cosine, 1.0, EPS);
    cr_assert_eq(m.allclose_violations, 0);
    cr_assert_eq(m.allclose_worst_index, -1);
    cr_assert_eq(m.nan_f + m.inf_f + m.nan_r + m.inf_r, 0);
    char why[128];
    cr_assert_eq(metrics_pass(&m, &tol, why, sizeof why), 1);
    cr_assert_str_empty(why);
}

// r = [1, 2, 3, 4]; f differs by 1/16 at [0], 1/4 at [1], 1/2 at [2] (all exact in binary).
Test(metrics, elements_off_give_exact_metrics_and_allclose_worst_index) {
    float r[] = {1.0f, 2.0f, 3.0f, 4.0f};
    float f[] = {1.0625f, 2.25f, 3.5f, 4.0f};
    // atol 0.1, rtol 0.01: bounds 0.11, 0.12, 0.13, 0.14 -> [0] passes (0.0625), [1] excess 0.13,
    // [2] excess 0.37 (the worst).
    Tolerances tol = {.max_rel_l2 = 1e-3, .max_norm_max = 1e-3, .check_allclose = 1, .atol = 0.1, .rtol = 0.01};
    TensorMetrics m;
    metrics_compute(f, r, 4, &tol, &m);
    double diff2 = 0.0625 * 0.0625 + 0.25 * 0.25 + 0.5 * 0.5;
    cr_assert_eq(m.max_abs, 0.5);
    cr_assert_eq(m.max_abs_index, 2);
    cr_assert_float_eq(m.rel_l2, sqrt(diff2) / sqrt(30.0), EPS);
    cr_assert_float_eq(m.norm_max, 0.5 / 4.0, EPS);
    cr_assert_eq(m.allclose_violations, 2);
    cr_assert_eq(m.allclose_worst_index, 2);
    cr_assert_float_eq(m.allclose_worst_excess, 0.5 - 0.13, EPS);
    double dot = 1.0625 + 2.25 * 2 + 3.5 * 3 + 16.0;
    double norm_f = sqrt(1.0625 * 1.0625 + 2.25 * 2.25 + 3.5 * 3.5 + 16.0);
    cr_assert_float_eq(m.cosine, dot / (norm_f * sqrt(30.0)), EPS);
    char why[128];
    cr_assert_eq(metrics_pass(&m, &tol, why, sizeof why), 0);
    cr_assert(strstr(why, "rel_l2") != NULL, "why: %s", why);
}

Test(metrics, single_element_off_fails_by_rel_l2_with_a_readable_reason) {
    float r[100], f[100];
    for (int i = 0; i < 100; i++) r[i] = f[i] = 1.0f;   // ||r|| = 10
    f[37] = 1.25f;                                       // rel_l2 = 0.25 / 10 = 2.5e-2
    Tolerances tol = tolerances_default();
    TensorMetrics m;
    metrics_compute(f, r, 100, &tol, &m);
    cr_assert_float_eq(m.rel_l2, 0.025, EPS);
    cr_assert_float_eq(m.norm_max, 0.25, EPS);
    cr_assert_eq(m.max_abs_index, 37);
    char why[128];
    cr_assert_eq(metrics_pass(&m, &tol, why, sizeof why), 0);
    cr_assert_str_eq(why, "rel_l2 2.5e-02 > 1e-03");
}

Test(metrics, allclose_is_checked_only_when_given) {
    float r[] = {1.0f, 2.0f};
    float f[] = {1.0f, 2.0f + 1e-6f};
    Tolerances tol = tolerances_default();  // no atol/rtol: allclose not computed, not checked
    TensorMetrics m;
    metrics_compute(f, r, 2, &tol, &m);
    cr_assert_eq(m.allclose_violations, 0);
    cr_assert_eq(metrics_pass(&m, &tol, NULL, 0), 1);
    tol.check_allclose = 1;  // atol = rtol = 0: every differing element violates
    metrics_compute(f, r, 2, &tol, &m);
    cr_assert_eq(m.allclose_violations, 1);
    cr_assert_eq(m.allclose_worst_index, 1);
    char why[160];
    cr_assert_eq(metrics_pass(&m, &tol, why, sizeof why), 0);
    cr_assert(strstr(why, "allclose") != NULL, "why: %s", why);
}

Test(metrics, nan_in_under_test_is_counted_and_fails) {
    float r[] = {1.0f, 2.0f, 3.0f, 4.0f};
    float f[] = {1.0f, NAN, 3.0f, NAN};
    Tolerances tol = tolerances_default();
    TensorMetrics m;
    metrics_compute(f, r, 4, &tol, &m);
    cr_assert_eq(m.nan_f, 2);
    cr_assert_eq(m.inf_f, 0);
    cr_assert_eq(m.nan_r, 0);
    // The finite pairs agree exactly: the NaN does not poison the other metrics...
    cr_assert_eq(m.max_abs, 0.0);
    cr_assert_eq(m.rel_l2, 0.0);
    // ...but the tensor fails and ranks as the worst possible.
    cr_assert(metrics_has_nonfinite(&m));
    cr_assert(isinf(metrics_rank(&m)));
    char why[128];
    cr_assert_eq(metrics_pass(&m, &tol, why, sizeof why), 0);
    cr_assert_str_eq(why, "2 NaN, 0 Inf in under test");
}

Test(metrics, inf_on_either_side_is_counted_and_fails) {
    float r[] = {1.0f, INFINITY, 3.0f};
    float f[] = {-INFINITY, INFINITY, 3.0f};
    Tolerances tol = tolerances_default();
    TensorMetrics m;
    metrics_compute(f, r, 3, &tol, &m);
    cr_assert_eq(m.inf_f, 2);
    cr_assert_eq(m.inf_r, 1);
    cr_assert_eq(m.nan_f + m.nan_r, 0);
    char why[128];
    cr_assert_eq(metrics_pass(&m, &tol, why, sizeof why), 0);
    cr_assert_str_eq(why, "0 NaN, 2 Inf in under test");
    // A NaN only in the reference fails too, and says so.
    float r2[] = {1.0f, NAN};
    float f2[] = {1.0f, 2.0f};
    metrics_compute(f2, r2, 2, &tol, &m);
    cr_assert_eq(m.nan_r, 1);
    cr_assert_eq(metrics_pass(&m, &tol, why, sizeof why), 0);
    cr_assert_str_eq(why, "1 NaN, 0 Inf in reference");
}

Test(metrics, all_zero_reference) {
    float r[4] = {0};
    float f[4] = {0};
    Tolerances tol = tolerances_default();
    TensorMetrics m;
    metrics_compute(f, r, 4, &tol, &m);
    cr_assert_eq(m.rel_l2, 0.0);
    cr_assert_eq(m.norm_max, 0.0);
    cr_assert_eq(m.cosine, 1.0);
    cr_assert_eq(metrics_pass(&m, &tol, NULL, 0), 1);

    f[3] = 1e-20f;  // any error against an all-zero reference is infinitely large relative to it
    metrics_compute(f, r, 4, &tol, &m);
    cr_assert(isinf(m.rel_l2) && m.rel_l2 > 0);
    cr_assert(isinf(m.norm_max) && m.norm_max > 0);
    cr_assert_eq(m.cosine, 0.0);
    cr_assert_eq(m.max_abs, (double)1e-20f);
    cr_assert_eq(metrics_pass(&m, &tol, NULL, 0), 0);
}

Test(metrics, all_zero_under_test_has_cosine_zero) {
    float r[] = {1.0f, 2.0f};
    float f[] = {0.0f, 0.0f};
    TensorMetrics m;
    metrics_compute(f, r, 2, NULL, &m);
    cr_assert_eq(m.cosine, 0.0);
    cr_assert_float_eq(m.rel_l2, 1.0, EPS);
}

Test(metrics, opposite_vectors_have_cosine_minus_one) {
    float r[] = {1.0f, -2.0f, 3.0f};
    float f[] = {-1.0f, 2.0f, -3.0f};
    TensorMetrics m;
    metrics_compute(f, r, 3, NULL, &m);
    cr_assert_float_eq(m.cosine, -1.0, EPS);
    cr_assert_float_eq(m.rel_l2, 2.0, EPS);
}

// Reference margin 0.5 between token 1 and token 2; the logits' max_abs error is 0.375 < 0.5, so the
// flipped argmax is a real disagreement.
Test(metrics, logits_top1_disagreement_fails) {
    float r[] = {0.0f, 5.0f, 4.5f, 1.0f};
    float f[] = {0.0f, 4.75f, 4.875f, 1.0f};
    Tolerances tol = {.max_rel_l2 = 1.0, .max_norm_max = 1.0};  // loose: isolate the top-1 rule
    TensorMetrics m;
    metrics_compute(f, r, 4, &tol, &m);
    metrics_top1(f, r, 1, 4, &m);
    cr_assert_eq(m.max_abs, 0.375);
    cr_assert_eq(m.has_top1, 1);
    cr_assert_eq(m.top1_f, 2);
    cr_assert_eq(m.top1_r, 1);
    cr_assert_float_eq(m.top1_margin, 0.5, EPS);
    cr_assert_eq(m.top1_mismatches, 1);
    cr_assert_eq(m.top1_disagreements, 1);
    char why[160];
    cr_assert_eq(metrics_pass(&m, &tol, why, sizeof why), 0);
    cr_assert(strstr(why, "top-1") != NULL, "why: %s", why);
}

// Reference margin 0.125, max_abs 0.25: the flip is within the error, a near-tie, not a failure.
Test(metrics, logits_near_tie_is_reported_but_passes) {
    float r[] = {0.0f, 5.0f, 4.875f, 1.0f};
    float f[] = {0.0f, 4.75f, 5.0f, 1.0f};
    Tolerances tol = {.max_rel_l2 = 1.0, .max_norm_max = 1.0};
    TensorMetrics m;
    metrics_compute(f, r, 4, &tol, &m);
    metrics_top1(f, r, 1, 4, &m);
    cr_assert_eq(m.max_abs, 0.25);
    cr_assert_eq(m.top1_f, 2);
    cr_assert_eq(m.top1_r, 1);
    cr_assert_float_eq(m.top1_margin, 0.125, EPS);
    cr_assert_eq(m.top1_mismatches, 1);
    cr_assert_eq(m.top1_disagreements, 0);
    cr_assert_eq(metrics_pass(&m, &tol, NULL, 0), 1);
}

Test(metrics, logits_top1_agreement_over_rows_reports_first_mismatch) {
    // Row 0 agrees (argmax 0), row 1 disagrees with a wide margin.
    float r[] = {3.0f, 1.0f, 0.0f, /* row 1 */ 0.0f, 1.0f, 9.0f};
    float f[] = {3.0f, 1.0f, 0.0f, /* row 1 */ 0.0f, 8.0f, 7.5f};
    TensorMetrics m;
    metrics_compute(f, r, 6, NULL, &m);
    metrics_top1(f, r, 2, 3, &m);
    cr_assert_eq(m.top1_rows, 2);
    cr_assert_eq(m.top1_mismatches, 1);
    cr_assert_eq(m.top1_f, 1);
    cr_assert_eq(m.top1_r, 2);
    cr_assert_float_eq(m.top1_margin, 8.0, EPS);
    cr_assert_eq(m.max_abs, 7.0);
    cr_assert_eq(m.top1_disagreements, 1);
}
