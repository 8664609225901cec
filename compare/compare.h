// Compares two golden traces tensor by tensor, layer by layer, step by step.
//
// A is the trace under test, B the reference. Traces of different weights (fingerprint), different
// model configs, or different token sequences are refused: their differences would mean nothing.
// Every tensor both traces have in every step both have is compared in forward order (step, then
// embed, layer 0..L-1 in TRACE_LAYER_TENSORS order, then final_norm, logits, next_token), so the
// first failing result is where a bisection would stop. Names only one side has are listed, not failed.
#ifndef FUSECHECK_COMPARE_H
#define FUSECHECK_COMPARE_H

#include <stddef.h>
#include <stdint.h>

#include "../golden/trace.h"
#include "../model/error.h"
#include "metrics.h"

#define COMPARE_STEP_LEVEL (-1)  // layer index of step-level tensors (embed, final_norm, logits, next_token)

typedef struct {
    int step;
    int layer;                   // COMPARE_STEP_LEVEL for step-level tensors
    char name[48];
    int rows_a, cols_a;          // shapes as stored (next_token: 1 x 1)
    int rows_b, cols_b;
    int shape_mismatch;          // 1: shapes differ, metrics not computed, the tensor fails
    int is_token;                // next_token: an int32 compared for equality, no metrics
    int32_t token_a, token_b;
    TensorMetrics metrics;
    int missing;                 // 1: the reference has this tensor (or its layer, or its step) and the trace
                                 // under test lacks it without declaring it: no metrics, the tensor fails
    int pass;
    char why[256];               // the failure reason, or a note on a pass (e.g. a near-tie), else ""
} TensorResult;

typedef struct {
    char path[1024];
    TraceMeta meta;              // meta.model_config is a copy owned by the result
    int n_steps;
    int n_tokens;
    int n_layers;                // layer groups in step 0
} TraceSummary;

#define COMPARE_MAX_NOTES 8
#define COMPARE_ALL_STEPS (-1)

// What to compare and how strictly. compare_options_default(): default tolerances, every step (the two
// traces must then hold the same number of steps), nothing allowed missing.
typedef struct {
    Tolerances tol;
    const char *const *allow_missing;  // tensor names the trace under test may lack on purpose (--allow-missing);
    int n_allow_missing;               // the contract's checkpoints (resid_mlp, k, v, logits, next_token, embed)
                                       // are refused here
    int first_step, last_step;         // --steps A..B: compare only steps A..B (inclusive); COMPARE_ALL_STEPS both
} CompareOptions;

CompareOptions compare_options_default(void);

typedef struct {
    TraceSummary a;              // under test
    TraceSummary b;              // reference
    Tolerances tol;
    int first_step;              // first step compared (0 unless --steps narrowed it)
    int n_steps;                 // steps compared: first_step .. first_step + n_steps - 1
    int n_layers;                // most layers compared in any step
    int n_tokens;                // tokens compared: the common prefix
    int *step_first_position;    // [n_steps] each compared step's first position
    int *step_n_tokens;          // [n_steps] and its token count (step 0: the prompt)
    int profiles_differ;         // kv_dtype or weights_dtype differ (allowed, said)
    TensorResult *results;       // in forward order
    size_t n_results;
    char **only_a;               // distinct names only the trace under test has (layer_LL for whole layers)
    int n_only_a;
    char **only_b;               // distinct names only the reference has
    int n_only_b;
    char **declared_omitted;     // names the trace under test declares it never materialises (root attribute)
    int n_declared_omitted;
    char **allowed_missing;      // names --allow-missing let the trace under test lack
    int n_allowed_missing;
    size_t n_missing;            // results with missing == 1
    char notes[COMPARE_MAX_NOTES][256];  // things the reader must know (step counts differ, profiles differ)
    int n_notes;
    long first_failure;          // index into results, -1 if none
    long worst;                  // index of the worst tensor by metrics_rank (tokens excluded), -1 if none
    size_t n_failures;
    int pass;                    // 1 when nothing failed
} CompareResult;

// Opens both traces and compares them. Returns -1 with one line in err when a file cannot be read or
// the traces cannot be compared (different weights, configs, tokens, step layout); tolerance failures
// are not errors: they are in result->pass / first_failure. Free the result with compare_result_free.
int compare_traces(const char *path_a, const char *path_b, const CompareOptions *options, CompareResult *result,
                   ErrorMessage *err);
void compare_result_free(CompareResult *result);

// "step 3 layer 7 tensor attn" / "step 3 tensor logits": where a result is, for messages.
void compare_describe_location(const TensorResult *t, char *out, size_t size);

#endif
