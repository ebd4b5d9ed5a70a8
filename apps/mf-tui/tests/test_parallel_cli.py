"""`mf parallel check`: the README's command, the tables, and one-line errors with exit 2."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import pytest

from mf_tui import cli

README = Path(__file__).resolve().parents[3] / "README.md"
TINY = ["--num-layers", "4", "--hidden-size", "64", "--num-heads", "8", "--n-kv-heads", "4",
        "--ffn-hidden-size", "128", "--vocab-size", "512", "--seq-length", "32"]


def _run(capsys, args):
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _readme_command() -> list[str]:
    for line in README.read_text().splitlines():
        if "mf parallel check" in line and not line.lstrip().startswith("#"):
            return shlex.split(line.split("uv run mf", 1)[1])
    raise AssertionError("README.md has no `mf parallel check` command")


def test_the_readme_command_works(capsys):
    args = _readme_command()
    assert args[:2] == ["parallel", "check"]
    code, out, err = _run(capsys, args)
    assert code == 0, err
    assert "OK: dp 2 x mp 2 x pp 2 = 8 devices" in out
    assert "Process groups" in out and "Memory per device" in out
    assert re.search(r"peak: stage \d needs [\d,.]+ GiB per device", out)


def test_tables_show_the_groups_and_the_estimate(capsys):
    from mf_parallel import ModelDims, ParallelConfig, estimate_memory

    code, out, err = _run(capsys, ["parallel", "check", "--world-size", "4",
                                   "--model-parallel", "2", "--data-parallel", "-1",
                                   "--batch-size", "2", *TINY])
    assert code == 0, err
    assert "OK: dp 2 x mp 2 x pp 1 = 4 devices" in out
    assert "= 4" in out  # global batch 2 * dp 2 * 1 * 1
    assert "[0, 2], [1, 3]" in out  # dp groups
    assert "[0, 1], [2, 3]" in out  # mp groups
    dims = ModelDims(4, 64, 8, 4, 128, 512, 32)
    expected = estimate_memory(dims, ParallelConfig(2, 2, 1), batch_size=2).per_device
    assert f"needs {expected / 1024**2:,.2f} MiB per device" in out


def test_explicit_dimensions_override_a_preset(capsys):
    code, out, err = _run(capsys, ["parallel", "check", "--model", "llama_7b",
                                   "--pipeline-stage", "2", "--num-layers", "6"])
    if code == 2 and "presets are unavailable" in err:
        pytest.skip("mf-models presets are not installed")
    assert code == 0, err
    assert "layers per stage [3, 3]" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--world-size", "4", "--data-parallel", "2", "--model-parallel", "2",
          "--pipeline-stage", "2"],
         "mf: error: data_parallel(2) * model_parallel(2) * pipeline_stage(2) = 8, but 4 devices "
         "are available"),
        (["--model-parallel", "3", *TINY],
         "mf: error: num_heads(8) is not divisible by model_parallel(3): 8 % 3 = 2"),
        (["--data-parallel", "0"],
         "mf: error: data_parallel(0) must be >= 1 (or -1 to infer it from the world size)"),
        (["--pipeline-stage", "8", *TINY],
         "mf: error: num_layers(4) < pipeline_stage(8): every pipeline stage needs at least "
         "one layer"),
        (["--pipeline-stage", "2", "--micro-batch-num", "1"],
         "mf: error: micro_batch_num(1) < pipeline_stage(2)"),
        (["--model-parallel", "-1"],
         "mf: error: --model-parallel is -1 (inferred): give --world-size to infer it from"),
        (["--num-layers", "2", "--hidden-size", "64"],
         "mf: error: model dimensions are incomplete: missing --num-heads --n-kv-heads "
         "--ffn-hidden-size --vocab-size --seq-length (or name a preset with --model)"),
        (["--batch-size", "0", *TINY], "mf: error: batch_size(0) must be"),
    ],
)
def test_an_invalid_layout_is_one_line_and_exit_2(capsys, monkeypatch, args, needle):
    monkeypatch.delenv("MF_DEBUG", raising=False)
    code, out, err = _run(capsys, ["parallel", "check", *args])
    assert code == 2
    assert err.startswith(needle), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_model_without_presets_is_a_clear_usage_error(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mf_models", types.ModuleType("mf_models"))
    code, out, err = _run(capsys, ["parallel", "check", "--model", "llama_7b"])
    assert code == 2
    assert err.startswith("mf: error: --model llama_7b: model presets are unavailable")


def test_check_help_does_not_import_mindspore():
    code = (
        "import sys; from mf_tui import cli; rc = cli.main(['parallel', 'check', '--help']); "
        "assert 'mindspore' not in sys.modules, 'mindspore imported'; sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    for option in ("--world-size", "--optimizer-shard", "--recompute", "--n-kv-heads",
                   "--model"):
        assert option in result.stdout
