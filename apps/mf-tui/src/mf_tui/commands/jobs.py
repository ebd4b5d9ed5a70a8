"""`mf jobs list|show|logs|stop` and `mf tui`: jobs from their job directories alone.

Everything here reads `status.json`, `events/rank_<r>.jsonl` and `logs/` (mf_tui.jobs), so a
job started from another terminal, on another node with a shared file system, or long finished
reads the same. Nothing heavy is imported: no MindSpore, no numpy.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="List, inspect, follow and stop jobs.")
ROOT = typer.Option("output", "--root", help="The folder holding job directories.")
JOB = typer.Argument(..., metavar="JOB", help="A job directory.")
FOLLOW_POLL_SECONDS = 0.25


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="jobs")
    root.command("tui")(tui)


def tui(
    job: str | None = typer.Argument(None, metavar="[JOB_DIR]",
                                     help="Open the monitor of this job."),
    root: str = ROOT,
) -> None:
    """The terminal UI: jobs under --root (default ./output), or the monitor of JOB_DIR."""
    from mf_tui.app import make_app

    make_app(job=job, root=root).run()


def _console():
    from rich.console import Console

    return Console(highlight=False)


@app.command("list")
def list_jobs(root: str = ROOT) -> None:
    """Jobs under --root with their state, progress and final metrics, newest first."""
    from rich.table import Table

    from mf_tui.jobs import JobView, find_jobs
    from mf_tui.jobs.format import age, metrics, number, progress

    base = Path(root).expanduser().absolute()
    jobs = find_jobs(base)
    console = _console()
    if not jobs:
        console.print(f"no jobs under {base}")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("job", "state", "step", "ranks", "loss", "started"):
        table.add_column(column, no_wrap=True)
    table.add_column("last eval")
    now = time.time()
    for path in jobs:
        snap = JobView(path).poll()
        last = snap.last_eval
        table.add_row(_relative(path, base), snap.state, progress(snap.step, snap.total_steps),
                      str(len(snap.ranks)), number(_last_loss(snap)),
                      (age(now - snap.started) + " ago") if snap.started else "-",
                      metrics(last.metrics) if last else "-")
    console.print(table)


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base)) or "."
    except ValueError:
        return str(path)


def _last_loss(snap) -> float | None:
    points = snap.series.get("loss")
    return points[-1][1] if points else None


@app.command("show")
def show(job: str = JOB) -> None:
    """The job's state, each rank's state and step, the last step's metrics and evaluation."""
    from rich.table import Table

    from mf_tui.jobs import JobView, require_job
    from mf_tui.jobs.format import age, metrics, number, progress

    snap = JobView(require_job(job)).poll()
    console = _console()
    state = snap.state + (f" (exit code {snap.exit_code})" if snap.exit_code else "")
    console.print(f"job:     {snap.root}")
    console.print(f"state:   {state}" + (f": {snap.message}" if snap.message else ""))
    console.print(f"step:    {progress(snap.step, snap.total_steps)}")
    if snap.started:
        console.print(f"started: {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(snap.started))}"
                      f" ({age(time.time() - snap.started)} ago)")
    for warning in snap.warnings:
        console.print(f"note:    {warning}")
    table = Table(box=None, pad_edge=False)
    for column in ("rank", "state", "step", "age", "tokens/s", "loss", "lr", "grad", "GiB",
                   "pid", "host"):
        table.add_column(column, no_wrap=True)
    for rank in snap.ranks:
        table.add_row(str(rank.rank), rank.state_text, progress(rank.step, None), age(rank.age),
                      number(rank.tokens_per_s, ".0f"), number(rank.loss),
                      number(rank.lr, ".2e"), number(rank.grad_norm, ".3f"),
                      number(rank.mem_gib, ".2f"), str(rank.pid or "-"), rank.host or "-")
    console.print(table)
    for rank in snap.ranks:
        if rank.message and rank.state in ("failed", "dead"):
            console.print(f"rank {rank.rank}: {rank.message}")
    last = snap.last_eval
    if last:
        console.print(f"eval:    step {last.step}: {metrics(last.metrics)}")
    if snap.last_checkpoint:
        console.print(f"checkpoint: {snap.last_checkpoint}")


@app.command("logs")
def logs(
    job: str = JOB,
    rank: int | None = typer.Option(None, "--rank", "-r", help="Only this rank's log."),
    follow: bool = typer.Option(False, "--follow", "-f",
                                help="Keep printing new lines until the job ends."),
) -> None:
    """Print each rank's log (logs/worker_<r>.log), or one rank's; --follow tails them."""
    from mf_tui.jobs import JobError, JobView, LineTailer, require_job

    root = require_job(job)
    view = JobView(root)
    snap = view.poll()
    ranks = [rank] if rank is not None else [r.rank for r in snap.ranks] or [0]
    paths = {r: root / "logs" / f"worker_{r}.log" for r in ranks}
    if rank is not None and not paths[rank].is_file() and not follow:
        known = sorted(int(p.stem.removeprefix("worker_")) for p in (root / "logs").glob(
            "worker_*.log") if p.stem.removeprefix("worker_").isdigit())
        raise JobError(f"--rank {rank}: {root.name} has no logs/worker_{rank}.log; ranks with "
                       f"a log: {', '.join(map(str, known)) or 'none yet'}")
    tailers = {r: LineTailer(path) for r, path in paths.items()}

    def drain() -> None:
        for tailer in tailers.values():
            for line in tailer.read():
                typer.echo(line.decode("utf-8", errors="replace"))

    drain()
    if not follow:
        return
    try:
        while not snap.ended:
            time.sleep(FOLLOW_POLL_SECONDS)
            drain()
            snap = view.poll()
        drain()
    except KeyboardInterrupt:
        return


@app.command("stop")
def stop(
    job: str = JOB,
    timeout: float = typer.Option(15.0, "--timeout",
                                  help="Seconds to wait after SIGTERM before SIGKILL."),
) -> None:
    """Stop a running job: SIGTERM to its launcher's process group, SIGKILL after --timeout."""
    from mf_tui.jobs import stop_job

    result = stop_job(job, timeout=timeout)
    typer.echo(result.message)
