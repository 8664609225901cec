// checkpoint_open: every tensor found by its transformers name and shape-checked against the
// config, tied and untied heads, the fingerprint, the weight byte count.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/checkpoint.h"
#include "../model/synth.h"
#include "test_support.h"

// Rewrites DIR/model.safetensors without tensor `skip` (NULL keeps all), optionally flipping one
// byte of tensor `flip`, and optionally declaring 2-D tensor `transpose` with its two dimensions
// swapped (same bytes: what a checkpoint exported with a transposed weight looks like).
static void rewrite_checkpoint_transposing(const char *dir, const char *skip, const char *flip, const char *transpose) {
    SafetensorsSet set;
    ErrorMessage err;
    cr_assert_eq(safetensors_open_dir(dir, &set, &err), 0, "%s", err.text);
    size_t capacity = 1 << 20, length = 0, data_size = 0;
    char *header = malloc(capacity);
    cr_assert_not_null(header);
    length += (size_t)snprintf(header, capacity, "{");
    for (int t = 0; t < set.n_tensors; t++) {
        const TensorInfo *tensor = &set.tensors[t];
        if (skip && !strcmp(tensor->name, skip)) continue;
        int64_t shape[TENSOR_MAX_DIMS];
        for (int d = 0; d < tensor->ndim; d++) shape[d] = tensor->shape[d];
        if (transpose && !strcmp(tensor->name, transpose)) {
            cr_assert_eq(tensor->ndim, 2, "%s is not 2-D", transpose);
            shape[0] = tensor->shape[1];
            shape[1] = tensor->shape[0];
        }
        length += (size_t)snprintf(header + length, capacity - length, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld",
                                   length > 1 ? "," : "", tensor->name, dtype_name(tensor->dtype),
                                   (long long)shape[0]);
        for (int d = 1; d < tensor->ndim; d++)
            length += (size_t)snprintf(header + length, capacity - length, ",%lld", (long long)shape[d]);
        length += (size_t)snprintf(header + length, capacity - length, "],\"data_offsets\":[%zu,%zu]}", data_size,
                                   data_size + tensor->nbytes);
        data_size += tensor->nbytes;
    }
    length += (size_t)snprintf(header + length, capacity - length, "}");
    size_t total = 8 + length + data_size;
    unsigned char *bytes = malloc(total);
    cr_assert_not_null(bytes);
    for (int i = 0; i < 8; i++) bytes[i] = (unsigned char)((uint64_t)length >> (8 * i));
    memcpy(bytes + 8, header, length);
    size_t offset = 8 + length;
    for (int t = 0; t < set.n_tensors; t++) {
        const TensorInfo *tensor = &set.tensors[t];
        if (skip && !strcmp(tensor->name, skip)) continue;
        memcpy(bytes + offset, tensor->data, tensor->nbytes);
        if (flip && !strcmp(tensor->name, flip)) bytes[offset + tensor->nbytes / 2] ^= 1;
        offset += tensor->nbytes;
    }
    safetensors_close(&set);  // unmap before the file is replaced
    char *path = test_path_join(dir, "model.safetensors");
    test_write_file(path, bytes, total);
    free(path);
    free(bytes);
    free(header);
}

static void rewrite_checkpoint(const char *dir, const char *skip, const char *flip) {
    rewrite_checkpoint_transposing(dir, skip, flip, NULL);
}

