#include "trace_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/progress.h"

int run_traced_steps(void *engine, ForwardFunction forward, int32_t *tokens, int prompt_length,
                     int n_decode_steps, int teacher_forced, TraceWriter *trace, int32_t *next_tokens,
                     ErrorMessage *err) {
    int status = -1;
    progress_begin("step", n_decode_steps + 1);
    for (int step = 0; step <= n_decode_steps; step++) {
        int first = step == 0 ? 0 : prompt_length + step - 1;
        int n_tokens = step == 0 ? prompt_length : 1;
        if (trace && trace_begin_step(trace, step, first, n_tokens, err)) goto done;
        int32_t next;
        if (forward(engine, tokens + first, n_tokens, first, trace, &next, err)) goto done;
        if (trace && trace_write_next_token(trace, next, err)) goto done;
        if (next_tokens) next_tokens[step] = next;
        if (!teacher_forced && step < n_decode_steps) tokens[prompt_length + step] = next;
        progress_update(step + 1);
    }
    if (trace && trace_write_tokens(trace, tokens, prompt_length + n_decode_steps, err)) goto done;
    status = 0;
done:
    progress_end();
    return status;
}

int write_traced_run(void *engine, ForwardFunction forward, const TraceMeta *meta, int32_t *tokens,
                     int prompt_length, int n_decode_steps, int teacher_forced, const char *path,
                     ErrorMessage *err) {
    TraceWriter *trace = trace_writer_open(path, meta, err);
    if (!trace) return -1;
    if (run_traced_steps(engine, forward, tokens, prompt_length, n_decode_steps, teacher_forced, trace, NULL, err)) {
        trace_writer_abort(trace);
        return -1;
    }
    return trace_writer_close(trace, err);
}

int trace_meta_for_checkpoint(TraceMeta *meta, const Checkpoint *checkpoint, const char *producer,
                              KvDtype kv_dtype, int prompt_length, ErrorMessage *err) {
    memset(meta, 0, sizeof *meta);
    snprintf(meta->producer, sizeof meta->producer, "%s", producer);
    snprintf(meta->kv_dtype, sizeof meta->kv_dtype, "%s", kv_dtype_name(kv_dtype));
    // Both engines compute with the checkpoint's weights as bf16 holds them.
    snprintf(meta->weights_dtype, sizeof meta->weights_dtype, "bf16");
    snprintf(meta->weights_fingerprint, sizeof meta->weights_fingerprint, "%s", checkpoint->fingerprint);
    snprintf(meta->tool_version, sizeof meta->tool_version, "fusecheck %s", FUSECHECK_VERSION);
    meta->prompt_length = prompt_length;
    meta->model_config = config_to_json(&checkpoint->config);
    if (!meta->model_config) return fail(err, "out of memory writing the model config");
    return 0;
}

void random_prompt(int32_t *tokens, int n, int vocab, uint64_t seed) {
    uint64_t state = seed;
    for (int i = 0; i < n; i++) {
        state += 0x9E3779B97F4A7C15ull;
        uint64_t z = state;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        tokens[i] = (int32_t)(z % (uint64_t)vocab);
    }
}
