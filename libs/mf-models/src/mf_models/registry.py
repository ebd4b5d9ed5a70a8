"""The families: which config, model class and HF name table make each one.

Adding a family is one entry in `FAMILIES` (plus its config module, model module and name
table). Everything is named by import path so this module, like the configs, loads no MindSpore.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from pathlib import Path
from typing import Any

from mf_models.configs.base import CONFIG_JSON, CONFIG_YAML, ModelConfig, did_you_mean
from mf_models.errors import ModelConfigError, UnknownModelError


@dataclasses.dataclass(frozen=True)
class Family:
    """How to build one architecture family. Paths are `module:attribute`."""

    name: str
    config: str
    # Model classes by MindFormers' class name; the first is what AutoModelForCausalLM builds.
    models: tuple[str, ...]
    # Module holding `hf_to_mf(...)` and `mf_to_hf(...)`; None if transformers has no twin.
    hf_mapping: str | None = None

    def config_class(self) -> type[ModelConfig]:
        return _resolve(self.config)

    def model_class(self, name: str | None = None) -> type:
        if name is None:
            return _resolve(self.models[0])
        for path in self.models:
            if path.rsplit(":", 1)[1] == name:
                return _resolve(path)
        raise ModelConfigError(f"'{name}' is not a {self.name} model class; "
                               f"supported: {', '.join(p.rsplit(':', 1)[1] for p in self.models)}")

    def model_class_name(self) -> str:
        """The default model class's name, without importing it (no MindSpore)."""
        return self.models[0].rsplit(":", 1)[1]

    def mapping(self):
        if self.hf_mapping is None:
            raise ModelConfigError(f"{self.name} has no Hugging Face counterpart to convert")
        return importlib.import_module(self.hf_mapping)


FAMILIES: dict[str, Family] = {
    "gpt2": Family("gpt2", "mf_models.configs.gpt2:GPT2Config",
                   ("mf_models.models.gpt2:GPT2LMHeadModel",), "mf_models.weights.hf_gpt2"),
    "llama": Family("llama", "mf_models.configs.llama:LlamaConfig",
                    ("mf_models.models.llama:LlamaForCausalLM",), "mf_models.weights.hf_llama"),
    "bloom": Family("bloom", "mf_models.configs.bloom:BloomConfig",
                    ("mf_models.models.bloom:BloomLMHeadModel",), "mf_models.weights.hf_bloom"),
    "glm": Family("glm", "mf_models.configs.glm:GLMConfig",
                  ("mf_models.models.glm:GLMForConditionalGeneration",
                   "mf_models.models.glm:GLMChatModel")),
    "glm2": Family("glm2", "mf_models.configs.glm2:ChatGLM2Config",
                   ("mf_models.models.glm2:ChatGLM2ForConditionalGeneration",)),
    "pangualpha": Family("pangualpha", "mf_models.configs.pangualpha:PanguAlphaConfig",
                         ("mf_models.models.pangualpha:PanguAlphaHeadModel",)),
}
# BERT: one config, a class per task head; a config's `architecture` picks the class.
FAMILIES["bert"] = Family(
    "bert", "mf_models.configs.bert:BertConfig",
    tuple(f"mf_models.models.bert:{name}" for name in (
        "BertForMaskedLM", "BertModel", "BertForSequenceClassification",
        "BertForTokenClassification", "BertForQuestionAnswering")),
    "mf_models.weights.hf_bert")

# T5: the encoder-decoder (its step API is in models/t5.py).
FAMILIES["t5"] = Family("t5", "mf_models.configs.t5:T5Config",
                        ("mf_models.models.t5:T5ForConditionalGeneration",),
                        "mf_models.weights.hf_t5")

# The image families: encoders with a task head (not causal LMs).
FAMILIES["vit"] = Family("vit", "mf_models.configs.vit:ViTConfig",
                         ("mf_models.models.vit:ViTForImageClassification",),
                         "mf_models.weights.hf_vit")
FAMILIES["swin"] = Family("swin", "mf_models.configs.swin:SwinConfig",
                          ("mf_models.models.swin:SwinForImageClassification",),
                          "mf_models.weights.hf_swin")
FAMILIES["mae"] = Family("mae", "mf_models.configs.mae:ViTMAEConfig",
                         ("mf_models.models.mae:ViTMAEForPreTraining",),
                         "mf_models.weights.hf_mae")
FAMILIES["clip"] = Family("clip", "mf_models.configs.clip:CLIPConfig",
                          ("mf_models.models.clip:CLIPModel",), "mf_models.weights.hf_clip")

