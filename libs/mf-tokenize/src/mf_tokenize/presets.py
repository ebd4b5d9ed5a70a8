"""Preset tokenizer names (MindFormers' model names) and where their files live.

A preset resolves to ``$MF_HOME/<name>`` (default ``~/.cache/mf/<name>``), the same folder
mf-models uses for that model's weights. No hub is contacted: the vocabulary files have to be
put there by hand (copied from the upstream checkpoint named in each entry).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mf_tokenize._files import check_not_pickle
from mf_tokenize.errors import TokenizerConfigError, UnknownTokenizerError, VocabFileNotFoundError


@dataclass(frozen=True)
class TokenizerPreset:
    name: str
    tokenizer_class: str
    files: tuple[str, ...]
    source: str
    settings: dict[str, Any] = field(default_factory=dict)


def _presets(*entries: TokenizerPreset) -> dict[str, TokenizerPreset]:
    return {p.name: p for p in entries}


_GPT2 = ("vocab.json", "merges.txt")
_LLAMA = {"add_bos_token": True, "add_eos_token": False, "model_max_length": 2048}
_LLAMA2 = {**_LLAMA, "model_max_length": 4096}
_BLOOM = {"padding_side": "left", "model_max_length": 2048}
_CLIP = {"model_max_length": 77}

PRESETS: dict[str, TokenizerPreset] = _presets(
    TokenizerPreset("gpt2", "GPT2Tokenizer", _GPT2, "openai-community/gpt2",
                    {"model_max_length": 1024}),
    TokenizerPreset("gpt2_13b", "GPT2Tokenizer", _GPT2, "MindFormers gpt2_13b (GPT-2 vocab)",
                    {"model_max_length": 2048}),
    TokenizerPreset("llama_7b", "LlamaTokenizer", ("tokenizer.model",), "huggyllama/llama-7b",
                    _LLAMA),
    TokenizerPreset("llama_13b", "LlamaTokenizer", ("tokenizer.model",),
                    "huggyllama/llama-13b", _LLAMA),
    TokenizerPreset("llama_65b", "LlamaTokenizer", ("tokenizer.model",),
                    "huggyllama/llama-65b", _LLAMA),
    TokenizerPreset("llama2_7b", "LlamaTokenizer", ("tokenizer.model",),
                    "meta-llama/Llama-2-7b-hf", _LLAMA2),
    TokenizerPreset("llama2_13b", "LlamaTokenizer", ("tokenizer.model",),
                    "meta-llama/Llama-2-13b-hf", _LLAMA2),
    TokenizerPreset("llama2_70b", "LlamaTokenizer", ("tokenizer.model",),
                    "meta-llama/Llama-2-70b-hf", _LLAMA2),
    TokenizerPreset("glm_6b", "ChatGLMTokenizer", ("ice_text.model",), "THUDM/chatglm-6b",
                    {"model_max_length": 2048}),
    TokenizerPreset("glm2_6b", "ChatGLM2Tokenizer", ("tokenizer.model",), "THUDM/chatglm2-6b",
                    {"model_max_length": 32768}),
    TokenizerPreset("bloom_560m", "BloomTokenizer", ("tokenizer.json",),
                    "bigscience/bloom-560m", _BLOOM),
    TokenizerPreset("bloom_7.1b", "BloomTokenizer", ("tokenizer.json",),
                    "bigscience/bloom-7b1", _BLOOM),
    TokenizerPreset("bloom_176b", "BloomTokenizer", ("tokenizer.json",), "bigscience/bloom",
                    _BLOOM),
    TokenizerPreset("pangualpha_2_6b", "PanguAlphaTokenizer", ("vocab.model",),
                    "PCL-Platform.Intelligence/PanGu-Alpha (tokenizer/vocab.model)",
                    {"model_max_length": 1024}),
    TokenizerPreset("pangualpha_13b", "PanguAlphaTokenizer", ("vocab.model",),
                    "PCL-Platform.Intelligence/PanGu-Alpha (tokenizer/vocab.model)",
                    {"model_max_length": 1024}),
    TokenizerPreset("bert_base_uncased", "BertTokenizer", ("vocab.txt",),
                    "google-bert/bert-base-uncased",
                    {"do_lower_case": True, "model_max_length": 512}),
    TokenizerPreset("bert_base_cased", "BertTokenizer", ("vocab.txt",),
                    "google-bert/bert-base-cased",
                    {"do_lower_case": False, "model_max_length": 512}),
    TokenizerPreset("bert_base_chinese", "BertTokenizer", ("vocab.txt",),
                    "google-bert/bert-base-chinese",
                    {"do_lower_case": False, "model_max_length": 512}),
    # MindFormers' task models of its model matrix: the vocabulary of the BERT they start from.
    TokenizerPreset("txtcls_bert_base_uncased", "BertTokenizer", ("vocab.txt",),
                    "google-bert/bert-base-uncased (MindFormers txtcls_bert_base_uncased)",
                    {"do_lower_case": True, "model_max_length": 512}),
    TokenizerPreset("txtcls_bert_base_uncased_mnli", "BertTokenizer", ("vocab.txt",),
                    "google-bert/bert-base-uncased (MindFormers txtcls_bert_base_uncased_mnli)",
                    {"do_lower_case": True, "model_max_length": 512}),
    TokenizerPreset("qa_bert_base_uncased", "BertTokenizer", ("vocab.txt",),
                    "google-bert/bert-base-uncased (MindFormers qa_bert_base_uncased)",
                    {"do_lower_case": True, "model_max_length": 512}),
    TokenizerPreset("tokcls_bert_base_chinese", "BertTokenizer", ("vocab.txt",),
                    "google-bert/bert-base-chinese (MindFormers tokcls_bert_base_chinese)",
                    {"do_lower_case": False, "model_max_length": 512}),
    TokenizerPreset("tokcls_bert_base_chinese_cluener", "BertTokenizer", ("vocab.txt",),
                    "google-bert/bert-base-chinese (MindFormers tokcls_bert_base_chinese_cluener)",
                    {"do_lower_case": False, "model_max_length": 512}),
    # "uncased" in MindFormers' name: lower-cased input over bert-base-chinese's vocabulary.
    TokenizerPreset("qa_bert_base_chinese_uncased", "BertTokenizer", ("vocab.txt",),
                    "google-bert/bert-base-chinese (MindFormers qa_bert_base_chinese_uncased)",
                    {"do_lower_case": True, "model_max_length": 512}),
    TokenizerPreset("llama_7b_lora", "LlamaTokenizer", ("tokenizer.model",),
                    "huggyllama/llama-7b (MindFormers llama_7b_lora)", _LLAMA),
    TokenizerPreset("glm_6b_lora", "ChatGLMTokenizer", ("ice_text.model",),
                    "THUDM/chatglm-6b (MindFormers glm_6b_lora)", {"model_max_length": 2048}),
    TokenizerPreset("t5_small", "T5Tokenizer", ("spiece.model",), "google-t5/t5-small",
                    {"model_max_length": 512}),
    TokenizerPreset("t5_base", "T5Tokenizer", ("spiece.model",), "google-t5/t5-base",
                    {"model_max_length": 512}),
    TokenizerPreset("clip_vit_b_32", "CLIPTokenizer", _GPT2, "openai/clip-vit-base-patch32",
                    _CLIP),
    TokenizerPreset("clip_vit_b_16", "CLIPTokenizer", _GPT2, "openai/clip-vit-base-patch16",
                    _CLIP),
    TokenizerPreset("clip_vit_l_14", "CLIPTokenizer", _GPT2, "openai/clip-vit-large-patch14",
                    _CLIP),
    TokenizerPreset("clip_vit_l_14@336", "CLIPTokenizer", _GPT2,
                    "openai/clip-vit-large-patch14-336", _CLIP),
)


def mf_home() -> Path:
    """Root of the preset folders: ``$MF_HOME`` or ``~/.cache/mf``."""
    return Path(os.environ.get("MF_HOME", "~/.cache/mf")).expanduser()


def preset_directory(name: str) -> Path:
    return mf_home() / name


def unknown_name_error(name: str) -> UnknownTokenizerError:
    close = difflib.get_close_matches(name, list(PRESETS), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return UnknownTokenizerError(
        f"{name!r} is neither a tokenizer directory nor a preset name; {hint}"
        f"presets: {', '.join(PRESETS)}"
    )


def resolve(name_or_path: str | os.PathLike[str]) -> tuple[Path, TokenizerPreset | None]:
    """The directory to load from, and the preset it came from (None for a plain directory)."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TokenizerConfigError(
            f"from_pretrained takes a directory or a preset name, got "
            f"{type(name_or_path).__name__} {name_or_path!r:.60}"
        )
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path, None
    name = str(name_or_path)
    preset = PRESETS.get(name)
    if preset is None:
        if path.exists():
            check_not_pickle(path)
            raise TokenizerConfigError(f"{path} is a file; from_pretrained takes its directory")
        if os.sep in name or name.startswith((".", "~")):
            raise VocabFileNotFoundError(f"tokenizer directory not found: {path}")
        raise unknown_name_error(name)
    directory = preset_directory(name)
    missing = [f for f in preset.files if not (directory / f).is_file()]
    if missing:
        raise VocabFileNotFoundError(
            f"preset {name!r} needs {' and '.join(missing)} in {directory} (not found); copy "
            f"them there from {preset.source}, or set MF_HOME to the folder that holds "
            f"{name}/"
        )
    return directory, preset
