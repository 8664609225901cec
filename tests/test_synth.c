// Synthetic checkpoints: presets, determinism, a pinned fingerprint, the documented generator
// recomputed independently, value statistics, and the `fusecheck synth` command.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>

#include "../model/bf16.h"
#include "../model/checkpoint.h"
#include "../model/synth.h"
#include "test_support.h"

// Computed once from `tiny` seed 0 and pinned: any change to the generator, the tensor list, the
// file layout's content or the config text changes it. Change it only on purpose.
#define TINY_SEED0_FINGERPRINT "68a75e5d233b6d86"

Test(synth, presets) {
    ModelConfig c;
    ErrorMessage err;
    cr_assert_eq(synth_preset("tiny", &c, &err), 0, "%s", err.text);
    cr_assert_eq(c.hidden_size, 64);
    cr_assert_eq(c.intermediate_size, 192);
    cr_assert_eq(c.num_hidden_layers, 2);
    cr_assert_eq(c.num_attention_heads, 4);
    cr_assert_eq(c.num_key_value_heads, 2);
    cr_assert_eq(c.head_dim, 16);
    cr_assert_eq(c.vocab_size, 256);
    cr_assert_eq(c.tie_word_embeddings, 1);
    cr_assert_eq(c.max_position_embeddings, 40960);
    cr_assert_eq(c.rope_theta, 1e6);
    cr_assert_eq(c.rms_norm_eps, 1e-6f);
    // tiny-eps: tiny's shape with an eps and a theta that matter (see synth.c).
    cr_assert_eq(synth_preset("tiny-eps", &c, &err), 0, "%s", err.text);
    cr_assert_eq(c.hidden_size, 64);
    cr_assert_eq(c.intermediate_size, 192);
    cr_assert_eq(c.num_hidden_layers, 2);
    cr_assert_eq(c.head_dim, 16);
    cr_assert_eq(c.tie_word_embeddings, 1);
    cr_assert_eq(c.rms_norm_eps, 1e-3f);
    cr_assert_eq(c.rope_theta, 20000);
    cr_assert_eq(synth_preset("small", &c, &err), 0);
    cr_assert_eq(c.tie_word_embeddings, 0);
    cr_assert_eq(c.num_attention_heads / c.num_key_value_heads, 4);
    cr_assert_eq(synth_preset("small-tied", &c, &err), 0);
    cr_assert_eq(c.tie_word_embeddings, 1);
    cr_assert_eq(synth_preset("tiny-untied", &c, &err), 0);
    cr_assert_eq(c.tie_word_embeddings, 0);
    cr_assert_eq(c.hidden_size, 64);

    struct {
        const char *name;
        int hidden, inner, layers, heads, kv, vocab, tied;
    } real[] = {
        {"qwen3-0.6b", 1024, 3072, 28, 16, 8, 151936, 1},
        {"qwen3-1.7b", 2048, 6144, 28, 16, 8, 151936, 1},
        {"qwen3-4b", 2560, 9728, 36, 32, 8, 151936, 1},
        {"qwen3-8b", 4096, 12288, 36, 32, 8, 151936, 0},
    };
    for (size_t i = 0; i < sizeof real / sizeof real[0]; i++) {
        cr_assert_eq(synth_preset(real[i].name, &c, &err), 0, "%s", err.text);
        cr_assert_eq(c.hidden_size, real[i].hidden, "%s", real[i].name);
        cr_assert_eq(c.intermediate_size, real[i].inner, "%s", real[i].name);
        cr_assert_eq(c.num_hidden_layers, real[i].layers, "%s", real[i].name);
        cr_assert_eq(c.num_attention_heads, real[i].heads, "%s", real[i].name);
        cr_assert_eq(c.num_key_value_heads, real[i].kv, "%s", real[i].name);
        cr_assert_eq(c.head_dim, 128, "%s", real[i].name);
        cr_assert_eq(c.vocab_size, real[i].vocab, "%s", real[i].name);
        cr_assert_eq(c.tie_word_embeddings, real[i].tied, "%s", real[i].name);
    }
    cr_assert_eq(synth_preset("qwen3-8b-tied", &c, &err), 0);
    cr_assert_eq(c.tie_word_embeddings, 1);

    cr_assert_eq(synth_preset("huge", &c, &err), -1);
    cr_assert_not_null(strstr(err.text, "unknown preset 'huge'"), "%s", err.text);
    cr_assert_eq(synth_preset("tiny-", &c, &err), -1);
    cr_assert_eq(synth_preset("-untied", &c, &err), -1);
}

static char *read_checkpoint_file(const char *dir, const char *name, size_t *size) {
    char *path = test_path_join(dir, name);
    char *data = test_read_file(path, size);
    free(path);
    return data;
}

