#include "trace_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/progress.h"

static int write_to_trace(void *context, int layer, const char *name, const float *data, int rows, int cols,
                          ErrorMessage *err) {
    return trace_write_tensor(context, layer, name, data, rows, cols, err);
}

EngineTap trace_tap(TraceWriter *trace) {
    EngineTap tap = {trace, write_to_trace};
    return tap;
}

int engine_force_kv_from_trace(Engine *engine, const TraceReader *golden, int step, ErrorMessage *err) {
    int first_position, n_tokens;
    if (trace_step_info(golden, step, &first_position, &n_tokens, err)) return -1;
    int n_layers = trace_n_layers(golden, step);
    for (int layer = 0; layer < n_layers; layer++) {
        float *k = NULL, *v = NULL;
        int k_rows, k_cols, v_rows, v_cols;
        int rc = trace_read_tensor(golden, step, layer, "k", &k, &k_rows, &k_cols, err) ||
                 trace_read_tensor(golden, step, layer, "v", &v, &v_rows, &v_cols, err);
        if (!rc && (k_rows != n_tokens || v_rows != n_tokens || k_cols != v_cols))
            rc = fail(err, "%s: step %d layer %d holds k [%d, %d] and v [%d, %d] for a step of %d tokens",
                      trace_path(golden), step, layer, k_rows, k_cols, v_rows, v_cols, n_tokens);
        if (!rc) rc = engine_force_kv(engine, layer, k, v, n_tokens, err);
        free(k);
        free(v);
        if (rc) return -1;
    }
    return 0;
}

int run_traced_steps(Engine *engine, int32_t *tokens, int prompt_length, int n_decode_steps, int teacher_forced,
                     const TraceReader *force_from, TraceWriter *trace, int32_t *next_tokens, ErrorMessage *err) {
    int status = -1;
    EngineTap tap = trace_tap(trace);
    progress_begin("step", n_decode_steps + 1);
    for (int step = 0; step <= n_decode_steps; step++) {
        int first = step == 0 ? 0 : prompt_length + step - 1;
        int n_tokens = step == 0 ? prompt_length : 1;
        if (trace && trace_begin_step(trace, step, first, n_tokens, err)) goto done;
        if (force_from && engine_force_kv_from_trace(engine, force_from, step, err)) goto done;
        int32_t next;
        if (engine_forward(engine, tokens + first, n_tokens, first, trace ? &tap : NULL, &next, err)) goto done;
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

int write_traced_run(Engine *engine, const TraceMeta *meta, int32_t *tokens, int prompt_length, int n_decode_steps,
                     int teacher_forced, const TraceReader *force_from, const char *path, ErrorMessage *err) {
    TraceWriter *trace = trace_writer_open(path, meta, err);
    if (!trace) return -1;
    if (run_traced_steps(engine, tokens, prompt_length, n_decode_steps, teacher_forced, force_from, trace, NULL, err)) {
        trace_writer_abort(trace);
        return -1;
    }
    return trace_writer_close(trace, err);
}

int engine_write_trace(Engine *engine, const Checkpoint *checkpoint, const TraceReader *golden, int force,
                       const char *out_path, int *forced, ErrorMessage *err) {
    const TraceMeta *golden_meta = trace_meta(golden);
    if (strcmp(golden_meta->weights_fingerprint, checkpoint->fingerprint))
        return fail(err, "%s: made from weights %s, but %s has weights %s", trace_path(golden),
                    golden_meta->weights_fingerprint, checkpoint->dir, checkpoint->fingerprint);
    int n_tokens, prompt_length = golden_meta->prompt_length, n_decode = trace_n_steps(golden) - 1;
    const int32_t *golden_tokens = trace_tokens(golden, &n_tokens);
    if (prompt_length + n_decode > n_tokens)
        return fail(err, "%s: %d steps after a prompt of %d need %d tokens, the file has %d", trace_path(golden),
                    n_decode + 1, prompt_length, prompt_length + n_decode, n_tokens);
    int32_t *tokens = malloc((size_t)(prompt_length + n_decode) * sizeof *tokens);
    if (!tokens) return fail(err, "out of memory for %d tokens", prompt_length + n_decode);
    memcpy(tokens, golden_tokens, (size_t)(prompt_length + n_decode) * sizeof *tokens);
    int use_forcing = force && engine_can(engine, ENGINE_CAN_FORCE_KV) && engine->profile.kv_dtype == KV_BF16 &&
                      !strcmp(golden_meta->kv_dtype, "bf16");
    int status = -1;
    TraceMeta meta = {0};
    if (trace_meta_for_checkpoint(&meta, checkpoint, engine_name(engine), engine->profile.kv_dtype, prompt_length,
                                  err))
        goto done;
    meta.kv_forced = use_forcing;
    // Declared omissions (meta.omitted, golden/FORMAT.md): what the engine's kind declares. The built-in
    // engines write every tensor of the format in every step (write_layer_trace in gpu_engine.c,
    // layer_forward in reference.c) and declare nothing; an engine plugin declares what it never taps.
    char why[256];
    if (trace_meta_set_omitted(&meta, engine->kind->omitted, why, sizeof why)) {
        fail(err, "engine %s declares omitted: %s", engine_name(engine), why);
        goto done;
    }
    if (write_traced_run(engine, &meta, tokens, prompt_length, n_decode, 1, use_forcing ? golden : NULL, out_path, err))
        goto done;
    if (forced) *forced = use_forcing;
    status = 0;
done:
    free(meta.model_config);
    free(tokens);
    return status;
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
