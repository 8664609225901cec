// The dataflow engine's decode state (contract in dataflow_decode.h).
#include "dataflow_decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cuda_check.h"


struct DataflowDecode {
    DataflowProgram program;
    DataflowParams params;
    DataflowLayer *d_layers;
    DataflowInstruction *d_instructions;
    int *d_offsets;
    unsigned *d_counters, *d_epoch;
    unsigned long long *d_tagged;  // every layer's exchanged values (DataflowLayer's *_tagged)
    unsigned long long *d_partial_o, *d_partial_ml;  // tagged (dataflow_kernel.h)
    size_t tagged_bytes, partial_o_bytes, partial_ml_bytes;
    unsigned next_epoch;   // the epoch the next launch runs under, as the host counts launches
    unsigned epoch_limit;  // the epochs in use stay in [1, epoch_limit): DataflowBuffers.epoch_limit
    float *d_best_value;
    int *d_best_index, *d_control;
    int *h_control;  // pinned [3]: the last control values uploaded, then the first epoch (1)
    unsigned long long *d_timeline;
};

#define DECODE_ALLOC(ptr, bytes, what)                                                                        \
    do {                                                                                                      \
        cudaError_t status_ = cudaMalloc((void **)&(ptr), (bytes));                                          \
        if (status_ != cudaSuccess) {                                                                         \
            fail(err, "dataflow engine: cudaMalloc of %zu bytes for %s: %s", (size_t)(bytes), what,             \
                 cudaGetErrorString(status_));                                                                \
            goto fail_cleanup;                                                                                \
        }                                                                                                     \
    } while (0)

