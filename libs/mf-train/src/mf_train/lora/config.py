"""`LoraConfig`: MindFormers' `pet_config` for LoRA, validated, with per-family default targets.

No MindSpore here: the run YAML loader and the CLI build and check this config for free.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping
from typing import Any

from mf_train.errors import TrainConfigError

# The parameter names MindFormers' LoRA layer (mindpet's LoRADense) gives A and B, so a LoRA
# checkpoint reads as `model.layers.0.attention.wq.mindpet_delta_lora_a` in both projects.
LORA_A_NAME = "mindpet_delta_lora_a"
LORA_B_NAME = "mindpet_delta_lora_b"

# The default `target_modules` per model family, as regexes over our module paths (which are
# MindFormers' parameter names without the trailing `.weight`):
#   llama: MindFormers' configs/llama/run_llama_7b_lora.yaml ('.*wq|.*wk|.*wv|.*wo').
#   gpt2:  MindFormers' configs/gpt2/finetune_gpt2_small_lora_fp16.yaml ('.*dense1.*|.*dense3.*':
#          query and value, the pair the LoRA paper adapts, Hu et al. 2021 sec. 7.1).
#   glm, glm2: '.*query_key_value*', hard-wired in MindFormers' GLMForPreTrainingWithLora and
#          the pet_config of configs/glm2/lora_glm2_6b_fp16.yaml (the fused q/k/v projection).
#   bloom: MindFormers ships no BLOOM LoRA config; peft's default for bloom is the fused
#          query_key_value, which our BLOOM splits into dense1/2/3 (q, k, v).
DEFAULT_TARGET_MODULES: dict[str, str] = {
    "llama": r".*wq|.*wk|.*wv|.*wo",
    "gpt2": r".*dense1.*|.*dense3.*",
    "glm": r".*query_key_value*",
    "glm2": r".*query_key_value*",
    "bloom": r".*dense1|.*dense2|.*dense3",
}

# MindFormers `pet_config` keys we read but do not implement: naming them is clearer than a
# did-you-mean, and silently ignoring them would train something other than what was asked.
_NOT_IMPLEMENTED = {
    "lora_a_init": "A is Kaiming-uniform as in the LoRA paper and peft",
    "lora_b_init": "B starts at zero so the adapted model equals the base at step 0",
    "param_init_type": "LoRA weights take the dtype of the Linear they adapt",
    "compute_dtype": "LoRA computes in the compute dtype of the Linear it adapts",
    "exclude_layers": "write the exclusion into the target_modules regex",
    "freeze_include": "every base weight is frozen; only LoRA weights train",
    "freeze_exclude": "every base weight is frozen; only LoRA weights train",
}


@dataclasses.dataclass(frozen=True)
class LoraConfig:
    """LoRA hyper-parameters with MindFormers' names (`model.model_config.pet_config`).

    `target_modules` is a regex that selects a Linear when it matches the whole of its module
    path (`model.layers.0.attention.wq`) or of its attribute name (`wq`), with `re.fullmatch`
    as peft does; None means the model family's default (`DEFAULT_TARGET_MODULES`).
    MindFormers tries `re.match` (a prefix match) on attribute names only: its shipped patterns
    ('.*wq|.*wk|.*wv|.*wo', '.*query_key_value*', ...) select the same layers here, but a bare
    prefix such as 'w' (which MindFormers would take for w1, w2, w3, wq, ...) matches nothing.
    """

    lora_rank: int = 8
    lora_alpha: float = 16
    lora_dropout: float = 0.0
    target_modules: str | None = None
    pet_type: str = "lora"

    def __post_init__(self) -> None:
        if self.pet_type != "lora":
            raise TrainConfigError(f"pet_type={self.pet_type!r}: LoraConfig only does 'lora'")
        rank = self.lora_rank
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise TrainConfigError(f"lora_rank={rank!r} must be a positive integer")
        alpha = self.lora_alpha
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
            raise TrainConfigError(f"lora_alpha={alpha!r} must be a positive number")
        p = self.lora_dropout
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
            raise TrainConfigError(f"lora_dropout={p!r} must be a number in [0, 1)")
        if self.target_modules is not None:
            compile_targets(self.target_modules)

    @property
    def scaling(self) -> float:
        """alpha / rank: the factor on B A x (LoRA paper, sec. 4.1)."""
        return float(self.lora_alpha) / self.lora_rank

    def targets_for(self, family: str) -> str:
        """The regex to apply to a model of `family`: ours if set, else the family default."""
        if self.target_modules is not None:
            return self.target_modules
        if family not in DEFAULT_TARGET_MODULES:
            raise TrainConfigError(
                f"no default LoRA target_modules for the {family or 'unknown'} family; set "
                f"target_modules (defaults exist for {', '.join(sorted(DEFAULT_TARGET_MODULES))})")
        return DEFAULT_TARGET_MODULES[family]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> LoraConfig:
        """From a MindFormers `pet_config` mapping; unknown keys are errors with a did-you-mean."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key in known:
                continue
            if key in _NOT_IMPLEMENTED:
                raise TrainConfigError(
                    f"pet_config.{key} is not supported by mf ({_NOT_IMPLEMENTED[key]})")
            close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else (
                f"; allowed: {', '.join(sorted(known))}")
            raise TrainConfigError(f"unknown pet_config key '{key}'{hint}")
        return cls(**values)


