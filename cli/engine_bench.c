// Decode throughput of any engine: the hooks' device timing or a wall-clocked engine_forward.
// Contract in engine_bench.h.
#include "engine_bench.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../golden/trace_run.h"
#include "../model/median.h"
#include "../model/progress.h"

// Prefill chunk of the wall-clock path: bounds the engine's activation memory whatever the context.
#define FILL_CHUNK 256
#define SEED_BASE 0x5eed0000u

const char *bench_timing_name(BenchTiming timing) {
    return timing == BENCH_TIMING_DEVICE ? "device" : "wall-clock";
}

const char *bench_timing_description(BenchTiming timing) {
    return timing == BENCH_TIMING_DEVICE
               ? "the engine's own device timer around back-to-back decode steps (KV cache filled with synthetic values)"
               : "wall clock (CLOCK_MONOTONIC) around engine_forward decode steps (KV cache filled by a real prefill of "
                 "synthetic tokens)";
}

const char *bench_cpu_name(char *out, size_t size) {
    snprintf(out, size, "CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return out;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10)) continue;
        const char *value = strchr(line, ':');
        if (!value) break;
        value += strspn(value + 1, " \t") + 1;
        size_t n = strcspn(value, "\r\n");
        if (n) snprintf(out, size, "%.*s", (int)n, value);
        break;
    }
    fclose(f);
    return out;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return 1e3 * (double)t.tv_sec + 1e-6 * (double)t.tv_nsec;
}

// The wall-clock path's cache fill: positions [from, to) through engine_forward on synthetic tokens,
// FILL_CHUNK at a time. Decode steps at a position p only rewrite p, so positions below a context
// that an earlier (larger) context filled stay valid, and a later larger context continues from there.
static int fill_by_prefill(Engine *engine, int from, int to, int vocab, ErrorMessage *err) {
    int32_t tokens[FILL_CHUNK], next;
    for (int position = from; position < to;) {
        int n = to - position < FILL_CHUNK ? to - position : FILL_CHUNK;
        random_prompt(tokens, n, vocab, SEED_BASE + (uint64_t)position);
        if (engine_forward(engine, tokens, n, position, NULL, &next, err)) return -1;
        position += n;
    }
    return 0;
}

// n_steps decode steps of `token` at `position` through engine_forward; *ms their wall-clock time.
static int time_forward_steps(Engine *engine, int32_t token, int position, int n_steps, double *ms,
                              ErrorMessage *err) {
    int32_t next;
    double start = now_ms();
    for (int s = 0; s < n_steps; s++)
        if (engine_forward(engine, &token, 1, position, NULL, &next, err)) return -1;
    *ms = now_ms() - start;
    return 0;
}

// Fills r's statistics from the elapsed milliseconds of each repeat (for `tokens` steps each).
static void summarize(BenchResult *r, double *ms, int repeat, int tokens) {
    double tok_s[repeat > 0 ? repeat : 1];
    for (int k = 0; k < repeat; k++) {
        ms[k] /= tokens;
        tok_s[k] = 1000.0 / ms[k];
    }
    r->ms_per_token_median = median_of(ms, repeat);
    r->ms_per_token_min = ms[0];
    r->ms_per_token_max = ms[repeat - 1];
    r->tok_s_median = median_of(tok_s, repeat);
    r->tok_s_min = tok_s[0];
    r->tok_s_max = tok_s[repeat - 1];
}

