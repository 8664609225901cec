// Greedy-token agreement of an unforced engine run with the matched reference: what the gate requires
// because storage forcing hides the engine's own KV cache writes from the per-layer comparison.
//
// Teacher-forced on the reference's tokens, an engine whose per-tensor error is within the contract
// can still pick another token where the reference's top two logits are close: with norm_max <= N
// every logit may be off by N * max|logits|, so two logits can swap when their margin is at most
// 2 * N * max|logits|. That is the bound. A step whose reference margin exceeds it must give the same
// token; a different token there is an accuracy failure, whatever the per-tensor numbers say.
#ifndef FUSECHECK_GATE_TOKENS_H
#define FUSECHECK_GATE_TOKENS_H

#include <stdint.h>

#include "../model/error.h"

typedef struct {
    int n_steps;                 // steps checked (every step of the reference)
    int n_equal;                 // steps whose tokens agree
    int n_near_ties;             // steps whose tokens differ within the bound (allowed, reported)
    int failed;                  // 1: some step differs beyond the bound
    // the first failing step (when failed), else the first near-tie (when n_near_ties), else zeros
    int step;
    int32_t engine_token, reference_token;
    double margin;               // the reference's top-1 minus top-2 logit at that step
    double bound;                // 2 * max_norm_max * max|reference logits| at that step
    char message[320];           // one line: what failed (or "n/n steps agree ...")
} TokenCheck;

// Compares each step's next_token of `engine_trace` with `reference_trace`'s, using the reference's
// logits (last row) for the margin and the bound. Both traces must hold the same number of steps and
// the reference must hold logits in each: otherwise -1 with one line naming the file. A token of the
// engine outside the vocabulary (NaN logits) is a disagreement like any other. Failures of the
// check are in out->failed, not the return value.
int gate_check_tokens(const char *engine_trace, const char *reference_trace, double max_norm_max, TokenCheck *out,
                      ErrorMessage *err);

// The reference's top-1 minus top-2 over logits[n] (0 when n < 2), and the bound
// 2 * max_norm_max * max|logits| (non-finite logits are skipped).
double gate_top2_margin(const float *logits, int n);
double gate_flip_bound(const float *logits, int n, double max_norm_max);

#endif
