#include "bench_history.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/file_util.h"
#include "history_svg.h"

static int copy_string(const cJSON *o, const char *key, char *out, size_t size) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(item)) return -1;
    snprintf(out, size, "%s", item->valuestring);
    return 0;
}

static int copy_number(const cJSON *o, const char *key, double *out) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(item)) return -1;
    *out = item->valuedouble;
    return 0;
}

static int parse_row(const char *line, HistoryRow *row) {
    memset(row, 0, sizeof *row);
    cJSON *o = cJSON_Parse(line);
    if (!cJSON_IsObject(o)) { cJSON_Delete(o); return -1; }
    char kind[32] = "throughput";
    const cJSON *kind_item = cJSON_GetObjectItemCaseSensitive(o, "kind");
    if (kind_item && copy_string(o, "kind", kind, sizeof kind)) { cJSON_Delete(o); return -1; }
    int bad = copy_string(o, "date", row->date, sizeof row->date) ||
              copy_string(o, "commit", row->commit, sizeof row->commit) ||
              copy_string(o, "model", row->model, sizeof row->model);
    if (!strcmp(kind, "throughput")) {
        double context = 0;
        row->kind = HISTORY_THROUGHPUT;
        bad = bad || copy_string(o, "gpu", row->gpu, sizeof row->gpu) ||
              copy_string(o, "engine", row->engine, sizeof row->engine) || copy_number(o, "context", &context) ||
              copy_number(o, "tok_s", &row->tok_s) || copy_number(o, "ms_per_token", &row->ms_per_token) ||
              copy_number(o, "bandwidth_fraction", &row->bandwidth_fraction);
        row->context = (int)context;
    } else if (!strcmp(kind, "accuracy")) {
        row->kind = HISTORY_ACCURACY;
        copy_string(o, "gpu", row->gpu, sizeof row->gpu);  // informative only
        // Rows from before `gate --engine` name no engine: the gate ran the fused engine only.
        if (!cJSON_GetObjectItemCaseSensitive(o, "engine")) snprintf(row->engine, sizeof row->engine, "fused");
        else bad = bad || copy_string(o, "engine", row->engine, sizeof row->engine);
        bad = bad || copy_string(o, "profile", row->profile, sizeof row->profile) ||
              copy_number(o, "worst_rel_l2", &row->worst_rel_l2) ||
              copy_number(o, "worst_norm_max", &row->worst_norm_max);
    } else {
        bad = 1;
    }
    cJSON_Delete(o);
    return bad ? -1 : 0;
}

int history_read(const char *path, History *history, ErrorMessage *err) {
    history->rows = NULL;
    history->n = 0;
    // One line per run and context: megabytes would be centuries of history.
    char *text = read_text_file(path, 64u << 20, err);
    if (!text) return -1;
    int n_lines = 1;
    for (const char *p = text; *p; p++) n_lines += *p == '\n';
    history->rows = calloc((size_t)n_lines, sizeof *history->rows);
    if (!history->rows) { free(text); return fail(err, "%s: out of memory", path); }
    int line_number = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        line_number++;
        if (!line[strspn(line, " \t\r")]) continue;
        if (parse_row(line, &history->rows[history->n])) {
            free(text);
            history_free(history);
            return fail(err, "%s: line %d is not a throughput or accuracy row", path, line_number);
        }
        history->n++;
    }
    free(text);
    return 0;
}

void history_free(History *history) {
    free(history->rows);
    history->rows = NULL;
    history->n = 0;
}

static cJSON *row_json(const HistoryRow *r) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    if (r->kind == HISTORY_ACCURACY) cJSON_AddStringToObject(o, "kind", "accuracy");
    cJSON_AddStringToObject(o, "date", r->date);
    cJSON_AddStringToObject(o, "commit", r->commit);
    cJSON_AddStringToObject(o, "gpu", r->gpu);
    cJSON_AddStringToObject(o, "model", r->model);
    if (r->kind == HISTORY_THROUGHPUT) {
        cJSON_AddStringToObject(o, "engine", r->engine);
        cJSON_AddNumberToObject(o, "context", r->context);
        cJSON_AddNumberToObject(o, "tok_s", r->tok_s);
        cJSON_AddNumberToObject(o, "ms_per_token", r->ms_per_token);
        cJSON_AddNumberToObject(o, "bandwidth_fraction", r->bandwidth_fraction);
    } else {
        cJSON_AddStringToObject(o, "engine", r->engine);
        cJSON_AddStringToObject(o, "profile", r->profile);
        cJSON_AddNumberToObject(o, "worst_rel_l2", r->worst_rel_l2);
        cJSON_AddNumberToObject(o, "worst_norm_max", r->worst_norm_max);
    }
    return o;
}

