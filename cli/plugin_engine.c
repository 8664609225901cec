// Engines in shared libraries behind the engine interface. Contract in plugin_engine.h; the ABI is
// include/fusecheck/engine.h.
#include "plugin_engine.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../golden/trace.h"
#include "../include/fusecheck/engine.h"
#include "interrupt.h"
#include "tap_check.h"

#define OPTION_KEY_MAX 63
#define PLUGIN_NAME_MAX 31
#define PLUGIN_ERROR_MAX 600  // characters of a plugin's last_error kept in a message

typedef struct Plugin {
    char *spec;  // as given to plugin_engine_load: the cache key
    char *path;  // the file dlopen loaded
    char *who;   // "engine plugin PATH": how every message and the crash report name it
    void *handle;
    fusecheck_engine_available_fn available;  // optional
    fusecheck_engine_create_fn create;
    fusecheck_engine_forward_fn forward;
    fusecheck_engine_force_kv_fn force_kv;  // optional
    fusecheck_engine_launches_per_token_fn launches_per_token;  // optional
    fusecheck_engine_bench_prepare_fn bench_prepare;            // optional, with bench_time_decode
    fusecheck_engine_bench_time_decode_fn bench_time_decode;
    fusecheck_engine_last_error_fn last_error;
    fusecheck_engine_destroy_fn destroy;
    char *option_text;            // the spec's options, cut into keys and values in place
    fusecheck_option *options;
    int n_options;
    char name[PLUGIN_NAME_MAX + 1];
    char *summary;
    char *omitted;
    EngineKind kind;
} Plugin;

static Plugin *loaded[PLUGIN_MAX_LOADED];
static int n_loaded;

int plugin_spec_is(const char *name) { return name && !strncmp(name, PLUGIN_SPEC_PREFIX, strlen(PLUGIN_SPEC_PREFIX)); }

static const Plugin *plugin_of(const EngineKind *kind) {
    for (int i = 0; i < n_loaded; i++)
        if (kind == &loaded[i]->kind) return loaded[i];
    return NULL;
}

const char *plugin_engine_path(const EngineKind *kind) {
    const Plugin *plugin = plugin_of(kind);
    return plugin ? plugin->path : NULL;
}

// ----------------------------------------------------------------------------------------------
// text a plugin hands us: made safe to print on one line

