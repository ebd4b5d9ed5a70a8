"""What the image families share (ViT, Swin, MAE, CLIP's towers): image geometry, the MLP
activation by Hugging Face's name, and the class labels of a classification head.

No MindSpore here. The fields a language model needs and an image model does not (vocabulary,
special token ids, the KV cache switch) are left out of the saved config; `seq_length` is the
number of tokens the encoder sees, derived from the image and patch sizes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from mf_models.configs.base import ModelConfig
from mf_models.errors import ModelConfigError

# Hugging Face's ACT2FN names, which the vision configs of MindFormers and transformers share:
# "gelu" is the exact (erf) GELU, as torch's nn.GELU that ViT, Swin and MAE were trained with
# (GPT2Config's "gelu" is the tanh form: MindFormers' LLM naming); "gelu_new" and
# "gelu_pytorch_tanh" are the tanh form; "quick_gelu" is CLIP's x * sigmoid(1.702 x).
ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "quick_gelu", "relu")

# ModelConfig fields an image model has no use for: left out of its saved config.
_TEXT_ONLY = ("vocab_size", "bos_token_id", "eos_token_id", "pad_token_id", "use_past")


def check_activation(name: str) -> None:
    if name not in ACTIVATIONS:
        raise ModelConfigError(f"hidden_act={name!r} is not one of {', '.join(ACTIVATIONS)}")


@dataclasses.dataclass
class VisionConfig(ModelConfig):
    """Base of the image configs: square images cut into square patches."""

    memory_kind: ClassVar[str] = "vision"
    # HF config.json and MindFormers' vision yaml files both spell these the HF way.
    hf_key_map: ClassVar[dict[str, str]] = {
        "num_hidden_layers": "num_layers", "num_attention_heads": "num_heads",
    }
    aliases: ClassVar[dict[str, str]] = {
        "num_hidden_layers": "num_layers", "num_attention_heads": "num_heads",
        "in_chans": "num_channels", "num_classes": "num_labels",
    }

    vocab_size: int = 1  # unused: an image model has no vocabulary
    image_size: int = 224
    patch_size: int = 16
    num_channels: int = 3
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    qkv_bias: bool = True

    def __post_init__(self) -> None:
        self._check_positive("image_size", "patch_size", "num_channels")
        if self.image_size % self.patch_size:
            raise ModelConfigError(f"patch_size({self.patch_size}) must divide image_size"
                                   f"({self.image_size})")
        self.seq_length = self.num_tokens
        super().__post_init__()
        self._check_positive("intermediate_size")
        check_activation(self.hidden_act)

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def num_tokens(self) -> int:
        """Tokens the encoder sees: the patches and a class token."""
        return self.num_patches + 1

    @property
    def ffn_hidden_size(self) -> int:
        return self.intermediate_size

    @property
    def max_positions(self) -> int:
        return self.num_tokens

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        for key in (*_TEXT_ONLY, "seq_length"):
            out.pop(key, None)
        return out

    def encoder_layer_count(self, width: int, ffn: int) -> int:
        """Weights of one pre-LayerNorm encoder layer of this width (q/k/v, output, MLP)."""
        qkv_bias = 3 * width if self.qkv_bias else 0
        return 4 * width + 3 * width * width + qkv_bias + width * width + width \
            + width * ffn + ffn + ffn * width + width


@dataclasses.dataclass
class ImageClassifierConfig(VisionConfig):
    """A vision config with a classification head: `num_labels` classes named by `id2label`
    (Hugging Face's field; MindFormers says `num_classes`)."""

    num_labels: int = 1000
    id2label: dict[int, str] | None = None

    def __post_init__(self) -> None:
        if self.id2label is not None:
            self.id2label = _label_map(self.id2label)
            self.num_labels = len(self.id2label)
        super().__post_init__()
        self._check_positive("num_labels")

    @property
    def labels(self) -> list[str]:
        """Class names by id: `id2label`, or Hugging Face's `LABEL_<i>` when it has none."""
        if self.id2label is None:
            return [f"LABEL_{i}" for i in range(self.num_labels)]
        return [self.id2label[i] for i in range(self.num_labels)]

    def label_id(self, label: str) -> int:
        """The id of a class name (one-line error naming the classes if it is not one)."""
        names = self.labels
        if label not in names:
            shown = ", ".join(repr(n) for n in names[:10]) + (" ..." if len(names) > 10 else "")
            raise ModelConfigError(f"label {label!r} is not one of the model's {len(names)} "
                                   f"classes: {shown}")
        return names.index(label)

    def hf_labels(self) -> dict[str, Any]:
        """`id2label` / `label2id` as Hugging Face writes them (string ids)."""
        names = self.labels
        return {"id2label": {str(i): n for i, n in enumerate(names)},
                "label2id": {n: i for i, n in enumerate(names)}}


def _label_map(raw: Mapping[Any, Any]) -> dict[int, str]:
    """{0: "cat", ...} from JSON's {"0": "cat"} or YAML's {0: cat}; ids must be 0..n-1."""
    try:
        labels = {int(k): str(v) for k, v in raw.items()}
    except (TypeError, ValueError, AttributeError):
        raise ModelConfigError(f"id2label must map class ids to names, got {raw!r}") from None
    if sorted(labels) != list(range(len(labels))):
        raise ModelConfigError(f"id2label ids must be 0..{len(labels) - 1}, got "
                               f"{sorted(labels)}")
    return labels
