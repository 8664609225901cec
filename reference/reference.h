// The fp32 OpenBLAS reference engine: the forward pass of docs/DESIGN.md, written to read like the math.
#ifndef FUSECHECK_REFERENCE_H
#define FUSECHECK_REFERENCE_H

#include <stdint.h>

#include "../golden/trace.h"
#include "../model/checkpoint.h"
#include "../model/config.h"
#include "../model/engine.h"

typedef struct Reference Reference;

// Prepares a reference engine over `checkpoint` (which must outlive it) with a KV cache of
// `max_context` positions. Weights are expanded from the checkpoint's bf16 exactly; when their fp32
// copy would exceed `max_weight_bytes` (0: 8 GiB) layers are expanded one at a time per forward call
// instead, so an 8B model runs in a 24 GB machine. kv_dtype KV_BF16 rounds K and V to bf16 when they
// enter the cache, emulating the fused engine's storage point.
Reference *reference_create(const Checkpoint *checkpoint, KvDtype kv_dtype, int max_context,
                            size_t max_weight_bytes, ErrorMessage *err);
void reference_destroy(Reference *reference);

// EngineKind.forward's contract (model/engine.h): n_tokens tokens at positions [position,
// position+n_tokens), greedy argmax of the last row into *next_token, every traced tensor to `tap`
// when it is not NULL. Fails on a token id out of range or a context past max_context.
int reference_forward(Reference *reference, const int32_t *tokens, int n_tokens, int position,
                      const EngineTap *tap, int32_t *next_token, ErrorMessage *err);

// The reference as an engine (reference_engine.c): "reference", KV f32 or bf16, no KV forcing (it is
// the source of forced values). Its state is a Reference (engine_wrap a Reference* to borrow one).
extern const EngineKind reference_engine_kind;

// The last forward's logits for its last row ([vocab] fp32), owned by the reference and valid until
// the next forward.
const float *reference_logits(const Reference *reference);

// One layer's KV cache, read-only, for tests that check what the cache holds: *k and *v point at
// [max_context][n_kv_heads * head_dim] floats, position p's row at p * n_kv_heads * head_dim. A row
// that a forward has written holds K (after the q/k norm and RoPE) and V exactly as attention reads
// them: rounded to bf16 (round to nearest even) with KV_BF16, the fp32 values with KV_F32. Other rows
// are unspecified. Valid until the next forward or reference_destroy. Fails on a layer out of range.
int reference_kv_cache(const Reference *reference, int layer, const float **k, const float **v, ErrorMessage *err);

// Writes a golden trace at `path`: the reference greedy-decodes n_decode steps after the prompt
// (prompt_length tokens) with the given KV precision, recording every tensor. The consumed tokens
// (prompt, then continuation) are stored in the file and, when tokens_out is not NULL, copied there
// (prompt_length + n_decode entries). The file appears only on success.
int reference_write_golden(const Checkpoint *checkpoint, KvDtype kv_dtype, const int32_t *prompt, int prompt_length,
                           int n_decode, const char *path, int32_t *tokens_out, ErrorMessage *err);

#endif
