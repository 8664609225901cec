// compare/metrics on crafted inputs whose every metric is known by hand.
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../compare/metrics.h"
#include "test_support.h"

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
    cr_assert_eq(m.value_f, 1.25);
    cr_assert_eq(m.value_r, 1.0);
    cr_assert_eq(m.max_abs_r, 1.0);
    cr_assert_eq(m.n_beyond, 1);
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

// A top-1 flip is the two logits swapping; each may be off by max_abs, so any margin up to 2 * max_abs is a
// near-tie. Here margin 0.5 and max_abs 0.375: the flip is within what the error explains, it passes the
// top-1 rule (the error itself is then what the tolerances judge).
Test(metrics, logits_flip_within_twice_max_abs_is_a_near_tie) {
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
    cr_assert_eq(m.top1_disagreements, 0, "margin 0.5 <= 2 * max_abs 0.75 is a near-tie");
    cr_assert_eq(metrics_pass(&m, &tol, NULL, 0), 1);
    // Under the default tolerances the same logits fail, by their error: 0.375 / 5 = 7.5e-2.
    Tolerances strict = tolerances_default();
    metrics_compute(f, r, 4, &strict, &m);
    metrics_top1(f, r, 1, 4, &m);
    char why[160];
    cr_assert_eq(metrics_pass(&m, &strict, why, sizeof why), 0);
    cr_assert(!strncmp(why, "rel_l2 ", 7) || !strncmp(why, "norm_max ", 9), "why: %s", why);
}

// The bound itself: reference margin 0.5 (token 2 over token 1), f ties them (argmax takes the first,
// token 1), max_abs 0.25. Margin == 2 * max_abs exactly: a near-tie. One ulp less error bound and the
// same flip is a disagreement. (A flip of these same logits can never exceed 2 * max_abs, so "just past"
// needs a bound smaller than the logits' own error: metrics_top1 reads it from m->max_abs.)
Test(metrics, logits_margin_exactly_twice_max_abs_is_a_near_tie_just_past_is_not) {
    float r[] = {0.0f, 0.5f, 1.0f};
    float f[] = {0.0f, 0.75f, 0.75f};
    Tolerances tol = {.max_rel_l2 = 1.0, .max_norm_max = 1.0};
    TensorMetrics m;
    metrics_compute(f, r, 3, &tol, &m);
    metrics_top1(f, r, 1, 3, &m);
    cr_assert_eq(m.max_abs, 0.25);
    cr_assert_eq(m.top1_margin, 0.5);
    cr_assert_eq(m.top1_f, 1);
    cr_assert_eq(m.top1_r, 2);
    cr_assert_eq(m.top1_mismatches, 1);
    cr_assert_eq(m.top1_disagreements, 0, "margin exactly 2 * max_abs is a near-tie");
    cr_assert_eq(metrics_pass(&m, &tol, NULL, 0), 1);

    m.max_abs = nextafter(0.25, 0.0);  // the bound one ulp tighter: margin is now just past 2 * max_abs
    metrics_top1(f, r, 1, 3, &m);
    cr_assert_eq(m.top1_mismatches, 1);
    cr_assert_eq(m.top1_disagreements, 1);
    char why[160];
    cr_assert_eq(metrics_pass(&m, &tol, why, sizeof why), 0);
    cr_assert(strstr(why, "top-1 1 != reference 2") != NULL, "why: %s", why);
    cr_assert(strstr(why, "2*max_abs") != NULL, "why: %s", why);
}

// Why the flip itself never fails when the bound is the logits' own max_abs: the argmax of f beat the
// reference's argmax, so the two errors together cover at least the margin. Random rows, many flips.
Test(metrics, a_flip_never_exceeds_twice_the_logits_own_max_abs) {
    enum { COLS = 5, TRIALS = 2000 };
    int flips = 0;
    for (int trial = 0; trial < TRIALS; trial++) {
        float r[COLS], noise[COLS], f[COLS];
        test_fill_random(r, COLS, 1000 + (uint64_t)trial, 1.0f);
        test_fill_random(noise, COLS, 900000 + (uint64_t)trial, 0.5f);
        for (int i = 0; i < COLS; i++) f[i] = r[i] + noise[i];
        TensorMetrics m;
        metrics_compute(f, r, COLS, NULL, &m);
        metrics_top1(f, r, 1, COLS, &m);
        flips += m.top1_mismatches;
        cr_assert_eq(m.top1_disagreements, 0, "trial %d: margin %g, max_abs %g", trial, m.top1_margin, m.max_abs);
    }
    cr_assert_gt(flips, 100, "the trials must contain flips to show anything");
}

