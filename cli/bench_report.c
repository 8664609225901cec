#include "bench_report.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

// The unfused baseline every other engine's speedup is reported against.
#define BASELINE_ENGINE "cublas"

double bench_speedup(const BenchResult *results, int n_results, const char *engine, int context) {
    double under_test = 0, baseline = 0;
    if (!strcmp(engine, BASELINE_ENGINE)) return 0;
    for (int i = 0; i < n_results; i++) {
        if (results[i].context != context) continue;
        // A CPU engine's wall-clocked figure over a GPU engine's device-timed one says nothing.
        if (!strcmp(results[i].engine, engine) && results[i].on_gpu) under_test = results[i].tok_s_median;
        if (!strcmp(results[i].engine, BASELINE_ENGINE)) baseline = results[i].tok_s_median;
    }
    return under_test > 0 && baseline > 0 ? under_test / baseline : 0;
}

// Whether results[i] is the first row of its engine (engines appear in runs of rows).
static int first_of_engine(const BenchResult *r, int i) {
    for (int j = 0; j < i; j++)
        if (!strcmp(r[j].engine, r[i].engine)) return 0;
    return 1;
}

static void write_speedups(FILE *out, const BenchResult *r, int n) {
    for (int e = 0; e < n; e++) {
        if (!first_of_engine(r, e) || !strcmp(r[e].engine, BASELINE_ENGINE)) continue;
        int printed_header = 0;
        for (int i = e; i < n; i++) {
            if (strcmp(r[i].engine, r[e].engine)) continue;
            double speedup = bench_speedup(r, n, r[i].engine, r[i].context);
            if (speedup <= 0) continue;
            if (!printed_header) {
                fprintf(out, "\n| context | %s / %s |\n| ---: | ---: |\n", r[e].engine, BASELINE_ENGINE);
                printed_header = 1;
            }
            fprintf(out, "| %d | %.2fx |\n", r[i].context, speedup);
        }
    }
}

