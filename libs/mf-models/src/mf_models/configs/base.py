"""What every family config shares: presets by name, HF `config.json` import, yaml/json I/O.

A family module defines one dataclass (MindFormers' field names) subclassing `ModelConfig`, a
module-level `PRESETS` table and the class attributes below. Nothing here imports MindSpore:
`mf --help`, `mf parallel check` and mf-tokenize users read configs without paying for it.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from mf_models.errors import ModelConfigError, UnknownModelError

DTYPES = ("float32", "float16", "bfloat16")
CONFIG_JSON = "config.json"
CONFIG_YAML = "config.yaml"


def check_heads_divide(heads_name: str, heads: int, width_name: str, width: int) -> None:
    """A width must split evenly into attention heads; the error shows the division."""
    if width % heads:
        raise ModelConfigError(f"{heads_name}({heads}) must divide {width_name}({width}): "
                               f"{width} / {heads} = {width / heads:g}")


def did_you_mean(name: str, choices: list[str]) -> str:
    """`; did you mean 'x'?` for the closest choice, or the list of choices if none is close."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; supported: {', '.join(sorted(choices))}"


@dataclasses.dataclass
class ModelConfig:
    """Fields every family has, named as in MindFormers' configs."""

    # The family's registry name ("gpt2", "llama", "bloom"); set by each subclass.
    family: ClassVar[str] = ""
    # Hugging Face `model_type` of the same architecture, when transformers has one.
    hf_model_type: ClassVar[str | None] = None
    # HF config.json key -> our field, for the keys whose names differ.
    hf_key_map: ClassVar[dict[str, str]] = {}
    # Other spellings MindFormers' own yaml files use for our fields.
    aliases: ClassVar[dict[str, str]] = {}
    # name -> dict of field values; filled by the family module.
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    # Other names of a preset (MindFormers' model cards say `gpt2_small` for `gpt2`).
    preset_aliases: ClassVar[dict[str, str]] = {}
    # The sharding plan: parameter-name glob -> one mesh axis name (or None) per tensor dim.
    # mf-parallel resolves it; the model code never mentions ranks.
    sharding_plan: ClassVar[dict[str, tuple[str | None, ...]]] = {}
    # What the memory estimate counts per layer (mf_parallel.memory): the kind of stack
    # (decoder, encoder, encoder_decoder, vision) and whether the MLP is gated (SwiGLU keeps
    # four ffn-wide tensors for backward, a GELU MLP two).
    memory_kind: ClassVar[str] = "decoder"
    gated_mlp: ClassVar[bool] = False
    # Whether heads are hidden_size / num_heads wide (False where a family sets its own head
    # width, as T5's d_kv).
    heads_split_hidden: ClassVar[bool] = True

    seq_length: int = 1024
    vocab_size: int = 32000
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    compute_dtype: str = "float32"
    param_init_type: str = "float32"
    layernorm_compute_type: str = "float32"
    softmax_compute_type: str = "float32"
    use_past: bool = False
    checkpoint_name_or_path: str = ""
    # MindFormers' parameter-efficient fine-tuning settings (`pet_type: lora`, `lora_rank`,
    # ...), carried by presets such as llama_7b_lora and applied by mf-train, not here.
    pet_config: dict[str, Any] | None = None
    initializer_range: float = 0.02
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2
    pad_token_id: int | None = 0
    ignore_token_id: int = -100
    # The preset this config was built from ("" if none): where `from_pretrained` looks.
    name: str = ""

    # ---- validation -------------------------------------------------------------------------
    def __post_init__(self) -> None:
        self._check_sizes()
        if self.pet_config is not None and not isinstance(self.pet_config, Mapping):
            raise ModelConfigError(f"pet_config={self.pet_config!r} must be a mapping "
                                   "(pet_type: lora, lora_rank: 8, ...) or None")
        self._check_dtypes()

    def _check_sizes(self) -> None:
        """Positive sizes, heads that split the width (a family with other geometry, as Swin's
        per-stage heads, overrides this)."""
        self._check_positive("seq_length", "vocab_size", "hidden_size", "num_layers", "num_heads")
        if self.heads_split_hidden:
            check_heads_divide("num_heads", self.num_heads, "hidden_size", self.hidden_size)

    def _check_positive(self, *fields: str) -> None:
        for field in fields:
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelConfigError(f"{field}={value!r} must be a positive integer")

    def _check_dtypes(self) -> None:
        for field in ("compute_dtype", "param_init_type", "layernorm_compute_type",
                      "softmax_compute_type"):
            value = getattr(self, field)
            if value not in DTYPES:
                raise ModelConfigError(f"{field}={value!r} is not one of {', '.join(DTYPES)}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def kv_heads(self) -> int:
        """Key/value heads (grouped-query attention); equal to num_heads unless a family says."""
        return self.num_heads

    @property
    def ffn_hidden_size(self) -> int:
        raise NotImplementedError

    def parameter_shapes(self) -> list[tuple[str, tuple[int, ...]]] | None:
        """Every parameter's name and shape, in the built model's order (configs/shapes.py),
        or None for a family that does not list them (its `parameter_count` is a formula)."""
        return None

    @property
    def parameter_count(self) -> int:
        """Number of weights, from the config alone (no model is built)."""
        shapes = self.parameter_shapes()
        if shapes is None:
            raise NotImplementedError
        from mf_models.configs.shapes import numel

        return numel(shapes)

    @property
    def max_positions(self) -> int:
        """The longest sequence the model accepts (positions table, cache length)."""
        return self.seq_length

    # ---- construction -----------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], **overrides: Any) -> ModelConfig:
        """Build from our own dict or a MindFormers `model_config`; unknown keys are dropped."""
        names = cls.field_names()
        kwargs: dict[str, Any] = {}
        for key, value in {**values, **overrides}.items():
            key = cls.aliases.get(key, key)
            if key in names:
                kwargs[key] = value
        return cls(**kwargs)

    @classmethod
    def from_hf_dict(cls, hf: Mapping[str, Any]) -> ModelConfig:
        """Build from a Hugging Face `config.json` dict (unknown keys dropped)."""
        mapped = {cls.hf_key_map.get(key, key): value for key, value in hf.items()}
        mapped.pop("name", None)  # HF's `name_or_path` style keys are not our preset name
        return cls.from_dict(cls._from_hf_extra(hf, mapped))

    @classmethod
    def _from_hf_extra(cls, hf: Mapping[str, Any], mapped: dict[str, Any]) -> dict[str, Any]:
        """Family hook for HF values that need more than a rename."""
        return mapped

    def to_hf_dict(self) -> dict[str, Any]:
        """The HF `config.json` of this config (for export)."""
        raise NotImplementedError

    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> ModelConfig:
        """A preset by its MindFormers name, e.g. `LlamaConfig.from_name("llama_7b")`."""
        key = cls.preset_aliases.get(name.lower(), name.lower())
        if key not in cls.presets:
            raise UnknownModelError(
                f"'{name}' is not a supported {cls.family} model"
                + did_you_mean(key, [*cls.presets, *cls.preset_aliases])
            )
        return cls.from_dict({**cls.presets[key], "name": key}, **overrides)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike) -> ModelConfig:
        """A preset name, a model directory (ours or HF) or a run/model yaml file."""
        from mf_models.registry import load_config

        config = load_config(name_or_path)
        if not isinstance(config, cls) and cls is not ModelConfig:
            raise ModelConfigError(
                f"'{name_or_path}' is a {config.family} model, not {cls.family}"
            )
        return config

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    # ---- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = {"type": type(self).__name__, "model_type": self.family}
        out.update(dataclasses.asdict(self))
        return out

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write `config.json` and `config.yaml` (MindFormers' `model: model_config:` shape)."""
        import yaml
        from mf_parallel.atomic import atomic_write_text  # numpy comes with it: load on use

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        data = self.to_dict()
        atomic_write_text(directory / CONFIG_JSON,
                          json.dumps(data, indent=2, sort_keys=True) + "\n")
        yaml_text = yaml.safe_dump({"model": {"model_config": data}}, sort_keys=False)
        atomic_write_text(directory / CONFIG_YAML, yaml_text)
