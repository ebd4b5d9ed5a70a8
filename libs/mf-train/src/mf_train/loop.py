"""The training loop: batches in their resumable order, the compiled step, evaluation,
checkpoints, the step line, the per-rank event log and status.json.

Order within one step: read the global batch at the current data position (this rank's share),
run the compiled step over its micro batches, advance the position, then log, evaluate and
save. A checkpoint therefore records the position of the *next* batch, and a resume from it
reads exactly the batches an uninterrupted run would have read next.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mf_parallel import write_strategy

from mf_train.atomic import sweep_temporaries
from mf_train.build import TrainingParts
from mf_train.callbacks import (
    CallbackPlan,
    EvalRecord,
    StepRecord,
    TrainInfo,
    TrainSummary,
    notify,
    plan_callbacks,
)
from mf_train.checkpoint import TrainerState, capture_rng, restore_rng, save_checkpoint
from mf_train.data import DataPosition
from mf_train.distributed import World
from mf_train.errors import MfTrainError
from mf_train.jobdir import EventWriter, JobDir, worker_logger
from mf_train.loss_scale import LossScale
from mf_train.optim import optimizer_state, optimizer_step
from mf_train.plan import Plan
from mf_train.run_data import RunData
from mf_train.sharded import STRATEGY_FILE
from mf_train.steplog import format_step_line
from mf_train.task_data import split_batch


def resident_gib() -> float | None:
    """This process's resident memory now (Linux /proc), in GiB."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**30


def capture_all_rng() -> dict[str, Any]:
    """Python's, numpy's and MindSpore's generator states, JSON-able."""
    import mindspore as ms

    state = capture_rng()
    ms_state = ms.get_rng_state().asnumpy()
    state["mindspore"] = {"dtype": str(ms_state.dtype), "values": ms_state.tolist()}
    return state


def restore_all_rng(state: dict[str, Any]) -> None:
    import mindspore as ms

    restore_rng(state)
    saved = state.get("mindspore")
    if saved:
        ms.set_rng_state(ms.Tensor(np.asarray(saved["values"], dtype=saved["dtype"])))


@dataclass(frozen=True)
class LoopSettings:
    """The loop's cadence, read off the run once."""

    do_eval: bool
    eval_step_interval: int  # -1: off
    eval_epoch_interval: int  # -1: off
    plan: CallbackPlan
    micro_batches: int  # per optimizer step and rank: micro_batch_num * accumulation
    log_every: int = 1  # step lines on the console; the log file and events get every step
    save_epochs: bool = False  # save at the end of every epoch (save_strategy: epoch)

    @classmethod
    def of(cls, plan: Plan) -> LoopSettings:
        run, config = plan.run, plan.run.config
        return cls(do_eval=config.do_eval, eval_step_interval=config.eval_step_interval,
                   eval_epoch_interval=config.eval_epoch_interval,
                   plan=plan_callbacks(config.callbacks), micro_batches=plan.micro_batches,
                   log_every=run.log_every, save_epochs=run.save_every_epoch)


@dataclass
class LoopState:
    step: int = 0
    position: DataPosition = field(default_factory=DataPosition)
    loss_scale: LossScale | None = None


