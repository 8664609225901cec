// config.json of a Hugging Face Qwen3 checkpoint: parse, validate, and write back canonically.
#include "config.h"

#include "file_util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------------------------
// reading fields

// A positive integer field. `required` 0 leaves *out untouched when the key is absent (or null).
static int read_positive_int(const cJSON *root, const char *origin, const char *key, int required, int *out,
                             ErrorMessage *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item || cJSON_IsNull(item)) {
        if (required) return fail(err, "%s: field '%s' is missing", origin, key);
        return 0;
    }
    if (!cJSON_IsNumber(item)) return fail(err, "%s: field '%s' is not a number", origin, key);
    double value = item->valuedouble;
    if (value > INT_MAX || value < INT_MIN) return fail(err, "%s: field '%s' (%g) is out of range", origin, key, value);
    if (value != (double)(int)value) return fail(err, "%s: field '%s' (%g) is not an integer", origin, key, value);
    if (value <= 0) return fail(err, "%s: field '%s' (%d) must be positive", origin, key, (int)value);
    *out = (int)value;
    return 0;
}

static int read_number(const cJSON *root, const char *origin, const char *key, double *out, ErrorMessage *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item || cJSON_IsNull(item)) return fail(err, "%s: field '%s' is missing", origin, key);
    if (!cJSON_IsNumber(item)) return fail(err, "%s: field '%s' is not a number", origin, key);
    *out = item->valuedouble;
    return 0;
}

// Keys that change the math when they hold anything but the plain Qwen3 value: refusing them beats
// computing a silently different model.
static int check_unsupported(const cJSON *root, const char *origin, ErrorMessage *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (item && !cJSON_IsNull(item) && !(cJSON_IsString(item) && !strcmp(item->valuestring, "silu")))
        return fail(err, "%s: field 'hidden_act' must be \"silu\" (the only activation supported)", origin);
    item = cJSON_GetObjectItemCaseSensitive(root, "attention_bias");
    if (item && !cJSON_IsNull(item) && !cJSON_IsFalse(item))
        return fail(err, "%s: field 'attention_bias' must be false (biased projections are not supported)", origin);
    // transformers 4 writes rope_scaling, transformers 5 rope_parameters; only plain RoPE is supported.
    const char *rope_keys[] = {"rope_scaling", "rope_parameters"};
    for (int k = 0; k < 2; k++) {
        item = cJSON_GetObjectItemCaseSensitive(root, rope_keys[k]);
        if (!item || cJSON_IsNull(item)) continue;
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(item, "rope_type");
        if (!type) type = cJSON_GetObjectItemCaseSensitive(item, "type");
        if (!cJSON_IsObject(item) || (type && !(cJSON_IsString(type) && !strcmp(type->valuestring, "default"))))
            return fail(err, "%s: field '%s' must be null or of rope_type \"default\" (scaled RoPE is not supported)",
                        origin, rope_keys[k]);
    }
    item = cJSON_GetObjectItemCaseSensitive(root, "use_sliding_window");
    if (item && !cJSON_IsNull(item) && !cJSON_IsFalse(item))
        return fail(err, "%s: field 'use_sliding_window' must be false (sliding-window attention is not supported)",
                    origin);
    return 0;
}