// Copies at most `limit` characters of `text` (NULL reads as "") into out, each control character
// replaced by a space, so that one line stays one line.
static void one_line(char *out, size_t size, const char *text, size_t limit) {
    size_t n = 0;
    for (const char *p = text ? text : ""; *p && n + 1 < size && n < limit; p++)
        out[n++] = (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p;
    out[n] = '\0';
}

// The plugin's last error for `engine` (NULL: the last failed create/available), as one line.
static void plugin_error_text(const Plugin *plugin, const fusecheck_engine *engine, char *out, size_t size) {
    interrupt_guard_enter(plugin->who, "last_error");  // the text is the plugin's memory: read it guarded too
    one_line(out, size, plugin->last_error(engine), PLUGIN_ERROR_MAX);
    interrupt_guard_leave();
    if (!out[0]) snprintf(out, size, "(the plugin gave no reason)");
}

static int fail_with_plugin_error(const Plugin *plugin, const fusecheck_engine *engine, const char *what,
                                  ErrorMessage *err) {
    char reason[PLUGIN_ERROR_MAX + 1];
    plugin_error_text(plugin, engine, reason, sizeof reason);
    return fail(err, "%s: %s failed: %s", plugin->who, what, reason);
}

// ----------------------------------------------------------------------------------------------
// an engine's state, and the tap: every tensor checked before the caller's tap sees it

typedef struct {
    const Plugin *plugin;
    fusecheck_engine *engine;
    ModelConfig config;  // the shapes every tap is held to
    int max_context;
} PluginState;

// One forward call's tap: FORMAT.md's rule (tap_check.h) and the data pointer, then the caller's tap.
typedef struct {
    const PluginState *state;
    const EngineTap *downstream;
    int n_tokens;
    int failed;            // a tap failed: every later one is refused, and the call fails
    int tapped_logits, logits_all_nan;
    ErrorMessage err;
} TapCheck;

static int check_tensor(TapCheck *check, int32_t layer, const char *name, const float *data, int32_t rows,
                        int32_t cols) {
    const PluginState *state = check->state;
    if (tap_check_tensor(&state->config, check->n_tokens, layer, name, rows, cols, state->plugin->who, &check->err))
        return -1;
    if (!data) return fail(&check->err, "%s: tapped '%s' with no data", state->plugin->who, name);
    if (!strcmp(name, "logits")) {
        check->tapped_logits = 1;
        check->logits_all_nan = 1;
        for (int c = 0; c < cols && check->logits_all_nan; c++) check->logits_all_nan = isnan(data[c]);
    }
    return 0;
}

// fusecheck_tap.tensor as the plugin calls it.
static int checked_tap(void *context, int32_t layer, const char *name, const float *data, int32_t rows, int32_t cols) {
    TapCheck *check = context;
    if (check->failed) return -1;  // the plugin went on after a refusal; the first message stands
    if (check_tensor(check, layer, name, data, rows, cols) ||
        engine_tap_tensor(check->downstream, layer, name, data, rows, cols, &check->err)) {
        check->failed = 1;
        return -1;
    }
    return 0;
}

// ----------------------------------------------------------------------------------------------
// EngineKind functions over a plugin

static int plugin_available(const Plugin *plugin, ErrorMessage *err) {
    interrupt_guard_enter(plugin->who, "available");
    int status = plugin->available();
    interrupt_guard_leave();
    if (status == 0) return 0;
    char reason[PLUGIN_ERROR_MAX + 1];
    plugin_error_text(plugin, NULL, reason, sizeof reason);
    return fail(err, "%s: not available on this machine: %s", plugin->who, reason);
}

static int32_t abi_dtype(DType dtype) {
    return dtype == DTYPE_BF16 ? FUSECHECK_DTYPE_BF16 : dtype == DTYPE_F16 ? FUSECHECK_DTYPE_F16 : FUSECHECK_DTYPE_F32;
}

static void *plugin_create(const Plugin *plugin, const Checkpoint *checkpoint, EngineProfile profile, int max_context,
                           ErrorMessage *err) {
    const ModelConfig *c = &checkpoint->config;
    if (max_context < 1 || max_context > c->max_position_embeddings) {
        fail(err, "%s: context %d is outside 1..max_position_embeddings (%d)", plugin->who, max_context,
             c->max_position_embeddings);
        return NULL;
    }
    PluginState *state = calloc(1, sizeof *state);
    char *config_json = config_to_json(c);
    const SafetensorsSet *files = &checkpoint->files;
    fusecheck_tensor *tensors = calloc(files->n_tensors ? (size_t)files->n_tensors : 1, sizeof *tensors);
    if (!state || !config_json || !tensors) {
        fail(err, "%s: out of memory creating the engine", plugin->who);
        goto failed;
    }
    for (int t = 0; t < files->n_tensors; t++) {
        const TensorInfo *info = &files->tensors[t];
        fusecheck_tensor *tensor = &tensors[t];
        tensor->name = info->name;
        tensor->dtype = abi_dtype(info->dtype);
        tensor->ndim = info->ndim;
        for (int d = 0; d < info->ndim && d < 4; d++) tensor->shape[d] = info->shape[d];
        tensor->data = info->data;
        tensor->nbytes = info->nbytes;
    }
    fusecheck_model_config config = {
        .hidden_size = c->hidden_size,
        .intermediate_size = c->intermediate_size,
        .num_hidden_layers = c->num_hidden_layers,
        .num_attention_heads = c->num_attention_heads,
        .num_key_value_heads = c->num_key_value_heads,
        .head_dim = c->head_dim,
        .vocab_size = c->vocab_size,
        .max_position_embeddings = c->max_position_embeddings,
        .tie_word_embeddings = c->tie_word_embeddings,
        .rms_norm_eps = c->rms_norm_eps,
        .rope_theta = c->rope_theta,
        .config_json = config_json,
    };
    fusecheck_create_params params = {
        .config = &config,
        .tensors = tensors,
        .n_tensors = files->n_tensors,
        .profile = {profile.kv_dtype == KV_BF16 ? FUSECHECK_KV_BF16 : FUSECHECK_KV_F32, FUSECHECK_DTYPE_BF16},
        .max_context = max_context,
        .options = plugin->options,
        .n_options = plugin->n_options,
    };
    interrupt_guard_enter(plugin->who, "create");
    state->engine = plugin->create(&params);
    interrupt_guard_leave();
    if (!state->engine) {
        fail_with_plugin_error(plugin, NULL, "create", err);
        goto failed;
    }
    state->plugin = plugin;
    state->config = *c;
    state->max_context = max_context;
    free(tensors);
    free(config_json);
    return state;
failed:
    free(tensors);
    free(config_json);
    free(state);
    return NULL;
}

static int plugin_forward(void *opaque, const int32_t *tokens, int n_tokens, int position, const EngineTap *tap,
                          int32_t *next_token, ErrorMessage *err) {
    PluginState *state = opaque;
    const Plugin *plugin = state->plugin;
    if (n_tokens < 1) return fail(err, "%s: forward needs at least one token", plugin->who);
    if (position < 0 || position + n_tokens > state->max_context)
        return fail(err, "%s: positions %d..%d exceed the context of %d", plugin->who, position,
                    position + n_tokens - 1, state->max_context);
    for (int i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= state->config.vocab_size)
            return fail(err, "%s: token id %d at position %d is outside the vocabulary [0, %d)", plugin->who,
                        tokens[i], position + i, state->config.vocab_size);
    TapCheck check = {.state = state, .downstream = tap, .n_tokens = n_tokens};
    fusecheck_tap checked = {&check, checked_tap};
    int32_t next = -1;
    interrupt_guard_enter(plugin->who, "forward");
    int status = plugin->forward(state->engine, tokens, n_tokens, position, tap ? &checked : NULL, &next);
    interrupt_guard_leave();
    if (check.failed) {
        *err = check.err;
        return -1;
    }
    if (status) return fail_with_plugin_error(plugin, state->engine, "forward", err);
    int nan_logits = next == -1 && check.tapped_logits && check.logits_all_nan;
    if ((next < 0 || next >= state->config.vocab_size) && !nan_logits)
        return fail(err, "%s: forward returned next token %d, outside the vocabulary [0, %d)%s", plugin->who,
                    (int)next, state->config.vocab_size,
                    next == -1 ? " (-1 is for logits that are all NaN, and this call tapped none such)" : "");
    *next_token = next;
    return 0;
}

static int plugin_force_kv(void *opaque, int layer, const float *k, const float *v, int n_tokens, ErrorMessage *err) {
    PluginState *state = opaque;
    const Plugin *plugin = state->plugin;
    if (layer < 0 || layer >= state->config.num_hidden_layers)
        return fail(err, "%s: force_kv of layer %d, outside [0, %d)", plugin->who, layer, state->config.num_hidden_layers);
    interrupt_guard_enter(plugin->who, "force_kv");
    int status = plugin->force_kv(state->engine, layer, k, v, n_tokens);
    interrupt_guard_leave();
    return status ? fail_with_plugin_error(plugin, state->engine, "force_kv", err) : 0;
}

static int plugin_launches_per_token(const void *opaque) {
    const PluginState *state = opaque;
    interrupt_guard_enter(state->plugin->who, "launches_per_token");
    int32_t launches = state->plugin->launches_per_token(state->engine);
    interrupt_guard_leave();
    return launches > 0 ? launches : 0;
}

static int plugin_bench_prepare(void *opaque, int context, int32_t token, unsigned seed, ErrorMessage *err) {
    PluginState *state = opaque;
    const Plugin *plugin = state->plugin;
    if (context < 1 || context >= state->max_context || token < 0 || token >= state->config.vocab_size)
        return fail(err, "%s: bench_prepare of context %d and token %d, outside [1, %d) and [0, %d)", plugin->who,
                    context, (int)token, state->max_context, state->config.vocab_size);
    interrupt_guard_enter(plugin->who, "bench_prepare");
    int status = plugin->bench_prepare(state->engine, context, token, seed);
    interrupt_guard_leave();
    return status ? fail_with_plugin_error(plugin, state->engine, "bench_prepare", err) : 0;
}

static int plugin_bench_time_decode(void *opaque, int n_steps, double *ms, ErrorMessage *err) {
    PluginState *state = opaque;
    const Plugin *plugin = state->plugin;
    double elapsed = -1.0;
    interrupt_guard_enter(plugin->who, "bench_time_decode");
    int status = plugin->bench_time_decode(state->engine, n_steps, &elapsed);
    interrupt_guard_leave();
    if (status) return fail_with_plugin_error(plugin, state->engine, "bench_time_decode", err);
    // A time that is not a positive number would become an infinite or negative tok/s in a report.
    if (!(elapsed > 0.0) || isinf(elapsed))
        return fail(err, "%s: bench_time_decode reported %g ms for %d steps", plugin->who, elapsed, n_steps);
    *ms = elapsed;
    return 0;
}

static void plugin_destroy(void *opaque) {
    PluginState *state = opaque;
    if (!state) return;
    interrupt_guard_enter(state->plugin->who, "destroy");
    state->plugin->destroy(state->engine);
    interrupt_guard_leave();
    free(state);
}

// EngineKind.create and .available take no kind, so each loaded plugin gets its own pair, by slot.
#define SLOT_FUNCTIONS(i)                                                                                         \
    static int available_##i(ErrorMessage *err) { return plugin_available(loaded[i], err); }                     \
    static void *create_##i(const Checkpoint *checkpoint, EngineProfile profile, int max_context, ErrorMessage *err) { \
        return plugin_create(loaded[i], checkpoint, profile, max_context, err);                                   \
    }
