"""`mf launch CONFIG --workers N [--nodes M --node-rank K --master-addr A --master-port P]` and
`mf distribute single|multi "CMD" RANK_TABLE [START,END] RANK_SIZE` (MindFormers' launch
scripts, `scripts/run_distribute_{single,multi}_node.sh`, call the latter).

Both start the ranks of this node under mf-train's launcher, which records every rank's pid,
state and exit code in the job directory, ends the whole job within seconds when a rank dies
and names that rank. Everything that can be checked (config, layout against the ranks, ports,
rank table) is checked before any rank starts: one line, exit code 2.
"""

from __future__ import annotations

import shlex
import sys

import typer

from mf_tui.commands.train import OPTIONS, _options

distribute_app = typer.Typer(
    no_args_is_help=True,
    help="Run a command on every rank, as MindFormers' run_distribute_*_node.sh scripts do.")


def register(root: typer.Typer) -> None:
    root.command("launch", context_settings={"allow_extra_args": True})(launch)
    root.add_typer(distribute_app, name="distribute")


def launch(
    ctx: typer.Context,
    config: str = typer.Argument(..., metavar="CONFIG", help="A run YAML (MindFormers' schema)."),
    workers: int = typer.Option(None, "--workers", "-n", help="Ranks in the whole job "
                                "(msrun's worker_num); default: dp * mp * pp of the config."),
    nodes: int = typer.Option(1, "--nodes", help="Machines the ranks are spread over."),
    node_rank: int = typer.Option(None, "--node-rank",
                                  help="Which machine this is (0 leads; default 0, or this "
                                       "machine's server in --rank-table)."),
    master_addr: str = typer.Option(None, "--master-addr",
                                    help="Node 0's IP address (needed with --nodes > 1)."),
    master_port: int = typer.Option(None, "--master-port", help="The scheduler's port "
                                    "(default 8118 with several nodes, else a free one)."),
    control_port: int = typer.Option(None, "--control-port",
                                     help="The launchers' port on node 0 (default: "
                                          "master port + 1)."),
    job_id: str = typer.Option(None, "--job-id", help="Node 0's job id (printed by node 0)."),
    mode: str = typer.Option("train", "--mode", help="train or finetune."),
    join_timeout: int = typer.Option(120, "--join-timeout",
                                     help="Seconds to wait for every node and rank to join."),
    max_restarts: int = typer.Option(0, "--max-restarts",
                                     help="Restart the job this often after a failure, from "
                                          "the newest checkpoint."),
    detach: bool = typer.Option(False, "--detach", help="Run the launcher in the background "
                                "(its output: <job>/logs/launcher.log) and return."),
    rank_table: str = typer.Option(None, "--rank-table", metavar="FILE",
                                   help="MindFormers' HCCL rank table (hccl_*.json): ranks, "
                                        "nodes and master address from it."),
    options: list[str] = OPTIONS,
) -> None:
    """Run node K of a job (all of it on one machine by default); print every node's command."""
    from mf_train.launch import launch_run
    from mf_train.steplog import format_step_line
    from mf_train.supervisor import raise_for

    def step_line(event: dict, total_steps: int | None) -> None:
        if event.get("kind") == "step":
            typer.echo(format_step_line(event["step"], total_steps, event.get("loss"),
                                        event.get("lr"), event.get("grad_norm"),
                                        event.get("tokens_per_s"), event.get("mem_gib")),
                       err=True)
        elif event.get("kind") == "eval":
            metrics = event.get("metrics") or {}
            text = (", ".join(f"{k} {v:.4f}" for k, v in metrics.items()) if metrics
                    else event.get("message") or "")
            typer.echo(f"eval at step {event.get('step')}: {text}", err=True)

    result = launch_run(
        config, _options(ctx, options), mode, workers=workers, nodes=nodes,
        node_rank=node_rank, master_addr=master_addr, master_port=master_port,
        control_port=control_port, job_id=job_id, join_timeout=join_timeout,
        max_restarts=max_restarts, detach_launcher=detach,
        listeners=[step_line], argv=sys.argv, rank_table=rank_table)
    if result.launcher_pid is not None:
        typer.echo(f"launcher pid {result.launcher_pid}; job {result.job.root} "
                   f"(status.json, logs/launcher.log)")
        return
    raise_for(result.outcome)
    typer.echo(f"job finished: {result.job.root}")


RANGE_HELP = "The devices [START,END) to use, e.g. [0,8]."


def _distribute(multi_node: bool, command: str, rank_table: str, device_range: str,
                rank_size: int, master_port: int | None, join_timeout: int) -> None:
    from mf_train.launch import launch_command
    from mf_train.supervisor import raise_for

    result = launch_command(shlex.split(command), rank_table, device_range, rank_size,
                            multi_node, master_port=master_port, join_timeout=join_timeout)
    raise_for(result.outcome)
    typer.echo(f"all ranks finished; logs: {result.launch.log_dir}/rank_<id>/mindformer.log")


@distribute_app.command("single")
def distribute_single(
    command: str = typer.Argument(..., metavar="CMD", help="The command every rank runs."),
    rank_table: str = typer.Argument(..., metavar="RANK_TABLE", help="hccl_*.json"),
    device_range: str = typer.Argument(..., metavar="[START,END]", help=RANGE_HELP),
    rank_size: int = typer.Argument(..., metavar="RANK_SIZE", help="Ranks in the job."),
    master_port: int = typer.Option(None, "--master-port", help="The scheduler's port."),
    join_timeout: int = typer.Option(120, "--join-timeout", help="Seconds to form the cluster."),
) -> None:
    """All ranks on this machine: RANK_ID = device - START (run_distribute_single_node.sh)."""
    _distribute(False, command, rank_table, device_range, rank_size, master_port, join_timeout)


@distribute_app.command("multi")
def distribute_multi(
    command: str = typer.Argument(..., metavar="CMD", help="The command every rank runs."),
    rank_table: str = typer.Argument(..., metavar="RANK_TABLE", help="hccl_*.json"),
    device_range: str = typer.Argument(..., metavar="[START,END]",
                                       help="This server's rank ids [START,END), e.g. [8,16]."),
    rank_size: int = typer.Argument(..., metavar="RANK_SIZE", help="Ranks in the job."),
    master_port: int = typer.Option(None, "--master-port", help="The scheduler's port."),
    join_timeout: int = typer.Option(120, "--join-timeout", help="Seconds to form the cluster."),
) -> None:
    """This server's ranks of a multi-machine job: RANK_ID = i, DEVICE_ID = i - START
    (run_distribute_multi_node.sh); the rank table's first server leads."""
    _distribute(True, command, rank_table, device_range, rank_size, master_port, join_timeout)