static int parse_fields(const cJSON *root, const char *origin, ModelConfig *config, ErrorMessage *err) {
    if (!cJSON_IsObject(root)) return fail(err, "%s: not a JSON object", origin);

    const cJSON *architectures = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    if (architectures && !cJSON_IsNull(architectures)) {
        if (!cJSON_IsArray(architectures)) return fail(err, "%s: field 'architectures' is not a list", origin);
        int found = 0;
        const cJSON *name;
        cJSON_ArrayForEach(name, architectures) {
            if (cJSON_IsString(name) && !strcmp(name->valuestring, "Qwen3ForCausalLM")) found = 1;
        }
        if (!found) return fail(err, "%s: field 'architectures' does not contain \"Qwen3ForCausalLM\"", origin);
    }
    // Another family's config can share every field name yet mean different math (qwen3_moe, qwen2):
    // an absent model_type is accepted (as transformers does), any other value refused.
    const cJSON *model_type = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (model_type && !cJSON_IsNull(model_type)) {
        if (!cJSON_IsString(model_type)) return fail(err, "%s: field 'model_type' is not a string", origin);
        if (strcmp(model_type->valuestring, "qwen3"))
            return fail(err, "%s: field 'model_type' is \"%s\", only \"qwen3\" is supported", origin,
                        model_type->valuestring);
    }
    if (check_unsupported(root, origin, err)) return -1;

    memset(config, 0, sizeof *config);
    if (read_positive_int(root, origin, "hidden_size", 1, &config->hidden_size, err) ||
        read_positive_int(root, origin, "intermediate_size", 1, &config->intermediate_size, err) ||
        read_positive_int(root, origin, "num_hidden_layers", 1, &config->num_hidden_layers, err) ||
        read_positive_int(root, origin, "num_attention_heads", 1, &config->num_attention_heads, err) ||
        read_positive_int(root, origin, "vocab_size", 1, &config->vocab_size, err) ||
        read_positive_int(root, origin, "max_position_embeddings", 1, &config->max_position_embeddings, err))
        return -1;

    // transformers: a missing num_key_value_heads means plain multi-head attention.
    config->num_key_value_heads = config->num_attention_heads;
    if (read_positive_int(root, origin, "num_key_value_heads", 0, &config->num_key_value_heads, err)) return -1;
    if (config->num_attention_heads % config->num_key_value_heads != 0)
        return fail(err, "%s: field 'num_key_value_heads' (%d) does not divide num_attention_heads (%d)", origin,
                    config->num_key_value_heads, config->num_attention_heads);

    // transformers: a missing head_dim is hidden_size / num_attention_heads.
    config->head_dim = config->hidden_size / config->num_attention_heads;
    if (read_positive_int(root, origin, "head_dim", 0, &config->head_dim, err)) return -1;
    if (config->head_dim <= 0)
        return fail(err, "%s: field 'head_dim' is missing and hidden_size (%d) / num_attention_heads (%d) is 0",
                    origin, config->hidden_size, config->num_attention_heads);
    if (config->head_dim % 2 != 0)
        return fail(err, "%s: field 'head_dim' (%d) must be even (RoPE rotates pairs)", origin, config->head_dim);

    double rope_theta = 0, rms_norm_eps = 0;
    // transformers 5 moved rope_theta into rope_parameters.
    const cJSON *rope_parameters = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    if (!cJSON_GetObjectItemCaseSensitive(root, "rope_theta") && cJSON_IsObject(rope_parameters)) {
        if (read_number(rope_parameters, origin, "rope_theta", &rope_theta, err)) return -1;
    } else if (read_number(root, origin, "rope_theta", &rope_theta, err)) {
        return -1;
    }
    if (!(rope_theta > 0 && rope_theta <= DBL_MAX))
        return fail(err, "%s: field 'rope_theta' (%g) must be positive and finite", origin, rope_theta);
    config->rope_theta = rope_theta;
    if (read_number(root, origin, "rms_norm_eps", &rms_norm_eps, err)) return -1;
    // Checked as the float the model computes with: 1e-66 is positive as a double but 0 as a float.
    if (!((float)rms_norm_eps > 0 && (float)rms_norm_eps < 1))
        return fail(err, "%s: field 'rms_norm_eps' (%g) must be in (0, 1) as a float32", origin, rms_norm_eps);
    config->rms_norm_eps = (float)rms_norm_eps;

    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
    if (tie && !cJSON_IsNull(tie)) {
        if (!cJSON_IsBool(tie)) return fail(err, "%s: field 'tie_word_embeddings' is not true or false", origin);
        config->tie_word_embeddings = cJSON_IsTrue(tie) ? 1 : 0;
    }

    // Sizes multiply into buffer lengths and element counts downstream; keep every product in range.
    long long q_width = (long long)config->num_attention_heads * config->head_dim;
    if (q_width > INT_MAX / 4)
        return fail(err, "%s: num_attention_heads * head_dim (%lld) is too large", origin, q_width);
    return 0;
}

int config_parse(const char *json_text, const char *origin, ModelConfig *out, ErrorMessage *err) {
    cJSON *root = cJSON_Parse(json_text);
    if (!root) {
        const char *where = cJSON_GetErrorPtr();
        long offset = where && where >= json_text ? (long)(where - json_text) : -1;
        return fail(err, "%s: invalid JSON near byte %ld", origin, offset);
    }
    ModelConfig config;
    int status = parse_fields(root, origin, &config, err);
    cJSON_Delete(root);
    if (status == 0) *out = config;
    return status;
}

