"""`GenerationConfig`: how to decode, kept apart from the model config (no MindSpore here).

Field names and defaults are Hugging Face's and MindFormers' (both: max_length 20, top_k 50,
top_p 1.0, temperature 1.0, greedy unless do_sample). `from_model_config` reads the same keys
from a MindFormers `model_config` (where the total length is called `max_decode_length`).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mf_generate.errors import GenerateConfigError

# A MindFormers model_config key -> our field, where the names differ.
MODEL_CONFIG_KEYS = {"max_decode_length": "max_length"}


def _check_names(cls: type) -> type:
    """Make `cls(**kwargs)` (and so `replace`) refuse an unknown keyword with the library's
    error and a did-you-mean, where the dataclass's own __init__ raises a bare TypeError."""
    init = cls.__init__
    names = [f.name for f in dataclasses.fields(cls)]

    def checked_init(self, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise GenerateConfigError(f"GenerationConfig takes at most {len(names)} "
                                      f"positional values, got {len(args)}; name them")
        for key in kwargs:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = (f"; did you mean '{close[0]}'?" if close
                        else f"; allowed: {', '.join(names)}")
                raise GenerateConfigError(f"'{key}' is not a generation setting" + hint)
        init(self, *args, **kwargs)

    checked_init.__doc__ = init.__doc__
    cls.__init__ = checked_init
    return cls


@_check_names
@dataclasses.dataclass(frozen=True)
class GenerationConfig:
    """Decoding settings. Every field is validated at construction (one-line errors).

    max_length: prompt + new tokens; max_new_tokens (when set) wins over it, as in HF.
    do_sample: False is greedy (temperature, top_k, top_p are then unused); True samples
        from softmax(logits / temperature) restricted to the top_k tokens (0: no limit) and
        to the smallest set whose probability reaches top_p.
    repetition_penalty: CTRL's penalty (Keskar et al. 2019), as HF applies it: a seen token's
        logit is divided by it when positive, multiplied when negative; 1.0 is off.
    eos_token_id: an id or a list of ids; a row stops at the first one it produces.
    use_past: True decodes over the static KV cache; False recomputes the whole sequence.
    seed: the numpy seed of sampling; the same seed gives the same sample.
    """

    max_length: int = 20
    max_new_tokens: int | None = None
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    pad_token_id: int | None = None
    # Encoder-decoders (T5): the decoder's first token; default: the model config's.
    decoder_start_token_id: int | None = None
    use_past: bool = True
    seed: int | None = None

    def __post_init__(self) -> None:
        _positive_int("max_length", self.max_length)
        if self.max_new_tokens is not None:
            _positive_int("max_new_tokens", self.max_new_tokens)
        for name in ("do_sample", "use_past"):
            if not isinstance(getattr(self, name), bool):
                raise GenerateConfigError(f"{name}={getattr(self, name)!r} must be True or False")
        _number("temperature", self.temperature)
        if self.do_sample and self.temperature <= 0:
            raise GenerateConfigError(
                f"temperature={self.temperature!r} must be > 0 when sampling (do_sample=True); "
                "for the most likely token use do_sample=False (greedy)")
        if not _is_int(self.top_k) or self.top_k < 0:
            raise GenerateConfigError(f"top_k={self.top_k!r} must be an integer >= 0 "
                                      "(0 keeps every token)")
        _number("top_p", self.top_p)
        if not 0 < self.top_p <= 1:
            raise GenerateConfigError(f"top_p={self.top_p!r} must be in (0, 1] "
                                      "(1.0 keeps every token)")
        _number("repetition_penalty", self.repetition_penalty)
        if self.repetition_penalty <= 0:
            raise GenerateConfigError(f"repetition_penalty={self.repetition_penalty!r} must be "
                                      "> 0 (1.0 is no penalty)")
        for name in ("bos_token_id", "pad_token_id", "decoder_start_token_id", "seed"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 0):
                raise GenerateConfigError(f"{name}={value!r} must be None or an integer >= 0")
        eos = self.eos_token_id
        if eos is not None:
            ids = [eos] if _is_int(eos) else eos
            if (not isinstance(ids, (list, tuple)) or not ids
                    or not all(_is_int(i) and i >= 0 for i in ids)):
                raise GenerateConfigError(f"eos_token_id={eos!r} must be None, an integer >= 0 "
                                          "or a non-empty list of them")

    # ---- derived values ---------------------------------------------------------------------
    @property
    def eos_ids(self) -> tuple[int, ...]:
        """Every end-of-sequence id (eos_token_id may be one id or a list)."""
        eos = self.eos_token_id
        if eos is None:
            return ()
        return (int(eos),) if _is_int(eos) else tuple(int(i) for i in eos)

    @property
    def fill_id(self) -> int:
        """The id written after a row's EOS and on the left of shorter prompts: pad, else the
        first EOS (HF's fallback), else 0."""
        if self.pad_token_id is not None:
            return self.pad_token_id
        return self.eos_ids[0] if self.eos_ids else 0

    def new_tokens_for(self, prompt_length: int) -> int:
        """How many tokens to generate after a prompt of `prompt_length` tokens."""
        if self.max_new_tokens is not None:
            return self.max_new_tokens
        new = self.max_length - prompt_length
        if new < 1:
            raise GenerateConfigError(
                f"max_length({self.max_length}) leaves no room after the prompt of "
                f"{prompt_length} tokens: {self.max_length} - {prompt_length} = {new}; "
                "raise max_length or set max_new_tokens")
        return new

    # ---- construction -----------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def replace(self, **changes: Any) -> GenerationConfig:
        """A copy with `changes` applied (validated; unknown names get a did-you-mean)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_model_config(cls, config: Any, **overrides: Any) -> GenerationConfig:
        """The generation keys of a model config: a MindFormers `model_config` mapping (from a
        yaml) or a model config object. Keys it lacks keep our defaults.

        For a config object only values that differ from its class default count, so a
        `ModelConfig`'s default `use_past=False` (a training default) does not turn the KV
        cache off; a mapping's keys count whenever present (MindFormers' yaml semantics).
        """
        values = _explicit_values(config)
        picked: dict[str, Any] = {}
        names = set(cls.field_names())
        for key, value in values.items():
            key = MODEL_CONFIG_KEYS.get(key, key)
            if key in names and value is not None:
                picked[key] = value
        if "max_length" in picked and "max_new_tokens" in picked:
            picked.pop("max_length")  # max_new_tokens wins, as in HF
        return cls(**picked).replace(**overrides)

    @classmethod
    def from_pretrained(cls, directory: str | Path, **overrides: Any) -> GenerationConfig:
        """From a model directory: HF's `generation_config.json` if present, else the
        generation keys of its `config.json` / `config.yaml`."""
        directory = Path(directory)
        for name in ("generation_config.json", "config.json"):
            path = directory / name
            if path.is_file():
                return cls.from_model_config(_read_json(path), **overrides)
        path = directory / "config.yaml"
        if path.is_file():
            import yaml
            from mf_models.safe_yaml import safe_load

            try:
                data = safe_load(path.read_text(encoding="utf-8"), str(path)) or {}
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
                first = str(exc).partition("\n")[0]
                raise GenerateConfigError(f"cannot read {path}: {first}") from None
            model = data.get("model", data) if isinstance(data, dict) else {}
            if isinstance(model, dict) and isinstance(model.get("model_config"), dict):
                model = model["model_config"]
            return cls.from_model_config(model if isinstance(model, dict) else {}, **overrides)
        return cls(**overrides)


def _explicit_values(config: Any) -> dict[str, Any]:
    if config is None:
        return {}
    if isinstance(config, Mapping):
        return dict(config)
    if dataclasses.is_dataclass(config):
        out = {}
        for field in dataclasses.fields(config):
            value = getattr(config, field.name)
            default = (field.default if field.default is not dataclasses.MISSING
                       else dataclasses.MISSING)
            if default is dataclasses.MISSING or value != default or field.name.endswith(
                    "_token_id"):
                # Token ids are facts of the vocabulary: take them even at their defaults.
                out[field.name] = value
        return out
    return {k: v for k, v in vars(config).items() if not k.startswith("_")}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GenerateConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise GenerateConfigError(f"{path} does not hold a JSON object")
    return data


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _positive_int(name: str, value: Any) -> None:
    if not _is_int(value) or value < 1:
        raise GenerateConfigError(f"{name}={value!r} must be an integer >= 1")


def _number(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:
        raise GenerateConfigError(f"{name}={value!r} must be a number")
