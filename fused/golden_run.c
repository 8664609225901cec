#include "golden_run.h"

#include <stdlib.h>
#include <string.h>

#include "../golden/trace_run.h"

int gpu_engine_force_kv_from_trace(GpuEngine *engine, const TraceReader *golden, int step, ErrorMessage *err) {
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
        if (!rc) rc = gpu_engine_force_kv(engine, layer, k, v, n_tokens, err);
        free(k);
        free(v);
        if (rc) return -1;
    }
    return 0;
}

int gpu_forward_forced(void *context, const int32_t *tokens, int n_tokens, int position, TraceWriter *trace,
                       int32_t *next_token, ErrorMessage *err) {
    GpuForcedRun *run = context;
    if (run->golden) {
        int prompt_length = trace_meta(run->golden)->prompt_length;
        int step = position == 0 ? 0 : position - prompt_length + 1;
        if (gpu_engine_force_kv_from_trace(run->engine, run->golden, step, err)) return -1;
    }
    return gpu_engine_forward(run->engine, tokens, n_tokens, position, trace, next_token, err);
}

int gpu_write_trace(GpuEngine *engine, const Checkpoint *checkpoint, GpuEngineKind kind, KvDtype kv_dtype,
                    const TraceReader *golden, int force, const char *out_path, int *forced, ErrorMessage *err) {
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
    int use_forcing = force && kv_dtype == KV_BF16 && !strcmp(golden_meta->kv_dtype, "bf16");
    int status = -1;
    TraceWriter *trace = NULL;
    TraceMeta meta = {0};
    if (trace_meta_for_checkpoint(&meta, checkpoint, gpu_engine_kind_name(kind), kv_dtype, prompt_length, err))
        goto done;
    meta.kv_forced = use_forcing;
    // Declared omissions (meta.omitted, golden/FORMAT.md): none. Both engines write every tensor of the
    // format in every step, prefill and decode (write_layer_trace in gpu_engine.c); an engine that stops
    // writing one must declare it here, or compare fails it as missing evidence.
    meta.n_omitted = 0;
    if (!(trace = trace_writer_open(out_path, &meta, err))) goto done;
    GpuForcedRun run = {engine, use_forcing ? golden : NULL};
    if (run_traced_steps(&run, gpu_forward_forced, tokens, prompt_length, n_decode, 1, trace, NULL, err)) goto done;
    TraceWriter *closing = trace;
    trace = NULL;
    if (trace_writer_close(closing, err)) goto done;
    if (forced) *forced = use_forcing;
    status = 0;
done:
    if (trace) trace_writer_abort(trace);
    free(meta.model_config);
    free(tokens);
    return status;
}
