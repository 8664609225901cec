// The benchmark history (cli/bench_history.h): reading old rows without "kind", the gate's baseline
// rules for speed (same GPU, engine, model, context; at most PCT slower) and accuracy (same engine,
// model and profile, a row without an engine being the fused engine's; at most 10x), and the rendered
// tables and chart.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli/bench_history.h"
#include "test_support.h"

static const char HISTORY[] =
    // the old format: no "kind"
    "{\"date\":\"2026-11-26T19:58:41Z\",\"commit\":\"aaaa\",\"gpu\":\"NVIDIA H100 80GB HBM3\",\"model\":\"qwen3-0.6b\","
    "\"engine\":\"fused\",\"context\":1024,\"tok_s\":900,\"ms_per_token\":1.1,\"bandwidth_fraction\":0.3}\n"
    "{\"kind\":\"throughput\",\"date\":\"2026-11-27T10:00:00Z\",\"commit\":\"bbbb\",\"gpu\":\"NVIDIA H100 80GB HBM3\","
    "\"model\":\"qwen3-0.6b\",\"engine\":\"fused\",\"context\":1024,\"tok_s\":1000,\"ms_per_token\":1.0,"
    "\"bandwidth_fraction\":0.35}\n"
    "{\"date\":\"2026-11-27T10:00:00Z\",\"commit\":\"bbbb\",\"gpu\":\"NVIDIA H100 80GB HBM3\",\"model\":\"qwen3-0.6b\","
    "\"engine\":\"cublas\",\"context\":1024,\"tok_s\":300,\"ms_per_token\":3.3,\"bandwidth_fraction\":0.1}\n"
    "\n"
    "{\"kind\":\"accuracy\",\"date\":\"2026-11-27T10:00:00Z\",\"commit\":\"bbbb\",\"gpu\":\"NVIDIA H100 80GB HBM3\","
    "\"model\":\"qwen3-0.6b\",\"profile\":\"matched\",\"worst_rel_l2\":9.5367431640625e-07,\"worst_norm_max\":1.9073486328125e-06}\n";

static History read_history(const char *text, char **dir_out) {
    char *dir = test_make_temp_dir("history");
    char *path = test_path_join(dir, "benchmarks.jsonl");
    test_write_file(path, text, strlen(text));
    History h;
    ErrorMessage err;
    cr_assert_eq(history_read(path, &h, &err), 0, "%s", err.text);
    free(path);
    if (dir_out) *dir_out = dir;
    else free(dir);
    return h;
}

Test(bench_history, rows_without_kind_are_throughput_and_the_last_row_of_a_key_wins) {
    History h = read_history(HISTORY, NULL);
    cr_assert_eq(h.n, 4);
    cr_assert_eq(h.rows[0].kind, HISTORY_THROUGHPUT);
    cr_assert_eq(h.rows[3].kind, HISTORY_ACCURACY);
    const HistoryRow *r = history_last_throughput(&h, "NVIDIA H100 80GB HBM3", "fused", "qwen3-0.6b", 1024);
    cr_assert_not_null(r);
    cr_assert_str_eq(r->commit, "bbbb");
    cr_assert_null(history_last_throughput(&h, "NVIDIA H200", "fused", "qwen3-0.6b", 1024));
    cr_assert_null(history_last_throughput(&h, "NVIDIA H100 80GB HBM3", "fused", "qwen3-0.6b", 128));
    history_free(&h);
}

Test(bench_history, speed_fails_only_beyond_max_slowdown_naming_context_figure_and_commit) {
    History h = read_history(HISTORY, NULL);
    BaselineVerdict v;
    // 6.25% and these figures are exact in binary: the boundary is tested, not rounding.
    baseline_check_speed(&h, "NVIDIA H100 80GB HBM3", "fused", "qwen3-0.6b", 1024, 937.5, 6.25, &v);
    cr_assert(v.found && !v.failed, "exactly 6.25%% slower passes: %s", v.message);
    baseline_check_speed(&h, "NVIDIA H100 80GB HBM3", "fused", "qwen3-0.6b", 1024, 937.4, 6.25, &v);
    cr_assert(v.found && v.failed, "just past 6.25%% slower fails: %s", v.message);
    cr_assert(strstr(v.message, "context 1024") && strstr(v.message, "1000.0") && strstr(v.message, "bbbb"), "%s",
              v.message);
    baseline_check_speed(&h, "NVIDIA H100 80GB HBM3", "fused", "qwen3-0.6b", 1024, 1200.0, 5.0, &v);
    cr_assert(!v.failed, "%s", v.message);
    history_free(&h);
}

