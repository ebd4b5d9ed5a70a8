"""Everything `Trainer(args=...)` accepts, as what `resolve_run` takes.

TrainingArguments go through `RUN_YAML_KEYS` (the one table tying the two together) plus the
few fields with no run-YAML key of their own: epochs, max_steps, data_seed, the evaluation and
save strategies (which become do_eval / eval_*_interval and a CheckpointMointor callback) and
the metric types. A dataset path picks its loader type from what it holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mf_train.errors import TrainConfigError
from mf_train.run_yaml.config import RunConfig
from mf_train.training_args import TrainingArguments


def loader_type_of(path: Path) -> str:
    """MindDataset for MindRecord, JsonLinesDataset for .jsonl, else TextFileDataset."""
    if path.is_dir():
        names = [p.suffix for p in path.iterdir()]
        if ".mindrecord" in names:
            return "MindDataset"
        if ".jsonl" in names or ".json" in names:
            return "JsonLinesDataset"
        return "TextFileDataset"
    if path.suffix == ".mindrecord":
        return "MindDataset"
    if path.suffix in (".jsonl", ".json"):
        return "JsonLinesDataset"
    if path.suffix == ".csv":
        return "CSVDataset"
    return "TextFileDataset"


def run_source(args: Any) -> tuple[Any, dict[str, Any]]:
    """What `resolve_run` takes for any accepted `Trainer(args=...)`: a run YAML path, a
    RunConfig or a mapping; and the Python-only settings of TrainingArguments (how the loop
    logs, saves and resumes) that have no run-YAML key."""
    if args is None or isinstance(args, (str, Path, RunConfig)):
        return args, {}
    if isinstance(args, TrainingArguments):
        return args_mapping(args), {"ignore_data_skip": args.ignore_data_skip,
                                    "save_every_epoch": args.save_strategy == "epoch",
                                    "log_every": args.logging_steps}
    raise TrainConfigError(f"args must be TrainingArguments, a RunConfig or a run YAML path, got "
                           f"{type(args).__name__}")


def args_mapping(args: TrainingArguments) -> dict[str, Any]:
    """TrainingArguments as a run-YAML mapping (RUN_YAML_KEYS, plus the few with no key)."""
    data: dict[str, Any] = {}
    overrides = args.to_run_yaml_overrides()
    epochs = args.num_train_epochs
    if float(epochs) != int(epochs):
        raise TrainConfigError(f"TrainingArguments.num_train_epochs = {epochs}; mf trains whole "
                               "epochs (set max_steps for a partial one)")
    overrides["runner_config.epochs"] = int(epochs)
    if args.max_steps > 0:
        overrides["runner_config.max_steps"] = args.max_steps
    if args.data_seed is not None:
        overrides["train_dataset.seed"] = args.data_seed
    overrides["eval_dataset.batch_size"] = args.per_device_eval_batch_size
    if args.overwrite_output_dir:
        overrides["overwrite_output_dir"] = True
    for name in ("train_dataset", "eval_dataset"):
        path = getattr(args, name)
        if path:
            overrides[f"{name}.data_loader.type"] = loader_type_of(Path(path))
    if args.evaluation_strategy == "steps":
        overrides["do_eval"] = True
        # Hugging Face: eval_steps defaults to logging_steps
        overrides["eval_step_interval"] = args.eval_steps or args.logging_steps
    elif args.evaluation_strategy == "epoch":
        overrides["do_eval"] = True
        overrides["eval_epoch_interval"] = args.eval_epochs or 1
    if args.resume_from_checkpoint:
        overrides["resume_training"] = args.resume_from_checkpoint
    for path, value in overrides.items():
        node = data
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    callback: dict[str, Any] = {"type": "CheckpointMointor"}
    if args.save_strategy == "steps":
        callback["save_checkpoint_steps"] = args.save_steps
    if args.save_total_limit is not None:
        callback["keep_checkpoint_max"] = args.save_total_limit
    data["callbacks"] = [{"type": "MFLossMonitor"}, callback]
    if args.metric_type:
        kinds = [args.metric_type] if isinstance(args.metric_type, str) else args.metric_type
        data["metric"] = [{"type": kind} for kind in kinds]
    return data