// Replaces `from` by `to` in DIR/config.json (which must contain it).
static void edit_config(const char *dir, const char *from, const char *to) {
    char *path = test_path_join(dir, "config.json");
    char *text = test_read_file(path, NULL);
    char *at = strstr(text, from);
    cr_assert_not_null(at, "config.json lacks '%s'", from);
    size_t length = strlen(text) - strlen(from) + strlen(to);
    char *edited = malloc(length + 1);
    cr_assert_not_null(edited);
    snprintf(edited, length + 1, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    test_write_file(path, edited, length);
    free(edited);
    free(text);
    free(path);
}

static void expect_checkpoint_error(const char *dir, const char *expected) {
    Checkpoint checkpoint;
    ErrorMessage err = {{0}};
    cr_assert_eq(checkpoint_open(dir, &checkpoint, &err), -1, "opened a bad checkpoint");
    cr_assert_not_null(strstr(err.text, expected), "message '%s' lacks '%s'", err.text, expected);
    cr_assert_null(strchr(err.text, '\n'), "message is not one line: '%s'", err.text);
    checkpoint_close(&checkpoint);
}

Test(checkpoint, tiny_tied_loads) {
    char *dir = test_synth_checkpoint("tiny", 0);
    Checkpoint checkpoint;
    ErrorMessage err;
    cr_assert_eq(checkpoint_open(dir, &checkpoint, &err), 0, "%s", err.text);
    const ModelConfig *c = &checkpoint.config;
    cr_assert_eq(c->hidden_size, 64);
    cr_assert_eq(c->tie_word_embeddings, 1);
    cr_assert_eq(checkpoint.lm_head, checkpoint.embed_tokens);
    cr_assert_null(safetensors_find(&checkpoint.files, "lm_head.weight"));
    cr_assert_str_eq(checkpoint.final_norm->name, "model.norm.weight");
    cr_assert_str_eq(checkpoint.layers[1].k_proj->name, "model.layers.1.self_attn.k_proj.weight");
    cr_assert_eq(checkpoint.layers[1].k_proj->shape[0], 2 * 16);
    cr_assert_eq(checkpoint.layers[1].k_proj->shape[1], 64);
    cr_assert_eq(checkpoint.layers[0].o_proj->shape[0], 64);
    cr_assert_eq(checkpoint.layers[0].o_proj->shape[1], 4 * 16);
    cr_assert_eq(checkpoint.layers[0].down_proj->shape[1], 192);
    cr_assert_eq(strlen(checkpoint.fingerprint), 16);
    cr_assert_eq(strspn(checkpoint.fingerprint, "0123456789abcdef"), 16);

    // Weight bytes: every tensor once (tied: no separate head), all bf16.
    int64_t per_layer = 64 + 64 * 64 + 2 * 32 * 64 + 16 + 16 + 64 * 64 + 64 + 3 * 192 * 64;
    int64_t expected = 2 * (256 * 64 + 64 + 2 * per_layer);
    cr_assert_eq((int64_t)checkpoint_weight_bytes(&checkpoint), expected);
    checkpoint_close(&checkpoint);
    checkpoint_close(&checkpoint);  // safe twice
    free(dir);
}

Test(checkpoint, small_untied_has_separate_head) {
    char *dir = test_synth_checkpoint("small", 0);
    Checkpoint checkpoint;
    ErrorMessage err;
    cr_assert_eq(checkpoint_open(dir, &checkpoint, &err), 0, "%s", err.text);
    cr_assert_eq(checkpoint.config.tie_word_embeddings, 0);
    cr_assert_neq(checkpoint.lm_head, checkpoint.embed_tokens);
    cr_assert_str_eq(checkpoint.lm_head->name, "lm_head.weight");
    cr_assert_eq(checkpoint.lm_head->shape[0], 4096);
    cr_assert_eq(checkpoint.lm_head->shape[1], 256);
    size_t bytes = checkpoint_weight_bytes(&checkpoint);
    size_t file_total = 0;
    for (int t = 0; t < checkpoint.files.n_tensors; t++) file_total += checkpoint.files.tensors[t].nbytes;
    cr_assert_eq(bytes, file_total);
    checkpoint_close(&checkpoint);
    free(dir);
}

Test(checkpoint, shape_mismatch_against_config) {
    char *dir = test_synth_checkpoint("tiny", 0);
    edit_config(dir, "\"vocab_size\": 256", "\"vocab_size\": 255");
    char expected[512];
    snprintf(expected, sizeof expected,
             "%s/model.safetensors: tensor 'model.embed_tokens.weight': shape [256, 64], expected [255, 64]", dir);
    expect_checkpoint_error(dir, expected);
    free(dir);

    dir = test_synth_checkpoint("tiny", 0);
    edit_config(dir, "\"intermediate_size\": 192", "\"intermediate_size\": 128");
    expect_checkpoint_error(dir, "tensor 'model.layers.0.mlp.gate_proj.weight': shape [192, 64], expected [128, 64]");
    free(dir);

    dir = test_synth_checkpoint("tiny", 0);
    edit_config(dir, "\"head_dim\": 16", "\"head_dim\": 8");
    expect_checkpoint_error(dir, "tensor 'model.layers.0.self_attn.q_proj.weight': shape [64, 64], expected [32, 64]");
    free(dir);
}

// A weight stored transposed has the right number of elements, so only its shape tells: read as
// torch.nn.Linear's [out, in] it would be a silently wrong matrix. Every non-square weight of the
// small preset (hidden 256, 8 heads x 64 = 512, kv 2 x 64 = 128, intermediate 768, untied head), one at
// a time, is refused with one line naming the file, the tensor, the shape found and the one expected.
Test(checkpoint, transposed_weight_is_refused) {
    static const struct {
        const char *name;
        const char *found, *expected;
    } CASES[] = {
        {"model.embed_tokens.weight", "[256, 4096]", "[4096, 256]"},
        {"lm_head.weight", "[256, 4096]", "[4096, 256]"},
        {"model.layers.0.self_attn.q_proj.weight", "[256, 512]", "[512, 256]"},
        {"model.layers.1.self_attn.k_proj.weight", "[256, 128]", "[128, 256]"},
        {"model.layers.2.self_attn.v_proj.weight", "[256, 128]", "[128, 256]"},
        {"model.layers.3.self_attn.o_proj.weight", "[512, 256]", "[256, 512]"},
        {"model.layers.0.mlp.gate_proj.weight", "[256, 768]", "[768, 256]"},
        {"model.layers.1.mlp.up_proj.weight", "[256, 768]", "[768, 256]"},
        {"model.layers.3.mlp.down_proj.weight", "[768, 256]", "[256, 768]"},
    };
    char *original = test_synth_checkpoint("small", 0);
    char *original_file = test_path_join(original, "model.safetensors");
    size_t size;
    char *original_bytes = test_read_file(original_file, &size);
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        test_write_file(original_file, original_bytes, size);  // start each case from the good file
        rewrite_checkpoint_transposing(original, NULL, NULL, CASES[i].name);
        char expected[512];
        snprintf(expected, sizeof expected, "%s: tensor '%s': shape %s, expected %s", original_file, CASES[i].name,
                 CASES[i].found, CASES[i].expected);
        expect_checkpoint_error(original, expected);
    }
    // And the untouched file still loads: the refusals were the transpositions.
    test_write_file(original_file, original_bytes, size);
    Checkpoint checkpoint;
    ErrorMessage err;
    cr_assert_eq(checkpoint_open(original, &checkpoint, &err), 0, "%s", err.text);
    checkpoint_close(&checkpoint);
    free(original_bytes);
    free(original_file);
    free(original);
}

