// config.json parsing: a good config, bad JSON, each bad field with its own message, transformers'
// defaults, and the canonical JSON round trip.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/config.h"
#include "test_support.h"

// A real Qwen3-0.6B config.json, as published.
static const char *QWEN3_06B =
    "{\n"
    "  \"architectures\": [\"Qwen3ForCausalLM\"],\n"
    "  \"attention_bias\": false,\n"
    "  \"attention_dropout\": 0.0,\n"
    "  \"bos_token_id\": 151643,\n"
    "  \"eos_token_id\": 151645,\n"
    "  \"head_dim\": 128,\n"
    "  \"hidden_act\": \"silu\",\n"
    "  \"hidden_size\": 1024,\n"
    "  \"initializer_range\": 0.02,\n"
    "  \"intermediate_size\": 3072,\n"
    "  \"max_position_embeddings\": 40960,\n"
    "  \"max_window_layers\": 28,\n"
    "  \"model_type\": \"qwen3\",\n"
    "  \"num_attention_heads\": 16,\n"
    "  \"num_hidden_layers\": 28,\n"
    "  \"num_key_value_heads\": 8,\n"
    "  \"rms_norm_eps\": 1e-06,\n"
    "  \"rope_scaling\": null,\n"
    "  \"rope_theta\": 1000000,\n"
    "  \"sliding_window\": null,\n"
    "  \"tie_word_embeddings\": true,\n"
    "  \"torch_dtype\": \"bfloat16\",\n"
    "  \"transformers_version\": \"4.51.0\",\n"
    "  \"use_cache\": true,\n"
    "  \"use_sliding_window\": false,\n"
    "  \"vocab_size\": 151936\n"
    "}\n";

// QWEN3_06B with the first occurrence of `from` replaced by `to`.
static char *edited(const char *from, const char *to) {
    const char *at = strstr(QWEN3_06B, from);
    cr_assert_not_null(at, "the config lacks '%s'", from);
    size_t length = strlen(QWEN3_06B) - strlen(from) + strlen(to);
    char *text = malloc(length + 1);
    cr_assert_not_null(text);
    snprintf(text, length + 1, "%.*s%s%s", (int)(at - QWEN3_06B), QWEN3_06B, to, at + strlen(from));
    return text;
}

static void expect_error(const char *from, const char *to, const char *expected) {
    char *text = edited(from, to);
    ModelConfig config;
    ErrorMessage err = {{0}};
    cr_assert_eq(config_parse(text, "ckpt/config.json", &config, &err), -1, "accepted '%s' -> '%s'", from, to);
    cr_assert_not_null(strstr(err.text, expected), "message '%s' lacks '%s'", err.text, expected);
    cr_assert_eq(strncmp(err.text, "ckpt/config.json: ", 18), 0, "message '%s' does not start with the file", err.text);
    cr_assert_null(strchr(err.text, '\n'));
    free(text);
}

Test(config, parses_qwen3_06b) {
    ModelConfig c;
    ErrorMessage err;
    cr_assert_eq(config_parse(QWEN3_06B, "ckpt/config.json", &c, &err), 0, "%s", err.text);
    cr_assert_eq(c.hidden_size, 1024);
    cr_assert_eq(c.intermediate_size, 3072);
    cr_assert_eq(c.num_hidden_layers, 28);
    cr_assert_eq(c.num_attention_heads, 16);
    cr_assert_eq(c.num_key_value_heads, 8);
    cr_assert_eq(c.head_dim, 128);
    cr_assert_eq(c.vocab_size, 151936);
    cr_assert_eq(c.max_position_embeddings, 40960);
    cr_assert_eq(c.rms_norm_eps, 1e-6f);
    cr_assert_eq(c.rope_theta, 1e6);
    cr_assert_eq(c.tie_word_embeddings, 1);
}

Test(config, bad_json) {
    ModelConfig c;
    ErrorMessage err;
    cr_assert_eq(config_parse("{\"hidden_size\": 64,", "ckpt/config.json", &c, &err), -1);
    cr_assert_not_null(strstr(err.text, "ckpt/config.json: invalid JSON"), "%s", err.text);
    cr_assert_eq(config_parse("[1, 2]", "ckpt/config.json", &c, &err), -1);
    cr_assert_not_null(strstr(err.text, "ckpt/config.json: not a JSON object"), "%s", err.text);
}

