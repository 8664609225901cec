#include "history_svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/file_util.h"

// One panel per GPU, stacked: machines of different GPUs are not comparable, and their commits differ.
// In a panel, colour is the context and the dash the engine (solid fused, dashed cublas), so a reader
// matches a line to the legend by two cues a colour-blind reader can also tell apart.
#define WIDTH 1200
#define LEFT 70
#define RIGHT 330      // room for the legend
#define PANEL_TOP 50   // panel title and air above the plot
#define PANEL_PLOT 330
#define PANEL_BOTTOM 80  // room for the rotated commit labels
#define PANEL_HEIGHT (PANEL_TOP + PANEL_PLOT + PANEL_BOTTOM)
#define MAX_GPUS 16
#define MAX_SERIES 64
#define MAX_COMMITS 512

static const char *const COLORS[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define N_COLORS (int)(sizeof COLORS / sizeof *COLORS)

// Text for SVG: &, < and > escaped (GPU and model names are free text).
static void put_escaped(FILE *out, const char *s) {
    for (; *s; s++) {
        if (*s == '&') fputs("&amp;", out);
        else if (*s == '<') fputs("&lt;", out);
        else if (*s == '>') fputs("&gt;", out);
        else fputc(*s, out);
    }
}

static int same_series(const HistoryRow *a, const HistoryRow *b) {
    return a->context == b->context && !strcmp(a->gpu, b->gpu) && !strcmp(a->engine, b->engine) &&
           !strcmp(a->model, b->model);
}

// A step of 1, 2 or 5 times a power of ten giving about 6 grid lines up to `top`.
static double nice_step(double top) {
    double raw = top / 6, power = pow(10, floor(log10(raw)));
    double m = raw / power;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * power;
}

// The last row of `series` recorded for `commit` (a commit measured twice shows its later figure).
static const HistoryRow *last_row(const History *h, const HistoryRow *series, const char *commit) {
    const HistoryRow *last = NULL;
    for (int i = 0; i < h->n; i++)
        if (h->rows[i].kind == HISTORY_THROUGHPUT && same_series(&h->rows[i], series) && !strcmp(h->rows[i].commit, commit))
            last = &h->rows[i];
    return last;
}

// One GPU's panel, its top edge at y0.
static void write_panel(FILE *out, const History *h, const char *gpu, int y0) {
    const char *commits[MAX_COMMITS];
    const HistoryRow *series[MAX_SERIES];
    int contexts[MAX_SERIES];
    int n_commits = 0, n_series = 0, n_contexts = 0;
    double top = 0;
    for (int i = 0; i < h->n; i++) {
        const HistoryRow *r = &h->rows[i];
        if (r->kind != HISTORY_THROUGHPUT || strcmp(r->gpu, gpu)) continue;
        int c = 0;
        while (c < n_commits && strcmp(commits[c], r->commit)) c++;
        if (c == n_commits && n_commits < MAX_COMMITS) commits[n_commits++] = r->commit;
        int s = 0;
        while (s < n_series && !same_series(series[s], r)) s++;
        if (s == n_series && n_series < MAX_SERIES) series[n_series++] = r;
        int k = 0;
        while (k < n_contexts && contexts[k] != r->context) k++;
        if (k == n_contexts && n_contexts < MAX_SERIES) contexts[n_contexts++] = r->context;
        if (r->tok_s > top) top = r->tok_s;
    }
    int plot_w = WIDTH - LEFT - RIGHT, plot_top = y0 + PANEL_TOP;
    fprintf(out, "<text x=\"%d\" y=\"%d\" font-size=\"13\" font-weight=\"bold\">", LEFT, y0 + 30);
    put_escaped(out, gpu);
    fprintf(out, "</text>\n");
    double step = nice_step(top > 0 ? top * 1.05 : 1);
    double y_max = ceil((top > 0 ? top * 1.05 : 1) / step) * step;
#define X(c) (LEFT + (n_commits == 1 ? plot_w / 2.0 : (double)(c) * plot_w / (n_commits - 1)))
#define Y(v) (plot_top + PANEL_PLOT - (v) / y_max * PANEL_PLOT)
    for (double v = 0; v <= y_max + step / 2; v += step)
        fprintf(out,
                "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                LEFT, Y(v), LEFT + plot_w, Y(v), LEFT - 6, Y(v) + 4, v);
    fprintf(out, "<text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" text-anchor=\"middle\">tok/s</text>\n",
            plot_top + PANEL_PLOT / 2, plot_top + PANEL_PLOT / 2);
    for (int c = 0; c < n_commits; c++)
        fprintf(out,
                "<text x=\"%.1f\" y=\"%d\" transform=\"rotate(-60 %.1f %d)\" text-anchor=\"end\" "
                "font-family=\"monospace\" font-size=\"10\">%.7s</text>\n",
                X(c), plot_top + PANEL_PLOT + 14, X(c), plot_top + PANEL_PLOT + 14, commits[c]);
    for (int s = 0; s < n_series; s++) {
        int k = 0;
        while (contexts[k] != series[s]->context) k++;
        const char *color = COLORS[k % N_COLORS];
        const char *dash = strcmp(series[s]->engine, "fused") ? " stroke-dasharray=\"5,3\"" : "";
        fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"%s points=\"", color, dash);
        for (int c = 0; c < n_commits; c++) {
            const HistoryRow *row = last_row(h, series[s], commits[c]);
            if (row) fprintf(out, "%.1f,%.1f ", X(c), Y(row->tok_s));
        }
        fputs("\"/>\n", out);
        for (int c = 0; c < n_commits; c++) {
            const HistoryRow *row = last_row(h, series[s], commits[c]);
            if (row)
                fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"><title>%.12s: %.1f tok/s</title></circle>\n",
                        X(c), Y(row->tok_s), color, row->commit, row->tok_s);
        }
        int ly = plot_top + 8 + s * 16;
        fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"%s/>\n",
                WIDTH - RIGHT + 16, ly, WIDTH - RIGHT + 40, ly, color, dash);
        fprintf(out, "<text x=\"%d\" y=\"%d\" font-size=\"11\">", WIDTH - RIGHT + 46, ly + 4);
        put_escaped(out, series[s]->engine);
        fputs(" · ", out);
        put_escaped(out, series[s]->model);
        fprintf(out, " · context %d</text>\n", series[s]->context);
    }
