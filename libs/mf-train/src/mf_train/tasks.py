"""Trainer tasks: what a run trains decides the model head, the batch columns, the loss and the
eval metrics.

    task = run.task                 # trainer.type, Trainer(task=...), or the model's head
    task.name, task.inputs          # "text_classification", ("input_ids", ..., "labels")
    task.metrics                    # ("accuracy",)

MindFormers names a run's task twice: `trainer.type` in the run YAML (TextClassificationTrainer,
...) and `Trainer(task="text_classification")` in Python; both are read here. Without either,
the model's head decides (a BertForTokenClassification trains token classification), and a
causal LM trains `text_generation`, the task every other module of mf-train was written for.

The loss is the model's own: every head of mf-models returns it first when given its labels
(cross-entropy over classes, tokens, start + end, masked tokens or seq2seq labels, MAE's masked
patch reconstruction, CLIP's symmetric contrastive loss), as Hugging Face's Trainer takes
`outputs.loss`. So a task only names the model's arguments in `construct`'s order; the batch
columns are those arguments. Nothing here imports MindSpore.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mf_train.errors import TrainConfigError


@dataclass(frozen=True)
class Task:
    name: str  # MindFormers' task name (Trainer(task=...), pipeline(task=...))
    trainer_type: str  # MindFormers' trainer class (the run YAML's trainer.type)
    # mf-models' Auto class of the head (None: the family's own class, as `model_class` says)
    auto_class: str | None
    model_class: str | None  # the head class when no Auto class has it (MAE, CLIP)
    # the model's construct arguments, in order: the columns of a batch
    inputs: tuple[str, ...]
    # constant trailing arguments of the loss call (CLIP's return_loss=True)
    constants: tuple[Any, ...]
    metrics: tuple[str, ...]  # what evaluation reports besides the loss
    families: tuple[str, ...]
    columns: str  # the data a person gives, for error messages and the README

    @property
    def causal(self) -> bool:
        return self.name == "text_generation"

    def head_class(self, config: Any) -> type:
        """The model class this task trains for a config (task_of checked the family)."""
        import mf_models

        if self.auto_class is not None:
            return getattr(mf_models, self.auto_class).model_class(config)
        from mf_models.registry import family_of_config

        return family_of_config(config).model_class(self.model_class)


_TEXT = ("input_ids", "attention_mask", "token_type_ids")
_DECODERS = ("gpt2", "llama", "bloom", "glm", "glm2", "pangualpha")

TASKS: dict[str, Task] = {t.name: t for t in (
    Task("text_generation", "CausalLanguageModelingTrainer", "AutoModelForCausalLM", None,
         ("tokens",), (), ("perplexity",), _DECODERS, "text"),
    Task("text_classification", "TextClassificationTrainer",
         "AutoModelForSequenceClassification", None, (*_TEXT, "labels"), (), ("accuracy",),
         ("bert",), "text[, text_pair], label"),
    Task("token_classification", "TokenClassificationTrainer",
         "AutoModelForTokenClassification", None, (*_TEXT, "labels"), (),
         ("precision", "recall", "f1", "accuracy"), ("bert",), "tokens, tags"),
    Task("question_answering", "QuestionAnsweringTrainer", "AutoModelForQuestionAnswering",
         None, (*_TEXT, "start_positions", "end_positions"), (), ("exact_match", "f1"),
         ("bert",), "question, context, answers"),
    Task("fill_mask", "MaskedLanguageModelingTrainer", "AutoModelForMaskedLM", None,
         (*_TEXT, "labels"), (), ("accuracy",), ("bert",), "text"),
    Task("translation", "TranslationTrainer", "AutoModelForSeq2SeqLM", None,
         ("input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask",
          "labels"), (), ("bleu", "accuracy"), ("t5",), "source, target"),
    Task("image_classification", "ImageClassificationTrainer",
         "AutoModelForImageClassification", None, ("pixel_values", "labels"), (),
         ("accuracy",), ("vit", "swin"), "image, label"),
    Task("masked_image_modeling", "MaskedImageModelingTrainer", None, "ViTMAEForPreTraining",
         ("pixel_values", "noise"), (), (), ("mae",), "image"),
    Task("contrastive_language_image_pretrain", "ContrastiveLanguageImagePretrainTrainer", None,
         "CLIPModel", ("input_ids", "pixel_values", "attention_mask"), (True,),
         ("image_to_text_accuracy", "text_to_image_accuracy"), ("clip",), "image, caption"),
)}

# MindFormers' other spellings of the same tasks
ALIASES = {"causal_language_modeling": "text_generation", "general": "text_generation",
           "masked_language_modeling": "fill_mask", "image_to_text_retrieval":
           "contrastive_language_image_pretrain", "zero_shot_image_classification":
           "contrastive_language_image_pretrain"}
TRAINER_TYPES = {t.trainer_type: t.name for t in TASKS.values()}
TRAINER_TYPES.update(GeneralTaskTrainer="text_generation",
                     CausalLMTrainer="text_generation", ContrastiveLanguageImagePretrainTrainer=(
                         "contrastive_language_image_pretrain"))
# The head class a model config names -> its task (a run YAML without trainer:)
HEAD_TASKS = {"BertForSequenceClassification": "text_classification",
              "BertForTokenClassification": "token_classification",
              "BertForQuestionAnswering": "question_answering",
              "BertForMaskedLM": "fill_mask", "BertModel": "fill_mask",
              "T5ForConditionalGeneration": "translation",
              "ViTForImageClassification": "image_classification",
              "SwinForImageClassification": "image_classification",
              "ViTMAEForPreTraining": "masked_image_modeling",
              "CLIPModel": "contrastive_language_image_pretrain"}


def task_named(name: str) -> Task:
    """A task by MindFormers' task name or alias; one-line error naming the allowed ones."""
    key = ALIASES.get(name, name)
    if key not in TASKS:
        raise TrainConfigError(f"task = {name!r}; allowed: {', '.join([*TASKS, *ALIASES])}")
    return TASKS[key]


def task_of(trainer: dict[str, Any] | None, model_config: Any,
            given: str | None = None) -> Task:
    """The task of a run: `given` (Trainer(task=...)), else the run YAML's trainer.type (or
    trainer.task), else the head the model config names; checked against the model."""
    trainer = trainer or {}
    if given is not None:
        task = task_named(given)
    elif trainer.get("task"):
        task = task_named(str(trainer["task"]))
    elif trainer.get("type"):
        kind = str(trainer["type"])
        if kind not in TRAINER_TYPES:
            raise TrainConfigError(f"trainer.type = {kind!r}; allowed: "
                                   f"{', '.join(sorted(TRAINER_TYPES))}")
        task = TASKS[TRAINER_TYPES[kind]]
    else:
        head = _head_name(model_config)
        task = TASKS[HEAD_TASKS.get(head, "text_generation")]
    if model_config.family not in task.families:
        raise TrainConfigError(
            f"task {task.name} trains {', '.join(task.families)} models, but the model is "
            f"{model_config.family} ({_head_name(model_config)}); set trainer.type to its "
            f"task, e.g. {_default_trainer(model_config)}")
    return task


def _head_name(model_config: Any) -> str:
    from mf_models.registry import family_of_config

    return getattr(model_config, "architecture", None) or \
        family_of_config(model_config).model_class_name()


def _default_trainer(model_config: Any) -> str:
    task = TASKS[HEAD_TASKS.get(_head_name(model_config), "text_generation")]
    return task.trainer_type
