"""What a run trains: the model (preset, instance or `model.model_config`), its starting weights
(`load_checkpoint`), recompute, and the tokenizer of `processor.tokenizer`.

`model.model_config` belongs to mf-models, which drops keys its config does not have (a real
MindFormers YAML carries many Ascend-only ones). Dropping is never silent here: a key that looks
like a misspelt field is an error with a did-you-mean, and the others are listed as notes.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mf_train.errors import CheckpointMismatchError, TrainConfigError

# MindFormers' `LlamaConfig` etc. take these; they configure Ascend kernels or graph splitting
# and change nothing in the math mf runs, so they are reported as inert rather than refused.
KNOWN_INERT_MODEL_KEYS = frozenset({
    "batch_size", "type", "model_type", "use_flash_attention", "use_paged_attention",
    "use_past_shard", "extend_method", "is_dynamic", "use_kvcache_op",
    "is_flexible_shape", "use_rope_slice", "fine_grain_interleave", "qkv_concat",
    "parallel_config", "moe_config", "block_size", "num_blocks", "repetition_penalty",
    "max_decode_length", "top_k", "top_p", "do_sample", "post_layernorm_residual",
    "scaling_factor", "rotary_dtype", "embedding_init_type", "dropout_prob",
    "hidden_dropout_prob", "attention_probs_dropout_prob", "hidden_dropout_rate",
    "attention_dropout_rate", "hidden_act", "use_flash_attention_2",
    "use_prompt_flash_attention", "use_incre_flash_attention", "pp_interleave_num",
    "use_ring_attention", "use_attn_mask_compression", "use_eod_attn_mask_compression",
    "max_position_embedding",
})
# model_config keys mf-train reads itself: LoRA's settings and the pipeline's layer offset
# (MindFormers' `offset`: layers moved between stages, mf_parallel.assign_stages).
TRAINER_MODEL_KEYS = ("pet_config", "offset")
RECOMPUTE_KEYS = ("recompute", "select_recompute", "parallel_optimizer_comm_recompute",
                  "mp_comm_recompute", "recompute_slice_activation")


def model_config_from_run(model_config: dict[str, Any], arch: dict[str, Any],
                          base: Any = None) -> tuple[Any, list[str]]:
    """mf-models' config for `model.model_config` (on top of a preset's config `base`), and
    notes naming the keys it ignores."""
    from mf_models.configs.base import ModelConfig
    from mf_models.registry import FAMILIES, config_from_dict

    values = dict(model_config)
    if base is None:
        if not values:
            raise TrainConfigError("model.model_config is empty; name a model (type: LlamaConfig "
                                   "and its sizes) or pass model= a preset name or an instance")
        config = config_from_dict(values)
    else:
        config = base.replace(**{k: v for k, v in values.items() if k in base.field_names()})
    fields = sorted(type(config).field_names())
    ignored = []
    for key in values:
        if key in fields or key in ("type", "model_type") or key in TRAINER_MODEL_KEYS:
            continue
        close = difflib.get_close_matches(key, fields, n=1, cutoff=0.8)
        if close and key not in KNOWN_INERT_MODEL_KEYS:
            raise TrainConfigError(f"unknown key 'model.model_config.{key}'; did you mean "
                                   f"'model.model_config.{close[0]}'?")
        ignored.append(key)
    arch_type = arch.get("type") if isinstance(arch, dict) else None
    if arch_type:
        family = FAMILIES[type(config).family]
        names = [path.rsplit(":", 1)[1] for path in family.models]
        if arch_type not in names:
            raise TrainConfigError(f"model.arch.type = {arch_type!r} does not build a "
                                   f"{type(config).__name__}; allowed: {', '.join(names)}")
    notes = []
    if ignored:
        notes.append("model.model_config keys with no effect in mf: " + ", ".join(ignored))
    assert isinstance(config, ModelConfig)
    return config, notes


def build_model(model: Any, model_config: dict[str, Any], arch: dict[str, Any], seed: int,
                ) -> tuple[Any, list[str]]:
    """The model to train: an instance as given, a preset name, or `model.model_config`."""
    from mf_models import AutoModelForCausalLM
    from mf_models.registry import preset_config

    if model is not None and not isinstance(model, str):
        if not hasattr(model, "trainable_params") or not hasattr(model, "config"):
            raise TrainConfigError(f"model must be a preset name or an mf_models causal LM, got "
                                   f"{type(model).__name__}")
        return model, []
    base = preset_config(model) if isinstance(model, str) else None
    config, notes = model_config_from_run(model_config, arch, base)
    return AutoModelForCausalLM.from_config(config, seed=seed), notes


def is_training_checkpoint(path: Path) -> bool:
    """A checkpoint of mf-train: checkpoint-<step>/, or a job or checkpoints/ dir holding one."""
    from mf_train.checkpoint import STATE_FILE, get_last_checkpoint

    if (path / STATE_FILE).is_file():
        return True
    return any(get_last_checkpoint(p) is not None for p in (path, path / "checkpoints"))


def read_start_weights(source: str | Path, model: Any) -> dict[str, Any]:
    """Weights named by `load_checkpoint`: an mf-train checkpoint or job directory, a weight
    file (.safetensors, .ckpt), a model directory (ours or Hugging Face's) or a preset name.

    Every file is read by mf-models' one weights reader (`mf_models.weights.io`): the same
    one-line errors for a missing, pickled, truncated or non-finite file on every path.
    """
    from mf_models.auto import read_checkpoint
    from mf_models.weights.io import read_weight_file, refuse_pickle

    from mf_train.checkpoint import WEIGHTS_FILE, resolve_checkpoint

    path = Path(source).expanduser()
    refuse_pickle(path)
    if path.is_dir() and is_training_checkpoint(path):
        from mf_train.sharded import is_sharded, merge_checkpoint, read_checkpoint_tensors

        checkpoint = resolve_checkpoint(path)
        if is_sharded(checkpoint):  # a sharded save: its slices merged into whole tensors
            return merge_checkpoint(read_checkpoint_tensors(checkpoint))[0]
        return read_weight_file(checkpoint / WEIGHTS_FILE)
    return read_checkpoint(source, model.config)


def load_start_weights(model: Any, source: str | Path) -> None:
    """Copy `load_checkpoint`'s weights into the model, refusing another model's checkpoint:
    mf-models' `assign_weights` (every name and shape checked, then written in place, so graphs
    the model has compiled already see them)."""
    from mf_models.errors import CheckpointMismatchError as ModelsMismatch
    from mf_models.errors import ModelConfigError
    from mf_models.weights.io import assign_weights

    weights = read_start_weights(source, model)
    try:
        assign_weights(model, weights, strict=True, source=str(source))
    except ModelsMismatch as exc:  # names the tensor, `source` and both shapes already
        raise CheckpointMismatchError(str(exc)) from None
    except ModelConfigError as exc:
        raise TrainConfigError(str(exc)) from None


def transformer_blocks(model: Any) -> list[Any]:
    """The model's repeated blocks: the CellList holding one cell per layer."""
    from mindspore import nn

    layers = model.config.num_layers
    for _, cell in model.cells_and_names():
        if isinstance(cell, nn.CellList) and len(cell) == layers:
            return list(cell)
    raise TrainConfigError(f"cannot find the {layers} transformer blocks of "
                           f"{type(model).__name__} to recompute")


