"""A run that cannot fit this machine is refused by `mf train` before MindSpore loads or
anything is written (issue 10: seq_length 100000000 was killed by the OOM killer, silently)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
LLAMA_DEBUG = ROOT / "configs/llama/run_llama_debug.yaml"
CHILD = ("import json, sys; from mf_tui import cli; code = cli.main(json.loads(sys.argv[1])); "
         "print(json.dumps([code, 'mindspore' in sys.modules]))")


@pytest.mark.parametrize("option", ["model.model_config.seq_length=100000000",
                                    "runner_config.batch_size=1000000"])
def test_a_run_too_big_for_this_machine_is_refused_before_anything(tmp_path, option):
    output = tmp_path / "out"
    argv = ["train", str(LLAMA_DEBUG), "--options", option, f"output_dir={output}"]
    result = subprocess.run([sys.executable, "-c", CHILD, json.dumps(argv)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)
    code, mindspore_loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    needed = re.search(r"needs ([\d,.]+) GiB per rank, this machine has ([\d.]+) GiB available",
                       lines[0])
    assert needed, lines[0]
    assert float(needed[1].replace(",", "")) > float(needed[2])
    assert not mindspore_loaded  # refused from the config alone
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no output_dir, no tokenizer
