"""A run YAML as a job: what `mf train|finetune|eval|predict CONFIG` does.

One process runs the Trainer in place. A data-parallel run (parallel_config.data_parallel > 1)
started outside msrun is launched: this process checks everything and creates the job
directory, then starts msrun with mf-parallel's launcher argv (a subprocess argument list, its
logs under <job>/logs/msrun/), each rank runs `mf_train/worker.py` into that same directory,
and this process follows rank 0's event log to report progress, as any other reader of the job
directory would.
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

from mf_train.callbacks import EvalRecord, StepRecord, TrainSummary, notify
from mf_train.errors import MfTrainError, TrainConfigError
from mf_train.jobdir import JobDir, read_events
from mf_train.run_yaml import RunConfig, load_run_config
from mf_train.steplog import format_step_line

MODES = ("train", "finetune", "eval", "predict")
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


def load_job_config(config_path: str | Path, options: Sequence[str], mode: str) -> RunConfig:
    """The run YAML with `--options` and the command's run mode (the command wins)."""
    if mode not in MODES:
        raise TrainConfigError(f"mode {mode!r}; allowed: {', '.join(MODES)}")
    config = load_run_config(config_path, options)
    if config.run_mode != mode:
        config = load_run_config(config_path, [*options, f"run_mode={mode}"])
    return config


def pet_method_of(config: RunConfig) -> str:
    """MindFormers names LoRA in model.model_config.pet_config.pet_type."""
    pet = config.model.model_config.get("pet_config") or {}
    return str(pet.get("pet_type", "lora")) if isinstance(pet, dict) and pet else ""


def run_job(config_path: str | Path, options: Sequence[str] = (), mode: str = "train", *,
            callbacks: Sequence[Any] = (), echo: bool = True, step_lines: bool = True,
            argv: Sequence[str] | None = None, input_data: Sequence[str] | None = None,
            streamer: Any = None, max_new_tokens: int | None = None,
            generate: dict[str, Any] | None = None,
            checkpoint: str | Path | None = None) -> JobResult:
    """Run one job from a run YAML; errors are one line with an exit code.

    `echo` prints the run's summary, evaluations and checkpoints to stderr, `step_lines` the
    step lines too (off under a progress bar fed by `callbacks`). `checkpoint` (eval and
    predict) is Trainer's eval_checkpoint / predict_checkpoint: weights to use instead of
    load_checkpoint's, or under LoRA the LoRA run's over load_checkpoint's base.
    """
    from mf_train.distributed import launched_by_msrun
    from mf_train.trainer import Trainer

    config = load_job_config(config_path, options, mode)
    world = config.parallel_config.data_parallel
    if mode in ("train", "finetune") and world > 1 and not launched_by_msrun():
        printer = [StepPrinter(step_lines)] if echo else []
        return launch_data_parallel(config_path, options, mode, config,
                                    callbacks=[*callbacks, *printer], argv=argv, echo=echo)
    trainer = Trainer(args=config, pet_method=pet_method_of(config), callbacks=callbacks,
                      log_to_console=echo, log_steps_to_console=echo and step_lines)
    if mode == "train":
        return JobResult(mode, summary=trainer.train(argv=argv), job=_job_root(config))
    if mode == "finetune":
        return JobResult(mode, summary=trainer.finetune(argv=argv), job=_job_root(config))
    if mode == "eval":
        return JobResult(mode, metrics=trainer.evaluate(eval_checkpoint=checkpoint))
    prompts = list(input_data or [])
    return JobResult(mode, predictions=trainer.predict(input_data=prompts,
                                                      predict_checkpoint=checkpoint,
                                                      streamer=streamer,
                                                      max_new_tokens=max_new_tokens,
                                                      **(generate or {})))


def export_job(config_path: str | Path, output_dir: str | Path, options: Sequence[str] = (),
               checkpoint: str | Path | None = None, overwrite: bool = False) -> Path:
    """`mf export`: the run YAML's model with its weights (LoRA merged) as a model directory."""
    from mf_train.trainer import Trainer

    config = load_job_config(config_path, options, "predict")
    trainer = Trainer(args=config, pet_method=pet_method_of(config), log_to_console=False)
    return trainer.export(output_dir, export_checkpoint=checkpoint, overwrite=overwrite)


def _job_root(config: RunConfig) -> Path:
    return Path(config.output_dir).expanduser().absolute()


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


def launch_argv(config_path: str | Path, options: Sequence[str], mode: str, job: JobDir,
                world_size: int, port: int | None = None) -> list[str]:
    """msrun's argument list for `world_size` ranks of this job on this machine."""
    from mf_parallel import LaunchSpec

    spec = LaunchSpec.single_node(world_size, master_port=port or free_port(),
                                  log_dir=str(job.logs / "msrun"),
                                  cluster_time_out=CLUSTER_TIME_OUT)
    args = ["--config", str(Path(config_path).expanduser().absolute()), "--mode", mode,
            "--job", str(job.root)]
    for option in options:
        args += ["--option", option]
    return spec.argv(WORKER, args, msrun=msrun_path())


def launch_data_parallel(config_path: str | Path, options: Sequence[str], mode: str,
                         config: RunConfig, *, callbacks: Sequence[Any] = (),
                         argv: Sequence[str] | None = None, poll_seconds: float = 0.5,
                         echo: bool = False) -> JobResult:
    """Check and create the job here, run the ranks under msrun, follow rank 0's events."""
    from mf_train.trainer import Trainer

    trainer = Trainer(args=config, pet_method=pet_method_of(config), log_to_console=False)
    prepared = trainer.prepare_job(argv=argv)
    job = prepared.job
    assert job is not None
    world = config.parallel_config.data_parallel
    if echo:
        for line in [*prepared.summary_lines(),
                     f"launching {world} ranks with msrun; their logs: {job.logs}"]:
            print(line, file=sys.stderr, flush=True)
    command = launch_argv(config_path, options, mode, job, world)
    # msrun starts each rank as `python script`: this interpreter must be the `python` it finds.
    env = {**os.environ,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    (job.logs / "msrun").mkdir(parents=True, exist_ok=True)
    with open(job.logs / "msrun" / "launcher.log", "ab") as launcher_log:
        process = subprocess.Popen(command, env=env, stdout=launcher_log,  # noqa: S603
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        follower = EventFollower(job, prepared.train_steps, list(callbacks))
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
    return JobResult(mode, summary=follower.summary(), job=job.root)


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
                                    metrics=_parse_metrics(event.get("message") or ""))
                self.evaluations.append(record)
                notify(self.callbacks, "on_evaluate", record)
            elif kind == "checkpoint":
                self.checkpoint = Path(event["message"])

    def summary(self) -> TrainSummary:
        return TrainSummary(steps=self.steps, last_loss=self.last_loss,
                            checkpoint=self.checkpoint, evaluations=self.evaluations,
                            seconds=time.time() - self.started)


def _parse_metrics(text: str) -> dict[str, float]:
    """`loss 4.0258, perplexity 56.0277` (the eval event's message) -> dict."""
    out = {}
    for part in text.split(","):
        name, _, value = part.strip().rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            continue
    return out
