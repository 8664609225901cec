#include "history_svg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WIDTH 1100
#define HEIGHT 560
#define LEFT 70
#define RIGHT 380   // room for the legend
#define TOP 40
#define BOTTOM 110  // room for the rotated commit labels
#define MAX_SERIES 64
#define MAX_COMMITS 512

static const char *const COLORS[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

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

int history_write_svg(const History *h, const char *path, ErrorMessage *err) {
    // Commits in recorded order (first appearance), series in first-appearance order.
    const char *commits[MAX_COMMITS];
    const HistoryRow *series[MAX_SERIES];
    int n_commits = 0, n_series = 0;
    double top = 0;
    for (int i = 0; i < h->n; i++) {
        const HistoryRow *r = &h->rows[i];
        if (r->kind != HISTORY_THROUGHPUT) continue;
        int c = 0;
        while (c < n_commits && strcmp(commits[c], r->commit)) c++;
        if (c == n_commits && n_commits < MAX_COMMITS) commits[n_commits++] = r->commit;
        int s = 0;
        while (s < n_series && !same_series(series[s], r)) s++;
        if (s == n_series && n_series < MAX_SERIES) series[n_series++] = r;
        if (r->tok_s > top) top = r->tok_s;
    }
    char temp[1200];
    snprintf(temp, sizeof temp, "%s.tmp-%d", path, (int)getpid());
    FILE *out = fopen(temp, "w");
    if (!out) return fail(err, "%s: cannot open for writing: %s", temp, strerror(errno));
    fprintf(out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
            "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"%d\" y=\"22\" font-size=\"15\">Decode tok/s per commit (batch 1; one line per GPU, engine, "
            "model and context)</text>\n",
            WIDTH, HEIGHT, LEFT);
    int plot_w = WIDTH - LEFT - RIGHT, plot_h = HEIGHT - TOP - BOTTOM;
    if (n_series == 0) {
        fprintf(out, "<text x=\"%d\" y=\"%d\">no throughput rows recorded</text>\n</svg>\n", LEFT, TOP + plot_h / 2);
    } else {
        double step = nice_step(top * 1.05);
        double y_max = ceil(top * 1.05 / step) * step;
#define X(c) (LEFT + (n_commits == 1 ? plot_w / 2.0 : (double)(c) * plot_w / (n_commits - 1)))
#define Y(v) (TOP + plot_h - (v) / y_max * plot_h)
        for (double v = 0; v <= y_max + step / 2; v += step)
            fprintf(out,
                    "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                    "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                    LEFT, Y(v), LEFT + plot_w, Y(v), LEFT - 6, Y(v) + 4, v);
        fprintf(out, "<text x=\"16\" y=\"%d\" transform=\"rotate(-90 16 %d)\" text-anchor=\"middle\">tok/s</text>\n",
                TOP + plot_h / 2, TOP + plot_h / 2);
        for (int c = 0; c < n_commits; c++)
            fprintf(out,
                    "<text x=\"%.1f\" y=\"%d\" transform=\"rotate(-60 %.1f %d)\" text-anchor=\"end\" "
                    "font-family=\"monospace\" font-size=\"10\">%.7s</text>\n",
                    X(c), TOP + plot_h + 14, X(c), TOP + plot_h + 14, commits[c]);
        for (int s = 0; s < n_series; s++) {
            const char *color = COLORS[s % (sizeof COLORS / sizeof *COLORS)];
            int dashed = strcmp(series[s]->engine, "fused") != 0;
            fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"%s points=\"", color,
                    dashed ? " stroke-dasharray=\"5,3\"" : "");
            // Each commit's last row of the series (a commit measured twice shows its later figure).
            for (int c = 0; c < n_commits; c++) {
                const HistoryRow *last = NULL;
                for (int i = 0; i < h->n; i++)
                    if (h->rows[i].kind == HISTORY_THROUGHPUT && same_series(&h->rows[i], series[s]) &&
                        !strcmp(h->rows[i].commit, commits[c]))
                        last = &h->rows[i];
                if (last) fprintf(out, "%.1f,%.1f ", X(c), Y(last->tok_s));
            }
            fputs("\"/>\n", out);
            for (int c = 0; c < n_commits; c++) {
                const HistoryRow *last = NULL;
                for (int i = 0; i < h->n; i++)
                    if (h->rows[i].kind == HISTORY_THROUGHPUT && same_series(&h->rows[i], series[s]) &&
                        !strcmp(h->rows[i].commit, commits[c]))
                        last = &h->rows[i];
                if (last)
                    fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"><title>%.12s: %.1f tok/s</title></circle>\n",
                            X(c), Y(last->tok_s), color, last->commit, last->tok_s);
            }
            int ly = TOP + 8 + s * 16;
            fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"%s/>\n",
                    WIDTH - RIGHT + 16, ly, WIDTH - RIGHT + 40, ly, color, dashed ? " stroke-dasharray=\"5,3\"" : "");
            fprintf(out, "<text x=\"%d\" y=\"%d\" font-size=\"11\">", WIDTH - RIGHT + 46, ly + 4);
            put_escaped(out, series[s]->gpu);
            fputs(" · ", out);
            put_escaped(out, series[s]->engine);
            fputs(" · ", out);
            put_escaped(out, series[s]->model);
            fprintf(out, " · ctx %d</text>\n", series[s]->context);
        }
#undef X
#undef Y
        fprintf(out, "</svg>\n");
    }
    if (fclose(out) != 0 || rename(temp, path) != 0) return fail(err, "%s: cannot write: %s", path, strerror(errno));
    return 0;
}
