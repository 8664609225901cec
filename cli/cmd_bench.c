// fusecheck bench: decode throughput of any registered engine at several context lengths
// (cli/engine_bench.h says what one measurement is), a llama-bench style markdown table, JSON, and a
// recorded history.
#define _DEFAULT_SOURCE  // mkdtemp
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../fused/gpu_bench.h"
#include "../model/checkpoint.h"
#include "../model/synth.h"
#include "bench_history.h"
#include "bench_report.h"
#include "engine_bench.h"
#include "engine_registry.h"
#include "../model/progress.h"
#include "commands.h"
#include "interrupt.h"
#include "options.h"
#include "plugin_engine.h"
#include "run_identity.h"

#define MAX_CONTEXTS 16
#define MAX_ENGINES 8

static const char USAGE[] =
    "usage: fusecheck bench --model DIR|--preset NAME [--engine NAME[,NAME...]|all] [--context 128,1024,4096,16384]\n"
    "                       [--tokens N] [--repeat R] [--json FILE] [--record] [--reports DIR] [--quiet]\n"
    "       fusecheck bench --render [--reports DIR]\n"
    "  Decode tok/s of each engine at each context: N decode steps at the context, back to back, R times\n"
    "  after a warm-up (median, min, max). --engine takes any registered engine (reference, fused, cublas,\n"
    "  dataflow) or engine plugin (plugin:PATH.so[:KEY=VALUE,...], docs/ENGINE_ABI.md), or a comma-separated\n"
    "  list of them; `all` (the default) is every registered engine that needs a GPU (fused, cublas, dataflow).\n"
    "  GPU engines (fused, cublas, dataflow): KV cache filled with synthetic values, steps timed with CUDA\n"
    "  events (graph replays); bytes per token, achieved bandwidth as a fraction of the device-to-device copy\n"
    "  bandwidth measured in the same run, launches per token, a per-kernel breakdown of the fused engine,\n"
    "  and each engine's speedup over cublas. Engines without benchmark hooks (the reference, CPU engines):\n"
    "  the cache filled by a real prefill of synthetic tokens, steps through the engine's forward timed by\n"
    "  the wall clock; tok/s and ms/token, bytes and bandwidth n/a, no GPU call when no engine needs a GPU.\n"
    "  --preset synthesizes the named shape (seed 0) into a temporary directory.\n"
    "  --record appends one JSON line per (engine, context) to DIR/benchmarks.jsonl (default DIR: reports)\n"
    "  and rewrites DIR/BENCHMARKS.md and DIR/throughput_history.svg from that history. The commit is the one this\n"
    "  binary was built from (fusecheck --version), or $FUSECHECK_COMMIT; a build with uncommitted changes is refused.\n"
    "  A CPU engine's rows name the CPU model where a GPU engine's name the GPU.\n"
    "  --render only re-renders DIR/BENCHMARKS.md and the chart from DIR/benchmarks.jsonl (no GPU needed).\n"
    "  defaults: --engine all --context 128,1024,4096,16384 --tokens 64 --repeat 5\n"
    "  exit: 0 ok, 2 bad input (an unknown engine, ...), 4 a GPU engine was asked for and no CUDA device is usable\n";

