"""`mf launch` and `mf distribute`: bad input is one line, exit code 2, before any rank starts
and before any job directory exists (no MindSpore is loaded for these)."""

from __future__ import annotations

import json
import socket
import textwrap
from pathlib import Path

import pytest

from mf_tui import cli


def run(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().err


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "dp.yaml"
    path.write_text(textwrap.dedent(f"""\
        output_dir: {tmp_path / "out"}
        runner_config: {{epochs: 1, batch_size: 2, max_steps: 4}}
        train_dataset:
          data_loader: {{type: PythonStdlibDataset, split: train}}
        model:
          model_config: {{type: LlamaConfig, seq_length: 32, vocab_size: 128, hidden_size: 32,
                          num_layers: 1, num_heads: 2, intermediate_size: 64}}
        parallel_config: {{data_parallel: 2}}
        """))
    return path


@pytest.mark.parametrize(("args", "expected"), [
    (["--workers", "3"],
     "--workers 3: data_parallel(2) * model_parallel(1) * pipeline_stage(1) = 2, but 3 devices "
     "are available"),
    (["--nodes", "3"], "--workers 2 cannot be spread over --nodes 3: 2 % 3 = 2"),
    (["--nodes", "2"], "--master-addr is needed with --nodes > 1"),
    (["--nodes", "2", "--node-rank", "2", "--master-addr", "127.0.0.1"],
     "--node-rank 2 is outside 0..1 (--nodes 2)"),
    (["--nodes", "2", "--master-addr", "192.0.2.7"],
     "--master-addr 192.0.2.7 is not an address of this machine"),
    (["--nodes", "2", "--node-rank", "1", "--master-addr", "127.0.0.1", "--detach"],
     "--detach runs node 0's launcher in the background"),
    (["--mode", "eval"], "--mode 'eval'; mf launch runs train or finetune"),
    (["--max-restarts", "-1"], "--max-restarts -1; it must be >= 0"),
])
def test_bad_launch_options_are_one_line_before_anything_starts(capsys, config, args, expected):
    code, err = run(capsys, "launch", str(config), *args)
    assert code == 2
    assert err.startswith(f"mf: error: {expected}"), err
    assert len(err.strip().splitlines()) == 1
    assert not (config.parent / "out").exists()


def test_a_port_in_use_is_named(capsys, config):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, err = run(capsys, "launch", str(config), "--master-port", str(port))
    assert code == 2
    assert err.strip() == (f"mf: error: --master-port {port} on 127.0.0.1 is in use (another "
                           "job or program listens there); choose another port")
    assert not (config.parent / "out").exists()


@pytest.fixture
def rank_table(tmp_path) -> Path:
    """MindFormers' hccl_4p table: two servers of two devices (rank ids 0-1 and 2-3)."""
    servers = [{"server_id": ip, "container_ip": ip, "device": [
        {"device_id": str(d), "device_ip": f"192.98.{n}.{d}", "rank_id": str(2 * n + d)}
        for d in range(2)]} for n, ip in enumerate(["127.0.0.1", "192.0.2.8"])]
    path = tmp_path / "hccl_4p_0123_127.0.0.1.json"
    path.write_text(json.dumps({"version": "1.0", "server_count": "2", "server_list": servers,
                                "status": "completed"}))
    return path


@pytest.mark.parametrize(("form", "device_range", "size", "expected"), [
    ("single", "0,2", "4", "device range '0,2' must look like [START,END] with integers"),
    ("single", "[2,2]", "4", "device range '[2,2]': END(2) must be greater than START(2)"),
    ("single", "[0,2]", "8", "RANK_SIZE is 8, but the rank table lists 4 devices"),
    ("single", "[0,2]", "4", "device range [0,2] starts 2 ranks, but RANK_SIZE is 4"),
    ("multi", "[1,3]", "4", "device range [1,3] is not the rank ids of one server"),
])
def test_bad_launch_script_arguments_are_one_line(capsys, tmp_path, rank_table, form,
                                                  device_range, size, expected):
    code, err = run(capsys, "distribute", form, "python task.py", str(rank_table), device_range,
                    size)
    assert code == 2
    assert expected in err and len(err.strip().splitlines()) == 1, err


def test_a_missing_rank_table_is_named(capsys, tmp_path):
    code, err = run(capsys, "distribute", "single", "python task.py",
                    str(tmp_path / "hccl.json"), "[0,2]", "2")
    assert code == 2
    assert err.strip() == f"mf: error: rank table '{tmp_path / 'hccl.json'}' does not exist"


def test_a_rank_table_gives_the_ranks_nodes_and_this_machines_server(capsys, config, tmp_path,
                                                                     rank_table):
    # the table's 4 devices against the config's data_parallel 2: one line before anything
    code, err = run(capsys, "launch", str(config), "--rank-table", str(rank_table))
    assert code == 2
    assert err.strip() == ("mf: error: --workers 4: data_parallel(2) * model_parallel(1) * "
                           "pipeline_stage(1) = 2, but 4 devices are available")
    foreign = json.loads(rank_table.read_text())
    foreign["server_list"][0]["server_id"] = "192.0.2.7"
    other = tmp_path / "hccl_foreign.json"
    other.write_text(json.dumps(foreign))
    code, err = run(capsys, "launch", str(config), "--rank-table", str(other))
    assert code == 2
    assert "cannot tell which server of the rank table" in err and "give --node-rank" in err
    assert not (config.parent / "out").exists()
