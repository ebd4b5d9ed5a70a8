"""What every model shares, whatever its task: the config it was built from, building from a
config or a preset name, weights in and out (`from_pretrained`, `save_pretrained`,
`state_dict`), and MindFormers' load-on-construction (`checkpoint_name_or_path`).

`CausalLM` (models/base.py) adds the step API and the LM loss; `EncoderModel` (below) is the
base of the encoder families (ViT, Swin, MAE, CLIP), whose outputs carry Hugging Face's field
names, and `ImageClassifier` the shared head of ViT and Swin.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from mindspore import dtype as mstype
from mindspore import nn, ops

from mf_models.configs.base import ModelConfig
from mf_models.errors import ModelConfigError
from mf_models.modules.vision import (
    check_class_labels,
    check_pixel_values,
    classification_loss,
)
from mf_models.outputs import ImageClassifierOutput, ModelOutput


class PreTrainedModel(nn.Cell):
    """Base of every model class. Subclasses set `config_class`."""

    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    # Regexes of checkpoint tensors the model recomputes (skipped on load, never an error).
    derived_buffers: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: ModelConfig, seed: int = 0):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise ModelConfigError(f"{type(self).__name__} needs a {self.config_class.__name__}, "
                                   f"got {type(config).__name__}")
        self.config = config
        self.rng = np.random.default_rng(seed)

    def load_checkpoint_from_config(self) -> None:
        """MindFormers' behaviour: `Model(config)` with `checkpoint_name_or_path` set loads it
        (a preset name, a directory, or a .safetensors/.ckpt file). Families call this last in
        `__init__`."""
        source = self.config.checkpoint_name_or_path
        if source:
            from mf_models.auto import read_checkpoint

            self.load_report = self.load_state_dict(read_checkpoint(source, self.config))

    @classmethod
    def from_config(cls, config: ModelConfig | str, seed: int = 0,
                    **overrides: Any) -> PreTrainedModel:
        """Random init from a config or a preset name (never reads weights)."""
        if isinstance(config, str):
            config = cls.config_class.from_name(config, **overrides)
        elif overrides:
            config = config.replace(**overrides)
        return cls(config, seed=seed)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, strict: bool = True,
                        **overrides: Any) -> PreTrainedModel:
        """Weights from our directory, a HF directory, or a preset under $MF_HOME/<name>."""
        from mf_models.auto import load_pretrained

        return load_pretrained(name_or_path, model_class=cls, strict=strict, **overrides)

    def save_pretrained(self, directory: str | os.PathLike, fmt: str = "safetensors") -> Path:
        """Write config.json + config.yaml + model.safetensors (or model.ckpt for fmt="ckpt")."""
        from mf_models.weights.io import save_weights

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.save_pretrained(directory)
        return save_weights(self.state_dict(), directory, fmt)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameter name (MindFormers') -> numpy array, cache buffers excluded.

        Copies: `asnumpy()` shares the parameter's memory, which training then overwrites.
        """
        return {p.name: p.asnumpy().copy() for p in self.get_parameters()}

    def load_state_dict(self, weights: dict[str, np.ndarray], strict: bool = True) -> list[str]:
        """Copy arrays into the parameters; see `weights.io.check_names_and_shapes`."""
        from mf_models.weights.io import assign_weights

        return assign_weights(self, weights, strict)

    def num_parameters(self) -> int:
        return int(sum(np.prod(p.shape) for p in self.get_parameters()))


class EncoderModel(PreTrainedModel):
    """A model whose `construct` returns a tuple (what a compiled caller such as a train step
    gets) and whose call names it with Hugging Face's fields (`output_class`).

    A family writes `construct` and `prepare(*args, **kwargs) -> (construct arguments, names of
    the fields construct returns)`, which checks what the caller handed in and gives one-line
    errors before MindSpore would fail with a C++ stack.
    """

    output_class: ClassVar[type[ModelOutput]] = ModelOutput

    def prepare(self, *args: Any, **kwargs: Any) -> tuple[tuple, tuple[str, ...]]:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> ModelOutput:
        inputs, present = self.prepare(*args, **kwargs)
        return self.output_class.from_tuple(super().__call__(*inputs), present)

    def jitted(self, method: str = "construct"):
        """`ms.jit` of one of the model's methods (e.g. CLIP's `encode_text`), made once: it
        compiles once per input shape, so batch inputs to a few fixed sizes."""
        import mindspore as ms

        memo = self.__dict__.setdefault("_jitted", {})
        if method not in memo:
            memo[method] = ms.jit(getattr(self, method))
        return memo[method]

    def compiled(self):
        """The model's call with `construct` compiled (`jitted`): same checks, same output."""
        jitted = self.jitted()

        def run(*args: Any, **kwargs: Any) -> ModelOutput:
            inputs, present = self.prepare(*args, **kwargs)
            return self.output_class.from_tuple(jitted(*inputs), present)

        return run


class ImageClassifier(EncoderModel):
    """Pooled image features -> `head` (classes), with Hugging Face's classification loss.
    ViT and Swin write `features(pixel_values) -> (B, width)` and build `self.head`."""

    output_class = ImageClassifierOutput

    def features(self, pixel_values):
        raise NotImplementedError

    def construct(self, pixel_values, labels=None):
        logits = ops.cast(self.head(self.features(pixel_values)), mstype.float32)  # (B, classes)
        if labels is None:
            return (logits,)
        cfg = self.config
        return classification_loss(logits, labels, cfg.num_labels, cfg.ignore_token_id), logits

    def prepare(self, pixel_values, labels=None):
        cfg = self.config
        pixels = check_pixel_values(pixel_values, cfg.num_channels, cfg.image_size)
        if labels is None:
            return (pixels,), ("logits",)
        labels = check_class_labels(labels, cfg.num_labels, cfg.ignore_token_id)
        if labels.shape[0] != pixels.shape[0]:
            raise ModelConfigError(f"{labels.shape[0]} labels for {pixels.shape[0]} images: "
                                   "give one label per image")
        return (pixels, labels), ("loss", "logits")