Test(metrics, logits_top1_agreement_over_rows_reports_first_mismatch) {
    // Row 0 agrees (argmax 0), row 1 flips (reference 2 by a margin of 8, under test 1).
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
    cr_assert_eq(m.top1_disagreements, 0);  // 8 <= 2 * 7: explained by the error, which fails by itself
    cr_assert_eq(metrics_pass(&m, &(Tolerances){.max_rel_l2 = 1e-3, .max_norm_max = 1e-3}, NULL, 0), 0);
}

// ----- the tolerances at their exact bounds ------------------------------------------------------------
// Every value below is a power of two, so each metric is computed exactly in double arithmetic and can be
// made to equal the tolerance: at the tolerance passes (the rule is <=), one ulp past fails.

// r = [1, 1, 1, 1], f off by 2^-9 at [2]: ||f-r|| = 2^-9, ||r|| = 2, rel_l2 = 2^-10 exactly.
Test(metrics, rel_l2_exactly_at_the_tolerance_passes_one_ulp_past_fails) {
    float r[] = {1.0f, 1.0f, 1.0f, 1.0f};
    float f[] = {1.0f, 1.0f, 1.0f + 0x1p-9f, 1.0f};
    Tolerances tol = {.max_rel_l2 = 0x1p-10, .max_norm_max = 1.0};  // norm_max (2^-9) out of the way
    TensorMetrics m;
    metrics_compute(f, r, 4, &tol, &m);
    cr_assert_eq(m.rel_l2, 0x1p-10, "rel_l2 %a", m.rel_l2);
    cr_assert_eq(metrics_pass(&m, &tol, NULL, 0), 1, "rel_l2 exactly at the tolerance passes");

    Tolerances tighter = tol;
    tighter.max_rel_l2 = nextafter(0x1p-10, 0.0);
    char why[128];
    cr_assert_eq(metrics_pass(&m, &tighter, why, sizeof why), 0, "one ulp past fails");
    cr_assert(!strncmp(why, "rel_l2 ", 7), "why: %s", why);

    // The data one float ulp further off fails the original tolerance too.
    f[2] = nextafterf(1.0f + 0x1p-9f, 2.0f);
    metrics_compute(f, r, 4, &tol, &m);
    cr_assert_gt(m.rel_l2, 0x1p-10);
    cr_assert_eq(metrics_pass(&m, &tol, NULL, 0), 0);
}

// r = [1, 0.5, 0.25, 0], f off by 2^-10 at [2]: max|f-r| = 2^-10, max|r| = 1, norm_max = 2^-10 exactly.
Test(metrics, norm_max_exactly_at_the_tolerance_passes_one_ulp_past_fails) {
    float r[] = {1.0f, 0.5f, 0.25f, 0.0f};
    float f[] = {1.0f, 0.5f, 0.25f + 0x1p-10f, 0.0f};
    Tolerances tol = {.max_rel_l2 = 1.0, .max_norm_max = 0x1p-10};  // rel_l2 out of the way
    TensorMetrics m;
    metrics_compute(f, r, 4, &tol, &m);
    cr_assert_eq(m.norm_max, 0x1p-10, "norm_max %a", m.norm_max);
    cr_assert_eq(m.max_abs_r, 1.0);
    cr_assert_eq(m.n_beyond, 0, "an element exactly at the bound is not beyond it");
    cr_assert_eq(metrics_pass(&m, &tol, NULL, 0), 1, "norm_max exactly at the tolerance passes");

    Tolerances tighter = tol;
    tighter.max_norm_max = nextafter(0x1p-10, 0.0);
    char why[128];
    cr_assert_eq(metrics_pass(&m, &tighter, why, sizeof why), 0, "one ulp past fails");
    cr_assert(!strncmp(why, "norm_max ", 9), "why: %s", why);
    metrics_compute(f, r, 4, &tighter, &m);
    cr_assert_eq(m.n_beyond, 1, "counted against the tolerance it was computed with");

    f[2] = nextafterf(0.25f + 0x1p-10f, 1.0f);
    metrics_compute(f, r, 4, &tol, &m);
    cr_assert_gt(m.norm_max, 0x1p-10);
    cr_assert_eq(m.n_beyond, 1);
    cr_assert_eq(metrics_pass(&m, &tol, NULL, 0), 0);
}

