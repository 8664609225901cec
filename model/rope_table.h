// RoPE cos/sin tables, shared by the reference and the fused engine so both rotate by the very same
// fp32 values. Angles are computed in double (pos * theta^(-2i/head_dim)) and rounded once to fp32;
// transformers computes them in fp32, which drifts by ~1e-4 rad at position 2048.
#ifndef FUSECHECK_ROPE_TABLE_H
#define FUSECHECK_ROPE_TABLE_H

#include "error.h"

typedef struct {
    int head_dim;
    int n_positions;
    float *cos;   // [n_positions][head_dim/2], row-major: cos[pos*(head_dim/2) + i]
    float *sin;   // same layout
} RopeTable;

// Fills positions [0, n_positions). head_dim must be even and positive. Owns its arrays.
int rope_table_init(RopeTable *table, int head_dim, double theta, int n_positions, ErrorMessage *err);
void rope_table_free(RopeTable *table);

#endif