def apply_recompute(model: Any, recompute_config: Any) -> int:
    """Recompute blocks in backward instead of keeping their activations; returns how many.

    `recompute: true` takes every block; a list (MindFormers: layers per pipeline stage) takes
    the first n blocks of each stage, here with one stage. `select_recompute` (MindFormers'
    op-level selection on Ascend) is refused rather than approximated.
    """
    select = recompute_config.select_recompute
    if select not in (False, [], None):
        raise TrainConfigError("recompute_config.select_recompute is not supported by mf; "
                               "recompute: true recomputes whole transformer blocks")
    wanted = recompute_config.recompute
    if wanted is False or wanted == []:
        return 0
    blocks = transformer_blocks(model)
    if wanted is True:
        count = len(blocks)
    else:
        if len(wanted) != 1 or isinstance(wanted[0], bool) or not isinstance(wanted[0], int):
            raise TrainConfigError(f"recompute_config.recompute = {wanted!r}; with one pipeline "
                                   "stage give true, false or [n] (the first n blocks)")
        count = min(max(wanted[0], 0), len(blocks))
    for block in blocks[:count]:
        block.recompute()
    return count


def tokenizer_section(config: Any) -> dict[str, Any]:
    """`train_dataset.tokenizer` if written, else `processor.tokenizer` (MindFormers' places)."""
    section = config.train_dataset.tokenizer or (config.processor or {}).get("tokenizer") or {}
    if not isinstance(section, dict):
        raise TrainConfigError(f"processor.tokenizer = {section!r}; expected a mapping "
                               "(type, vocab_file)")
    return section


