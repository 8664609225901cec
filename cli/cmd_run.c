// fusecheck run: any engine teacher-forced on a golden trace's tokens, writing its own trace.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../golden/trace_run.h"
#include "../model/checkpoint.h"
#include "../model/engine.h"
#include "../model/progress.h"
#include "commands.h"
#include "engine_registry.h"
#include "plugin_engine.h"
#include "interrupt.h"
#include "options.h"
#include "output_path.h"

static const char USAGE[] =
    "usage: fusecheck run --engine ENGINE --model DIR --golden G.h5\n"
    "                     --out F.h5 [--kv-dtype bf16|f32] [--no-force-kv] [--quiet]\n"
    "  Runs an engine on the golden trace's tokens (teacher-forced: step 0 is the prefill of the\n"
    "  prompt, step s >= 1 consumes tokens[prompt_length + s - 1]) and writes the tensors its kernels\n"
    "  produce in the golden format (producer = engine name). The golden must be of the same weights.\n"
    "  --engine reference reruns the reference itself: a self-check of the pipeline.\n"
    "  --engine plugin:PATH.so loads an engine from a shared library (docs/ENGINE_ABI.md), passing it the\n"
    "  KEY=VALUE options; a bad plugin (missing symbol, ABI version, a crash, a tensor of the wrong shape) is\n"
    "  one line and exit 2, and leaves no trace.\n"
    "  default --kv-dtype bf16 (the fused engine's storage point; f32 keeps the cache in fp32)\n"
    "  When both the golden and the engine keep a bf16 KV cache (the matched profile), the cache is\n"
    "  storage-forced from the golden's K and V, as tokens are teacher-forced: an fp32 ulp of difference\n"
    "  that straddles a bf16 rounding boundary would otherwise flip a cached value by 2^-8 and fork the\n"
    "  runs. The engine's own k and v are still traced and compared. --no-force-kv runs it unforced.\n"
    "  (fused and cublas can be forced; the reference cannot and need not: it is the golden's source.)\n"
    "  --quiet: no progress on stderr. Ctrl-C or SIGTERM removes the partial file and exits 130 or 143.\n";

int cmd_run(int argc, char **argv) {
    const char *engine_name = NULL, *model_dir = NULL, *golden_path = NULL, *out_path = NULL, *value;
    KvDtype kv_dtype = KV_BF16;
    int allow_forcing = 1;
    ErrorMessage err = {{0}};
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (!strcmp(flag, "--help") || !strcmp(flag, "-h")) {
            fputs(USAGE, stdout);
            engine_usage_line(stdout);
            return 0;
        }
        if (!strcmp(flag, "--no-force-kv")) { allow_forcing = 0; continue; }
        if (!strcmp(flag, "--quiet")) { progress_set_quiet(1); continue; }
        if (option_value(argc, argv, &i, &value, &err)) goto usage_error;
        if (!strcmp(flag, "--engine")) engine_name = value;
        else if (!strcmp(flag, "--model")) model_dir = value;
        else if (!strcmp(flag, "--golden")) golden_path = value;
        else if (!strcmp(flag, "--out")) out_path = value;
        else if (!strcmp(flag, "--kv-dtype")) {
            if (kv_dtype_parse(value, &kv_dtype)) { fail(&err, "--kv-dtype: '%s' is not f32 or bf16", value); goto usage_error; }
        } else { fail(&err, "unknown flag '%s'", flag); goto usage_error; }
    }
    if (!engine_name || !model_dir || !golden_path || !out_path) {
        fail(&err, "--engine, --model, --golden and --out are required");
        goto usage_error;
    }
    interrupt_set_command("run");  // a plugin that crashes while loading is reported as run's
    const EngineKind *kind = engine_find(engine_name, &err);
    if (!kind) {
        char known[256];
        // A plugin's own line says what is wrong with it (missing symbol, ABI version, ...).
        if (!plugin_spec_is(engine_name))
            fail(&err, "--engine: '%s' is not one of %s", engine_name, engine_names(known, sizeof known, ", "));
        goto usage_error;
    }
    // Before any work: a bad --out would otherwise be found only when the finished trace is renamed.
    if (output_file_check("--out", out_path, &err)) goto usage_error;
    if (kind->available && kind->available(&err)) {
        fprintf(stderr, "fusecheck run: %s\n", err.text);
        return 4;
    }
    progress_set_command("run");
    if (interrupt_cleanup_on_signal("run", out_path, &err)) goto usage_error;

    Checkpoint checkpoint = {0};
    if (checkpoint_open(model_dir, &checkpoint, &err)) {
        fprintf(stderr, "fusecheck run: %s\n", err.text);
        return 2;
    }
    int status = 2;
    Engine *engine = NULL;
    TraceReader *golden = trace_open(golden_path, &err);
    if (!golden) goto done;
    int context = trace_meta(golden)->prompt_length + trace_n_steps(golden) - 1;
    if (context > checkpoint.config.max_position_embeddings) {
        fail(&err, "%s: %d tokens exceed max_position_embeddings %d of %s", golden_path, context,
             checkpoint.config.max_position_embeddings, model_dir);
        goto done;
    }
    double start = seconds_now();
    if (!(engine = engine_create(kind, &checkpoint, (EngineProfile){kv_dtype}, context, &err))) goto done;
    double loaded = seconds_now();
    int forced = 0;
    if (engine_write_trace(engine, &checkpoint, golden, allow_forcing, out_path, &forced, &err)) goto done;
    int n_decode = trace_n_steps(golden) - 1;
    char launches[64] = "";
    if (engine->kind->launches_per_token)
        snprintf(launches, sizeof launches, "%d kernel launches per decode token, ", engine_launches_per_token(engine));
    printf("wrote %s: engine %s, %d prompt tokens + %d decode step%s, kv %s%s, weights %s, %sload %.2f s, traced run "
           "%.2f s\n",
           out_path, engine->kind->name, trace_meta(golden)->prompt_length, n_decode, n_decode == 1 ? "" : "s",
           kv_dtype_name(kv_dtype), forced ? " (storage-forced from the golden)" : "", checkpoint.fingerprint, launches,
           loaded - start, seconds_now() - loaded);
    status = 0;
done:
    if (status) fprintf(stderr, "fusecheck run: %s\n", err.text);
    engine_destroy(engine);
    trace_close(golden);
    checkpoint_close(&checkpoint);
    return status;
usage_error:
    fprintf(stderr, "fusecheck run: %s\n", err.text);
    return 2;
}
