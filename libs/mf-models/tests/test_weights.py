"""Weight files: HF import/export, .ckpt with MindFormers' names, strict checks, no pickle."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file, save_file

from mf_models import AutoModelForCausalLM, LlamaForCausalLM, preset_config
from mf_models.errors import CheckpointMismatchError, UnsafeFileError, WeightsNotFoundError
from mf_models.weights import hf_bloom, hf_gpt2
from mf_models.weights.hf import export_directory, import_directory
from mf_models.weights.io import read_ckpt, read_directory

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def llama_debug():
    return AutoModelForCausalLM.from_config("llama_debug")


@pytest.mark.parametrize("family", ["gpt2", "llama", "bloom"])
def test_hf_import_then_export_is_bit_identical(family, tmp_path):
    source = FIXTURES / family / "hf"
    config, weights = import_directory(source)
    export_directory(config, weights, tmp_path)
    original = read_directory(source)
    exported = load_file(str(tmp_path / "model.safetensors"))
    tied = {"lm_head.weight"} if family in ("gpt2", "bloom") else set()
    assert set(exported) == set(original) - tied
    for name, array in exported.items():
        assert array.dtype == original[name].dtype
        np.testing.assert_array_equal(array, original[name], err_msg=name)


def test_sharded_index_is_read():
    assert (FIXTURES / "llama" / "hf" / "model.safetensors.index.json").is_file()
    weights = read_directory(FIXTURES / "llama" / "hf")
    assert "model.layers.1.mlp.down_proj.weight" in weights


def test_exported_config_reads_back_as_the_same_config(tmp_path):
    config, weights = import_directory(FIXTURES / "gpt2" / "hf")
    export_directory(config, weights, tmp_path)
    again, _ = import_directory(tmp_path)
    assert again == config


def test_ckpt_uses_mindformers_names(llama_debug, tmp_path):
    path = llama_debug.save_pretrained(tmp_path, fmt="ckpt")
    names = set(read_ckpt(path))
    assert "model.layers.0.attention.wq.weight" in names
    assert "model.tok_embeddings.embedding_weight" in names
    assert "model.norm_out.weight" in names


def test_mindformers_ckpt_with_optimizer_state_loads(llama_debug, tmp_path):
    import mindspore as ms

    entries = [{"name": n, "data": ms.Tensor(a)} for n, a in llama_debug.state_dict().items()]
    entries.append({"name": "adam_m.model.norm_out.weight", "data": ms.Tensor(np.zeros(64))})
    entries.append({"name": "global_step", "data": ms.Tensor(np.array([7], np.int32))})
    ms.save_checkpoint(entries, str(tmp_path / "model.ckpt"))
    llama_debug.config.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    for name, array in llama_debug.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name], array)


def _copy_fixture(family: str, tmp_path: Path) -> Path:
    target = tmp_path / family
    shutil.copytree(FIXTURES / family / "hf", target)
    return target


def test_mis_shaped_tensor_is_one_line_naming_both_shapes(tmp_path, llama_debug):
    llama_debug.save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    weights["model.layers.1.attention.wk.weight"] = np.zeros((16, 64), np.float32)
    save_file(weights, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointMismatchError) as err:
        AutoModelForCausalLM.from_pretrained(tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("model.layers.1.attention.wk.weight: checkpoint ")
    assert message.endswith(" shape (16, 64) != model shape (32, 64)")


def test_missing_and_unexpected_names_strict_and_not(tmp_path, llama_debug):
    llama_debug.save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    del weights["lm_head.weight"]
    weights["model.extra.weight"] = np.zeros(3, np.float32)
    save_file(weights, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointMismatchError, match="does not match the model: 1 missing, "
                                                      "first lm_head.weight; 1 unexpected, first "
                                                      "model.extra.weight"):
        AutoModelForCausalLM.from_pretrained(tmp_path)
    model = AutoModelForCausalLM.from_pretrained(tmp_path, strict=False)
    assert len(model.load_report) == 2
    np.testing.assert_array_equal(model.state_dict()["model.norm_out.weight"],
                                  llama_debug.state_dict()["model.norm_out.weight"])


def test_hf_checkpoint_missing_a_tensor(tmp_path):
    target = _copy_fixture("gpt2", tmp_path)
    weights = load_file(str(target / "model.safetensors"))
    del weights["transformer.h.1.mlp.c_fc.bias"]
    save_file(weights, str(target / "model.safetensors"))
    with pytest.raises(CheckpointMismatchError, match=r"transformer.h.1.mlp.c_fc.bias is missing"):
        AutoModelForCausalLM.from_pretrained(target)


def test_hf_checkpoint_of_another_size_is_refused(tmp_path):
    target = _copy_fixture("bloom", tmp_path)
    config = json.loads((target / "config.json").read_text())
    config["hidden_size"] = 128
    (target / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointMismatchError, match="shape"):
        AutoModelForCausalLM.from_pretrained(target)


@pytest.mark.parametrize("suffix", [".bin", ".pt", ".pkl"])
def test_pickle_files_are_refused_never_loaded(tmp_path, suffix):
    (tmp_path / "config.json").write_text(json.dumps(preset_config("gpt2_debug").to_hf_dict()))
    # Not even valid pickle: a loader that tried would fail differently.
    (tmp_path / f"pytorch_model{suffix}").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(UnsafeFileError, match="pickle"):
        AutoModelForCausalLM.from_pretrained(tmp_path)


def test_preset_without_weights_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("MF_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as err:
        AutoModelForCausalLM.from_pretrained("llama_7b")
    message = str(err.value)
    assert str(tmp_path / "llama_7b") in message and "model.safetensors" in message
    assert "from_config('llama_7b')" in message
    assert err.value.exit_code == 2


def test_preset_weights_are_read_from_mf_home(tmp_path, monkeypatch, llama_debug):
    monkeypatch.setenv("MF_HOME", str(tmp_path))
    llama_debug.save_pretrained(tmp_path / "llama_debug")
    model = LlamaForCausalLM.from_pretrained("llama_debug")
    np.testing.assert_array_equal(model.state_dict()["lm_head.weight"],
                                  llama_debug.state_dict()["lm_head.weight"])


def test_family_class_refuses_another_family(tmp_path):
    with pytest.raises(Exception, match="holds a gpt2 model, not llama"):
        LlamaForCausalLM.from_pretrained(FIXTURES / "gpt2" / "hf")


def test_save_leaves_no_temp_files(tmp_path, llama_debug):
    llama_debug.save_pretrained(tmp_path)
    llama_debug.save_pretrained(tmp_path, fmt="ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config.json", "config.yaml", "model.ckpt", "model.safetensors"]


@settings(max_examples=30, deadline=None)
@given(heads=st.integers(1, 6), head_dim=st.integers(1, 6), width=st.integers(1, 5),
       seed=st.integers(0, 2**16))
def test_bloom_qkv_split_then_merge_is_identity(heads, head_dim, width, seed):
    config = type("C", (), {"num_heads": heads, "head_dim": head_dim})()
    fused = np.random.default_rng(seed).standard_normal((3 * heads * head_dim, width))
    convert = hf_bloom.QKV
    parts = convert.to_mf(fused, config)
    assert [p.shape for p in parts] == [(heads * head_dim, width)] * 3
    # Query rows of head h are rows [h*3*D, h*3*D + D) of the fused tensor.
    np.testing.assert_array_equal(parts[0][:head_dim], fused[:head_dim])
    np.testing.assert_array_equal(convert.to_hf(parts, config), fused)


@settings(max_examples=30, deadline=None)
@given(width=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_gpt2_conv1d_split_then_merge_is_identity(width, seed):
    fused = np.random.default_rng(seed).standard_normal((width, 3 * width))  # Conv1D (in, 3*out)
    parts = hf_gpt2.QKV_WEIGHT.to_mf(fused, None)
    np.testing.assert_array_equal(parts[1], fused[:, width:2 * width].T)  # key, (out, in)
    np.testing.assert_array_equal(hf_gpt2.QKV_WEIGHT.to_hf(parts, None), fused)


def test_checkpoint_name_or_path_loads_in_the_constructor(tmp_path, llama_debug):
    # MindFormers: `LlamaForCausalLM(LlamaConfig(..., checkpoint_name_or_path=...))` loads it.
    llama_debug.save_pretrained(tmp_path / "mf")
    config = llama_debug.config.replace(checkpoint_name_or_path=str(tmp_path / "mf"))
    model = LlamaForCausalLM(config)
    np.testing.assert_array_equal(model.state_dict()["lm_head.weight"],
                                  llama_debug.state_dict()["lm_head.weight"])
    one_file = config.replace(checkpoint_name_or_path=str(tmp_path / "mf" / "model.safetensors"))
    assert LlamaForCausalLM(one_file).state_dict()["model.norm_out.weight"].shape == (64,)
    hf_config = preset_config("gpt2_debug").replace(
        checkpoint_name_or_path=str(FIXTURES / "gpt2" / "hf"), vocab_size=512)
    _, hf_weights = import_directory(FIXTURES / "gpt2" / "hf")
    loaded = AutoModelForCausalLM.from_config(hf_config).state_dict()
    for name, array in hf_weights.items():
        np.testing.assert_array_equal(loaded[name], array)
    with pytest.raises(CheckpointMismatchError, match=r"checkpoint shape \(512, 64\) != model "
                                                      r"shape \(1024, 64\)"):
        AutoModelForCausalLM.from_config(hf_config.replace(vocab_size=1024))


def test_token_ids_outside_the_vocabulary_are_one_line_errors(llama_debug):
    from mindspore import Tensor

    from mf_models.errors import ModelConfigError

    with pytest.raises(ModelConfigError, match=r"token id 1024 is outside the vocabulary "
                                               r"\[0, 1024\)"):
        llama_debug(Tensor(np.array([[1, 1024]], np.int32)))
    step = llama_debug.step_function(llama_debug.new_cache(1, 4))
    with pytest.raises(ModelConfigError, match="token id -1"):
        step(np.array([[-1]], np.int32), np.zeros((1, 1), np.int32), 0, np.ones((1, 4), np.int32))


def test_weights_loaded_after_compiling_reach_the_compiled_step():
    """`load_state_dict` writes in place: a step function compiled before the load computes
    with the new weights (Parameter.set_data would leave the compiled graph on the old ones)."""
    from mf_models import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config("llama_debug", seed=1)
    other = AutoModelForCausalLM.from_config("llama_debug", seed=2)
    ids = np.array([[5, 6, 7, 8]], np.int32)
    mask = np.ones_like(ids)
    positions = model.prefill_positions(mask, ids)
    step = model.step_function(None, last_only=False)
    before = step(ids, positions, 0, mask).asnumpy()
    model.load_state_dict(other.state_dict())
    after = step(ids, positions, 0, mask).asnumpy()
    expected = other.step_function(None, last_only=False)(ids, positions, 0, mask).asnumpy()
    assert np.abs(before - expected).max() > 1e-3  # the two inits really differ
    np.testing.assert_array_equal(after, expected)


def test_state_dict_is_a_snapshot_not_a_view():
    from mf_models import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_config("llama_debug", seed=1)
    snapshot = model.state_dict()
    name, first = next(iter(snapshot.items()))
    kept = first.copy()
    model.load_state_dict({n: a + 1 for n, a in snapshot.items()})
    np.testing.assert_array_equal(snapshot[name], kept)
    np.testing.assert_array_equal(model.state_dict()[name], kept + 1)
