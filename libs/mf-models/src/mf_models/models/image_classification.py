"""The image-classification head ViT and Swin share: pooled features -> `head` (classes), with
Hugging Face's classification loss and one-line errors for bad pixels or labels."""

from __future__ import annotations

from typing import Any

from mindspore import dtype as mstype
from mindspore import ops

from mf_models.errors import ModelConfigError
from mf_models.models.pretrained import TaskModel
from mf_models.modules.vision import (
    check_class_labels,
    check_pixel_values,
    classification_loss,
)
from mf_models.outputs import ImageClassifierOutput


class ImageClassifier(TaskModel):
    """`model(pixel_values, labels=None)` -> ImageClassifierOutput(loss, logits). A family
    writes `features(pixel_values) -> (B, width)` and builds `self.head`."""

    output_class = ImageClassifierOutput

    def features(self, pixel_values):
        raise NotImplementedError

    def construct(self, pixel_values, labels=None):
        logits = ops.cast(self.head(self.features(pixel_values)), mstype.float32)  # (B, classes)
        if labels is None:
            return (logits,)
        cfg = self.config
        return classification_loss(logits, labels, cfg.num_labels, cfg.ignore_token_id), logits

    def check_inputs(self, arguments: dict[str, Any]) -> None:
        cfg = self.config
        pixels = check_pixel_values(arguments.get("pixel_values"), cfg.num_channels,
                                    cfg.image_size)
        if arguments.get("labels") is not None:
            labels = check_class_labels(arguments["labels"], cfg.num_labels, cfg.ignore_token_id)
            if labels.shape[0] != pixels.shape[0]:
                raise ModelConfigError(f"{labels.shape[0]} labels for {pixels.shape[0]} images: "
                                       "give one label per image")
