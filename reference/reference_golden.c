// The golden trace: the reference's run through the engine interface, every tensor recorded.
#include <stdlib.h>
#include <string.h>

#include "../golden/trace_run.h"
#include "reference.h"

int reference_write_golden(const Checkpoint *checkpoint, KvDtype kv_dtype, const int32_t *prompt, int prompt_length,
                           int n_decode, const char *path, int32_t *tokens_out, ErrorMessage *err) {
    for (int i = 0; i < prompt_length; i++)
        if (prompt[i] < 0 || prompt[i] >= checkpoint->config.vocab_size)
            return fail(err, "prompt token id %d is outside the vocabulary [0, %d) of %s", prompt[i],
                        checkpoint->config.vocab_size, checkpoint->dir);
    int status = -1;
    TraceWriter *trace = NULL;
    TraceMeta meta = {0};
    int32_t *tokens = malloc((size_t)(prompt_length + n_decode) * sizeof *tokens);
    Engine *reference = engine_create(&reference_engine_kind, checkpoint, (EngineProfile){kv_dtype},
                                      prompt_length + n_decode, err);
    if (!tokens) fail(err, "out of memory for %d tokens", prompt_length + n_decode);
    if (!tokens || !reference) goto done;
    memcpy(tokens, prompt, (size_t)prompt_length * sizeof *tokens);
    if (trace_meta_for_checkpoint(&meta, checkpoint, "reference", kv_dtype, prompt_length, err)) goto done;
    if (!(trace = trace_writer_open(path, &meta, err))) goto done;
    if (run_traced_steps(reference, tokens, prompt_length, n_decode, 0, NULL, trace, NULL, err)) goto done;
    TraceWriter *closing = trace;
    trace = NULL;
    if (trace_writer_close(closing, err)) goto done;
    if (tokens_out) memcpy(tokens_out, tokens, (size_t)(prompt_length + n_decode) * sizeof *tokens);
    status = 0;
done:
    if (trace) trace_writer_abort(trace);
    free(meta.model_config);
    engine_destroy(reference);
    free(tokens);
    return status;
}
