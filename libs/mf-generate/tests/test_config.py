"""GenerationConfig: validation (one-line errors naming the value), MindFormers' model_config
keys, overrides (no MindSpore)."""

from __future__ import annotations

import sys

import pytest
from mf_models import LlamaConfig

from mf_generate import GenerateConfigError, GenerationConfig

BAD = [
    (dict(max_new_tokens=0), "max_new_tokens=0 must be an integer >= 1"),
    (dict(max_new_tokens=-3), "max_new_tokens=-3 must be an integer >= 1"),
    (dict(max_length=0), "max_length=0 must be an integer >= 1"),
    (dict(top_p=0.0), "top_p=0.0 must be in (0, 1]"),
    (dict(top_p=1.5), "top_p=1.5 must be in (0, 1]"),
    (dict(do_sample=True, temperature=0), "temperature=0 must be > 0 when sampling"),
    (dict(do_sample=True, temperature=-1.0), "temperature=-1.0 must be > 0 when sampling"),
    (dict(top_k=-1), "top_k=-1 must be an integer >= 0"),
    (dict(repetition_penalty=0), "repetition_penalty=0 must be > 0"),
    (dict(eos_token_id=[]), "eos_token_id=[] must be None, an integer >= 0 or a non-empty list"),
    (dict(eos_token_id=[2, -1]), "eos_token_id=[2, -1] must be"),
    (dict(pad_token_id=-1), "pad_token_id=-1 must be None or an integer >= 0"),
    (dict(seed=1.5), "seed=1.5 must be None or an integer >= 0"),
    (dict(do_sample="yes"), "do_sample='yes' must be True or False"),
    (dict(temperature="hot"), "temperature='hot' must be a number"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD)
def test_bad_values_are_one_line_errors_naming_the_value(kwargs, message):
    with pytest.raises(GenerateConfigError) as info:
        GenerationConfig(**kwargs)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 2 and isinstance(info.value, ValueError)


def test_greedy_accepts_any_temperature():
    assert GenerationConfig(temperature=0).temperature == 0


def test_overrides_are_validated_and_misspellings_get_a_suggestion():
    config = GenerationConfig()
    assert config.replace(top_k=3).top_k == 3
    with pytest.raises(GenerateConfigError, match="'top_kk' is not a generation setting; did "
                                                  "you mean 'top_k'"):
        config.replace(top_kk=3)
    with pytest.raises(GenerateConfigError, match="top_p=2"):
        config.replace(top_p=2)


def test_new_tokens_follow_max_new_tokens_else_max_length():
    assert GenerationConfig(max_length=20).new_tokens_for(8) == 12
    assert GenerationConfig(max_length=20, max_new_tokens=5).new_tokens_for(18) == 5
    with pytest.raises(GenerateConfigError, match=r"max_length\(8\) leaves no room after the "
                                                  r"prompt of 8 tokens: 8 - 8 = 0"):
        GenerationConfig(max_length=8).new_tokens_for(8)


def test_eos_may_be_a_list_and_fill_falls_back_to_eos():
    config = GenerationConfig(eos_token_id=[2, 7])
    assert config.eos_ids == (2, 7)
    assert config.fill_id == 2
    assert GenerationConfig(eos_token_id=5, pad_token_id=0).fill_id == 0
    assert GenerationConfig().fill_id == 0


def test_from_a_mindformers_model_config_mapping():
    # Keys as in MindFormers' run_*.yaml `model: model_config:` sections.
    model_config = {"type": "LlamaConfig", "seq_length": 2048, "max_decode_length": 512,
                    "top_k": 3, "top_p": 0.8, "do_sample": True, "repetition_penalty": 1.1,
                    "temperature": 0.7, "eos_token_id": [2, 3], "pad_token_id": 0,
                    "bos_token_id": 1, "use_past": False, "hidden_size": 4096}
    config = GenerationConfig.from_model_config(model_config)
    assert (config.max_length, config.top_k, config.top_p, config.do_sample) == (512, 3, 0.8,
                                                                                 True)
    assert (config.repetition_penalty, config.temperature) == (1.1, 0.7)
    assert config.eos_ids == (2, 3) and config.pad_token_id == 0 and config.bos_token_id == 1
    assert config.use_past is False  # present in the yaml: MindFormers' meaning


def test_from_our_model_config_takes_token_ids_but_not_the_training_default_use_past():
    config = GenerationConfig.from_model_config(LlamaConfig.from_name("llama_debug"))
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (1, 2, 0)
    assert config.use_past is True
    explicit = LlamaConfig.from_name("llama_debug", use_past=True, eos_token_id=[2, 9])
    assert GenerationConfig.from_model_config(explicit).eos_ids == (2, 9)


def test_from_pretrained_reads_hf_generation_config(tmp_path):
    (tmp_path / "generation_config.json").write_text(
        '{"max_new_tokens": 7, "do_sample": true, "top_p": 0.9, "eos_token_id": [1, 2], '
        '"transformers_version": "4.40"}')
    config = GenerationConfig.from_pretrained(tmp_path, seed=3)
    assert (config.max_new_tokens, config.do_sample, config.top_p, config.seed) == (7, True,
                                                                                     0.9, 3)


def test_config_needs_no_mindspore():
    import subprocess

    code = ("import sys; from mf_generate import GenerationConfig, TextStreamer; "
            "GenerationConfig(max_new_tokens=3); assert 'mindspore' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-1000:]