DataflowDecode *dataflow_decode_create(const DataflowBuffers *b, ErrorMessage *err) {
    DataflowLayer *layers = NULL;  // b->layers with the tagged buffers filled in
    DataflowDecode *d = calloc(1, sizeof *d);
    if (!d) {
        fail(err, "dataflow engine: out of memory");
        return NULL;
    }
    int device, n_sms;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&n_sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
        fail(err, "dataflow engine: cannot query the device's multiprocessor count");
        free(d);
        return NULL;
    }
    DataflowShape shape = {b->hidden, b->intermediate, b->n_heads, b->n_kv_heads, b->head_dim, b->vocab,
                           b->n_layers, b->max_context, n_sms, b->tile_kb * 1024, b->splits};
    if (dataflow_program_build(&shape, &d->program, err)) {
        dataflow_program_free(&d->program);
        free(d);
        return NULL;
    }
    d->program.page_ops = b->page_ops;
    if (b->epoch_limit < 0 || b->epoch_limit == 1 || b->epoch_limit > DATAFLOW_EPOCH_LIMIT) {
        fail(err, "dataflow engine: epoch limit %d outside [2, %d]", b->epoch_limit, DATAFLOW_EPOCH_LIMIT);
        dataflow_program_free(&d->program);
        free(d);
        return NULL;
    }
    d->epoch_limit = b->epoch_limit ? (unsigned)b->epoch_limit : DATAFLOW_EPOCH_LIMIT;
    d->next_epoch = 1;
    const DataflowProgram *p = &d->program;
    size_t slots = (size_t)b->n_heads * p->splits;
    DECODE_ALLOC(d->d_layers, (size_t)b->n_layers * sizeof *d->d_layers, "layer pointers");
    DECODE_ALLOC(d->d_instructions, (size_t)p->n_instructions * sizeof *d->d_instructions, "the program");
    DECODE_ALLOC(d->d_offsets, ((size_t)shape.n_blocks + 1) * sizeof *d->d_offsets, "the program");
    DECODE_ALLOC(d->d_counters, (size_t)p->n_counters * sizeof *d->d_counters, "counters");
    DECODE_ALLOC(d->d_epoch, sizeof *d->d_epoch, "the epoch");
    const size_t qkv_width = (size_t)(b->n_heads + 2 * b->n_kv_heads) * b->head_dim, q_width = (size_t)b->n_heads * b->head_dim;
    const size_t tagged_per_layer = qkv_width + q_width + 2 * (size_t)b->hidden + b->intermediate;
    const size_t tagged_bytes = d->tagged_bytes = tagged_per_layer * b->n_layers * sizeof *d->d_tagged;
    const size_t partial_o_bytes = d->partial_o_bytes = slots * b->head_dim * sizeof *d->d_partial_o;
    const size_t partial_ml_bytes = d->partial_ml_bytes = slots * 2 * sizeof *d->d_partial_ml;
    DECODE_ALLOC(d->d_tagged, tagged_bytes, "exchanged values");
    layers = malloc((size_t)b->n_layers * sizeof *layers);
    if (!layers) {
        fail(err, "dataflow engine: out of memory");
        goto fail_cleanup;
    }
    for (int l = 0; l < b->n_layers; l++) {
        layers[l] = b->layers[l];
        unsigned long long *t = d->d_tagged + (size_t)l * tagged_per_layer;
        layers[l].qkv_tagged = t;
        layers[l].attn_tagged = t + qkv_width;
        layers[l].resid_attn_tagged = t + qkv_width + q_width;
        layers[l].act_tagged = t + qkv_width + q_width + b->hidden;
        layers[l].resid_mlp_tagged = t + qkv_width + q_width + b->hidden + b->intermediate;
    }
    DECODE_ALLOC(d->d_partial_o, partial_o_bytes, "attention partials");
    DECODE_ALLOC(d->d_partial_ml, partial_ml_bytes, "attention partials");
    DECODE_ALLOC(d->d_best_value, (size_t)shape.n_blocks * sizeof(float), "argmax partials");
    DECODE_ALLOC(d->d_best_index, (size_t)shape.n_blocks * sizeof(int), "argmax partials");
    DECODE_ALLOC(d->d_control, 2 * sizeof(int), "control");
    if (b->timeline) {
        const size_t timeline_bytes = (size_t)p->n_instructions * DATAFLOW_TIMELINE_MARKS * sizeof *d->d_timeline;
        DECODE_ALLOC(d->d_timeline, timeline_bytes, "the timeline");
        if (cudaMemset(d->d_timeline, 0, timeline_bytes)) {
            fail(err, "dataflow engine: clearing the timeline failed");
            goto fail_cleanup;
        }
    }
    if (cudaMallocHost((void **)&d->h_control, 3 * sizeof(int)) != cudaSuccess) {
        fail(err, "dataflow engine: cudaMallocHost of the control words failed");
        goto fail_cleanup;
    }
    d->h_control[0] = d->h_control[1] = 0;
    d->h_control[2] = 1;  // the tagged words start at zero: epoch 0 never matches
    if (cudaMemcpy(d->d_layers, layers, (size_t)b->n_layers * sizeof *d->d_layers, cudaMemcpyHostToDevice) ||
        cudaMemcpy(d->d_epoch, &d->h_control[2], sizeof *d->d_epoch, cudaMemcpyHostToDevice) ||
        cudaMemset(d->d_tagged, 0, tagged_bytes) || cudaMemset(d->d_partial_o, 0, partial_o_bytes) ||
        cudaMemset(d->d_partial_ml, 0, partial_ml_bytes) ||
        cudaMemcpy(d->d_instructions, p->instructions, (size_t)p->n_instructions * sizeof *d->d_instructions,
                   cudaMemcpyHostToDevice) ||
        cudaMemcpy(d->d_offsets, p->offsets, ((size_t)shape.n_blocks + 1) * sizeof *d->d_offsets, cudaMemcpyHostToDevice) ||
        cudaMemset(d->d_counters, 0, (size_t)p->n_counters * sizeof *d->d_counters) ||
        cudaMemset(d->d_control, 0, 2 * sizeof(int))) {
        fail(err, "dataflow engine: uploading the program failed");
        goto fail_cleanup;
    }
    DataflowParams *P = &d->params;
    P->layers = d->d_layers;
    P->instructions = d->d_instructions;
    P->offsets = d->d_offsets;
    P->embed = b->embed;
    P->lm_head = b->lm_head;
    P->final_norm_w = b->final_norm_w;
    P->rope_cos = b->rope_cos;
    P->rope_sin = b->rope_sin;
    P->io = b->io;
    P->control = d->d_control;
    P->embed_out = b->embed_out;
    P->final_norm = b->final_norm;
    P->logits = b->logits;
    P->next_token = b->next_token;
    P->partial_o = d->d_partial_o;
    P->partial_ml = d->d_partial_ml;
    P->block_best_value = d->d_best_value;
    P->block_best_index = d->d_best_index;
    P->counters = d->d_counters;
    P->epoch = d->d_epoch;
    P->timeline = d->d_timeline;
    P->eps = b->eps;
    P->skeleton = b->skeleton;
    free(layers);
    return d;