int history_append(const char *path, const HistoryRow *rows, int n, ErrorMessage *err) {
    FILE *f = fopen(path, "a");
    if (!f) return fail(err, "%s: cannot open for appending: %s", path, strerror(errno));
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        cJSON *o = row_json(&rows[i]);
        char *line = o ? cJSON_PrintUnformatted(o) : NULL;
        ok = line && fprintf(f, "%s\n", line) > 0;
        free(line);
        cJSON_Delete(o);
    }
    if (fclose(f) != 0 || !ok) return fail(err, "%s: write failed", path);
    return 0;
}

const HistoryRow *history_last_throughput(const History *h, const char *gpu, const char *engine, const char *model,
                                          int context) {
    for (int i = h->n - 1; i >= 0; i--) {
        const HistoryRow *r = &h->rows[i];
        if (r->kind == HISTORY_THROUGHPUT && r->context == context && !strcmp(r->gpu, gpu) &&
            !strcmp(r->engine, engine) && !strcmp(r->model, model))
            return r;
    }
    return NULL;
}

const HistoryRow *history_last_accuracy(const History *h, const char *engine, const char *model, const char *profile) {
    for (int i = h->n - 1; i >= 0; i--) {
        const HistoryRow *r = &h->rows[i];
        if (r->kind == HISTORY_ACCURACY && !strcmp(r->engine, engine) && !strcmp(r->model, model) &&
            !strcmp(r->profile, profile))
            return r;
    }
    return NULL;
}

void baseline_check_speed(const History *h, const char *gpu, const char *engine, const char *model, int context,
                          double tok_s, double max_slowdown_pct, BaselineVerdict *out) {
    memset(out, 0, sizeof *out);
    const HistoryRow *r = history_last_throughput(h, gpu, engine, model, context);
    if (!r) {
        snprintf(out->message, sizeof out->message,
                 "no recorded %s tok/s for %s at context %d on %s: nothing to compare with", engine, model, context, gpu);
        return;
    }
    out->found = 1;
    double slowdown_pct = 100.0 * (1.0 - tok_s / r->tok_s);
    out->failed = !(tok_s >= r->tok_s * (1.0 - max_slowdown_pct / 100.0));
    snprintf(out->message, sizeof out->message,
             "%s at context %d: %.1f tok/s, %s%.1f%% against %.1f tok/s recorded at %.12s (%s)%s", engine, context,
             tok_s, slowdown_pct > 0 ? "slower by " : "faster by ", slowdown_pct > 0 ? slowdown_pct : -slowdown_pct,
             r->tok_s, r->commit, r->date, out->failed ? ": beyond --max-slowdown" : "");
}

void baseline_check_accuracy(const History *h, const char *engine, const char *model, const char *profile,
                             double worst_rel_l2, double worst_norm_max, double max_growth, BaselineVerdict *out) {
    memset(out, 0, sizeof *out);
    const HistoryRow *r = history_last_accuracy(h, engine, model, profile);
    if (!r) {
        snprintf(out->message, sizeof out->message, "no recorded accuracy for %s (%s): nothing to compare with", model,
                 profile);
        return;
    }
    out->found = 1;
    double rel_floor = r->worst_rel_l2 > FLT_EPSILON ? r->worst_rel_l2 : FLT_EPSILON;
    double norm_floor = r->worst_norm_max > FLT_EPSILON ? r->worst_norm_max : FLT_EPSILON;
    double rel_growth = worst_rel_l2 / rel_floor, norm_growth = worst_norm_max / norm_floor;
    // A NaN figure compares false with everything: written this way it fails, never slips through.
    out->failed = !(worst_rel_l2 <= max_growth * rel_floor) || !(worst_norm_max <= max_growth * norm_floor);
    snprintf(out->message, sizeof out->message,
             "%s (%s): worst rel_l2 %.3g (%.1fx), norm_max %.3g (%.1fx) of the %.3g and %.3g recorded at %.12s%s", model,
             profile, worst_rel_l2, rel_growth, worst_norm_max, norm_growth, r->worst_rel_l2, r->worst_norm_max,
             r->commit, out->failed ? ": grew more than the allowed growth" : "");
}

