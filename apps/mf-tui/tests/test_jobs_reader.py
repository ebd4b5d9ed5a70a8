"""The job-directory reader: complete lines only, truncation and rotation, schema 1 and older
records, per-rank states (dead pid, stalled, failed with exit code), garbled files."""

from __future__ import annotations

import json
import os

from tui_testing import (
    T0,
    append,
    event,
    fixed_clock,
    old_event,
    step_events,
    write_job,
    write_old_job,
)

from mf_tui.jobs.records import parse_line
from mf_tui.jobs.tail import LineTailer
from mf_tui.jobs.view import JobView


def test_tailer_hands_out_complete_lines_only(tmp_path):
    path = tmp_path / "log"
    tailer = LineTailer(path)
    assert tailer.read() == []  # not there yet: nothing, no error
    path.write_bytes(b"one\ntwo\nthr")
    assert tailer.read() == [b"one", b"two"]
    assert tailer.read() == []
    with open(path, "ab") as handle:
        handle.write(b"ee\nfour\n")
    assert tailer.read() == [b"three", b"four"]


def test_tailer_starts_over_after_truncation_and_rotation(tmp_path):
    path = tmp_path / "log"
    path.write_bytes(b"a long first line\nsecond\n")
    tailer = LineTailer(path)
    assert len(tailer.read()) == 2
    path.write_bytes(b"new\n")  # truncated in place, shorter than the offset
    assert tailer.read() == [b"new"]
    rotated = tmp_path / "log.new"
    rotated.write_bytes(b"rotated 1\nrotated 2\n")
    os.replace(rotated, path)  # another file under the same name
    assert tailer.read() == [b"rotated 1", b"rotated 2"]
    assert tailer.resets == 2


def test_tailer_can_start_at_the_tail_of_a_long_log(tmp_path):
    path = tmp_path / "log"
    path.write_bytes(b"".join(b"line %d\n" % i for i in range(1000)))
    lines = LineTailer(path, tail_bytes=40).read()
    assert lines[-1] == b"line 999" and len(lines) < 10
    assert all(line.startswith(b"line ") for line in lines)  # no half line at the start


def test_records_of_both_schemas_normalize_to_the_same_keys():
    new = parse_line(json.dumps(event("eval", 0, T0, step=5, metrics={"loss": 4.0})).encode())
    old = parse_line(json.dumps(old_event("eval", 0, T0, step=5,
                                          message="loss 4.0258, perplexity 56.0277")).encode())
    assert new["metrics"] == {"loss": 4.0} and new["schema"] == 1
    assert old["metrics"] == {"loss": 4.0258, "perplexity": 56.0277} and old["schema"] is None
    assert set(new) == set(old)
    ckpt = parse_line(json.dumps(old_event("checkpoint", 0, T0, message="/x/ckpt-5")).encode())
    assert ckpt["path"] == "/x/ckpt-5"
    for garbled in (b"{not json", b"[1, 2]", b'{"kind": "dance"}', b"\xff\xfe"):
        assert parse_line(garbled) is None
    odd = parse_line(b'{"kind": "step", "step": "seven", "loss": [1], "ts": true}')
    assert odd["step"] is None and odd["loss"] is None and odd["ts"] is None


def test_a_running_schema_1_job(tmp_path):
    job = write_job(tmp_path / "job", ranks=2, steps=5, pids={0: os.getpid(), 1: os.getpid()},
                    host=os.uname().nodename, launcher_pid=os.getpid())
    snap = JobView(job, clock=fixed_clock(16)).poll()
    assert snap.state == "running" and snap.schema == 1
    assert [(r.rank, r.state, r.step) for r in snap.ranks] == [(0, "running", 5), (1, "running", 5)]
    assert snap.ranks[0].age == 1.0  # last step at T0 + 15
    assert snap.evals[0].metrics["perplexity"] == 1211.97
    assert [s for s, _ in snap.series["loss"]] == [1, 2, 3, 4, 5]
    assert snap.series["tokens_per_s"][-1] == (5, 2000.0)  # both ranks, summed


def test_a_rank_whose_pid_is_gone_is_dead_and_so_is_a_job_with_nothing_left(tmp_path, gone_pid):
    host = os.uname().nodename
    job = write_job(tmp_path / "job", pids={0: os.getpid(), 1: gone_pid}, host=host,
                    launcher_pid=os.getpid())
    snap = JobView(job, clock=fixed_clock(16)).poll()
    assert snap.ranks[1].state == "dead" and str(gone_pid) in snap.ranks[1].message
    assert snap.ranks[0].state == "running" and snap.state == "running"
    status = json.loads((job / "status.json").read_text())
    status["launcher"]["pid"] = gone_pid  # the launcher and rank 0 went too, without an end
    status["ranks"]["0"]["pid"] = gone_pid
    (job / "status.json").write_text(json.dumps(status))
    snap = JobView(job, clock=fixed_clock(16)).poll()
    assert snap.state == "dead" and snap.ended


