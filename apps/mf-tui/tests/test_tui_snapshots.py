"""Snapshots of the key screens (pytest-textual-snapshot): jobs, the monitor's ranks at 80x24
and its charts on a large terminal, and setup. Job directories sit at a fixed path and the app
runs on a fixed clock, so a snapshot changes only when the screen does
(`pytest --snapshot-update` after a deliberate change)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from tui_testing import fixed_clock, write_job, write_old_job

from mf_tui.app import MFApp

REPO = Path(__file__).resolve().parents[3]
ROOT = Path(tempfile.gettempdir()) / "mf-tui-snapshots"


@pytest.fixture(scope="module")
def jobs_root():
    if ROOT.exists():
        shutil.rmtree(ROOT)
    write_job(ROOT / "llama_dp2", host="node-a", speeds={1: 600.0}, steps=8)
    write_job(ROOT / "gpt2_done", host="node-a", ranks=1, finished=True)
    write_old_job(ROOT / "older")
    yield ROOT
    shutil.rmtree(ROOT, ignore_errors=True)


async def settle(pilot, predicate, timeout=30.0):
    waited = 0.0
    while not predicate() and waited < timeout:
        await pilot.pause(0.1)
        waited += 0.1
    await pilot.pause(0.3)


def test_jobs_screen(snap_compare, jobs_root):
    app = MFApp(root=jobs_root, clock=fixed_clock(120), poll_interval=0.05)

    async def run_before(pilot):
        await settle(pilot, lambda: app.screen.query_one("#jobs-table").row_count == 3)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_monitor_ranks_at_80x24(snap_compare, jobs_root):
    app = MFApp(job=jobs_root / "llama_dp2", root=jobs_root, clock=fixed_clock(22),
                poll_interval=0.05)

    async def run_before(pilot):
        await settle(pilot, lambda: app.screen.query_one("#rank-table").row_count == 2)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_monitor_charts_large(snap_compare, jobs_root):
    app = MFApp(job=jobs_root / "llama_dp2", root=jobs_root, clock=fixed_clock(22),
                poll_interval=0.05)

    async def run_before(pilot):
        await settle(pilot, lambda: app.screen.query_one("#rank-table").row_count == 2)
        await pilot.press("2")
        await pilot.pause(1.0)

    assert snap_compare(app, terminal_size=(160, 48), run_before=run_before)


def test_setup_screen(snap_compare, jobs_root, monkeypatch):
    monkeypatch.chdir(REPO)
    app = MFApp(root=jobs_root, clock=fixed_clock(22), poll_interval=0.05)

    async def run_before(pilot):
        await pilot.press("f2")
        screen = app.screen
        screen.query_one("#config").value = "configs/llama/run_llama_debug.yaml"
        screen.query_one("#master_addr").value = "10.0.0.1"
        screen.action_load()
        await settle(pilot, lambda: screen.check is not None and screen.settled, 60)
        screen.query_one("#data_parallel").value = "2"
        await settle(pilot, lambda: screen.settled and "= 2, but 1 device" in str(
            screen.query_one("#setup-errors").render()), 60)
        app.clear_notifications()  # "loaded ..." toasts come and go with the machine's speed
        screen.set_focus(None)  # a focused input's cursor blinks
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