Test(config, each_bad_field) {
    expect_error("\"Qwen3ForCausalLM\"", "\"LlamaForCausalLM\"",
                 "field 'architectures' does not contain \"Qwen3ForCausalLM\"");
    expect_error("\"model_type\": \"qwen3\"", "\"model_type\": \"qwen3_moe\"",
                 "ckpt/config.json: field 'model_type' is \"qwen3_moe\", only \"qwen3\" is supported");
    expect_error("\"model_type\": \"qwen3\"", "\"model_type\": 3", "field 'model_type' is not a string");
    expect_error("\"hidden_size\": 1024", "\"hidden_size\": 0", "field 'hidden_size' (0) must be positive");
    expect_error("\"hidden_size\": 1024", "\"hidden_size\": -4", "field 'hidden_size' (-4) must be positive");
    expect_error("\"hidden_size\": 1024", "\"hidden_size\": 10.5", "field 'hidden_size' (10.5) is not an integer");
    expect_error("\"hidden_size\": 1024", "\"hidden_size\": \"1024\"", "field 'hidden_size' is not a number");
    expect_error("\"hidden_size\": 1024", "\"hidden_size\": 1e300", "field 'hidden_size' (1e+300) is out of range");
    expect_error("\"hidden_size\": 1024,", "", "field 'hidden_size' is missing");
    expect_error("\"intermediate_size\": 3072", "\"intermediate_size\": 0", "field 'intermediate_size' (0)");
    expect_error("\"num_hidden_layers\": 28", "\"num_hidden_layers\": -1", "field 'num_hidden_layers' (-1)");
    expect_error("\"num_attention_heads\": 16", "\"num_attention_heads\": 0", "field 'num_attention_heads' (0)");
    expect_error("\"num_key_value_heads\": 8", "\"num_key_value_heads\": 3",
                 "ckpt/config.json: field 'num_key_value_heads' (3) does not divide num_attention_heads (16)");
    expect_error("\"num_key_value_heads\": 8", "\"num_key_value_heads\": 0", "field 'num_key_value_heads' (0)");
    expect_error("\"head_dim\": 128", "\"head_dim\": 127", "field 'head_dim' (127) must be even");
    expect_error("\"head_dim\": 128", "\"head_dim\": 0", "field 'head_dim' (0) must be positive");
    expect_error("\"vocab_size\": 151936", "\"vocab_size\": 0", "field 'vocab_size' (0) must be positive");
    expect_error("\"max_position_embeddings\": 40960", "\"max_position_embeddings\": 0",
                 "field 'max_position_embeddings' (0) must be positive");
    expect_error("\"rope_theta\": 1000000", "\"rope_theta\": 0", "field 'rope_theta' (0) must be positive");
    expect_error("\"rope_theta\": 1000000", "\"rope_theta\": -5", "field 'rope_theta' (-5) must be positive");
    expect_error("\"rope_theta\": 1000000,", "", "field 'rope_theta' is missing");
    expect_error("\"rms_norm_eps\": 1e-06", "\"rms_norm_eps\": 0", "field 'rms_norm_eps' (0) must be in (0, 1)");
    expect_error("\"rms_norm_eps\": 1e-06", "\"rms_norm_eps\": 1", "field 'rms_norm_eps' (1) must be in (0, 1)");
    expect_error("\"rms_norm_eps\": 1e-06", "\"rms_norm_eps\": \"small\"", "field 'rms_norm_eps' is not a number");
    expect_error("\"tie_word_embeddings\": true", "\"tie_word_embeddings\": 1",
                 "field 'tie_word_embeddings' is not true or false");
    // Settings that would change the math are refused, never silently ignored.
    expect_error("\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4.0}",
                 "field 'rope_scaling' must be null or of rope_type");
    expect_error("\"rope_scaling\": null", "\"rope_parameters\": {\"rope_type\": \"yarn\", \"rope_theta\": 1e6}",
                 "field 'rope_parameters' must be null or of rope_type \"default\"");
    expect_error("\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"", "field 'hidden_act' must be \"silu\"");
    expect_error("\"attention_bias\": false", "\"attention_bias\": true", "field 'attention_bias' must be false");
    expect_error("\"use_sliding_window\": false", "\"use_sliding_window\": true",
                 "field 'use_sliding_window' must be false");
}

