// The reference engine as a whole on synthetic checkpoints: prefill and decode agree, streaming
// layers change nothing, the KV cache holds exactly the traced K and V (bf16: rounded to nearest
// even, by a rounding written here, not the engine's), bad inputs are refused.
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../golden/trace.h"
#include "../golden/trace_run.h"
#include "../model/checkpoint.h"
#include "../reference/reference.h"
#include "test_support.h"

static Checkpoint checkpoint;
static char *model_dir;

static void open_small(void) {
    model_dir = test_synth_checkpoint("small", 3);
    ErrorMessage err;
    cr_assert_eq(checkpoint_open(model_dir, &checkpoint, &err), 0, "%s", err.text);
}

static void close_small(void) {
    checkpoint_close(&checkpoint);
    free(model_dir);
}

TestSuite(reference_engine, .init = open_small, .fini = close_small);

static const int32_t PROMPT[] = {5, 1000, 4095, 17, 256, 3, 3, 900, 12, 77};
#define PROMPT_LENGTH ((int)(sizeof PROMPT / sizeof PROMPT[0]))

// Tokens after the prompt, one forward per token after a prefill of `prefill` tokens.
static void greedy(Reference *ref, int prefill, int n_new, int32_t *out) {
    ErrorMessage err;
    int32_t tokens[64];
    memcpy(tokens, PROMPT, sizeof PROMPT);
    int32_t next;
    cr_assert_eq(reference_forward(ref, tokens, prefill, 0, NULL, &next, &err), 0, "%s", err.text);
    for (int i = prefill; i < PROMPT_LENGTH; i++)
        cr_assert_eq(reference_forward(ref, tokens + i, 1, i, NULL, &next, &err), 0, "%s", err.text);
    for (int i = 0; i < n_new; i++) {
        out[i] = next;
        tokens[PROMPT_LENGTH + i] = next;
        cr_assert_eq(reference_forward(ref, &tokens[PROMPT_LENGTH + i], 1, PROMPT_LENGTH + i, NULL, &next, &err), 0,
                     "%s", err.text);
    }
}

Test(reference_engine, prefill_and_token_by_token_decode_agree) {
    ErrorMessage err;
    Reference *a = reference_create(&checkpoint, KV_F32, 64, 0, &err);
    cr_assert_not_null(a, "%s", err.text);
    Reference *b = reference_create(&checkpoint, KV_F32, 64, 0, &err);
    cr_assert_not_null(b, "%s", err.text);
    int32_t from_prefill[12], from_decode[12];
    greedy(a, PROMPT_LENGTH, 12, from_prefill);
    greedy(b, 1, 12, from_decode);
    for (int i = 0; i < 12; i++) cr_expect_eq(from_prefill[i], from_decode[i], "token %d", i);
    reference_destroy(a);
    reference_destroy(b);
}

Test(reference_engine, streaming_layers_give_the_same_tokens) {
    ErrorMessage err;
    Reference *full = reference_create(&checkpoint, KV_F32, 64, 0, &err);
    cr_assert_not_null(full, "%s", err.text);
    Reference *streaming = reference_create(&checkpoint, KV_F32, 64, 1, &err);  // 1 byte: forces streaming
    cr_assert_not_null(streaming, "%s", err.text);
    int32_t a[16], b[16];
    greedy(full, PROMPT_LENGTH, 16, a);
    greedy(streaming, PROMPT_LENGTH, 16, b);
    for (int i = 0; i < 16; i++) cr_expect_eq(a[i], b[i], "token %d", i);
    reference_destroy(full);
    reference_destroy(streaming);
}

Test(reference_engine, refuses_bad_token_and_context_overflow) {
    ErrorMessage err;
    Reference *ref = reference_create(&checkpoint, KV_BF16, 8, 0, &err);
    cr_assert_not_null(ref, "%s", err.text);
    int32_t bad[] = {1, 4096}, next;
    cr_expect_eq(reference_forward(ref, bad, 2, 0, NULL, &next, &err), -1);
    cr_expect(strstr(err.text, "token id 4096") != NULL, "%s", err.text);
    int32_t ok[] = {1, 2};
    cr_expect_eq(reference_forward(ref, ok, 2, 7, NULL, &next, &err), -1);
    cr_expect(strstr(err.text, "exceed the context of 8") != NULL, "%s", err.text);
    cr_expect_null(reference_create(&checkpoint, KV_F32, 1 << 30, 0, &err));
    cr_expect(strstr(err.text, "max_position_embeddings") != NULL, "%s", err.text);
    reference_destroy(ref);
}