static int write_markdown(const History *h, const char *path, ErrorMessage *err) {
    AtomicFile file;
    if (atomic_file_open(&file, path, err)) return -1;
    FILE *out = file.file;
    fprintf(out, "# Decode throughput and accuracy history\n\n"
                 "Rendered by `fusecheck bench --record` (or `gate --record`) from `benchmarks.jsonl` (each row from a\n"
                 "real run of the recorded commit; newest first). Batch 1, bf16 weights, KV cache filled to the\n"
                 "context, tok/s = median over repeats of decode steps (GPU engines: CUDA-event-timed, bf16 KV; CPU\n"
                 "engines, whose gpu column names the CPU: wall-clock-timed); the fraction is achieved bytes/s (weights\n"
                 "+ KV of the context) over the device-to-device copy bandwidth measured in the same run (0 for a CPU\n"
                 "engine). `fusecheck gate --baseline` compares a run with the last row of the same GPU, engine, model\n"
                 "and context (tok/s), and of the same engine, model and profile (accuracy).\n\n"
                 "![tok/s per commit](throughput_history.svg)\n\n"
                 "## Throughput\n\n"
                 "| date | commit | gpu | model | engine | context | tok/s | ms/token | of copy BW |\n"
                 "| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: |\n");
    for (int i = h->n - 1; i >= 0; i--) {
        const HistoryRow *r = &h->rows[i];
        if (r->kind != HISTORY_THROUGHPUT) continue;
        fprintf(out, "| %s | %.12s | %s | %s | %s | %d | %.1f | %.4f | %.1f%% |\n", r->date, r->commit, r->gpu, r->model,
                r->engine, r->context, r->tok_s, r->ms_per_token, 100.0 * r->bandwidth_fraction);
    }
    int any_accuracy = 0;
    for (int i = h->n - 1; i >= 0; i--) {
        const HistoryRow *r = &h->rows[i];
        if (r->kind != HISTORY_ACCURACY) continue;
        if (!any_accuracy)
            fprintf(out, "\n## Accuracy (each engine against the reference; worst over every tensor)\n\n"
                         "| date | commit | gpu | model | engine | profile | worst rel_l2 | worst norm_max |\n"
                         "| --- | --- | --- | --- | --- | --- | ---: | ---: |\n");
        any_accuracy = 1;
        fprintf(out, "| %s | %.12s | %s | %s | %s | %s | %.3g | %.3g |\n", r->date, r->commit, r->gpu, r->model,
                r->engine, r->profile, r->worst_rel_l2, r->worst_norm_max);
    }
    return atomic_file_commit(&file, err);
}

int history_render(const char *jsonl_path, ErrorMessage *err) {
    // The outputs go beside the history, whatever it is called (the gate's --baseline names any file).
    char dir[1024], md[1100], svg[1100];
    snprintf(dir, sizeof dir, "%s", jsonl_path);
    char *slash = strrchr(dir, '/');
    if (slash) slash[slash == dir ? 1 : 0] = '\0';
    else snprintf(dir, sizeof dir, ".");
    snprintf(md, sizeof md, "%s/BENCHMARKS.md", dir);
    snprintf(svg, sizeof svg, "%s/throughput_history.svg", dir);
    History h;
    if (history_read(jsonl_path, &h, err)) return -1;
    int rc = write_markdown(&h, md, err) || history_write_svg(&h, svg, err);
    history_free(&h);
    return rc ? -1 : 0;
}
