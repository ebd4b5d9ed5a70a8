"""End to end: from the Setup screen, launch a real 2-rank job (msrun, data parallel), watch
both ranks' steps arrive in the monitor and the job finish; kill one rank with SIGKILL during a
run and see the monitor name it (failed or dead) and the job ended within 30 s."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from textual.widgets import Button, Input

from mf_tui.app import MFApp
from mf_tui.jobs.procs import job_processes
from mf_tui.screens.launch import LaunchScreen
from mf_tui.screens.monitor import MonitorScreen

REPO = Path(__file__).resolve().parents[3]
pytestmark = [pytest.mark.asyncio, pytest.mark.slow, pytest.mark.msrun]


async def wait_for(pilot, predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout:.0f} s")
        await pilot.pause(0.25)


async def launch_from_setup(pilot, app, output: Path, max_steps: int) -> MonitorScreen:
    await pilot.press("f2")
    screen = app.screen
    screen.query_one("#config", Input).value = "configs/llama/run_llama_debug.yaml"
    screen.action_load()
    await wait_for(pilot, lambda: screen.check is not None and screen.settled
                   and screen.check.config.source.name == "run_llama_debug.yaml", 60)
    for field, value in (("output_dir", str(output)), ("max_steps", str(max_steps)),
                         ("data_parallel", "2"), ("workers_per_node", "2")):
        serial = screen._serial
        screen.query_one(f"#{field}", Input).value = value
        await wait_for(pilot, lambda s=serial: screen._serial > s and screen.settled, 60)
    assert screen.check.launchable, screen.check.problem or screen.check.blocker
    screen.query_one("#launch", Button).press()  # as a click does (it may be scrolled away)
    await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen), 10)
    await pilot.click("#start")
    await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), 180)
    return app.screen


def ranks(monitor: MonitorScreen) -> list:
    return list(monitor.snapshot.ranks) if monitor.snapshot else []


def cleanup(app: MFApp, job: Path) -> None:
    """Leave no process behind: each launched job's group, and the ranks (msrun gives every
    rank a process group of its own)."""
    groups = [started.process.pid for started in app.started]
    for kill, pid in [*((os.killpg, g) for g in groups),
                      *((os.kill, p) for p in job_processes(job))]:
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass


async def test_launch_a_two_rank_job_and_watch_it_finish(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the debug YAML's tokenizer is cached under ./output
    app = MFApp(root=tmp_path, poll_interval=0.25)
    job = tmp_path / "dp2"
    try:
        async with app.run_test(size=(100, 32)) as pilot:
            monitor = await launch_from_setup(pilot, app, job, max_steps=4)
            assert (job / "logs").is_dir()
            await wait_for(pilot, lambda: monitor.snapshot is not None
                           and monitor.snapshot.state == "finished", 400)
            assert [(r.rank, r.state, r.step) for r in ranks(monitor)] == [
                (0, "finished", 4), (1, "finished", 4)]
            table = monitor.query_one("#rank-table")  # redrawn at most twice a second
            await wait_for(pilot, lambda: str(table.get_cell("1", "state")) == "finished", 5)
            assert len(monitor.snapshot.series["loss"]) == 4
    finally:
        cleanup(app, job)


async def test_a_killed_rank_is_named_and_the_job_ends(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    app = MFApp(root=tmp_path, poll_interval=0.25)
    job = tmp_path / "dp2"
    try:
        async with app.run_test(size=(100, 32)) as pilot:
            monitor = await launch_from_setup(pilot, app, job, max_steps=2000)
            await wait_for(pilot, lambda: len(ranks(monitor)) == 2 and all(
                (r.step or 0) >= 1 for r in ranks(monitor)), 400)
            # Schema 1 records each rank's pid; an older job directory only rank 0's
            # (status.json's pid), so that is the rank killed there.
            victim = next((r for r in ranks(monitor) if r.rank == 1 and r.pid), None)
            if victim is None:
                status = json.loads((job / "status.json").read_text())
                victim = next(r for r in ranks(monitor) if r.rank == 0)
                pid = status["pid"]
            else:
                pid = victim.pid
            os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            await wait_for(pilot, lambda: monitor.snapshot.ended and monitor.snapshot.ranks[
                victim.rank].state in ("failed", "dead"), 30)
            seconds = time.monotonic() - killed
            snap = monitor.snapshot
            print(f"killed rank {victim.rank} (pid {pid}); after {seconds:.1f} s the job is "
                  f"{snap.state}, ranks {[(r.rank, r.state_text) for r in snap.ranks]}")
            assert seconds < 30 and snap.state in ("failed", "dead")
    finally:
        cleanup(app, job)