// ----------------------------------------------------------------------------------------------
// what the KV cache holds

// fp32 -> bf16 -> fp32, round to nearest, ties to even, on the bit pattern: keep the upper 16 bits
// and add one unit of the last kept place when the dropped 16 bits are over half of it, or exactly
// half and the kept part is odd. A carry out of the mantissa correctly bumps the exponent (to inf at
// the top). NaN is not handled: the caller checks there is none.
static float bf16_round_nearest_even(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    uint32_t kept = bits >> 16, dropped = bits & 0xffffu;
    if (dropped > 0x8000u || (dropped == 0x8000u && (kept & 1u))) kept += 1;
    bits = kept << 16;
    float rounded;
    memcpy(&rounded, &bits, sizeof rounded);
    return rounded;
}

static uint32_t float_bits(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits;
}

Test(reference_engine, rounding_written_here_is_round_to_nearest_even) {
    // 1 + 2^-8 is half way between bf16 1 (even) and 1 + 2^-7 (odd): down. 1 + 3 * 2^-8 is half way
    // between 1 + 2^-7 (odd) and 1 + 2^-6 (even): up. Just past half rounds up, just below down.
    cr_assert_eq(bf16_round_nearest_even(1.0f + 0x1p-8f), 1.0f);
    cr_assert_eq(bf16_round_nearest_even(1.0f + 3 * 0x1p-8f), 1.0f + 0x1p-6f);
    cr_assert_eq(bf16_round_nearest_even(1.0f + 0x1p-8f + 0x1p-20f), 1.0f + 0x1p-7f);
    cr_assert_eq(bf16_round_nearest_even(1.0f + 0x1p-8f - 0x1p-20f), 1.0f);
    cr_assert_eq(bf16_round_nearest_even(-(1.0f + 3 * 0x1p-8f)), -(1.0f + 0x1p-6f));
    cr_assert_eq(float_bits(bf16_round_nearest_even(0x1.fffffep127f)), 0x7f800000u);  // carries to inf
}

// Runs `ref` over the prompt and 6 greedy decode steps, tracing every tensor into a temp file, and
// returns the open trace.
static TraceReader *traced_run(Reference *ref, KvDtype kv_dtype, int32_t *tokens) {
    ErrorMessage err;
    char *dir = test_make_temp_dir("kv-cache");
    char *path = test_path_join(dir, "trace.h5");
    TraceMeta meta;
    cr_assert_eq(trace_meta_for_checkpoint(&meta, &checkpoint, "reference", kv_dtype, PROMPT_LENGTH, &err), 0, "%s",
                 err.text);
    TraceWriter *writer = trace_writer_open(path, &meta, &err);
    free(meta.model_config);
    cr_assert_not_null(writer, "%s", err.text);
    memcpy(tokens, PROMPT, sizeof PROMPT);
    Engine engine = engine_wrap(&reference_engine_kind, ref, kv_dtype);
    cr_assert_eq(run_traced_steps(&engine, tokens, PROMPT_LENGTH, 6, 0, NULL, writer, NULL, &err), 0, "%s", err.text);
    cr_assert_eq(trace_writer_close(writer, &err), 0, "%s", err.text);
    TraceReader *trace = trace_open(path, &err);
    cr_assert_not_null(trace, "%s", err.text);
    free(path);
    free(dir);
    return trace;
}

