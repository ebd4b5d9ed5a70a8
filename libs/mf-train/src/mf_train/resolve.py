"""Resolve a run once: run YAML (or TrainingArguments) -> one immutable, validated `Run`.

    run = resolve_run("configs/llama/run_llama_debug.yaml", ["runner_config.max_steps=5"],
                      mode="train")
    run.config.runner_config.batch_size     # the run YAML, typed (mf_train.run_yaml)
    run.model_config                         # mf-models' config of the model it trains
    run.parallel                             # mf-parallel's ParallelConfig, checked

Everything downstream (plan, build, loop; the CLI, the msrun rank entry and `Trainer`) takes a
`Run` and never reads YAML again. The rank entry resolves the job directory's job.yaml, which
is this run written out (`Run.to_yaml`), so every rank runs the run the launcher checked.

Resolving checks everything that needs no data and no MindSpore: the schema, the run mode, the
model config (a preset, an instance, or model.model_config), LoRA's pet_config, the parallel
layout against the model's dims, callbacks, metrics, runner_wrapper. Nothing here imports
MindSpore.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mf_train.errors import TrainConfigError
from mf_train.run_yaml import RunConfig, apply_overrides, run_config_from_mapping
from mf_train.run_yaml.load import load_mapping

MODES = ("train", "finetune", "eval", "predict")
PYTHON_ONLY = ("ignore_data_skip", "save_every_epoch", "log_every", "given_task")


@dataclass(frozen=True)
class Run:
    """One run, resolved: its config, the model it trains, its parallel layout."""

    config: RunConfig
    model_config: Any  # mf_models ModelConfig (a preset, an instance's, or model.model_config)
    parallel: Any  # mf_parallel ParallelConfig, resolved against the world size and the model
    notes: tuple[str, ...] = ()  # lines for the person: inert keys, ignored model keys, ...
    # Python-only settings with no run-YAML key (TrainingArguments): how the loop behaves
    ignore_data_skip: bool = False
    save_every_epoch: bool = False
    log_every: int = 1
    given_task: str | None = None  # Trainer(task=...); else the run YAML's trainer.type

    @property
    def task(self) -> Any:
        """What the run trains (mf_train.tasks.Task): the head, the columns, the metrics."""
        from mf_train.tasks import task_of

        return task_of(self.config.trainer, self.model_config, self.given_task)

    @property
    def mode(self) -> str:
        return self.config.run_mode

    @property
    def world_size(self) -> int:
        p = self.parallel
        return p.data_parallel * p.model_parallel * p.pipeline_stage

    @property
    def pet(self) -> dict[str, Any] | None:
        """LoRA's pet_config (model.model_config.pet_config), or None for full training."""
        pet = self.config.model.model_config.get("pet_config")
        return dict(pet) if pet else None

    @property
    def output_dir(self) -> Path:
        return Path(self.config.output_dir).expanduser().absolute()

    def with_mode(self, mode: str) -> Run:
        """The same run in another run mode (Trainer.evaluate after Trainer.train)."""
        if mode == self.mode:
            return self
        return _resolve_mapping(self._mapping({"run_mode": mode}, "the run mode"), self)

    def with_overrides(self, values: Mapping[str, Any], origin: str) -> Run:
        """A new Run with `{"a.b": value}` set (Trainer.set_parallel_config and the like)."""
        return _resolve_mapping(self._mapping(values, origin), self)

    def _mapping(self, values: Mapping[str, Any], origin: str) -> _Source:
        origins = dict(self.config.origins)
        data = apply_overrides(self.config.raw, origins, dict(values), origin)
        return _Source(data, origins, list(self.config.files), self.config.options)

    def to_dict(self) -> dict[str, Any]:
        """The resolved run as plain data: every key, defaults included, and the model config
        the run actually builds (whatever named it: a preset, an instance, model_config)."""
        data = self.config.to_dict()
        model_config = {k: v for k, v in self.model_config.to_dict().items() if k != "name"}
        if self.pet:
            model_config["pet_config"] = self.pet
        data["model"]["model_config"] = model_config
        if self.given_task is not None and not self.task.causal:  # a rank's job.yaml too
            data["trainer"] = {**data.get("trainer", {}), "type": self.task.trainer_type}
        return data

    def trajectory(self) -> dict[str, Any]:
        """What a resume must find unchanged (RunConfig.TRAJECTORY_KEYS of the resolved run)."""
        return self.config.trajectory(self.to_dict())

    def fingerprint(self) -> str:
        return self.config.fingerprint(self.to_dict())

    def to_yaml(self, header: Sequence[str] = ()) -> str:
        """The resolved run as a run YAML (job.yaml), so a rank resolves the same run from it
        without the original files."""
        lines = [f"# {line}" if line else "#" for line in header]
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        return "\n".join(lines) + ("\n" if lines else "") + text