def test_a_pid_on_another_host_is_not_judged_here(tmp_path, gone_pid):
    job = write_job(tmp_path / "job", pids={0: gone_pid, 1: gone_pid}, host="elsewhere",
                    launcher_pid=gone_pid)
    snap = JobView(job, clock=fixed_clock(16)).poll()
    assert [r.state for r in snap.ranks] == ["running", "running"] and snap.state == "running"


def test_a_rank_without_events_for_many_step_intervals_is_stalled(tmp_path):
    job = write_job(tmp_path / "job", host="elsewhere")
    view = JobView(job, clock=fixed_clock(15 + 29), stall_factor=10, stall_min_seconds=30)
    assert view.poll().ranks[1].state == "running"  # 29 s < max(10 x 2 s, 30 s)
    view.clock = fixed_clock(15 + 31)
    snap = view.poll()
    assert snap.ranks[1].state == "stalled" and any("stalled" in w for w in snap.warnings)


def test_failed_rank_carries_its_exit_code(tmp_path):
    job = write_job(tmp_path / "job", host="elsewhere")
    append(job / "events" / "rank_1.jsonl", [event("error", 1, T0 + 20, step=5,
                                                   message="loss is NaN at step 5")])
    status = json.loads((job / "status.json").read_text())
    status["ranks"]["1"].update(state="failed", exit_code=1)
    (job / "status.json").write_text(json.dumps(status))
    rank = JobView(job, clock=fixed_clock(21)).poll().ranks[1]
    assert rank.state_text == "failed (1)" and rank.message == "loss is NaN at step 5"


def test_an_older_job_directory_reads(tmp_path):
    snap = JobView(write_old_job(tmp_path / "old")).poll()
    assert snap.state == "finished" and snap.schema is None
    assert [(r.rank, r.state, r.step) for r in snap.ranks] == [(0, "finished", 4)]
    assert snap.last_eval.metrics == {"loss": 6.3625, "perplexity": 579.6724}
    assert snap.last_checkpoint.endswith("checkpoint-4")


def test_an_older_running_job_whose_process_died_is_dead(tmp_path, gone_pid):
    job = write_old_job(tmp_path / "old")
    (job / "status.json").write_text(json.dumps({"state": "running", "step": 2, "pid": gone_pid,
                                                 "updated": T0 + 10, "message": ""}))
    launch = json.loads((job / "launch.json").read_text())
    (job / "launch.json").write_text(json.dumps({**launch, "host": os.uname().nodename}))
    lines = (job / "events" / "rank_0.jsonl").read_text().splitlines()[:4]
    (job / "events" / "rank_0.jsonl").write_text("\n".join(lines) + "\n")
    snap = JobView(job).poll()
    assert snap.state == "dead" and snap.ranks[0].state == "dead"


def test_half_written_and_garbled_files_are_warnings_not_errors(tmp_path):
    job = write_job(tmp_path / "job", host="elsewhere")
    view = JobView(job, clock=fixed_clock(16))
    assert view.poll().state == "running"
    (job / "status.json").write_text('{"schema": 1, "state": "fin')  # cut mid-write
    append(job / "events" / "rank_0.jsonl", [], torn='{"not json at all\n')
    torn = json.dumps(event("step", 0, T0 + 17, step=6, loss=6.4))
    append(job / "events" / "rank_0.jsonl", [], torn=torn[:20])  # a line cut mid-write
    snap = view.poll()
    assert snap.state == "running"  # the last good status.json
    assert snap.ranks[0].step == 5  # the torn line is not read yet
    assert snap.bad_lines == 1
    assert any("status.json is not valid JSON" in w for w in snap.warnings)
    append(job / "events" / "rank_0.jsonl", [], torn=torn[20:] + "\n")
    assert view.poll().ranks[0].step == 6


def test_a_missing_or_empty_job_directory(tmp_path):
    assert JobView(tmp_path / "nope").poll().state == "missing"
    (tmp_path / "empty").mkdir()
    snap = JobView(tmp_path / "empty").poll()
    assert snap.state == "starting" and snap.ranks == () and "no status.json yet" in snap.warnings


def test_throughput_series_waits_for_every_rank(tmp_path):
    job = write_job(tmp_path / "job", host="elsewhere", steps=3)
    append(job / "events" / "rank_0.jsonl", step_events(0, range(4, 6)))
    snap = JobView(job).poll()
    assert snap.series["tokens_per_s"][-1] == (3, 2000.0)  # rank 1 is still at step 3


def test_a_job_whose_launcher_went_but_whose_ranks_run_is_not_dead(tmp_path, gone_pid):
    # e.g. a resume started by another process than the one status.json names as launcher
    host = os.uname().nodename
    job = write_job(tmp_path / "job", host=host, pids={0: os.getpid(), 1: os.getpid()},
                    launcher_pid=gone_pid)
    snap = JobView(job, clock=fixed_clock(16)).poll()
    assert snap.state == "running"
    assert any(f"launcher (pid {gone_pid}) is gone; ranks 0, 1 still run" in w
               for w in snap.warnings)
