// Driving an engine through a traced run: step 0 is the prefill of the prompt, then one token per
// step. Shared by `golden` (the reference choosing its own greedy tokens), `run` (a GPU engine
// teacher-forced on a golden trace's tokens) and the tests, so all number steps and tokens the same way.
#ifndef FUSECHECK_TRACE_RUN_H
#define FUSECHECK_TRACE_RUN_H

#include <stdint.h>

#include "trace.h"
#include "../model/checkpoint.h"
#include "../model/config.h"

// reference_forward and gpu_engine_forward share this signature.
typedef int (*ForwardFunction)(void *engine, const int32_t *tokens, int n_tokens, int position,
                               TraceWriter *trace, int32_t *next_token, ErrorMessage *err);

// Runs step 0 on tokens[0, prompt_length), then steps 1..n_decode_steps, step s consuming
// tokens[prompt_length + s - 1]. tokens holds prompt_length + n_decode_steps entries. When
// teacher_forced is 0 the continuation is greedy: tokens[prompt_length + s] is written with step s's
// next token; otherwise the given tokens are consumed as they are. With a trace, each step opens
// /step_NNNN and records next_token. next_tokens (may be NULL) receives every step's argmax
// (n_decode_steps + 1 entries). Reports progress (model/progress.h) step by step.
int run_traced_steps(void *engine, ForwardFunction forward, int32_t *tokens, int prompt_length,
                     int n_decode_steps, int teacher_forced, TraceWriter *trace, int32_t *next_tokens,
                     ErrorMessage *err);

// The steps of run_traced_steps recorded into a new trace at `path` with `meta` (the file appears only
// on success, as trace_writer_open/close promise; a failed run leaves nothing behind).
int write_traced_run(void *engine, ForwardFunction forward, const TraceMeta *meta, int32_t *tokens,
                     int prompt_length, int n_decode_steps, int teacher_forced, const char *path,
                     ErrorMessage *err);

// `n` prompt tokens in [0, vocab) from a portable seeded generator (SplitMix64): the same seed gives
// the same prompt on every machine.
void random_prompt(int32_t *tokens, int n, int vocab, uint64_t seed);

// Fills a trace's metadata for a run of `checkpoint` (producer "reference", "fused", ...).
// meta->model_config is malloc'd; free it after the writer is opened.
int trace_meta_for_checkpoint(TraceMeta *meta, const Checkpoint *checkpoint, const char *producer,
                              KvDtype kv_dtype, int prompt_length, ErrorMessage *err);

#endif
