"""The launcher with stand-in ranks (tests/fake_rank.py: real processes writing real events, no
MindSpore): status.json as ranks change, a SIGKILLed rank ending the job within seconds and
named, error messages, restarts, and two nodes joined by the control channel (a few seconds
in all)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from mf_parallel.cluster import free_port

from mf_train.jobdir import JobDir, read_events
from mf_train.launch import NodeLaunch
from mf_train.supervisor import Supervisor

FAKE = Path(__file__).with_name("fake_rank.py")


def fake_job(tmp_path: Path, args: list[str], ranks: int = 2, nodes: int = 1,
             node_rank: int = 0, **options) -> tuple[NodeLaunch, JobDir]:
    root = tmp_path / "job"
    job = JobDir(root) if root.exists() else JobDir.create(root, config_yaml="{}\n")
    launch = NodeLaunch(job_id="test", worker_num=ranks, local_worker_num=ranks // nodes,
                        node_rank=node_rank, command=[sys.executable, str(FAKE), str(root), *args],
                        job_root=str(root), start_scheduler=False, **options)
    return launch, job


def in_thread(function) -> tuple[threading.Thread, dict]:
    box: dict = {}

    def target():
        try:
            box["outcome"] = function()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_a_clean_job_records_every_rank_finished_in_status_json(tmp_path):
    launch, job = fake_job(tmp_path, ["--steps", "5"])
    outcome = Supervisor(launch, job, echo=False).run()

    status = job.read_status()
    assert outcome.state == "finished" and outcome.exit_code == 0
    assert status["schema"] == 1 and status["state"] == "finished" and status["exit_code"] == 0
    assert status["step"] == 5
    assert status["launcher"]["pid"] == os.getpid()
    for rank in ("0", "1"):
        entry = status["ranks"][rank]
        assert entry["state"] == "finished" and entry["exit_code"] == 0
        assert isinstance(entry["pid"], int) and entry["log"] == f"logs/worker_{rank}.log"
    assert (job.logs / "launcher.log").read_text().rstrip().endswith("job finished")


def test_sigkill_of_a_rank_ends_the_job_within_seconds_and_names_that_rank(tmp_path):
    launch, job = fake_job(tmp_path, ["--steps", "100000", "--step-seconds", "0.02"])
    thread, box = in_thread(lambda: Supervisor(launch, job, echo=False).run())

    def rank1_stepping():
        status = job.read_status()
        return status.get("ranks", {}).get("1", {}).get("state") == "running" and \
            len(read_events(job.events_file(1)).events) > 3
    wait_for(rank1_stepping)
    pid = job.read_status()["ranks"]["1"]["pid"]
    os.kill(pid, signal.SIGKILL)
    killed = time.time()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the job did not end within 30 s of a rank's death"
    assert time.time() - killed < 10  # measured ~0.3 s: the poll, then SIGTERM to the rest

    outcome = box["outcome"]
    assert outcome.state == "failed" and outcome.exit_code == 1 and outcome.rank == 1
    assert "rank 1" in outcome.message and "SIGKILL" in outcome.message
    status = job.read_status()
    assert status["state"] == "failed" and status["exit_code"] == 1
    assert status["message"] == outcome.message
    assert status["ranks"]["1"] == {**status["ranks"]["1"], "state": "failed", "exit_code": -9}
    assert status["ranks"]["0"]["state"] == "dead"  # ended by the launcher
    assert status["ranks"]["0"]["exit_code"] == -signal.SIGTERM


def test_a_config_error_is_reported_with_the_rank_message_and_never_restarted(tmp_path):
    message = "model_parallel(3) does not divide num_heads(4): 4 % 3 = 1"
    launch, job = fake_job(tmp_path, ["--steps", "400", "--fail-rank", "1", "--fail-at", "2",
                                      "--fail-code", "2", "--fail-message", message],
                           max_restarts=3)
    outcome = Supervisor(launch, job, echo=False).run()

    assert outcome.state == "failed" and outcome.exit_code == 2
    assert outcome.message.startswith("rank 1 (") and outcome.message.endswith(message)
    assert "exit code 2" in outcome.message
    assert any("failing at step 2" in line for line in outcome.tail)
    starts = [e for e in read_events(job.events_file(1)).events if e["kind"] == "start"]
    assert len(starts) == 1  # no restart after a config error
    assert job.read_status()["exit_code"] == 2


def test_max_restarts_runs_the_job_again_after_a_failure(tmp_path):
    marker = tmp_path / "failed-once"
    launch, job = fake_job(tmp_path, ["--steps", "4", "--fail-rank", "0", "--fail-at", "2",
                                      "--fail-once", str(marker)], max_restarts=1)
    outcome = Supervisor(launch, job, echo=False).run()

    assert outcome.state == "finished" and marker.exists()
    starts = [e for e in read_events(job.events_file(0)).events if e["kind"] == "start"]
    assert len(starts) == 2  # one start event per process start
    log = (job.logs / "launcher.log").read_text()
    assert "restart 1 of 1 after: rank 0" in log and "from the start: no checkpoint yet" in log
    status = job.read_status()
    assert status["state"] == "finished" and status["ranks"]["0"]["exit_code"] == 0


def two_nodes(tmp_path: Path, args: list[str], join_timeout: int = 30):
    ports = {"master_port": free_port(), "control_port": free_port(),
             "join_timeout": join_timeout}
    node0, job = fake_job(tmp_path, args, ranks=2, nodes=2, node_rank=0, **ports)
    node1, _ = fake_job(tmp_path, args, ranks=2, nodes=2, node_rank=1, **ports)
    return node0, node1, job


def run_node1(launch: NodeLaunch, job: JobDir):
    supervisor = Supervisor(launch, None, echo=False)
    supervisor.join_node0()
    supervisor.use_job(job, shared=True)  # one machine: node 0's job directory is shared
    return supervisor.run()


def test_two_nodes_finish_together_and_node_0_records_both_ranks(tmp_path):
    node0, node1, job = two_nodes(tmp_path, ["--steps", "3"])
    thread0, box0 = in_thread(lambda: Supervisor(node0, job, echo=False).run())
    outcome1 = run_node1(node1, job)
    thread0.join(timeout=60)

    assert outcome1.state == "finished" and box0["outcome"].state == "finished"
    status = job.read_status()
    assert status["state"] == "finished"
    assert {r: e["state"] for r, e in status["ranks"].items()} == {"0": "finished",
                                                                    "1": "finished"}
    assert "node 1 joined from" in (job.logs / "launcher.log").read_text()


def test_a_rank_dying_on_node_1_ends_node_0_and_is_named_there(tmp_path):
    node0, node1, job = two_nodes(tmp_path, ["--steps", "100000", "--step-seconds", "0.02",
                                             "--fail-rank", "1", "--fail-at", "20"])
    thread0, box0 = in_thread(lambda: Supervisor(node0, job, echo=False).run())
    started = time.time()
    outcome1 = run_node1(node1, job)
    thread0.join(timeout=30)

    assert not thread0.is_alive()
    assert time.time() - started < 30
    outcome0 = box0["outcome"]
    assert outcome1.state == outcome0.state == "failed"
    assert outcome0.message.startswith("rank 1 (") and "exit code 1" in outcome0.message
    status = job.read_status()
    assert status["ranks"]["1"]["state"] == "failed" and status["ranks"]["0"]["state"] == "dead"
    # node 1's tail of rank 1 reached node 0's log
    assert "| worker_1.log: rank 1: failing at step 20" in (job.logs / "launcher.log").read_text()


def test_a_node_that_never_joins_is_named_after_the_join_timeout(tmp_path):
    node0, _, job = two_nodes(tmp_path, ["--steps", "100000", "--step-seconds", "0.02"],
                              join_timeout=2)
    started = time.time()
    outcome = Supervisor(node0, job, echo=False).run()

    assert time.time() - started < 15
    assert outcome.state == "failed"
    assert outcome.message.startswith("node 1 (ranks 1..1) never joined within 2 s")
    assert json.loads(job.status_json.read_text())["ranks"]["0"]["state"] == "dead"


def test_a_node_that_cannot_reach_node_0_fails_with_one_line_in_bounded_time(tmp_path):
    _, node1, _ = two_nodes(tmp_path, ["--steps", "1"], join_timeout=1)
    started = time.time()
    with pytest.raises(Exception) as caught:
        Supervisor(node1, None, echo=False).join_node0()
    assert time.time() - started < 10
    assert str(caught.value).startswith("could not reach node 0's launcher at 127.0.0.1:")
    assert caught.value.exit_code == 1


def test_a_detached_launcher_outlives_its_caller_and_stops_cleanly_on_sigterm(tmp_path):
    from mf_train.launch import detach, record_launch

    launch, job = fake_job(tmp_path, ["--steps", "100000", "--step-seconds", "0.02"])
    record_launch(job, launch)
    pid = detach(job)
    try:
        assert os.getsid(pid) == pid  # its own session: closing the terminal does not end it
        wait_for(lambda: job.read_status().get("launcher", {}).get("pid") == pid and
                 job.read_status().get("state") == "running")
        assert json.loads(job.launch_json.read_text())["pid"] == pid
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: job.read_status().get("state") == "stopped", timeout=30)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    status = job.read_status()
    assert status["exit_code"] == 128 + signal.SIGTERM and status["message"] == "stopped by SIGTERM"
    assert {entry["state"] for entry in status["ranks"].values()} == {"dead"}
    for entry in status["ranks"].values():
        with pytest.raises(ProcessLookupError):
            os.kill(entry["pid"], 0)
