"""`Trainer`: MindFormers' high-level API (train, finetune, evaluate, predict) over one run.

    from mf_train import Trainer, TrainingArguments

    args = TrainingArguments(output_dir="out", batch_size=8, learning_rate=3e-4, max_steps=200)
    trainer = Trainer(task="text_generation", model="llama_debug", args=args,
                      train_dataset="data/train.mindrecord", eval_dataset="data/eval.mindrecord")
    trainer.train()
    trainer.evaluate()                      # {"loss": ..., "perplexity": ...}
    trainer.predict(input_data="def main(")  # [{"text_generation_text": ["def main(..."]}]

A facade: the arguments become one resolved `Run` (resolve.py: TrainingArguments, dataset
paths and the set_* calls are overrides on the run YAML), and each method is the same
`RunSession` call that `mf train` and every msrun rank make (session.py), so a Python run and
`mf train CONFIG` are the same run and the job directory's job.yaml records either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mf_train.callbacks import TrainSummary
from mf_train.data import TokenDataset
from mf_train.errors import TrainConfigError
from mf_train.evaluation import EvalPrediction
from mf_train.resolve import Run, resolve_run
from mf_train.run_yaml import RunConfig
from mf_train.run_yaml.from_args import loader_type_of, run_source
from mf_train.session import RunSession
from mf_train.task_data.records import Records, is_records
from mf_train.tasks import task_named
from mf_train.training_args import TrainingArguments

PET_METHODS = ("", "lora")


class Trainer:
    """Train, fine-tune, evaluate and predict with one model and one run."""

    def __init__(self, task: str = "text_generation", model: Any = None,
                 args: TrainingArguments | RunConfig | str | Path | None = None,
                 train_dataset: Any = None, eval_dataset: Any = None, tokenizer: Any = None,
                 pet_method: str = "", callbacks: Sequence[Any] | None = None,
                 compute_metrics: Callable[[EvalPrediction], dict[str, float]] | None = None,
                 *, log_to_console: bool = True, log_steps_to_console: bool = True,
                 random_init: bool = False):
        task_named(task)  # one-line error for an unknown task
        if pet_method not in PET_METHODS:
            raise TrainConfigError(f"pet_method = {pet_method!r}; allowed: '' (full training) "
                                   "or 'lora'")
        self.task = task
        source, python_only = run_source(args)
        overrides: dict[str, Any] = {}
        train_data = _dataset(train_dataset, "train_dataset", overrides)
        eval_data = _dataset(eval_dataset, "eval_dataset", overrides)
        run = resolve_run(source, overrides=overrides, model=model, given_task=task,
                          **python_only)
        if pet_method == "lora" and not run.pet:  # LoRA with the family's defaults
            run = run.with_overrides({"model.model_config.pet_config": {"pet_type": "lora"}},
                                     "Trainer(pet_method='lora')")
        self._session = RunSession(run, model=model, tokenizer=tokenizer, train_data=train_data,
                                   eval_data=eval_data, callbacks=list(callbacks or []),
                                   compute_metrics=compute_metrics, echo=log_to_console,
                                   echo_steps=log_to_console and log_steps_to_console,
                                   random_init=random_init)

    # ---- the run ------------------------------------------------------------------------------
    @property
    def run(self) -> Run:
        return self._session.run

    @property
    def config(self) -> RunConfig:
        return self.run.config

    @property
    def model(self) -> Any:
        """The model (built on first use from the run's model config, or the one given)."""
        return self._session.slot.model

    @property
    def tokenizer(self) -> Any:
        return self._session.tokenizer

    @property
    def last_summary(self) -> TrainSummary | None:
        return self._session.last_summary

    def _override(self, values: dict[str, Any], origin: str) -> None:
        self._session.reresolved(self.run.with_overrides(values, origin))

    def set_parallel_config(self, **degrees: Any) -> None:
        """MindFormers' `set_parallel_config(data_parallel=..., model_parallel=...,
        pipeline_stage=..., micro_batch_num=..., optimizer_shard=..., ...)`: the run YAML's
        parallel_config keys (micro_batch_interleave_num sits at its top level)."""
        values = {f"parallel_config.{k}": v for k, v in degrees.items()
                  if k != "micro_batch_interleave_num"}
        if "micro_batch_interleave_num" in degrees:
            values["micro_batch_interleave_num"] = degrees["micro_batch_interleave_num"]
        self._override(values, "set_parallel_config")

    def set_recompute_config(self, **settings: Any) -> None:
        """MindFormers' `set_recompute_config(recompute=True, ...)`: recompute_config keys."""
        self._override({f"recompute_config.{k}": v for k, v in settings.items()},
                       "set_recompute_config")

    def get_last_checkpoint(self) -> Path | None:
        """The newest complete checkpoint of this run's output_dir, or None."""
        return self._session.last_checkpoint()

    # ---- the four run modes -------------------------------------------------------------------
    def train(self, train_checkpoint: str | Path | bool | None = None,
              resume_from_checkpoint: str | Path | bool | None = None,
              resume_training: bool | None = None, do_eval: bool | None = None,
              argv: Sequence[str] | None = None) -> TrainSummary:
        """Train from scratch (or from `train_checkpoint`'s weights); returns a summary.

        `resume_from_checkpoint` (a checkpoint, a job directory, or True for this run's
        output_dir) continues a run exactly where its checkpoint left it.
        """
        return self._fit("train", train_checkpoint, resume_from_checkpoint, resume_training,
                         do_eval, argv)

    def finetune(self, finetune_checkpoint: str | Path | bool | None = None,
                 resume_from_checkpoint: str | Path | bool | None = None,
                 resume_training: bool | None = None, do_eval: bool | None = None,
                 argv: Sequence[str] | None = None) -> TrainSummary:
        """Train from pretrained weights (`finetune_checkpoint`, else load_checkpoint); with
        pet_method="lora" only the LoRA weights train and are saved."""
        return self._fit("finetune", finetune_checkpoint, resume_from_checkpoint,
                         resume_training, do_eval, argv)

    def _fit(self, mode: str, start: Any, resume_from: Any, resume_training: bool | None,
             do_eval: bool | None, argv: Sequence[str] | None) -> TrainSummary:
        values: dict[str, Any] = {"run_mode": mode}
        if do_eval is not None:
            values["do_eval"] = do_eval
        self._override(values, f"Trainer.{mode}()")
        return self._session.fit(start_weights=start, resume_from=resume_from,
                                 resume_training=resume_training, argv=argv)

    def evaluate(self, eval_dataset: Any = None,
                 eval_checkpoint: str | Path | bool | None = None) -> dict[str, float]:
        """Metrics of the model on the eval dataset (perplexity for a causal LM)."""
        if eval_dataset is not None:
            overrides: dict[str, Any] = {}
            self._session.eval_data = _dataset(eval_dataset, "eval_dataset", overrides)
            if overrides:
                self._override(overrides, "Trainer.evaluate(eval_dataset=...)")
        return self._session.evaluate(eval_checkpoint)

    def predict(self, input_data: str | Sequence[str] | None = None,
                predict_checkpoint: str | Path | bool | None = None,
                max_length: int | None = None, max_new_tokens: int | None = None,
                streamer: Any = None, **generate_kwargs: Any) -> list[dict[str, list[str]]]:
        """Generate continuations: MindFormers' [{'text_generation_text': [text]}] per input."""
        if input_data is None:
            raise TrainConfigError("predict needs input_data: a string or a list of strings")
        prompts = [input_data] if isinstance(input_data, str) else list(input_data)
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise TrainConfigError("input_data must be a string or a list of strings")
        return self._session.predict(prompts, checkpoint=predict_checkpoint,
                                     max_length=max_length, max_new_tokens=max_new_tokens,
                                     streamer=streamer, **generate_kwargs)

    def export(self, output_dir: str | Path, export_checkpoint: str | Path | bool | None = None,
               overwrite: bool = False) -> Path:
        """Write the model as a model directory (config, model.safetensors, tokenizer files)
        for `mf generate` and `from_pretrained`; LoRA merged into the base first."""
        return self._session.export(output_dir, export_checkpoint, overwrite)


def _dataset(dataset: Any, section: str, overrides: dict[str, Any]) -> Any:
    """A path becomes run-YAML keys (recorded in job.yaml); data objects a TokenDataset."""
    if dataset is None:
        return None
    if is_records(dataset):  # a task's examples: [{"text": ..., "label": ...}, ...]
        return Records.from_python(dataset, section) if not isinstance(dataset, Records) \
            else dataset
    if isinstance(dataset, TokenDataset):
        return dataset
    if isinstance(dataset, (str, Path)):
        overrides[f"{section}.data_loader.type"] = loader_type_of(Path(dataset))
        overrides[f"{section}.data_loader.dataset_dir"] = str(dataset)
        return None
    if isinstance(dataset, np.ndarray):
        return TokenDataset(dataset, source=f"<{section} array>")
    if hasattr(dataset, "create_dict_iterator"):
        return TokenDataset.from_mindspore(dataset, source=f"<{section}: mindspore.dataset>")
    if callable(dataset) or hasattr(dataset, "__iter__"):
        return TokenDataset.from_generator(dataset, source=f"<{section}: generator>")
    raise TrainConfigError(f"{section} must be a path, a mindspore.dataset object, a "
                           f"generator or a TokenDataset, got {type(dataset).__name__}")