// One spike in 10000 ones: rel_l2 = 2^-7 / 100 = 7.8e-5 passes 1e-3, norm_max = 2^-7 = 7.8e-3 fails it.
// Only the norm_max check catches a single wrong element in a large tensor.
Test(metrics, a_single_spike_passes_rel_l2_and_fails_norm_max) {
    enum { N = 10000 };
    static float r[N], f[N];
    for (int i = 0; i < N; i++) r[i] = f[i] = 1.0f;
    f[4321] = 1.0f + 0x1p-7f;
    Tolerances tol = tolerances_default();
    TensorMetrics m;
    metrics_compute(f, r, N, &tol, &m);
    cr_assert_float_eq(m.rel_l2, 0x1p-7 / 100.0, EPS);
    cr_assert_leq(m.rel_l2, tol.max_rel_l2);
    cr_assert_eq(m.norm_max, 0x1p-7);
    cr_assert_eq(m.n_beyond, 1);
    cr_assert_eq(m.max_abs_index, 4321);
    cr_assert_eq(m.value_f, 1.0 + 0x1p-7);
    cr_assert_eq(m.value_r, 1.0);
    char why[128];
    cr_assert_eq(metrics_pass(&m, &tol, why, sizeof why), 0, "the spike must fail");
    cr_assert_str_eq(why, "norm_max 7.8e-03 > 1e-03");
}

// numpy semantics: |f-r| <= atol + rtol|r| is close. r = 2, atol 2^-2, rtol 2^-3: the bound is 0.5 exactly.
Test(metrics, allclose_exactly_at_the_bound_passes_one_ulp_past_violates) {
    float r[] = {2.0f, 1.0f};
    float f[] = {2.5f, 1.0f};
    Tolerances tol = {.max_rel_l2 = 1.0, .max_norm_max = 1.0, .check_allclose = 1, .atol = 0x1p-2, .rtol = 0x1p-3};
    TensorMetrics m;
    metrics_compute(f, r, 2, &tol, &m);
    cr_assert_eq(m.max_abs, 0.5);
    cr_assert_eq(m.allclose_violations, 0, "|f-r| exactly atol + rtol|r| is close");
    cr_assert_eq(m.allclose_worst_index, -1);
    cr_assert_eq(metrics_pass(&m, &tol, NULL, 0), 1);

    f[0] = nextafterf(2.5f, 3.0f);
    metrics_compute(f, r, 2, &tol, &m);
    cr_assert_eq(m.allclose_violations, 1, "one float ulp past the bound violates");
    cr_assert_eq(m.allclose_worst_index, 0);
    cr_assert_eq(m.allclose_worst_excess, (double)nextafterf(2.5f, 3.0f) - 2.5);
    cr_assert_eq(metrics_pass(&m, &tol, NULL, 0), 0);
}

// What a failure message needs: how many elements are beyond the bound and the worst pair of values.
Test(metrics, counts_elements_beyond_the_norm_max_bound_and_keeps_the_worst_values) {
    // max|r| = 4 (at [3], negative), bound 1e-3 * 4 = 4e-3: [0] off by 2^-9 (1.95e-3) is within,
    // [1] off by 2^-6 and [2] off by -2^-5 are beyond, [2] is the worst.
    float r[] = {1.0f, 2.0f, 0.5f, -4.0f, 0.0f};
    float f[] = {1.0f + 0x1p-9f, 2.0f + 0x1p-6f, 0.5f - 0x1p-5f, -4.0f, 0.0f};
    Tolerances tol = tolerances_default();
    TensorMetrics m;
    metrics_compute(f, r, 5, &tol, &m);
    cr_assert_eq(m.max_abs_r, 4.0);
    cr_assert_eq(m.n_beyond, 2);
    cr_assert_eq(m.max_abs_index, 2);
    cr_assert_eq(m.value_f, 0.5 - 0x1p-5);
    cr_assert_eq(m.value_r, 0.5);
    // Without tolerances the default norm_max bound is used.
    metrics_compute(f, r, 5, NULL, &m);
    cr_assert_eq(m.n_beyond, 2);
    // Non-finite pairs take no part: a NaN is neither beyond nor the worst.
    f[4] = NAN;
    metrics_compute(f, r, 5, &tol, &m);
    cr_assert_eq(m.n_beyond, 2);
    cr_assert_eq(m.max_abs_index, 2);
}