Test(bench_history, no_row_for_this_gpu_is_said_and_not_a_failure) {
    History h = read_history(HISTORY, NULL);
    BaselineVerdict v;
    baseline_check_speed(&h, "NVIDIA H200", "fused", "qwen3-0.6b", 1024, 1.0, 5.0, &v);
    cr_assert_eq(v.found, 0);
    cr_assert_eq(v.failed, 0);
    cr_assert(strstr(v.message, "no recorded") && strstr(v.message, "NVIDIA H200"), "%s", v.message);
    baseline_check_accuracy(&h, "fused", "qwen3-0.6b", "unforced", 1.0, 1.0, 10.0, &v);
    cr_assert(!v.found && !v.failed, "%s", v.message);
    history_free(&h);
}

Test(bench_history, accuracy_fails_beyond_ten_times_the_recorded_figure) {
    History h = read_history(HISTORY, NULL);
    BaselineVerdict v;
    // Recorded 2^-20 and 2^-19: ten times them is exact in binary.
    const double rel = 0x1p-20, norm = 0x1p-19;
    baseline_check_accuracy(&h, "fused", "qwen3-0.6b", "matched", 10 * rel, 10 * norm, 10.0, &v);
    cr_assert(v.found && !v.failed, "exactly 10x passes: %s", v.message);
    baseline_check_accuracy(&h, "fused", "qwen3-0.6b", "matched", 10.01 * rel, norm, 10.0, &v);
    cr_assert(v.failed, "rel_l2 beyond 10x fails: %s", v.message);
    baseline_check_accuracy(&h, "fused", "qwen3-0.6b", "matched", rel, 10.01 * norm, 10.0, &v);
    cr_assert(v.failed, "norm_max beyond 10x fails: %s", v.message);
    cr_assert(strstr(v.message, "bbbb"), "%s", v.message);
    baseline_check_accuracy(&h, "fused", "qwen3-0.6b", "matched", NAN, norm, 10.0, &v);
    cr_assert(v.failed, "NaN fails: %s", v.message);
    baseline_check_accuracy(&h, "fused", "qwen3-0.6b", "matched", INFINITY, norm, 10.0, &v);
    cr_assert(v.failed, "Inf fails: %s", v.message);
    history_free(&h);
}

Test(bench_history, a_line_that_is_no_row_is_an_error_naming_file_and_line) {
    char *dir = test_make_temp_dir("history");
    char *path = test_path_join(dir, "benchmarks.jsonl");
    const char text[] = "{\"kind\":\"accuracy\",\"date\":\"d\",\"commit\":\"c\",\"model\":\"m\",\"profile\":\"matched\","
                        "\"worst_rel_l2\":1,\"worst_norm_max\":1}\n{\"kind\":\"accuracy\",\"date\":\"d\"}\n";
    test_write_file(path, text, strlen(text));
    History h;
    ErrorMessage err;
    cr_assert_eq(history_read(path, &h, &err), -1);
    cr_assert(strstr(err.text, "benchmarks.jsonl") && strstr(err.text, "line 2"), "%s", err.text);
    free(path);
    free(dir);
}

