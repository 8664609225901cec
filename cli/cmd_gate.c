// fusecheck gate: what CI calls. The CPU part makes (or reuses) the reference goldens; then the engine
// under test (--engine, any registered engine, default fused) runs through the engine interface
// against them: compared under the matched profile (gated; KV storage-forced when the engine can be)
// and the pure fp32 profile (reported; gated only when asked), run again unforced (its own KV cache
// writes, which storage forcing hides) with its greedy tokens required to match the reference's
// wherever the top-2 margin exceeds what the tolerances can flip, benchmarked (with the cublas
// baseline beside a GPU engine), compared with a recorded baseline when given one; one report folder.
// An engine that needs no GPU runs the whole gate on a machine without one.
//
// Exit status: 0 pass, 1 accuracy failure (per tensor, tokens, or a 10x accuracy regression over the
// baseline), 2 bad input or usage, 3 too slow (below --min-tok-s, or slower than the baseline by more
// than --max-slowdown), 4 the engine needs a GPU and none is usable: the GPU part was skipped after
// the CPU part ran.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../compare/compare.h"
#include "../compare/report.h"
#include "../fused/gpu_bench.h"
#include "../golden/trace_run.h"
#include "../model/checkpoint.h"
#include "../model/file_util.h"
#include "../model/synth.h"
#include "../reference/reference.h"
#include "bench_history.h"
#include "bench_report.h"
#include "engine_bench.h"
#include "engine_registry.h"
#include "gate_tokens.h"
#include "producer_hash.h"
#include "commands.h"
#include "options.h"
#include "interrupt.h"
#include "output_path.h"
#include "plugin_engine.h"
#include "run_identity.h"
#include "../model/progress.h"

#define GATE_OK 0
#define GATE_ACCURACY_FAILED 1
#define GATE_BAD_INPUT 2
#define GATE_TOO_SLOW 3
#define GATE_NO_GPU 4
#define MAX_CONTEXTS 16
// With --baseline, an accuracy figure that grew more than this over the last recorded one fails: the
// engine's usual error is ~1e-6, so a bug can hide under the contract's 1e-3 but not under 10x.
#define ACCURACY_MAX_GROWTH 10.0

static const char USAGE[] =
    "usage: fusecheck gate (--model DIR | --preset NAME [--seed S]) [--engine NAME] [--prompt-len N] [--steps N]\n"
    "                      [--max-rel-l2 X] [--max-norm-max X] [--atol X --rtol Y] [--max-pure-rel-l2 X]\n"
    "                      [--context 128,1024,4096,16384] [--tokens N] [--repeat R] [--min-tok-s X]\n"
    "                      [--baseline FILE [--max-slowdown PCT]] [--record] [--report-dir DIR] [--cache-dir DIR]\n"
    "  CPU part: makes the reference goldens (bf16 KV = matched profile, f32 KV = pure fp32) for a\n"
    "  prompt of N seeded tokens (default 16, seed 1) and N decode steps (default 32), or reuses them\n"
    "  from the cache when the weights fingerprint, prompt, steps and the reference that made them (a hash\n"
    "  of the sources of reference/, model/ and golden/, and the version) match.\n"
    "  Engine part: the engine under test (--engine: any registered engine or plugin:PATH.so[:KEY=VALUE,...];\n"
    "  default fused), its KV cache bf16 when it can keep one, else f32, teacher-forced on the goldens; in\n"
    "  the matched profile (the golden of the engine's KV dtype) also storage-forced when the engine can be\n"
    "  (one line says when it cannot: the matched run is then its unforced run). The matched comparison is\n"
    "  gated by the tolerances (default rel_l2 and norm_max 1e-3), the pure fp32 one only reported unless\n"
    "  --max-pure-rel-l2 is given (then both its rel_l2 and norm_max must be within it). Then the engine\n"
    "  unforced (its own KV cache) on the matched golden's tokens: its per-tensor comparison is reported\n"
    "  (unforced/), and its next token must equal the reference's at every step whose top-1 minus top-2\n"
    "  logit exceeds 2 * max-norm-max * max|logits| (the largest flip the tolerances permit). Then `bench`\n"
    "  of the engine at the contexts (plus the cublas baseline beside a GPU engine). --min-tok-s is the\n"
    "  floor for the engine under test at context 1024 (or the first context when 1024 is not run).\n"
    "  An engine that needs no GPU (the reference, a CPU plugin) runs all of this on the CPU (wall-clock\n"
    "  timing, no GPU call); a GPU engine without a usable device stops after the CPU part (exit 4).\n"
    "  --baseline FILE (e.g. reports/benchmarks.jsonl): its tok/s at each context may be at most\n"
    "  --max-slowdown percent (default 5) below the last row of the same GPU (the CPU model for a CPU\n"
    "  engine), engine, model and context (exit 3), and the worst rel_l2 and norm_max of each profile at\n"
    "  most 10x the last recorded (exit 1).\n"
    "  --record appends this run's tok/s and accuracy rows to the baseline file (default\n"
    "  reports/benchmarks.jsonl) when the gate passes, and re-renders BENCHMARKS.md and the chart beside it;\n"
    "  rows carry the commit this binary was built from, or $FUSECHECK_COMMIT (a build with uncommitted changes\n"
    "  is refused before any work).\n"
    "  Reports go to --report-dir (default reports/<date>-<commit>/): index.md, accuracy.json/.md,\n"
    "  error_by_layer.svg, pure-fp32/, unforced/, throughput.json/.md. Cache: --cache-dir (default\n"
    "  $FUSECHECK_CACHE or ~/.cache/fusecheck).\n"
    "  exit: 0 pass, 1 accuracy failure, 2 bad input (an unknown engine, ...), 3 too slow, 4 GPU part\n"
    "  skipped (the engine needs a GPU and none is usable)\n";