// Appends one row per result to dir/benchmarks.jsonl and re-renders dir/BENCHMARKS.md and
// dir/throughput_history.svg. Rows carry run_commit(): cmd_bench refuses --record before any work
// when run_record_refusal does. A row's machine is the GPU for a GPU engine, the CPU for the others.
static int record_results(const char *dir, const BenchResult *results, int n, const char *model, const char *gpu,
                          const char *cpu, ErrorMessage *err) {
    char path[1024], commit[64], date[32];
    snprintf(path, sizeof path, "%s/benchmarks.jsonl", dir);
    run_commit(commit, sizeof commit);
    run_timestamp(date, sizeof date);
    HistoryRow *rows = calloc((size_t)n, sizeof *rows);
    if (!rows) return fail(err, "out of memory");
    for (int i = 0; i < n; i++) {
        HistoryRow *r = &rows[i];
        r->kind = HISTORY_THROUGHPUT;
        snprintf(r->date, sizeof r->date, "%s", date);
        snprintf(r->commit, sizeof r->commit, "%s", commit);
        snprintf(r->gpu, sizeof r->gpu, "%s", results[i].on_gpu ? gpu : cpu);
        snprintf(r->model, sizeof r->model, "%s", model);
        snprintf(r->engine, sizeof r->engine, "%s", results[i].engine);
        r->context = results[i].context;
        r->tok_s = results[i].tok_s_median;
        r->ms_per_token = results[i].ms_per_token_median;
        r->bandwidth_fraction = results[i].bandwidth_fraction;
    }
    int rc = history_append(path, rows, n, err);
    free(rows);
    return rc ? -1 : history_render(path, err);
}

// The engines `--engine` names: `all` (every registered engine that needs a GPU), or a comma-separated
// list, each name looked up as given by engine_find (a registered name or a plugin spec). A plugin
// spec's own options are comma-separated KEY=VALUE pairs: a piece with '=' continues the plugin spec
// before it ("plugin:./x.so:threads=4,block=64,reference" is two engines).
static int select_engines(const char *text, const EngineKind **kinds, int *n_kinds, ErrorMessage *err) {
    *n_kinds = 0;
    if (!strcmp(text, "all")) {
        size_t n;
        const EngineKind *const *list = engine_list(&n);
        for (size_t i = 0; i < n && *n_kinds < MAX_ENGINES; i++)
            if (list[i]->capabilities & ENGINE_NEEDS_GPU) kinds[(*n_kinds)++] = list[i];
        return *n_kinds ? 0 : fail(err, "--engine all: no registered engine needs a GPU; name the engines");
    }
    char names[1024];
    if (snprintf(names, sizeof names, "%s", text) >= (int)sizeof names) return fail(err, "--engine: the list is too long");
    for (char *name = names, *next; name; name = next) {
        next = name;
        do {  // the end of this engine's name: the next comma that does not start a plugin option
            next = strchr(next, ',');
            if (next) next++;
        } while (next && plugin_spec_is(name) && !plugin_spec_is(next) && strcspn(next, ",") > strcspn(next, "="));
        if (next) next[-1] = '\0';
        if (!*name) return fail(err, "--engine: '%s': an empty engine name", text);
        if (*n_kinds == MAX_ENGINES) return fail(err, "--engine: at most %d engines", MAX_ENGINES);
        ErrorMessage why;
        const EngineKind *kind = engine_find(name, &why);
        if (!kind) {
            // A plugin's own line says what is wrong with it (missing symbol, ABI version, ...).
            char known[256];
            if (plugin_spec_is(name)) return fail(err, "%s", why.text);
            return fail(err, "--engine: '%s' is not one of %s or plugin:PATH.so", name,
                        engine_names(known, sizeof known, ", "));
        }
        for (int k = 0; k < *n_kinds; k++)
            if (kinds[k] == kind) return fail(err, "--engine: '%s' is named twice", name);
        kinds[(*n_kinds)++] = kind;
    }
    return 0;
}

