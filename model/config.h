// The model configuration: what config.json of a Hugging Face Qwen3 checkpoint says, validated.
#ifndef FUSECHECK_CONFIG_H
#define FUSECHECK_CONFIG_H

#include "error.h"

typedef struct {
    int hidden_size;              // d_model
    int intermediate_size;        // MLP width
    int num_hidden_layers;
    int num_attention_heads;      // query heads
    int num_key_value_heads;      // k/v heads (GQA); divides num_attention_heads
    int head_dim;                 // per head; q width is num_attention_heads*head_dim (may differ from hidden)
    int vocab_size;
    int max_position_embeddings;  // longest context the model accepts
    float rms_norm_eps;
    double rope_theta;
    int tie_word_embeddings;      // 1: lm_head is embed_tokens
} ModelConfig;

// Parses and validates JSON text. `origin` names the text in messages (usually the file path).
// Checks: architectures contains "Qwen3ForCausalLM" (when the key is present), every size positive,
// num_attention_heads % num_key_value_heads == 0, head_dim even, rope_theta > 0, 0 < eps < 1.
// A missing head_dim defaults to hidden_size / num_attention_heads, as transformers does.
int config_parse(const char *json_text, const char *origin, ModelConfig *out, ErrorMessage *err);

// Reads and parses `path` (a config.json).
int config_load(const char *path, ModelConfig *out, ErrorMessage *err);

// The config as canonical JSON text in transformers' key names (keys in a fixed order, so the text
// can be compared and hashed). Returns a malloc'd string the caller frees, or NULL on out of memory.
char *config_to_json(const ModelConfig *config);

// 1 when every field is equal, else 0.
int config_equal(const ModelConfig *a, const ModelConfig *b);

#endif

#ifndef FUSECHECK_KV_DTYPE
#define FUSECHECK_KV_DTYPE
// Precision profile: how the KV cache stores K and V (the one activation storage point).
typedef enum { KV_F32 = 0, KV_BF16 = 1 } KvDtype;
// "f32" / "bf16" <-> KvDtype. kv_dtype_parse returns -1 on an unknown name.
int kv_dtype_parse(const char *name, KvDtype *out);
const char *kv_dtype_name(KvDtype dtype);
#endif
