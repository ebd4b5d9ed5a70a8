"""Config dataclasses, one per family. No MindSpore here."""

from mf_models.configs.base import ModelConfig
from mf_models.configs.bloom import BloomConfig
from mf_models.configs.glm import GLMConfig
from mf_models.configs.glm2 import ChatGLM2Config
from mf_models.configs.gpt2 import GPT2Config
from mf_models.configs.llama import LlamaConfig
from mf_models.configs.pangualpha import PanguAlphaConfig

__all__ = ["ModelConfig", "GPT2Config", "LlamaConfig", "BloomConfig", "GLMConfig", "ChatGLM2Config",
           "PanguAlphaConfig"]

# The image families.
from mf_models.configs.clip import CLIPConfig, CLIPTextConfig, CLIPVisionConfig  # noqa: E402
from mf_models.configs.mae import ViTMAEConfig  # noqa: E402
from mf_models.configs.swin import SwinConfig  # noqa: E402
from mf_models.configs.vit import ViTConfig  # noqa: E402

__all__ += ["ViTConfig", "SwinConfig", "ViTMAEConfig", "CLIPConfig", "CLIPTextConfig",
            "CLIPVisionConfig"]
