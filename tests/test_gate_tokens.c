// gate_check_tokens: the unforced engine's greedy tokens against the matched reference's, allowed to
// differ only where the reference's top-2 margin is within the flip bound 2 * max_norm_max * max|logits|.
// Crafted traces hold just what the check reads: per step, logits [1, VOCAB] and next_token.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/gate_tokens.h"
#include "../golden/trace.h"
#include "../model/config.h"
#include "../model/synth.h"
#include "test_support.h"

#define VOCAB 16
#define STEPS 4
#define PROMPT 3

// Step s's logits: every entry 0 but the top two, `top` at token s+1 and `second` at token s+2.
typedef struct {
    float top[STEPS], second[STEPS];
    int32_t tokens[STEPS];   // next_token written per step
    int n_steps;
} Crafted;

static Crafted crafted_default(void) {
    Crafted c = {.n_steps = STEPS};
    for (int s = 0; s < STEPS; s++) {
        c.top[s] = 8.0f;
        c.second[s] = 1.0f;
        c.tokens[s] = s + 1;
    }
    return c;
}

static char *write_crafted(const char *dir, const char *name, const Crafted *c) {
    char *path = test_path_join(dir, name);
    ModelConfig config;
    ErrorMessage err;
    cr_assert_eq(synth_preset("tiny", &config, &err), 0, "%s", err.text);
    char *config_json = config_to_json(&config);
    cr_assert_not_null(config_json);
    TraceMeta meta = {0};
    snprintf(meta.producer, sizeof meta.producer, "reference");
    snprintf(meta.kv_dtype, sizeof meta.kv_dtype, "bf16");
    snprintf(meta.weights_dtype, sizeof meta.weights_dtype, "bf16");
    snprintf(meta.weights_fingerprint, sizeof meta.weights_fingerprint, "0123456789abcdef");
    snprintf(meta.tool_version, sizeof meta.tool_version, "test");
    meta.model_config = config_json;
    meta.prompt_length = PROMPT;
    TraceWriter *w = trace_writer_open(path, &meta, &err);
    cr_assert_not_null(w, "%s", err.text);
    int32_t tokens[PROMPT + STEPS] = {0};
    cr_assert_eq(trace_write_tokens(w, tokens, PROMPT + c->n_steps - 1, &err), 0, "%s", err.text);
    for (int s = 0; s < c->n_steps; s++) {
        cr_assert_eq(trace_begin_step(w, s, s == 0 ? 0 : PROMPT + s - 1, s == 0 ? PROMPT : 1, &err), 0, "%s", err.text);
        float logits[VOCAB] = {0};
        logits[s + 1] = c->top[s];
        logits[s + 2] = c->second[s];
        cr_assert_eq(trace_write_tensor(w, -1, "logits", logits, 1, VOCAB, &err), 0, "%s", err.text);
        cr_assert_eq(trace_write_next_token(w, c->tokens[s], &err), 0, "%s", err.text);
    }
    cr_assert_eq(trace_writer_close(w, &err), 0, "%s", err.text);
    free(config_json);
    return path;
}

// max_norm_max 1/16 and max|logits| 8 give the bound 2 * 8 / 16 = 1 exactly.
#define NORM_MAX 0.0625

static TokenCheck check(const Crafted *engine, const Crafted *reference) {
    char *dir = test_make_temp_dir("gate-tokens");
    char *a = write_crafted(dir, "engine.h5", engine), *b = write_crafted(dir, "reference.h5", reference);
    TokenCheck out;
    ErrorMessage err;
    cr_assert_eq(gate_check_tokens(a, b, NORM_MAX, &out, &err), 0, "%s", err.text);
    free(a);
    free(b);
    free(dir);
    return out;
}

Test(gate_tokens, equal_tokens_pass) {
    Crafted c = crafted_default();
    TokenCheck out = check(&c, &c);
    cr_assert_eq(out.failed, 0);
    cr_assert_eq(out.n_steps, STEPS);
    cr_assert_eq(out.n_equal, STEPS);
    cr_assert(strstr(out.message, "4/4 steps agree"), "%s", out.message);
}

Test(gate_tokens, a_different_token_beyond_the_bound_fails_naming_step_tokens_and_margin) {
    Crafted reference = crafted_default(), engine = reference;
    engine.tokens[2] = 9;  // the reference's margin at step 2 is 8 - 1 = 7 > bound 1
    TokenCheck out = check(&engine, &reference);
    cr_assert_eq(out.failed, 1);
    cr_assert_eq(out.step, 2);
    cr_assert_eq(out.engine_token, 9);
    cr_assert_eq(out.reference_token, 3);
    cr_assert_float_eq(out.margin, 7.0, 1e-12);
    cr_assert_float_eq(out.bound, 1.0, 1e-12);
    cr_assert(strstr(out.message, "step 2") && strstr(out.message, "token 9") && strstr(out.message, "7"), "%s",
              out.message);
}

Test(gate_tokens, a_margin_exactly_at_the_bound_may_flip_just_past_it_may_not) {
    Crafted reference = crafted_default(), engine = reference;
    reference.second[1] = 7.0f;   // margin 1 == bound 1: a flip the tolerances permit
    engine.tokens[1] = 3;         // the engine picked the second
    TokenCheck at = check(&engine, &reference);
    cr_assert_eq(at.failed, 0, "%s", at.message);
    cr_assert_eq(at.n_near_ties, 1);
    cr_assert_eq(at.step, 1);

    reference.second[1] = 6.99f;  // margin just past the bound
    TokenCheck past = check(&engine, &reference);
    cr_assert_eq(past.failed, 1, "%s", past.message);
    cr_assert_eq(past.step, 1);
}

Test(gate_tokens, the_first_failure_is_reported_after_an_earlier_near_tie) {
    Crafted reference = crafted_default(), engine = reference;
    reference.second[0] = 7.5f;  // near-tie at step 0
    engine.tokens[0] = 2;
    engine.tokens[3] = 0;        // failure at step 3
    TokenCheck out = check(&engine, &reference);
    cr_assert_eq(out.failed, 1);
    cr_assert_eq(out.n_near_ties, 1);
    cr_assert_eq(out.step, 3);
}

Test(gate_tokens, a_token_outside_the_vocabulary_nan_logits_fails) {
    Crafted reference = crafted_default(), engine = reference;
    engine.tokens[0] = -1;
    TokenCheck out = check(&engine, &reference);
    cr_assert_eq(out.failed, 1);
    cr_assert_eq(out.step, 0);
}

Test(gate_tokens, different_step_counts_are_an_error_naming_the_file) {
    Crafted reference = crafted_default(), engine = reference;
    engine.n_steps = 2;
    char *dir = test_make_temp_dir("gate-tokens");
    char *a = write_crafted(dir, "engine.h5", &engine), *b = write_crafted(dir, "reference.h5", &reference);
    TokenCheck out;
    ErrorMessage err;
    cr_assert_eq(gate_check_tokens(a, b, NORM_MAX, &out, &err), -1);
    cr_assert(strstr(err.text, "engine.h5") && strstr(err.text, "2 steps"), "%s", err.text);
    free(a);
    free(b);
    free(dir);
}

Test(gate_tokens, margin_and_bound_skip_non_finite_logits) {
    float x[5] = {1.0f, NAN, -4.0f, INFINITY, 3.0f};
    cr_assert_float_eq(gate_top2_margin(x, 5), 2.0, 1e-12);
    cr_assert_float_eq(gate_flip_bound(x, 5, 0.5), 4.0, 1e-12);
    cr_assert_float_eq(gate_top2_margin(x, 1), 0.0, 1e-12);
}
