#include "kv_forcing.h"

#include <stdlib.h>

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
