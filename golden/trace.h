// Golden traces: per-layer activations of a run, in HDF5, readable by h5dump and h5py with no
// project code. golden/FORMAT.md is the specification; this is its C API, shared by the reference,
// the fused engine and compare.
//
// Layout (see FORMAT.md):
//   /                 attrs format_version, producer, kv_dtype, weights_dtype, model_config (JSON),
//                     weights_fingerprint, tool_version, prompt_length, n_steps, omitted (version 2)
//   /tokens           int32 [T]    every token consumed: prompt, then the teacher-forced continuation
//   /step_NNNN/       attrs first_position, n_tokens   (step 0 = prefill, then one token per step)
//     embed           float32 [n_tokens, hidden]
//     layer_LL/<name> float32 [n_tokens, width]       names in TRACE_LAYER_TENSORS
//     final_norm      float32 [1, hidden]             last row only
//     logits          float32 [1, vocab]              last row only
//     next_token      int32   [1]                     argmax of logits
#ifndef FUSECHECK_TRACE_H
#define FUSECHECK_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "../model/error.h"

// The version the writer writes. Readers accept TRACE_OLDEST_FORMAT_VERSION..TRACE_FORMAT_VERSION:
// version 1 has no `omitted` attribute and reads as declaring nothing omitted.
#define TRACE_FORMAT_VERSION 2
#define TRACE_OLDEST_FORMAT_VERSION 1

// Per-layer tensor names in the order of the forward pass. q and k are after the per-head RMSNorm
// and RoPE (what attention consumes); k and v are fp32, before any bf16 cache rounding.
//   attn_norm [n, hidden]   q [n, n_heads*head_dim]   k, v [n, n_kv_heads*head_dim]
//   attn [n, n_heads*head_dim] (softmax(qk^T)v, before o_proj)   attn_out [n, hidden] (a*Wo)
//   resid_attn [n, hidden]   mlp_norm [n, hidden]   gate, up, act [n, intermediate]
//   mlp_out [n, hidden]   resid_mlp [n, hidden] (the layer's output)
#define TRACE_N_LAYER_TENSORS 13
extern const char *const TRACE_LAYER_TENSORS[TRACE_N_LAYER_TENSORS];

// Step-level tensor names, in forward order around the layers: embed, then final_norm, logits, next_token.
#define TRACE_N_STEP_TENSORS 4
extern const char *const TRACE_STEP_TENSORS[TRACE_N_STEP_TENSORS];

// The contract's checkpoints: the layer outputs, the K and V the cache holds, the embedding and the
// head's result. No trace may declare them omitted and `compare --allow-missing` may not excuse them:
// without them a comparison proves nothing.
#define TRACE_CHECKPOINT_NAMES "resid_mlp, k, v, logits, next_token, embed"

// 1 when `name` is one of TRACE_CHECKPOINT_NAMES.
int trace_is_checkpoint(const char *name);
// 0 when a producer may declare `name` omitted (and compare may allow it missing): a known tensor name
// (TRACE_LAYER_TENSORS or TRACE_STEP_TENSORS) that is not a checkpoint. Otherwise -1 with one phrase
// naming the rule in `why` (e.g. "'k' is a contract checkpoint (resid_mlp, k, v, logits, next_token,
// embed): it may never be omitted or allowed missing").
int trace_check_omittable(const char *name, char *why, size_t why_size);

// Room for every name trace_check_omittable accepts, each declared once.
#define TRACE_MAX_OMITTED (TRACE_N_LAYER_TENSORS + TRACE_N_STEP_TENSORS)
#define TRACE_OMITTED_NAME_SIZE 16

typedef struct {
    char producer[32];             // "reference", "fused", "cublas", "hf-oracle"
    char kv_dtype[8];              // precision profile: KV cache storage, "f32" or "bf16"
    char weights_dtype[8];         // weights as the producer computed with: "bf16" (or "f32", "f16")
    char weights_fingerprint[17];  // Checkpoint.fingerprint
    char tool_version[32];
    char *model_config;            // JSON text (config_to_json); owned by whoever filled it
    int prompt_length;             // tokens consumed by step 0
    int n_steps;                   // steps in the file, prefill included (set by the writer on close)
    int kv_forced;                 // 1: the KV cache was storage-forced from a golden's K and V (optional
                                   // attribute; absent reads as 0)
    // What the producer never materialises by design (version 2 attribute `omitted`): names that
    // trace_check_omittable accepts, each once, in the order declared. A declared name may still be
    // present in some steps; compare then compares it. Nothing declared: n_omitted 0 (a zeroed TraceMeta).
    int n_omitted;
    char omitted[TRACE_MAX_OMITTED][TRACE_OMITTED_NAME_SIZE];
    int format_version;            // as read from the file; ignored by the writer (it writes TRACE_FORMAT_VERSION)
} TraceMeta;

