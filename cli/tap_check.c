// FORMAT.md's shape rule for a tapped tensor. Contract in tap_check.h.
#include "tap_check.h"

#include <stdio.h>
#include <string.h>

typedef enum { WIDTH_HIDDEN, WIDTH_Q, WIDTH_KV, WIDTH_INTERMEDIATE, WIDTH_VOCAB } Width;

static const char *const WIDTH_NAMES[] = {"hidden_size", "num_attention_heads*head_dim",
                                          "num_key_value_heads*head_dim", "intermediate_size", "vocab_size"};

// Every tensor an engine may tap, in forward order (golden/FORMAT.md's tables).
static const struct {
    const char *name;
    int per_layer;      // 1: layer in [0, n_layers); 0: a step tensor, layer -1
    int last_row_only;  // 1: rows == 1; 0: rows == the step's n_tokens
    Width width;
} TAPPABLE[] = {
    {"embed", 0, 0, WIDTH_HIDDEN},      {"attn_norm", 1, 0, WIDTH_HIDDEN},  {"q", 1, 0, WIDTH_Q},
    {"k", 1, 0, WIDTH_KV},              {"v", 1, 0, WIDTH_KV},              {"attn", 1, 0, WIDTH_Q},
    {"attn_out", 1, 0, WIDTH_HIDDEN},   {"resid_attn", 1, 0, WIDTH_HIDDEN}, {"mlp_norm", 1, 0, WIDTH_HIDDEN},
    {"gate", 1, 0, WIDTH_INTERMEDIATE}, {"up", 1, 0, WIDTH_INTERMEDIATE},   {"act", 1, 0, WIDTH_INTERMEDIATE},
    {"mlp_out", 1, 0, WIDTH_HIDDEN},    {"resid_mlp", 1, 0, WIDTH_HIDDEN},  {"final_norm", 0, 1, WIDTH_HIDDEN},
    {"logits", 0, 1, WIDTH_VOCAB},
};
#define N_TAPPABLE (sizeof TAPPABLE / sizeof TAPPABLE[0])

static int width_of(const ModelConfig *c, Width width) {
    switch (width) {
    case WIDTH_Q: return c->num_attention_heads * c->head_dim;
    case WIDTH_KV: return c->num_key_value_heads * c->head_dim;
    case WIDTH_INTERMEDIATE: return c->intermediate_size;
    case WIDTH_VOCAB: return c->vocab_size;
    case WIDTH_HIDDEN: break;
    }
    return c->hidden_size;
}

int tap_check_tensor(const ModelConfig *config, int n_tokens, int layer, const char *name, int rows, int cols,
                     const char *who, ErrorMessage *err) {
    if (!name) return fail(err, "%s: tapped a tensor with no name (layer %d)", who, layer);
    size_t i = 0;
    while (i < N_TAPPABLE && strcmp(TAPPABLE[i].name, name)) i++;
    if (i == N_TAPPABLE) {
        if (!strcmp(name, "next_token"))
            return fail(err, "%s: tapped 'next_token': it is forward's result, not a tensor to tap", who);
        char shown[48];
        size_t n = 0;
        for (const char *p = name; *p && n < 40; p++) shown[n++] = (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p;
        shown[n] = '\0';
        return fail(err,
                    "%s: tapped an unknown tensor '%s' (layer %d): golden/FORMAT.md names embed, attn_norm, q, k, v, "
                    "attn, attn_out, resid_attn, mlp_norm, gate, up, act, mlp_out, resid_mlp, final_norm, logits",
                    who, shown, layer);
    }
    if (TAPPABLE[i].per_layer && (layer < 0 || layer >= config->num_hidden_layers))
        return fail(err, "%s: tapped '%s' of layer %d, outside the model's layers [0, %d)", who, name, layer,
                    config->num_hidden_layers);
    if (!TAPPABLE[i].per_layer && layer != -1)
        return fail(err, "%s: tapped '%s' with layer %d: a step tensor takes layer -1", who, name, layer);
    int want_rows = TAPPABLE[i].last_row_only ? 1 : n_tokens;
    int want_cols = width_of(config, TAPPABLE[i].width);
    if (rows != want_rows || cols != want_cols) {
        char where[32] = "";
        if (TAPPABLE[i].per_layer) snprintf(where, sizeof where, " of layer %d", layer);
        return fail(err, "%s: tapped '%s'%s as [%d, %d], expected [%d, %d] (%s x %s, golden/FORMAT.md)", who, name,
                    where, rows, cols, want_rows, want_cols, TAPPABLE[i].last_row_only ? "1 (last row)" : "n_tokens",
                    WIDTH_NAMES[TAPPABLE[i].width]);
    }
    return 0;
}
