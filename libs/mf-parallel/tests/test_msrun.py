"""init_context on a real 2-rank CPU cluster started by msrun (about 15 s)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mf_parallel import LaunchSpec

WORKER = Path(__file__).with_name("msrun_worker.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.msrun
def test_two_cpu_ranks_get_their_rank_and_a_correct_all_reduce(tmp_path):
    msrun = shutil.which("msrun") or str(Path(sys.executable).with_name("msrun"))
    out = tmp_path / "out"
    out.mkdir()
    spec = LaunchSpec.single_node(2, master_port=_free_port(), log_dir=str(tmp_path / "logs"),
                                  cluster_time_out=60)
    # msrun starts each rank as `python script`: put this interpreter first on PATH.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(spec.argv(WORKER, [str(out)], msrun=msrun), env=env,
                            capture_output=True, text=True, timeout=180)
    logs = "".join(p.read_text()[-2000:] for p in sorted((tmp_path / "logs").glob("*.log")))
    assert result.returncode == 0, result.stderr[-2000:] + logs
    reports = [json.loads((out / f"rank_{r}.json").read_text()) for r in range(2)]

    assert [r["rank"] for r in reports] == [0, 1]
    assert [r["rank_id_env"] for r in reports] == ["0", "1"]  # msrun's numbering agrees
    assert all(r["device_num"] == 2 for r in reports)
    for report in reports:
        assert report["world_sum"] == [1.0 + 2.0, 10.0 + 20.0]
        assert report["group"] == [0, 1]
        assert report["group_sum"] == [1.0 + 2.0]
