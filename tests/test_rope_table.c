// The RoPE table against angles computed independently in double (incl. positions past 10,000),
// and the fp32-angle drift it exists to avoid.
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../model/rope_table.h"

Test(rope_table, matches_double_computation) {
    const int head_dim = 128, n_positions = 40960;
    const double theta = 1e6;
    RopeTable table;
    ErrorMessage err;
    cr_assert_eq(rope_table_init(&table, head_dim, theta, n_positions, &err), 0, "%s", err.text);
    cr_assert_eq(table.head_dim, head_dim);
    cr_assert_eq(table.n_positions, n_positions);
    const int positions[] = {0, 1, 2, 17, 1023, 2048, 10000, 10001, 12345, 32767, 40959};
    for (size_t p = 0; p < sizeof positions / sizeof positions[0]; p++) {
        int pos = positions[p];
        for (int i = 0; i < head_dim / 2; i++) {
            // theta^(-2i/d) written as exp(-(2i/d) ln theta): a different route to the same angle.
            double angle = pos * exp(-(2.0 * i / head_dim) * log(theta));
            float c = table.cos[(size_t)pos * (head_dim / 2) + i], s = table.sin[(size_t)pos * (head_dim / 2) + i];
            // Rounded once to fp32: within half an fp32 ulp of 1 plus the double-route difference.
            cr_assert(fabs(c - cos(angle)) <= 1e-7, "cos pos %d i %d: %.9g vs %.9g", pos, i, c, cos(angle));
            cr_assert(fabs(s - sin(angle)) <= 1e-7, "sin pos %d i %d: %.9g vs %.9g", pos, i, s, sin(angle));
        }
    }
    // Position 0 is the identity rotation.
    for (int i = 0; i < head_dim / 2; i++) {
        cr_assert_eq(table.cos[i], 1.0f);
        cr_assert_eq(table.sin[i], 0.0f);
    }
    rope_table_free(&table);
    rope_table_free(&table);
}

// At large positions an fp32 angle (as transformers forms it) is visibly off; the table is not.
Test(rope_table, fp32_angles_would_drift) {
    RopeTable table;
    ErrorMessage err;
    cr_assert_eq(rope_table_init(&table, 64, 1e6, 30001, &err), 0, "%s", err.text);
    int pos = 30000;
    double worst_fp32 = 0, worst_table = 0;
    for (int i = 0; i < 32; i++) {
        double angle = pos * pow(1e6, -2.0 * i / 64);
        float inverse_frequency = (float)(1.0 / pow(1e6, 2.0 * i / 64));
        float angle_fp32 = (float)pos * inverse_frequency;
        worst_fp32 = fmax(worst_fp32, fabs(cos((double)angle_fp32) - cos(angle)));
        worst_table = fmax(worst_table, fabs(table.cos[pos * 32 + i] - cos(angle)));
    }
    cr_assert_lt(worst_table, 1e-7);
    cr_assert_gt(worst_fp32, 1e-4, "fp32 angles were expected to drift at position %d", pos);
    rope_table_free(&table);
}

Test(rope_table, rejects_bad_arguments) {
    RopeTable table;
    ErrorMessage err;
    cr_assert_eq(rope_table_init(&table, 15, 1e6, 8, &err), -1);
    cr_assert_not_null(strstr(err.text, "head_dim 15 must be even"), "%s", err.text);
    cr_assert_eq(rope_table_init(&table, 0, 1e6, 8, &err), -1);
    cr_assert_eq(rope_table_init(&table, 16, 0.0, 8, &err), -1);
    cr_assert_not_null(strstr(err.text, "rope_theta"), "%s", err.text);
    cr_assert_eq(rope_table_init(&table, 16, 1e6, 0, &err), -1);
    cr_assert_null(table.cos);
    rope_table_free(&table);
}