int cmd_bench(int argc, char **argv) {
    progress_set_command("bench");
    const char *model_dir = NULL, *preset = NULL, *engine_name = "all", *json_path = NULL, *reports_dir = "reports",
               *value;
    int contexts[MAX_CONTEXTS] = {128, 1024, 4096, 16384}, n_contexts = 4, record = 0, render_only = 0;
    long tokens = 64, repeat = 5;
    ErrorMessage err = {{0}};
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (!strcmp(flag, "--help") || !strcmp(flag, "-h")) { fputs(USAGE, stdout); return 0; }
        if (!strcmp(flag, "--record")) { record = 1; continue; }
        if (!strcmp(flag, "--quiet")) { progress_set_quiet(1); continue; }
        if (!strcmp(flag, "--render")) { render_only = 1; continue; }
        if (option_value(argc, argv, &i, &value, &err)) goto usage_error;
        if (!strcmp(flag, "--model")) model_dir = value;
        else if (!strcmp(flag, "--preset")) preset = value;
        else if (!strcmp(flag, "--engine")) engine_name = value;
        else if (!strcmp(flag, "--json")) json_path = value;
        else if (!strcmp(flag, "--reports")) reports_dir = value;
        else if (!strcmp(flag, "--context")) {
            int32_t *list;
            int n;
            if (parse_token_list(flag, value, &list, &n, &err)) goto usage_error;
            if (n > MAX_CONTEXTS) { free(list); fail(&err, "--context: at most %d contexts", MAX_CONTEXTS); goto usage_error; }
            for (int c = 0; c < n; c++) contexts[c] = list[c];
            n_contexts = n;
            free(list);
            for (int c = 0; c < n; c++)
                if (contexts[c] < 1) { fail(&err, "--context: contexts must be at least 1"); goto usage_error; }
        }
        else if (!strcmp(flag, "--tokens")) { if (parse_int_option(flag, value, 1, 100000, &tokens, &err)) goto usage_error; }
        else if (!strcmp(flag, "--repeat")) { if (parse_int_option(flag, value, 1, 1000, &repeat, &err)) goto usage_error; }
        else { fail(&err, "unknown flag '%s'", flag); goto usage_error; }
    }
    if (render_only) {
        // No GPU needed: the history's tables and chart, e.g. after a rebase that merged rows.
        char history_path[1024];
        snprintf(history_path, sizeof history_path, "%s/benchmarks.jsonl", reports_dir);
        if (history_render(history_path, &err)) { fprintf(stderr, "fusecheck bench: %s\n", err.text); return 2; }
        printf("bench: rendered %s/BENCHMARKS.md and %s/throughput_history.svg\n", reports_dir, reports_dir);
        return 0;
    }
    if (!model_dir == !preset) { fail(&err, "give exactly one of --model DIR and --preset NAME"); goto usage_error; }
    char refusal[512];
    if (record && run_record_refusal(refusal, sizeof refusal)) {  // before minutes of work, not after
        fprintf(stderr, "fusecheck bench: --record: %s\n", refusal);
        return 2;
    }
    const EngineKind *kinds[MAX_ENGINES];
    int n_kinds = 0, all = !strcmp(engine_name, "all");
    interrupt_set_command("bench");  // names the command if an engine plugin crashes
    if (select_engines(engine_name, kinds, &n_kinds, &err)) goto usage_error;
    // A GPU engine without a usable device: say so before any work (exit 4, as `run` and `generate` do).
    int needs_gpu = 0, needs_cpu = 0;
    for (int k = 0; k < n_kinds; k++) {
        int gpu_kind = (kinds[k]->capabilities & ENGINE_NEEDS_GPU) != 0;
        needs_gpu |= gpu_kind;
        needs_cpu |= !gpu_kind;
        if (kinds[k]->available && kinds[k]->available(&err)) {
            if (!gpu_kind) { fprintf(stderr, "fusecheck bench: engine %s: %s\n", kinds[k]->name, err.text); return 2; }
            if (all) {
                char names[256] = "";
                for (int j = 0; j < n_kinds; j++)
                    snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", j ? ", " : "", kinds[j]->name);
                fprintf(stderr, "fusecheck bench: --engine all (%s) needs a GPU: %s; a CPU engine runs without one "
                                "(--engine reference)\n", names, err.text);
            } else {
                fprintf(stderr, "fusecheck bench: engine %s needs a GPU: %s\n", kinds[k]->name, err.text);
            }
            return 4;
        }
    }
    char gpu[256] = "", cpu[256];
    bench_cpu_name(cpu, sizeof cpu);
    if (needs_gpu && bench_gpu_name(gpu, sizeof gpu, &err)) {
        fprintf(stderr, "fusecheck bench: %s\n", err.text);
        return 4;
    }
    int status = 2;
    char temp_dir[] = "/tmp/fusecheck-bench-XXXXXX";
    int made_temp = 0;
    // What synth_write puts in temp_dir: removed at the end, or by the interrupt and crash handlers.
    static const char *const model_files[] = {"model.safetensors", "config.json"};
    const int n_model_files = (int)(sizeof model_files / sizeof model_files[0]);
    Checkpoint ck = {0};
    BenchResult *results = NULL;
    char model_name[256];
    if (preset) {
        ModelConfig config;
        if (synth_preset(preset, &config, &err)) goto done;
        if (!mkdtemp(temp_dir)) { fail(&err, "%s: cannot create a temporary directory", temp_dir); goto done; }
        made_temp = 1;
        // An interrupt, or an engine plugin's crash, must not leave a model of up to 16 GB behind.
        if (interrupt_cleanup_directory("bench", temp_dir, model_files, n_model_files, &err)) goto done;
        fprintf(stderr, "fusecheck bench: synthesizing %s into %s\n", preset, temp_dir);
        if (synth_write(&config, 0, temp_dir, &err)) goto done;
        model_dir = temp_dir;
        snprintf(model_name, sizeof model_name, "%s", preset);
    } else {
        const char *base = strrchr(model_dir, '/');
        snprintf(model_name, sizeof model_name, "%s", base && base[1] ? base + 1 : model_dir);
    }
    if (checkpoint_open(model_dir, &ck, &err)) goto done;
    double copy_gb_s = 0;
    if (needs_gpu) {
        if (bench_copy_bandwidth(&copy_gb_s, &err)) goto done;
        fprintf(stderr, "fusecheck bench: %s, device-to-device copy %.0f GB/s\n", gpu, copy_gb_s);
    }
    if (needs_cpu) fprintf(stderr, "fusecheck bench: CPU engines on %s (wall-clock timing)\n", cpu);
    if (!(results = calloc((size_t)n_kinds * n_contexts, sizeof *results))) { fail(&err, "out of memory"); goto done; }
    int n_results = 0;
    BenchOptions options = {contexts, n_contexts, (int)tokens, (int)repeat, copy_gb_s, 1, stderr};
    for (int k = 0; k < n_kinds; k++) {
        if (bench_engine(kinds[k], &ck, &options, results + n_results, &err)) goto done;
        n_results += n_contexts;
    }
    char commit[64], date[16];
    run_commit(commit, sizeof commit);
    run_date(date, sizeof date);
    BenchContext context = {needs_gpu ? gpu : NULL, cpu, model_name, ck.fingerprint, commit, date, copy_gb_s};
    bench_write_markdown(stdout, &context, results, n_results);
    if (json_path) {
        char *text = bench_json_text(&context, results, n_results);
        FILE *f = text ? fopen(json_path, "w") : NULL;
        int ok = f && fputs(text, f) >= 0;
        if (f && fclose(f) != 0) ok = 0;
        free(text);
        if (!ok) { fail(&err, "%s: cannot write the JSON results", json_path); goto done; }
    }
    if (record && record_results(reports_dir, results, n_results, model_name, gpu, cpu, &err)) goto done;
    status = 0;
done:
    if (status) fprintf(stderr, "fusecheck bench: %s\n", err.text);
    free(results);
    checkpoint_close(&ck);
    if (made_temp) {
        char path[512];
        for (int i = 0; i < n_model_files; i++) {
            snprintf(path, sizeof path, "%s/%s", temp_dir, model_files[i]);
            remove(path);
        }
        rmdir(temp_dir);
        interrupt_forget_directory();
    }
    return status;
usage_error:
    fprintf(stderr, "fusecheck bench: %s\n", err.text);
    return 2;
}