fail_cleanup:
    free(layers);
    dataflow_decode_destroy(d);
    return NULL;
}

// steps[k - 1] is the ns all tiles spent from mark k - 1 to mark k; the mean us a tile spent from mark
// `from` to mark `to`.
static double steps_us(const double *steps, int from, int to, double tiles) {
    double ns = 0.0;
    for (int k = from + 1; k <= to; k++) ns += steps[k - 1];
    return ns / tiles / 1e3;
}

// The last launch's timeline, per op, averaged over the layers but the first and the last: when the
// op's first tile had its inputs, when its last tile had staged them, had computed and ended, relative
// to the end of the previous layer's last down tile (the chain: the gap from one op's "last" to the
// next op's "staged" is the hand-off), and the mean time a tile spent in each of its steps
// (DataflowMark). Tiles whose inputs travel tagged wait for them in their staging: their counter wait
// is 0, and "first" is when the first tile started.
static void print_timeline(const DataflowDecode *d) {
    const DataflowProgram *p = &d->program;
    const int M = DATAFLOW_TIMELINE_MARKS;
    size_t n = (size_t)p->n_instructions * M;
    unsigned long long *t = malloc(n * sizeof *t);
    if (!t || cudaMemcpy(t, d->d_timeline, n * sizeof *t, cudaMemcpyDeviceToHost) != cudaSuccess) {
        fprintf(stderr, "dataflow timeline: cannot read it back\n");
        free(t);
        return;
    }
    // A mark an instruction has no step for keeps the time of the one before it.
    for (int i = 0; i < p->n_instructions; i++)
        for (int k = 1; k < M; k++)
            if (t[(size_t)i * M + k] < t[(size_t)i * M + k - 1]) t[(size_t)i * M + k] = t[(size_t)i * M + k - 1];
    int L = p->shape.n_layers;
    enum { FIRST, STAGED_LAST, COMPUTED_LAST, LAST, STEP0, COUNT = STEP0 + DATAFLOW_TIMELINE_MARKS - 1, N_STATS };
    double *stat = calloc((size_t)L * DATAFLOW_N_OPS * N_STATS, sizeof *stat);
    double *layer_done = calloc((size_t)L, sizeof *layer_done);
    unsigned long long start = ~0ull, end = 0;
    if (!stat || !layer_done) { free(t); free(stat); free(layer_done); return; }
    for (int i = 0; i < p->n_instructions; i++)
        if (t[(size_t)i * M]) {
            if (t[(size_t)i * M] < start) start = t[(size_t)i * M];
            if (t[(size_t)i * M + M - 1] > end) end = t[(size_t)i * M + M - 1];
        }
    for (int i = 0; i < p->n_instructions; i++) {
        DataflowInstruction in = p->instructions[i];
        const unsigned long long *m = t + (size_t)i * M;
        if (in.op == DATAFLOW_DOWN && m[0] && m[M - 1] - start > layer_done[in.layer])
            layer_done[in.layer] = (double)(m[M - 1] - start);
    }
    for (int i = 0; i < p->n_instructions; i++) {
        DataflowInstruction in = p->instructions[i];
        const unsigned long long *m = t + (size_t)i * M;
        if (!m[0] || in.op > DATAFLOW_DOWN) continue;
        double *s = stat + ((size_t)in.layer * DATAFLOW_N_OPS + in.op) * N_STATS;
        double ref = in.layer > 0 ? layer_done[in.layer - 1] : 0.0;
        double ready = (double)(m[DATAFLOW_MARK_INPUTS] - start) - ref, done = (double)(m[M - 1] - start) - ref;
        if (!s[COUNT] || ready < s[FIRST]) s[FIRST] = ready;
        if (!s[COUNT] || done > s[LAST]) s[LAST] = done;
        double staged = (double)(m[DATAFLOW_MARK_STAGED] - start) - ref, computed = (double)(m[DATAFLOW_MARK_COMPUTED] - start) - ref;
        if (!s[COUNT] || staged > s[STAGED_LAST]) s[STAGED_LAST] = staged;
        if (!s[COUNT] || computed > s[COMPUTED_LAST]) s[COMPUTED_LAST] = computed;
        for (int k = 1; k < M; k++) s[STEP0 + k - 1] += (double)(m[k] - m[k - 1]);
        s[COUNT] += 1;
    }
    static const char *names[] = {"qkv", "attention", "o_proj", "gate_up", "down"};
    fprintf(stderr, "dataflow timeline (last launch, %s): %.1f us a token; per layer (layers 1..%d), us after the "
                    "previous layer's last down tile; then us a tile spends in each step:\n", "ns from %globaltimer",
            (end - start) / 1e3, L - 2);
    fprintf(stderr, "  %-10s %8s %8s %8s %8s %12s %8s %8s %8s %6s\n", "op", "first", "staged", "computed", "last",
            "counter wait", "staging", "compute", "finish", "tiles");
    for (int op = 0; op <= DATAFLOW_DOWN && L > 2; op++) {
        double a[N_STATS] = {0};
        for (int l = 1; l < L - 1; l++)
            for (int k = 0; k < N_STATS; k++) a[k] += stat[((size_t)l * DATAFLOW_N_OPS + op) * N_STATS + k];
        double layers = L - 2, count = a[COUNT] > 0 ? a[COUNT] : 1;
        const double *steps = a + STEP0;
        fprintf(stderr, "  %-10s %8.2f %8.2f %8.2f %8.2f %12.2f %8.2f %8.2f %8.2f %6.0f\n", names[op],
                a[FIRST] / layers / 1e3, a[STAGED_LAST] / layers / 1e3, a[COMPUTED_LAST] / layers / 1e3,
                a[LAST] / layers / 1e3, steps_us(steps, DATAFLOW_MARK_START, DATAFLOW_MARK_INPUTS, count),
                steps_us(steps, DATAFLOW_MARK_INPUTS, DATAFLOW_MARK_STAGED, count),
                steps_us(steps, DATAFLOW_MARK_STAGED, DATAFLOW_MARK_COMPUTED, count),
                steps_us(steps, DATAFLOW_MARK_COMPUTED, DATAFLOW_MARK_END, count), a[COUNT] / layers);
        if (op == DATAFLOW_ATTN)
            fprintf(stderr, "  %-10s compute: K/V waits %.2f, scores, softmax and sums %.2f, warps combined %.2f\n", "",
                    steps_us(steps, DATAFLOW_MARK_STAGED, DATAFLOW_MARK_KV_WAITED, count),
                    steps_us(steps, DATAFLOW_MARK_KV_WAITED, DATAFLOW_MARK_SUMMED, count),
                    steps_us(steps, DATAFLOW_MARK_SUMMED, DATAFLOW_MARK_COMPUTED, count));
    }
    // After the last layer: when the last block started its LM head rows, when the last block ended them,
    // and when the argmax's wait for every block's partial ended. A block runs its LM head tiles as one
    // stream: its first tile's marks hold the stream's start, its last tile's end mark the stream's end
    // (the marks between stay 0).
    double lm_started = 0.0, lm_done = 0.0, argmax_inputs = 0.0;
    for (int i = 0; i < p->n_instructions; i++) {
        const DataflowInstruction in = p->instructions[i];
        const unsigned long long *m = t + (size_t)i * M;
        if (in.op == DATAFLOW_LMHEAD && m[0] && (double)(m[0] - start) - layer_done[L - 1] > lm_started)
            lm_started = (double)(m[0] - start) - layer_done[L - 1];
        if (in.op == DATAFLOW_LMHEAD && m[M - 1] && (double)(m[M - 1] - start) - layer_done[L - 1] > lm_done)
            lm_done = (double)(m[M - 1] - start) - layer_done[L - 1];
        if (in.op == DATAFLOW_ARGMAX && m[0])
            argmax_inputs = (double)(m[DATAFLOW_MARK_INPUTS] - start) - layer_done[L - 1];
    }
    if (L > 1)
        fprintf(stderr, "  layers 1..%d: %.2f us a layer; LM head and argmax: %.2f us after the last layer (the LM head's "
                "streams' last start %.2f and last end %.2f, the argmax's wait over %.2f)\n", L - 2,
                (layer_done[L - 2] - layer_done[0]) / (L - 2) / 1e3, ((double)(end - start) - layer_done[L - 1]) / 1e3,
                lm_started / 1e3, lm_done / 1e3, argmax_inputs / 1e3);
    free(t);
    free(stat);
    free(layer_done);
}