SLOT_FUNCTIONS(0)
SLOT_FUNCTIONS(1)
SLOT_FUNCTIONS(2)
SLOT_FUNCTIONS(3)
SLOT_FUNCTIONS(4)
SLOT_FUNCTIONS(5)
SLOT_FUNCTIONS(6)
SLOT_FUNCTIONS(7)
static int (*const SLOT_AVAILABLE[])(ErrorMessage *) = {available_0, available_1, available_2, available_3,
                                                       available_4, available_5, available_6, available_7};
static void *(*const SLOT_CREATE[])(const Checkpoint *, EngineProfile, int, ErrorMessage *) = {
    create_0, create_1, create_2, create_3, create_4, create_5, create_6, create_7};
_Static_assert(sizeof SLOT_CREATE / sizeof SLOT_CREATE[0] == PLUGIN_MAX_LOADED, "one create per plugin slot");
_Static_assert(sizeof SLOT_AVAILABLE / sizeof SLOT_AVAILABLE[0] == PLUGIN_MAX_LOADED, "one available per slot");

// ----------------------------------------------------------------------------------------------
// loading

static void plugin_free(Plugin *plugin) {
    if (!plugin) return;
    // The library itself stays loaded (plugin_engine.h says why); a failed load leaves it mapped too.
    free(plugin->spec);
    free(plugin->path);
    free(plugin->who);
    free(plugin->option_text);
    free(plugin->options);
    free(plugin->summary);
    free(plugin->omitted);
    free(plugin);
}

