"""`Trainer`: MindFormers' high-level API (train, finetune, evaluate, predict) over mf's pieces.

    from mf_train import Trainer, TrainingArguments

    args = TrainingArguments(output_dir="out", batch_size=8, learning_rate=3e-4, max_steps=200)
    trainer = Trainer(task="text_generation", model="llama_debug", args=args,
                      train_dataset="data/train.mindrecord", eval_dataset="data/eval.mindrecord")
    trainer.train()
    trainer.evaluate()                      # {"loss": ..., "perplexity": ...}
    trainer.predict(input_data="def main(")  # [{"text_generation_text": ["def main(..."]}]

Everything becomes one run config first (`RunConfig`, the run YAML's schema): TrainingArguments,
dataset paths and `set_parallel_config` are overrides on it, so a Python run and `mf train
CONFIG` are the same run and the job directory's job.yaml records either. Every check runs
before the job directory exists (`prepare.prepare_run`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mf_train.callbacks import TrainSummary, plan_callbacks
from mf_train.checkpoint import get_last_checkpoint
from mf_train.data import TokenDataset
from mf_train.errors import CheckpointNotFoundError, TrainConfigError
from mf_train.evaluation import EvalPrediction, metric_types
from mf_train.run_yaml import RunConfig, apply_overrides, run_config_from_mapping
from mf_train.run_yaml.from_args import loader_type_of, mapping_from_args
from mf_train.training_args import TrainingArguments

TASKS = ("text_generation", "causal_language_modeling", "general")
PET_METHODS = ("", "lora")


class Trainer:
    """Train, fine-tune, evaluate and predict with one model and one run config."""

    def __init__(self, task: str = "text_generation", model: Any = None,
                 args: TrainingArguments | RunConfig | str | Path | None = None,
                 train_dataset: Any = None, eval_dataset: Any = None, tokenizer: Any = None,
                 pet_method: str = "", callbacks: Sequence[Any] | None = None,
                 compute_metrics: Callable[[EvalPrediction], dict[str, float]] | None = None,
                 *, log_to_console: bool = True, log_steps_to_console: bool = True):
        if task not in TASKS:
            raise TrainConfigError(f"task = {task!r}; allowed: {', '.join(TASKS)} (mf trains "
                                   "causal language models)")
        if pet_method not in PET_METHODS:
            raise TrainConfigError(f"pet_method = {pet_method!r}; allowed: '' (full training) "
                                   "or 'lora'")
        self.task = task
        self.pet_method = pet_method
        self.tokenizer = tokenizer
        self.callbacks = list(callbacks or [])
        self.compute_metrics = compute_metrics
        self.log_to_console = log_to_console
        self.log_steps_to_console = log_steps_to_console
        self._model_arg = model
        self._data, self._origins, self._files, self._options = mapping_from_args(args)
        self._args = args if isinstance(args, TrainingArguments) else None
        self._train_data = self._dataset_argument(train_dataset, "train_dataset")
        self._eval_data = self._dataset_argument(eval_dataset, "eval_dataset")
        self.config = self._build_config()
        self._model: Any = None
        self._model_notes: list[str] = []
        self._tokenizer_notes: list[str] = []
        self._job_exists = False  # set by the msrun worker: the launcher made the job dir
        self._lora_applied = False
        self._weights_ready = False  # trained or loaded here: evaluate/predict keep them
        self.last_summary: TrainSummary | None = None

    # ---- configuration ------------------------------------------------------------------------
    def _dataset_argument(self, dataset: Any, section: str) -> TokenDataset | None:
        """A path becomes config keys (recorded in job.yaml); objects become a TokenDataset."""
        if dataset is None:
            return None
        if isinstance(dataset, TokenDataset):
            return dataset
        if isinstance(dataset, (str, Path)):
            self._override({f"{section}.data_loader.type": loader_type_of(Path(dataset)),
                            f"{section}.data_loader.dataset_dir": str(dataset)},
                           f"Trainer({section}=...)")
            return None
        if isinstance(dataset, np.ndarray):
            return TokenDataset(dataset, source=f"<{section} array>")
        if hasattr(dataset, "create_dict_iterator"):
            return TokenDataset.from_mindspore(dataset, source=f"<{section}: mindspore.dataset>")
        if callable(dataset) or hasattr(dataset, "__iter__"):
            return TokenDataset.from_generator(dataset, source=f"<{section}: generator>")
        raise TrainConfigError(f"{section} must be a path, a mindspore.dataset object, a "
                               f"generator or a TokenDataset, got {type(dataset).__name__}")

    def _override(self, values: dict[str, Any], origin: str) -> None:
        self._data = apply_overrides(self._data, self._origins, values, origin)

    def _build_config(self) -> RunConfig:
        config = run_config_from_mapping(self._data, origins=self._origins, files=self._files,
                                         options=self._options)
        plan_callbacks(config.callbacks)  # fail early on a bad callbacks: section
        metric_types(config.metric)
        return config

    def _rebuild(self, values: dict[str, Any], origin: str) -> None:
        self._override(values, origin)
        self.config = self._build_config()

    def set_parallel_config(self, data_parallel: int = 1, model_parallel: int = 1,
                            context_parallel: int = 1, expert_parallel: int = 1,
                            pipeline_stage: int = 1, micro_batch_interleave_num: int = 1,
                            micro_batch_num: int = 1, use_seq_parallel: bool = False,
                            optimizer_shard: bool = False, gradient_aggregation_group: int = 4,
                            vocab_emb_dp: bool = True) -> None:
        """MindFormers' `set_parallel_config`; on CPU only data_parallel may exceed 1."""
        from mf_train.distributed import check_parallel_config

        values = {f"parallel_config.{k}": v for k, v in dict(
            data_parallel=data_parallel, model_parallel=model_parallel,
            context_parallel=context_parallel, expert_parallel=expert_parallel,
            pipeline_stage=pipeline_stage, micro_batch_num=micro_batch_num,
            use_seq_parallel=use_seq_parallel, optimizer_shard=optimizer_shard,
            gradient_aggregation_group=gradient_aggregation_group,
            vocab_emb_dp=vocab_emb_dp).items()}
        values["micro_batch_interleave_num"] = micro_batch_interleave_num
        self._rebuild(values, "set_parallel_config")
        check_parallel_config(self.config)

    def set_recompute_config(self, recompute: bool | list = False,
                             parallel_optimizer_comm_recompute: bool = False,
                             select_recompute: bool | list = False,
                             mp_comm_recompute: bool = True,
                             recompute_slice_activation: bool = False) -> None:
        """MindFormers' `set_recompute_config`: recompute=True recomputes every block."""
        self._rebuild({"recompute_config.recompute": recompute,
                       "recompute_config.select_recompute": select_recompute,
                       "recompute_config.parallel_optimizer_comm_recompute":
                           parallel_optimizer_comm_recompute,
                       "recompute_config.mp_comm_recompute": mp_comm_recompute,
                       "recompute_config.recompute_slice_activation":
                           recompute_slice_activation}, "set_recompute_config")

    def get_last_checkpoint(self) -> Path | None:
        """The newest complete checkpoint of this run's output_dir, or None."""
        root = Path(self.config.output_dir)
        return get_last_checkpoint(root / "checkpoints") or get_last_checkpoint(root)

    # ---- model and tokenizer ------------------------------------------------------------------
    @property
    def model(self) -> Any:
        """The model (built on first use: a preset, an instance, or model.model_config).

        Under pet_method="lora" the LoRA layers are added once the base weights are in
        (`_ready_model`), so a base checkpoint loads strictly, name for name.
        """
        if self._model is None:
            self._model = self._build_model()
        return self._model

    def _ready_model(self, base_source: str | Path | None) -> Any:
        """The model with its weights: `base_source` loaded (unless the weights are already
        this Trainer's, e.g. trained), then LoRA applied under pet_method="lora"."""
        model = self.model
        if base_source:
            self._load_any(model, base_source)
        if self.pet_method == "lora" and not self._lora_applied:
            self._apply_lora(model)
            self._lora_applied = True
        return model

    def _load_any(self, model: Any, source: str | Path) -> None:
        """Base weights, or a LoRA-only checkpoint (a LoRA run's) onto a LoRA model."""
        from mf_train.model_setup import load_start_weights, read_start_weights

        if self._lora_applied:
            from mf_train.lora import load_lora
            from mf_train.lora.model import is_lora_name

            weights = read_start_weights(source, model)
            if weights and all(is_lora_name(name) for name in weights):
                load_lora(model, weights)
                return
            raise TrainConfigError(f"{source}: this Trainer's model already has LoRA layers; "
                                   "give a LoRA checkpoint (a LoRA run's job or checkpoint)")
        load_start_weights(model, source)

    def _build_model(self) -> Any:
        from mf_train.model_setup import build_model

        config = self.config
        model, notes = build_model(self._model_arg, config.model.model_config,
                                   config.model.arch, seed=config.seed)
        self._model_notes = notes
        if not isinstance(self._model_arg, (str, type(None))) and config.model.model_config:
            self._model_notes.append("model was given as an instance: model.model_config is "
                                     "not used")
        # job.yaml records the model actually trained, whatever named it
        resolved = {k: v for k, v in model.config.to_dict().items() if k != "name"}
        pet = self.config.model.model_config.get("pet_config")
        if pet:
            resolved["pet_config"] = pet
        self._rebuild({"model.model_config": resolved}, "the model")
        return model

    def _apply_lora(self, model: Any) -> None:
        from mf_train.lora import apply_lora

        apply_lora(model, self._pet_config(), seed=self.config.seed)

    def _pet_config(self) -> dict[str, Any]:
        pet = self.config.model.model_config.get("pet_config") or {}
        if not isinstance(pet, dict):
            raise TrainConfigError(f"model.model_config.pet_config = {pet!r}; expected a "
                                   "mapping (pet_type: lora, lora_rank, lora_alpha, ...)")
        return dict(pet)

    def _tokenizer(self) -> Any:
        if self.tokenizer is not None:
            return self.tokenizer
        from mf_train.data.dataset import documents_from_config
        from mf_train.model_setup import build_tokenizer, tokenizer_section

        section = tokenizer_section(self.config)
        documents = None
        if section.get("train_vocab_size") and self.config.train_dataset.data_loader.type \
                != "MindDataset":
            documents = documents_from_config(self.config.train_dataset)
        tokenizer, notes = build_tokenizer(section, documents)
        self._tokenizer_notes = notes
        self.tokenizer = tokenizer
        return tokenizer

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

    def evaluate(self, eval_dataset: Any = None,
                 eval_checkpoint: str | Path | bool | None = None) -> dict[str, float]:
        """Metrics of the model on the eval dataset (perplexity for a causal LM)."""
        from mf_train.distributed import setup_context
        from mf_train.evaluation import Evaluator
        from mf_train.prepare import prepare_run

        if eval_dataset is not None:
            self._eval_data = self._dataset_argument(eval_dataset, "eval_dataset")
            self.config = self._build_config()
        world = setup_context(self.config)
        model = self._model_for_inference(eval_checkpoint)
        prepared = prepare_run(self.config, self._tokenizer(), eval_dataset=self._eval_data,
                               create_job=False, vocab_size=model.config.vocab_size,
                               need_train_data=False)
        if prepared.eval_dataset is None:
            raise TrainConfigError("evaluate needs an eval dataset: eval_dataset.data_loader in "
                                   "the run YAML, or Trainer(eval_dataset=...)")
        evaluator = Evaluator(model, prepared.eval_dataset, self._eval_batch_size(),
                              rank=world.rank, world_size=world.size,
                              metrics=metric_types(self.config.metric),
                              compute_metrics=self.compute_metrics)
        return evaluator.run()

    def predict(self, input_data: str | Sequence[str] | None = None,
                predict_checkpoint: str | Path | bool | None = None,
                max_length: int | None = None, max_new_tokens: int | None = None,
                streamer: Any = None, **generate_kwargs: Any) -> list[dict[str, list[str]]]:
        """Generate continuations: MindFormers' [{'text_generation_text': [text]}] per input."""
        from mf_generate import generate

        from mf_train.distributed import setup_context

        if input_data is None:
            raise TrainConfigError("predict needs input_data: a string or a list of strings")
        prompts = [input_data] if isinstance(input_data, str) else list(input_data)
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise TrainConfigError("input_data must be a string or a list of strings")
        setup_context(self.config)
        model = self._model_for_inference(predict_checkpoint)
        tokenizer = self._tokenizer()
        if tokenizer is None:
            raise TrainConfigError("predict needs a tokenizer: processor.tokenizer in the run "
                                   "YAML, or Trainer(tokenizer=...)")
        if max_length is None and max_new_tokens is None:
            max_new_tokens = 32
        results = []
        lengths = {"max_length": max_length, "max_new_tokens": max_new_tokens}
        settings = {k: v for k, v in lengths.items() if v is not None}
        if tokenizer.eos_token_id is not None:
            settings["eos_token_id"] = tokenizer.eos_token_id
        settings.update(generate_kwargs)
        for prompt in prompts:
            output = generate(model, [tokenizer.encode(prompt)], None, streamer, **settings)
            row = [int(t) for t in np.asarray(output)[0]]
            text = tokenizer.decode(row, skip_special_tokens=True)
            results.append({"text_generation_text": [text]})
        return results

    def prepare_job(self, argv: Sequence[str] | None = None) -> Any:
        """Every check of a training run and its job directory, without building the model
        (what a launcher does before it starts the ranks); returns the PreparedRun."""
        from mf_models.registry import preset_config

        from mf_train.distributed import check_parallel_config
        from mf_train.loss_scale import step_wrapper_from_config
        from mf_train.model_setup import model_config_from_run
        from mf_train.prepare import prepare_run

        check_parallel_config(self.config)
        step_wrapper_from_config(self.config.runner_wrapper)
        if isinstance(self._model_arg, str):
            model_config = preset_config(self._model_arg)
        elif self._model_arg is not None:
            model_config = self._model_arg.config
        else:
            model_config, _ = model_config_from_run(self.config.model.model_config,
                                                    self.config.model.arch)
        return prepare_run(self.config, self._tokenizer(), train_dataset=self._train_data,
                           eval_dataset=self._eval_data,
                           resume_from=self._resume_source(None, None), create_job=True,
                           argv=argv or sys.argv, vocab_size=model_config.vocab_size)

    # ---- export -------------------------------------------------------------------------------
    def export(self, output_dir: str | Path, export_checkpoint: str | Path | bool | None = None,
               overwrite: bool = False) -> Path:
        """Write the model as a model directory (config, model.safetensors, tokenizer files)
        that `mf generate` and `from_pretrained` read; under LoRA the LoRA weights are merged
        into the base first (W += B A * alpha / rank). Weights as `predict` picks them.
        The directory appears whole or not at all."""
        from mf_train.atomic import atomic_directory
        from mf_train.outputs import claim_output, write_marker

        target = claim_output(output_dir, kind="model", what="export directory",
                              overwrite=overwrite, hint="choose a new OUT_DIR").path
        tokenizer = self._tokenizer()
        model = self._model_for_inference(export_checkpoint)
        if self._lora_applied:
            from mf_train.lora import merge_lora

            merge_lora(model)
            self._lora_applied = False
        if target.exists() and not any(target.iterdir()):
            target.rmdir()  # empty: the filled folder is renamed into its place
        with atomic_directory(target) as folder:
            write_marker(folder, "model")
            model.save_pretrained(folder)
            if tokenizer is not None:
                tokenizer.save_pretrained(folder)
        return target

    # ---- training -----------------------------------------------------------------------------
    def _eval_batch_size(self) -> int:
        written = self.config.eval_dataset.batch_size
        if written is not None:
            return written
        if self._args is not None:
            return self._args.per_device_eval_batch_size
        return self.config.runner_config.batch_size

    def _model_for_inference(self, checkpoint: str | Path | bool | None) -> Any:
        """evaluate/predict: this Trainer's weights once it has trained or loaded some;
        otherwise load_checkpoint (the base, under LoRA) and `checkpoint`."""
        if checkpoint is False or (checkpoint in (None, True) and self._weights_ready):
            return self._ready_model(None)
        base = self.config.load_checkpoint or None
        if self.pet_method == "lora" and not self._lora_applied:
            model = self._ready_model(base)  # the base, then LoRA layers
            if checkpoint not in (None, True):
                self._load_any(model, checkpoint)  # the LoRA run's weights
        else:
            source = checkpoint if checkpoint not in (None, True) else base
            model = self._ready_model(source)
        self._weights_ready = True
        return model

    def _resume_source(self, resume_from: str | Path | bool | None,
                       resume_training: bool | None) -> Path | None:
        if resume_from not in (None, False, True):
            return Path(resume_from)
        wanted = resume_from is True or resume_training is True or (
            resume_training is None and self.config.resume_training not in (False, "", None))
        if not wanted:
            return None
        written = self.config.resume_training
        if isinstance(written, str) and written:
            return Path(written)
        last = self.get_last_checkpoint()
        if last is None:
            raise CheckpointNotFoundError(
                f"resume_training is set, but {self.config.output_dir} holds no complete "
                "checkpoint to resume from")
        return last

    def _fit(self, mode: str, start_weights: str | Path | bool | None,
             resume_from: str | Path | bool | None, resume_training: bool | None,
             do_eval: bool | None, argv: Sequence[str] | None) -> TrainSummary:
        from mf_train.distributed import setup_context

        if do_eval is not None:
            self._rebuild({"do_eval": do_eval}, f"{mode}(do_eval=...)")
        if self.config.run_mode != mode:
            self._rebuild({"run_mode": mode}, f"Trainer.{mode}()")
        world = setup_context(self.config)
        resume = self._resume_source(resume_from, resume_training)
        if resume is None and world.rank == 0 and not self._job_exists:
            from mf_train.outputs import claim_output

            # the output rule before anything is written (a tokenizer trained, a model built)
            claim_output(self.config.output_dir, kind="job", what="output_dir",
                         overwrite=self.config.overwrite_output_dir,
                         hint="choose another output_dir")
        tokenizer = self._tokenizer()
        start = None
        if start_weights not in (False,) and not (self._weights_ready and start_weights is None):
            start = (start_weights if start_weights not in (None, True)
                     else self.config.load_checkpoint or None)
        if mode == "finetune" and start is None and not self._weights_ready:
            self._model_notes.append("finetune without load_checkpoint: training from "
                                     "randomly initialised weights")
        # A resume restores every trained weight; under LoRA the frozen base is not in the
        # checkpoint and comes from load_checkpoint as at the start.
        base = start if resume is None or self.pet_method == "lora" else None
        model = self._ready_model(base)
        self._weights_ready = True
        return self._run_training(model, tokenizer, world, resume, argv)

    def _saved_params(self, model: Any) -> list[Any]:
        """What a checkpoint holds: every weight, or only the trainable ones under LoRA."""
        if self.pet_method == "lora":
            return list(model.trainable_params())
        return list(model.get_parameters())

    def _model_files(self, model: Any, tokenizer: Any) -> Any | None:
        """What makes a checkpoint a model directory too (as Hugging Face's Trainer saves
        config and tokenizer beside the weights), so `mf generate <checkpoint>` and
        `from_pretrained(<checkpoint>)` read it. Not under LoRA: its checkpoints hold only
        the LoRA weights."""
        if self.pet_method == "lora":
            return None

        def write(folder: Path) -> None:
            model.config.save_pretrained(folder)
            if tokenizer is not None:
                tokenizer.save_pretrained(folder)

        return write

    def _run_training(self, model: Any, tokenizer: Any, world: Any, resume: Path | None,
                      argv: Sequence[str] | None) -> TrainSummary:
        from mf_train.callbacks import plan_callbacks
        from mf_train.evaluation import Evaluator
        from mf_train.jobdir import JobDir
        from mf_train.loop import LoopSettings, LoopState, TrainingLoop, restore_all_rng
        from mf_train.loss_scale import step_wrapper_from_config
        from mf_train.lr_schedule import learning_rates
        from mf_train.model_setup import apply_recompute
        from mf_train.optim import build_adamw
        from mf_train.prepare import prepare_run
        from mf_train.train_step import TrainStep

        config = self.config
        plan = plan_callbacks(config.callbacks)
        wrapper = step_wrapper_from_config(config.runner_wrapper)
        saved = self._saved_params(model)
        signature = {p.name: [list(p.shape), np.dtype(_np_dtype(p)).name] for p in saved}
        prepared = prepare_run(config, tokenizer, train_dataset=self._train_data,
                               eval_dataset=self._eval_data, resume_from=resume,
                               create_job=not self._job_exists, argv=argv or sys.argv,
                               rank=world.rank, vocab_size=model.config.vocab_size,
                               model_signature=signature)
        job = prepared.job or JobDir(Path(config.output_dir).expanduser().absolute())
        recomputed = apply_recompute(model, config.recompute_config)
        rc, pc = config.runner_config, config.parallel_config
        micro_batches = pc.micro_batch_num * rc.gradient_accumulation_steps
        # the whole run's rates (past the schedule's end if the run is longer): AdamW indexes
        # them with its global_step, in the graph
        lrs = learning_rates(prepared.schedule,
                             max(prepared.total_steps, prepared.train_steps) + 1)
        optimizer = build_adamw(list(model.trainable_params()), lrs,
                                beta1=config.optimizer.beta1, beta2=config.optimizer.beta2,
                                eps=config.optimizer.eps,
                                weight_decay=config.optimizer.weight_decay)
        train_step = TrainStep(model, optimizer, micro_batches=micro_batches,
                               world_size=world.size, max_grad_norm=wrapper.max_grad_norm,
                               skip_nonfinite=wrapper.loss_scale is not None)
        state = LoopState(position=prepared.start, loss_scale=wrapper.loss_scale)
        if prepared.resume is not None:
            self._restore(model, optimizer, prepared.resume, state, saved)
            restore_all_rng(prepared.resume.state.rng)
            if self._args is not None and self._args.ignore_data_skip:
                # Hugging Face's ignore_data_skip: weights and optimizer resume, the data
                # starts again at the first batch (so the run is no longer an exact replay)
                state.position = type(prepared.start)()
                self._model_notes.append("ignore_data_skip: the data restarts at the first "
                                         "batch; this resume does not replay the run exactly")
        evaluator = None
        if config.do_eval and prepared.eval_dataset is not None:
            evaluator = Evaluator(model, prepared.eval_dataset, self._eval_batch_size(),
                                  rank=world.rank, world_size=world.size,
                                  metrics=metric_types(config.metric),
                                  compute_metrics=self.compute_metrics)
        elif config.do_eval:
            self._model_notes.append("do_eval is set but there is no eval dataset: no "
                                     "evaluation")
        settings = LoopSettings(
            do_eval=config.do_eval, eval_step_interval=config.eval_step_interval,
            eval_epoch_interval=config.eval_epoch_interval, plan=plan,
            micro_batches=micro_batches,
            log_every=self._args.logging_steps if self._args else 1,
            echo=self.log_to_console, echo_steps=self.log_steps_to_console,
            save_epochs=bool(self._args and self._args.save_strategy == "epoch"))
        lines = self._summary_lines(prepared, model, recomputed, plan, resume, world)
        loop = TrainingLoop(prepared=prepared, model=model, optimizer=optimizer,
                            learning_rates=lrs,
                            train_step=train_step, evaluator=evaluator, saved_params=saved,
                            world=world, job=job, settings=settings, state=state,
                            callbacks=self.callbacks, summary_lines=lines,
                            model_files=self._model_files(model, tokenizer))
        self.last_summary = loop.run()
        if plan.sample_prompts and world.rank == 0:
            self._sample(plan)
        return self.last_summary

    def _restore(self, model: Any, optimizer: Any, checkpoint: Any, state: Any,
                 saved: list[Any]) -> None:
        from mf_models.weights.io import write_in_place

        from mf_train.loss_scale import LossScale
        from mf_train.optim import load_optimizer_state

        params = {p.name: p for p in saved}
        for name, value in checkpoint.weights.items():
            write_in_place(params[name], value)
        load_optimizer_state(optimizer, checkpoint.optimizer, str(checkpoint.path))
        state.step = checkpoint.state.step
        if checkpoint.state.loss_scale and state.loss_scale is not None:
            state.loss_scale = LossScale.from_dict(checkpoint.state.loss_scale)

    def _summary_lines(self, prepared: Any, model: Any, recomputed: int, plan: Any,
                       resume: Path | None, world: Any) -> list[str]:
        cfg = model.config
        lines = [f"model: {type(model).__name__} ({cfg.family}), "
                 f"{model.num_parameters():,} parameters, layers {cfg.num_layers}, hidden "
                 f"{cfg.hidden_size}, seq_length {cfg.seq_length}, compute {cfg.compute_dtype}"]
        if cfg.compute_dtype == "float16":
            lines.append("compute_dtype float16: MindSpore's CPU fp16 matmul runs but is slower "
                         "than fp32 (measured, DESIGN.md); use it to rehearse an Ascend run")
        lines.append(f"data: {prepared.train_dataset.source}, {len(prepared.train_dataset)} "
                     f"samples of {prepared.train_dataset.sample_length} tokens")
        if prepared.eval_dataset is not None:
            lines.append(f"eval: {prepared.eval_dataset.source}, {len(prepared.eval_dataset)} "
                         "samples")
        lines += prepared.summary_lines()
        if recomputed:
            lines.append(f"recompute: {recomputed} transformer blocks")
        if world.size > 1:
            lines.append(f"data parallel: rank {world.rank} of {world.size}")
        if resume is not None:
            lines.append(f"resumed from {prepared.resume.path} at step {prepared.resume.state.step}"
                         f", data position {prepared.start.to_dict()}")
        lines += self._model_notes + self._tokenizer_notes + plan.notes
        return lines

    def _sample(self, plan: Any) -> None:
        from mf_generate import TextStreamer

        tokenizer = self._tokenizer()
        if tokenizer is None:
            return
        for prompt in plan.sample_prompts:
            sys.stdout.write(f"\n--- sample ({plan.sample_max_new_tokens} new tokens) ---\n")
            self.predict(input_data=prompt, predict_checkpoint=False,
                         max_new_tokens=plan.sample_max_new_tokens,
                         streamer=TextStreamer(tokenizer, skip_special_tokens=True),
                         **plan.sample_settings)
            sys.stdout.write("\n")
            sys.stdout.flush()


def _np_dtype(param: Any) -> Any:
    return {"Float16": np.float16, "Float32": np.float32, "BFloat16": np.float32,
            "Int32": np.int32}.get(str(param.dtype), np.float32)
