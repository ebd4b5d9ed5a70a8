"""`mf jobs list|show|logs|stop` on hand-written job directories and a real process group."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from tui_testing import T0, append, event, write_job, write_old_job

from mf_tui import cli


def test_list_shows_every_job_under_the_root(tmp_path, capsys):
    write_job(tmp_path / "a", host="elsewhere", finished=True)
    write_old_job(tmp_path / "sub" / "b")
    (tmp_path / "not-a-job").mkdir()
    assert cli.main(["jobs", "list", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "a " in out and "sub/b" in out and "not-a-job" not in out
    assert "perplexity 579.6724" in out  # the older job's eval, parsed from its message


def test_show_names_each_rank_and_the_last_metrics(tmp_path, capsys):
    job = write_job(tmp_path / "job", host="elsewhere")
    append(job / "events" / "rank_1.jsonl", [event("error", 1, T0 + 20, step=5,
                                                   message="rank 1 ran out of memory")])
    assert cli.main(["jobs", "show", str(job)]) == 0
    out = capsys.readouterr().out
    assert "state:   running" in out and "perplexity 1211.9700" in out
    assert "rank 1: rank 1 ran out of memory" in out
    rows = [line.split() for line in out.splitlines() if line[:2] in ("0 ", "1 ")]
    assert rows[0][:3] == ["0", "running", "5"] and rows[1][:2] == ["1", "failed"]


def test_a_missing_or_foreign_directory_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["jobs", "show", str(tmp_path / "nope")]) == 2
    assert "no such job directory" in capsys.readouterr().err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "job.yaml").write_text("x: 1\n")  # no status.json, no marker
    assert cli.main(["jobs", "stop", str(tmp_path / "mine")]) == 2
    assert "not a job directory mf made" in capsys.readouterr().err


def test_logs_of_one_rank_and_of_all(tmp_path, capsys):
    job = write_job(tmp_path / "job", host="elsewhere", finished=True)
    assert cli.main(["jobs", "logs", str(job), "--rank", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[rank 1] step 1/5") and "[rank 0]" not in out
    assert cli.main(["jobs", "logs", str(job)]) == 0
    out = capsys.readouterr().out
    assert "[rank 0]" in out and "[rank 1]" in out
    assert cli.main(["jobs", "logs", str(job), "--rank", "7"]) == 2
    assert "ranks with a log: 0, 1" in capsys.readouterr().err


def test_logs_follow_until_the_job_ends(tmp_path):
    job = write_job(tmp_path / "job", host="elsewhere", ranks=1)
    follower = subprocess.Popen([sys.executable, "-m", "mf_tui.cli", "jobs", "logs", str(job),
                                 "--follow"], stdout=subprocess.PIPE, text=True)
    time.sleep(2.0)
    with open(job / "logs" / "worker_0.log", "a") as log:
        log.write("[rank 0] a late line\n")
    status = json.loads((job / "status.json").read_text())
    (job / "status.json").write_text(json.dumps({**status, "state": "finished"}))
    out, _ = follower.communicate(timeout=30)
    assert follower.returncode == 0 and out.rstrip().endswith("[rank 0] a late line")


def test_stop_signals_the_launchers_process_group_and_records_it(tmp_path):
    # A stand-in launcher in a session of its own (as mf tui starts jobs) with a child "rank".
    code = ("import subprocess, sys, time; "
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
            "time.sleep(600)")
    launcher = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        time.sleep(1.0)
        rank_pid = int(subprocess.run(["pgrep", "-P", str(launcher.pid)], capture_output=True,
                                      text=True).stdout.split()[0])
        job = write_job(tmp_path / "job", ranks=1, host=os.uname().nodename,
                        launcher_pid=launcher.pid, pids={0: rank_pid})
        status = json.loads((job / "status.json").read_text())
        (job / "status.json").write_text(json.dumps({**status, "updated": time.time()}))
        assert cli.main(["jobs", "stop", str(job), "--timeout", "10"]) == 0
        assert launcher.wait(timeout=10) != 0
        deadline = time.time() + 10
        while time.time() < deadline and os.path.exists(f"/proc/{rank_pid}"):
            time.sleep(0.1)
        assert not os.path.exists(f"/proc/{rank_pid}")  # the group went, rank included
        status = json.loads((job / "status.json").read_text())
        assert status["state"] == "stopped" and status["ranks"]["0"]["state"] in ("stopped",
                                                                                 "dead")
        assert cli.main(["jobs", "stop", str(job)]) == 0  # already ended: says so
    finally:
        if launcher.poll() is None:
            launcher.kill()


def test_tui_of_a_missing_job_is_one_line(tmp_path, capsys):
    assert cli.main(["tui", str(tmp_path / "nope")]) == 2
    assert "no such job directory" in capsys.readouterr().err


def test_the_first_screen_imports_neither_mindspore_nor_numpy(tmp_path):
    write_job(tmp_path / "job", host="elsewhere", finished=True)
    code = f"""
import asyncio, sys
from mf_tui.app import MFApp
async def main():
    app = MFApp(root={str(tmp_path)!r}, poll_interval=0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one("#jobs-table")
        for _ in range(200):
            if table.row_count:
                break
            await pilot.pause(0.05)
        assert table.row_count == 1, "no job listed"
asyncio.run(main())
heavy = [m for m in ("mindspore", "numpy") if m in sys.modules]
assert not heavy, heavy
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_stop_reaches_ranks_in_process_groups_of_their_own(tmp_path):
    # msrun starts each rank in a process group of its own: `--job <dir>` names it the job's.
    job = write_job(tmp_path / "job", ranks=1, host=os.uname().nodename, pids={0: None})
    sleeper = "import time; time.sleep(600)"
    launcher = subprocess.Popen([sys.executable, "-c", sleeper], start_new_session=True)
    rank = subprocess.Popen([sys.executable, "-c", sleeper, "--job", str(job)],
                            start_new_session=True)
    other = subprocess.Popen([sys.executable, "-c", sleeper, "--job", str(tmp_path / "other")],
                             start_new_session=True)
    try:
        status = json.loads((job / "status.json").read_text())
        status.update(updated=time.time(), launcher={"pid": launcher.pid,
                                                     "host": os.uname().nodename})
        (job / "status.json").write_text(json.dumps(status))
        assert cli.main(["jobs", "stop", str(job), "--timeout", "10"]) == 0
        assert launcher.wait(timeout=10) != 0 and rank.wait(timeout=10) != 0
        assert other.poll() is None  # another job's process is left alone
    finally:
        for process in (launcher, rank, other):
            if process.poll() is None:
                process.kill()
                process.wait()


def test_a_restart_runs_where_the_job_was_started(tmp_path):
    """launch.json records the working directory; a restart resolves job.yaml's relative paths
    (a tokenizer file) from there, and falls back to the current folder when it is gone."""
    import json

    from mf_tui.jobs.launch import launch_cwd

    job = tmp_path / "job"
    job.mkdir()
    assert launch_cwd(job) is None  # no launch.json
    (job / "launch.json").write_text(json.dumps({"cwd": str(tmp_path)}))
    assert launch_cwd(job) == str(tmp_path)
    (job / "launch.json").write_text(json.dumps({"cwd": str(tmp_path / "gone")}))
    assert launch_cwd(job) is None
