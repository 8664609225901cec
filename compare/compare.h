// Compares two golden traces tensor by tensor, layer by layer, step by step.
//
// A is the trace under test, B the reference. Traces of different weights (fingerprint), different
// model configs, or different token sequences are refused: their differences would mean nothing, and
// so is a trace with an unreadable object (trace_open). Every tensor of every compared step is visited
// in forward order (step, then embed, layer 0..L-1 in TRACE_LAYER_TENSORS order, then final_norm,
// logits, next_token), so the first failing result is where a bisection would stop.
//
// Missing evidence is a failure, never a pass: every tensor the reference holds in a compared step
// that the trace under test lacks (alone, with its whole layer group, or with its whole step) is a
// failing result with missing = 1, one per tensor, step and layer. Only two things excuse one: the
// trace under test declaring the name omitted (format version 2 attribute `omitted`), or
// CompareOptions.allow_missing; neither may name a contract checkpoint (TRACE_CHECKPOINT_NAMES). Both
// are recorded in the result and said in a note. Names only the trace under test has are listed
// (only_a), not failed. Without --steps the traces must hold the same steps: steps only the reference
// holds are missing, each step only the trace under test holds fails as one result named step_NNNN
// (nothing checks it).
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

#define COMPARE_MAX_NOTES 12
#define COMPARE_ALL_STEPS (-1)

// What to compare and how strictly. compare_options_default(): default tolerances, every step (the two
// traces must then hold the same number of steps), nothing allowed missing.
typedef struct {
    Tolerances tol;
    const char *const *allow_missing;  // tensor names the trace under test may lack on purpose (--allow-missing);
    int n_allow_missing;               // the contract's checkpoints (resid_mlp, k, v, logits, next_token, embed)
                                       // are refused here
    int first_step, last_step;         // --steps A..B: compare only steps A..B (inclusive); COMPARE_ALL_STEPS both.
                                       // The reference must hold them (else an error); steps of the range
                                       // the trace under test lacks are missing
} CompareOptions;

CompareOptions compare_options_default(void);

typedef struct {
    TraceSummary a;              // under test
    TraceSummary b;              // reference
    Tolerances tol;
    int first_step;              // first step compared (0 unless --steps narrowed it)
    int n_steps;                 // steps compared: first_step .. first_step + n_steps - 1 (without --steps:
                                 // every step either trace holds); results[i].step lies in that range
    int n_layers;                // layers the results span: every results[i].layer < n_layers
    int n_tokens;                // tokens compared: the common prefix
    int *step_first_position;    // [n_steps] step first_step + i's first position
    int *step_n_tokens;          // [n_steps] and its token count (step 0: the prompt)
    int profiles_differ;         // kv_dtype or weights_dtype differ (allowed, said)
    TensorResult *results;       // in forward order
    size_t n_results;
    char **only_a;               // distinct names only the trace under test has (layer_LL for whole layers)
    int n_only_a;
    char **only_b;               // distinct names only the reference has (layer_LL / step_NNNN for whole
    int n_only_b;                // groups): missing ones fail, declared or allowed ones are excused
    char **declared_omitted;     // names the trace under test declares it never materialises (root attribute)
    int n_declared_omitted;
    char **allowed_missing;      // names --allow-missing let the trace under test lack
    int n_allowed_missing;
    size_t n_missing;            // results with missing == 1 (all counted in n_failures too)
    char notes[COMPARE_MAX_NOTES][256];  // things the reader must know (step counts differ, steps narrowed,
                                         // profiles differ, declared / allowed / missing evidence)
    int n_notes;
    long first_failure;          // index into results, -1 if none
    long worst;                  // index of the worst tensor by metrics_rank (tokens excluded), -1 if none
    size_t n_failures;
    int pass;                    // 1 when nothing failed
} CompareResult;

// Opens both traces and compares them. Returns -1 with one line in err when a file cannot be read (an
// unreadable object included, named by its HDF5 path), the traces cannot be compared (different
// weights, configs, tokens, step layout), or the options break the rules (--allow-missing naming a
// checkpoint or an unknown name, a bad --steps range or one past the reference's steps); tolerance
// failures and missing evidence are not errors: they are in result->pass / first_failure. Free the
// result with compare_result_free (also after an error).
int compare_traces(const char *path_a, const char *path_b, const CompareOptions *options, CompareResult *result,
                   ErrorMessage *err);
void compare_result_free(CompareResult *result);

// "step 3 layer 7 tensor attn" / "step 3 tensor logits": where a result is, for messages.
void compare_describe_location(const TensorResult *t, char *out, size_t size);

#endif