typedef struct {
    const char *model_dir, *preset, *report_dir, *cache_dir, *baseline, *engine;
    uint64_t seed;
    long prompt_length, n_steps, tokens, repeat;
    Tolerances matched;
    double max_pure_rel_l2;  // 0: not gated
    double min_tok_s;        // 0: no floor
    double max_slowdown_pct; // with --baseline; < 0 until given
    int record;
    int contexts[MAX_CONTEXTS], n_contexts;
} GateOptions;

static int parse_contexts(const char *text, GateOptions *o, ErrorMessage *err) {
    int32_t *values;
    int n;
    if (parse_token_list("--context", text, &values, &n, err)) return -1;
    if (n > MAX_CONTEXTS) { free(values); return fail(err, "--context: at most %d contexts", MAX_CONTEXTS); }
    for (int i = 0; i < n; i++) {
        if (values[i] < 1) { free(values); return fail(err, "--context: contexts must be at least 1"); }
        o->contexts[i] = values[i];
    }
    o->n_contexts = n;
    free(values);
    return 0;
}

static int parse_options(int argc, char **argv, GateOptions *o, ErrorMessage *err) {
    const char *value;
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (!strcmp(flag, "--record")) { o->record = 1; continue; }
        if (!strcmp(flag, "--quiet")) { progress_set_quiet(1); continue; }
        if (option_value(argc, argv, &i, &value, err)) return -1;
        int rc = 0;
        if (!strcmp(flag, "--model")) o->model_dir = value;
        else if (!strcmp(flag, "--preset")) o->preset = value;
        else if (!strcmp(flag, "--engine")) o->engine = value;
        else if (!strcmp(flag, "--report-dir")) o->report_dir = value;
        else if (!strcmp(flag, "--cache-dir")) o->cache_dir = value;
        else if (!strcmp(flag, "--baseline")) o->baseline = value;
        else if (!strcmp(flag, "--max-slowdown")) rc = parse_double_option(flag, value, 0, &o->max_slowdown_pct, err);
        else if (!strcmp(flag, "--seed")) rc = parse_u64_option(flag, value, &o->seed, err);
        else if (!strcmp(flag, "--prompt-len")) rc = parse_int_option(flag, value, 1, 1 << 16, &o->prompt_length, err);
        else if (!strcmp(flag, "--steps")) {
            // Step 0 is the prefill: without a decode step no decode kernel (nor its cache write) is gated.
            rc = parse_int_option(flag, value, 1, 1 << 16, &o->n_steps, err);
            if (rc) snprintf(err->text, sizeof err->text, "--steps: '%s': give at least 1 decode step (0 would gate no decode kernel)", value);
        }
        else if (!strcmp(flag, "--tokens")) rc = parse_int_option(flag, value, 1, 1 << 20, &o->tokens, err);
        else if (!strcmp(flag, "--repeat")) rc = parse_int_option(flag, value, 1, 1000, &o->repeat, err);
        else if (!strcmp(flag, "--context")) rc = parse_contexts(value, o, err);
        else if (!strcmp(flag, "--max-rel-l2")) rc = parse_double_option(flag, value, 1, &o->matched.max_rel_l2, err);
        else if (!strcmp(flag, "--max-norm-max")) rc = parse_double_option(flag, value, 1, &o->matched.max_norm_max, err);
        else if (!strcmp(flag, "--atol")) { rc = parse_double_option(flag, value, 0, &o->matched.atol, err); o->matched.check_allclose = 1; }
        else if (!strcmp(flag, "--rtol")) { rc = parse_double_option(flag, value, 0, &o->matched.rtol, err); o->matched.check_allclose = 1; }
        else if (!strcmp(flag, "--max-pure-rel-l2")) rc = parse_double_option(flag, value, 1, &o->max_pure_rel_l2, err);
        else if (!strcmp(flag, "--min-tok-s")) rc = parse_double_option(flag, value, 0, &o->min_tok_s, err);
        else rc = fail(err, "unknown flag '%s'", flag);
        if (rc) return -1;
    }
    if (!o->model_dir == !o->preset) return fail(err, "give exactly one of --model DIR and --preset NAME");
    if (o->max_slowdown_pct >= 0 && !o->baseline) return fail(err, "--max-slowdown needs --baseline FILE");
    if (o->max_slowdown_pct < 0) o->max_slowdown_pct = 5;
    return 0;
}

// The preset's checkpoint in the cache, synthesized on first use (and again if it does not open).
static int cached_preset_model(const GateOptions *o, char *dir, size_t size, ErrorMessage *err) {
    ModelConfig config;
    if (synth_preset(o->preset, &config, err)) return -1;
    snprintf(dir, size, "%s/models/%s-seed%llu", o->cache_dir, o->preset, (unsigned long long)o->seed);
    Checkpoint probe = {0};
    ErrorMessage ignored;
    if (checkpoint_open(dir, &probe, &ignored) == 0) {
        checkpoint_close(&probe);
        return 0;
    }
    fprintf(stderr, "fusecheck gate: synthesizing %s (seed %llu) into %s\n", o->preset, (unsigned long long)o->seed, dir);
    if (make_directories(dir, err)) return -1;
    return synth_write(&config, o->seed, dir, err);
}

