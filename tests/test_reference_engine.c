// The reference engine as a whole on synthetic checkpoints: prefill and decode agree, streaming
// layers change nothing, the bf16 KV profile is a small perturbation, bad inputs are refused.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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
