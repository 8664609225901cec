// fusecheck bench: decode throughput of the GPU engines at several context lengths (gpu_bench.h says
// what one measurement is), a llama-bench style markdown table, JSON, and a recorded history.
#define _DEFAULT_SOURCE  // mkdtemp
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../fused/gpu_bench.h"
#include "../model/checkpoint.h"
#include "../model/synth.h"
#include "commands.h"
#include "options.h"

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

#define MAX_CONTEXTS 16

static int parse_contexts(const char *text, int *contexts, int *n, ErrorMessage *err) {
    *n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && *end != ',') || v < 1 || v > 10000000)
            return fail(err, "--context: '%s' is not a comma-separated list of positive integers", text);
        if (*n == MAX_CONTEXTS) return fail(err, "--context: more than %d contexts", MAX_CONTEXTS);
        contexts[(*n)++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (*n == 0) return fail(err, "--context: empty list");
    return 0;
}

static void commit_id(char *out, size_t size) {
    const char *env = getenv("FUSECHECK_COMMIT");
    snprintf(out, size, "%s", env && *env ? env : "unknown");
    if (env && *env) return;
    FILE *git = popen("git rev-parse HEAD 2>/dev/null", "r");
    if (!git) return;
    char line[128] = {0};
    if (fgets(line, sizeof line, git)) {
        line[strcspn(line, "\r\n")] = 0;
        if (*line) snprintf(out, size, "%s", line);
    }
    pclose(git);
}

static void utc_now(char *out, size_t size) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static cJSON *result_json(const BenchResult *r, const char *model, const char *gpu, const char *commit,
                          const char *date, int full) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "date", date);
    cJSON_AddStringToObject(o, "commit", commit);
    cJSON_AddStringToObject(o, "gpu", gpu);
    cJSON_AddStringToObject(o, "model", model);
    cJSON_AddStringToObject(o, "engine", gpu_engine_kind_name(r->engine));
    cJSON_AddNumberToObject(o, "context", r->context);
    cJSON_AddNumberToObject(o, "tok_s", r->tok_s_median);
    cJSON_AddNumberToObject(o, "ms_per_token", r->ms_per_token_median);
    cJSON_AddNumberToObject(o, "bandwidth_fraction", r->bandwidth_fraction);
    if (!full) return o;
    cJSON_AddNumberToObject(o, "tok_s_min", r->tok_s_min);
    cJSON_AddNumberToObject(o, "tok_s_max", r->tok_s_max);
    cJSON_AddNumberToObject(o, "ms_per_token_min", r->ms_per_token_min);
    cJSON_AddNumberToObject(o, "ms_per_token_max", r->ms_per_token_max);
    cJSON_AddNumberToObject(o, "tokens", r->tokens);
    cJSON_AddNumberToObject(o, "repeat", r->repeat);
    cJSON_AddNumberToObject(o, "weight_bytes", r->weight_bytes);
    cJSON_AddNumberToObject(o, "kv_bytes", r->kv_bytes);
    cJSON_AddNumberToObject(o, "bytes_per_token", r->bytes_per_token);
    cJSON_AddNumberToObject(o, "achieved_gb_s", r->achieved_gb_s);
    cJSON_AddNumberToObject(o, "copy_gb_s", r->copy_gb_s);
    cJSON_AddNumberToObject(o, "launches_per_token", r->launches_per_token);
    cJSON *kernels = cJSON_AddArrayToObject(o, "kernels");
    for (int k = 0; k < r->n_kernels; k++) {
        cJSON *kj = cJSON_CreateObject();
        cJSON_AddStringToObject(kj, "name", r->kernels[k].name);
        cJSON_AddNumberToObject(kj, "calls_per_token", r->kernels[k].calls_per_token);
        cJSON_AddNumberToObject(kj, "us_per_token", r->kernels[k].us_per_token);
        cJSON_AddItemToArray(kernels, kj);
    }
    return o;
}

