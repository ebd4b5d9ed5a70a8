"""`pipeline(task="text_generation", model=..., tokenizer=...)`, MindFormers' inference entry.

    pipe = pipeline("text_generation", model="gpt2", max_length=50)
    pipe("I love Beijing, because", top_k=3)
    # [{'text_generation_text': ['I love Beijing, because ...']}]

The text includes the prompt, as MindFormers returns it. The image tasks (image
classification, zero-shot image classification, masked image modeling, CLIP's image-text
similarity) live in vision_pipelines.py. The other task names of MindFormers' model matrix are
known and refused until mf has their models.
"""

from __future__ import annotations

import difflib
import os
from typing import Any

from mf_generate.config import GenerationConfig
from mf_generate.errors import GenerateConfigError, UnsupportedTaskError

TEXT_GENERATION = "text_generation"
# The other tasks of MindFormers' README model matrix (BERT, T5).
NOT_YET = ("masked_language_modeling", "text_classification", "token_classification",
           "question_answering", "translation")
# The image tasks (ViT, Swin, MAE, CLIP): mf_generate.vision_pipelines.
VISION_TASKS = ("image_classification", "zero_shot_image_classification",
                "masked_image_modeling", "contrastive_language_image_pretrain")


def pipeline(task: str = TEXT_GENERATION, model: Any = None, tokenizer: Any = None,
             **generate_kwargs: Any):
    """A callable for `task`; `model` is a preset name, a model directory (ours or HF) or a
    built model; `tokenizer` defaults to the one stored beside the model (or its preset's).
    Keyword arguments (max_length, top_k, do_sample, ...) are generation defaults; for an
    image task, `processor=` and `batch_size=` (see vision_pipelines.py)."""
    check_task(task)
    if task in VISION_TASKS:
        from mf_generate.vision_pipelines import vision_pipeline

        return vision_pipeline(task, model, **generate_kwargs)
    if model is None:
        raise GenerateConfigError("pipeline() needs model= (a preset name, a model directory "
                                  "or a model)")
    GenerationConfig().replace(**generate_kwargs)  # a bad setting fails before any loading
    source = None
    if isinstance(model, (str, os.PathLike)):
        from mf_models import AutoModelForCausalLM

        source = model
        model = AutoModelForCausalLM.from_pretrained(model)
    if tokenizer is None:
        tokenizer = _tokenizer_for(model, source)
    return TextGenerationPipeline(model, tokenizer, **generate_kwargs)


def check_task(task: str) -> None:
    supported = [TEXT_GENERATION, *VISION_TASKS]
    if task in supported:
        return
    listed = ", ".join(f"'{t}'" for t in supported)
    if task in NOT_YET:
        raise UnsupportedTaskError(f"task '{task}' is not supported yet: mf has no model for it; "
                                   f"supported: {listed}")
    close = difflib.get_close_matches(str(task), [*supported, *NOT_YET], n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise GenerateConfigError(f"'{task}' is not a pipeline task{hint} (supported: {listed})")


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
            raise GenerateConfigError("a text_generation pipeline takes a str or a list of str")
        ids = [self.tokenizer(t)["input_ids"] for t in texts]
        config = GenerationConfig.from_model_config(self.model.config)
        config = config.replace(**{**self._token_ids(), **self.generate_kwargs,
                                   **generate_kwargs})
        out = generate(self.model, ids, config, streamer=streamer, return_dict=True)
        results = []
        for row in range(len(texts)):
            real = out.sequences[row][out.attention_mask[row].astype(bool)]
            text = self.tokenizer.decode(real, skip_special_tokens=True)
            results.append({"text_generation_text": [text]})
        return results

    def _token_ids(self) -> dict[str, Any]:
        """The tokenizer's EOS/pad ids, where it has them (they decide when a row stops)."""
        out = {}
        for name in ("eos_token_id", "pad_token_id", "bos_token_id"):
            value = getattr(self.tokenizer, name, None)
            if value is not None:
                out[name] = value
        return out
