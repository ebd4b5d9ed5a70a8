"""Auto classes: build the right family and class from a preset name, a directory or a yaml.

    AutoConfig.from_pretrained("llama_7b" | dir | "run_llama_7b.yaml")
    AutoModel.from_pretrained("txtcls_bert_base_uncased" | dir)   # the class the config names
    AutoModelForCausalLM.from_pretrained("gpt2" | our dir | Hugging Face dir)
    AutoModelForSequenceClassification.from_pretrained(dir, num_labels=5)   # a task's class
    AutoModelForCausalLM.from_config(config_or_name)      # random init, never reads weights

`AutoModel` is MindFormers': it builds the model class a config names (a preset's head, a run
yaml's `arch`, a Hugging Face `architectures[0]`), else the family's first class. The task
classes build their task's class of the config's family, as Hugging Face's do: loading a
checkpoint of another head (or of the bare encoder) gives the new head random weights, listed
in `model.load_report`.

A preset's weights are looked for in `$MF_HOME/<preset>/` (default ~/.cache/mf), the same folder
mf-tokenize reads the preset's tokenizer files from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from mf_models.configs.base import ModelConfig
from mf_models.errors import ModelConfigError
from mf_models.registry import family_of_config, family_of_preset, load_config, mf_home


class AutoConfig:
    @staticmethod
    def from_pretrained(name_or_path: str | os.PathLike) -> ModelConfig:
        return load_config(name_or_path)


def model_class_for(config: ModelConfig) -> type:
    """The class a config names (`architecture`, where its family has one), else the family's
    first class."""
    return family_of_config(config).model_class(getattr(config, "architecture", None) or None)


def _config(config: ModelConfig | str, overrides: dict[str, Any]) -> ModelConfig:
    if isinstance(config, (str, os.PathLike)):
        config = load_config(config)
    return config.replace(**overrides) if overrides else config


class AutoModel:
    """MindFormers' `AutoModel`: the class the config names, for every family."""

    @classmethod
    def model_class(cls, config: ModelConfig) -> type:
        return model_class_for(config)

    @classmethod
    def from_config(cls, config: ModelConfig | str, seed: int = 0, **overrides: Any):
        config = _config(config, overrides)
        return cls.model_class(config)(config, seed=seed)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, strict: bool = True,
                        **overrides: Any):
        config = _config(name_or_path, overrides) if Path(name_or_path).expanduser().is_dir() \
            or family_of_preset(str(name_or_path)) else None
        model_class = None if config is None else cls.model_class(config)
        return load_pretrained(name_or_path, model_class=model_class, strict=strict, **overrides)


class AutoModelForCausalLM(AutoModel):
    """The decoder families' LM classes (GPT-2, LLaMA, BLOOM, GLM, GLM2, PanGu-Alpha)."""

    @classmethod
    def model_class(cls, config: ModelConfig) -> type:
        from mf_models.models.base import CausalLM

        model_class = model_class_for(config)
        if not issubclass(model_class, CausalLM):
            raise ModelConfigError(
                f"AutoModelForCausalLM builds causal LMs; '{config.name or config.family}' is "
                f"a {config.family} model ({model_class.__name__}): use AutoModel or its task's "
                "Auto class")
        return model_class


class _AutoForTask(AutoModel):
    """One task's class in each family that has it (`classes`: family -> class name)."""

    classes: ClassVar[dict[str, str]] = {}

    @classmethod
    def model_class(cls, config: ModelConfig) -> type:
        name = cls.classes.get(config.family)
        if name is None:
            raise ModelConfigError(
                f"{cls.__name__} has no {config.family} model; it builds "
                f"{', '.join(sorted(cls.classes))} models")
        return family_of_config(config).model_class(name)


class AutoModelForMaskedLM(_AutoForTask):
    classes = {"bert": "BertForMaskedLM"}


class AutoModelForSequenceClassification(_AutoForTask):
    classes = {"bert": "BertForSequenceClassification"}


class AutoModelForTokenClassification(_AutoForTask):
    classes = {"bert": "BertForTokenClassification"}


class AutoModelForQuestionAnswering(_AutoForTask):
    classes = {"bert": "BertForQuestionAnswering"}


class AutoModelForSeq2SeqLM(_AutoForTask):
    classes = {"t5": "T5ForConditionalGeneration"}
class AutoModelForImageClassification(_AutoForTask):
    classes = {"vit": "ViTForImageClassification", "swin": "SwinForImageClassification"}


def weights_directory(name_or_path: str | os.PathLike) -> Path:
    """Where `from_pretrained` reads weights: the directory itself, or $MF_HOME/<preset>."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    fam = family_of_preset(str(name_or_path))
    if fam is None:
        load_config(name_or_path)  # raises the one-line "not a supported model; did you mean"
        raise ModelConfigError(f"'{name_or_path}' is not a model directory")
    canonical = fam.config_class().from_name(str(name_or_path)).name
    return mf_home() / canonical


def load_pretrained(name_or_path: str | os.PathLike, model_class: type | None = None,
                    strict: bool = True, **overrides: Any):
    """Build the model and load its weights, from our format or a Hugging Face directory."""
    from mf_models.weights import hf
    from mf_models.weights.io import assign_weights, no_weights, read_directory, weight_files

    directory = weights_directory(name_or_path)
    if not directory.is_dir() or not weight_files(directory):
        raise no_weights(directory, f"build with random weights by from_config('{name_or_path}')")
    config_source = directory if _has_config(directory) else str(name_or_path)
    if hf.is_hf_directory(directory):
        config, weights = hf.import_directory(directory)
        source = f"Hugging Face checkpoint {directory}"
    else:
        config = load_config(config_source)
        weights = read_directory(directory)
        source = f"checkpoint {directory}"
    if overrides:
        config = config.replace(**overrides)
    cls = model_class or model_class_for(config)
    if not isinstance(config, cls.config_class):
        raise ModelConfigError(f"{directory} holds a {config.family} model, not "
                               f"{cls.config_class.family} ({cls.__name__})")
    # The weights come from this directory, not from a checkpoint the config may point at.
    model = cls(config.replace(checkpoint_name_or_path=""))
    problems = assign_weights(model, weights, strict, source)
    model.load_report = problems  # what strict=False skipped, for the caller to show
    return model


def read_checkpoint(source: str | os.PathLike, config: ModelConfig) -> dict:
    """MindFormers-named weights from a preset, a directory (ours or HF) or one weight file."""
    from mf_models.weights import hf
    from mf_models.weights.io import read_directory, read_weight_file, refuse_pickle

    path = Path(source).expanduser()
    refuse_pickle(path)
    if path.is_file():
        return read_weight_file(path)
    directory = weights_directory(source)
    if hf.is_hf_directory(directory):
        table = family_of_config(config).mapping().table_for(config)
        return hf.hf_to_mf(table, read_directory(directory), config)
    return read_directory(directory)


def _has_config(directory: Path) -> bool:
    return (directory / "config.json").is_file() or (directory / "config.yaml").is_file()