def compile_targets(pattern: Any) -> re.Pattern[str]:
    """The compiled `target_modules` regex, or a one-line error naming it."""
    if not isinstance(pattern, str) or not pattern:
        raise TrainConfigError(
            f"target_modules={pattern!r} must be a non-empty regex string, e.g. '.*wq|.*wv'")
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise TrainConfigError(f"target_modules={pattern!r} is not a valid regex: {exc}") from None


def lora_sharding_plan(base_plan: Mapping[str, Any]) -> dict[str, Any]:
    """The base model's sharding plan extended to its LoRA weights, LoRA patterns first.

    For a Linear weight W (out, in) laid out (out_spec, in_spec), A (rank, in) takes the
    input's layout and B (out, rank) the output's, so B @ A is laid out as W (Megatron's
    column- and row-parallel LoRA): a column-parallel layer keeps A whole and splits B's rows,
    a row-parallel one splits A's columns and keeps B whole.
    """
    lora: dict[str, Any] = {}
    for pattern, spec in base_plan.items():
        if pattern.endswith(".weight") and len(spec) == 2:
            stem = pattern[: -len("weight")]
            lora[stem + LORA_A_NAME] = (None, spec[1])
            lora[stem + LORA_B_NAME] = (spec[0], None)
    return {**lora, **base_plan}


def lora_base_name(name: str) -> str:
    """`...wq.mindpet_delta_lora_a` -> `...wq.weight`; other names unchanged."""
    for suffix in (LORA_A_NAME, LORA_B_NAME):
        if name.endswith("." + suffix):
            return name[: -len(suffix)] + "weight"
    return name


def lora_parameter_shapes(shapes: list[tuple[str, tuple[int, ...]]], config: LoraConfig,
                          family: str) -> list[tuple[str, tuple[int, ...], bool]]:
    """A model's (name, shape, trainable) once LoRA is applied, from its parameter shapes
    alone (the memory estimate's input): every 2-D `.weight` whose module path, or its last
    name, the targets fully match (as `apply_lora` chooses Linear layers) gets A (rank, in) and
    B (out, rank) after it; every base weight is frozen."""
    regex = compile_targets(config.targets_for(family))
    out: list[tuple[str, tuple[int, ...], bool]] = []
    for name, shape in shapes:
        out.append((name, shape, False))
        path = name[: -len(".weight")] if name.endswith(".weight") else None
        if path is None or len(shape) != 2:
            continue
        if regex.fullmatch(path) or regex.fullmatch(path.rsplit(".", 1)[-1]):
            rows, cols = shape
            out.append((f"{path}.{LORA_A_NAME}", (config.lora_rank, cols), True))
            out.append((f"{path}.{LORA_B_NAME}", (rows, config.lora_rank), True))
    return out