// Every cache row of every layer equals the traced K or V of its position, rounded by `round` (NULL:
// not rounded), compared bit for bit. Returns how many values the rounding changed and how many it
// rounded up in magnitude where truncation would have rounded down, so the caller can check the run
// exercised the rounding at all.
static void expect_cache_holds_traced_kv(Reference *ref, TraceReader *trace, float (*round)(float), long *changed,
                                         long *rounded_away_from_zero) {
    ErrorMessage err;
    int kv_width = checkpoint.config.num_key_value_heads * checkpoint.config.head_dim;
    *changed = *rounded_away_from_zero = 0;
    long checked = 0;
    for (int step = 0; step < trace_n_steps(trace); step++) {
        int first_position, n_tokens;
        cr_assert_eq(trace_step_info(trace, step, &first_position, &n_tokens, &err), 0, "%s", err.text);
        for (int layer = 0; layer < checkpoint.config.num_hidden_layers; layer++) {
            const float *cache[2];
            cr_assert_eq(reference_kv_cache(ref, layer, &cache[0], &cache[1], &err), 0, "%s", err.text);
            static const char *const NAMES[2] = {"k", "v"};
            for (int which = 0; which < 2; which++) {
                float *traced;
                int rows, cols;
                cr_assert_eq(trace_read_tensor(trace, step, layer, NAMES[which], &traced, &rows, &cols, &err), 0, "%s",
                             err.text);
                cr_assert_eq(rows, n_tokens);
                cr_assert_eq(cols, kv_width);
                for (int r = 0; r < rows; r++) {
                    for (int i = 0; i < cols; i++) {
                        float value = traced[(long)r * cols + i];
                        cr_assert(!isnan(value), "step %d layer %d %s[%d][%d] is NaN", step, layer, NAMES[which], r, i);
                        float expected = round ? round(value) : value;
                        float held = cache[which][(long)(first_position + r) * kv_width + i];
                        cr_assert_eq(float_bits(held), float_bits(expected),
                                     "step %d layer %d: cache %s at position %d, element %d holds %.9g, expected %.9g "
                                     "(traced %.9g)",
                                     step, layer, NAMES[which], first_position + r, i, held, expected, value);
                        *changed += expected != value;
                        *rounded_away_from_zero += fabsf(expected) > fabsf(value);
                        checked++;
                    }
                }
                free(traced);
            }
        }
    }
    cr_assert_eq(checked, 2L * checkpoint.config.num_hidden_layers * (PROMPT_LENGTH + 6) * kv_width,
                 "every position of every layer checked");
}

Test(reference_engine, bf16_cache_holds_round_to_nearest_even_of_traced_kv) {
    ErrorMessage err;
    Reference *ref = reference_create(&checkpoint, KV_BF16, 64, 0, &err);
    cr_assert_not_null(ref, "%s", err.text);
    int32_t tokens[64];
    TraceReader *trace = traced_run(ref, KV_BF16, tokens);
    long changed, rounded_up;
    expect_cache_holds_traced_kv(ref, trace, bf16_round_nearest_even, &changed, &rounded_up);
    // Nearly every fp32 value needs rounding, and about half round up, where truncation never does.
    cr_expect_gt(changed, 1000, "only %ld values changed by bf16 rounding", changed);
    cr_expect_gt(rounded_up, 1000, "only %ld values rounded up in magnitude", rounded_up);
    trace_close(trace);
    reference_destroy(ref);
}

Test(reference_engine, f32_cache_holds_traced_kv_exactly) {
    ErrorMessage err;
    Reference *ref = reference_create(&checkpoint, KV_F32, 64, 0, &err);
    cr_assert_not_null(ref, "%s", err.text);
    int32_t tokens[64];
    TraceReader *trace = traced_run(ref, KV_F32, tokens);
    long changed, rounded_up;
    expect_cache_holds_traced_kv(ref, trace, NULL, &changed, &rounded_up);
    trace_close(trace);
    reference_destroy(ref);
}

Test(reference_engine, kv_cache_refuses_a_layer_out_of_range) {
    ErrorMessage err;
    Reference *ref = reference_create(&checkpoint, KV_F32, 8, 0, &err);
    cr_assert_not_null(ref, "%s", err.text);
    const float *k, *v;
    cr_expect_eq(reference_kv_cache(ref, checkpoint.config.num_hidden_layers, &k, &v, &err), -1);
    cr_expect(strstr(err.text, "layer 4 is outside [0, 4)") != NULL, "%s", err.text);
    cr_expect_eq(reference_kv_cache(ref, -1, &k, &v, &err), -1);
    reference_destroy(ref);
}
