"""A run YAML as a job: what `mf train|finetune|eval|predict CONFIG` and `mf export` do.

The run is resolved once (`resolve_run`), then one process runs it in place (`RunSession`). A
run of several ranks (parallel_config.data_parallel > 1) started outside msrun is launched:
this process plans it and creates the job directory, then starts msrun with mf-parallel's
launcher argv (a subprocess argument list, its logs under <job>/logs/msrun/); each rank runs
`mf_train/worker.py --job DIR`, which resolves the job's job.yaml, and this process follows
rank 0's event log to report progress, as any other reader of the job directory would.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mf_parallel.runtime import LOCAL_RANKS_ENV, apply_runtime_defaults

from mf_train.callbacks import EvalRecord, StepRecord, TrainSummary, notify
from mf_train.errors import MfTrainError, TrainConfigError
from mf_train.jobdir import JobDir, read_events
from mf_train.resolve import resolve_run
from mf_train.session import RunSession
from mf_train.steplog import format_step_line

WORKER = Path(__file__).with_name("worker.py")
# msrun waits this long for every rank to join the cluster; a rank that dies while importing
# MindSpore should fail the job in about a minute, not msrun's default ten.
CLUSTER_TIME_OUT = 120


@dataclass
class JobResult:
    mode: str
    summary: TrainSummary | None = None
    metrics: dict[str, float] | None = None
    predictions: list[dict[str, list[str]]] | None = None
    job: Path | None = None


def run_job(config_path: str | Path, options: Sequence[str] = (), mode: str = "train", *,
            callbacks: Sequence[Any] = (), echo: bool = True, step_lines: bool = True,
            argv: Sequence[str] | None = None, input_data: Sequence[str] | None = None,
            streamer: Any = None, max_new_tokens: int | None = None,
            generate: dict[str, Any] | None = None, checkpoint: str | Path | None = None,
            random_init: bool = False) -> JobResult:
    """Run one job from a run YAML; errors are one line with an exit code.

    `echo` prints the run's summary, evaluations and checkpoints to stderr, `step_lines` the
    step lines too (off under a progress bar fed by `callbacks`). `checkpoint` (eval and
    predict): weights to use instead of load_checkpoint's, or under LoRA the LoRA run's over
    load_checkpoint's base. `random_init` runs untrained weights on purpose.
    """
    from mf_train.distributed import launched_by_msrun

    run = resolve_run(config_path, options, mode=mode)
    session = RunSession(run, callbacks=callbacks, echo=echo, echo_steps=echo and step_lines,
                         random_init=random_init)
    if mode in ("train", "finetune") and run.world_size > 1 and not launched_by_msrun():
        printer = [StepPrinter(step_lines)] if echo else []
        return launch_ranks(session, callbacks=[*callbacks, *printer], argv=argv, echo=echo)
    if mode in ("train", "finetune"):
        return JobResult(mode, summary=session.fit(argv=argv), job=run.output_dir)
    if mode == "eval":
        return JobResult(mode, metrics=session.evaluate(checkpoint))
    return JobResult(mode, predictions=session.predict(
        list(input_data or []), checkpoint=checkpoint, streamer=streamer,
        max_new_tokens=max_new_tokens, **(generate or {})))


def export_job(config_path: str | Path, output_dir: str | Path, options: Sequence[str] = (),
               checkpoint: str | Path | None = None, overwrite: bool = False,
               random_init: bool = False) -> Path:
    """`mf export`: the run YAML's model with its weights (LoRA merged) as a model directory."""
    run = resolve_run(config_path, options, mode="predict")
    return RunSession(run, echo=False, random_init=random_init).export(
        output_dir, checkpoint=checkpoint, overwrite=overwrite)


# ---- data parallel under msrun ------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def msrun_path() -> str:
    """msrun of this interpreter's environment (the venv's bin/), else the one on PATH."""
    beside = Path(sys.executable).with_name("msrun")
    if beside.is_file():
        return str(beside)
    found = shutil.which("msrun")
    if found is None:
        raise MfTrainError("msrun (MindSpore's launcher) is not installed beside this Python "
                           "or on PATH; it comes with the mindspore package")
    return found


def launch_argv(job: JobDir, world_size: int, port: int | None = None) -> list[str]:
    """msrun's argument list for `world_size` ranks of this job on this machine; each rank
    resolves the job directory's job.yaml (the run this process checked), not the user's YAML."""
    from mf_parallel import LaunchSpec

    spec = LaunchSpec.single_node(world_size, master_port=port or free_port(),
                                  log_dir=str(job.logs / "msrun"),
                                  cluster_time_out=CLUSTER_TIME_OUT)
    return spec.argv(WORKER, ["--job", str(job.root)], msrun=msrun_path())


