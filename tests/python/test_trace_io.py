"""The Python trace writer and reader (python/fusecheck) against the C side (issue 17):

- a committed golden read with TraceReader and written back with TraceWriter (producer "python-test")
  passes `fusecheck compare` against that golden and `fusecheck validate`; one tensor of one layer and
  step scaled by 1% fails compare naming that step, layer and tensor;
- TraceWriter writes what the C writer writes: a C-written version-2 trace copied through Python is
  the same HDF5 tree, attribute for attribute (types included), dataset for dataset, value for value;
- TraceWriter refuses what the C writer refuses (and what validate reports), leaving no file behind;
- TraceReader refuses what the C reader refuses, file by file, and `fusecheck compare` refuses the same files.

Run by ctest through tests/python/run_tests.sh (plain asserts; pytest runs them too). Needs numpy,
h5py and the fusecheck binary ($FUSECHECK_BIN, else build/fusecheck).
"""

import os
import shutil
import subprocess

import h5py
import numpy as np

from fusecheck import TraceError, TraceWriter, read_trace

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("FUSECHECK_BIN") or os.path.join(ROOT, "build", "fusecheck")
GOLDEN = os.path.join(ROOT, "golden", "tiny-kv-f32.h5")


def run_cli(*args):
    """(exit status, stdout + stderr) of the fusecheck CLI."""
    done = subprocess.run([BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return done.returncode, done.stdout


def copy_trace(source, out, producer="python-test", tool_version="fusecheck-python 0.1.0", change=None):
    """Writes every tensor of trace `source` to `out` with TraceWriter, in the C writer's order;
    change(step, layer, name, values) may return replacement values."""
    with read_trace(source) as golden:
        meta = golden.meta
        with TraceWriter(out, producer=producer, kv_dtype=meta.kv_dtype, weights_dtype=meta.weights_dtype,
                         weights_fingerprint=meta.weights_fingerprint, tool_version=tool_version,
                         model_config=meta.model_config, prompt_length=meta.prompt_length,
                         omitted=meta.omitted, kv_forced=bool(meta.kv_forced)) as writer:
            writer.write_tokens(golden.tokens)
            for step in range(golden.n_steps):
                writer.begin_step(step, *golden.step_info(step))

                def put(layer, name):
                    values = golden.read_tensor(step, layer, name)
                    if change:
                        replaced = change(step, layer, name, values)
                        values = values if replaced is None else replaced
                    writer.write_tensor(layer, name, values)

                put(None, "embed")
                for layer in range(golden.n_layers(step)):
                    for name in ("attn_norm", "q", "k", "v", "attn", "attn_out", "resid_attn", "mlp_norm", "gate",
                                 "up", "act", "mlp_out", "resid_mlp"):
                        put(layer, name)
                put(None, "final_norm")
                put(None, "logits")
                writer.write_next_token(golden.read_next_token(step))


def leftovers(directory):
    return sorted(name for name in os.listdir(directory) if ".tmp-" in name)


def test_round_trip_of_a_committed_golden_passes_compare_and_validate(tmp_path):
    out = os.path.join(str(tmp_path), "python.h5")
    copy_trace(GOLDEN, out)
    assert leftovers(str(tmp_path)) == []
    status, output = run_cli("compare", out, GOLDEN)
    assert status == 0, output
    assert "A (under test): " + out + "  [producer python-test" in output, output
    assert "0 missing, 0 failures" in output and output.rstrip().endswith("PASS"), output
    status, output = run_cli("validate", out)
    assert status == 0, output
    assert "valid: 0 problems (format version 2, producer python-test, 9 steps, 2 layers" in output, output


def test_a_scaled_tensor_fails_compare_naming_its_step_layer_and_tensor(tmp_path):
    out = os.path.join(str(tmp_path), "perturbed.h5")

    def scale(step, layer, name, values):
        return values * np.float32(1.01) if (step, layer, name) == (3, 1, "mlp_out") else None

    copy_trace(GOLDEN, out, change=scale)
    status, output = run_cli("compare", out, GOLDEN)
    assert status == 1, output
    assert "first failure: step 3 layer 1 tensor mlp_out rel_l2 1.0e-02 > 1e-03" in output, output
    assert "0 missing, 1 failure," in output, output  # resid_mlp is copied unscaled: only mlp_out differs


def c_written_trace(directory):
    """A version-2 trace from the C writer: synthetic tiny checkpoint, `fusecheck golden`."""
    model, trace = os.path.join(directory, "model"), os.path.join(directory, "c.h5")
    for args in (("synth", "--preset", "tiny", "--seed", "3", "--out", model),
                 ("golden", "--model", model, "--prompt-tokens", "5,9,2,7", "--steps", "3", "--quiet", "--out", trace)):
        status, output = run_cli(*args)
        assert status == 0, output
    return trace


def hdf5_tree(path):
    """Every object and attribute of an HDF5 file with its HDF5 type, shape, layout and value."""
    tree = {}
    with h5py.File(path, "r") as file:
        def describe_attributes(name, owner):
            for key in owner.attrs:
                attribute = owner.attrs.get_id(key)
                type_ = attribute.get_type()
                string = isinstance(type_, h5py.h5t.TypeStringID)
                tree[f"{name}@{key}"] = (type_.get_class(), type_.get_size() if not string else type_.is_variable_str(),
                                         type_.get_cset() if string else type_.get_order(), attribute.shape,
                                         str(owner.attrs[key]))

        def visit(name, object_):
            if isinstance(object_, h5py.Dataset):
                type_ = object_.id.get_type()
                layout = object_.id.get_create_plist().get_layout()
                tree[name] = ("dataset", type_.get_class(), type_.get_size(), type_.get_order(), object_.shape,
                              layout, object_.compression, object_[()].tobytes())
            else:
                tree[name] = ("group",)
            describe_attributes(name, object_)

        describe_attributes("/", file)
        file.visititems(visit)
    return tree


def test_the_python_writer_writes_what_the_c_writer_writes(tmp_path):
    c_trace = c_written_trace(str(tmp_path))
    python_trace = os.path.join(str(tmp_path), "python.h5")
    with read_trace(c_trace) as c:
        producer, tool_version = c.meta.producer, c.meta.tool_version
    copy_trace(c_trace, python_trace, producer=producer, tool_version=tool_version)
    c_tree, python_tree = hdf5_tree(c_trace), hdf5_tree(python_trace)
    assert sorted(c_tree) == sorted(python_tree), set(c_tree) ^ set(python_tree)
    for key in c_tree:
        assert c_tree[key] == python_tree[key], f"{key}: C {c_tree[key][:6]} vs Python {python_tree[key][:6]}"
    assert len(c_tree) > 100  # 4 steps of 2 layers: the comparison saw the whole tree


class Refusal:
    """A writer open on a golden's metadata, for refusal cases; every case expects a TraceError."""

    def __init__(self, directory, **overrides):
        self.golden = read_trace(GOLDEN)
        self.meta = self.golden.meta
        self.path = os.path.join(directory, "refused.h5")
        arguments = dict(producer="python-test", kv_dtype="f32", weights_dtype="bf16",
                         weights_fingerprint=self.meta.weights_fingerprint, tool_version="fusecheck-python 0.1.0",
                         model_config=self.meta.model_config, prompt_length=self.meta.prompt_length)
        arguments.update(overrides)
        self.writer = TraceWriter(self.path, **arguments)

    def step(self, step, skip=()):
        """Writes a whole step from the golden, less the (layer, name) pairs in skip."""
        g, w = self.golden, self.writer
        w.begin_step(step, *g.step_info(step))
        pairs = [(None, "embed")] + [(layer, name) for layer in range(2) for name in g.list_tensors(step, layer)]
        for layer, name in pairs + [(None, "final_norm"), (None, "logits")]:
            if (layer, name) not in skip:
                w.write_tensor(layer, name, g.read_tensor(step, layer, name))
        if (None, "next_token") not in skip:
            w.write_next_token(g.read_next_token(step))


def expect_refusal(action, fragment):
    try:
        action()
    except TraceError as error:
        message = str(error)
        assert fragment in message, f"expected '{fragment}' in: {message}"
        assert "\n" not in message, message
        return message
    raise AssertionError(f"not refused (expected '{fragment}')")


def test_the_writer_refuses_what_the_c_writer_refuses_and_leaves_nothing(tmp_path):
    directory = str(tmp_path)
    n = 12  # the golden's prompt length: rows of step 0
    good_q = np.zeros((n, 64), np.float32)
    cases = [
        ("rows", lambda r: (r.writer.begin_step(0, 0, n), r.writer.write_tensor(0, "q", np.zeros((n + 1, 64)))),
         "/step_0000/layer_00/q: 13 rows, expected 12"),
        ("columns", lambda r: (r.writer.begin_step(0, 0, n), r.writer.write_tensor(0, "k", np.zeros((n, 64)))),
         "/step_0000/layer_00/k: 64 columns, expected 32 (num_key_value_heads*head_dim)"),
        ("1-D", lambda r: (r.writer.begin_step(0, 0, n), r.writer.write_tensor(None, "logits", np.zeros(256))),
         "/step_0000/logits: shape [256], expected a non-empty 2-D"),
        ("integer data", lambda r: (r.writer.begin_step(0, 0, n), r.writer.write_tensor(0, "q", good_q.astype(int))),
         "dtype int64, expected floating point"),
        ("order", lambda r: r.writer.begin_step(1, n, 1), "step 1 begun out of order (expected step 0)"),
        ("positions", lambda r: (r.step(0), r.writer.begin_step(1, n + 1, 1)),
         "step 1: first_position 13, n_tokens 1; expected 12, 1"),
        ("unknown name", lambda r: (r.writer.begin_step(0, 0, n), r.writer.write_tensor(0, "attn_scores", good_q)),
         "bad tensor name 'attn_scores' in layer 0"),
        ("next_token as a tensor", lambda r: (r.writer.begin_step(0, 0, n),
                                              r.writer.write_tensor(None, "next_token", np.zeros((1, 1)))),
         "bad tensor name 'next_token' at step level (use write_next_token)"),
        ("layer name at step level", lambda r: (r.writer.begin_step(0, 0, n), r.writer.write_tensor(None, "q", good_q)),
         "bad tensor name 'q' at step level (a layer tensor: give its layer)"),
        ("layer beyond the model", lambda r: (r.writer.begin_step(0, 0, n), r.writer.write_tensor(2, "q", good_q)),
         "layer 2, but model_config has num_hidden_layers 2"),
        ("before a step", lambda r: r.writer.write_tensor(0, "q", good_q), "tensor 'q' written before begin_step"),
        ("twice", lambda r: (r.writer.begin_step(0, 0, n), r.writer.write_tensor(0, "q", good_q),
                             r.writer.write_tensor(0, "q", good_q)), "/step_0000/layer_00/q written twice"),
        ("tokens twice", lambda r: (r.writer.write_tokens(r.golden.tokens), r.writer.write_tokens(r.golden.tokens)),
         "/tokens written twice"),
        ("token id", lambda r: r.writer.write_tokens(np.array([1, 256, 3])),
         "/tokens: 1 token ids outside [0, vocab_size 256), the first tokens[1] = 256"),
        ("contract checkpoint missing", lambda r: (r.step(0, skip={(1, "k")}), r.writer.begin_step(1, n, 1)),
         "/step_0000 is missing layer_01/k (not declared omitted; contract checkpoints never are)"),
        ("undeclared tensor missing", lambda r: (r.step(0, skip={(0, "gate")}), r.writer.begin_step(1, n, 1)),
         "/step_0000 is missing layer_00/gate"),
        ("argmax", lambda r: (r.step(0, skip={(None, "next_token")}),
                              r.writer.write_next_token((r.golden.read_next_token(0) + 1) % 256)),
         "/step_0000/next_token: "),
        ("no tokens", lambda r: (r.step(0), r.writer.close()), "not written: /tokens was never written"),
        ("too few tokens", lambda r: (r.writer.write_tokens(r.golden.tokens[:n]), r.step(0), r.step(1),
                                      r.writer.close()),
         "not written: /tokens has 12 tokens, 2 steps after a 12-token prompt need 13"),
        ("no steps", lambda r: (r.writer.write_tokens(r.golden.tokens), r.writer.close()), "not written: no steps"),
        ("last step incomplete", lambda r: (r.writer.write_tokens(r.golden.tokens), r.step(0, skip={(None, "embed")}),
                                            r.writer.close()),
         "not written: /step_0000 is missing embed"),
    ]
    for name, action, fragment in cases:
        refusal = Refusal(directory)
        message = expect_refusal(lambda: action(refusal), fragment)
        assert refusal.path in message, f"{name}: {message}"
        if "not written" not in message:
            # After any refused call the writer is failed: close refuses too, and removes the file.
            expect_refusal(refusal.writer.close, "not written: an earlier trace write failed")
        assert not os.path.exists(refusal.path), name
        assert leftovers(directory) == [], f"{name}: {leftovers(directory)}"
        refusal.golden.close()
    # The argmax message names both tokens and their logits.
    refusal = Refusal(directory)
    refusal.step(0, skip={(None, "next_token")})
    wrong = (refusal.golden.read_next_token(0) + 1) % 256
    message = expect_refusal(lambda: refusal.writer.write_next_token(wrong), f"{wrong} is not the argmax of logits")
    assert "argmax " + str(refusal.golden.read_next_token(0)) in message, message
    refusal.writer.abort()
    refusal.golden.close()


def test_the_writer_refuses_bad_metadata_and_declarations(tmp_path):
    directory = str(tmp_path)
    cases = [
        (dict(omitted="k"), "cannot declare 'k' omitted: 'k' is a contract checkpoint (resid_mlp, k, v, logits, "
                            "next_token, embed): it may never be omitted or allowed missing"),
        (dict(omitted=["gate", "gate"]), "cannot declare 'gate,gate' omitted: 'gate' is declared twice"),
        (dict(omitted="gate,scores"), "'scores' is not a trace tensor name that may be omitted"),
        (dict(omitted="gate,,up"), "an empty name in the list"),
        (dict(producer=""), "trace metadata 'producer' is empty"),
        (dict(producer="p" * 32), "trace metadata 'producer' is 32 characters long, at most 31 allowed"),
        (dict(kv_dtype="fp16"), "kv_dtype 'fp16', expected one of f32, bf16"),
        (dict(weights_fingerprint="68A75E5D233B6D86"), "expected 16 lowercase hex digits"),
        (dict(prompt_length=0), "prompt_length 0, must be at least 1"),
        (dict(model_config="{"), "model_config is not JSON"),
        (dict(extra_attributes={"n_steps": 3}), "extra attribute 'n_steps' is a FORMAT.md attribute"),
    ]
    for overrides, fragment in cases:
        expect_refusal(lambda: Refusal(directory, **overrides), fragment)
        assert os.listdir(directory) == [], overrides
    # A declared name may be left out; what it declares is written as the C writer joins it.
    refusal = Refusal(directory, omitted="gate, up")
    refusal.writer.write_tokens(refusal.golden.tokens)
    for step in range(refusal.golden.n_steps):
        refusal.step(step, skip={(layer, name) for layer in range(2) for name in ("gate", "up")})
    refusal.writer.close()
    with h5py.File(refusal.path, "r") as file:
        assert file.attrs["omitted"] == "gate,up"
    status, output = run_cli("validate", refusal.path)
    assert status == 0, output
    refusal.golden.close()


def test_an_exception_inside_the_with_block_keeps_the_old_file(tmp_path):
    path = os.path.join(str(tmp_path), "kept.h5")
    shutil.copyfile(GOLDEN, path)
    before = open(path, "rb").read()
    try:
        copy_trace(GOLDEN, path, change=lambda step, layer, name, values: 1 / 0 if step == 2 else None)
    except ZeroDivisionError:
        pass
    else:
        raise AssertionError("the change did not raise")
    assert open(path, "rb").read() == before
    assert leftovers(str(tmp_path)) == []


def edited_copy(directory, name, edit):
    """A copy of the round-tripped golden (version 2) with one h5py edit."""
    path = os.path.join(directory, name)
    copy_trace(GOLDEN, path)
    with h5py.File(path, "r+") as file:
        edit(file)
    return path


def test_the_reader_refuses_what_the_c_reader_refuses(tmp_path):
    directory = str(tmp_path)
    not_hdf5 = os.path.join(directory, "notes.h5")
    with open(not_hdf5, "w") as file:
        file.write("not hdf5\n")
    cases = [
        (edited_copy(directory, "no-producer.h5", lambda f: f.attrs.__delitem__("producer")),
         "/ has no attribute 'producer' (not a fusecheck trace?)"),
        (edited_copy(directory, "version-3.h5", lambda f: f.attrs.__setitem__("format_version", np.int32(3))),
         "trace format_version 3, this fusecheck reads versions 1 to 2"),
        (edited_copy(directory, "no-omitted.h5", lambda f: f.attrs.__delitem__("omitted")),
         "/ has no attribute 'omitted'"),
        (edited_copy(directory, "omits-k.h5", lambda f: f.attrs.__setitem__("omitted", "k")),
         "attribute 'omitted': 'k' is a contract checkpoint"),
        (edited_copy(directory, "n-steps-string.h5", lambda f: f.attrs.__setitem__("n_steps", "9")),
         "attribute 'n_steps' of / is not a single integer"),
        (edited_copy(directory, "short-tokens.h5", lambda f: (f.__delitem__("tokens"),
                                                              f.create_dataset("tokens", data=np.zeros(5, "<i4")))),
         "/tokens has 5 tokens, 9 steps after a 12-token prompt need 20"),
        (edited_copy(directory, "float-tokens.h5", lambda f: (f.__delitem__("tokens"),
                                                              f.create_dataset("tokens", data=np.zeros(20, "<f4")))),
         "/tokens is not int32"),
        (edited_copy(directory, "step-gap.h5", lambda f: f.move("step_0004", "step_0009")),
         "group /step_0004 is missing (n_steps is 9)"),
        (edited_copy(directory, "extra-step.h5", lambda f: f.create_group("step_0009")),
         "unexpected group /step_0009 (n_steps is 9: step_0000..step_0008)"),
        (edited_copy(directory, "position.h5",
                     lambda f: f["step_0002"].attrs.__setitem__("first_position", np.int32(3))),
         "/step_0002: first_position 3, n_tokens 1; expected 13, 1"),
        (not_hdf5, "not an HDF5 file or truncated"),
        (os.path.join(directory, "missing.h5"), "no such trace file"),
    ]
    for path, fragment in cases:
        message = expect_refusal(lambda: read_trace(path), fragment)
        assert message.startswith(path + ": "), message
        # The C reader refuses the same file: compare exits 2 naming it.
        status, output = run_cli("compare", path, GOLDEN)
        assert status == 2 and path in output, f"{path}: compare exit {status}: {output}"
    # And reads what it reads: a version-1 golden (no `omitted`), a rank-1 float as one row.
    with read_trace(GOLDEN) as golden:
        assert golden.meta.format_version == 1 and golden.meta.omitted == []
        assert golden.read_tensor(0, 0, "q").shape == (12, 64)
        assert golden.read_next_token(8) == int(np.argmax(golden.read_tensor(8, None, "logits")))
        expect_refusal(lambda: golden.read_tensor(0, 0, "gates"), "no dataset /step_0000/layer_00/gates")
        expect_refusal(lambda: golden.read_tensor(0, None, "next_token"), "/step_0000/next_token is not float32")
        expect_refusal(lambda: golden.step_info(9), "step 9 out of range (the trace has 9 steps)")