@dataclass
class _Source:
    """A merged run-YAML mapping before the schema, with where each key came from."""

    data: dict[str, Any]
    origins: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    options: tuple[str, ...] = ()


def resolve_run(source: str | Path | Mapping[str, Any] | RunConfig | None = None,
                options: Sequence[str] = (), *, mode: str | None = None,
                overrides: Mapping[str, Any] | None = None, model: Any = None,
                **python_only: Any) -> Run:
    """Resolve a run YAML path (with its base_config files and `--options`), a plain mapping
    or a RunConfig, with `overrides` (`{"a.b": value}`, e.g. from TrainingArguments) and the
    command's run `mode` (the command wins over the YAML's run_mode).

    `model` is what `Trainer(model=...)` was given: a preset name (model.model_config then
    overrides its fields) or a built model (its config is the run's).
    `python_only` takes Run's Python-only settings (ignore_data_skip, save_every_epoch,
    log_every).
    """
    if isinstance(source, (str, Path)):
        data, origins, files = load_mapping(source, options)
        src = _Source(data, origins, files, tuple(options))
    elif isinstance(source, RunConfig):
        src = _Source(dict(source.raw), dict(source.origins), list(source.files),
                      source.options)
    elif isinstance(source, Mapping) or source is None:
        src = _Source(dict(source or {}))
    else:
        raise TrainConfigError(f"a run is resolved from a run YAML path, a mapping or a "
                               f"RunConfig, got {type(source).__name__}")
    values = dict(overrides or {})
    if mode is not None:
        if mode not in MODES:
            raise TrainConfigError(f"mode {mode!r}; allowed: {', '.join(MODES)}")
        values["run_mode"] = mode
    if values:
        src.data = apply_overrides(src.data, src.origins, values, "the command")
    return _resolve_mapping(src, None, model=model, **python_only)


def resolve_job(job_root: str | Path) -> Run:
    """The run a job directory holds (its job.yaml): what each msrun rank executes."""
    from mf_train.jobdir import JobDir

    job = JobDir(Path(job_root))
    if not job.job_yaml.is_file():
        raise TrainConfigError(f"{job.root} is not a job directory (no job.yaml)")
    return resolve_run(job.job_yaml)


def _resolve_mapping(src: _Source, previous: Run | None, *, model: Any = None,
                     **python_only: Any) -> Run:
    config = run_config_from_mapping(src.data, origins=src.origins, files=src.files,
                                     options=src.options)
    if previous is not None:
        model = previous.model_config
        python_only = {f.name: getattr(previous, f.name) for f in dataclasses.fields(Run)
                       if f.name in PYTHON_ONLY}
    model_config, model_notes = resolve_model_config(config, model)
    preset_pet = getattr(model_config, "pet_config", None)
    if preset_pet and not config.model.model_config.get("pet_config"):
        # A preset that carries LoRA (llama_7b_lora, glm_6b_lora) trains LoRA, as in MindFormers:
        # its pet_config becomes the run's, so every check and job.yaml see it.
        src.data = apply_overrides(src.data, src.origins,
                                   {"model.model_config.pet_config": dict(preset_pet)},
                                   "the model preset")
        config = run_config_from_mapping(src.data, origins=src.origins, files=src.files,
                                         options=src.options)
    from mf_train.tasks import task_of

    task_of(config.trainer, model_config, python_only.get("given_task"))  # checked now
    parallel = resolve_parallel(config, model_config)
    _check_run_pieces(config)
    notes = tuple(config.notes()) + tuple(model_notes)
    return Run(config=config, model_config=model_config, parallel=parallel, notes=notes,
               **python_only)


def resolve_model_config(config: RunConfig, model: Any = None) -> tuple[Any, list[str]]:
    """mf-models' config of the model a run builds, and notes on model keys it ignores."""
    from mf_models.registry import preset_config

    from mf_train.model_setup import model_config_from_run

    written = config.model.model_config
    if model is not None and not isinstance(model, str):
        if hasattr(model, "to_dict") and hasattr(model, "family"):  # already a ModelConfig
            return model, []
        if not hasattr(model, "config") or not hasattr(model, "trainable_params"):
            raise TrainConfigError(f"model must be a preset name or an mf_models model, got "
                                   f"{type(model).__name__}")
        notes = ["model was given as an instance: model.model_config is not used"
                 ] if written and set(written) - {"pet_config"} else []
        return model.config, notes
    base = preset_config(model) if isinstance(model, str) else None
    return model_config_from_run(written, config.model.arch, base)