// The reference golden for this prompt and precision, reused from the cache when one of the same
// weights, prompt, length and producer is there; made (and cached) otherwise. The producer hash
// (cli/producer_hash.cmake) is in the file name: a golden made by another reference, model loader or
// trace writer (a bug fixed since, say) is never reused.
static int cached_golden(const GateOptions *o, const Checkpoint *checkpoint, const int32_t *prompt, KvDtype kv,
                         char *path, size_t size, ErrorMessage *err) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/goldens", o->cache_dir);
    if (make_directories(dir, err)) return -1;
    snprintf(path, size, "%s/%s-prompt%ld-seed1-steps%ld-kv-%s-ref%s.h5", dir, checkpoint->fingerprint,
             o->prompt_length, o->n_steps, kv_dtype_name(kv), FUSECHECK_PRODUCER_HASH);
    ErrorMessage ignored;
    TraceReader *existing = trace_open(path, &ignored);
    if (existing) {
        int n_tokens;
        const int32_t *tokens = trace_tokens(existing, &n_tokens);
        int same = !strcmp(trace_meta(existing)->weights_fingerprint, checkpoint->fingerprint) &&
                   trace_meta(existing)->prompt_length == o->prompt_length &&
                   trace_n_steps(existing) == o->n_steps + 1 &&
                   !memcmp(tokens, prompt, (size_t)o->prompt_length * sizeof *prompt);
        trace_close(existing);
        if (same) {
            printf("golden (kv %s): reused %s\n", kv_dtype_name(kv), path);
            return 0;
        }
    }
    double start = seconds_now();
    if (interrupt_cleanup_on_signal("gate", path, err)) return -1;
    if (reference_write_golden(checkpoint, kv, prompt, (int)o->prompt_length, (int)o->n_steps, path, NULL, err))
        return -1;
    printf("golden (kv %s): made %s in %.1f s\n", kv_dtype_name(kv), path, seconds_now() - start);
    return 0;
}

// Runs the engine under test against `golden_path` (storage-forced when `force`, the engine can be
// and both KV caches are bf16: engine_write_trace) into trace_path and compares; the report goes to
// report_dir. `engine` NULL: trace_path already holds this run (made by an earlier call against the
// same golden), it is only compared again. `note` (may be "") follows the title.
static int accuracy_part(const Checkpoint *checkpoint, Engine *engine, const char *golden_path, const char *trace_path,
                         int force, const Tolerances *tol, const char *report_dir, const char *title, const char *note,
                         CompareResult *result, ErrorMessage *err) {
    int forced = 0;
    if (engine) {
        TraceReader *golden = trace_open(golden_path, err);
        if (!golden) return -1;
        int rc = interrupt_cleanup_on_signal("gate", trace_path, err);
        if (!rc) rc = engine_write_trace(engine, checkpoint, golden, force, trace_path, &forced, err);
        trace_close(golden);
        if (rc) return -1;
    }
    if (make_directories(report_dir, err)) return -1;
    if (compare_traces(trace_path, golden_path, &(CompareOptions){.tol = *tol, .first_step = COMPARE_ALL_STEPS, .last_step = COMPARE_ALL_STEPS}, result, err)) return -1;
    printf("\n== %s%s%s\n", title, forced ? " (KV storage-forced from the golden)" : " (the engine's own KV cache)", note);
    report_print_table(stdout, result, 0);
    return report_write(result, report_dir, err);
}

// The worst rel_l2 and norm_max over every compared tensor (tokens and missing tensors have none).
// NaN or Inf in the engine's output makes the figure +inf, so a baseline comparison cannot pass it.
static void worst_figures(const CompareResult *r, double *rel_l2, double *norm_max) {
    *rel_l2 = *norm_max = 0;
    for (size_t i = 0; i < r->n_results; i++) {
        const TensorResult *t = &r->results[i];
        if (t->is_token || t->missing || t->shape_mismatch) continue;
        const TensorMetrics *m = &t->metrics;
        int non_finite = m->nan_f || m->inf_f;
        double rel = non_finite || isnan(m->rel_l2) ? INFINITY : m->rel_l2;
        double nm = non_finite || isnan(m->norm_max) ? INFINITY : m->norm_max;
        if (rel > *rel_l2) *rel_l2 = rel;
        if (nm > *norm_max) *norm_max = nm;
    }
}

// The model's name in history rows: the preset, else the checkpoint directory's last component.
static void model_key(const GateOptions *o, char *out, size_t size) {
    if (o->preset) { snprintf(out, size, "%s", o->preset); return; }
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", o->model_dir);
    size_t n = strlen(copy);
    while (n > 1 && copy[n - 1] == '/') copy[--n] = '\0';
    const char *base = strrchr(copy, '/');
    snprintf(out, size, "%s", base && base[1] ? base + 1 : copy);
}