static int valid_key_character(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
}

// "plugin:PATH[:K=V,...]" into plugin->path and its options.
static int parse_spec(Plugin *plugin, const char *spec, ErrorMessage *err) {
    const char *rest = spec + strlen(PLUGIN_SPEC_PREFIX);
    const char *colon = strchr(rest, ':');
    size_t path_length = colon ? (size_t)(colon - rest) : strlen(rest);
    if (path_length == 0) return fail(err, "--engine '%s': no path after 'plugin:' (plugin:PATH.so[:KEY=VALUE,...])", spec);
    // A bare name is a file here, never a library searched for on LD_LIBRARY_PATH.
    int here = memchr(rest, '/', path_length) == NULL;
    if (!(plugin->path = malloc(path_length + 3))) return fail(err, "out of memory");
    snprintf(plugin->path, path_length + 3, "%s%.*s", here ? "./" : "", (int)path_length, rest);
    if (!colon) return 0;
    if (!colon[1]) return fail(err, "--engine '%s': nothing after the ':' that starts the options (KEY=VALUE,...)", spec);
    if (!(plugin->option_text = strdup(colon + 1))) return fail(err, "out of memory");
    int n = 1;
    for (const char *p = plugin->option_text; *p; p++) n += *p == ',';
    if (!(plugin->options = calloc((size_t)n, sizeof *plugin->options))) return fail(err, "out of memory");
    char *item = plugin->option_text;
    for (int i = 0; i < n; i++) {
        char *comma = strchr(item, ',');
        if (comma) *comma = '\0';
        char *equals = strchr(item, '=');
        size_t key_length = equals ? (size_t)(equals - item) : 0;
        int key_ok = equals && key_length >= 1 && key_length <= OPTION_KEY_MAX;
        for (size_t j = 0; key_ok && j < key_length; j++) key_ok = valid_key_character(item[j]);
        if (!key_ok)
            return fail(err, "--engine '%s': option '%s' is not KEY=VALUE (KEY 1..%d of A-Z a-z 0-9 _ . -)", spec, item,
                        OPTION_KEY_MAX);
        *equals = '\0';
        for (int j = 0; j < i; j++)
            if (!strcmp(plugin->options[j].key, item)) return fail(err, "--engine '%s': option '%s' is given twice", spec, item);
        plugin->options[i].key = item;
        plugin->options[i].value = equals + 1;
        plugin->n_options = i + 1;
        if (comma) item = comma + 1;
    }
    return 0;
}

