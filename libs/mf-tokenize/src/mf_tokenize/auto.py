"""AutoTokenizer: pick the tokenizer class from tokenizer_config.json, a preset name or the
files in the directory."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from mf_tokenize import presets
from mf_tokenize.base import PreTrainedTokenizer, read_settings
from mf_tokenize.errors import TokenizerConfigError, UnknownTokenizerError

# Class name -> "module:Class"; the Hugging Face "...Fast" names and MindFormers' spellings
# map to the same classes.
TOKENIZER_CLASSES: dict[str, str] = {
    "GPT2Tokenizer": "mf_tokenize.gpt2:GPT2Tokenizer",
    "GPT2TokenizerFast": "mf_tokenize.gpt2:GPT2Tokenizer",
    "BloomTokenizer": "mf_tokenize.bloom:BloomTokenizer",
    "BloomTokenizerFast": "mf_tokenize.bloom:BloomTokenizer",
    "PreTrainedTokenizerFast": "mf_tokenize.bloom:BloomTokenizer",
    "TokenizersBackend": "mf_tokenize.bloom:BloomTokenizer",
    "LlamaTokenizer": "mf_tokenize.llama:LlamaTokenizer",
    "LlamaTokenizerFast": "mf_tokenize.llama:LlamaTokenizer",
    "T5Tokenizer": "mf_tokenize.t5:T5Tokenizer",
    "T5TokenizerFast": "mf_tokenize.t5:T5Tokenizer",
    "ChatGLMTokenizer": "mf_tokenize.chatglm:ChatGLMTokenizer",
    "ChatGLM6BTokenizer": "mf_tokenize.chatglm:ChatGLMTokenizer",
    "ChatGLM2Tokenizer": "mf_tokenize.chatglm:ChatGLM2Tokenizer",
    "PanguAlphaTokenizer": "mf_tokenize.pangu:PanguAlphaTokenizer",
    "BertTokenizer": "mf_tokenize.bert:BertTokenizer",
    "BertTokenizerFast": "mf_tokenize.bert:BertTokenizer",
    "CLIPTokenizer": "mf_tokenize.clip:CLIPTokenizer",
    "CLIPTokenizerFast": "mf_tokenize.clip:CLIPTokenizer",
}

# When a directory has no tokenizer_config.json, its files say which family it is.
_CLASS_BY_FILE = (
    ("ice_text.model", "ChatGLMTokenizer"),
    ("spiece.model", "T5Tokenizer"),
    ("vocab.model", "PanguAlphaTokenizer"),
    ("tokenizer.model", "LlamaTokenizer"),
    ("vocab.txt", "BertTokenizer"),
    ("merges.txt", "GPT2Tokenizer"),
    ("tokenizer.json", "BloomTokenizer"),
)


def tokenizer_class(name: str) -> type[PreTrainedTokenizer]:
    """The class registered under ``name`` (``"LlamaTokenizer"``, ``"GPT2TokenizerFast"`` ...)."""
    target = TOKENIZER_CLASSES.get(name)
    if target is None:
        raise UnknownTokenizerError(
            f"tokenizer_class {name!r} is not supported; allowed: "
            + ", ".join(sorted({t.split(':')[1] for t in TOKENIZER_CLASSES.values()}))
        )
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def _class_for_directory(directory: Path, settings: dict[str, Any]) -> str:
    name = settings.get("tokenizer_class")
    if name == "ChatGLMTokenizer" and not (directory / "ice_text.model").is_file() and (
        directory / "tokenizer.model"
    ).is_file():
        return "ChatGLM2Tokenizer"  # chatglm2-6b also calls its class ChatGLMTokenizer
    if name:
        return str(name)
    for filename, klass in _CLASS_BY_FILE:
        if (directory / filename).is_file():
            return klass
    raise TokenizerConfigError(
        f"{directory} has no tokenizer_config.json naming a tokenizer_class and none of the "
        f"vocabulary files {', '.join(f for f, _ in _CLASS_BY_FILE)}"
    )


class AutoTokenizer:
    """``AutoTokenizer.from_pretrained("llama_7b")`` or ``("/path/to/tokenizer_dir")``."""

    def __init__(self) -> None:
        raise TypeError("use AutoTokenizer.from_pretrained(name_or_path)")

    @staticmethod
    def from_pretrained(name_or_path: str | Path, **kwargs: Any) -> PreTrainedTokenizer:
        directory, preset = presets.resolve(name_or_path)
        if preset is not None:
            name = preset.tokenizer_class
        else:
            name = _class_for_directory(directory, read_settings(directory))
        return tokenizer_class(name).from_pretrained(name_or_path, **kwargs)
