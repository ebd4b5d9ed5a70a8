"""What every model shares, decoder or not: its config, weights in and out, building by name.

    Model.from_config("bert_debug")            # random init, never reads weights
    Model.from_pretrained("path/or/preset")    # ours or a Hugging Face directory
    model.save_pretrained("out/")              # config.json + config.yaml + model.safetensors

`CausalLM` (the decoders' step API) and the encoder/encoder-decoder families build on this.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from mindspore import Tensor, nn

from mf_models.configs.base import ModelConfig
from mf_models.errors import ModelConfigError
from mf_models.outputs import ModelOutput


class PreTrainedModel(nn.Cell):
    """Base of every model class. Subclasses set `config_class` and end `__init__` with
    `self.load_checkpoint_from_config()` (MindFormers loads `checkpoint_name_or_path` there)."""

    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    # Regexes of checkpoint tensors the model recomputes (skipped on load, never an error).
    derived_buffers: ClassVar[tuple[str, ...]] = ()
    # Regexes of this class's own task-head parameters. A checkpoint of the bare model or of
    # another head lacks them; they then keep their random init (reported in `load_report`),
    # as Hugging Face starts a fine-tuning head.
    fresh_parameters: ClassVar[tuple[str, ...]] = ()
    # Regexes of checkpoint tensors this class has no place for: the other heads of its family
    # (a pre-training checkpoint's MLM head when loading a classifier). Dropped and reported.
    unused_checkpoint_tensors: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: ModelConfig, seed: int = 0):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise ModelConfigError(f"{type(self).__name__} needs a {self.config_class.__name__}, "
                                   f"got {type(config).__name__}")
        self.config = config
        self.rng = np.random.default_rng(seed)

    def check_token_ids(self, ids) -> None:
        """One-line errors for ids MindSpore would fail on with a C++ stack."""
        array = ids.asnumpy() if isinstance(ids, Tensor) else np.asarray(ids)
        length = array.shape[-1] if array.ndim else 0
        if length > self.config.max_positions:
            raise ModelConfigError(
                f"sequence length {length} is longer than the model's "
                f"seq_length({self.config.max_positions})")
        if array.size and (array.min() < 0 or array.max() >= self.config.vocab_size):
            bad = int(array.min() if array.min() < 0 else array.max())
            raise ModelConfigError(
                f"token id {bad} is outside the vocabulary [0, {self.config.vocab_size})")

    # ---- building and weights ---------------------------------------------------------------
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


class TaskModel(PreTrainedModel):
    """A model whose call returns Hugging Face's output object (`out.logits`, `out.loss`).

    `construct` returns a tuple (a graph cannot build Python objects), in the field order of
    `output_class`, the loss first when a label argument is given. `__call__` checks the inputs
    on the host (one-line errors; graph mode cannot raise ours) and wraps the tuple.
    `forward_function()` is the same forward compiled with `ms.jit`: once per input shape (the
    loss too when a label argument is given, as for a compiled evaluation).
    """

    output_class: ClassVar[type] = ModelOutput
    # The keyword arguments that carry training targets (the loss is returned when one is set).
    label_names: ClassVar[tuple[str, ...]] = ("labels",)

    def check_inputs(self, arguments: dict[str, Any]) -> None:
        """One-line errors for bad inputs, by argument name (ids, masks, labels)."""
        if arguments.get("input_ids") is not None:
            self.check_token_ids(arguments["input_ids"])

    def __call__(self, *args, **kwargs):
        args = tuple(_as_tensor(a) for a in args)  # numpy arrays are welcome too
        kwargs = {k: _as_tensor(v) for k, v in kwargs.items()}
        arguments = self._named(args, kwargs)
        self.check_inputs(arguments)
        out = super().__call__(*args, **kwargs)
        return self.output_class.from_tuple(out if isinstance(out, tuple) else (out,),
                                            self._with_loss(arguments))

    def _with_loss(self, arguments: dict[str, Any]) -> bool:
        """Whether `construct` returns a loss: a label argument was given (MAE names its
        pixels: its loss is always computed)."""
        return any(arguments.get(name) is not None for name in self.label_names)

    def forward_function(self):
        """The forward compiled once per input shape: `f(input_ids, ...)` with numpy arrays or
        Tensors, in `construct`'s order; returns the output object."""
        compiled = self.__dict__.get("_forward_function")
        if compiled is None:
            import mindspore as ms

            jitted = ms.jit(self.construct)

            def compiled(*arrays):
                tensors = [_as_tensor(a) for a in arrays]
                arguments = self._named(tensors, {})
                self.check_inputs(arguments)
                out = jitted(*tensors)
                return self.output_class.from_tuple(
                    out if isinstance(out, tuple) else (out,), self._with_loss(arguments))

            self.__dict__["_forward_function"] = compiled
        return compiled

    def _named(self, args: tuple, kwargs: dict) -> dict[str, Any]:
        import inspect

        names = list(inspect.signature(self.construct).parameters)
        return {**dict(zip(names, args, strict=False)), **kwargs}  # defaults not given


def _as_tensor(x):
    if not isinstance(x, (np.ndarray, list)):
        return x
    array = np.asarray(x)
    if np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.int32)
    return Tensor(array)
