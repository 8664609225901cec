// The rule golden/FORMAT.md sets for each tensor an engine taps (model/engine.h's EngineTap): its name,
// its layer, and its [rows, cols] in a step of n_tokens tokens. The engine plugin adapter
// (plugin_engine.c) holds every tensor a plugin taps to it before the trace writer sees it, so a
// wrong shape is refused naming the tensor, never written.
#ifndef FUSECHECK_TAP_CHECK_H
#define FUSECHECK_TAP_CHECK_H

#include "../model/config.h"
#include "../model/error.h"

// 0 when `name` of `layer` as [rows, cols] is a tensor FORMAT.md names, as it must be for a step of
// n_tokens tokens of a model of `config`:
//   a layer tensor (TRACE_LAYER_TENSORS) with layer in [0, num_hidden_layers), [n_tokens, width]
//   where width is hidden_size, num_attention_heads*head_dim (q, attn), num_key_value_heads*head_dim
//   (k, v) or intermediate_size (gate, up, act);
//   embed [n_tokens, hidden_size], final_norm [1, hidden_size], logits [1, vocab_size], with layer -1.
// Otherwise -1 with one line in err that starts with `who` ("engine plugin ./x.so") and names the
// tensor, the layer, and the expected and actual shape ("...: tapped 'q' of layer 1 as [12, 63],
// expected [12, 64] (n_tokens x num_attention_heads*head_dim, golden/FORMAT.md)"). `name` may be
// anything an engine sends (NULL, unprintable, long): it is shown cut to 40 printable characters.
int tap_check_tensor(const ModelConfig *config, int n_tokens, int layer, const char *name, int rows, int cols,
                     const char *who, ErrorMessage *err);

#endif