int bench_engine(const EngineKind *kind, const Checkpoint *ck, const BenchOptions *o, BenchResult *results,
                 ErrorMessage *err) {
    const ModelConfig *c = &ck->config;
    if (o->n_contexts < 1 || o->tokens < 1 || o->repeat < 1)
        return fail(err, "decode benchmark: need at least one context, one token and one repeat");
    int largest = 0;
    for (int i = 0; i < o->n_contexts; i++) {
        if (o->contexts[i] < 1 || o->contexts[i] >= c->max_position_embeddings)
            return fail(err, "decode benchmark: context %d outside [1, max_position_embeddings %d)", o->contexts[i],
                        c->max_position_embeddings);
        if (o->contexts[i] > largest) largest = o->contexts[i];
    }
    KvDtype kv_dtype = kind->default_kv_dtype;
    Engine *engine = engine_create(kind, ck, (EngineProfile){kv_dtype}, largest + 1, err);
    if (!engine) return -1;
    double *ms = malloc((size_t)o->repeat * sizeof *ms);
    if (!ms) {
        engine_destroy(engine);
        return fail(err, "decode benchmark: out of memory");
    }
    BenchTiming timing = engine_kind_has_bench_hooks(kind) ? BENCH_TIMING_DEVICE : BENCH_TIMING_WALL_CLOCK;
    int on_gpu = (kind->capabilities & ENGINE_NEEDS_GPU) != 0;
    double weight_bytes = (double)checkpoint_weight_bytes(ck);
    double kv_per_position = 2.0 * c->num_hidden_layers * c->num_key_value_heads * c->head_dim *
                             (kv_dtype == KV_BF16 ? 2.0 : 4.0);  // K and V
    int rc = 0, filled = 0;
    // One unit of progress per timed repeat: a long context's repeats are where the minutes go.
    progress_begin("measurement", o->n_contexts * o->repeat);
    for (int i = 0; i < o->n_contexts && rc == 0; i++) {
        BenchResult *r = &results[i];
        int context = o->contexts[i];
        int32_t token = 1 + i;
        if (token >= c->vocab_size) token = (int32_t)(i % c->vocab_size);
        memset(r, 0, sizeof *r);
        snprintf(r->engine, sizeof r->engine, "%s", kind->name);
        r->timing = timing;
        r->on_gpu = on_gpu;
        r->context = context;
        r->tokens = o->tokens;
        r->repeat = o->repeat;
        r->launches_per_token = kind->launches_per_token ? engine_launches_per_token(engine) : -1;
        double warm = 0.0;
        if (timing == BENCH_TIMING_DEVICE) {
            if (engine_bench_prepare(engine, context, token, SEED_BASE + (unsigned)i, err) ||
                engine_bench_time_decode(engine, o->tokens < 8 ? o->tokens : 8, &warm, err)) {
                rc = -1;
                break;
            }
        } else {
            if (context > filled) {
                if (fill_by_prefill(engine, filled, context, c->vocab_size, err)) { rc = -1; break; }
                filled = context;
            }
            if (time_forward_steps(engine, token, context, o->tokens < 8 ? o->tokens : 8, &warm, err)) { rc = -1; break; }
        }
        for (int k = 0; k < o->repeat; k++) {
            int step_rc = timing == BENCH_TIMING_DEVICE
                              ? engine_bench_time_decode(engine, o->tokens, &ms[k], err)
                              : time_forward_steps(engine, token, context, o->tokens, &ms[k], err);
            if (step_rc) { rc = -1; break; }
            progress_update(i * o->repeat + k + 1);
        }
        if (rc) break;
        summarize(r, ms, o->repeat, o->tokens);
        if (on_gpu) {
            r->weight_bytes = weight_bytes;
            r->kv_bytes = kv_per_position * context;
            r->bytes_per_token = r->weight_bytes + r->kv_bytes;
            r->achieved_gb_s = r->bytes_per_token * r->tok_s_median / 1e9;
            r->copy_gb_s = o->copy_gb_s;
            r->bandwidth_fraction = o->copy_gb_s > 0 ? r->achieved_gb_s / o->copy_gb_s : 0.0;
        }
        if (o->breakdown && timing == BENCH_TIMING_DEVICE && kind->bench_profile &&
            engine_bench_profile(engine, r->kernels, BENCH_MAX_KERNELS, &r->n_kernels, err)) {
            rc = -1;
            break;
        }
        progress_clear();  // the per-context result line prints on a clean line
        if (o->progress) {
            if (on_gpu)
                fprintf(o->progress, "bench: %s context %d: %.0f tok/s (%.3f ms/token, %.0f%% of copy bandwidth)\n",
                        kind->name, context, r->tok_s_median, r->ms_per_token_median, 100.0 * r->bandwidth_fraction);
            else
                fprintf(o->progress, "bench: %s context %d: %.0f tok/s (%.3f ms/token, %s)\n", kind->name, context,
                        r->tok_s_median, r->ms_per_token_median, bench_timing_name(timing));
        }
    }
    progress_end();
    free(ms);
    engine_destroy(engine);
    return rc;
}