Test(synth, deterministic_and_pinned) {
    char *a = test_synth_checkpoint("tiny", 0);
    char *b = test_synth_checkpoint("tiny", 0);
    char *c = test_synth_checkpoint("tiny", 1);
    size_t size_a, size_b;
    char *bytes_a = read_checkpoint_file(a, "model.safetensors", &size_a);
    char *bytes_b = read_checkpoint_file(b, "model.safetensors", &size_b);
    cr_assert_eq(size_a, size_b);
    cr_assert_eq(memcmp(bytes_a, bytes_b, size_a), 0, "same seed, different bytes");

    Checkpoint ca, cb, cc;
    ErrorMessage err;
    cr_assert_eq(checkpoint_open(a, &ca, &err), 0, "%s", err.text);
    cr_assert_eq(checkpoint_open(b, &cb, &err), 0, "%s", err.text);
    cr_assert_eq(checkpoint_open(c, &cc, &err), 0, "%s", err.text);
    cr_assert_str_eq(ca.fingerprint, cb.fingerprint);
    cr_assert_str_neq(ca.fingerprint, cc.fingerprint);
    cr_assert_str_eq(ca.fingerprint, TINY_SEED0_FINGERPRINT, "the generator changed: tiny seed 0 is now %s",
                     ca.fingerprint);

    // config.json is the canonical text, so what was written is what is read.
    char *config_text = read_checkpoint_file(a, "config.json", NULL);
    char *canonical = config_to_json(&ca.config);
    cr_assert_str_eq(config_text, canonical);

    checkpoint_close(&ca);
    checkpoint_close(&cb);
    checkpoint_close(&cc);
    free(config_text);
    free(canonical);
    free(bytes_a);
    free(bytes_b);
    free(a);
    free(b);
    free(c);
}

