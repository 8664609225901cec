// RoPE cos/sin tables. The angle pos * theta^(-2i/head_dim) is formed in double and rounded to fp32
// only once, at the end, so both engines rotate by the best fp32 value of the true angle even at
// positions where an fp32 product would already be off by 1e-4 rad.
#include "rope_table.h"

#include <math.h>
#include <stdlib.h>

int rope_table_init(RopeTable *table, int head_dim, double theta, int n_positions, ErrorMessage *err) {
    table->cos = table->sin = NULL;
    table->head_dim = table->n_positions = 0;
    if (head_dim <= 0 || head_dim % 2 != 0)
        return fail(err, "rope table: head_dim %d must be even and positive", head_dim);
    if (!(theta > 0)) return fail(err, "rope table: rope_theta %g must be positive", theta);
    if (n_positions <= 0) return fail(err, "rope table: n_positions %d must be positive", n_positions);
    int half = head_dim / 2;
    size_t count = (size_t)n_positions * (size_t)half;
    table->cos = malloc(count * sizeof(float));
    table->sin = malloc(count * sizeof(float));
    double *inverse_frequency = malloc((size_t)half * sizeof(double));
    if (!table->cos || !table->sin || !inverse_frequency) {
        free(inverse_frequency);
        rope_table_free(table);
        return fail(err, "rope table: out of memory for %d positions x %d", n_positions, half);
    }
    for (int i = 0; i < half; i++) inverse_frequency[i] = pow(theta, -2.0 * i / head_dim);
    for (int pos = 0; pos < n_positions; pos++) {
        for (int i = 0; i < half; i++) {
            double angle = (double)pos * inverse_frequency[i];
            table->cos[(size_t)pos * half + i] = (float)cos(angle);
            table->sin[(size_t)pos * half + i] = (float)sin(angle);
        }
    }
    free(inverse_frequency);
    table->head_dim = head_dim;
    table->n_positions = n_positions;
    return 0;
}

void rope_table_free(RopeTable *table) {
    if (!table) return;
    free(table->cos);
    free(table->sin);
    table->cos = table->sin = NULL;
    table->head_dim = table->n_positions = 0;
}