// dlsym of `name`; a required one that is missing fails naming it.
static int find_symbol(Plugin *plugin, const char *name, int required, void **out, ErrorMessage *err) {
    dlerror();
    *out = dlsym(plugin->handle, name);
    if (!*out && required)
        return fail(err, "%s: missing symbol %s (every engine plugin exports it: docs/ENGINE_ABI.md)", plugin->who, name);
    return 0;
}

static int valid_name(const char *name) {
    size_t length = strlen(name);
    if (length < 1 || length > PLUGIN_NAME_MAX) return 0;
    for (size_t i = 0; i < length; i++)
        if (!valid_key_character(name[i])) return 0;
    return 1;
}

// fusecheck_engine_describe, checked, into the plugin's EngineKind.
// The description's strings, copied while the guard is on (they are the plugin's memory, and a bad
// pointer is its crash, not fusecheck's). `complete` is 0 when a string was longer than its buffer.
typedef struct {
    int described;  // describe returned non-NULL
    char name[PLUGIN_NAME_MAX + 2];
    char summary[256];
    char omitted[256];
    int name_complete, omitted_complete;
    uint32_t capabilities;
    int32_t default_kv_dtype;
} Description;

// Copies `text` (NULL reads as "") into out; 1 when it fit whole.
static int copy_text(char *out, size_t size, const char *text) {
    size_t n = 0;
    for (const char *p = text ? text : ""; *p; p++) {
        if (n + 1 == size) {
            out[n] = '\0';
            return 0;
        }
        out[n++] = *p;
    }
    out[n] = '\0';
    return 1;
}

static void read_description(Plugin *plugin, fusecheck_engine_describe_fn describe_fn, Description *d) {
    memset(d, 0, sizeof *d);
    interrupt_guard_enter(plugin->who, "describe");
    const fusecheck_engine_info *info = describe_fn();
    if (info) {
        d->described = 1;
        d->name_complete = info->name && copy_text(d->name, sizeof d->name, info->name);
        char summary[sizeof d->summary];
        copy_text(summary, sizeof summary, info->summary);
        one_line(d->summary, sizeof d->summary, summary, 200);
        d->omitted_complete = copy_text(d->omitted, sizeof d->omitted, info->omitted);
        d->capabilities = info->capabilities;
        d->default_kv_dtype = info->default_kv_dtype;
    }
    interrupt_guard_leave();
}

