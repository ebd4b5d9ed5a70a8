"""LoRA for mf-train (`pet_method="lora"`): config, wrapping, LoRA-only checkpoints, merge.

`LoraConfig` and `DEFAULT_TARGET_MODULES` import no MindSpore; the functions that touch a model
are loaded on first use (MindSpore is imported then).
"""

from importlib import import_module

from mf_train.lora.config import (
    DEFAULT_TARGET_MODULES,
    LORA_A_NAME,
    LORA_B_NAME,
    LoraConfig,
    lora_base_name,
    lora_sharding_plan,
)

_LAZY = {
    "apply_lora": "mf_train.lora.model",
    "merge_lora": "mf_train.lora.model",
    "lora_state_dict": "mf_train.lora.model",
    "load_lora": "mf_train.lora.model",
    "save_lora": "mf_train.lora.model",
    "lora_layers": "mf_train.lora.model",
    "applied_config": "mf_train.lora.model",
    "count_parameters": "mf_train.lora.model",
    "ParameterCount": "mf_train.lora.model",
    "LORA_WEIGHTS_FILE": "mf_train.lora.model",
    "LORA_CONFIG_FILE": "mf_train.lora.model",
    "is_lora_name": "mf_train.lora.model",
    "LoraLinear": "mf_train.lora.layer",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mf_train.lora' has no attribute {name!r}")


__all__ = ["DEFAULT_TARGET_MODULES", "LORA_A_NAME", "LORA_B_NAME", "LoraConfig", "lora_base_name",
           "lora_sharding_plan", *_LAZY]
