"""Bad weights and bad YAML: one reader, one set of one-line errors (issue 10 parts 2-4).

Every path that reads weights goes through `mf_models.weights.io.read_weight_file`, so each bad
file below is tried through the low-level reader and through `from_pretrained`, and must give
the same message: exit code 2, one line, naming the file (and the tensor, where one is at fault).
"""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
import yaml
from models_errors import one_line

from mf_models import (
    AutoModelForCausalLM,
    CheckpointMismatchError,
    CorruptWeightsError,
    NonFiniteWeightsError,
    UnsafeFileError,
    WeightsNotFoundError,
)
from mf_models.safe_yaml import MAX_ALIAS_NODES, YamlBoundError, safe_load
from mf_models.weights.io import read_weight_file, read_weights, write_safetensors


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A llama_debug model directory, written once (read-only for the tests)."""
    model = AutoModelForCausalLM.from_config("llama_debug")
    directory = tmp_path_factory.mktemp("llama") / "model"
    model.save_pretrained(directory)
    return directory


def copy_of(saved, tmp_path, name="copy"):
    target = tmp_path / name
    target.mkdir()
    for item in saved.iterdir():
        (target / item.name).write_bytes(item.read_bytes())
    return target


def refused(exc_type, load, *fragments):
    with pytest.raises(exc_type) as err:
        load()
    message = one_line(err)
    for fragment in fragments:
        assert str(fragment) in message, message
    return message


# ---- one reader, one set of messages --------------------------------------------------------

def test_a_truncated_file_is_named_by_every_reader(saved, tmp_path):
    directory = copy_of(saved, tmp_path)
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    for load in (lambda: read_weight_file(weights), lambda: read_weights(directory),
                 lambda: AutoModelForCausalLM.from_pretrained(directory)):
        refused(CorruptWeightsError, load, weights, "truncated or corrupt")


def test_an_empty_or_garbage_file_is_corrupt_not_a_crash(tmp_path):
    for name, data in (("empty.safetensors", b""), ("junk.safetensors", b"\x00" * 64),
                       ("junk.ckpt", b"not a protobuf at all" * 10)):
        (tmp_path / name).write_bytes(data)
        refused(CorruptWeightsError, lambda n=name: read_weight_file(tmp_path / n),
                tmp_path / name, "truncated or corrupt")


def test_a_bfloat16_file_is_read_or_refused_but_never_called_corrupt(tmp_path):
    import struct
    import subprocess
    import sys

    header = json.dumps({"w": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]}}).encode()
    path = tmp_path / "bf16.safetensors"
    inf = b"\x80\x7f"  # bfloat16 +inf: the top half of float32's 0x7f800000
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(6) + inf)
    # numpy knows bfloat16 only once MindSpore (ml_dtypes) is imported: try both worlds.
    code = ("import sys\n"
            "if sys.argv[2] == 'ms': import mindspore\n"
            "from mf_models.weights.io import read_weight_file\n"
            "try:\n    read_weight_file(sys.argv[1])\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    for world in ("plain", "ms"):
        result = subprocess.run([sys.executable, "-c", code, str(path), world],
                                capture_output=True, text=True, timeout=300)
        out = result.stdout.strip()
        assert result.returncode == 0 and "corrupt" not in out, result.stderr[-2000:]
        if world == "plain":
            assert out.startswith(f"ModelConfigError cannot read {path}") and "bfloat16" in out
        else:  # read as bfloat16, and its inf found by the finite check
            assert out.startswith(f"NonFiniteWeightsError {path}: tensor w holds 1 NaN or inf")


def test_nan_or_inf_weights_are_refused_naming_the_tensor(saved, tmp_path):
    from safetensors.numpy import load_file

    for bad in (np.nan, np.inf, -np.inf):
        directory = copy_of(saved, tmp_path, f"bad_{bad}")
        weights = load_file(str(directory / "model.safetensors"))
        name = sorted(weights)[-1]
        weights[name].reshape(-1)[7] = bad
        write_safetensors(weights, directory / "model.safetensors")
        refused(NonFiniteWeightsError, lambda d=directory: AutoModelForCausalLM.from_pretrained(d),
                f"tensor {name} holds 1 NaN or inf", directory / "model.safetensors")


def test_a_directory_without_weights_says_what_it_looked_for(saved, tmp_path):
    directory = tmp_path / "empty"
    directory.mkdir()
    (directory / "config.json").write_text((saved / "config.json").read_text())
    for load in (lambda: read_weights(directory),
                 lambda: AutoModelForCausalLM.from_pretrained(directory)):
        refused(WeightsNotFoundError, load, f"no weights in {directory}",
                "model.safetensors, model.safetensors.index.json, *.safetensors, model.ckpt")


def test_a_pickle_beside_missing_weights_is_refused_as_such(saved, tmp_path):
    directory = copy_of(saved, tmp_path)
    (directory / "model.safetensors").unlink()
    (directory / "pytorch_model.bin").write_bytes(b"\x80\x04 never unpickled")
    refused(UnsafeFileError, lambda: AutoModelForCausalLM.from_pretrained(directory),
            "only pytorch_model.bin, a pickle file, which mf never loads")
    # A named file that is missing: the pickle beside it is mentioned, never read.
    refused(WeightsNotFoundError, lambda: read_weight_file(directory / "model.safetensors"),
            f"weight file {directory / 'model.safetensors'} does not exist",
            "beside it: pytorch_model.bin, a pickle file")


@pytest.mark.parametrize("name", ["model.bin", "model.PT", "w.pth", "w.pkl", "w.pickle"])
def test_a_pickle_file_is_never_loaded(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x80\x04 never unpickled")
    for load in (lambda: read_weight_file(path), lambda: read_weights(path)):
        refused(UnsafeFileError, load, f"refusing to load {path}: a pickle file")


def test_a_missing_file_is_named(tmp_path):
    refused(WeightsNotFoundError, lambda: read_weight_file(tmp_path / "none.safetensors"),
            f"weight file {tmp_path / 'none.safetensors'} does not exist")
    refused(WeightsNotFoundError, lambda: read_weights(tmp_path / "gone"),
            f"{tmp_path / 'gone'} does not exist")


def test_an_index_naming_a_missing_shard_or_corrupt_is_one_line(saved, tmp_path):
    directory = copy_of(saved, tmp_path)
    index = directory / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"a": "model-00002.safetensors"}}))
    refused(WeightsNotFoundError, lambda: read_weights(directory),
            "lists model-00002.safetensors, which is missing")
    index.write_text('{"weight_map": ')
    refused(CorruptWeightsError, lambda: read_weights(directory), index, "truncated or corrupt")


def test_shapes_that_do_not_fit_the_config_name_the_tensor_and_both_shapes(saved, tmp_path):
    directory = copy_of(saved, tmp_path)
    config = json.loads((directory / "config.json").read_text())
    config["hidden_size"] *= 2
    (directory / "config.json").write_text(json.dumps(config))
    message = refused(CheckpointMismatchError,
                      lambda: AutoModelForCausalLM.from_pretrained(directory), "shape")
    name, _, shapes = message.partition(": ")
    assert name.startswith("model.") and "!= model shape" in shapes
    got, want = (s.split("shape ")[1] for s in shapes.split(" != "))
    assert got != want and str(config["hidden_size"]) in want


# ---- files keep the user's mode --------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["safetensors", "ckpt"])
def test_saved_files_get_the_users_umask_not_0600(tmp_path, fmt):
    model = AutoModelForCausalLM.from_config("llama_debug")
    old = os.umask(0o027)
    try:
        model.save_pretrained(tmp_path / "m", fmt=fmt)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "m").iterdir()}
    assert modes == {f"model.{fmt}": 0o640, "config.json": 0o640, "config.yaml": 0o640}
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "m").num_parameters() \
        == model.num_parameters()


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    with pytest.raises(Exception):  # noqa: B017 - safetensors refuses a non-array
        write_safetensors({"ok": np.ones(3, np.float32), "bad": object()},
                          tmp_path / "model.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_writing_safetensors_is_an_os_error(tmp_path, monkeypatch):
    import safetensors.numpy
    from safetensors import SafetensorError

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device "
                              "(os error 28)")

    monkeypatch.setattr(safetensors.numpy, "save_file", full)
    with pytest.raises(OSError) as err:
        write_safetensors({"w": np.ones(3, np.float32)}, tmp_path / "model.safetensors")
    assert err.value.errno == 28 and err.value.strerror == os.strerror(28)
    assert ".model.safetensors.tmp-" in err.value.filename
    assert list(tmp_path.iterdir()) == []


# ---- YAML: bounded before anything expands ---------------------------------------------------

def laughs(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_a_billion_laughs_yaml_is_refused_before_it_expands(tmp_path):
    with pytest.raises(YamlBoundError) as err:
        safe_load(laughs(9), "bomb.yaml")  # 9^10 nodes: hours and gigabytes if expanded
    assert one_line(err).startswith("bomb.yaml: YAML aliases would expand")
    # The same file as a model config.yaml: from_pretrained's config read is bounded too.
    (tmp_path / "config.yaml").write_text("model:\n  model_config:\n" + "".join(
        f"    {line}\n" for line in laughs(9).splitlines()))
    refused(Exception, lambda: AutoModelForCausalLM.from_config(str(tmp_path / "config.yaml")),
            "YAML aliases would expand")


def test_aliases_within_the_bound_load_as_safe_load_would():
    text = laughs(4)  # 9^5 = 59,049 nodes added: under the bound
    assert 9 ** 5 < MAX_ALIAS_NODES
    assert safe_load(text) == yaml.safe_load(text)
    merged = "base: &b {lr: 0.1, steps: 3}\nrun: {<<: *b, steps: 5}\nlist: [*b, *b]\n"
    assert safe_load(merged) == yaml.safe_load(merged)
    assert safe_load("") is None and safe_load("# only a comment\n") is None


@pytest.mark.parametrize("text,fragment", [
    ("a: &x [1, *x]\n", "a YAML alias refers to a node that contains it"),
    ("a: " + "[" * 5000 + "]" * 5000 + "\n", "YAML nested deeper than 100 levels"),
    ("a:\n" + "".join(" " * i + "- \n" for i in range(1, 300)), "nested deeper than 100"),
])
def test_recursive_and_deep_yaml_are_refused(text, fragment):
    with pytest.raises(YamlBoundError) as err:
        safe_load(text, "x.yaml")
    assert fragment in one_line(err)


def test_a_yaml_syntax_error_is_still_pyyaml_s_for_the_caller_to_word():
    with pytest.raises(yaml.YAMLError):
        safe_load("a: [1, 2\n")


# ---- one loss --------------------------------------------------------------------------------

def test_the_model_loss_is_token_nll_masked_and_averaged():
    from mindspore import Tensor

    from mf_models.models.base import token_nll

    model = AutoModelForCausalLM.from_config("llama_debug")
    rng = np.random.default_rng(0)
    ids = rng.integers(0, model.config.vocab_size, (2, 9)).astype(np.int32)
    labels = ids.copy()
    labels[0, 3:6] = model.config.ignore_token_id
    loss, logits = model(Tensor(ids), Tensor(labels))
    nll = token_nll(logits[:, :-1, :], Tensor(np.where(labels < 0, 0, labels)[:, 1:])).asnumpy()
    keep = labels[:, 1:] >= 0
    np.testing.assert_allclose(float(loss.asnumpy()), nll[keep].mean(), rtol=1e-6)
    # and the reference of both: log-softmax in float64
    z = logits.asnumpy()[:, :-1].astype(np.float64)
    log_p = z - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - z.max(-1, keepdims=True)
    want = -np.take_along_axis(log_p, np.where(labels < 0, 0, labels)[:, 1:, None], -1)[..., 0]
    np.testing.assert_allclose(float(loss.asnumpy()), want[keep].mean(), rtol=1e-5)