// One gate run: its options, what each step found, and what the last step to fail said.
typedef struct {
    GateOptions o;
    char cache[1024];
    History history;  // the baseline's rows (empty without --baseline)
    char history_path[1024];
    char commit[64], date[16], report_dir[1024], model_dir[1024], model_name[256];
    Checkpoint checkpoint;
    int32_t *prompt;
    char golden_bf16[1200], golden_f32[1200];
    const EngineKind *kind;  // the engine under test (--engine)
    KvDtype kv;              // its KV cache in the gate: bf16 when it can keep one, else f32
    int can_force;           // the matched run is storage-forced: ENGINE_CAN_FORCE_KV and a bf16 cache
    char force_note[400];    // one line when the matched run is not storage-forced ("" when it is)
    Engine *engine;
    CompareResult matched, pure, unforced;
    int have_matched, have_pure, have_unforced;
    TokenCheck tokens;
    int on_gpu;              // the engine under test needs a GPU (so the GPU part, its name, its copy bandwidth)
    char gpu_name[128], cpu_name[256];
    const char *machine;     // the throughput rows' machine: gpu_name for a GPU engine, else cpu_name
    double copy_gb_s;
    BenchResult *results;  // the engine under test at each context, then cublas at each context (GPU only)
    int n_results;
    double worst_rel_l2[3], worst_norm_max[3];  // per profile, in PROFILES order
    int speed_regressed, accuracy_regressed;
    char baseline_lines[4096];
    char body[16384];
    ErrorMessage err;
} Gate;

static const char *const PROFILES[3] = {"matched", "pure-fp32", "unforced"};

static void write_index(const Gate *g, const char *verdict) {
    char path[1200];
    snprintf(path, sizeof path, "%s/index.md", g->report_dir);
    AtomicFile f;
    ErrorMessage err;
    if (atomic_file_open(&f, path, &err) == 0) {
        fprintf(f.file, "# fusecheck gate: %s\n\n- date: %s\n- commit: %s\n- model: %s (weights %s)\n\n%s", verdict,
                g->date, g->commit, g->model_name, g->checkpoint.fingerprint, g->body);
        if (atomic_file_commit(&f, &err) == 0) return;
    }
    fprintf(stderr, "fusecheck gate: %s\n", err.text);
}

// ---- setup: options, the baseline, where things go ----

