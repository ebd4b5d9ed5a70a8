"""mf_parallel.collectives on 4 real CPU ranks under msrun (about 45 s on 2 cores): sub-group
gathers and broadcasts built from AllReduce, the world group's native ops, a pipeline hand-over,
and Megatron's f / g / gather with the right gradients inside ms.jit + value_and_grad."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mf_parallel.local import run_local

WORKER = Path(__file__).with_name("msrun_collectives_worker.py")


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("collectives")
    run_local(WORKER, [str(tmp)], workers=4, log_dir=tmp / "logs", timeout=300)
    return [json.loads((tmp / f"rank_{r}.json").read_text()) for r in range(4)]


def mine(rank):
    return [rank, 10 * rank]


@pytest.mark.msrun
@pytest.mark.slow
def test_groups_follow_the_mesh(reports):
    # dp 2 x mp 2: mp is the fast axis
    assert [r["mp"] for r in reports] == [[0, 1], [0, 1], [2, 3], [2, 3]]
    assert [r["dp"] for r in reports] == [[0, 2], [1, 3], [0, 2], [1, 3]]
    # pp 2 x dp 2: stage = rank // 2; first and last stage share the tied embedding
    assert [r["stage"] for r in reports] == [0, 0, 1, 1]
    assert [r["embedding"] for r in reports] == [[0, 2], [1, 3], [0, 2], [1, 3]]


@pytest.mark.msrun
@pytest.mark.slow
def test_sub_group_collectives_from_all_reduce(reports):
    for report in reports:
        a, b = report["mp"]
        assert report["mp_sum"] == [[a + b, 10 * (a + b)]]
        assert report["mp_gather_rows"] == [mine(a), mine(b)]
        assert report["mp_gather_cols"] == [mine(a) + mine(b)]
        assert report["mp_broadcast"] == [mine(b)]


@pytest.mark.msrun
@pytest.mark.slow
def test_world_group_uses_the_native_ops(reports):
    for report in reports:
        assert report["world_native"] is True
        assert report["world_gather_cols"] == [sum((mine(r) for r in range(4)), [])]
        assert report["world_broadcast"] == [mine(3)]


@pytest.mark.msrun
@pytest.mark.slow
def test_pipeline_hand_over_both_ways(reports):
    for report in reports:
        first = report["embedding"][0]  # stage 0's rank of this pipeline
        assert report["handed_forward"] == [mine(first)]
        assert report["handed_back"] == [[2 * v for v in mine(first)]]


@pytest.mark.msrun
@pytest.mark.slow
def test_f_and_g_give_megatron_gradients_under_jit(reports):
    x = np.array([[1.0, -2.0, 0.5], [0.3, 0.2, -1.0]], np.float32)
    a = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
    b = np.arange(8, dtype=np.float32).reshape(4, 2) / 10
    # the unsplit computation and its gradients, by hand
    hidden = np.tanh(x @ a)
    y = hidden @ b
    loss = (y * y).sum() + hidden.sum() * 0.5
    d_hidden = 2 * y @ b.T + 0.5
    d_pre = d_hidden * (1 - hidden**2)
    da, db, dx = x.T @ d_pre, hidden.T @ (2 * y), d_pre @ a.T
    for report in reports:
        i = report["mp_index"]
        assert report["tp_loss"] == pytest.approx(float(loss), rel=1e-5)
        np.testing.assert_allclose(report["tp_dx"], dx, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(report["tp_da"], da[:, 2 * i:2 * i + 2], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(report["tp_db"], db[2 * i:2 * i + 2], rtol=1e-5, atol=1e-6)
