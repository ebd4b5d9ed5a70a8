"""`pipeline(task=..., model=..., tokenizer=...)`, MindFormers' inference entry.

    pipe = pipeline("text_generation", model="gpt2", max_length=50)
    pipe("I love Beijing, because", top_k=3)
    # [{'text_generation_text': ['I love Beijing, because ...']}]
    pipeline("fill_mask", model="bert_base_uncased")("Paris is the [MASK] of France.")
    pipeline("image_classification", model="vit_dir")("cat.jpg", top_k=3)

A task name is MindFormers' (`text_classification`) or Hugging Face's (`text-classification`,
`sentiment-analysis`, `ner`, `translation_en_to_de`, ...). Each task's pipeline class loads
its model with the task's Auto class (`load_model`) and takes the settings it knows; the
text-generation output includes the prompt, as MindFormers returns it. The image tasks
(vision_pipelines.py) take a processor (`processor=`, else the one saved with the model)
where the text tasks take a tokenizer.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
from typing import Any

from mf_generate.config import GenerationConfig
from mf_generate.errors import GenerateConfigError, UnsupportedTaskError

TEXT_GENERATION = "text_generation"
# task name -> "module:Class" of its pipeline.
TASKS: dict[str, str] = {TEXT_GENERATION: "mf_generate.pipelines:TextGenerationPipeline"}
# Other names of a task: MindFormers' spellings and Hugging Face's (after '-' -> '_').
TASK_ALIASES: dict[str, str] = {}
# The other tasks of MindFormers' README model matrix (MAE, ViT, Swin, CLIP).
NOT_YET = ("masked_image_modeling", "image_classification",
           "contrastive_language_image_pretrain", "zero_shot_image_classification")

# BERT's and T5's tasks (issue 14, text half).
TASKS.update({
    "fill_mask": "mf_generate.text_pipelines:FillMaskPipeline",
    "text_classification": "mf_generate.text_pipelines:TextClassificationPipeline",
    "token_classification": "mf_generate.text_pipelines:TokenClassificationPipeline",
    "question_answering": "mf_generate.text_pipelines:QuestionAnsweringPipeline",
    "translation": "mf_generate.text_pipelines:TranslationPipeline",
    "text2text_generation": "mf_generate.text_pipelines:Text2TextGenerationPipeline",
})
TASK_ALIASES.update({
    "masked_language_modeling": "fill_mask", "sentiment_analysis": "text_classification",
    "ner": "token_classification", "text2text": "text2text_generation",
})
# The image tasks of ViT, Swin, MAE and CLIP (issue 14, vision half): mf has every model of
# MindFormers' README matrix now.
TASKS.update({
    "image_classification": "mf_generate.vision_pipelines:ImageClassificationPipeline",
    "zero_shot_image_classification":
        "mf_generate.vision_pipelines:ZeroShotImageClassificationPipeline",
    "masked_image_modeling": "mf_generate.vision_pipelines:MaskedImageModelingPipeline",
    "contrastive_language_image_pretrain": "mf_generate.vision_pipelines:ContrastivePipeline",
})
NOT_YET = tuple(task for task in NOT_YET if task not in TASKS)
# Hugging Face's translation_xx_to_yy: T5's task prefix "translate English to German: ".
TRANSLATION_TASK = re.compile(r"translation_([a-z]{2})_to_([a-z]{2})")


def pipeline(task: str = TEXT_GENERATION, model: Any = None, tokenizer: Any = None,
             model_parallel: int = 1, **kwargs: Any):
    """A callable for `task`; `model` is a preset name, a model directory (ours or HF) or a
    built model; `tokenizer` defaults to the one stored beside the model (or its preset's).
    Keyword arguments are the task's settings (generation settings for the generating tasks,
    top_k for the classifiers, ...); a bad one fails before anything is loaded.

    `model_parallel` N > 1 (text generation, in each rank of a job of N ranks: mf launch or
    msrun) splits the model over the ranks (mf_generate.distributed): the same tokens."""
    tokenizer = kwargs.pop("processor", tokenizer)  # what the image tasks call it
    name, pipeline_class, kwargs = task_settings(task, kwargs)
    if model is None:
        raise GenerateConfigError("pipeline() needs model= (a preset name, a model directory "
                                  "or a model)")
    rank = None
    if model_parallel != 1:
        from mf_generate.distributed import join_ranks

        if name != TEXT_GENERATION or not isinstance(model, (str, os.PathLike)):
            raise GenerateConfigError("model_parallel splits a text-generation model given "
                                      "by name or directory (loaded after the ranks join)")
        rank = join_ranks(model_parallel)
    source = None
    if isinstance(model, (str, os.PathLike)):
        source = model
        model = pipeline_class.load_model(model)
    if rank is not None:
        from mf_generate.distributed import shard_for_generation

        model = shard_for_generation(model, model_parallel, rank)
    if tokenizer is None:  # an image task loads its processor (a tokenizer too, for CLIP)
        load = getattr(pipeline_class, "load_processor", _tokenizer_for)
        tokenizer = load(model, source)
    return pipeline_class(model, tokenizer, **kwargs)


def task_settings(task: str, settings: dict[str, Any]) -> tuple[str, type, dict[str, Any]]:
    """(task name, pipeline class, settings) with the settings checked (one-line errors)
    before anything loads; translation_xx_to_yy adds src_lang and tgt_lang."""
    name = resolve_task(task)
    pipeline_class = _class(TASKS[name])
    match = TRANSLATION_TASK.fullmatch(str(task).replace("-", "_"))
    if match:
        settings = {"src_lang": match[1], "tgt_lang": match[2], **settings}
    pipeline_class.check_settings(settings)
    return name, pipeline_class, settings


def resolve_task(task: str) -> str:
    """The task's name in TASKS, from any of its spellings; one-line errors otherwise."""
    key = str(task).replace("-", "_")
    key = TASK_ALIASES.get(key, key)
    if TRANSLATION_TASK.fullmatch(key):
        key = "translation"
    if key in TASKS:
        return key
    supported = ", ".join(f"'{t}'" for t in TASKS)
    if key in NOT_YET:
        raise UnsupportedTaskError(f"task '{task}' is not supported yet: mf has no model for it; "
                                   f"supported: {supported}")
    close = difflib.get_close_matches(key, [*TASKS, *TASK_ALIASES, *NOT_YET], n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise GenerateConfigError(f"'{task}' is not a pipeline task{hint} (supported: {supported})")


def _class(path: str) -> type:
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


class TaskSettings:
    """A pipeline's settings: `settings` (name -> default), each given to `pipeline()` or per
    call, checked with a did-you-mean before anything loads (`check_value` checks a value)."""

    task = ""
    settings: dict[str, Any] = {}

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        for key, value in settings.items():
            if key not in cls.settings:
                close = difflib.get_close_matches(key, list(cls.settings), n=1)
                hint = (f"; did you mean '{close[0]}'?" if close
                        else f"; allowed: {', '.join(cls.settings) or 'none'}")
                raise GenerateConfigError(f"'{key}' is not a {cls.task} setting{hint}")
            cls.check_value(key, value)

    @classmethod
    def check_value(cls, key: str, value: Any) -> None:
        """Raise GenerateConfigError for a bad value of setting `key`."""

    def options(self, call: dict[str, Any]) -> dict[str, Any]:
        """The pipeline's settings (`self.defaults`) with this call's on top."""
        self.check_settings(call)
        return {**self.defaults, **call}


def _tokenizer_for(model, source):
    name = str(source) if source is not None else getattr(model.config, "name", "")
    if not name:
        raise GenerateConfigError("pass tokenizer=: the model was built from a config, so "
                                  "there is no directory or preset to read a tokenizer from")
    return tokenizer_for(name)


def tokenizer_for(name_or_dir: str):
    """The tokenizer stored with a model: in its directory, or for a preset name in the
    preset's folder $MF_HOME/<name> (where its weights are), else mf-tokenize's preset."""
    from mf_models.auto import weights_directory
    from mf_models.errors import ModelConfigError
    from mf_tokenize import AutoTokenizer

    try:
        directory = weights_directory(name_or_dir)
    except ModelConfigError:
        directory = None
    if directory is not None and directory.is_dir():
        return AutoTokenizer.from_pretrained(directory)
    if directory is not None and not os.path.isdir(name_or_dir):
        # a preset: its canonical name (pangualpha_2_6_b is pangualpha_2_6b's folder)
        return AutoTokenizer.from_pretrained(directory.name)
    return AutoTokenizer.from_pretrained(name_or_dir)


def check_vocabulary(tokenizer, vocab_size: int) -> None:
    """A tokenizer with more ids than the model embeds would feed it impossible tokens (a
    model's vocabulary may be larger: padded for speed, as BLOOM's and GLM's are)."""
    size = len(tokenizer)
    if size > vocab_size:
        raise GenerateConfigError(
            f"the tokenizer has {size} tokens but the model's vocab_size is {vocab_size}: they "
            f"do not belong together (ids {vocab_size}..{size - 1} have no embedding)")


class TextGenerationPipeline:
    """Text in, text out: tokenize (batched, left padding), generate, decode."""

    task = TEXT_GENERATION

    @staticmethod
    def check_settings(settings: dict[str, Any]) -> None:
        GenerationConfig().replace(**settings)  # a bad setting fails before any loading

    @staticmethod
    def load_model(source):
        from mf_models import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(source)

    def __init__(self, model, tokenizer, **generate_kwargs: Any):
        check_vocabulary(tokenizer, model.config.vocab_size)
        self.model = model
        self.tokenizer = tokenizer
        self.generate_kwargs = generate_kwargs

    def __call__(self, inputs: str | list[str], streamer=None,
                 **generate_kwargs: Any) -> list[dict[str, list[str]]]:
        from mf_generate.generation import generate

        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise GenerateConfigError(f"a {self.task} pipeline takes a str or a list of str")
        ids = [self.tokenizer(t)["input_ids"] for t in self._prepare(texts)]
        config = GenerationConfig.from_model_config(self.model.config)
        config = config.replace(**{**self._token_ids(), **self.generate_kwargs,
                                   **generate_kwargs})
        out = generate(self.model, ids, config, streamer=streamer, return_dict=True)
        return [self._result(out, row) for row in range(len(texts))]

    def _prepare(self, texts: list[str]) -> list[str]:
        return texts

    def _result(self, out, row: int) -> dict[str, Any]:
        """MindFormers' shape: the prompt and its continuation, in a list."""
        real = out.sequences[row][out.attention_mask[row].astype(bool)]
        return {"text_generation_text": [self.tokenizer.decode(real, skip_special_tokens=True)]}

    def _token_ids(self) -> dict[str, Any]:
        """The tokenizer's EOS/pad ids, where it has them (they decide when a row stops)."""
        out = {}
        for name in ("eos_token_id", "pad_token_id", "bos_token_id"):
            value = getattr(self.tokenizer, name, None)
            if value is not None:
                out[name] = value
        return out
