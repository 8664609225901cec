// fusecheck bench: decode throughput of the GPU engines at several context lengths (gpu_bench.h says
// what one measurement is), a llama-bench style markdown table, JSON, and a recorded history.
#define _DEFAULT_SOURCE  // mkdtemp
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../fused/bench_report.h"
#include "../fused/gpu_bench.h"
#include "../model/checkpoint.h"
#include "../model/synth.h"
#include "commands.h"
#include "options.h"
#include "run_identity.h"

#define MAX_CONTEXTS 16

static const char USAGE[] =
    "usage: fusecheck bench --model DIR|--preset NAME [--engine fused|cublas|all] [--context 128,1024,4096,16384]\n"
    "                       [--tokens N] [--repeat R] [--json FILE] [--record] [--reports DIR]\n"
    "  Decode tok/s of each engine at each context (KV cache filled with synthetic values to the context),\n"
    "  from CUDA-event timing of N back-to-back decode steps, R times after a warm-up (median, min, max);\n"
    "  bytes per token, achieved bandwidth as a fraction of the device-to-device copy bandwidth measured\n"
    "  in the same run, launches per token, a per-kernel breakdown of the fused engine, fused/cublas speedup.\n"
    "  --preset synthesizes the named shape (seed 0) into a temporary directory.\n"
    "  --record appends one JSON line per (engine, context) to DIR/benchmarks.jsonl (default DIR: reports)\n"
    "  and rewrites DIR/BENCHMARKS.md from that history. The commit is $FUSECHECK_COMMIT, else git rev-parse HEAD.\n"
    "  defaults: --engine all --context 128,1024,4096,16384 --tokens 64 --repeat 5\n";

// One history row (reports/benchmarks.jsonl): what BENCHMARKS.md renders.
static cJSON *history_row(const BenchResult *r, const char *model, const char *gpu, const char *commit,
                          const char *date) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "date", date);
    cJSON_AddStringToObject(o, "commit", commit);
    cJSON_AddStringToObject(o, "gpu", gpu);
    cJSON_AddStringToObject(o, "model", model);
    cJSON_AddStringToObject(o, "engine", gpu_engine_kind_name(r->engine));
    cJSON_AddNumberToObject(o, "context", r->context);
    cJSON_AddNumberToObject(o, "tok_s", r->tok_s_median);
    cJSON_AddNumberToObject(o, "ms_per_token", r->ms_per_token_median);
    cJSON_AddNumberToObject(o, "bandwidth_fraction", r->bandwidth_fraction);
    return o;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2) {
            char *grown = realloc(buf, cap * 2);
            if (!grown) { free(buf); buf = NULL; break; }
            buf = grown;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) buf[len] = 0;
    return buf;
}

