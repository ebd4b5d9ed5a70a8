"""Callbacks: what the training loop tells the outside world, and the run YAML's `callbacks:`.

A callback is any object with some of these methods (all optional):

    on_train_begin(info: TrainInfo)       once, before the first step (after the baseline eval)
    on_step_end(record: StepRecord)       after every optimizer step
    on_evaluate(record: EvalRecord)       after every evaluation
    on_save(path: Path, step: int)        after a checkpoint is complete on disk
    on_train_end(summary: TrainSummary)   once, after the last step

The run YAML lists MindFormers' callback types; each maps onto a setting of the loop:

    MFLossMonitor              the per-step line and event (always on; accepted for the name)
    CheckpointMointor          save every save_checkpoint_steps, keep keep_checkpoint_max
    (also CheckpointMonitor)   (MindFormers spells the class "Mointor"; both are accepted)
    ObsMonitor, SummaryMonitor ModelArts upload / MindInsight summaries: no effect here (noted)
    SampleGeneration           mf's own: after training, stream a continuation of `prompt`
                               (max_new_tokens; do_sample, top_k, top_p, temperature, seed)
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mf_train.errors import TrainConfigError


@dataclass(frozen=True)
class TrainInfo:
    total_steps: int  # steps the run will have done at its end
    start_step: int  # steps already done (a resume starts past 0)
    global_batch_size: int
    seq_length: int
    rank: int = 0
    world_size: int = 1


@dataclass(frozen=True)
class StepRecord:
    step: int  # steps done, counting this one
    total_steps: int
    epoch: int
    loss: float
    lr: float
    grad_norm: float
    tokens_per_s: float
    mem_gib: float | None
    skipped: bool = False  # non-finite gradients under loss scaling: no update was made


@dataclass(frozen=True)
class EvalRecord:
    step: int
    epoch: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class TrainSummary:
    steps: int
    last_loss: float | None
    checkpoint: Path | None
    evaluations: list[EvalRecord] = field(default_factory=list)
    seconds: float = 0.0


def notify(callbacks: list[Any], method: str, *args: Any) -> None:
    """Call `method` on every callback that has it."""
    for callback in callbacks:
        hook = getattr(callback, method, None)
        if hook is not None:
            hook(*args)


# ---- the run YAML's callbacks: ---------------------------------------------------------------

@dataclass
class CallbackPlan:
    """What `callbacks:` asks of the loop."""

    save_steps: int | None = None  # None: save only at the end
    save_total_limit: int | None = 5
    sample_prompts: list[str] = field(default_factory=list)
    sample_max_new_tokens: int = 64
    sample_settings: dict[str, Any] = field(default_factory=dict)  # do_sample, top_k, ...
    notes: list[str] = field(default_factory=list)


CALLBACK_KEYS: dict[str, tuple[str, ...]] = {
    "MFLossMonitor": ("type", "per_print_times", "learning_rate", "micro_batch_num",
                      "micro_batch_interleave_num", "origin_epochs", "dataset_size",
                      "initial_epoch", "initial_step", "global_batch_size",
                      "gradient_accumulation_steps", "check_for_nan_in_loss_and_grad"),
    "CheckpointMointor": ("type", "prefix", "directory", "save_checkpoint_steps",
                          "save_checkpoint_seconds", "keep_checkpoint_max",
                          "keep_checkpoint_per_n_minutes", "integrated_save", "async_save",
                          "save_network_params", "save_trainable_params", "checkpoint_format",
                          "remove_redundancy", "save_checkpoint_path"),
    "ObsMonitor": ("type", "src_dir", "target_dir", "step_upload_frequence",
                   "epoch_upload_frequence", "keep_last"),
    "SummaryMonitor": ("type", "summary_dir", "collect_freq", "collect_specified_data",
                       "keep_default_action", "custom_lineage_data", "collect_tensor_freq",
                       "max_file_size", "export_options"),
    "SampleGeneration": ("type", "prompt", "prompts", "max_new_tokens", "do_sample", "top_k",
                         "top_p", "temperature", "seed"),
}
CALLBACK_KEYS["CheckpointMonitor"] = CALLBACK_KEYS["CheckpointMointor"]
INERT_CALLBACKS = ("ObsMonitor", "SummaryMonitor")
# CheckpointMointor keys that concern Ascend's distributed save or MindSpore's own .ckpt
# writer; mf always writes complete, atomic safetensors checkpoints.
INERT_CHECKPOINT_KEYS = ("prefix", "directory", "save_checkpoint_seconds",
                         "keep_checkpoint_per_n_minutes", "integrated_save", "async_save",
                         "save_network_params", "save_trainable_params", "checkpoint_format",
                         "remove_redundancy", "save_checkpoint_path")


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TrainConfigError(f"{name} = {value!r}; it must be an integer >= 1")
    return value


def plan_callbacks(entries: list[dict[str, Any]]) -> CallbackPlan:
    """Check `callbacks:` strictly and turn it into loop settings."""
    plan = CallbackPlan()
    for index, entry in enumerate(entries):
        where = f"callbacks[{index}]"
        kind = entry.get("type")
        if kind not in CALLBACK_KEYS:
            close = difflib.get_close_matches(str(kind), list(CALLBACK_KEYS), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else \
                f"allowed: {', '.join(sorted(CALLBACK_KEYS))}"
            raise TrainConfigError(f"{where}.type = {kind!r}; {hint}")
        allowed = CALLBACK_KEYS[kind]
        for key in entry:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
                hint = f"did you mean '{where}.{close[0]}'?" if close else \
                    f"{kind} accepts: {', '.join(allowed)}"
                raise TrainConfigError(f"unknown key '{where}.{key}'; {hint}")
        if kind in INERT_CALLBACKS:
            plan.notes.append(f"{where} {kind}: no effect on this backend")
        elif kind in ("CheckpointMointor", "CheckpointMonitor"):
            if "save_checkpoint_steps" in entry:
                plan.save_steps = _positive_int(f"{where}.save_checkpoint_steps",
                                                entry["save_checkpoint_steps"])
            if "keep_checkpoint_max" in entry:
                plan.save_total_limit = _positive_int(f"{where}.keep_checkpoint_max",
                                                      entry["keep_checkpoint_max"])
            inert = [k for k in entry if k in INERT_CHECKPOINT_KEYS]
            if inert:
                plan.notes.append(f"{where} {kind}: {', '.join(inert)} have no effect (mf writes "
                                  "atomic safetensors checkpoints under the job directory)")
        elif kind == "SampleGeneration":
            prompts = entry.get("prompts", [])
            if "prompt" in entry:
                prompts = [entry["prompt"], *prompts]
            if not prompts or not all(isinstance(p, str) for p in prompts):
                raise TrainConfigError(f"{where} SampleGeneration needs prompt: a string "
                                       "(or prompts: a list of strings)")
            plan.sample_prompts = list(prompts)
            if "max_new_tokens" in entry:
                plan.sample_max_new_tokens = _positive_int(f"{where}.max_new_tokens",
                                                           entry["max_new_tokens"])
            # checked by mf-generate's GenerationConfig when the sample is drawn
            plan.sample_settings = {k: entry[k] for k in ("do_sample", "top_k", "top_p",
                                                          "temperature", "seed") if k in entry}
    return plan