# Hugging Face `model_type` -> our family.
HF_MODEL_TYPES = {"gpt2": "gpt2", "llama": "llama", "bloom": "bloom"}
HF_MODEL_TYPES["chatglm"] = "glm"  # THUDM ChatGLM-6B and ChatGLM2-6B: see GLMConfig
HF_MODEL_TYPES["bert"] = "bert"
HF_MODEL_TYPES["t5"] = "t5"
HF_MODEL_TYPES.update(vit="vit", swin="swin", vit_mae="mae", clip="clip")


def _resolve(path: str) -> Any:
    module, attr = path.split(":")
    return getattr(importlib.import_module(module), attr)


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise UnknownModelError(f"'{name}' is not a model family" + did_you_mean(name, [*FAMILIES]))
    return FAMILIES[name]


def preset_names() -> list[str]:
    """Every preset name (aliases included), sorted."""
    names: list[str] = []
    for fam in FAMILIES.values():
        cls = fam.config_class()
        names += [*cls.presets, *cls.preset_aliases]
    return sorted(names)


def family_of_preset(name: str) -> Family | None:
    key = name.lower()
    for fam in FAMILIES.values():
        cls = fam.config_class()
        if key in cls.presets or key in cls.preset_aliases:
            return fam
    return None


def family_of_config(config: ModelConfig) -> Family:
    return family(type(config).family)


def preset_config(name: str, **overrides: Any) -> ModelConfig:
    """The config of a preset, e.g. `preset_config("llama_7b")`; one-line error if unknown."""
    fam = family_of_preset(name)
    if fam is None:
        raise UnknownModelError(
            f"'{name}' is not a supported model" + did_you_mean(name.lower(), preset_names())
        )
    return fam.config_class().from_name(name, **overrides)


def mf_home() -> Path:
    """Where preset weights (and mf-tokenize's tokenizer files) live: $MF_HOME or ~/.cache/mf."""
    return Path(os.environ.get("MF_HOME", "~/.cache/mf")).expanduser()


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Our config.json / a MindFormers model_config / an HF config.json, told apart by keys."""
    type_name = data.get("type")
    if isinstance(type_name, str):  # ours or MindFormers': `type: LlamaConfig`
        for fam in FAMILIES.values():
            cls = fam.config_class()
            if cls.__name__.lower() == type_name.lower():
                return cls.from_dict(data)
        raise UnknownModelError(
            f"config type '{type_name}' is not supported"
            + did_you_mean(type_name, [f.config_class().__name__ for f in FAMILIES.values()])
        )
    model_type = data.get("model_type")
    if model_type in HF_MODEL_TYPES:
        return family(HF_MODEL_TYPES[model_type]).config_class().from_hf_dict(data)
    if model_type in FAMILIES:
        return family(model_type).config_class().from_dict(data)
    raise ModelConfigError(
        f"cannot tell the model family of this config (model_type={model_type!r}, "
        f"type={type_name!r}); supported model_type: {', '.join(sorted(HF_MODEL_TYPES))}"
    )


def load_config(name_or_path: str | os.PathLike) -> ModelConfig:
    """A preset name, a model directory, a config.json, or a run/model yaml file."""
    path = Path(name_or_path).expanduser()
    text = str(name_or_path)
    if path.is_dir():
        if (path / CONFIG_JSON).is_file():
            return _read_json(path / CONFIG_JSON)
        if (path / CONFIG_YAML).is_file():
            return _read_yaml(path / CONFIG_YAML)
        raise ModelConfigError(f"{path} holds no {CONFIG_JSON} or {CONFIG_YAML}")
    if path.is_file():
        if path.suffix == ".json":
            return _read_json(path)
        if path.suffix in (".yaml", ".yml"):
            return _read_yaml(path)
        raise ModelConfigError(f"{path} is not a .json or .yaml config file")
    if os.sep in text or text.endswith((".json", ".yaml", ".yml")):
        raise ModelConfigError(f"{path} does not exist")
    return preset_config(text)


def _read_json(path: Path) -> ModelConfig:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ModelConfigError(f"{path} does not hold a JSON object")
    return config_from_dict(data)


def _read_yaml(path: Path) -> ModelConfig:
    import yaml

    from mf_models.safe_yaml import safe_load

    try:
        data = safe_load(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).partition("\n")[0]
        raise ModelConfigError(f"cannot read {path}: {first}") from None
    if not isinstance(data, dict):
        raise ModelConfigError(f"{path} does not hold a YAML mapping")
    # A run yaml or a model yaml: `model: {model_config: {...}}`.
    model = data.get("model", data)
    if isinstance(model, dict) and isinstance(model.get("model_config"), dict):
        model = model["model_config"]
    if not isinstance(model, dict):
        raise ModelConfigError(f"{path} has no model.model_config mapping")
    return config_from_dict(model)
