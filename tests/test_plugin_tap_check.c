// tap_check_tensor (cli/tap_check.h): the shape rule every tensor a plugin taps is held to accepts
// exactly golden/FORMAT.md's tensors (the names of golden/trace.h, so the two lists cannot drift) with
// their layer and [rows, cols], and refuses every other layer, row count and column count.
#include <criterion/criterion.h>
#include <string.h>

#include "../cli/tap_check.h"
#include "../golden/trace.h"

// A shape whose widths all differ, so that no width can stand in for another: hidden 48, q 4*16 = 64,
// kv 2*16 = 32, intermediate 96, vocab 200, 3 layers.
static const ModelConfig CONFIG = {
    .hidden_size = 48, .intermediate_size = 96, .num_hidden_layers = 3, .num_attention_heads = 4,
    .num_key_value_heads = 2, .head_dim = 16, .vocab_size = 200, .max_position_embeddings = 64,
    .rms_norm_eps = 1e-6f, .rope_theta = 1e6, .tie_word_embeddings = 1,
};

// FORMAT.md's width of each layer tensor, written out here independently of tap_check.c.
static int layer_width(const char *name) {
    if (!strcmp(name, "q") || !strcmp(name, "attn")) return 64;
    if (!strcmp(name, "k") || !strcmp(name, "v")) return 32;
    if (!strcmp(name, "gate") || !strcmp(name, "up") || !strcmp(name, "act")) return 96;
    return 48;
}

static int check(int n_tokens, int layer, const char *name, int rows, int cols, ErrorMessage *err) {
    return tap_check_tensor(&CONFIG, n_tokens, layer, name, rows, cols, "engine plugin ./x.so", err);
}

Test(tap_check, accepts_every_layer_tensor_with_its_shape_and_nothing_else) {
    for (int i = 0; i < TRACE_N_LAYER_TENSORS; i++) {
        const char *name = TRACE_LAYER_TENSORS[i];
        int width = layer_width(name);
        ErrorMessage err = {{0}};
        for (int layer = 0; layer < 3; layer++)
            cr_expect_eq(check(5, layer, name, 5, width, &err), 0, "%s layer %d: %s", name, layer, err.text);
        cr_expect_eq(check(1, 2, name, 1, width, &err), 0, "%s decode: %s", name, err.text);
        cr_expect_eq(check(5, 3, name, 5, width, &err), -1, "%s: layer 3 of 3 accepted", name);
        cr_expect_eq(check(5, -1, name, 5, width, &err), -1, "%s: layer -1 accepted", name);
        cr_expect_eq(check(5, 0, name, 4, width, &err), -1, "%s: 4 rows for 5 tokens accepted", name);
        cr_expect_eq(check(5, 0, name, 1, width, &err), -1, "%s: 1 row for 5 tokens accepted", name);
        cr_expect_eq(check(5, 0, name, 5, width + 1, &err), -1, "%s: width + 1 accepted", name);
        cr_expect_eq(check(5, 0, name, 5, width - 1, &err), -1, "%s: width - 1 accepted", name);
    }
}

Test(tap_check, accepts_the_step_tensors_with_layer_minus_one) {
    ErrorMessage err = {{0}};
    cr_expect_eq(check(5, -1, "embed", 5, 48, &err), 0, "%s", err.text);
    cr_expect_eq(check(5, -1, "final_norm", 1, 48, &err), 0, "%s", err.text);
    cr_expect_eq(check(5, -1, "logits", 1, 200, &err), 0, "%s", err.text);
    cr_expect_eq(check(5, 0, "embed", 5, 48, &err), -1);
    cr_expect_eq(check(5, -1, "embed", 1, 48, &err), -1);
    cr_expect_eq(check(5, -1, "final_norm", 5, 48, &err), -1);
    cr_expect_eq(check(5, -1, "logits", 1, 48, &err), -1);
    cr_expect_str_eq(err.text, "engine plugin ./x.so: tapped 'logits' as [1, 48], expected [1, 200] (1 (last row) x "
                               "vocab_size, golden/FORMAT.md)");
    // Every step tensor of trace.h but next_token (forward's result) is tappable.
    for (int i = 0; i < TRACE_N_STEP_TENSORS; i++) {
        const char *name = TRACE_STEP_TENSORS[i];
        int rows = !strcmp(name, "embed") ? 5 : 1, cols = !strcmp(name, "logits") ? 200 : 48;
        cr_expect_eq(check(5, -1, name, rows, cols, &err), strcmp(name, "next_token") ? 0 : -1, "%s", name);
    }
}

Test(tap_check, names_what_is_wrong_in_one_line) {
    ErrorMessage err = {{0}};
    cr_expect_eq(check(5, 1, "k", 5, 64, &err), -1);
    cr_expect_str_eq(err.text, "engine plugin ./x.so: tapped 'k' of layer 1 as [5, 64], expected [5, 32] (n_tokens x "
                               "num_key_value_heads*head_dim, golden/FORMAT.md)");
    cr_expect_eq(check(5, 0, NULL, 5, 48, &err), -1);
    cr_expect_str_eq(err.text, "engine plugin ./x.so: tapped a tensor with no name (layer 0)");
    cr_expect_eq(check(5, 0, "line\nbreak", 5, 48, &err), -1);
    cr_expect_null(strchr(err.text, '\n'), "%s", err.text);
    cr_expect_eq(check(5, 0, "Q", 5, 64, &err), -1, "names are case-sensitive");
}