void bench_write_markdown(FILE *out, const BenchContext *c, const BenchResult *r, int n) {
    int any_cpu = 0, any_wall_clock = 0;
    for (int i = 0; i < n; i++) {
        any_cpu |= !r[i].on_gpu;
        any_wall_clock |= r[i].timing == BENCH_TIMING_WALL_CLOCK;
    }
    if (c->gpu_name) {
        fprintf(out, "GPU: %s; ", c->gpu_name);
        if (any_cpu) fprintf(out, "CPU: %s; ", c->cpu_name ? c->cpu_name : "CPU");
        fprintf(out, "model: %s (weights %s); commit %s, %s; device-to-device copy: %.0f GB/s\n\n", c->model,
                c->fingerprint, c->commit, c->date, c->copy_gb_s);
    } else {
        fprintf(out, "CPU: %s; model: %s (weights %s); commit %s, %s; no GPU used (bytes and bandwidth: n/a)\n\n",
                c->cpu_name ? c->cpu_name : "CPU", c->model, c->fingerprint, c->commit, c->date);
    }
    fprintf(out, "| engine | context | tok/s (median) | min | max | ms/token | MB/token | GB/s | of copy bw | launches/token |\n");
    fprintf(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (int i = 0; i < n; i++) {
        char launches[32] = "n/a";
        if (r[i].launches_per_token >= 0) snprintf(launches, sizeof launches, "%d", r[i].launches_per_token);
        fprintf(out, "| %s | %d | %.1f | %.1f | %.1f | %.4f | ", r[i].engine, r[i].context, r[i].tok_s_median,
                r[i].tok_s_min, r[i].tok_s_max, r[i].ms_per_token_median);
        if (r[i].on_gpu)
            fprintf(out, "%.1f | %.0f | %.1f%% | %s |\n", r[i].bytes_per_token / 1e6, r[i].achieved_gb_s,
                    100.0 * r[i].bandwidth_fraction, launches);
        else
            fprintf(out, "n/a | n/a | n/a | %s |\n", launches);
    }
    write_speedups(out, r, n);
    for (int i = 0; i < n; i++) {
        if (!r[i].n_kernels) continue;
        fprintf(out, "\nPer-kernel time, %s engine, context %d (one ungraphed step; launch gaps land in the next kernel):\n\n",
                r[i].engine, r[i].context);
        fprintf(out, "| kernel | launches/token | us/token |\n| --- | ---: | ---: |\n");
        for (int k = 0; k < r[i].n_kernels; k++)
            fprintf(out, "| %s | %d | %.1f |\n", r[i].kernels[k].name, r[i].kernels[k].calls_per_token,
                    r[i].kernels[k].us_per_token);
    }
    // The GPU engines' device timing is the table's long-standing default; say it when it is not the only one.
    if (any_wall_clock) {
        fprintf(out, "\nTiming:\n\n");
        for (int i = 0; i < n; i++)
            if (first_of_engine(r, i))
                fprintf(out, "- %s: %s\n", r[i].engine, bench_timing_description(r[i].timing));
    }
}

static void add_number_or_null(cJSON *o, const char *key, int present, double value) {
    if (present) cJSON_AddNumberToObject(o, key, value);
    else cJSON_AddNullToObject(o, key);
}

char *bench_json_text(const BenchContext *c, const BenchResult *r, int n) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    int any_cpu = 0;
    for (int i = 0; i < n; i++) any_cpu |= !r[i].on_gpu;
    if (c->gpu_name) cJSON_AddStringToObject(root, "gpu", c->gpu_name);
    else cJSON_AddNullToObject(root, "gpu");
    if (any_cpu) cJSON_AddStringToObject(root, "cpu", c->cpu_name ? c->cpu_name : "CPU");
    cJSON_AddStringToObject(root, "model", c->model);
    cJSON_AddStringToObject(root, "weights_fingerprint", c->fingerprint);
    cJSON_AddStringToObject(root, "commit", c->commit);
    cJSON_AddStringToObject(root, "date", c->date);
    add_number_or_null(root, "copy_gb_s", c->gpu_name != NULL, c->copy_gb_s);
    cJSON *results = cJSON_AddArrayToObject(root, "results");
    cJSON *speedups = cJSON_AddArrayToObject(root, "speedup");
    for (int i = 0; i < n; i++) {
        cJSON *row = cJSON_CreateObject();
        cJSON_AddItemToArray(results, row);
        int gpu = r[i].on_gpu;
        cJSON_AddStringToObject(row, "engine", r[i].engine);
        cJSON_AddStringToObject(row, "timing", bench_timing_name(r[i].timing));
        cJSON_AddNumberToObject(row, "context", r[i].context);
        cJSON_AddNumberToObject(row, "tokens", r[i].tokens);
        cJSON_AddNumberToObject(row, "repeat", r[i].repeat);
        cJSON_AddNumberToObject(row, "tok_s", r[i].tok_s_median);
        cJSON_AddNumberToObject(row, "tok_s_min", r[i].tok_s_min);
        cJSON_AddNumberToObject(row, "tok_s_max", r[i].tok_s_max);
        cJSON_AddNumberToObject(row, "ms_per_token", r[i].ms_per_token_median);
        cJSON_AddNumberToObject(row, "ms_per_token_min", r[i].ms_per_token_min);
        cJSON_AddNumberToObject(row, "ms_per_token_max", r[i].ms_per_token_max);
        add_number_or_null(row, "weight_bytes", gpu, r[i].weight_bytes);
        add_number_or_null(row, "kv_bytes", gpu, r[i].kv_bytes);
        add_number_or_null(row, "bytes_per_token", gpu, r[i].bytes_per_token);
        add_number_or_null(row, "achieved_gb_s", gpu, r[i].achieved_gb_s);
        add_number_or_null(row, "bandwidth_fraction", gpu, r[i].bandwidth_fraction);
        add_number_or_null(row, "launches_per_token", r[i].launches_per_token >= 0, r[i].launches_per_token);
        cJSON *kernels = cJSON_AddArrayToObject(row, "kernels");
        for (int k = 0; k < r[i].n_kernels; k++) {
            cJSON *kernel = cJSON_CreateObject();
            cJSON_AddItemToArray(kernels, kernel);
            cJSON_AddStringToObject(kernel, "name", r[i].kernels[k].name);
            cJSON_AddNumberToObject(kernel, "launches_per_token", r[i].kernels[k].calls_per_token);
            cJSON_AddNumberToObject(kernel, "us_per_token", r[i].kernels[k].us_per_token);
        }
        double speedup =
            strcmp(r[i].engine, BASELINE_ENGINE) ? bench_speedup(r, n, r[i].engine, r[i].context) : 0;
        if (speedup > 0) {
            cJSON *s = cJSON_CreateObject();
            cJSON_AddItemToArray(speedups, s);
            cJSON_AddStringToObject(s, "engine", r[i].engine);
            cJSON_AddNumberToObject(s, "context", r[i].context);
            cJSON_AddNumberToObject(s, "over_cublas", speedup);
            if (!strcmp(r[i].engine, "fused")) cJSON_AddNumberToObject(s, "fused_over_cublas", speedup);  // older readers
        }
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}
