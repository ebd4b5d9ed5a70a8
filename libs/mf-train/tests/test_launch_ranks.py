"""`mf launch` and `mf distribute` with real MindSpore ranks: a SIGKILLed rank of a dp=2 run is
named and the job restarted from its checkpoint; a 2-node job on one machine, each node in
its own network namespace (own address, a veth pair between them); MindFormers' launch form
with a rank table. Each starts MindSpore processes (30-90 s): msrun and slow."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from train_fixtures import pattern_samples, run_yaml, step_losses, write_mindrecord_samples

from mf_train.jobdir import JobDir, read_events

MF = str(Path(sys.executable).with_name("mf"))
PARALLEL_TESTS = Path(__file__).resolve().parents[2] / "mf-parallel" / "tests"


def dp2_config(tmp_path: Path, steps: int, save_every: int = 0) -> Path:
    data = write_mindrecord_samples(tmp_path / "train.mindrecord", pattern_samples(128))
    callbacks = (f"callbacks: [{{type: CheckpointMointor, save_checkpoint_steps: {save_every}}}]\n"
                 if save_every else "")
    return run_yaml(tmp_path, data, output=tmp_path / "job", name="dp.yaml",
                    runner=f"{{epochs: 50, batch_size: 2, max_steps: {steps}}}",
                    extra="parallel_config: {data_parallel: 2}\n" + callbacks)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def status(job: JobDir) -> dict:
    try:
        return json.loads(job.status_json.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


@pytest.mark.msrun
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_sigkilled_rank_is_named_within_seconds_and_the_job_resumes_from_its_checkpoint(
        tmp_path):
    config = dp2_config(tmp_path, steps=60, save_every=10)
    job = JobDir(tmp_path / "job")
    log = tmp_path / "launch.log"
    with open(log, "wb") as out:
        launcher = subprocess.Popen([MF, "launch", str(config), "--max-restarts", "1"],
                                    stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: status(job).get("step", 0) >= 24, 300, "step 24")
        victim = status(job)["ranks"]["1"]["pid"]
        os.kill(victim, signal.SIGKILL)
        killed = time.time()
        # the old ranks are ended and new ones started well within 30 s of the kill
        wait_for(lambda: status(job)["ranks"]["1"]["pid"] != victim, 30, "the restart")
        assert time.time() - killed < 30
        assert launcher.wait(timeout=400) == 0, log.read_text()[-3000:]
    finally:
        if launcher.poll() is None:
            launcher.kill()

    lines = (job.logs / "launcher.log").read_text().splitlines()
    failure = next(line for line in lines if "failure:" in line)
    assert re.search(r"failure: rank 1 \(.*\) killed by SIGKILL \(exit code -9\) at step \d+",
                     failure), failure
    # the tail of the killed rank: its own log's last lines (a SIGKILL prints nothing)
    tail = lines[lines.index(failure) + 1:lines.index(failure) + 4]
    assert any("| worker_1.log: [rank 1]" in line for line in tail), tail
    assert len([line for line in lines if "started ranks" in line]) == 2
    assert any("restart 1 of 1 after: rank 1" in line for line in lines)
    starts = [e for e in read_events(job.events_file(0)).events if e["kind"] == "start"]
    assert [e["step"] for e in starts][0] == 0 and starts[1]["step"] % 10 == 0
    assert starts[1]["step"] >= 20
    final = status(job)
    assert final["state"] == "finished" and final["step"] == 60
    assert {e["state"] for e in final["ranks"].values()} == {"finished"}
    # an exact resume: the steps run twice (checkpoint .. kill) have the same losses
    first, second = {}, {}
    seen_second_start = False
    for event in read_events(job.events_file(0)).events:
        if event["kind"] == "start" and event["step"] > 0:
            seen_second_start = True
        if event["kind"] == "step":
            (second if seen_second_start else first)[event["step"]] = event["loss"]
    repeated = sorted(set(first) & set(second))
    assert repeated, "no step ran in both attempts"
    assert [second[s] for s in repeated] == pytest.approx([first[s] for s in repeated],
                                                          abs=1e-6)


# ---- two nodes in two network namespaces -------------------------------------------------------

def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def two_hosts():
    """Two network namespaces joined by a veth pair: (address of A, address of B, names)."""
    if shutil.which("ip") is None:
        pytest.skip("two-node test: the `ip` command (Debian package iproute2) is missing")
    if os.geteuid() != 0:
        pytest.skip("two-node test: making network namespaces needs root")
    tag = f"{os.getpid() % 100000}"
    names = (f"mfa{tag}", f"mfb{tag}")
    links = (f"mfva{tag}", f"mfvb{tag}")
    subnet = f"10.213.{os.getpid() % 250}"
    try:
        _ip("netns", "add", names[0])
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"two-node test: cannot make a network namespace here ({exc.stderr!r:.80})")
    try:
        _ip("netns", "add", names[1])
        _ip("link", "add", links[0], "type", "veth", "peer", "name", links[1])
        for name, link, host in zip(names, links, ("1", "2"), strict=True):
            _ip("link", "set", link, "netns", name)
            _ip("-n", name, "addr", "add", f"{subnet}.{host}/24", "dev", link)
            _ip("-n", name, "link", "set", link, "up")
            _ip("-n", name, "link", "set", "lo", "up")
        yield f"{subnet}.1", f"{subnet}.2", names
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=30)


@pytest.mark.msrun
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_two_node_job_runs_across_two_network_namespaces(tmp_path, two_hosts):
    address_a, _, (host_a, host_b) = two_hosts
    config = dp2_config(tmp_path, steps=6)
    common = ["launch", str(config), "--workers", "2", "--nodes", "2", "--master-addr",
              address_a, "--master-port", "18611", "--job-id", "netns-test",
              "--join-timeout", "120"]
    logs = [tmp_path / "node0.log", tmp_path / "node1.log"]
    nodes = []
    for rank, (host, log) in enumerate(zip((host_a, host_b), logs, strict=True)):
        with open(log, "wb") as out:
            nodes.append(subprocess.Popen(
                ["ip", "netns", "exec", host, MF, *common, "--node-rank", str(rank)],
                stdout=out, stderr=subprocess.STDOUT))
    try:
        codes = [node.wait(timeout=400) for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
    assert codes == [0, 0], "\n".join(log.read_text()[-2000:] for log in logs)

    node0 = logs[0].read_text()
    assert "node 1: mf launch" in node0 and "--node-rank 1" in node0  # the other node's command
    assert "node 1 joined from" in (tmp_path / "job" / "logs" / "launcher.log").read_text()
    job = JobDir(tmp_path / "job")
    launch = json.loads(job.launch_json.read_text())
    assert launch["nodes"] == 2 and set(launch["commands"]) == {"0", "1"}
    final = status(job)
    assert final["state"] == "finished" and final["step"] == 6
    assert {r: e["state"] for r, e in final["ranks"].items()} == {"0": "finished",
                                                                  "1": "finished"}
    # the gradients crossed the veth pair: both ranks logged the same all-reduced losses
    losses = [step_losses(job.events_file(rank)) for rank in (0, 1)]
    assert sorted(losses[0]) == list(range(1, 7))
    assert [losses[1][s] for s in range(1, 7)] == pytest.approx(
        [losses[0][s] for s in range(1, 7)], abs=1e-6)


# ---- MindFormers' launch scripts ----------------------------------------------------------------

@pytest.mark.msrun
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_single_node_script_runs_a_command_per_device_of_a_rank_table(tmp_path):
    table = tmp_path / "hccl_2p_01_127.0.0.1.json"
    table.write_text(json.dumps({"version": "1.0", "server_count": "1", "status": "completed",
                                 "server_list": [{"server_id": "127.0.0.1", "device": [
                                     {"device_id": "0", "device_ip": "192.1.27.6",
                                      "rank_id": "0"},
                                     {"device_id": "1", "device_ip": "192.2.27.6",
                                      "rank_id": "1"}]}]}))
    out = tmp_path / "reports"
    out.mkdir()
    script = Path(__file__).resolve().parents[3] / "scripts" / "run_distribute_single_node.sh"
    command = f"{sys.executable} {PARALLEL_TESTS / 'msrun_worker.py'} {out}"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", str(script), command, str(table), "[0,2]", "2"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads((out / f"rank_{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in reports] == [0, 1]
    assert all(r["world_sum"] == [3.0, 30.0] for r in reports)
    assert (tmp_path / "output" / "log" / "rank_1" / "mindformer.log").is_file()