#undef X
#undef Y
}

int history_write_svg(const History *h, const char *path, ErrorMessage *err) {
    const char *gpus[MAX_GPUS];
    int n_gpus = 0;
    for (int i = 0; i < h->n; i++) {
        const HistoryRow *r = &h->rows[i];
        if (r->kind != HISTORY_THROUGHPUT) continue;
        int g = 0;
        while (g < n_gpus && strcmp(gpus[g], r->gpu)) g++;
        if (g == n_gpus && n_gpus < MAX_GPUS) gpus[n_gpus++] = r->gpu;
    }
    AtomicFile file;
    if (atomic_file_open(&file, path, err)) return -1;
    FILE *out = file.file;
    int height = 40 + (n_gpus ? n_gpus : 1) * PANEL_HEIGHT;
    fprintf(out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
            "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"%d\" y=\"24\" font-size=\"15\">Decode tok/s per commit, one panel per GPU (batch 1; colour: "
            "context, solid: fused, dashed: cublas)</text>\n",
            WIDTH, height, LEFT);
    if (n_gpus == 0)
        fprintf(out, "<text x=\"%d\" y=\"%d\">no throughput rows recorded</text>\n", LEFT, 40 + PANEL_HEIGHT / 2);
    for (int g = 0; g < n_gpus; g++) write_panel(out, h, gpus[g], 40 + g * PANEL_HEIGHT);
    fprintf(out, "</svg>\n");
    return atomic_file_commit(&file, err);
}
