"""Exact resume: a real training process killed with SIGKILL mid-run, resumed from its last
checkpoint, logs the same losses as an uninterrupted run of the same config (~30 s)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from train_fixtures import (
    pattern_samples,
    run_yaml,
    start_job,
    step_losses,
    write_mindrecord_samples,
)

from mf_train.checkpoint import list_checkpoints
from mf_train.jobdir import JobDir, read_events

STEPS = 40
KILL_AFTER = 7


def _wait_for_step(events_file, step: int, process: subprocess.Popen, timeout: float) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        losses = step_losses(events_file) if events_file.exists() else {}
        if losses and max(losses) >= step:
            return max(losses)
        if process.poll() is not None:
            raise AssertionError(f"the run ended (code {process.returncode}) before step {step}")
        time.sleep(0.005)
    raise AssertionError(f"no step {step} within {timeout} s")


@pytest.mark.timeout(300)
def test_a_run_killed_with_sigkill_resumes_to_the_same_losses(tmp_path):
    data = write_mindrecord_samples(tmp_path / "train.mindrecord", pattern_samples(48))
    runner = f"{{epochs: 1, batch_size: 4, max_steps: {STEPS}}}"
    extra = f"""\
        callbacks:
          - {{type: CheckpointMointor, save_checkpoint_steps: 3, keep_checkpoint_max: 2}}
        do_eval: true
        eval_step_interval: -1
        eval_epoch_interval: 2
        eval_dataset:
          data_loader: {{type: MindDataset, dataset_dir: "{data}", num_samples: 4}}
        """
    # 48 samples / 4 = 12 batches per epoch: 40 steps cross three epoch boundaries, so the
    # data position and the per-epoch shuffle are part of what must resume exactly.
    whole = run_yaml(tmp_path, data, output=tmp_path / "whole", extra=extra, name="whole.yaml",
                     runner=runner)
    killed = run_yaml(tmp_path, data, output=tmp_path / "killed", extra=extra,
                      name="killed.yaml", runner=runner)
    reference = start_job(whole, [], tmp_path / "whole.log")
    victim = start_job(killed, [], tmp_path / "killed.log")
    job = JobDir(tmp_path / "killed")
    try:
        reached = _wait_for_step(job.events_file(0), KILL_AFTER, victim, timeout=240)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        if victim.poll() is None:
            victim.kill()
    assert victim.returncode == -signal.SIGKILL
    assert reference.wait(timeout=240) == 0, (tmp_path / "whole.log").read_text()[-3000:]

    assert job.read_status()["state"] == "running"  # killed, not finished
    saved = list_checkpoints(job.checkpoints)
    assert saved, "no checkpoint survived the kill"
    last_saved = int(saved[-1].name.split("-")[1])
    assert reached <= last_saved + 3 and last_saved < STEPS

    resumed = subprocess.run(
        [sys.executable, "-c", "import sys; from mf_train.jobs import run_job; "
                               "run_job(sys.argv[1], ['resume_training=true'], 'train', "
                               "echo=False)", str(killed)],
        capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]

    expected = step_losses(JobDir(tmp_path / "whole").events_file(0))
    got = step_losses(job.events_file(0))
    assert sorted(expected) == list(range(1, STEPS + 1))
    assert sorted(got) == list(range(1, STEPS + 1))
    assert [got[s] for s in range(1, STEPS + 1)] == [expected[s] for s in range(1, STEPS + 1)]

    # evaluation every 2 epochs (12 steps each) and at the end, equal in both runs
    def evals(path):
        return {e["step"]: e["loss"] for e in read_events(path).events if e["kind"] == "eval"}

    reference_evals = evals(JobDir(tmp_path / "whole").events_file(0))
    assert sorted(reference_evals) == [0, 24, 40]
    resumed_evals = evals(job.events_file(0))
    assert {s: resumed_evals[s] for s in (24, 40)} == {s: reference_evals[s] for s in (24, 40)}

    events = read_events(job.events_file(0)).events
    starts = [e for e in events if e["kind"] == "start"]
    assert [e["step"] for e in starts] == [0, last_saved]  # the resume started where it saved
    assert job.read_status()["state"] == "finished"
    leftovers = [p.name for p in job.checkpoints.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # a checkpoint cut short by the kill was swept away
    state = json.loads((list_checkpoints(job.checkpoints)[-1] / "trainer_state.json")
                       .read_text())
    assert state["step"] == STEPS
    assert state["data_position"] == {"epoch": STEPS // 12, "batch": STEPS % 12}
