#include "gate_tokens.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../golden/trace.h"

double gate_top2_margin(const float *logits, int n) {
    double first = -INFINITY, second = -INFINITY;
    for (int i = 0; i < n; i++) {
        double x = logits[i];
        if (!isfinite(x)) continue;
        if (x > first) { second = first; first = x; }
        else if (x > second) second = x;
    }
    return isfinite(second) ? first - second : 0;
}

double gate_flip_bound(const float *logits, int n, double max_norm_max) {
    double largest = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(logits[i]) && fabs(logits[i]) > largest) largest = fabs(logits[i]);
    return 2 * max_norm_max * largest;
}

int gate_check_tokens(const char *engine_trace, const char *reference_trace, double max_norm_max, TokenCheck *out,
                      ErrorMessage *err) {
    memset(out, 0, sizeof *out);
    TraceReader *engine = trace_open(engine_trace, err);
    if (!engine) return -1;
    TraceReader *reference = trace_open(reference_trace, err);
    if (!reference) { trace_close(engine); return -1; }
    int status = -1, n_steps = trace_n_steps(reference);
    if (trace_n_steps(engine) != n_steps) {
        fail(err, "%s: %d steps, but the reference %s has %d", engine_trace, trace_n_steps(engine), reference_trace,
             n_steps);
        goto done;
    }
    for (int step = 0; step < n_steps; step++) {
        int32_t engine_token, reference_token;
        if (trace_read_next_token(engine, step, &engine_token, err) ||
            trace_read_next_token(reference, step, &reference_token, err))
            goto done;
        out->n_steps++;
        if (engine_token == reference_token) { out->n_equal++; continue; }
        float *logits = NULL;
        int rows, cols;
        if (trace_read_tensor(reference, step, -1, "logits", &logits, &rows, &cols, err)) goto done;
        const float *last = logits + (size_t)(rows - 1) * cols;
        double margin = gate_top2_margin(last, cols), bound = gate_flip_bound(last, cols, max_norm_max);
        free(logits);
        int beyond = margin > bound;
        if (beyond ? !out->failed : !out->failed && !out->n_near_ties) {
            out->step = step;
            out->engine_token = engine_token;
            out->reference_token = reference_token;
            out->margin = margin;
            out->bound = bound;
        }
        if (beyond) out->failed = 1;
        else out->n_near_ties++;
    }
    if (out->failed)
        snprintf(out->message, sizeof out->message,
                 "step %d: the engine picked token %d, the reference %d, whose top-2 logit margin %.4g exceeds the "
                 "%.4g a permitted error could flip",
                 out->step, out->engine_token, out->reference_token, out->margin, out->bound);
    else
        snprintf(out->message, sizeof out->message, "%d/%d steps agree; %d near-ties within the flip bound",
                 out->n_equal, out->n_steps, out->n_near_ties);
    status = 0;
done:
    trace_close(engine);
    trace_close(reference);
    return status;
}