def launch_ranks(session: RunSession, *, callbacks: Sequence[Any] = (),
                 argv: Sequence[str] | None = None, poll_seconds: float = 0.5,
                 echo: bool = False) -> JobResult:
    """Plan the run and make its job here, run the ranks under msrun, follow rank 0's events."""
    run = session.run
    session.start_weights(None, session.random_init)  # finetune: weights named, or said not
    plan, _, job = session.prepare(argv=argv)
    world = run.world_size
    if echo:
        for line in [*plan.summary_lines(),
                     f"launching {world} ranks with msrun; their logs: {job.logs}"]:
            print(line, file=sys.stderr, flush=True)
    command = launch_argv(job, world)
    # msrun starts each rank as `python script`: this interpreter must be the `python` it finds.
    env = {**os.environ, LOCAL_RANKS_ENV: str(world),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    apply_runtime_defaults(env)
    (job.logs / "msrun").mkdir(parents=True, exist_ok=True)
    with open(job.logs / "msrun" / "launcher.log", "ab") as launcher_log:
        process = subprocess.Popen(command, env=env, stdout=launcher_log,  # noqa: S603
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        follower = EventFollower(job, plan.train_steps, list(callbacks))
        try:
            while process.poll() is None:
                follower.poll()
                time.sleep(poll_seconds)
        except BaseException:
            process.terminate()
            process.wait(timeout=30)
            raise
        follower.poll()
    status = job.read_status()
    if process.returncode != 0 or status.get("state") != "finished":
        message = status.get("message") or (f"msrun exited with code {process.returncode}; "
                                            f"see {job.logs / 'msrun'}")
        code = status.get("exit_code", 1)
        raise (TrainConfigError if code == 2 else MfTrainError)(message)
    return JobResult(run.mode, summary=follower.summary(), job=job.root)


class StepPrinter:
    """The eval (and step) lines of a launched job, on stderr, as one process prints them."""

    def __init__(self, steps: bool = True):
        self.steps = steps

    def on_step_end(self, record: StepRecord) -> None:
        if not self.steps:
            return
        print(format_step_line(record.step, record.total_steps, record.loss, record.lr,
                               record.grad_norm, record.tokens_per_s, record.mem_gib),
              file=sys.stderr, flush=True)

    def on_evaluate(self, record: EvalRecord) -> None:
        text = ", ".join(f"{k} {v:.4f}" for k, v in record.metrics.items())
        print(f"eval at step {record.step}: {text}", file=sys.stderr, flush=True)


class EventFollower:
    """Reads rank 0's new events and replays them to callbacks as step/eval records."""

    def __init__(self, job: JobDir, total_steps: int, callbacks: list[Any]):
        self.path = job.events_file(0)
        self.total_steps = total_steps
        self.callbacks = callbacks
        self.offset = 0
        self.last_loss: float | None = None
        self.steps = 0
        self.checkpoint: Path | None = None
        self.evaluations: list[EvalRecord] = []
        self.started = time.time()

    def poll(self) -> None:
        batch = read_events(self.path, self.offset)
        self.offset = batch.offset
        for event in batch.events:
            kind = event.get("kind")
            if kind == "step":
                self.steps = event["step"]
                if event.get("loss") is not None:
                    self.last_loss = event["loss"]
                notify(self.callbacks, "on_step_end", StepRecord(
                    step=event["step"], total_steps=self.total_steps,
                    epoch=event.get("epoch") or 0, loss=event.get("loss") or float("nan"),
                    lr=event.get("lr") or 0.0, grad_norm=event.get("grad_norm") or float("nan"),
                    tokens_per_s=event.get("tokens_per_s") or 0.0,
                    mem_gib=event.get("mem_gib")))
            elif kind == "eval":
                record = EvalRecord(step=event["step"], epoch=event.get("epoch") or 0,
                                    metrics=dict(event.get("metrics") or {}))
                self.evaluations.append(record)
                notify(self.callbacks, "on_evaluate", record)
            elif kind == "checkpoint" and event.get("path"):
                self.checkpoint = Path(event["path"])

    def summary(self) -> TrainSummary:
        return TrainSummary(steps=self.steps, last_loss=self.last_loss,
                            checkpoint=self.checkpoint, evaluations=self.evaluations,
                            seconds=time.time() - self.started)

