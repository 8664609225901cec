#include "bench_report.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

double bench_speedup(const BenchResult *results, int n_results, int context) {
    double fused = 0, cublas = 0;
    for (int i = 0; i < n_results; i++) {
        if (results[i].context != context) continue;
        if (results[i].engine == GPU_ENGINE_FUSED) fused = results[i].tok_s_median;
        if (results[i].engine == GPU_ENGINE_CUBLAS) cublas = results[i].tok_s_median;
    }
    return fused > 0 && cublas > 0 ? fused / cublas : 0;
}

void bench_write_markdown(FILE *out, const BenchContext *c, const BenchResult *r, int n) {
    fprintf(out, "GPU: %s; model: %s (weights %s); commit %s, %s; device-to-device copy: %.0f GB/s\n\n", c->gpu_name,
            c->model, c->fingerprint, c->commit, c->date, c->copy_gb_s);
    fprintf(out, "| engine | context | tok/s (median) | min | max | ms/token | MB/token | GB/s | of copy bw | launches/token |\n");
    fprintf(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for (int i = 0; i < n; i++)
        fprintf(out, "| %s | %d | %.1f | %.1f | %.1f | %.4f | %.1f | %.0f | %.1f%% | %d |\n",
                gpu_engine_kind_name(r[i].engine), r[i].context, r[i].tok_s_median, r[i].tok_s_min, r[i].tok_s_max,
                r[i].ms_per_token_median, r[i].bytes_per_token / 1e6, r[i].achieved_gb_s,
                100.0 * r[i].bandwidth_fraction, r[i].launches_per_token);
    int printed_header = 0;
    for (int i = 0; i < n; i++) {
        if (r[i].engine != GPU_ENGINE_FUSED) continue;
        double speedup = bench_speedup(r, n, r[i].context);
        if (speedup <= 0) continue;
        if (!printed_header) {
            fprintf(out, "\n| context | fused / cublas |\n| ---: | ---: |\n");
            printed_header = 1;
        }
        fprintf(out, "| %d | %.2fx |\n", r[i].context, speedup);
    }
    for (int i = 0; i < n; i++) {
        if (!r[i].n_kernels) continue;
        fprintf(out, "\nPer-kernel time, %s engine, context %d (one ungraphed step; launch gaps land in the next kernel):\n\n",
                gpu_engine_kind_name(r[i].engine), r[i].context);
        fprintf(out, "| kernel | launches/token | us/token |\n| --- | ---: | ---: |\n");
        for (int k = 0; k < r[i].n_kernels; k++)
            fprintf(out, "| %s | %d | %.1f |\n", r[i].kernels[k].name, r[i].kernels[k].calls_per_token,
                    r[i].kernels[k].us_per_token);
    }
}

char *bench_json_text(const BenchContext *c, const BenchResult *r, int n) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddStringToObject(root, "gpu", c->gpu_name);
    cJSON_AddStringToObject(root, "model", c->model);
    cJSON_AddStringToObject(root, "weights_fingerprint", c->fingerprint);
    cJSON_AddStringToObject(root, "commit", c->commit);
    cJSON_AddStringToObject(root, "date", c->date);
    cJSON_AddNumberToObject(root, "copy_gb_s", c->copy_gb_s);
    cJSON *results = cJSON_AddArrayToObject(root, "results");
    cJSON *speedups = cJSON_AddArrayToObject(root, "speedup");
    for (int i = 0; i < n; i++) {
        cJSON *row = cJSON_CreateObject();
        cJSON_AddItemToArray(results, row);
        cJSON_AddStringToObject(row, "engine", gpu_engine_kind_name(r[i].engine));
        cJSON_AddNumberToObject(row, "context", r[i].context);
        cJSON_AddNumberToObject(row, "tokens", r[i].tokens);
        cJSON_AddNumberToObject(row, "repeat", r[i].repeat);
        cJSON_AddNumberToObject(row, "tok_s", r[i].tok_s_median);
        cJSON_AddNumberToObject(row, "tok_s_min", r[i].tok_s_min);
        cJSON_AddNumberToObject(row, "tok_s_max", r[i].tok_s_max);
        cJSON_AddNumberToObject(row, "ms_per_token", r[i].ms_per_token_median);
        cJSON_AddNumberToObject(row, "ms_per_token_min", r[i].ms_per_token_min);
        cJSON_AddNumberToObject(row, "ms_per_token_max", r[i].ms_per_token_max);
        cJSON_AddNumberToObject(row, "weight_bytes", r[i].weight_bytes);
        cJSON_AddNumberToObject(row, "kv_bytes", r[i].kv_bytes);
        cJSON_AddNumberToObject(row, "bytes_per_token", r[i].bytes_per_token);
        cJSON_AddNumberToObject(row, "achieved_gb_s", r[i].achieved_gb_s);
        cJSON_AddNumberToObject(row, "bandwidth_fraction", r[i].bandwidth_fraction);
        cJSON_AddNumberToObject(row, "launches_per_token", r[i].launches_per_token);
        cJSON *kernels = cJSON_AddArrayToObject(row, "kernels");
        for (int k = 0; k < r[i].n_kernels; k++) {
            cJSON *kernel = cJSON_CreateObject();
            cJSON_AddItemToArray(kernels, kernel);
            cJSON_AddStringToObject(kernel, "name", r[i].kernels[k].name);
            cJSON_AddNumberToObject(kernel, "launches_per_token", r[i].kernels[k].calls_per_token);
            cJSON_AddNumberToObject(kernel, "us_per_token", r[i].kernels[k].us_per_token);
        }
        double speedup = r[i].engine == GPU_ENGINE_FUSED ? bench_speedup(r, n, r[i].context) : 0;
        if (speedup > 0) {
            cJSON *s = cJSON_CreateObject();
            cJSON_AddItemToArray(speedups, s);
            cJSON_AddNumberToObject(s, "context", r[i].context);
            cJSON_AddNumberToObject(s, "fused_over_cublas", speedup);
        }
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}
