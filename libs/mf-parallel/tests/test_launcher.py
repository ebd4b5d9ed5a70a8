"""Launch specs -> msrun argv, and HCCL rank tables."""

from __future__ import annotations

import json

import pytest

from mf_parallel import (
    LaunchSpec,
    ParallelConfigError,
    ParallelFileNotFoundError,
    RankTableError,
    parse_rank_table,
    read_rank_table,
)


def test_single_node_argv():
    spec = LaunchSpec.single_node(4, master_port=9123, log_dir="job/logs")
    assert spec.argv("train.py", ["--config", "run.yaml"]) == [
        "msrun", "--worker_num=4", "--local_worker_num=4", "--master_addr=127.0.0.1",
        "--master_port=9123", "--node_rank=0", "--log_dir=job/logs", "--join=True",
        "--cluster_time_out=600", "train.py", "--config", "run.yaml",
    ]
    assert spec.ranks == [0, 1, 2, 3]


def test_node_k_of_a_multi_node_job():
    spec = LaunchSpec.multi_node(num_nodes=3, workers_per_node=8, node_rank=2,
                                 master_addr="10.0.0.1", join=False, cluster_time_out=-1)
    argv = spec.argv("run.py", msrun="/opt/venv/bin/msrun")
    assert argv[0] == "/opt/venv/bin/msrun"
    assert "--worker_num=24" in argv and "--local_worker_num=8" in argv
    assert "--node_rank=2" in argv and "--master_addr=10.0.0.1" in argv
    assert "--join=False" in argv and "--cluster_time_out=-1" in argv
    assert spec.ranks == list(range(16, 24))  # msrun numbers ranks node by node


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(worker_num=0, local_worker_num=1), "worker_num(0) must be >= 1"),
        (dict(worker_num=4, local_worker_num=8),
         "local_worker_num(8) > worker_num(4): a node cannot start more ranks than the whole "
         "job has"),
        (dict(worker_num=6, local_worker_num=4),
         "worker_num(6) is not divisible by local_worker_num(4): 6 % 4 = 2; every node runs "
         "the same number of ranks"),
        (dict(worker_num=8, local_worker_num=4, node_rank=2),
         "node_rank(2) is outside 0..1: worker_num(8) / local_worker_num(4) = 2 nodes"),
        (dict(worker_num=2, local_worker_num=2, master_port=80),
         "master_port(80) must be in 1024..65535"),
        (dict(worker_num=2, local_worker_num=2, master_addr="a b"),
         "master_addr 'a b' must be an IP address or host name"),
        (dict(worker_num=2, local_worker_num=2, join="yes"),
         "join must be true or false, got 'yes'"),
    ],
)
def test_launch_spec_errors(kwargs, message):
    with pytest.raises(ParallelConfigError) as info:
        LaunchSpec(**kwargs)
    assert str(info.value) == message


def _table(servers=2, devices=4):
    """A rank table as MindFormers' hccl_tools.py writes it: every number a string."""
    return {
        "version": "1.0",
        "server_count": str(servers),
        "server_list": [
            {
                "server_id": f"192.168.0.{s + 1}",
                "device": [
                    {"device_id": str(d), "device_ip": f"192.1.{s}.{d}",
                     "rank_id": str(s * devices + d)}
                    for d in range(devices)
                ],
                "host_nic_ip": "reserve",
            }
            for s in range(servers)
        ],
        "status": "completed",
    }


def test_rank_table_gives_each_servers_msrun_spec(tmp_path):
    path = tmp_path / "hccl_8p_01234567_192.168.0.1.json"
    path.write_text(json.dumps(_table()))
    table = read_rank_table(path)
    assert table.worker_num == 8
    spec = table.launch_spec("192.168.0.2", master_port=8200)
    assert (spec.worker_num, spec.local_worker_num, spec.node_rank) == (8, 4, 1)
    assert spec.master_addr == "192.168.0.1"  # the first server leads
    assert spec.ranks == [d.rank_id for d in table.servers[1].devices]
    assert table.launch_spec(0).ranks == [0, 1, 2, 3]


def _broken(edit):
    table = _table()
    edit(table)
    return table


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (_broken(lambda t: t.update(status="init")),
         "status is 'init', expected 'completed' (the table is still being built)"),
        (_broken(lambda t: t.update(server_count="3")),
         "server_count is 3, but server_list has 2 servers"),
        (_broken(lambda t: t.update(server_list=[])),
         "'server_list' must be a non-empty list of servers (got [])"),
        (_broken(lambda t: t["server_list"][1]["device"][0].update(rank_id="x")),
         "server_list[1].device[0].rank_id is 'x', expected an integer or an integer string"),
        (_broken(lambda t: t["server_list"][1]["device"][0].update(rank_id="0")),
         "rank_id 0 appears twice (server_list[0].device[0] and server_list[1].device[0])"),
        (_broken(lambda t: t["server_list"][1]["device"][3].update(rank_id="9")),
         "rank_ids must be 0..7 for 8 devices; missing [7]"),
        (_broken(lambda t: t["server_list"][0]["device"][1].pop("device_id")),
         "server_list[0].device[1] is missing 'device_id'"),
        (_broken(lambda t: t["server_list"][0]["device"][1].update(device_ip="1.2.3")),
         "server_list[0].device[1].device_ip is '1.2.3', not an IP address"),
        (_broken(lambda t: t["server_list"].reverse()),
         "server_list[0] (192.168.0.2) holds rank_ids [4, 5, 6, 7], but msrun numbers this "
         "node's ranks 0..3 in order"),
        ([], "the top level must be a JSON object, got list"),
    ],
)
def test_rank_table_errors(table, message):
    with pytest.raises(RankTableError) as info:
        parse_rank_table(table, "hccl.json")
    assert str(info.value) == f"hccl.json: {message}"


def test_rank_table_file_problems(tmp_path):
    with pytest.raises(ParallelFileNotFoundError, match="does not exist"):
        read_rank_table(tmp_path / "missing.json")
    path = tmp_path / "hccl.json"
    path.write_text(json.dumps(_table())[:50])
    with pytest.raises(RankTableError, match=r"not valid JSON \(truncated or corrupt\?\)") as info:
        read_rank_table(path)
    assert "\n" not in str(info.value)
    table = parse_rank_table(_table(), "t")
    with pytest.raises(RankTableError, match=r"server '10.0.0.9' is not in the rank table"):
        table.launch_spec("10.0.0.9")