// fusecheck_engine_describe, checked, into the plugin's EngineKind.
static int describe(Plugin *plugin, ErrorMessage *err) {
    fusecheck_engine_describe_fn describe_fn;
    if (find_symbol(plugin, "fusecheck_engine_describe", 1, (void **)&describe_fn, err)) return -1;
    Description d;
    read_description(plugin, describe_fn, &d);
    if (!d.described) return fail(err, "%s: fusecheck_engine_describe returned NULL", plugin->who);
    char shown[48];
    one_line(shown, sizeof shown, d.name, 40);
    if (!d.name_complete || !valid_name(d.name))
        return fail(err, "%s: engine name '%s%s' is not 1..%d of A-Z a-z 0-9 _ . -", plugin->who, shown,
                    d.name_complete ? "" : "...", PLUGIN_NAME_MAX);
    if (!strcmp(d.name, "reference") || !strcmp(d.name, "fused") || !strcmp(d.name, "cublas"))
        return fail(err, "%s: engine name '%s' is a built-in engine's: traces it writes would claim to be that engine's",
                    plugin->who, d.name);
    snprintf(plugin->name, sizeof plugin->name, "%s", d.name);
    const uint32_t known = FUSECHECK_ENGINE_NEEDS_GPU | FUSECHECK_ENGINE_KV_F32 | FUSECHECK_ENGINE_KV_BF16 |
                           FUSECHECK_ENGINE_CAN_FORCE_KV;
    uint32_t capabilities = d.capabilities;
    if (capabilities & ~known)
        return fail(err, "%s: unknown capability bits 0x%x (ABI version %u knows 0x%x)", plugin->who,
                    (unsigned)(capabilities & ~known), FUSECHECK_ENGINE_ABI_VERSION, (unsigned)known);
    if (!(capabilities & (FUSECHECK_ENGINE_KV_F32 | FUSECHECK_ENGINE_KV_BF16)))
        return fail(err, "%s: capabilities name no KV cache dtype (FUSECHECK_ENGINE_KV_F32 or _KV_BF16)", plugin->who);
    int default_ok = (d.default_kv_dtype == FUSECHECK_KV_F32 && (capabilities & FUSECHECK_ENGINE_KV_F32)) ||
                     (d.default_kv_dtype == FUSECHECK_KV_BF16 && (capabilities & FUSECHECK_ENGINE_KV_BF16));
    if (!default_ok)
        return fail(err, "%s: default_kv_dtype %d is not a KV dtype its capabilities allow", plugin->who,
                    (int)d.default_kv_dtype);
    if ((capabilities & FUSECHECK_ENGINE_CAN_FORCE_KV) && !plugin->force_kv)
        return fail(err, "%s: says FUSECHECK_ENGINE_CAN_FORCE_KV but does not export fusecheck_engine_force_kv",
                    plugin->who);
    // The trace writer would refuse these at the first run; refusing them here says whose they are.
    TraceMeta declared = {0};
    char why[256];
    if (!d.omitted_complete)
        return fail(err, "%s: declares omitted a list longer than every tensor name together", plugin->who);
    if (trace_meta_set_omitted(&declared, d.omitted, why, sizeof why))
        return fail(err, "%s: declares omitted: %s", plugin->who, why);
    if (!(plugin->summary = strdup(d.summary)) || !(plugin->omitted = strdup(d.omitted)))
        return fail(err, "out of memory");

    EngineKind *kind = &plugin->kind;
    kind->name = plugin->name;
    kind->summary = plugin->summary;
    kind->capabilities = ((capabilities & FUSECHECK_ENGINE_NEEDS_GPU) ? ENGINE_NEEDS_GPU : 0) |
                         ((capabilities & FUSECHECK_ENGINE_KV_F32) ? ENGINE_KV_F32 : 0) |
                         ((capabilities & FUSECHECK_ENGINE_KV_BF16) ? ENGINE_KV_BF16 : 0) |
                         ((capabilities & FUSECHECK_ENGINE_CAN_FORCE_KV) ? ENGINE_CAN_FORCE_KV : 0);
    kind->default_kv_dtype = d.default_kv_dtype == FUSECHECK_KV_BF16 ? KV_BF16 : KV_F32;
    kind->forward = plugin_forward;
    kind->force_kv = (capabilities & FUSECHECK_ENGINE_CAN_FORCE_KV) ? plugin_force_kv : NULL;
    kind->launches_per_token = plugin->launches_per_token ? plugin_launches_per_token : NULL;
    kind->destroy = plugin_destroy;
    kind->omitted = plugin->omitted;
    kind->bench_prepare = plugin->bench_prepare ? plugin_bench_prepare : NULL;
    kind->bench_time_decode = plugin->bench_time_decode ? plugin_bench_time_decode : NULL;
    return 0;
}