Test(bench_history, appended_rows_read_back_and_render_tables_and_a_chart) {
    char *dir;
    History h = read_history(HISTORY, &dir);
    char *path = test_path_join(dir, "benchmarks.jsonl");
    HistoryRow row = {.kind = HISTORY_ACCURACY, .worst_rel_l2 = 3e-6, .worst_norm_max = 4e-6};
    snprintf(row.date, sizeof row.date, "2026-12-03T00:00:00Z");
    snprintf(row.commit, sizeof row.commit, "cccc");
    snprintf(row.gpu, sizeof row.gpu, "GPU <&>");
    snprintf(row.model, sizeof row.model, "qwen3-0.6b");
    snprintf(row.engine, sizeof row.engine, "fused");
    snprintf(row.profile, sizeof row.profile, "unforced");
    ErrorMessage err;
    cr_assert_eq(history_append(path, &row, 1, &err), 0, "%s", err.text);
    History again;
    cr_assert_eq(history_read(path, &again, &err), 0, "%s", err.text);
    cr_assert_eq(again.n, h.n + 1);
    const HistoryRow *r = history_last_accuracy(&again, "fused", "qwen3-0.6b", "unforced");
    cr_assert_not_null(r);
    cr_assert_float_eq(r->worst_rel_l2, 3e-6, 1e-18);
    // Rendered beside the history whatever its name (the gate's --baseline FILE): copy it to another name.
    char *renamed = test_path_join(dir, "base.jsonl");
    char *text = test_read_file(path, NULL);
    test_write_file(renamed, text, strlen(text));
    free(text);
    cr_assert_eq(remove(path), 0);
    cr_assert_eq(history_render(renamed, &err), 0, "%s", err.text);
    free(renamed);
    char *md_path = test_path_join(dir, "BENCHMARKS.md"), *svg_path = test_path_join(dir, "throughput_history.svg");
    char *md = test_read_file(md_path, NULL), *svg = test_read_file(svg_path, NULL);
    cr_assert(strstr(md, "| 2026-11-27T10:00:00Z | bbbb | NVIDIA H100 80GB HBM3 | qwen3-0.6b | fused | 1024 | 1000.0 |"),
              "%s", md);
    cr_assert(strstr(md, "| unforced | 3e-06 | 4e-06 |"), "%s", md);
    // Newest first: commit bbbb's fused row before aaaa's.
    cr_assert(strstr(md, "| bbbb |") < strstr(md, "| aaaa |"));
    // Two throughput series (fused and cublas at 1024), two commits on x.
    int polylines = 0;
    for (const char *p = svg; (p = strstr(p, "<polyline")); p++) polylines++;
    cr_assert_eq(polylines, 2, "%s", svg);
    cr_assert(strstr(svg, ">aaaa</text>") && strstr(svg, ">bbbb</text>"), "%s", svg);
    // One panel per GPU, titled by it; accuracy rows (GPU "GPU <&>") draw none.
    cr_assert(strstr(svg, "font-weight=\"bold\">NVIDIA H100 80GB HBM3</text>"), "%s", svg);
    cr_assert_null(strstr(svg, "GPU &lt;&amp;&gt;"), "%s", svg);
    cr_assert(strstr(svg, "</svg>"));
    free(md);
    free(svg);
    free(md_path);
    free(svg_path);
    history_free(&h);
    history_free(&again);
    free(path);
    free(dir);
}

// `gate --engine`: each engine's accuracy is its own baseline. A row without "engine" (written before
// the gate took --engine) is the fused engine's; another engine's row, written with its name, is not.
Test(bench_history, accuracy_rows_are_keyed_by_engine_and_old_rows_are_the_fused_engines) {
    char *dir;
    History h = read_history(HISTORY, &dir);
    const HistoryRow *old = history_last_accuracy(&h, "fused", "qwen3-0.6b", "matched");
    cr_assert_not_null(old, "a row without an engine is the fused engine's");
    cr_expect_str_eq(old->engine, "fused");
    cr_expect_null(history_last_accuracy(&h, "reference", "qwen3-0.6b", "matched"));
    // The reference's rows (error 0 against itself) are appended: the fused baseline is unchanged.
    char *path = test_path_join(dir, "benchmarks.jsonl");
    HistoryRow row = {.kind = HISTORY_ACCURACY, .worst_rel_l2 = 0, .worst_norm_max = 0};
    snprintf(row.date, sizeof row.date, "2026-12-03T00:00:00Z");
    snprintf(row.commit, sizeof row.commit, "dddd");
    snprintf(row.gpu, sizeof row.gpu, "AMD EPYC");
    snprintf(row.model, sizeof row.model, "qwen3-0.6b");
    snprintf(row.engine, sizeof row.engine, "reference");
    snprintf(row.profile, sizeof row.profile, "matched");
    ErrorMessage err;
    cr_assert_eq(history_append(path, &row, 1, &err), 0, "%s", err.text);
    History again;
    cr_assert_eq(history_read(path, &again, &err), 0, "%s", err.text);
    BaselineVerdict v;
    baseline_check_accuracy(&again, "fused", "qwen3-0.6b", "matched", 1.9e-6, 1.9e-6, 10.0, &v);
    cr_expect(v.found && !v.failed, "the fused engine was compared with the reference's 0: %s", v.message);
    const HistoryRow *r = history_last_accuracy(&again, "reference", "qwen3-0.6b", "matched");
    cr_assert_not_null(r);
    cr_expect_str_eq(r->commit, "dddd");
    // A 31-character plugin name survives the round trip (the key must not be truncated).
    snprintf(row.engine, sizeof row.engine, "a-plugin-engine-of-31-character");
    cr_assert_eq(strlen(row.engine), 31);
    cr_assert_eq(history_append(path, &row, 1, &err), 0, "%s", err.text);
    history_free(&again);
    cr_assert_eq(history_read(path, &again, &err), 0, "%s", err.text);
    cr_expect_not_null(history_last_accuracy(&again, "a-plugin-engine-of-31-character", "qwen3-0.6b", "matched"));
    history_free(&again);
    history_free(&h);
    free(path);
    free(dir);
}