static int help_requested(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

// The engine under test, looked up as given (engine_find resolves every name the registry knows), and
// how the gate runs it: its KV dtype (bf16 when it can keep one: the fused engine's storage point),
// whether the matched run can be storage-forced, and if not the one line that says so.
static int gate_choose_engine(Gate *g) {
    ErrorMessage why;
    interrupt_set_command("gate");  // names the command if an engine plugin crashes
    if (!(g->kind = engine_find(g->o.engine, &why))) {
        // A plugin's own line says what is wrong with it (missing symbol, ABI version, ...).
        char known[256];
        if (plugin_spec_is(g->o.engine)) fprintf(stderr, "fusecheck gate: %s\n", why.text);
        else fprintf(stderr, "fusecheck gate: --engine: '%s' is not one of %s or plugin:PATH.so\n", g->o.engine,
                     engine_names(known, sizeof known, ", "));
        return -1;
    }
    unsigned caps = g->kind->capabilities;
    if (!(caps & (ENGINE_KV_BF16 | ENGINE_KV_F32))) {
        fprintf(stderr, "fusecheck gate: --engine %s: the engine declares neither ENGINE_KV_BF16 nor ENGINE_KV_F32\n",
                g->kind->name);
        return -1;
    }
    g->kv = caps & ENGINE_KV_BF16 ? KV_BF16 : KV_F32;
    g->on_gpu = (caps & ENGINE_NEEDS_GPU) != 0;
    g->can_force = (caps & ENGINE_CAN_FORCE_KV) && g->kind->force_kv && g->kv == KV_BF16;
    if (g->kv == KV_F32)
        snprintf(g->force_note, sizeof g->force_note,
                 "engine %s keeps its KV cache in f32 (no ENGINE_KV_BF16): its matched profile is the f32 golden, with no "
                 "bf16 storage point to force, so the matched run is unforced and is also the unforced run",
                 g->kind->name);
    else if (!g->can_force)
        snprintf(g->force_note, sizeof g->force_note,
                 "engine %s cannot storage-force its KV cache (no ENGINE_CAN_FORCE_KV): the matched comparison runs "
                 "unforced, on its own KV cache, and is also the unforced run",
                 g->kind->name);
    return 0;
}

static int gate_parse(Gate *g, int argc, char **argv) {
    GateOptions *o = &g->o;
    o->engine = "fused";
    o->prompt_length = 16;
    o->n_steps = 32;
    o->tokens = 64;
    o->repeat = 5;
    o->max_slowdown_pct = -1;
    o->matched = tolerances_default();
    const int default_contexts[] = {128, 1024, 4096, 16384};
    memcpy(o->contexts, default_contexts, sizeof default_contexts);
    o->n_contexts = 4;
    if (parse_options(argc, argv, o, &g->err)) {
        fprintf(stderr, "fusecheck gate: %s\n", g->err.text);
        return -1;
    }
    if (!o->cache_dir) {
        const char *env = getenv("FUSECHECK_CACHE"), *home = getenv("HOME");
        if (env && *env) snprintf(g->cache, sizeof g->cache, "%s", env);
        else snprintf(g->cache, sizeof g->cache, "%s/.cache/fusecheck", home && *home ? home : "/tmp");
        o->cache_dir = g->cache;
    }
    return gate_choose_engine(g);
}

// The baseline is read before any work: a history that cannot be read is bad input now, not after
// minutes of work. Recording needs a build of a clean commit for the same reason `bench --record` does.
static int gate_read_baseline(Gate *g) {
    snprintf(g->history_path, sizeof g->history_path, "%s", g->o.baseline ? g->o.baseline : "reports/benchmarks.jsonl");
    if (g->o.baseline && history_read(g->o.baseline, &g->history, &g->err)) {
        fprintf(stderr, "fusecheck gate: --baseline %s\n", g->err.text);
        return -1;
    }
    char refusal[512];
    if (g->o.record && run_record_refusal(refusal, sizeof refusal)) {
        fprintf(stderr, "fusecheck gate: --record: %s\n", refusal);
        return -1;
    }
    return 0;
}

static int gate_identify(Gate *g) {
    run_commit(g->commit, sizeof g->commit);
    run_date(g->date, sizeof g->date);
    model_key(&g->o, g->model_name, sizeof g->model_name);
    if (g->o.report_dir) snprintf(g->report_dir, sizeof g->report_dir, "%s", g->o.report_dir);
    else snprintf(g->report_dir, sizeof g->report_dir, "reports/%s-%s", g->date, g->commit);
    if (output_dir_check("--report-dir", g->report_dir, &g->err) ||
        output_dir_check("--cache-dir", g->o.cache_dir, &g->err)) {
        fprintf(stderr, "fusecheck gate: %s\n", g->err.text);
        return -1;
    }
    return 0;
}

// ---- CPU part: the model and its goldens ----

static int gate_cpu_part(Gate *g) {
    if (!g->o.preset) snprintf(g->model_dir, sizeof g->model_dir, "%s", g->o.model_dir);
    else if (cached_preset_model(&g->o, g->model_dir, sizeof g->model_dir, &g->err)) return -1;
    if (checkpoint_open(g->model_dir, &g->checkpoint, &g->err)) return -1;
    g->prompt = malloc((size_t)g->o.prompt_length * sizeof *g->prompt);
    if (!g->prompt) return fail(&g->err, "out of memory");
    random_prompt(g->prompt, (int)g->o.prompt_length, g->checkpoint.config.vocab_size, 1);
    if (make_directories(g->report_dir, &g->err)) return -1;
    printf("gate: model %s (weights %s), %ld prompt tokens + %ld decode steps, reports in %s/\n", g->model_name,
           g->checkpoint.fingerprint, g->o.prompt_length, g->o.n_steps, g->report_dir);
    if (cached_golden(&g->o, &g->checkpoint, g->prompt, KV_BF16, g->golden_bf16, sizeof g->golden_bf16, &g->err) ||
        cached_golden(&g->o, &g->checkpoint, g->prompt, KV_F32, g->golden_f32, sizeof g->golden_f32, &g->err))
        return -1;
    return 0;
}

static void gate_skip_gpu(Gate *g, const ErrorMessage *no_gpu) {
    printf("gate: GPU part skipped: %s\n", no_gpu->text);
    snprintf(g->body, sizeof g->body,
             "The CPU part ran: reference goldens (matched bf16 KV and pure fp32) are in `%s`.\n\n"
             "**GPU part skipped**: %s.\n",
             g->o.cache_dir, no_gpu->text);
    write_index(g, "GPU part skipped");
}

// ---- engine part (the GPU part for a GPU engine): accuracy ----

// A file name's part for an engine name: what is not [A-Za-z0-9._-] becomes '_' (a plugin's name may
// hold a path). "fused" stays "fused", so the fused gate's cached traces keep their names.
static void file_safe(const char *name, char *out, size_t size) {
    size_t n = 0;
    for (; name[n] && n + 1 < size; n++) {
        char c = name[n];
        int safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                   c == '-';
        out[n] = safe ? c : '_';
    }
    out[n] = '\0';
}

static int gate_accuracy_part(Gate *g) {
    const GateOptions *o = &g->o;
    char trace_path[1200], unforced_trace[1200], pure_dir[1100], unforced_dir[1100], name[128];
    file_safe(g->kind->name, name, sizeof name);
    snprintf(trace_path, sizeof trace_path, "%s/goldens/%s-%s-latest.h5", o->cache_dir, g->checkpoint.fingerprint, name);
    snprintf(unforced_trace, sizeof unforced_trace, "%s/goldens/%s-%s-unforced-latest.h5", o->cache_dir,
             g->checkpoint.fingerprint, name);
    snprintf(pure_dir, sizeof pure_dir, "%s/pure-fp32", g->report_dir);
    snprintf(unforced_dir, sizeof unforced_dir, "%s/unforced", g->report_dir);
    const char *matched_golden = g->kv == KV_BF16 ? g->golden_bf16 : g->golden_f32;
    g->engine = engine_create(g->kind, &g->checkpoint, (EngineProfile){g->kv}, (int)(o->prompt_length + o->n_steps), &g->err);
    if (!g->engine) return -1;
    // Not storage-forced, the matched run is the unforced run: it goes to the unforced trace, and the
    // unforced check below compares that trace instead of running the engine a second time.
    if (g->force_note[0]) printf("\ngate: %s\n", g->force_note);
    const char *matched_trace = g->can_force ? trace_path : unforced_trace;
    if (accuracy_part(&g->checkpoint, g->engine, matched_golden, matched_trace, 1, &o->matched, g->report_dir,
                      "accuracy, matched profile (gated)", "", &g->matched, &g->err))
        return -1;
    g->have_matched = 1;
    Tolerances pure_tol = tolerances_default();
    if (o->max_pure_rel_l2 > 0) pure_tol.max_rel_l2 = pure_tol.max_norm_max = o->max_pure_rel_l2;
    // The engine as gated (its bf16 cache, for the fused engine) against the pure fp32 reference: the
    // cost of its storage points. An engine with an f32 cache was already run against that golden.
    int pure_is_matched = g->kv == KV_F32;
    if (accuracy_part(&g->checkpoint, pure_is_matched ? NULL : g->engine, g->golden_f32,
                      pure_is_matched ? matched_trace : trace_path, 1, &pure_tol, pure_dir,
                      o->max_pure_rel_l2 > 0 ? "accuracy, pure fp32 reference (gated by --max-pure-rel-l2)"
                                             : "accuracy, pure fp32 reference (reported, not gated)",
                      pure_is_matched ? ": the matched run, compared again" : "", &g->pure, &g->err))
        return -1;
    g->have_pure = 1;
    // Unforced: the engine's own cache writes reach its attention. Its tensors are reported, not gated
    // (a bf16 rounding flip of one cached value legitimately moves some of them near 1e-3); its tokens
    // are gated by the flip bound.
    if (accuracy_part(&g->checkpoint, g->can_force ? g->engine : NULL, matched_golden, unforced_trace, 0, &o->matched,
                      unforced_dir, "accuracy, matched profile unforced (tensors reported; tokens gated)",
                      g->can_force ? "" : ": the matched run, compared again", &g->unforced, &g->err))
        return -1;
    g->have_unforced = 1;
    if (gate_check_tokens(unforced_trace, matched_golden, o->matched.max_norm_max, &g->tokens, &g->err)) return -1;
    printf("\n== greedy tokens, unforced engine against the matched reference: %s%s\n",
           g->tokens.failed ? "FAIL: " : "", g->tokens.message);
    engine_destroy(g->engine);  // free the device (or memory) for the benchmark's own engines
    g->engine = NULL;
    return 0;
}

// ---- engine part: throughput ----

static int gate_write_throughput(Gate *g, const BenchContext *context) {
    char *json = bench_json_text(context, g->results, g->n_results);
    if (!json) return fail(&g->err, "out of memory");
    char path[1200];
    snprintf(path, sizeof path, "%s/throughput.json", g->report_dir);
    int rc = write_file_atomically(path, json, strlen(json), &g->err);
    free(json);
    if (rc) return -1;
    snprintf(path, sizeof path, "%s/throughput.md", g->report_dir);
    AtomicFile markdown;
    if (atomic_file_open(&markdown, path, &g->err)) return -1;
    fprintf(markdown.file, "# Decode throughput\n\n");
    bench_write_markdown(markdown.file, context, g->results, g->n_results);
    return atomic_file_commit(&markdown, &g->err);
}

// The engine under test at each context; beside a GPU engine (other than cublas itself), the cublas
// baseline too. No GPU call for an engine that needs no GPU.
static int gate_throughput_part(Gate *g) {
    const GateOptions *o = &g->o;
    bench_cpu_name(g->cpu_name, sizeof g->cpu_name);
    const EngineKind *baseline = NULL;
    if (g->on_gpu) {
        if (bench_gpu_name(g->gpu_name, sizeof g->gpu_name, &g->err) || bench_copy_bandwidth(&g->copy_gb_s, &g->err))
            return -1;
        ErrorMessage ignored;
        baseline = engine_find("cublas", &ignored);
        if (baseline == g->kind) baseline = NULL;
    }
    g->machine = g->on_gpu ? g->gpu_name : g->cpu_name;
    g->results = calloc(2 * (size_t)o->n_contexts, sizeof *g->results);
    if (!g->results) return fail(&g->err, "out of memory");
    BenchOptions options = {o->contexts, o->n_contexts, (int)o->tokens, (int)o->repeat, g->copy_gb_s, 1, stderr};
    if (bench_engine(g->kind, &g->checkpoint, &options, g->results, &g->err)) return -1;
    g->n_results = o->n_contexts;
    options.breakdown = 0;
    if (baseline) {
        if (bench_engine(baseline, &g->checkpoint, &options, g->results + o->n_contexts, &g->err)) return -1;
        g->n_results += o->n_contexts;
    }
    BenchContext context = {g->on_gpu ? g->gpu_name : NULL, g->cpu_name, g->model_name, g->checkpoint.fingerprint,
                            g->commit, g->date, g->copy_gb_s};
    printf("\n== throughput\n");
    bench_write_markdown(stdout, &context, g->results, g->n_results);
    return gate_write_throughput(g, &context);
}

// ---- the baseline: regressions against the last recorded rows ----

static void baseline_line(Gate *g, const BaselineVerdict *v, size_t *used) {
    printf("%s%s\n", v->failed ? "FAIL: " : "", v->message);
    if (*used < sizeof g->baseline_lines)
        *used += snprintf(g->baseline_lines + *used, sizeof g->baseline_lines - *used, "- %s%s\n",
                          v->failed ? "**FAIL**: " : "", v->message);
}

static void gate_check_baseline(Gate *g) {
    const CompareResult *profile_results[3] = {&g->matched, &g->pure, &g->unforced};
    for (int p = 0; p < 3; p++) worst_figures(profile_results[p], &g->worst_rel_l2[p], &g->worst_norm_max[p]);
    if (!g->o.baseline) return;
    printf("\n== baseline %s\n", g->o.baseline);
    size_t used = 0;
    BaselineVerdict v;
    for (int i = 0; i < g->o.n_contexts; i++) {
        baseline_check_speed(&g->history, g->machine, g->kind->name, g->model_name, g->results[i].context,
                             g->results[i].tok_s_median, g->o.max_slowdown_pct, &v);
        g->speed_regressed |= v.failed;
        baseline_line(g, &v, &used);
    }
    for (int p = 0; p < 3; p++) {
        baseline_check_accuracy(&g->history, g->kind->name, g->model_name, PROFILES[p], g->worst_rel_l2[p], g->worst_norm_max[p],
                                ACCURACY_MAX_GROWTH, &v);
        g->accuracy_regressed |= v.failed;
        baseline_line(g, &v, &used);
    }
}

// ---- the verdict ----

// The row the --min-tok-s floor applies to: the engine under test at context 1024, else at the first context.
static const BenchResult *floor_row(const Gate *g) {
    const BenchResult *row = &g->results[0];
    for (int i = 0; i < g->o.n_contexts; i++)
        if (g->results[i].context == 1024) row = &g->results[i];
    return row;
}

// index.md's table: one row per check, then the baseline's lines when there is one.
static void gate_summary(Gate *g, const BenchResult *floor) {
    const GateOptions *o = &g->o;
    const CompareResult *matched = &g->matched, *pure = &g->pure, *unforced = &g->unforced;
    const char *name = g->kind->name;
    char first_failure[256] = "none", unforced_failure[256] = "none", speed[512];
    if (matched->first_failure >= 0)
        compare_describe_location(&matched->results[matched->first_failure], first_failure, sizeof first_failure);
    if (unforced->first_failure >= 0)
        compare_describe_location(&unforced->results[unforced->first_failure], unforced_failure, sizeof unforced_failure);
    double speedup = bench_speedup(g->results, g->n_results, name, floor->context);
    int at = snprintf(speed, sizeof speed, "%.1f tok/s", floor->tok_s_median);
    if (floor->on_gpu) at += snprintf(speed + at, sizeof speed - at, ", %.1f%% of copy bandwidth", 100 * floor->bandwidth_fraction);
    else at += snprintf(speed + at, sizeof speed - at, " on %s (%s timing; bandwidth n/a)", g->cpu_name,
                        bench_timing_name(floor->timing));
    if (speedup > 0) snprintf(speed + at, sizeof speed - at, ", %.2fx cublas", speedup);
    int n = 0;
    if (g->force_note[0]) n = snprintf(g->body, sizeof g->body, "Note: %s.\n\n", g->force_note);
    n += snprintf(g->body + n, sizeof g->body - n,
             "| check | result |\n| --- | --- |\n"
             "| matched profile (%s vs reference with %s KV, %s), rel_l2 <= %.0e and norm_max <= %.0e | %s: %zu tensors, %zu failures, first failure %s, worst rel_l2 %.3g, norm_max %.3g ([accuracy.md](accuracy.md), [accuracy.json](accuracy.json), [plot](error_by_layer.svg)) |\n"
             "| matched profile unforced (the engine's own KV cache): tensors reported | %zu tensors, %zu beyond the tolerance (first %s), worst rel_l2 %.3g, norm_max %.3g ([unforced/accuracy.md](unforced/accuracy.md)) |\n"
             "| unforced greedy tokens equal the reference's beyond the flip bound (2 x norm_max tolerance x max abs logit) | %s: %s |\n"
             "| pure fp32 reference (%s) | %s: %zu tensors, %zu beyond the tolerance, worst rel_l2 %.3g ([pure-fp32/accuracy.md](pure-fp32/accuracy.md)) |\n"
             "| %s tok/s at context %d (floor %.0f) | %s ([throughput.md](throughput.md), [throughput.json](throughput.json)) |\n",
             name, kv_dtype_name(g->kv), g->can_force ? "KV storage-forced" : "not storage-forced",
             o->matched.max_rel_l2, o->matched.max_norm_max, matched->pass ? "pass" : "FAIL", matched->n_results,
             matched->n_failures, first_failure, g->worst_rel_l2[0], g->worst_norm_max[0], unforced->n_results,
             unforced->n_failures, unforced_failure, g->worst_rel_l2[2], g->worst_norm_max[2],
             g->tokens.failed ? "FAIL" : "pass", g->tokens.message, o->max_pure_rel_l2 > 0 ? "gated" : "reported",
             pure->pass ? "within" : (o->max_pure_rel_l2 > 0 ? "FAIL" : "reported"), pure->n_results, pure->n_failures,
             g->worst_rel_l2[1], name, floor->context, o->min_tok_s, speed);
    if (o->baseline && n > 0 && (size_t)n < sizeof g->body)
        snprintf(g->body + n, sizeof g->body - n,
                 "\n## Against the baseline `%s` (tok/s: at most %.1f%% slower; accuracy: at most %.0fx)\n\n%s",
                 o->baseline, o->max_slowdown_pct, ACCURACY_MAX_GROWTH, g->baseline_lines);
}

static int gate_verdict(Gate *g) {
    const GateOptions *o = &g->o;
    const BenchResult *floor = floor_row(g);
    int accurate = g->matched.pass && (o->max_pure_rel_l2 <= 0 || g->pure.pass) && !g->tokens.failed &&
                   !g->accuracy_regressed;
    int fast_enough = (o->min_tok_s <= 0 || floor->tok_s_median >= o->min_tok_s) && !g->speed_regressed;
    int status = !accurate ? GATE_ACCURACY_FAILED : !fast_enough ? GATE_TOO_SLOW : GATE_OK;
    const char *verdict = status == GATE_OK ? "PASS" : status == GATE_ACCURACY_FAILED ? "FAIL (accuracy)" : "FAIL (speed)";
    gate_summary(g, floor);
    write_index(g, verdict);
    if (g->tokens.failed) fprintf(stderr, "fusecheck gate: unforced greedy tokens: %s\n", g->tokens.message);
    printf("\ngate: %s; report: %s/index.md\n", verdict, g->report_dir);
    return status;
}

// ---- recording: only a passing run becomes a baseline ----

// This run's history rows: tok/s per engine and context, then the worst figures per profile.
static int gate_history_rows(const Gate *g, HistoryRow *rows) {
    int n_rows = 0;
    char timestamp[32];
    run_timestamp(timestamp, sizeof timestamp);
    for (int i = 0; i < g->n_results; i++, n_rows++) {
        HistoryRow *r = &rows[n_rows];
        memset(r, 0, sizeof *r);
        r->kind = HISTORY_THROUGHPUT;
        snprintf(r->engine, sizeof r->engine, "%s", g->results[i].engine);
        snprintf(r->gpu, sizeof r->gpu, "%s", g->results[i].on_gpu ? g->gpu_name : g->cpu_name);
        r->context = g->results[i].context;
        r->tok_s = g->results[i].tok_s_median;
        r->ms_per_token = g->results[i].ms_per_token_median;
        r->bandwidth_fraction = g->results[i].bandwidth_fraction;
    }
    for (int p = 0; p < 3; p++, n_rows++) {
        HistoryRow *r = &rows[n_rows];
        memset(r, 0, sizeof *r);
        r->kind = HISTORY_ACCURACY;
        snprintf(r->engine, sizeof r->engine, "%s", g->kind->name);
        snprintf(r->profile, sizeof r->profile, "%s", PROFILES[p]);
        r->worst_rel_l2 = g->worst_rel_l2[p];
        r->worst_norm_max = g->worst_norm_max[p];
    }
    for (int i = 0; i < n_rows; i++) {
        snprintf(rows[i].date, sizeof rows[i].date, "%s", timestamp);
        snprintf(rows[i].commit, sizeof rows[i].commit, "%s", g->commit);
        if (rows[i].kind == HISTORY_ACCURACY) snprintf(rows[i].gpu, sizeof rows[i].gpu, "%s", g->machine);
        snprintf(rows[i].model, sizeof rows[i].model, "%s", g->model_name);
    }
    return n_rows;
}

static int gate_record(Gate *g, int status) {
    if (status != GATE_OK) {
        printf("gate: not recorded (a failing run is no baseline)\n");
        return status;
    }
    HistoryRow rows[2 * MAX_CONTEXTS + 3];
    int n_rows = gate_history_rows(g, rows);
    if (history_append(g->history_path, rows, n_rows, &g->err) || history_render(g->history_path, &g->err))
        return GATE_BAD_INPUT;
    printf("gate: recorded %d rows in %s\n", n_rows, g->history_path);
    return GATE_OK;
}

// ---- the steps in order ----

// Everything after setup: returns the exit status; with GATE_BAD_INPUT, g->err says why.
static int gate_run(Gate *g) {
    if (gate_cpu_part(g)) return GATE_BAD_INPUT;
    ErrorMessage unavailable;
    if (g->kind->available && g->kind->available(&unavailable)) {
        // Exit 4 is for a GPU engine without a device; an engine that needs none and cannot run is bad input.
        if (!g->on_gpu) return fail(&g->err, "engine %s cannot run here: %s", g->kind->name, unavailable.text);
        gate_skip_gpu(g, &unavailable);
        return GATE_NO_GPU;
    }
    if (gate_accuracy_part(g) || gate_throughput_part(g)) return GATE_BAD_INPUT;
    gate_check_baseline(g);
    int status = gate_verdict(g);
    return g->o.record ? gate_record(g, status) : status;
}

static void gate_free(Gate *g) {
    if (g->have_matched) compare_result_free(&g->matched);
    if (g->have_pure) compare_result_free(&g->pure);
    if (g->have_unforced) compare_result_free(&g->unforced);
    engine_destroy(g->engine);
    history_free(&g->history);
    free(g->results);
    free(g->prompt);
    checkpoint_close(&g->checkpoint);
}

int cmd_gate(int argc, char **argv) {
    progress_set_command("gate");
    if (help_requested(argc, argv)) {
        fputs(USAGE, stdout);
        return 0;
    }
    Gate g;
    memset(&g, 0, sizeof g);
    int status = GATE_BAD_INPUT;
    if (gate_parse(&g, argc, argv) == 0 && gate_read_baseline(&g) == 0 && gate_identify(&g) == 0) {
        status = gate_run(&g);
        if (status == GATE_BAD_INPUT) fprintf(stderr, "fusecheck gate: %s\n", g.err.text);
    }
    gate_free(&g);
    return status;
}