void dataflow_decode_destroy(DataflowDecode *d) {
    if (!d) return;
    if (d->d_timeline) print_timeline(d);
    void *ptrs[] = {d->d_layers, d->d_instructions, d->d_offsets, d->d_counters, d->d_epoch, d->d_tagged, d->d_partial_o,
                    d->d_partial_ml, d->d_best_value, d->d_best_index, d->d_control, d->d_timeline};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) cudaFree(ptrs[i]);
    if (d->h_control) cudaFreeHost(d->h_control);
    dataflow_program_free(&d->program);
    free(d);
}

int dataflow_decode_set_control(DataflowDecode *d, int trace, int forced, cudaStream_t stream, ErrorMessage *err) {
    trace = trace != 0;
    forced = forced != 0;
    if (d->h_control[0] == trace && d->h_control[1] == forced) return 0;
    // The previous upload (if any) must have been consumed before the pinned words change.
    CUDA_CHECK(cudaStreamSynchronize(stream), "dataflow control upload");
    d->h_control[0] = trace;
    d->h_control[1] = forced;
    CUDA_CHECK(cudaMemcpyAsync(d->d_control, d->h_control, 2 * sizeof(int), cudaMemcpyHostToDevice, stream),
               "dataflow control upload");
    return 0;
}

int dataflow_decode_prepare_launch(DataflowDecode *d, cudaStream_t stream, ErrorMessage *err) {
    if (d->next_epoch >= d->epoch_limit) {
        // Every launch before this one has ended when these run (stream order), and all of their
        // tags go: the next launch, under epoch 1, matches only what it writes itself.
        CUDA_CHECK(cudaMemsetAsync(d->d_tagged, 0, d->tagged_bytes, stream), "dataflow epoch reset");
        CUDA_CHECK(cudaMemsetAsync(d->d_partial_o, 0, d->partial_o_bytes, stream), "dataflow epoch reset");
        CUDA_CHECK(cudaMemsetAsync(d->d_partial_ml, 0, d->partial_ml_bytes, stream), "dataflow epoch reset");
        CUDA_CHECK(cudaMemcpyAsync(d->d_epoch, &d->h_control[2], sizeof *d->d_epoch, cudaMemcpyHostToDevice, stream),
                   "dataflow epoch reset");
        d->next_epoch = 1;
    }
    d->next_epoch++;
    return 0;
}

int dataflow_decode_enqueue(DataflowDecode *d, cudaStream_t stream, ErrorMessage *err) {
    const int instrumented = d->h_control[0] || d->params.timeline != NULL || d->params.skeleton;
    return launch_dataflow_decode(&d->program, &d->params, instrumented, stream, err);
}

void dataflow_decode_describe(const DataflowDecode *d, char *out, size_t size) {
    const int pages = d->program.page_ops;
    char paged[64];
    snprintf(paged, sizeof paged, "%s%s%s", pages & (1 << DATAFLOW_QKV) ? " qkv" : "",
             pages & (1 << DATAFLOW_GATEUP) ? " gate_up" : "", pages & (1 << DATAFLOW_DOWN) ? " down" : "");
    snprintf(out, size, "dataflow: %d blocks, tiles of at most %d KB, %d instructions a token, %d attention splits a kv head, pages:%s%s",
             d->program.shape.n_blocks, d->program.shape.tile_bytes / 1024, d->program.n_instructions,
             d->program.splits, pages ? paged : " none", d->params.skeleton ? " (skeleton: no arithmetic)" : "");
}
