#!/usr/bin/env python3
"""Regenerates the seed corpora in tests/fuzz/corpus/ from the project's own tools.

usage: tests/fuzz/make_seeds.py FUSECHECK_BIN   (run from the repository root)
config: synth tiny's config.json and variants; safetensors: synth tiny's file cut down to its small
tensors, plus F32/F16/empty/scalar/metadata cases; index: indexes for fuzz_write_shards' two shards;
trace: two goldens of tiny (prefill only, prefill + one decode step). Not made here (it needs h5py):
one-step-v2-declared.h5, the one-step golden of format version 2 with layer 0's gate, up and act
deleted and declared in the `omitted` attribute, then h5repack'd (see tests/fuzz/README.md).
"""
import json, os, struct, subprocess, sys, tempfile

fusecheck = sys.argv[1]
corpus = "tests/fuzz/corpus"
work = tempfile.mkdtemp(prefix="fusecheck-seeds-")
tiny = os.path.join(work, "tiny")
subprocess.run([fusecheck, "synth", "--preset", "tiny", "--seed", "1", "--out", tiny], check=True,
               stdout=subprocess.DEVNULL)

def put(target, name, data):
    with open(os.path.join(corpus, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

# config.json
config_text = open(os.path.join(tiny, "config.json")).read()
config = json.loads(config_text)
put("config", "tiny.json", config_text)
variant = dict(config); del variant["head_dim"]; del variant["num_key_value_heads"]
put("config", "defaults.json", json.dumps(variant))
variant = dict(config); theta = variant.pop("rope_theta"); variant.pop("rope_scaling")
variant["rope_parameters"] = {"rope_type": "default", "rope_theta": theta}
put("config", "rope-parameters.json", json.dumps(variant, indent=1))
variant = dict(config, tie_word_embeddings=False, hidden_size=1024, num_attention_heads=16,
               num_key_value_heads=8, head_dim=128, intermediate_size=3072, num_hidden_layers=28,
               vocab_size=151936, rms_norm_eps=1e-6, rope_theta=1000000.0)
put("config", "qwen3-0.6b-shape.json", json.dumps(variant))

# safetensors: keep the tensors of at most 64 elements, re-packed with fresh offsets.
def safetensors(entries, metadata=None):
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + data

raw = open(os.path.join(tiny, "model.safetensors"), "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
kept = []
for name, info in sorted(header.items()):
    if name == "__metadata__" or len(kept) >= 3:
        continue
    count = 1
    for d in info["shape"]:
        count *= d
    if count <= 64:
        begin, end = info["data_offsets"]
        kept.append((name, info["dtype"], info["shape"], raw[8 + n + begin:8 + n + end]))
put("safetensors", "tiny-norms.safetensors", safetensors(kept, {"format": "pt"}))
put("safetensors", "dtypes.safetensors", safetensors([
    ("f32", "F32", [2, 2], struct.pack("<4f", 1, -2, 3.5, 0)),
    ("f16", "F16", [3], struct.pack("<3H", 0x3c00, 0x8001, 0x7c00)),
    ("bf16", "BF16", [1, 1, 1, 2], struct.pack("<2H", 0x3f80, 0xff80)),
    ("empty", "F32", [0, 4], b""),
    ("scalar", "F32", [], struct.pack("<f", 7)),
]))

# index for fuzz_write_shards' shard-1 (a.weight, b.weight) and shard-2 (c.weight)
weight_map = {"a.weight": "shard-1.safetensors", "b.weight": "shard-1.safetensors",
              "c.weight": "shard-2.safetensors"}
put("index", "two-shards.json", json.dumps({"metadata": {"total_size": 22}, "weight_map": weight_map}))
put("index", "one-shard.json", json.dumps({"weight_map": {"c.weight": "shard-2.safetensors"}}))
put("index", "missing-shard.json", json.dumps({"weight_map": dict(weight_map, **{"d.weight": "shard-3.safetensors"})}))

# traces
for name, args in (("prefill-only.h5", ["--prompt-tokens", "3,5", "--steps", "0"]),
                   ("one-step.h5", ["--prompt-tokens", "3", "--steps", "1"])):
    out = os.path.join(work, name)
    subprocess.run([fusecheck, "golden", "--model", tiny, "--out", out] + args, check=True, stdout=subprocess.DEVNULL)
    put("trace", name, open(out, "rb").read())
subprocess.run(["rm", "-rf", work], check=True)