// The generator as synth.c documents it, written out again here from the description.
static uint64_t doc_fnv1a64(const char *s) {
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static uint16_t doc_value(uint64_t *state, int is_norm) {
    *state += 0x9E3779B97F4A7C15ull;
    uint64_t z = *state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    uint64_t s = (z & 0xffff) + ((z >> 16) & 0xffff) + ((z >> 32) & 0xffff) + ((z >> 48) & 0xffff);
    double unit = ((double)s / 65536.0 - 2.0) * 1.7320508075688772;
    return float_to_bf16((float)(is_norm ? 1.0 + 0.1 * unit : 0.02 * unit));
}

Test(synth, values_follow_the_documented_generator) {
    const uint64_t seed = 0x1234567890abcdefull;
    char *dir = test_synth_checkpoint("tiny", seed);
    Checkpoint checkpoint;
    ErrorMessage err;
    cr_assert_eq(checkpoint_open(dir, &checkpoint, &err), 0, "%s", err.text);
    const TensorInfo *tensors[] = {checkpoint.layers[1].k_norm, checkpoint.layers[0].v_proj, checkpoint.final_norm,
                                   checkpoint.embed_tokens};
    const int is_norm[] = {1, 0, 1, 0};
    for (int t = 0; t < 4; t++) {
        cr_assert_eq(tensors[t]->dtype, DTYPE_BF16);
        uint64_t state = seed ^ doc_fnv1a64(tensors[t]->name);
        const uint16_t *stored = tensors[t]->data;
        for (int64_t i = 0; i < tensors[t]->numel; i++) {
            uint16_t expected = doc_value(&state, is_norm[t]);
            cr_assert_eq(stored[i], expected, "%s[%lld]: %04x vs %04x", tensors[t]->name, (long long)i, stored[i],
                         expected);
        }
    }
    checkpoint_close(&checkpoint);
    free(dir);
}

static void moments(const TensorInfo *tensor, double *mean, double *std) {
    float *values = malloc((size_t)tensor->numel * sizeof *values);
    cr_assert_not_null(values);
    tensor_to_float(tensor, values);
    double sum = 0, sum_sq = 0;
    for (int64_t i = 0; i < tensor->numel; i++) sum += values[i];
    *mean = sum / (double)tensor->numel;
    for (int64_t i = 0; i < tensor->numel; i++) sum_sq += (values[i] - *mean) * (values[i] - *mean);
    *std = sqrt(sum_sq / (double)tensor->numel);
    free(values);
}

Test(synth, value_statistics) {
    char *dir = test_synth_checkpoint("small", 5);
    Checkpoint checkpoint;
    ErrorMessage err;
    cr_assert_eq(checkpoint_open(dir, &checkpoint, &err), 0, "%s", err.text);
    double mean, std;
    // 131072 values: the sample std is within ~0.3% of 0.02.
    moments(checkpoint.layers[0].q_proj, &mean, &std);
    cr_assert(fabs(std - 0.02) < 0.02 * 0.02, "q_proj std %g", std);
    cr_assert(fabs(mean) < 0.001, "q_proj mean %g", mean);
    moments(checkpoint.lm_head, &mean, &std);
    cr_assert(fabs(std - 0.02) < 0.02 * 0.02, "lm_head std %g", std);
    // Norm weights near 1 with spread 0.1; pooled over every norm of the model (2816 values).
    double sum = 0, sum_sq = 0;
    int64_t count = 0;
    for (int t = 0; t < checkpoint.files.n_tensors; t++) {
        const TensorInfo *tensor = &checkpoint.files.tensors[t];
        if (tensor->ndim != 1) continue;
        float values[256];
        cr_assert_leq(tensor->numel, 256);
        tensor_to_float(tensor, values);
        for (int64_t i = 0; i < tensor->numel; i++) {
            sum += values[i];
            sum_sq += (double)values[i] * values[i];
            count++;
        }
    }
    cr_assert_eq(count, 4 * (256 + 256 + 64 + 64) + 256);
    mean = sum / (double)count;
    std = sqrt(sum_sq / (double)count - mean * mean);
    cr_assert(fabs(mean - 1.0) < 0.01, "norm mean %g", mean);
    cr_assert(fabs(std - 0.1) < 0.01, "norm std %g", std);
    checkpoint_close(&checkpoint);
    free(dir);
}

Test(synth, creates_directories_and_leaves_no_temp_files) {
    char *base = test_make_temp_dir("synth-nested");
    char *dir = test_path_join(base, "a/b/ckpt");
    ModelConfig config;
    ErrorMessage err;
    cr_assert_eq(synth_preset("tiny", &config, &err), 0);
    cr_assert_eq(synth_write(&config, 0, dir, &err), 0, "%s", err.text);
    cr_assert_eq(synth_write(&config, 0, dir, &err), 0, "%s", err.text);  // overwriting is fine
    DIR *listing = opendir(dir);
    cr_assert_not_null(listing);
    int n = 0;
    struct dirent *entry;
    while ((entry = readdir(listing))) {
        if (entry->d_name[0] == '.') continue;
        cr_assert(!strcmp(entry->d_name, "config.json") || !strcmp(entry->d_name, "model.safetensors"),
                  "unexpected file %s", entry->d_name);
        n++;
    }
    closedir(listing);
    cr_assert_eq(n, 2);

    // An invalid config is refused before anything is written; an unwritable dir names itself.
    config.num_key_value_heads = 3;
    cr_assert_eq(synth_write(&config, 0, dir, &err), -1);
    cr_assert_not_null(strstr(err.text, "num_key_value_heads"), "%s", err.text);
    config.num_key_value_heads = 2;
    char *file_in_the_way = test_path_join(dir, "config.json/sub");
    cr_assert_eq(synth_write(&config, 0, file_in_the_way, &err), -1);
    cr_assert_not_null(strstr(err.text, "config.json"), "%s", err.text);
    free(file_in_the_way);
    free(dir);
    free(base);
}

Test(synth, cli) {
    char *output = NULL;
    cr_assert_eq(test_run_cli("synth --help", &output), 0);
    cr_assert_not_null(strstr(output, "--preset"), "%s", output);
    free(output);
    cr_assert_eq(test_run_cli("synth --preset tiny --bogus", &output), 2);
    cr_assert_not_null(strstr(output, "unknown option '--bogus'"), "%s", output);
    cr_assert_eq(strchr(output, '\n'), output + strlen(output) - 1, "not one line: %s", output);
    free(output);
    cr_assert_eq(test_run_cli("synth --preset nope --out /tmp/x", &output), 2);
    cr_assert_not_null(strstr(output, "unknown preset 'nope'"), "%s", output);
    free(output);
    cr_assert_eq(test_run_cli("synth --preset tiny --seed -3 --out /tmp/x", &output), 2);
    free(output);
    cr_assert_eq(test_run_cli("synth --preset tiny", &output), 2);
    cr_assert_not_null(strstr(output, "--out"), "%s", output);
    free(output);

    char *dir = test_make_temp_dir("synth-cli");
    char args[1024];
    snprintf(args, sizeof args, "synth --preset tiny --seed 0 --out '%s'", dir);
    cr_assert_eq(test_run_cli(args, &output), 0, "%s", output);
    cr_assert_not_null(strstr(output, TINY_SEED0_FINGERPRINT), "%s", output);
    cr_assert_not_null(strstr(output, "115072 parameters"), "%s", output);
    free(output);
    snprintf(args, sizeof args, "synth --preset tiny --untied --out '%s'", dir);
    cr_assert_eq(test_run_cli(args, &output), 0, "%s", output);
    cr_assert_not_null(strstr(output, "untied"), "%s", output);
    cr_assert_not_null(strstr(output, "131456 parameters"), "%s", output);  // + a 256 x 64 head
    free(output);
    free(dir);
}
