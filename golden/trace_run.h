// Driving any engine (model/engine.h) through a traced run: step 0 is the prefill of the prompt, then
// one token per step. Shared by `golden` (the reference choosing its own greedy tokens), `run` (any
// engine teacher-forced on a golden trace's tokens), `generate` and the tests, so all number steps
// and tokens the same way.
#ifndef FUSECHECK_TRACE_RUN_H
#define FUSECHECK_TRACE_RUN_H

#include <stdint.h>

#include "trace.h"
#include "../model/checkpoint.h"
#include "../model/config.h"
#include "../model/engine.h"

// The tap that records each tensor into `trace`'s current step (trace_write_tensor). The returned
// tap holds the writer pointer: valid while the writer is open.
EngineTap trace_tap(TraceWriter *trace);

// Arms `engine` (which must be ENGINE_CAN_FORCE_KV) with the golden's k and v of `step` for every
// layer the step holds (engine_force_kv). Fails, naming the file, when a layer lacks k or v or their
// rows differ from the step's token count.
int engine_force_kv_from_trace(Engine *engine, const TraceReader *golden, int step, ErrorMessage *err);

// Runs step 0 on tokens[0, prompt_length), then steps 1..n_decode_steps, step s consuming
// tokens[prompt_length + s - 1], each through engine_forward. tokens holds prompt_length +
// n_decode_steps entries. When teacher_forced is 0 the continuation is greedy: tokens[prompt_length +
// s] is written with step s's next token; otherwise the given tokens are consumed as they are. When
// force_from is not NULL (a golden of the same prompt length), each step's KV is storage-forced from
// it first (engine_force_kv_from_trace). With a trace, each step opens /step_NNNN, receives the
// engine's tensors through trace_tap and records next_token. next_tokens (may be NULL) receives every
// step's argmax (n_decode_steps + 1 entries). Reports progress (model/progress.h) step by step.
int run_traced_steps(Engine *engine, int32_t *tokens, int prompt_length, int n_decode_steps, int teacher_forced,
                     const TraceReader *force_from, TraceWriter *trace, int32_t *next_tokens, ErrorMessage *err);

// The steps of run_traced_steps recorded into a new trace at `path` with `meta` (the file appears only
// on success, as trace_writer_open/close promise; a failed run leaves nothing behind).
int write_traced_run(Engine *engine, const TraceMeta *meta, int32_t *tokens, int prompt_length, int n_decode_steps,
                     int teacher_forced, const TraceReader *force_from, const char *path, ErrorMessage *err);

// Runs `engine` (made from `checkpoint`, whose fingerprint must equal the golden's) teacher-forced on
// the golden's tokens and writes its trace at out_path (producer = the engine's name). The KV cache
// is storage-forced when `force` is 1, the engine can force, its cache is bf16 and so is the
// golden's; *forced (may be NULL) says whether it was. The file appears only on success. This is
// `fusecheck run` for any engine.
int engine_write_trace(Engine *engine, const Checkpoint *checkpoint, const TraceReader *golden, int force,
                       const char *out_path, int *forced, ErrorMessage *err);

// `n` prompt tokens in [0, vocab) from a portable seeded generator (SplitMix64): the same seed gives
// the same prompt on every machine.
void random_prompt(int32_t *tokens, int n, int vocab, uint64_t seed);

// Fills a trace's metadata for a run of `checkpoint` (producer "reference", "fused", ...).
// meta->model_config is malloc'd; free it after the writer is opened.
int trace_meta_for_checkpoint(TraceMeta *meta, const Checkpoint *checkpoint, const char *producer,
                              KvDtype kv_dtype, int prompt_length, ErrorMessage *err);

#endif