int config_load(const char *path, ModelConfig *out, ErrorMessage *err) {
    // config.json is a few KB; anything past a megabyte is not a config.
    char *text = read_text_file(path, 1u << 20, err);
    if (!text) return -1;
    int status = config_parse(text, path, out, err);
    free(text);
    return status;
}

// ----------------------------------------------------------------------------------------------
// writing

// The shortest decimal that reads back as exactly `value` (as a double, or as a float when
// `as_float`), so 1e-6f prints "1e-06", not "9.99999997e-07". Always looks like a float to Python.
static void format_shortest(char *buffer, size_t size, double value, int as_float) {
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buffer, size, "%.*g", digits, value);
        double back = strtod(buffer, NULL);
        if (as_float ? (float)back == (float)value : back == value) break;
    }
    if (!strpbrk(buffer, ".eEn")) strncat(buffer, ".0", size - strlen(buffer) - 1);
}

char *config_to_json(const ModelConfig *config) {
    char theta[64], eps[64];
    format_shortest(theta, sizeof theta, config->rope_theta, 0);
    format_shortest(eps, sizeof eps, config->rms_norm_eps, 1);
    // transformers' keys, sorted as transformers writes them; every value fixed by the config.
    const char *format =
        "{\n"
        "  \"architectures\": [\n    \"Qwen3ForCausalLM\"\n  ],\n"
        "  \"attention_bias\": false,\n"
        "  \"attention_dropout\": 0.0,\n"
        "  \"head_dim\": %d,\n"
        "  \"hidden_act\": \"silu\",\n"
        "  \"hidden_size\": %d,\n"
        "  \"intermediate_size\": %d,\n"
        "  \"max_position_embeddings\": %d,\n"
        "  \"model_type\": \"qwen3\",\n"
        "  \"num_attention_heads\": %d,\n"
        "  \"num_hidden_layers\": %d,\n"
        "  \"num_key_value_heads\": %d,\n"
        "  \"rms_norm_eps\": %s,\n"
        "  \"rope_scaling\": null,\n"
        "  \"rope_theta\": %s,\n"
        "  \"tie_word_embeddings\": %s,\n"
        "  \"torch_dtype\": \"bfloat16\",\n"
        "  \"use_cache\": true,\n"
        "  \"use_sliding_window\": false,\n"
        "  \"vocab_size\": %d\n"
        "}\n";
    int length = snprintf(NULL, 0, format, config->head_dim, config->hidden_size, config->intermediate_size,
                          config->max_position_embeddings, config->num_attention_heads, config->num_hidden_layers,
                          config->num_key_value_heads, eps, theta, config->tie_word_embeddings ? "true" : "false",
                          config->vocab_size);
    if (length < 0) return NULL;
    char *text = malloc((size_t)length + 1);
    if (!text) return NULL;
    snprintf(text, (size_t)length + 1, format, config->head_dim, config->hidden_size, config->intermediate_size,
             config->max_position_embeddings, config->num_attention_heads, config->num_hidden_layers,
             config->num_key_value_heads, eps, theta, config->tie_word_embeddings ? "true" : "false",
             config->vocab_size);
    return text;
}

int config_equal(const ModelConfig *a, const ModelConfig *b) {
    return a->hidden_size == b->hidden_size && a->intermediate_size == b->intermediate_size &&
           a->num_hidden_layers == b->num_hidden_layers && a->num_attention_heads == b->num_attention_heads &&
           a->num_key_value_heads == b->num_key_value_heads && a->head_dim == b->head_dim &&
           a->vocab_size == b->vocab_size && a->max_position_embeddings == b->max_position_embeddings &&
           a->rms_norm_eps == b->rms_norm_eps && a->rope_theta == b->rope_theta &&
           a->tie_word_embeddings == b->tie_word_embeddings;
}

// ----------------------------------------------------------------------------------------------
// precision profile names

int kv_dtype_parse(const char *name, KvDtype *out) {
    if (name && !strcmp(name, "f32")) {
        *out = KV_F32;
        return 0;
    }
    if (name && !strcmp(name, "bf16")) {
        *out = KV_BF16;
        return 0;
    }
    return -1;
}

const char *kv_dtype_name(KvDtype dtype) {
    switch (dtype) {
    case KV_F32: return "f32";
    case KV_BF16: return "bf16";
    }
    return "unknown";
}