// dlopen, the ABI version, the symbols, the description.
static int open_plugin(Plugin *plugin, ErrorMessage *err) {
    size_t who_size = strlen(plugin->path) + sizeof "engine plugin ";
    if (!(plugin->who = malloc(who_size))) return fail(err, "out of memory");
    snprintf(plugin->who, who_size, "engine plugin %s", plugin->path);
    struct stat info;
    if (stat(plugin->path, &info)) return fail(err, "%s: no such file", plugin->who);
    if (!S_ISREG(info.st_mode)) return fail(err, "%s: not a regular file", plugin->who);
    if (interrupt_guard_install(err)) return -1;
    // A crash in the library's constructors is the plugin's too.
    interrupt_guard_enter(plugin->who, "loading");
    plugin->handle = dlopen(plugin->path, RTLD_NOW | RTLD_LOCAL);
    interrupt_guard_leave();
    if (!plugin->handle) {
        char reason[512];
        one_line(reason, sizeof reason, dlerror(), 400);
        return fail(err, "%s: cannot load: %s", plugin->who, reason);
    }
    fusecheck_engine_abi_version_fn abi_version;
    if (find_symbol(plugin, "fusecheck_engine_abi_version", 1, (void **)&abi_version, err)) return -1;
    interrupt_guard_enter(plugin->who, "abi_version");
    uint32_t version = abi_version();
    interrupt_guard_leave();
    if (version != FUSECHECK_ENGINE_ABI_VERSION)
        return fail(err,
                    "%s: ABI version %u, but this fusecheck speaks version %u (rebuild it against this fusecheck's "
                    "include/fusecheck/engine.h)",
                    plugin->who, (unsigned)version, FUSECHECK_ENGINE_ABI_VERSION);
    if (find_symbol(plugin, "fusecheck_engine_create", 1, (void **)&plugin->create, err) ||
        find_symbol(plugin, "fusecheck_engine_forward", 1, (void **)&plugin->forward, err) ||
        find_symbol(plugin, "fusecheck_engine_destroy", 1, (void **)&plugin->destroy, err) ||
        find_symbol(plugin, "fusecheck_engine_last_error", 1, (void **)&plugin->last_error, err) ||
        find_symbol(plugin, "fusecheck_engine_available", 0, (void **)&plugin->available, err) ||
        find_symbol(plugin, "fusecheck_engine_force_kv", 0, (void **)&plugin->force_kv, err) ||
        find_symbol(plugin, "fusecheck_engine_launches_per_token", 0, (void **)&plugin->launches_per_token, err) ||
        find_symbol(plugin, "fusecheck_engine_bench_prepare", 0, (void **)&plugin->bench_prepare, err) ||
        find_symbol(plugin, "fusecheck_engine_bench_time_decode", 0, (void **)&plugin->bench_time_decode, err))
        return -1;
    if (!plugin->bench_prepare != !plugin->bench_time_decode)
        return fail(err, "%s: exports %s but not %s (both or neither)", plugin->who,
                    plugin->bench_prepare ? "fusecheck_engine_bench_prepare" : "fusecheck_engine_bench_time_decode",
                    plugin->bench_prepare ? "fusecheck_engine_bench_time_decode" : "fusecheck_engine_bench_prepare");
    return describe(plugin, err);
}

const EngineKind *plugin_engine_load(const char *spec, ErrorMessage *err) {
    if (!plugin_spec_is(spec)) {
        fail(err, "'%s' is not a plugin spec (plugin:PATH.so[:KEY=VALUE,...])", spec ? spec : "(null)");
        return NULL;
    }
    for (int i = 0; i < n_loaded; i++)
        if (!strcmp(loaded[i]->spec, spec)) return &loaded[i]->kind;
    if (n_loaded == PLUGIN_MAX_LOADED) {
        fail(err, "--engine '%s': more than %d engine plugins in one process", spec, PLUGIN_MAX_LOADED);
        return NULL;
    }
    Plugin *plugin = calloc(1, sizeof *plugin);
    if (!plugin || !(plugin->spec = strdup(spec))) {
        free(plugin);
        fail(err, "out of memory loading '%s'", spec);
        return NULL;
    }
    if (parse_spec(plugin, spec, err) || open_plugin(plugin, err)) {
        plugin_free(plugin);
        return NULL;
    }
    int slot = n_loaded;
    plugin->kind.create = SLOT_CREATE[slot];
    plugin->kind.available = plugin->available ? SLOT_AVAILABLE[slot] : NULL;
    loaded[slot] = plugin;
    n_loaded++;
    return &plugin->kind;
}