TOKENIZER_KEYS = ("type", "vocab_file", "name_or_path", "train_vocab_size", "unk_token",
                  "bos_token", "eos_token", "pad_token", "add_bos_token", "add_eos_token")


def build_tokenizer(section: dict[str, Any], documents: Iterable[str] | None = None,
                    ) -> tuple[Any | None, list[str]]:
    """The tokenizer of a run YAML: `{type, vocab_file}` or `{name_or_path}` (a preset or dir).

    mf's `train_vocab_size: N`: when `vocab_file` does not exist yet, a SentencePiece model of
    N pieces is trained on `documents` (the train split's text) by mf-tokenize and written
    there, so later runs reuse it.
    """
    if not section:
        return None, []
    from mf_tokenize import AutoTokenizer, tokenizer_class

    for key in section:
        if key not in TOKENIZER_KEYS:
            close = difflib.get_close_matches(str(key), TOKENIZER_KEYS, n=1, cutoff=0.6)
            hint = (f"did you mean 'processor.tokenizer.{close[0]}'?" if close
                    else f"allowed: {', '.join(TOKENIZER_KEYS)}")
            raise TrainConfigError(f"unknown key 'processor.tokenizer.{key}'; {hint}")
    options = {k: section[k] for k in ("unk_token", "bos_token", "eos_token", "pad_token",
                                       "add_bos_token", "add_eos_token") if k in section}
    notes: list[str] = []
    vocab_file = section.get("vocab_file")
    if vocab_file:
        path = Path(vocab_file).expanduser()
        train_size = section.get("train_vocab_size")
        if not path.exists() and train_size:
            if documents is None:
                raise TrainConfigError(f"processor.tokenizer.vocab_file {path} does not exist "
                                       "and there is no text dataset to train it on")
            if section.get("type", "LlamaTokenizer") != "LlamaTokenizer":
                raise TrainConfigError("processor.tokenizer.train_vocab_size trains a "
                                       "SentencePiece model, so type must be LlamaTokenizer")
            if path.name != "tokenizer.model":
                raise TrainConfigError(f"processor.tokenizer.vocab_file {path}: a trained "
                                       "tokenizer is written as tokenizer.model; name it so")
            _train_tokenizer_into(path.parent, documents, int(train_size))
            notes.append(f"trained a SentencePiece tokenizer of {train_size} pieces into "
                         f"{path.parent}")
        if not path.exists():
            raise TrainConfigError(f"processor.tokenizer.vocab_file {path} does not exist")
        kind = section.get("type")
        directory = path.parent if path.is_file() else path
        if kind:
            cls = tokenizer_class(kind)
            if path.is_file() and path.name not in cls.vocab_files.values():
                raise TrainConfigError(
                    f"processor.tokenizer.vocab_file {path}: a {kind} reads "
                    f"{', '.join(cls.vocab_files.values())}; rename the file or point at its "
                    "directory")
            return cls.from_pretrained(directory, **options), notes
        return AutoTokenizer.from_pretrained(directory, **options), notes
    name = section.get("name_or_path")
    if name:
        return AutoTokenizer.from_pretrained(name, **options), notes
    raise TrainConfigError("processor.tokenizer needs vocab_file (a tokenizer file) or "
                           "name_or_path (a preset or a directory)")


def _train_tokenizer_into(directory: Path, documents: Iterable[str], vocab_size: int) -> None:
    """Train a SentencePiece model into `directory`, a new folder of mf's, in one rename.

    The folder follows mf's output rule (outputs.py): a new or empty directory, or one mf
    trained a tokenizer into before (replaced only when its tokenizer.model is gone, which is
    how we got here); never a folder with a person's files in it.
    """
    from mf_tokenize import train_sentencepiece

    from mf_train.atomic import atomic_directory
    from mf_train.outputs import claim_output, write_marker

    claim = claim_output(directory, kind="tokenizer", what="processor.tokenizer.vocab_file's "
                         "folder", overwrite=True,
                         hint="point vocab_file into a new folder (e.g. output/my_tokenizer/"
                              "tokenizer.model)")
    if claim.path.exists() and not claim.replaces:
        claim.path.rmdir()
    with atomic_directory(claim.path) as folder:
        write_marker(folder, "tokenizer")
        train_sentencepiece(documents, vocab_size, folder)