// Rewrites dir/BENCHMARKS.md from every line of dir/benchmarks.jsonl (newest first).
static int render_history(const char *dir, ErrorMessage *err) {
    char jsonl[1024], md[1024], tmp[1100];
    snprintf(jsonl, sizeof jsonl, "%s/benchmarks.jsonl", dir);
    snprintf(md, sizeof md, "%s/BENCHMARKS.md", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp-bench", md);
    char *text = read_text(jsonl);
    if (!text) return fail(err, "%s: cannot read the benchmark history", jsonl);
    FILE *out = fopen(tmp, "w");
    if (!out) { free(text); return fail(err, "%s: cannot open for writing", tmp); }
    fprintf(out, "# Decode throughput history\n\n"
                 "Rendered by `fusecheck bench --record` from `benchmarks.jsonl` (one line per engine and context,\n"
                 "each from a real run of the recorded commit; newest first). Batch 1, bf16 weights, bf16 KV cache\n"
                 "filled to the context, tok/s = median over repeats of CUDA-event-timed decode steps; the fraction\n"
                 "is achieved bytes/s (weights + KV of the context) over the device-to-device copy bandwidth\n"
                 "measured in the same run.\n\n"
                 "| date | commit | gpu | model | engine | context | tok/s | ms/token | of copy BW |\n"
                 "| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: |\n");
    // Lines in reverse order: newest first.
    int n_lines = 0;
    for (char *p = text; *p; p++) if (*p == '\n') n_lines++;
    char **lines = calloc((size_t)n_lines + 1, sizeof *lines);
    int count = 0;
    for (char *line = strtok(text, "\n"); line && lines; line = strtok(NULL, "\n")) lines[count++] = line;
    for (int i = count - 1; i >= 0; i--) {
        cJSON *o = cJSON_Parse(lines[i]);
        if (!o) continue;
        const cJSON *date = cJSON_GetObjectItem(o, "date"), *commit = cJSON_GetObjectItem(o, "commit"),
                    *gpu = cJSON_GetObjectItem(o, "gpu"), *model = cJSON_GetObjectItem(o, "model"),
                    *engine = cJSON_GetObjectItem(o, "engine"), *context = cJSON_GetObjectItem(o, "context"),
                    *tok_s = cJSON_GetObjectItem(o, "tok_s"), *ms = cJSON_GetObjectItem(o, "ms_per_token"),
                    *frac = cJSON_GetObjectItem(o, "bandwidth_fraction");
        if (cJSON_IsString(date) && cJSON_IsString(commit) && cJSON_IsString(gpu) && cJSON_IsString(model) &&
            cJSON_IsString(engine) && cJSON_IsNumber(context) && cJSON_IsNumber(tok_s) && cJSON_IsNumber(ms) &&
            cJSON_IsNumber(frac))
            fprintf(out, "| %s | %.12s | %s | %s | %s | %d | %.1f | %.4f | %.1f%% |\n", date->valuestring,
                    commit->valuestring, gpu->valuestring,
                    model->valuestring, engine->valuestring, context->valueint, tok_s->valuedouble, ms->valuedouble,
                    100.0 * frac->valuedouble);
        cJSON_Delete(o);
    }
    free(lines);
    free(text);
    if (fclose(out) != 0 || rename(tmp, md) != 0) return fail(err, "%s: cannot write", md);
    return 0;
}

// Appends one row per result to dir/benchmarks.jsonl and re-renders dir/BENCHMARKS.md. Refuses a
// tree with uncommitted changes to tracked files: every row must come from a run of its commit.
static int record_results(const char *dir, const BenchResult *results, int n, const char *model, const char *gpu,
                          ErrorMessage *err) {
    char path[1024], commit[128], date[32];
    snprintf(path, sizeof path, "%s/benchmarks.jsonl", dir);
    const char *given = getenv("FUSECHECK_COMMIT");
    if (!(given && *given)) {
        int dirty = run_tree_dirty();
        if (dirty != 0)
            return fail(err, "--record: %s; rows must come from a run of the recorded commit (commit first, or set "
                             "FUSECHECK_COMMIT on a machine without the checkout)",
                        dirty > 0 ? "tracked files have uncommitted changes" : "git cannot tell which commit this is");
    }
    run_commit(commit, sizeof commit);
    run_timestamp(date, sizeof date);
    FILE *f = fopen(path, "a");
    if (!f) return fail(err, "%s: cannot open for appending", path);
    for (int i = 0; i < n; i++) {
        cJSON *o = history_row(&results[i], model, gpu, commit, date);
        char *line = o ? cJSON_PrintUnformatted(o) : NULL;
        if (line) fprintf(f, "%s\n", line);
        free(line);
        cJSON_Delete(o);
    }
    if (fclose(f) != 0) return fail(err, "%s: write failed", path);
    return render_history(dir, err);
}

int cmd_bench(int argc, char **argv) {
    const char *model_dir = NULL, *preset = NULL, *engine_name = "all", *json_path = NULL, *reports_dir = "reports",
               *value;
    int contexts[MAX_CONTEXTS] = {128, 1024, 4096, 16384}, n_contexts = 4, record = 0;
    long tokens = 64, repeat = 5;
    ErrorMessage err = {{0}};
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (!strcmp(flag, "--help") || !strcmp(flag, "-h")) { fputs(USAGE, stdout); return 0; }
        if (!strcmp(flag, "--record")) { record = 1; continue; }
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
    if (!model_dir == !preset) { fail(&err, "give exactly one of --model DIR and --preset NAME"); goto usage_error; }
    GpuEngineKind kinds[2];
    int n_kinds = 0;
    if (!strcmp(engine_name, "all")) { kinds[0] = GPU_ENGINE_FUSED; kinds[1] = GPU_ENGINE_CUBLAS; n_kinds = 2; }
    else if (!gpu_engine_kind_parse(engine_name, &kinds[0])) n_kinds = 1;
    else { fail(&err, "--engine: '%s' is not fused, cublas or all", engine_name); goto usage_error; }

    char gpu[256];
    if (bench_gpu_name(gpu, sizeof gpu, &err)) {
        fprintf(stderr, "fusecheck bench: %s\n", err.text);
        return 4;
    }
    int status = 2;
    char temp_dir[] = "/tmp/fusecheck-bench-XXXXXX";
    int made_temp = 0;
    Checkpoint ck = {0};
    BenchResult results[2 * MAX_CONTEXTS];
    char model_name[256];
    if (preset) {
        ModelConfig config;
        if (synth_preset(preset, &config, &err)) goto done;
        if (!mkdtemp(temp_dir)) { fail(&err, "%s: cannot create a temporary directory", temp_dir); goto done; }
        made_temp = 1;
        fprintf(stderr, "bench: synthesizing %s into %s\n", preset, temp_dir);
        if (synth_write(&config, 0, temp_dir, &err)) goto done;
        model_dir = temp_dir;
        snprintf(model_name, sizeof model_name, "%s", preset);
    } else {
        const char *base = strrchr(model_dir, '/');
        snprintf(model_name, sizeof model_name, "%s", base && base[1] ? base + 1 : model_dir);
    }
    if (checkpoint_open(model_dir, &ck, &err)) goto done;
    double copy_gb_s = 0;
    if (bench_copy_bandwidth(&copy_gb_s, &err)) goto done;
    fprintf(stderr, "bench: %s, device-to-device copy %.0f GB/s\n", gpu, copy_gb_s);
    int n_results = 0;
    for (int k = 0; k < n_kinds; k++) {
        if (bench_engine(&ck, kinds[k], contexts, n_contexts, (int)tokens, (int)repeat, copy_gb_s, 1, stderr,
                         results + n_results, &err))
            goto done;
        n_results += n_contexts;
    }
    char commit[64], date[16];
    run_commit(commit, sizeof commit);
    run_date(date, sizeof date);
    BenchContext context = {gpu, model_name, ck.fingerprint, commit, date, copy_gb_s};
    bench_write_markdown(stdout, &context, results, n_results);
    if (json_path) {
        char *text = bench_json_text(&context, results, n_results);
        FILE *f = text ? fopen(json_path, "w") : NULL;
        int ok = f && fputs(text, f) >= 0;
        if (f && fclose(f) != 0) ok = 0;
        free(text);
        if (!ok) { fail(&err, "%s: cannot write the JSON results", json_path); goto done; }
    }
    if (record && record_results(reports_dir, results, n_results, model_name, gpu, &err)) goto done;
    status = 0;
done:
    if (status) fprintf(stderr, "fusecheck bench: %s\n", err.text);
    checkpoint_close(&ck);
    if (made_temp) {
        char path[512];
        snprintf(path, sizeof path, "%s/model.safetensors", temp_dir);
        remove(path);
        snprintf(path, sizeof path, "%s/config.json", temp_dir);
        remove(path);
        rmdir(temp_dir);
    }
    return status;
usage_error:
    fprintf(stderr, "fusecheck bench: %s\n", err.text);
    return 2;
}