static void print_tables(FILE *out, const BenchResult *results, int n, const char *model, const char *gpu,
                         double copy_gb_s) {
    fprintf(out, "\n%s on %s (device-to-device copy %.0f GB/s)\n\n", model, gpu, copy_gb_s);
    fprintf(out, "| model | engine | context | tok/s | min | max | ms/token | GB/token | GB/s | of copy BW | launches |\n");
    fprintf(out, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (int i = 0; i < n; i++) {
        const BenchResult *r = &results[i];
        fprintf(out, "| %s | %s | %d | %.1f | %.1f | %.1f | %.4f | %.3f | %.0f | %.1f%% | %d |\n", model,
                gpu_engine_kind_name(r->engine), r->context, r->tok_s_median, r->tok_s_min, r->tok_s_max,
                r->ms_per_token_median, r->bytes_per_token / 1e9, r->achieved_gb_s, 100.0 * r->bandwidth_fraction,
                r->launches_per_token);
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (results[i].engine == GPU_ENGINE_FUSED && results[j].engine == GPU_ENGINE_CUBLAS &&
                results[i].context == results[j].context)
                fprintf(out, "\nfused / cublas at context %d: %.2fx", results[i].context,
                        results[i].tok_s_median / results[j].tok_s_median);
    fprintf(out, "\n");
    for (int i = 0; i < n; i++) {
        const BenchResult *r = &results[i];
        if (!r->n_kernels) continue;
        double total = 0;
        for (int k = 0; k < r->n_kernels; k++) total += r->kernels[k].us_per_token;
        fprintf(out, "\nper-kernel time, %s, context %d (one ungraphed step, events between kernels: %.1f us total)\n\n",
                gpu_engine_kind_name(r->engine), r->context, total);
        fprintf(out, "| kernel | launches | us/token | us/launch | share |\n| --- | ---: | ---: | ---: | ---: |\n");
        for (int k = 0; k < r->n_kernels; k++)
            fprintf(out, "| %s | %d | %.1f | %.2f | %.1f%% |\n", r->kernels[k].name, r->kernels[k].calls_per_token,
                    r->kernels[k].us_per_token, r->kernels[k].us_per_token / r->kernels[k].calls_per_token,
                    total > 0 ? 100.0 * r->kernels[k].us_per_token / total : 0.0);
    }
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
            fprintf(out, "| %s | %.10s | %s | %s | %s | %d | %.1f | %.4f | %.1f%% |\n", date->valuestring,
                    commit->valuestring, gpu->valuestring, model->valuestring, engine->valuestring, context->valueint,
                    tok_s->valuedouble, ms->valuedouble, 100.0 * frac->valuedouble);
        cJSON_Delete(o);
    }
    free(lines);
    free(text);
    if (fclose(out) != 0 || rename(tmp, md) != 0) return fail(err, "%s: cannot write", md);
    return 0;
}

static int record_results(const char *dir, const BenchResult *results, int n, const char *model, const char *gpu,
                          ErrorMessage *err) {
    char path[1024], commit[128], date[32];
    snprintf(path, sizeof path, "%s/benchmarks.jsonl", dir);
    commit_id(commit, sizeof commit);
    utc_now(date, sizeof date);
    FILE *f = fopen(path, "a");
    if (!f) return fail(err, "%s: cannot open for appending", path);
    for (int i = 0; i < n; i++) {
        cJSON *o = result_json(&results[i], model, gpu, commit, date, 0);
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
        else if (!strcmp(flag, "--context")) { if (parse_contexts(value, contexts, &n_contexts, &err)) goto usage_error; }
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
    print_tables(stdout, results, n_results, model_name, gpu, copy_gb_s);
    if (json_path) {
        char commit[128], date[32];
        commit_id(commit, sizeof commit);
        utc_now(date, sizeof date);
        cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "results");
        cJSON_AddStringToObject(root, "gpu", gpu);
        cJSON_AddStringToObject(root, "model", model_name);
        cJSON_AddNumberToObject(root, "copy_gb_s", copy_gb_s);
        for (int i = 0; i < n_results; i++) cJSON_AddItemToArray(arr, result_json(&results[i], model_name, gpu, commit, date, 1));
        char *text = cJSON_Print(root);
        FILE *f = fopen(json_path, "w");
        int ok = f && text && fputs(text, f) >= 0;
        if (f && fclose(f) != 0) ok = 0;
        free(text);
        cJSON_Delete(root);
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