class TrainingLoop:
    """Runs one prepared run to its end on this rank."""

    def __init__(self, *, plan: Plan, data: RunData, parts: TrainingParts, world: World,
                 job: JobDir, state: LoopState, callbacks: list[Any], summary_lines: list[str],
                 echo: bool = True, echo_steps: bool = True, model_files: Any | None = None):
        self.plan = plan
        self.data = data
        self.parts = parts
        self.config = plan.run.config
        self.model = parts.model
        self.optimizer = parts.optimizer
        self.train_step = parts.train_step
        self.evaluator = parts.evaluator
        self.saved_params = parts.saved_params
        self.model_files = model_files  # writes config + tokenizer into each checkpoint
        self.world = world
        self.job = job
        self.settings = LoopSettings.of(plan)
        self.echo, self.echo_steps = echo, echo_steps
        self.state = state
        self.callbacks = callbacks
        self.summary_lines = summary_lines
        self.evaluations: list[EvalRecord] = []
        self.last_checkpoint: Path | None = None
        self._log: _Log | None = None
        self.lrs = parts.learning_rates  # the optimizer's array: what each step used, for logs
        seq_length = plan.sample_length - 1
        self.tokens_per_step = self.config.global_batch_size * seq_length
        self.info = TrainInfo(total_steps=plan.train_steps, start_step=state.step,
                              global_batch_size=self.config.global_batch_size,
                              seq_length=seq_length, rank=world.rank, world_size=world.size)

    # ---- the run ------------------------------------------------------------------------------
    def run(self) -> TrainSummary:
        started = time.time()
        rank0 = self.world.rank == 0
        log = _Log(worker_logger(self.job, self.world.rank), echo=self.echo and rank0,
                   echo_steps=self.echo_steps and rank0)
        events = EventWriter(self.job, self.world.rank)
        self._log = log
        try:
            for line in self.summary_lines:
                log.info(line)
            if rank0:
                sweep_temporaries(self.job.checkpoints)
                if self.parts.sharded:  # the job's layout, beside its checkpoints
                    write_strategy(self.parts.part.strategy, self.job.strategy / STRATEGY_FILE)
            self._status("running", "running", total_steps=self.plan.train_steps, message="")
            events.emit("start", step=self.state.step, epoch=self.state.position.epoch,
                        pid=os.getpid(), host=platform.node(),
                        message=f"training {self.plan.train_steps} steps, global batch "
                                f"{self.config.global_batch_size}, world {self.world.size}")
            if self._eval_on() and self.state.step == 0:
                self._evaluate(events, log)  # the baseline the run is measured against
            notify(self.callbacks, "on_train_begin", self.info)
            last_loss = self._train(events, log)
            if self._eval_on() and (not self.evaluations
                                    or self.evaluations[-1].step != self.state.step):
                self._evaluate(events, log)
            if (rank0 or self.parts.sharded) and (
                    self.last_checkpoint is None
                    or not self.last_checkpoint.name.endswith(f"-{self.state.step}")):
                self._save(events, last_loss)
            seconds = time.time() - started
            summary = TrainSummary(steps=self.state.step, last_loss=last_loss,
                                   checkpoint=self.last_checkpoint,
                                   evaluations=list(self.evaluations), seconds=seconds)
            events.emit("end", step=self.state.step, epoch=self.state.position.epoch,
                        loss=last_loss, message=f"done in {seconds:.1f} s")
            self._status("finished", "finished", message="", exit_code=0)
            notify(self.callbacks, "on_train_end", summary)
            return summary
        except BaseException as exc:
            code = getattr(exc, "exit_code", 1)
            message = " ".join(str(exc).split()) or type(exc).__name__
            events.emit("error", step=self.state.step, message=message)
            log.info(f"error: {message}")
            self._status("failed", "failed", message=message, exit_code=code)
            raise
        finally:
            events.close()
            log.close()

    def _train(self, events: EventWriter, log: Any) -> float | None:
        plan, state, settings = self.plan, self.state, self.settings
        order = plan.order
        assert order is not None
        last_loss = None
        tick = time.perf_counter()
        batches = self.data.train.batches(order, state.position, None, self.parts.data_rank,
                                          self.parts.data_ranks)
        for position, batch in batches:
            if state.step >= plan.train_steps:
                break
            lr = float(self.lrs[min(optimizer_step(self.optimizer), len(self.lrs) - 1)])
            micro = split_batch(batch, settings.micro_batches)  # token rows or task columns
            scale = state.loss_scale.value if state.loss_scale else 1.0
            out = self.train_step.step(micro, scale)
            if not out.finite and state.loss_scale is None:
                raise MfTrainError(
                    f"step {state.step + 1}: the gradient norm is {out.grad_norm} (loss "
                    f"{out.loss}); training diverged. Lower lr_schedule.learning_rate, or use "
                    "runner_wrapper.scale_sense with fp16")
            if state.loss_scale is not None:
                state.loss_scale.update(out.finite)
            state.step += 1
            state.position = order.advance(position)
            now = time.perf_counter()
            seconds, tick = now - tick, now
            record = StepRecord(step=state.step, total_steps=plan.train_steps,
                                epoch=position.epoch, loss=out.loss, lr=lr,
                                grad_norm=out.grad_norm,
                                tokens_per_s=self.tokens_per_step / max(seconds, 1e-9),
                                mem_gib=resident_gib(), skipped=not out.finite)
            if out.finite:
                last_loss = out.loss
            self._log_step(record, events, log)
            notify(self.callbacks, "on_step_end", record)
            epoch_done = state.position.epoch > position.epoch
            if self._eval_due(epoch_done, position.epoch + 1):
                self._evaluate(events, log)
            if (self.world.rank == 0 or self.parts.sharded) and self._save_due(epoch_done):
                self._save(events, last_loss)
            self._status("running", "running")
            tick = time.perf_counter()  # evaluation and saving are not step time
        return last_loss

    def _status(self, job_state: str, rank_state: str, **fields: Any) -> None:
        """status.json, from the process that owns it: a single process, or rank 0 of an
        msrun job whose launcher does not supervise it (a supervisor sets MF_SUPERVISED=1
        and writes every rank's entry itself)."""
        if self.world.rank != 0 or os.environ.get("MF_SUPERVISED") == "1":
            return
        rank_fields = {"exit_code": fields["exit_code"]} if "exit_code" in fields else {}
        here = {"pid": os.getpid(), "host": platform.node()}  # this process runs the job now
        self.job.write_status(job_state, step=self.state.step, launcher=here,
                              rank_states={0: {**here, "state": rank_state, **rank_fields}},
                              **fields)

    # ---- cadence ------------------------------------------------------------------------------
    def _eval_on(self) -> bool:
        return self.settings.do_eval and self.evaluator is not None

    def _eval_due(self, epoch_done: bool, epochs_done: int) -> bool:
        if not self._eval_on():
            return False
        s = self.settings
        if s.eval_step_interval > 0 and self.state.step % s.eval_step_interval == 0:
            return True
        return epoch_done and s.eval_epoch_interval > 0 \
            and epochs_done % s.eval_epoch_interval == 0

    def _save_due(self, epoch_done: bool) -> bool:
        steps = self.settings.plan.save_steps
        if steps is not None and self.state.step % steps == 0:
            return True
        return self.settings.save_epochs and epoch_done

    # ---- pieces -------------------------------------------------------------------------------
    def _log_step(self, record: StepRecord, events: EventWriter, log: Any) -> None:
        line = format_step_line(record.step, record.total_steps, record.loss, record.lr,
                                record.grad_norm, record.tokens_per_s, record.mem_gib)
        if record.skipped:
            line += f" | skipped (non-finite gradients; loss scale now {self._scale_text()})"
        events.emit("step", step=record.step, epoch=record.epoch,
                    loss=_finite_or_none(record.loss), lr=record.lr,
                    grad_norm=_finite_or_none(record.grad_norm),
                    tokens_per_s=round(record.tokens_per_s, 1), mem_gib=record.mem_gib,
                    message="skipped: non-finite gradients" if record.skipped else None)
        log.step(line, record.step % self.settings.log_every == 0
                 or record.step == record.total_steps)

    def _scale_text(self) -> str:
        return f"{self.state.loss_scale.value:g}" if self.state.loss_scale else "-"

    def _evaluate(self, events: EventWriter, log: Any) -> None:
        assert self.evaluator is not None
        metrics = self.evaluator.run()
        record = EvalRecord(step=self.state.step, epoch=self.state.position.epoch,
                            metrics=metrics)
        self.evaluations.append(record)
        text = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        events.emit("eval", step=record.step, epoch=record.epoch,
                    loss=_finite_or_none(metrics.get("loss")),
                    metrics={k: _finite_or_none(float(v)) for k, v in metrics.items()},
                    message=text)
        log.info(f"eval at step {record.step}: {text}")
        notify(self.callbacks, "on_evaluate", record)

    def _save(self, events: EventWriter, last_loss: float | None) -> None:
        """checkpoint-<step>: rank 0 writes the whole model; a sharded run's ranks each write
        their slices and rank 0 makes the checkpoint appear once all have (sharded.py)."""
        state = self.state
        trainer_state = TrainerState(
            step=state.step, epoch=state.position.epoch,
            data_position=state.position.to_dict(), rng=capture_all_rng(),
            config_fingerprint=self.plan.run.fingerprint(),
            trajectory=dict(self.plan.trajectory), model_signature=dict(self.parts.signature),
            metrics={} if last_loss is None else {"loss": last_loss},
            loss_scale=state.loss_scale.to_dict() if state.loss_scale else {})
        weights = {p.name: p.asnumpy() for p in self.saved_params}
        if self.parts.sharded:
            path = self._save_sharded(weights, trainer_state)
        else:
            path = save_checkpoint(self.job.checkpoints, weights,
                                   optimizer_state(self.optimizer), trainer_state,
                                   self.settings.plan.save_total_limit, self.model_files)
        self.last_checkpoint = path
        if self.world.rank == 0:
            events.emit("checkpoint", step=state.step, epoch=state.position.epoch,
                        path=str(path), message=f"saved {path.name}")
            if self._log is not None:
                self._log.info(f"saved {path}")
        notify(self.callbacks, "on_save", path, state.step)

    def _save_sharded(self, weights: dict[str, Any], trainer_state: TrainerState) -> Path:
        from mf_train.checkpoint import checkpoint_dir, rotate_checkpoints
        from mf_train.sharded import finalize_sharded, staging_dir, write_rank_shard

        staging = staging_dir(self.job.checkpoints, self.state.step)
        final = checkpoint_dir(self.job.checkpoints, self.state.step)
        write_rank_shard(staging, self.world.rank, weights, optimizer_state(self.optimizer))
        barrier()  # every rank's folder is on disk before rank 0 completes the checkpoint
        if self.world.rank == 0:
            finalize_sharded(staging, final, self.parts.part.strategy,
                             trainer_state.to_json(), self.model_files)
            limit = self.settings.plan.save_total_limit
            if limit is not None:
                rotate_checkpoints(self.job.checkpoints, limit)
        barrier()  # no rank moves on (or ends) before the checkpoint exists
        return final


def barrier() -> None:
    """Wait for every rank: an all-reduce over the world group (the CPU backend has it)."""
    import mindspore as ms
    from mindspore import ops

    ops.AllReduce()(ms.Tensor(np.ones(1, np.float32))).asnumpy()


class _Log:
    """The worker log file gets every line; the console (stderr) the ones asked for."""

    def __init__(self, logger: Any, echo: bool, echo_steps: bool):
        self.logger, self.echo, self.echo_steps = logger, echo, echo_steps

    def info(self, line: str) -> None:
        self.logger.info(line)
        if self.echo:
            print(line, file=sys.stderr, flush=True)

    def step(self, line: str, console: bool) -> None:
        self.logger.info(line)
        if self.echo_steps and console:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        for handler in list(self.logger.handlers):
            handler.close()
            self.logger.removeHandler(handler)


def _finite_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return value
