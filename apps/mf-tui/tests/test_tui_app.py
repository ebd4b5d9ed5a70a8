"""The app driven headless (Textual's pilot): each screen's widgets after real input, and bad
input shown inline instead of raised."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from textual.widgets import Button, DataTable, Input, Select, Static
from tui_testing import append, fixed_clock, step_events, write_job, write_old_job

from mf_tui.app import MFApp, make_app
from mf_tui.jobs import JobError
from mf_tui.screens.monitor import MonitorScreen
from mf_tui.widgets.log_tail import LogTail
from mf_tui.widgets.rank_table import RankTable

REPO = Path(__file__).resolve().parents[3]
DEBUG_YAML = REPO / "configs" / "llama" / "run_llama_debug.yaml"
SIZE = (100, 32)
pytestmark = pytest.mark.asyncio


async def wait_for(pilot, predicate, timeout: float = 20.0):
    """Pause until `predicate()` holds (workers post their results asynchronously)."""
    waited = 0.0
    while not predicate():
        if waited > timeout:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.1)
        waited += 0.1


def cell(table: DataTable, row: str, column: str) -> str:
    return str(table.get_cell(row, column))


async def test_monitor_follows_ranks_as_events_arrive(tmp_path):
    job = write_job(tmp_path / "job", host="elsewhere", speeds={1: 500.0})
    app = MFApp(job=job, root=tmp_path, clock=fixed_clock(16), poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(RankTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        assert cell(table, "0", "state") == "running" and cell(table, "1", "step") == "5"
        assert "slow" in cell(table, "1", "note")  # 500 tokens/s beside 1000: a straggler
        append(job / "events" / "rank_1.jsonl", step_events(1, range(6, 9)))
        await wait_for(pilot, lambda: cell(table, "1", "step") == "8")
        assert cell(table, "0", "step") == "5"  # rows update independently
        await pilot.press("3")
        evals = app.screen.query_one("#eval-table", DataTable)
        assert evals.row_count == 1 and str(evals.get_row_at(0)[3]) == "1211.9700"


async def test_monitor_names_a_dead_rank_and_the_ended_job(tmp_path, gone_pid):
    host = os.uname().nodename
    job = write_job(tmp_path / "job", host=host, pids={0: gone_pid, 1: os.getpid()},
                    launcher_pid=os.getpid())
    app = MFApp(job=job, root=tmp_path, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(RankTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        assert cell(table, "0", "state") == "dead" and cell(table, "1", "state") == "running"
        assert f"pid {gone_pid} is gone" in cell(table, "0", "note")
        status = json.loads((job / "status.json").read_text())
        status["launcher"]["pid"] = gone_pid  # the launcher and rank 1 went too
        status["ranks"]["1"]["pid"] = gone_pid
        (job / "status.json").write_text(json.dumps(status))
        summary = app.screen.query_one("#job-summary", Static)
        await wait_for(pilot, lambda: "dead" in str(summary.render()).split("\n")[1])
        assert "the launcher" in str(summary.render())


async def test_monitor_log_tail_filters_by_rank(tmp_path):
    job = write_job(tmp_path / "job", host="elsewhere", finished=True)
    app = MFApp(job=job, root=tmp_path, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        log = app.screen.query_one(LogTail)
        await wait_for(pilot, lambda: len(log.lines) == 10)
        select = app.screen.query_one("#log-filter", Select)
        select.value = "rank 1"
        await wait_for(pilot, lambda: len(log.lines) == 5)
        assert all(line.startswith("[rank 1]") for line in log.lines)
        with open(job / "logs" / "worker_0.log", "a") as handle:
            handle.write("[rank 0] a new line\n")
        with open(job / "logs" / "worker_1.log", "a") as handle:
            handle.write("[rank 1] a new line\n[rank 1] half a li")  # cut mid-write
        await wait_for(pilot, lambda: len(log.lines) == 6)
        assert log.lines[-1] == "[rank 1] a new line"
        select.value = "all"
        await wait_for(pilot, lambda: len(log.lines) == 12)


async def test_monitor_reads_an_older_job_and_survives_garbled_files(tmp_path):
    job = write_old_job(tmp_path / "old")
    append(job / "events" / "rank_0.jsonl", [], torn="{garbled\n" + '{"kind": "st')
    app = MFApp(job=job, root=tmp_path, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(RankTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        assert cell(table, "0", "state") == "finished"
        text = str(app.screen.query_one("#job-summary", Static).render())
        assert "perplexity 579.6724" in text and "1 garbled event line(s) skipped" in text


async def test_monitor_of_a_missing_job_says_so(tmp_path):
    with pytest.raises(JobError, match="no such job directory"):
        make_app(job=tmp_path / "nope")
    app = MFApp(job=tmp_path / "gone", root=tmp_path, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        summary = app.screen.query_one("#job-summary", Static)
        await wait_for(pilot, lambda: "does not exist" in str(summary.render()))


async def test_jobs_screen_lists_jobs_and_opens_one(tmp_path):
    write_job(tmp_path / "b", host="elsewhere", finished=True)
    write_old_job(tmp_path / "a")
    app = MFApp(root=tmp_path, clock=fixed_clock(100), poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#jobs-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        states = {cell(table, key.value, "job"): cell(table, key.value, "state")
                  for key in table.rows}
        assert states == {"a": "finished", "b": "finished"}
        table.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        await pilot.press("escape")
        assert not isinstance(app.screen, MonitorScreen)


async def test_stop_and_restart_refuse_what_cannot_be_done(tmp_path):
    job = write_job(tmp_path / "job", host="elsewhere", finished=True)
    app = MFApp(job=job, root=tmp_path, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.screen.snapshot is not None)
        await pilot.press("s")
        await pilot.press("r")  # finished, but no complete checkpoint folder on disk
        await pilot.pause(0.2)
        messages = [n.message for n in app._notifications]
        assert any("already ended" in m for m in messages)
        assert any("no complete checkpoint" in m for m in messages)


# ---- Setup ----------------------------------------------------------------------------------

async def open_setup(pilot, app, path=DEBUG_YAML):
    await pilot.press("f2")
    screen = app.screen
    screen.check = None
    screen.query_one("#setup-errors", Static).update("")
    screen.query_one("#config", Input).value = str(path)
    screen.action_load()
    await wait_for(pilot, lambda: (screen.check is not None and screen.settled)
                   or "cannot load" in errors_text(screen), timeout=60)
    return screen


def errors_text(screen) -> str:
    return str(screen.query_one("#setup-errors", Static).render())


async def retype(pilot, screen, field: str, text: str):
    before = screen.check
    screen.query_one(f"#{field}", Input).value = text
    await wait_for(pilot, lambda: screen.check is not before and screen.settled, timeout=60)


async def test_setup_checks_as_the_user_types(tmp_path):
    app = MFApp(root=tmp_path, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_setup(pilot, app)
        launch = screen.query_one("#launch", Button)
        assert "the run and its layout hold" in errors_text(screen) and not launch.disabled
        derived = str(screen.query_one("#setup-derived", Static).render())
        assert "205.1K parameters" in derived and "global_batch_size = 4" in derived
        assert "memory per device" in derived

        await retype(pilot, screen, "data_parallel", "two")  # not a number
        assert "data_parallel = 'two' is not a whole number" in errors_text(screen)
        assert launch.disabled and screen.query_one("#data_parallel").has_class("-invalid")

        await retype(pilot, screen, "data_parallel", "2")  # 2 ranks on 1 worker: impossible
        assert "data_parallel(2) * model_parallel(1) * pipeline_stage(1) = 2, but 1 device" \
            in errors_text(screen) and launch.disabled

        await retype(pilot, screen, "workers_per_node", "2")
        assert "the run and its layout hold" in errors_text(screen) and not launch.disabled
        assert "parallel_config.data_parallel=2" in screen.check.command
        assert "global_batch_size = 8" in str(screen.query_one("#setup-derived").render())

        await retype(pilot, screen, "workers_per_node", "6")
        await retype(pilot, screen, "model_parallel", "3")
        assert "num_heads(4) is not divisible by model_parallel(3)" in errors_text(screen)

        await retype(pilot, screen, "model_parallel", "1")
        await retype(pilot, screen, "workers_per_node", "2")
        await retype(pilot, screen, "nodes", "2")  # 2 nodes x 2 workers = 4 != dp 2
        assert "= 2, but 4 devices are available" in errors_text(screen)
        await retype(pilot, screen, "workers_per_node", "1")
        other = screen.check.node_commands[0].split()
        this = screen.check.argv
        assert other[other.index("--node-rank") + 1] == "1" and "launch" in this
        assert other[other.index("--workers") + 1] == "2"  # the whole job's ranks
        assert other[other.index("--job-id") + 1] == this[this.index("--job-id") + 1]

        await retype(pilot, screen, "max_steps", "0")
        assert "runner_config.max_steps = 0" in errors_text(screen) and launch.disabled
        await pilot.press("ctrl+l")  # an invalid run cannot be launched
        assert any("cannot be launched" in n.message for n in app._notifications)


async def test_setup_reports_yaml_that_fails_to_load(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("runner_config:\n  batch_size: [1,\n")
    app = MFApp(root=tmp_path, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_setup(pilot, app, bad)
        assert "cannot load" in errors_text(screen) and screen.query_one("#launch").disabled
        screen = await open_setup(pilot, app, tmp_path / "missing.yaml")
        assert "missing.yaml" in errors_text(screen)
        unknown = tmp_path / "unknown.yaml"
        unknown.write_text("runner_confg:\n  batch_size: 2\n")
        screen = await open_setup(pilot, app, unknown)
        assert "runner_config" in errors_text(screen)  # the did-you-mean


async def test_setup_saves_a_run_yaml_that_loads_back(tmp_path):
    from mf_tui.run_setup import load_base

    app = MFApp(root=tmp_path, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_setup(pilot, app)
        await retype(pilot, screen, "batch_size", "2")
        target = tmp_path / "mine.yaml"
        screen.query_one("#save_path", Input).value = str(target)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: target.exists())
        assert load_base(target).runner_config.batch_size == 2
        foreign = tmp_path / "foreign.yaml"
        foreign.write_text("seed: 1\n")
        screen.query_one("#save_path", Input).value = str(foreign)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: any("not written by mf tui" in n.message
                                          for n in app._notifications))
        assert foreign.read_text() == "seed: 1\n"


# ---- Generate -------------------------------------------------------------------------------

async def test_generate_says_what_is_wrong_inline(tmp_path):
    app = MFApp(root=tmp_path, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        screen = app.screen
        screen.query_one("#model-path", Input).value = str(tmp_path / "no-model")
        screen.action_load()
        status = screen.query_one("#model-status", Static)
        await wait_for(pilot, lambda: "cannot load" in str(status.render()))
        assert screen.query_one("#prompt", Input).disabled
        screen.query_one("#temperature", Input).value = "warm"
        with pytest.raises(ValueError, match="temperature = 'warm' is not a number"):
            screen.settings()
        screen.query_one("#temperature", Input).value = "-1"
        with pytest.raises(ValueError, match="temperature"):
            screen.settings()


async def test_the_command_palette_opens_a_job(tmp_path):
    write_job(tmp_path / "palette-job", host="elsewhere", finished=True)
    app = MFApp(root=tmp_path, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.known_jobs)
        await pilot.press("ctrl+p")
        await pilot.press(*"open job palette")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        assert app.screen.job.name == "palette-job"


@pytest.mark.slow
async def test_generate_streams_a_continuation_from_a_model_directory(tmp_path):
    """A tiny LLaMA (mf-models' parity fixture) and a BPE tokenizer of its 512 ids, loaded and
    sampled from the Generate screen (MindSpore and a compile: slow)."""
    import shutil

    from mf_tokenize import train_bpe

    model = tmp_path / "model"
    shutil.copytree(REPO / "libs" / "mf-models" / "tests" / "fixtures" / "llama" / "hf", model)
    import inspect
    import textwrap

    train_bpe(inspect.getsource(textwrap).splitlines() * 3, 512).save_pretrained(model)
    app = MFApp(root=tmp_path, poll_interval=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        screen = app.screen
        screen.query_one("#max_new_tokens", Input).value = "12"
        screen.set_model(str(model))
        prompt = screen.query_one("#prompt", Input)
        await wait_for(pilot, lambda: not prompt.disabled, timeout=240)
        prompt.value = "def wrap("
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.busy, timeout=10)
        await wait_for(pilot, lambda: not screen.busy, timeout=240)
        text = "\n".join(screen.query_one("#transcript").lines)
        assert "> def wrap(" in text and "error" not in text
        continuation = text.split("> def wrap(\ndef wrap(", 1)[1]
        assert continuation.strip()  # the model's tokens arrived through the streamer
