"""`mf model list|show|convert`: output, exit codes, and round trips through the real CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from mf_tui import cli

FIXTURES = Path(__file__).resolve().parents[3] / "libs" / "mf-models" / "tests" / "fixtures"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_show_preset_without_mindspore(tmp_path):
    code = (
        "import sys; from mf_tui import cli; rc = cli.main(['model', 'show', 'llama_7b']); "
        "assert 'mindspore' not in sys.modules, 'mindspore imported'; sys.exit(rc)"
    )
    env = {"MF_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "parameters: 6,738,415,616" in result.stdout
    assert f"none in {tmp_path / 'llama_7b'}" in result.stdout
    assert "n_kv_heads: None" in result.stdout


def test_show_directory_lists_its_weight_files(capsys):
    code, out, _ = run(capsys, "model", "show", str(FIXTURES / "llama" / "hf"))
    assert code == 0
    assert "family:     llama (LlamaForCausalLM)" in out
    assert out.count("model-0000") == 4  # the four shards of the index


def test_list_names_every_family(capsys):
    code, out, _ = run(capsys, "model", "list")
    assert code == 0
    for name in ("gpt2_small", "llama_65b", "bloom_7.1b", "bloom_debug"):
        assert name in out


def test_unknown_preset_is_exit_2_with_a_suggestion(capsys):
    code, _, err = run(capsys, "model", "show", "llama7b")
    assert code == 2
    assert err.strip() == "mf: error: 'llama7b' is not a supported model; did you mean 'llama_7b'?"


def test_config_whose_heads_do_not_divide_hidden_is_exit_2(capsys, tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"model_type": "gpt2", "n_embd": 64, "n_head": 5, "n_layer": 2}))
    code, _, err = run(capsys, "model", "show", str(tmp_path))
    assert code == 2
    assert "num_heads(5) must divide hidden_size(64): 64 / 5 = 12.8" in err
    assert len(err.strip().splitlines()) == 1


def test_convert_hf_to_mf_and_back_is_bit_identical(capsys, tmp_path):
    source = FIXTURES / "bloom" / "hf"
    code, out, err = run(capsys, "model", "convert", str(source), str(tmp_path / "mf"))
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "mf").iterdir()) == [
        "config.json", "config.yaml", "model.safetensors"]
    code, out, err = run(capsys, "model", "convert", str(tmp_path / "mf"), str(tmp_path / "hf"))
    assert code == 0, err
    assert "Hugging Face" in out
    original = load_file(str(source / "model.safetensors"))
    again = load_file(str(tmp_path / "hf" / "model.safetensors"))
    assert set(again) == set(original)
    for name in original:
        np.testing.assert_array_equal(again[name], original[name])


def test_convert_to_ckpt(capsys, tmp_path):
    code, _, err = run(capsys, "model", "convert", str(FIXTURES / "gpt2" / "hf"),
                       str(tmp_path / "out"), "--format", "ckpt")
    assert code == 0, err
    assert (tmp_path / "out" / "model.ckpt").is_file()


def test_convert_refuses_a_non_empty_destination(capsys, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("keep me")
    code, _, err = run(capsys, "model", "convert", str(FIXTURES / "gpt2" / "hf"),
                       str(tmp_path / "taken"))
    assert code == 2
    assert "exists, is not empty and was not made by mf" in err
    assert (tmp_path / "taken" / "notes.txt").read_text() == "keep me"


def test_convert_refuses_pickle_and_writes_nothing(capsys, tmp_path):
    source = tmp_path / "torch_only"
    source.mkdir()
    shutil.copy(FIXTURES / "gpt2" / "hf" / "config.json", source)
    (source / "pytorch_model.bin").write_bytes(b"\x80\x04 not loaded")
    code, _, err = run(capsys, "model", "convert", str(source), str(tmp_path / "out"))
    assert code == 2
    assert "pickle" in err
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["torch_only"]


@pytest.mark.parametrize("option", [["--to", "onnx"], ["--format", "npz"]])
def test_convert_bad_option_values_are_exit_2(capsys, tmp_path, option):
    code, _, err = run(capsys, "model", "convert", str(FIXTURES / "gpt2" / "hf"),
                       str(tmp_path / "out"), *option)
    assert code == 2
    assert option[1] in err