Test(config, transformers_defaults) {
    // No head_dim: hidden_size / num_attention_heads. No kv heads: plain multi-head attention.
    // No architectures or tie_word_embeddings key: accepted, untied.
    const char *text = "{\"hidden_size\": 96, \"intermediate_size\": 128, \"num_hidden_layers\": 1,"
                       " \"num_attention_heads\": 6, \"vocab_size\": 10, \"max_position_embeddings\": 64,"
                       " \"rope_theta\": 10000.0, \"rms_norm_eps\": 1e-5}";
    ModelConfig c;
    ErrorMessage err;
    cr_assert_eq(config_parse(text, "x", &c, &err), 0, "%s", err.text);
    cr_assert_eq(c.head_dim, 16);
    cr_assert_eq(c.num_key_value_heads, 6);
    cr_assert_eq(c.tie_word_embeddings, 0);

    // A defaulted head_dim must still be even: 90 / 6 = 15.
    const char *odd = "{\"hidden_size\": 90, \"intermediate_size\": 128, \"num_hidden_layers\": 1,"
                      " \"num_attention_heads\": 6, \"vocab_size\": 10, \"max_position_embeddings\": 64,"
                      " \"rope_theta\": 10000.0, \"rms_norm_eps\": 1e-5}";
    cr_assert_eq(config_parse(odd, "x", &c, &err), -1);
    cr_assert_not_null(strstr(err.text, "field 'head_dim' (15) must be even"), "%s", err.text);
}

// transformers 5 writes rope_parameters {rope_theta, rope_type} instead of rope_theta.
Test(config, transformers5_rope_parameters) {
    const char *text = "{\"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 1,"
                       " \"num_attention_heads\": 4, \"vocab_size\": 10, \"max_position_embeddings\": 64,"
                       " \"rope_parameters\": {\"rope_theta\": 5000000.0, \"rope_type\": \"default\"},"
                       " \"rope_scaling\": {\"rope_type\": \"default\"}, \"rms_norm_eps\": 1e-6}";
    ModelConfig c;
    ErrorMessage err;
    cr_assert_eq(config_parse(text, "x", &c, &err), 0, "%s", err.text);
    cr_assert_eq(c.rope_theta, 5e6);
}

Test(config, canonical_json_round_trip) {
    ModelConfig c, back;
    ErrorMessage err;
    cr_assert_eq(config_parse(QWEN3_06B, "q", &c, &err), 0, "%s", err.text);
    char *text = config_to_json(&c);
    cr_assert_not_null(text);
    cr_assert_eq(config_parse(text, "canonical", &back, &err), 0, "%s", err.text);
    cr_assert(config_equal(&c, &back));
    // Canonical: the same config always gives the same text, keys in transformers' spelling.
    char *again = config_to_json(&back);
    cr_assert_str_eq(text, again);
    cr_assert_not_null(strstr(text, "\"model_type\": \"qwen3\""));
    cr_assert_not_null(strstr(text, "\"rms_norm_eps\": 1e-06,"), "%s", text);
    cr_assert_not_null(strstr(text, "\"torch_dtype\": \"bfloat16\""));
    cr_assert_not_null(strstr(text, "\"tie_word_embeddings\": true"));
    cr_assert_lt(strstr(text, "\"architectures\""), strstr(text, "\"vocab_size\""));

    // Odd values survive the trip exactly.
    c.rope_theta = 12345.678901234567;
    c.rms_norm_eps = 3.3e-7f;
    c.tie_word_embeddings = 0;
    free(text);
    text = config_to_json(&c);
    cr_assert_eq(config_parse(text, "canonical", &back, &err), 0, "%s", err.text);
    cr_assert(config_equal(&c, &back));
    back.num_key_value_heads = 4;
    cr_assert_not(config_equal(&c, &back));
    free(text);
    free(again);
}

Test(config, load_from_file) {
    char *dir = test_make_temp_dir("config");
    char *path = test_path_join(dir, "config.json");
    test_write_file(path, QWEN3_06B, strlen(QWEN3_06B));
    ModelConfig c;
    ErrorMessage err;
    cr_assert_eq(config_load(path, &c, &err), 0, "%s", err.text);
    cr_assert_eq(c.vocab_size, 151936);
    char *missing = test_path_join(dir, "nope.json");
    cr_assert_eq(config_load(missing, &c, &err), -1);
    cr_assert_not_null(strstr(err.text, "nope.json: cannot open"), "%s", err.text);
    free(missing);
    free(path);
    free(dir);
}

Test(config, kv_dtype_names) {
    KvDtype dtype;
    cr_assert_eq(kv_dtype_parse("f32", &dtype), 0);
    cr_assert_eq(dtype, KV_F32);
    cr_assert_eq(kv_dtype_parse("bf16", &dtype), 0);
    cr_assert_eq(dtype, KV_BF16);
    cr_assert_eq(kv_dtype_parse("fp16", &dtype), -1);
    cr_assert_eq(kv_dtype_parse(NULL, &dtype), -1);
    cr_assert_str_eq(kv_dtype_name(KV_F32), "f32");
    cr_assert_str_eq(kv_dtype_name(KV_BF16), "bf16");
}
