"""Model configs, presets, architectures, Auto classes and weight I/O on MindSpore.

Configs, the registry and `model_dims` import no MindSpore; the model classes and Auto classes
are loaded on first use (`mf_models.LlamaForCausalLM` imports MindSpore then, ~2 s).
"""

from importlib import import_module
from importlib.metadata import version as _version

from mf_models.configs import BloomConfig, GPT2Config, LlamaConfig, ModelConfig
from mf_models.dims import memory_inputs, model_dims
from mf_models.errors import (
    CheckpointMismatchError,
    CorruptWeightsError,
    ModelConfigError,
    ModelError,
    NonFiniteWeightsError,
    UnknownModelError,
    UnsafeFileError,
    WeightsNotFoundError,
)
from mf_models.registry import FAMILIES, load_config, mf_home, preset_config, preset_names

__version__ = _version("mf-models")

_LAZY = {
    "AutoConfig": "mf_models.auto",
    "AutoModel": "mf_models.auto",
    "AutoModelForCausalLM": "mf_models.auto",
    "CausalLM": "mf_models.models.base",
    "StepFunction": "mf_models.models.base",
    "KVCache": "mf_models.modules.kv_cache",
    "GPT2LMHeadModel": "mf_models.models.gpt2",
    "LlamaForCausalLM": "mf_models.models.llama",
    "BloomLMHeadModel": "mf_models.models.bloom",
    "GLMForConditionalGeneration": "mf_models.models.glm",
    "GLMChatModel": "mf_models.models.glm",
    "ChatGLM2ForConditionalGeneration": "mf_models.models.glm2",
    "PanguAlphaHeadModel": "mf_models.models.pangualpha",
    "GLMConfig": "mf_models.configs",
    "ChatGLM2Config": "mf_models.configs",
    "PanguAlphaConfig": "mf_models.configs",
    # BERT and the task Auto classes (issue 14, text half)
    "AutoModelForMaskedLM": "mf_models.auto",
    "AutoModelForSequenceClassification": "mf_models.auto",
    "AutoModelForTokenClassification": "mf_models.auto",
    "AutoModelForQuestionAnswering": "mf_models.auto",
    "PreTrainedModel": "mf_models.models.pretrained",
    "BertConfig": "mf_models.configs.bert",
    "BertModel": "mf_models.models.bert",
    "BertForMaskedLM": "mf_models.models.bert",
    "BertForSequenceClassification": "mf_models.models.bert",
    "BertForTokenClassification": "mf_models.models.bert",
    "BertForQuestionAnswering": "mf_models.models.bert",
    "AutoModelForSeq2SeqLM": "mf_models.auto",
    "T5Config": "mf_models.configs.t5",
    "T5ForConditionalGeneration": "mf_models.models.t5",
}
# The image families (issue 14, vision half) and the output classes.
_LAZY.update({
    "AutoModelForImageClassification": "mf_models.auto",
    "TaskModel": "mf_models.models.pretrained",
    "ViTForImageClassification": "mf_models.models.vit",
    "SwinForImageClassification": "mf_models.models.swin",
    "ViTMAEForPreTraining": "mf_models.models.mae",
    "CLIPModel": "mf_models.models.clip",
    "ViTConfig": "mf_models.configs",
    "SwinConfig": "mf_models.configs",
    "ViTMAEConfig": "mf_models.configs",
    "CLIPConfig": "mf_models.configs",
    "ModelOutput": "mf_models.outputs",
    "ImageClassifierOutput": "mf_models.outputs",
    "ViTMAEForPreTrainingOutput": "mf_models.outputs",
    "CLIPOutput": "mf_models.outputs",
})


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mf_models' has no attribute {name!r}")


__all__ = [
    "ModelConfig", "GPT2Config", "LlamaConfig", "BloomConfig", "model_dims", "memory_inputs",
    "FAMILIES",
    "load_config", "preset_config", "preset_names", "mf_home", "ModelError", "ModelConfigError",
    "UnknownModelError", "WeightsNotFoundError", "CheckpointMismatchError", "UnsafeFileError",
    "CorruptWeightsError", "NonFiniteWeightsError",
    *_LAZY,
]
