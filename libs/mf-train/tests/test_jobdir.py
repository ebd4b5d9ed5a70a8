"""The job directory, the per-rank event log (writer and torn-line-tolerant reader), step line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from mf_train.errors import TrainConfigError
from mf_train.jobdir import (
    EVENT_KEYS,
    EventWriter,
    JobDir,
    read_events,
    read_job_events,
)
from mf_train.steplog import format_step_line, parse_step_line


def test_create_lays_out_the_whole_skeleton(tmp_path):
    job = JobDir.create(tmp_path / "job", config_yaml="seed: 1\n", argv=["mf", "train", "x.yaml"],
                        env={"MS_WORKER_NUM": "2", "SECRET_TOKEN": "x", "MF_DEBUG": "1"})
    assert job.job_yaml.read_text() == "seed: 1\n"
    launch = json.loads(job.launch_json.read_text())
    assert launch["argv"] == ["mf", "train", "x.yaml"]
    assert launch["env"] == {"MF_DEBUG": "1", "MS_WORKER_NUM": "2"}  # never the whole environment
    for sub in (job.logs, job.events, job.checkpoints, job.strategy):
        assert sub.is_dir()
    assert job.read_status()["state"] == "starting"
    assert [p.name for p in (tmp_path).iterdir()] == ["job"]  # no temporaries left


def test_create_refuses_a_non_empty_directory(tmp_path):
    JobDir.create(tmp_path / "job", config_yaml="")
    with pytest.raises(TrainConfigError, match="already holds an earlier job") as info:
        JobDir.create(tmp_path / "job", config_yaml="")
    assert info.value.exit_code == 2
    JobDir.create(tmp_path / "job", config_yaml="a: 1\n", overwrite=True)
    assert (tmp_path / "job" / "job.yaml").read_text() == "a: 1\n"


def test_status_is_rewritten_atomically(tmp_path):
    job = JobDir.create(tmp_path / "job", config_yaml="")
    job.write_status("running", step=3, total_steps=10)
    job.write_status("finished", step=10)
    status = job.read_status()
    assert (status["state"], status["step"], status["total_steps"]) == ("finished", 10, 10)
    with pytest.raises(ValueError):
        job.write_status("exploded")


def test_events_have_the_fixed_keys_and_round_trip(tmp_path):
    job = JobDir.create(tmp_path / "job", config_yaml="")
    with EventWriter(job, rank=1) as writer:
        writer.emit("start", message="hello")
        writer.emit("step", step=1, epoch=0, loss=np.float32(2.5), lr=1e-4, grad_norm=0.7,
                    tokens_per_s=1200.0, mem_gib=1.5)
        writer.emit("end", step=1)
    events = read_job_events(job)[1]
    assert [e["kind"] for e in events] == ["start", "step", "end"]
    assert all(list(e) == list(EVENT_KEYS) for e in events)
    assert events[1]["loss"] == 2.5 and events[1]["rank"] == 1
    assert events[0]["step"] is None
    with pytest.raises(ValueError):
        EventWriter(job, 1).emit("step", losss=1.0)
    with pytest.raises(ValueError):
        EventWriter(job, 1).emit("party")


def test_reader_leaves_a_torn_line_for_later_and_skips_garbage(tmp_path):
    path = tmp_path / "rank_0.jsonl"
    path.write_bytes(b'{"kind": "start"}\nnot json\n{"kind": "step", "st')
    batch = read_events(path)
    assert [e["kind"] for e in batch.events] == ["start"]
    assert batch.bad_lines == 1
    with open(path, "ab") as handle:  # the writer finishes the line
        handle.write(b'ep": 1}\n')
    more = read_events(path, batch.offset)
    assert [e["step"] for e in more.events] == [1]
    assert read_events(tmp_path / "absent.jsonl").events == []


def test_a_writer_reopening_after_a_torn_line_starts_a_fresh_line(tmp_path):
    job = JobDir.create(tmp_path / "job", config_yaml="")
    job.events_file(0).write_text('{"kind": "start"}\n{"kind": "st')
    with EventWriter(job, 0) as writer:
        writer.emit("start", message="resumed")
    batch = read_events(job.events_file(0))
    assert [e.get("message") for e in batch.events] == [None, "resumed"]
    assert batch.bad_lines == 1


EMITTER = textwrap.dedent("""
    import sys
    from mf_train.jobdir import EventWriter, JobDir
    writer = EventWriter(JobDir(sys.argv[1]), 0)
    step = 0
    while True:
        step += 1
        writer.emit("step", step=step, loss=1.0 / step, message="x" * 2000)
        if step == 50:
            print("ready", flush=True)
""")


def test_events_survive_sigkill_and_stay_readable(tmp_path):
    job = JobDir.create(tmp_path / "job", config_yaml="")
    script = tmp_path / "emit.py"
    script.write_text(EMITTER)
    proc = subprocess.Popen([sys.executable, str(script), str(job.root)],
                            stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    events = read_events(job.events_file(0)).events
    assert len(events) >= 50
    assert [e["step"] for e in events] == list(range(1, len(events) + 1))  # no gap, no garbage


def test_step_line_formats_and_parses_back():
    line = format_step_line(120, 300, 3.21501, 2.5e-4, 0.81234, 1534.4, 1.2549)
    assert line == ("step 120/300 | loss 3.2150 | lr 2.500e-04 | grad_norm 0.8123 | "
                    "tokens/s 1534 | mem 1.25 GiB")
    parsed = parse_step_line("[rank 0] 12:00:01 " + line)
    assert parsed == {"step": 120, "total_steps": 300, "loss": 3.215, "lr": 2.5e-4,
                      "grad_norm": 0.8123, "tokens_per_s": 1534.0, "mem_gib": 1.25}
    unknown = parse_step_line(format_step_line(1, None, None, 1e-3, None, None, None))
    assert unknown["total_steps"] is None and unknown["loss"] is None
    assert parse_step_line("no step here") is None


def test_worker_log_holds_parseable_step_lines(tmp_path):
    from mf_train.jobdir import worker_logger

    job = JobDir.create(tmp_path / "job", config_yaml="")
    log = worker_logger(job, rank=1)
    log.info(format_step_line(3, 10, 2.0, 1e-3, 0.5, 900.0, 0.75))
    for handler in log.handlers:
        handler.flush()
    lines = job.worker_log(1).read_text().splitlines()
    assert lines[0].startswith("[rank 1] ")
    assert parse_step_line(lines[0])["step"] == 3
