// A Qwen3 checkpoint: config.json plus safetensors, every tensor the model needs found and its
// shape checked against the config. Shared by the reference and the fused engine.
#ifndef FUSECHECK_CHECKPOINT_H
#define FUSECHECK_CHECKPOINT_H

#include "config.h"
#include "safetensors.h"

typedef struct {
    const TensorInfo *input_layernorm;            // [hidden]
    const TensorInfo *q_proj;                     // [n_heads*head_dim, hidden]
    const TensorInfo *k_proj;                     // [n_kv_heads*head_dim, hidden]
    const TensorInfo *v_proj;                     // [n_kv_heads*head_dim, hidden]
    const TensorInfo *q_norm;                     // [head_dim]
    const TensorInfo *k_norm;                     // [head_dim]
    const TensorInfo *o_proj;                     // [hidden, n_heads*head_dim]
    const TensorInfo *post_attention_layernorm;   // [hidden]
    const TensorInfo *gate_proj;                  // [intermediate, hidden]
    const TensorInfo *up_proj;                    // [intermediate, hidden]
    const TensorInfo *down_proj;                  // [hidden, intermediate]
} LayerWeights;

typedef struct {
    char *dir;
    ModelConfig config;
    SafetensorsSet files;
    const TensorInfo *embed_tokens;   // [vocab, hidden]
    const TensorInfo *final_norm;     // "model.norm.weight" [hidden]
    const TensorInfo *lm_head;        // [vocab, hidden]; == embed_tokens when tie_word_embeddings
    LayerWeights *layers;             // num_hidden_layers entries
    char fingerprint[17];             // 16 hex digits: hash of config JSON, names, dtypes, shapes and bytes
} Checkpoint;

// Opens `dir`. Every failure is one line naming the file and the tensor or field; a tensor the
// model needs that is missing, or has the wrong rank or shape, is an error. A tied checkpoint may
// carry no lm_head.weight; an untied one must.
int checkpoint_open(const char *dir, Checkpoint *out, ErrorMessage *err);
void checkpoint_close(Checkpoint *checkpoint);  // safe on a zeroed checkpoint

// Total bytes of the weights as stored (what one decode token must read, lm_head counted once
// even when tied, as the fused engine reads it).
size_t checkpoint_weight_bytes(const Checkpoint *checkpoint);

#endif