Test(checkpoint, missing_tensor) {
    char *dir = test_synth_checkpoint("tiny", 0);
    rewrite_checkpoint(dir, "model.layers.1.self_attn.q_norm.weight", NULL);
    char expected[512];
    snprintf(expected, sizeof expected, "%s: tensor 'model.layers.1.self_attn.q_norm.weight' is missing", dir);
    expect_checkpoint_error(dir, expected);
    free(dir);

    // An untied config needs lm_head.weight, which a tied checkpoint lacks.
    dir = test_synth_checkpoint("tiny", 0);
    edit_config(dir, "\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false");
    expect_checkpoint_error(dir, "tensor 'lm_head.weight' is missing");
    free(dir);
}

Test(checkpoint, missing_or_bad_config) {
    char *dir = test_make_temp_dir("ckpt-empty");
    char expected[512];
    snprintf(expected, sizeof expected, "%s/config.json: cannot open", dir);
    expect_checkpoint_error(dir, expected);
    free(dir);

    dir = test_synth_checkpoint("tiny", 0);
    edit_config(dir, "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3");
    expect_checkpoint_error(dir, "config.json: field 'num_key_value_heads' (3) does not divide num_attention_heads (4)");
    free(dir);
}

Test(checkpoint, fingerprint_sees_every_byte) {
    char *dir = test_synth_checkpoint("tiny", 3);
    Checkpoint before, after;
    ErrorMessage err;
    cr_assert_eq(checkpoint_open(dir, &before, &err), 0, "%s", err.text);
    rewrite_checkpoint(dir, NULL, NULL);  // same tensors, no metadata: layout alone must not matter
    cr_assert_eq(checkpoint_open(dir, &after, &err), 0, "%s", err.text);
    cr_assert_str_eq(before.fingerprint, after.fingerprint);
    checkpoint_close(&after);
    rewrite_checkpoint(dir, NULL, "model.layers.1.mlp.up_proj.weight");  // one bit flipped
    cr_assert_eq(checkpoint_open(dir, &after, &err), 0, "%s", err.text);
    cr_assert_str_neq(before.fingerprint, after.fingerprint);
    checkpoint_close(&after);
    rewrite_checkpoint(dir, NULL, "model.layers.1.mlp.up_proj.weight");  // flipped back
    edit_config(dir, "\"rms_norm_eps\": 1e-06", "\"rms_norm_eps\": 1e-05");  // config is part of it
    cr_assert_eq(checkpoint_open(dir, &after, &err), 0, "%s", err.text);
    cr_assert_str_neq(before.fingerprint, after.fingerprint);
    checkpoint_close(&after);
    edit_config(dir, "\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": 1e-06");
    cr_assert_eq(checkpoint_open(dir, &after, &err), 0, "%s", err.text);
    cr_assert_str_eq(before.fingerprint, after.fingerprint);
    checkpoint_close(&after);
    checkpoint_close(&before);
    free(dir);
}

// A tied checkpoint that also stores lm_head.weight (some exports do) still ties: the model uses
// embed_tokens, as transformers does.
Test(checkpoint, tied_with_stored_head_uses_embeddings) {
    char *dir = test_synth_checkpoint("tiny-untied", 0);
    edit_config(dir, "\"tie_word_embeddings\": false", "\"tie_word_embeddings\": true");
    Checkpoint checkpoint;
    ErrorMessage err;
    cr_assert_eq(checkpoint_open(dir, &checkpoint, &err), 0, "%s", err.text);
    cr_assert_eq(checkpoint.lm_head, checkpoint.embed_tokens);
    checkpoint_close(&checkpoint);
    free(dir);
}