def resolve_parallel(config: RunConfig, model_config: Any) -> Any:
    """mf-parallel's ParallelConfig for `parallel_config:`, checked against the model.

    The schema's parallel_config section carries MindFormers' names, which are
    ParallelConfig's fields; micro_batch_interleave_num sits at the top level of a run YAML.
    """
    from mf_parallel import ParallelConfig

    from mf_train.run_yaml.schema import ParallelConfigSection

    section: ParallelConfigSection = config.parallel_config
    if section.context_parallel != 1:
        raise TrainConfigError(
            f"parallel_config.context_parallel = {section.context_parallel}; mf supports data, "
            "model and pipeline parallel, so it must be 1")
    fields = {f.name for f in dataclasses.fields(ParallelConfig)}
    values = {name: getattr(section, name) for name in fields if hasattr(section, name)}
    values["micro_batch_interleave_num"] = config.micro_batch_interleave_num
    parallel = ParallelConfig(**values)
    degrees = (parallel.data_parallel, parallel.model_parallel, parallel.pipeline_stage)
    if -1 in degrees:
        raise TrainConfigError("a parallel degree of -1 is inferred from the world size, which "
                               "a run YAML does not give: write every degree")
    parallel = parallel.validate(world_size=degrees[0] * degrees[1] * degrees[2],
                                 dims=model_dims_of(model_config))
    if parallel.model_parallel > 1 or parallel.pipeline_stage > 1:
        _check_model_parallel_run(config, model_config, parallel)
    if config.runner_config.batch_size % parallel.micro_batch_interleave_num:
        raise TrainConfigError(
            f"runner_config.batch_size({config.runner_config.batch_size}) is not divisible by "
            f"micro_batch_interleave_num({parallel.micro_batch_interleave_num}): each micro "
            "batch is cut into that many interleaved row blocks")
    return parallel


def uses_parallel_step(parallel: Any) -> bool:
    """True when a run needs mf-train's parallel step (parallel_step.py): any split of the
    model, the optimizer state or the micro batch; plain data parallel uses TrainStep."""
    return (parallel.model_parallel > 1 or parallel.pipeline_stage > 1
            or parallel.micro_batch_interleave_num > 1
            or (parallel.optimizer_shard and parallel.data_parallel > 1))


def _check_model_parallel_run(config: RunConfig, model_config: Any, parallel: Any) -> None:
    """What a model or pipeline parallel run cannot do (yet), before any rank starts."""
    from mf_models.parallel import check_parallel_support
    from mf_models.registry import family_of_config

    try:
        check_parallel_support(family_of_config(model_config).model_class(), parallel)
    except Exception as exc:  # mf-models' one-line config error, as a run-config error
        raise TrainConfigError(str(exc)) from None
    layout = (f"model_parallel({parallel.model_parallel}) x "
              f"pipeline_stage({parallel.pipeline_stage})")
    if config.model.model_config.get("pet_config"):
        raise TrainConfigError(f"LoRA (model_config.pet_config) with {layout}: LoRA trains data "
                               "parallel only; set both to 1")


def model_dims_of(model_config: Any) -> Any:
    """mf-parallel's ModelDims of a decoder config (None for a family without them)."""
    from mf_models.dims import model_dims
    from mf_models.errors import ModelConfigError

    try:
        return model_dims(model_config)
    except (AttributeError, ModelConfigError):  # an encoder, vision or staged family (Swin)
        return None


def _check_run_pieces(config: RunConfig) -> None:
    """The sections other modules own, checked now so a bad one fails before anything runs."""
    from mf_train.callbacks import plan_callbacks
    from mf_train.evaluation import metric_types
    from mf_train.loss_scale import step_wrapper_from_config

    plan_callbacks(config.callbacks)
    metric_types(config.metric)
    step_wrapper_from_config(config.runner_wrapper)
    pet = config.model.model_config.get("pet_config")
    if pet:
        if not isinstance(pet, dict):
            raise TrainConfigError(f"model.model_config.pet_config = {pet!r}; expected a "
                                   "mapping (pet_type: lora, lora_rank, lora_alpha, ...)")
        from mf_train.lora.config import LoraConfig

        LoraConfig.from_dict(pet)  # pet_type, rank, alpha, targets: one-line errors
    if not str(config.output_dir).strip():
        raise TrainConfigError("output_dir is empty; give a directory for mf to write, e.g. "
                               "./output/my_run")
