"""`RunConfig`: a loaded, checked run YAML; derived values are kept apart from what was written.

    cfg = load_run_config("configs/llama/run_llama_debug.yaml", options=["runner_config.epochs=2"])
    cfg.runner_config.batch_size          # typed access to every section
    for value in cfg.derived(num_samples=1000): print(value)   # global batch, total steps, ...
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mf_train.errors import TrainConfigError
from mf_train.lr_schedule import LrSchedule, check_schedule_settings, make_schedule
from mf_train.run_yaml.load import load_mapping
from mf_train.run_yaml.schema import DATA_LOADERS, RUN_MODES, SPLITS, RunConfigSchema
from mf_train.run_yaml.typed import ReadContext, read_section, section_to_dict

# The keys that decide a run's trajectory: a resume must find them unchanged. Paths, logging,
# evaluation and checkpoint cadence may change between a run and its resume.
TRAJECTORY_KEYS = ("seed", "model", "runner_config.batch_size",
                   "runner_config.gradient_accumulation_steps", "parallel_config.data_parallel",
                   "parallel_config.micro_batch_num", "optimizer", "lr_schedule",
                   "train_dataset.data_loader.type", "train_dataset.data_loader.shuffle",
                   "train_dataset.drop_remainder", "train_dataset.seed", "runner_wrapper")


@dataclass(frozen=True)
class DerivedValue:
    """A value computed from what the user wrote, with its arithmetic spelled out."""

    name: str
    value: Any
    formula: str

    def __str__(self) -> str:
        return f"{self.name} = {self.value}  (derived: {self.formula})"


@dataclass
class RunConfig:
    """A run YAML after bases, options and the schema; attribute access reaches the sections."""

    values: RunConfigSchema
    files: list[Path] = field(default_factory=list)
    options: tuple[str, ...] = ()
    origins: dict[str, str] = field(default_factory=dict)
    written: frozenset[str] = frozenset()
    inert: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)  # the merged mapping, before the schema

    def __getattr__(self, name: str) -> Any:
        # only called for names RunConfig itself lacks: the schema's sections and keys
        if name.startswith("__") or name == "values":
            raise AttributeError(name)
        return getattr(self.values, name)

    @property
    def source(self) -> Path | None:
        return self.files[-1] if self.files else None

    def was_written(self, path: str) -> bool:
        """True if the user wrote `path` (in a file or an option), not a schema default."""
        return path in self.written

    def to_dict(self) -> dict[str, Any]:
        """The resolved config (every key, defaults included), as plain data."""
        return section_to_dict(self.values)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def get(self, path: str) -> Any:
        node: Any = self.to_dict()
        for part in path.split("."):
            node = node[part]
        return node

    @property
    def global_batch_size(self) -> int:
        v = self.values
        return (v.runner_config.batch_size * v.parallel_config.data_parallel
                * v.parallel_config.micro_batch_num * v.runner_config.gradient_accumulation_steps)

    def derived(self, num_samples: int | None = None) -> list[DerivedValue]:
        """Values computed from the config (and the dataset size once known), for printing."""
        v = self.values
        rc, pc = v.runner_config, v.parallel_config
        factors = [f"batch_size({rc.batch_size})", f"data_parallel({pc.data_parallel})",
                   f"micro_batch_num({pc.micro_batch_num})"]
        if rc.gradient_accumulation_steps != 1:
            factors.append(f"gradient_accumulation_steps({rc.gradient_accumulation_steps})")
        gbs = self.global_batch_size
        out = [DerivedValue("global_batch_size", gbs, " * ".join(factors))]
        if num_samples is None:
            return out
        steps_per_epoch = self.steps_per_epoch(num_samples)
        op = "//" if v.train_dataset.drop_remainder else "ceil /"
        out.append(DerivedValue("steps_per_epoch", steps_per_epoch,
                                f"num_samples({num_samples}) {op} global_batch_size({gbs})"))
        train_steps = self.train_steps(num_samples)
        length = (f"runner_config.max_steps({rc.max_steps})" if rc.max_steps > 0
                  else f"epochs({rc.epochs}) * steps_per_epoch({steps_per_epoch})")
        out.append(DerivedValue("train_steps", train_steps, length))
        if v.lr_schedule.total_steps == -1:
            out.append(DerivedValue("lr_schedule.total_steps", train_steps, length))
        if v.lr_schedule.warmup_ratio is not None:
            total = self.total_steps(num_samples)
            out.append(DerivedValue(
                "lr_schedule.warmup_steps", int(total * v.lr_schedule.warmup_ratio),
                f"int(total_steps({total}) * warmup_ratio({v.lr_schedule.warmup_ratio}))"))
        return out

    def steps_per_epoch(self, num_samples: int) -> int:
        gbs = self.global_batch_size
        if self.values.train_dataset.drop_remainder:
            return num_samples // gbs
        return -(-num_samples // gbs)

    def train_steps(self, num_samples: int) -> int:
        """How many optimizer steps the run takes: runner_config.max_steps when it is > 0,
        else epochs * steps per epoch."""
        rc = self.values.runner_config
        if rc.max_steps > 0:
            return rc.max_steps
        return rc.epochs * self.steps_per_epoch(num_samples)

    def total_steps(self, num_samples: int | None = None) -> int:
        """lr_schedule.total_steps as written, or the run's length (`train_steps`) when -1."""
        written = self.values.lr_schedule.total_steps
        if written != -1:
            return written
        if num_samples is None:
            if self.values.runner_config.max_steps > 0:
                return self.values.runner_config.max_steps
            raise TrainConfigError("lr_schedule.total_steps is -1 (derived from the dataset), "
                                   "so the dataset size is needed to know it")
        return self.train_steps(num_samples)

    def lr_schedule_for(self, total_steps: int) -> LrSchedule:
        """The resolved schedule once the total step count is known."""
        s = self.values.lr_schedule
        written_total = s.total_steps if s.total_steps != -1 else total_steps
        return make_schedule(
            s.type, s.learning_rate, warmup_steps=s.warmup_steps, warmup_ratio=s.warmup_ratio,
            warmup_lr_init=s.warmup_lr_init, total_steps=written_total, lr_end=s.lr_end,
            num_cycles=s.num_cycles, power=s.power, decay_steps=s.decay_steps)

    def trajectory(self, full: dict[str, Any] | None = None) -> dict[str, Any]:
        """The keys a resume must find unchanged (TRAJECTORY_KEYS), as flat path -> value, of
        this config or of `full` (its resolved form: `Run.to_dict`)."""
        full = self.to_dict() if full is None else full
        flat: dict[str, Any] = {}
        for path in TRAJECTORY_KEYS:
            node: Any = full
            for part in path.split("."):
                node = node[part]
            _flatten(path, node, flat)
        return flat

    def fingerprint(self, full: dict[str, Any] | None = None) -> str:
        """sha256 of `trajectory()`: equal fingerprints mean a resume is allowed."""
        text = json.dumps(self.trajectory(full), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def notes(self) -> list[str]:
        """Lines worth showing a person before a run starts: inert keys, what came from where."""
        lines = []
        if self.inert:
            lines.append("accepted for MindFormers compatibility, no effect on this backend: "
                         + ", ".join(self.inert))
        if self.options:
            lines.append("overridden by --options: " + ", ".join(self.options))
        return lines


def _flatten(prefix: str, node: Any, out: dict[str, Any]) -> None:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            _flatten(f"{prefix}.{key}", value, out)
    else:
        out[prefix] = node


def load_run_config(path: str | Path, options: Sequence[str] = ()) -> RunConfig:
    """Read a run YAML with its bases and `--options`, check it, and return a `RunConfig`."""
    data, origins, files = load_mapping(path, options)
    return run_config_from_mapping(data, origins=origins, files=files, options=options)


def run_config_from_mapping(data: dict[str, Any], *, origins: dict[str, str] | None = None,
                            files: Sequence[Path] = (), options: Sequence[str] = (),
                            ) -> RunConfig:
    """Check an already merged mapping (e.g. built in Python) against the schema."""
    ctx = ReadContext(origins=dict(origins or {}))
    values = read_section(RunConfigSchema, data, "", ctx)
    config = RunConfig(values=values, files=list(files), options=tuple(options),
                       origins=ctx.origins, written=frozenset(ctx.written),
                       inert=tuple(ctx.inert), raw=copy.deepcopy(data))
    check_run_config(config)
    return config


def _fail(config: RunConfig, path: str, message: str) -> TrainConfigError:
    where = config.origins.get(path)
    return TrainConfigError(f"{where}: {message}" if where else message)


def check_run_config(config: RunConfig) -> None:
    """Value checks across keys; each failure is one line naming the key and what is allowed."""
    for check in (_check_modes, _check_counts, _check_datasets, _check_optimizer,
                  _check_schedule):
        check(config)


def _check_modes(config: RunConfig) -> None:
    v = config.values
    if v.run_mode not in RUN_MODES:
        raise _fail(config, "run_mode",
                    f"run_mode = {v.run_mode!r}; allowed: {', '.join(RUN_MODES)}")
    if v.context.mode not in (0, 1):
        raise _fail(config, "context.mode",
                    f"context.mode = {v.context.mode}; allowed: 0 (GRAPH_MODE), 1 (PYNATIVE_MODE)")
    if v.context.device_target not in ("CPU", "GPU", "Ascend"):
        raise _fail(config, "context.device_target",
                    f"context.device_target = {v.context.device_target!r}; "
                    "allowed: CPU, GPU, Ascend")


def _check_counts(config: RunConfig) -> None:
    v = config.values
    rc, pc = v.runner_config, v.parallel_config
    positive = {
        "runner_config.epochs": rc.epochs, "runner_config.batch_size": rc.batch_size,
        "runner_config.sink_size": rc.sink_size,
        "runner_config.gradient_accumulation_steps": rc.gradient_accumulation_steps,
        "parallel_config.data_parallel": pc.data_parallel,
        "parallel_config.model_parallel": pc.model_parallel,
        "parallel_config.context_parallel": pc.context_parallel,
        "parallel_config.expert_parallel": pc.expert_parallel,
        "parallel_config.pipeline_stage": pc.pipeline_stage,
        "parallel_config.micro_batch_num": pc.micro_batch_num,
        "micro_batch_interleave_num": v.micro_batch_interleave_num,
    }
    for path, value in positive.items():
        if value < 1:
            raise _fail(config, path, f"{path} = {value}; it must be >= 1")
    if rc.max_steps != -1 and rc.max_steps < 1:
        raise _fail(config, "runner_config.max_steps",
                    f"runner_config.max_steps = {rc.max_steps}; it must be -1 "
                    "(epochs decide) or >= 1")
    for path in ("eval_step_interval", "eval_epoch_interval"):
        value = getattr(v, path)
        if value != -1 and value < 1:
            raise _fail(config, path, f"{path} = {value}; it must be -1 (off) or >= 1")


def _check_datasets(config: RunConfig) -> None:
    v = config.values
    dataset_batch = v.train_dataset.batch_size
    if dataset_batch is not None and dataset_batch != v.runner_config.batch_size:
        # MindFormers overwrites train_dataset.batch_size with runner_config.batch_size without
        # a word; here two different values are a question only the user can answer.
        raise _fail(config, "train_dataset.batch_size",
                    f"train_dataset.batch_size({dataset_batch}) differs from "
                    f"runner_config.batch_size({v.runner_config.batch_size}); the per-device "
                    "batch is runner_config.batch_size: make them equal or drop one")
    for name in ("train_dataset", "eval_dataset"):
        loader = getattr(v, name).data_loader
        if loader.type not in DATA_LOADERS:
            raise _fail(config, f"{name}.data_loader.type",
                        f"{name}.data_loader.type = {loader.type!r}; "
                        f"allowed: {', '.join(DATA_LOADERS)}")
        if loader.split not in SPLITS:
            raise _fail(config, f"{name}.data_loader.split",
                        f"{name}.data_loader.split = {loader.split!r}; allowed: "
                        f"{', '.join(SPLITS)}")
        if loader.num_samples is not None and loader.num_samples < 1:
            raise _fail(config, f"{name}.data_loader.num_samples",
                        f"{name}.data_loader.num_samples = {loader.num_samples}; it must be "
                        ">= 1, or null for every sample")
        if loader.type == "SyntheticTaskDataset" and loader.dataset_dir:
            # it generates its examples: a dataset_dir given to it would be silently unread
            raise _fail(config, f"{name}.data_loader.dataset_dir",
                        f"{name}.data_loader.dataset_dir = {loader.dataset_dir!r} is not read "
                        f"by SyntheticTaskDataset (it generates examples); for your data also "
                        f"set {name}.data_loader.type=JsonLinesDataset (or CSVDataset, "
                        f"ImageFolderDataset) and {name}.data_loader.split=all")
        if loader.split != "all" and loader.type not in ("PythonStdlibDataset",
                                                         "SyntheticTaskDataset"):
            raise _fail(config, f"{name}.data_loader.split",
                        f"{name}.data_loader.split = {loader.split!r} applies to "
                        f"PythonStdlibDataset and SyntheticTaskDataset only, not "
                        f"{loader.type}; remove it")


def _check_optimizer(config: RunConfig) -> None:
    v = config.values
    opt_lr = v.optimizer.learning_rate
    if opt_lr is not None and config.was_written("lr_schedule.learning_rate") \
            and opt_lr != v.lr_schedule.learning_rate:
        raise _fail(config, "optimizer.learning_rate",
                    f"optimizer.learning_rate({opt_lr}) differs from "
                    f"lr_schedule.learning_rate({v.lr_schedule.learning_rate}); "
                    "the schedule sets the rate: make them equal or drop one")
    if v.optimizer.type not in ("AdamW", "adamw", "fp32_adamw", "FP32StateAdamWeightDecay",
                                "AdamWeightDecay", "FusedAdamWeightDecay"):
        raise _fail(config, "optimizer.type",
                    f"optimizer.type = {v.optimizer.type!r}; allowed: AdamW (also spelled "
                    "AdamWeightDecay, FP32StateAdamWeightDecay, FusedAdamWeightDecay)")
    for path, value in (("optimizer.beta1", v.optimizer.beta1),
                        ("optimizer.beta2", v.optimizer.beta2)):
        if not 0.0 <= value < 1.0:
            raise _fail(config, path, f"{path} = {value}; it must be in [0.0, 1.0)")
    if v.optimizer.eps <= 0:
        raise _fail(config, "optimizer.eps", f"optimizer.eps = {v.optimizer.eps}; it must be > 0")
    if v.optimizer.weight_decay < 0:
        raise _fail(config, "optimizer.weight_decay",
                    f"optimizer.weight_decay = {v.optimizer.weight_decay}; it must be >= 0")


def _check_schedule(config: RunConfig) -> None:
    """The schedule's own checks; those that need its length wait for the plan."""
    s = config.values.lr_schedule
    if s.total_steps < -1 or s.total_steps == 0:
        raise _fail(config, "lr_schedule.total_steps",
                    f"lr_schedule.total_steps = {s.total_steps}; it must be -1 (derived) or >= 1")
    try:
        check_schedule_settings(s.type, s.learning_rate, warmup_steps=s.warmup_steps,
                                warmup_ratio=s.warmup_ratio, warmup_lr_init=s.warmup_lr_init,
                                lr_end=s.lr_end, num_cycles=s.num_cycles, power=s.power,
                                decay_steps=s.decay_steps)
    except TrainConfigError as exc:
        raise _fail(config, "lr_schedule", str(exc)) from None
