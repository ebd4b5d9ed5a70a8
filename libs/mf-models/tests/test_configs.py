"""Configs, presets and the registry: no MindSpore needed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mf_models import (
    BloomConfig,
    GPT2Config,
    LlamaConfig,
    load_config,
    model_dims,
    preset_config,
    preset_names,
)
from mf_models.errors import ModelConfigError, UnknownModelError

ISSUE_PRESETS = ["gpt2", "gpt2_small", "gpt2_13b", "gpt2_52b", "llama_7b", "llama_13b",
                 "llama_65b", "bloom_560m", "bloom_7.1b", "bloom_65b", "bloom_176b"]


@pytest.mark.parametrize("name", ISSUE_PRESETS)
def test_every_preset_of_the_issue_builds(name):
    config = preset_config(name)
    assert config.hidden_size % config.num_heads == 0


def test_published_sizes():
    # LLaMA paper table 2 and Meta's params.json: hidden 4096, 32 layers, ffn 11008 for 7B.
    llama = preset_config("llama_7b")
    assert (llama.hidden_size, llama.num_layers, llama.ffn_hidden_size) == (4096, 32, 11008)
    assert preset_config("llama_13b").ffn_hidden_size == 13824
    assert preset_config("llama_65b").ffn_hidden_size == 22016
    assert preset_config("bloom_176b").num_heads == 112
    assert preset_config("gpt2_small") == preset_config("gpt2")


def test_unknown_preset_suggests_the_closest_name():
    with pytest.raises(UnknownModelError) as err:
        preset_config("llama7b")
    assert str(err.value) == "'llama7b' is not a supported model; did you mean 'llama_7b'?"
    assert err.value.exit_code == 2


def test_family_from_name_rejects_another_familys_preset():
    with pytest.raises(UnknownModelError, match="is not a supported llama model"):
        LlamaConfig.from_name("gpt2")


def test_heads_must_divide_hidden_size():
    with pytest.raises(ModelConfigError, match=r"num_heads\(5\) must divide hidden_size\(64\): "
                                               r"64 / 5 = 12.8"):
        GPT2Config(hidden_size=64, num_heads=5)


def test_kv_heads_must_divide_heads():
    with pytest.raises(ModelConfigError, match=r"n_kv_heads\(3\) must divide num_heads\(4\)"):
        LlamaConfig.from_name("llama_debug", n_kv_heads=3)


def test_bad_dtype_is_named():
    with pytest.raises(ModelConfigError, match="compute_dtype='float8'"):
        LlamaConfig(compute_dtype="float8")


def test_hf_config_json_reads_and_drops_unknown_keys(tmp_path):
    hf = {"model_type": "llama", "hidden_size": 128, "intermediate_size": 256,
          "num_hidden_layers": 3, "num_attention_heads": 8, "num_key_value_heads": 2,
          "max_position_embeddings": 512, "vocab_size": 1000, "rope_theta": 500000.0,
          "some_future_key": {"x": 1}, "torch_dtype": "float32"}
    (tmp_path / "config.json").write_text(json.dumps(hf))
    config = load_config(tmp_path)
    assert isinstance(config, LlamaConfig)
    assert (config.num_layers, config.kv_heads, config.seq_length) == (3, 2, 512)
    assert config.theta == 500000.0 and config.ffn_hidden_size == 256


def test_hf_config_round_trips_through_to_hf_dict():
    for config in (preset_config("gpt2_debug"), preset_config("llama_debug"),
                   preset_config("bloom_debug")):
        again = type(config).from_hf_dict(config.to_hf_dict())
        assert again == config.replace(name="")


def test_save_and_load_yaml_and_json(tmp_path):
    config = preset_config("bloom_debug", vocab_size=2048)
    config.save_pretrained(tmp_path)
    assert load_config(tmp_path) == config
    assert load_config(tmp_path / "config.yaml") == config


def test_mindformers_run_yaml(tmp_path):
    (tmp_path / "run.yaml").write_text(
        "run_mode: train\nmodel:\n  model_config:\n    type: BloomConfig\n    seq_length: 256\n"
        "    embedding_size: 128\n    num_layers: 2\n    num_heads: 4\n    vocab_size: 500\n"
        "    hidden_act: fast_gelu\n  arch:\n    type: BloomLMHeadModel\n")
    config = load_config(tmp_path / "run.yaml")
    assert isinstance(config, BloomConfig) and config.hidden_size == 128


def test_missing_path_is_a_one_line_error(tmp_path):
    with pytest.raises(ModelConfigError, match="does not exist"):
        load_config(tmp_path / "nope" / "config.json")


def test_model_dims_for_parallel_check():
    dims = model_dims("llama_7b")
    assert (dims.num_layers, dims.hidden_size, dims.num_heads, dims.n_kv_heads,
            dims.ffn_hidden_size, dims.vocab_size, dims.seq_length) == (
        32, 4096, 32, 32, 11008, 32000, 2048)
    assert model_dims(preset_config("llama_debug")).n_kv_heads == 2


def test_configs_and_model_dims_import_no_mindspore():
    code = ("import sys, mf_models; mf_models.model_dims('bloom_7.1b'); "
            "mf_models.preset_names(); assert 'mindspore' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


@given(hidden=st.integers(1, 8192).map(lambda k: 2 * k), multiple_of=st.sampled_from([1, 32, 256]))
def test_llama_ffn_rounds_two_thirds_of_4h_up_to_multiple_of(hidden, multiple_of):
    config = LlamaConfig(hidden_size=hidden, num_heads=1, multiple_of=multiple_of)
    ffn = config.ffn_hidden_size
    assert ffn % multiple_of == 0
    assert int(8 * hidden / 3) <= ffn < int(8 * hidden / 3) + multiple_of


def test_preset_names_include_debug_flavours():
    names = preset_names()
    assert {"gpt2_debug", "llama_debug", "bloom_debug"} <= set(names)
