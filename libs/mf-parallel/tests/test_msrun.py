"""init_context on a real 2-rank CPU cluster started by msrun (about 15 s)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mf_parallel.local import run_local

WORKER = Path(__file__).with_name("msrun_worker.py")


@pytest.mark.msrun
def test_two_cpu_ranks_get_their_rank_and_a_correct_all_reduce(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    run_local(WORKER, [str(out)], workers=2, log_dir=tmp_path / "logs", timeout=180,
              cluster_time_out=60)
    reports = [json.loads((out / f"rank_{r}.json").read_text()) for r in range(2)]

    assert [r["rank"] for r in reports] == [0, 1]
    assert [r["rank_id_env"] for r in reports] == ["0", "1"]  # msrun's numbering agrees
    assert all(r["device_num"] == 2 for r in reports)
    for report in reports:
        assert report["world_sum"] == [1.0 + 2.0, 10.0 + 20.0]
        assert report["group"] == [0, 1]
        assert report["group_sum"] == [1.0 + 2.0]
