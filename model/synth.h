// Synthetic checkpoints: a real Hugging Face directory (config.json + bf16 model.safetensors, tensor
// names as transformers writes them) drawn from a portable seeded generator, so the same preset and
// seed give byte-identical files on every machine.
#ifndef FUSECHECK_SYNTH_H
#define FUSECHECK_SYNTH_H

#include <stdint.h>

#include "config.h"

// Fills `out` for a named preset: "tiny", "tiny-eps" (tiny's shape with rms_norm_eps 1e-3 and
// rope_theta 20000, where Qwen3 has 1e-6 and 1e6: the values matter), "small", "qwen3-0.6b", "qwen3-1.7b", "qwen3-4b",
// "qwen3-8b" (append "-untied" to any for untied embeddings, e.g. "tiny-untied").
int synth_preset(const char *name, ModelConfig *out, ErrorMessage *err);

// A comma-separated list of the preset names, for usage messages.
const char *synth_preset_names(void);

// Writes config.json and model.safetensors (bf16) into `dir` (created if missing). Linear weights
// and embeddings ~ N(0, 0.02), norm weights 1 + 0.1·z (z of unit variance; the generator is specified in synth.c). Files are written to a
// temporary name and renamed, so an interrupted run leaves no half checkpoint under the final name.
int synth_write(const ModelConfig *config, uint64_t seed, const char *dir, ErrorMessage *err);

#endif