// Sets meta's omitted names from `list`, comma-separated ("gate,up,act"; spaces around names are
// ignored; "" or NULL declares nothing). Returns -1 with one phrase in `why` on a name
// trace_check_omittable refuses, an empty item or a name given twice; meta is then unchanged.
int trace_meta_set_omitted(TraceMeta *meta, const char *list, char *why, size_t why_size);
// 1 when meta declares `name` omitted.
int trace_meta_omits(const TraceMeta *meta, const char *name);

typedef struct TraceWriter TraceWriter;

// Creates `path`.tmp-<pid>; the file appears under `path` only when trace_writer_close succeeds.
// meta->n_steps is ignored (counted). Returns NULL and fills err on failure.
TraceWriter *trace_writer_open(const char *path, const TraceMeta *meta, ErrorMessage *err);
int trace_write_tokens(TraceWriter *writer, const int32_t *tokens, int n_tokens, ErrorMessage *err);
// Opens group /step_NNNN; later tensor writes go into it. Steps must be written in order from 0.
int trace_begin_step(TraceWriter *writer, int step, int first_position, int n_tokens, ErrorMessage *err);
// Writes float32 [rows, cols] row-major into the current step: layer >= 0 into layer_LL/, layer < 0
// into the step group itself (embed, final_norm, logits).
int trace_write_tensor(TraceWriter *writer, int layer, const char *name, const float *data, int rows,
                       int cols, ErrorMessage *err);
int trace_write_next_token(TraceWriter *writer, int32_t token, ErrorMessage *err);
// Writes the remaining attributes, closes, renames into place. Frees the writer either way.
int trace_writer_close(TraceWriter *writer, ErrorMessage *err);
// Closes and deletes the temporary file; the old file under `path`, if any, is untouched.
void trace_writer_abort(TraceWriter *writer);

typedef struct TraceReader TraceReader;

// Opens and validates the root attributes, /tokens and the tree: every step group, every layer group
// in it and every dataset in those must open. A file that is not HDF5, is truncated, lacks the
// format's attributes, declares a name it may not omit, or holds an object that cannot be opened (a
// corrupt object header) is refused with one line naming the file (and the object's HDF5 path), so
// an unreadable layer never reads as an absent one. HDF5's own error stack printing is silenced.
TraceReader *trace_open(const char *path, ErrorMessage *err);
void trace_close(TraceReader *reader);
const TraceMeta *trace_meta(const TraceReader *reader);
const char *trace_path(const TraceReader *reader);
// The tokens (owned by the reader) and their count.
const int32_t *trace_tokens(const TraceReader *reader, int *n_tokens);
int trace_n_steps(const TraceReader *reader);
int trace_step_info(const TraceReader *reader, int step, int *first_position, int *n_tokens, ErrorMessage *err);
// Number of layer_LL groups in a step (0 if none).
int trace_n_layers(const TraceReader *reader, int step);
// 1 if the tensor exists, 0 if not.
int trace_has_tensor(const TraceReader *reader, int step, int layer, const char *name);
// Reads a float32 2-D tensor into a malloc'd buffer (caller frees). Absent or wrong-typed data is an
// error naming the file and the dataset path.
int trace_read_tensor(const TraceReader *reader, int step, int layer, const char *name, float **data,
                      int *rows, int *cols, ErrorMessage *err);
int trace_read_next_token(const TraceReader *reader, int step, int32_t *token, ErrorMessage *err);
// Names of the datasets in a step (layer < 0) or in a layer group: malloc'd array of malloc'd
// strings, sorted; free with trace_free_names.
int trace_list_tensors(const TraceReader *reader, int step, int layer, char ***names, int *n_names,
                       ErrorMessage *err);
void trace_free_names(char **names, int n_names);

#endif
