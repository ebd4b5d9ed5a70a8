"""Building blocks the image families share: patches, the MLP activation by Hugging Face's
name, checks of what a caller hands in, and the classification head's loss."""

from __future__ import annotations

import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore import dtype as mstype

from mf_models.errors import ModelConfigError
from mf_models.modules.layers import DTYPE, activation, filled, normal
from mf_models.modules.losses import cross_entropy

# Hugging Face's activation names (configs/vision.py) -> `layers.activation`'s names.
HF_TO_MF_ACTIVATION = {"gelu": "gelu_exact", "gelu_new": "gelu", "gelu_pytorch_tanh": "gelu",
                "quick_gelu": "fast_gelu", "relu": "relu"}


def hf_activation(name: str, x):
    """The MLP activation called `name` in a Hugging Face config ("gelu" is the exact GELU;
    "quick_gelu" is x * sigmoid(1.702 x), which is MindSpore's FastGelu)."""
    return activation(HF_TO_MF_ACTIVATION[name], x)


def patchify(pixel_values, patch: int):
    """(B, C, H, W) -> (B, H/P * W/P, C * P * P): each patch flattened in (channel, row,
    column) order, the order of a Conv2d weight (out, C, P, P)."""
    b, c, h, w = pixel_values.shape
    x = pixel_values.reshape(b, c, h // patch, patch, w // patch, patch)  # (B, C, h, P, w, P)
    x = x.transpose(0, 2, 4, 1, 3, 5)  # (B, h, w, C, P, P)
    return x.reshape(b, (h // patch) * (w // patch), c * patch * patch)


_MATMUL_NT = ops.MatMul(transpose_b=True)


class PatchProjection(nn.Cell):
    """The patch embedding: a Conv2d with stride = kernel = P, computed as patchify + one
    matmul (the same sums; no im2col). `weight` keeps the Conv2d's shape (out, C, P, P), so
    checkpoints of the conv load as they are."""

    def __init__(self, config, rng: np.random.Generator, in_channels: int, out_channels: int,
                 patch: int, bias: bool = True):
        super().__init__()
        shape = (out_channels, in_channels, patch, patch)
        self.weight = Parameter(normal(shape, config.initializer_range, config.param_init_type,
                                       rng), name="weight")
        self.bias = (Parameter(filled((out_channels,), 0.0, config.param_init_type), name="bias")
                     if bias else None)
        self.patch = patch
        self.out_channels = out_channels
        self.compute_dtype = DTYPE[config.compute_dtype]

    def construct(self, pixel_values):
        patches = patchify(ops.cast(pixel_values, self.compute_dtype), self.patch)  # (B, N, K)
        b, n, k = patches.shape
        weight = ops.cast(self.weight, self.compute_dtype).reshape(self.out_channels, k)
        y = _MATMUL_NT(patches.reshape(b * n, k), weight)  # (B*N, out)
        if self.bias is not None:
            y = y + ops.cast(self.bias, self.compute_dtype)
        return y.reshape(b, n, self.out_channels)  # (B, N, out)


def check_pixel_values(pixel_values, channels: int, size: int) -> Tensor:
    """pixel_values as a float32 Tensor (B, channels, size, size), or a one-line error naming
    the shape given and the one the model takes (before MindSpore fails with a C++ stack)."""
    array = pixel_values.asnumpy() if isinstance(pixel_values, Tensor) else np.asarray(
        pixel_values)
    expected = f"(batch, {channels}, {size}, {size})"
    if array.ndim != 4 or array.shape[1:] != (channels, size, size) or array.shape[0] < 1:
        raise ModelConfigError(f"pixel_values shape {tuple(array.shape)} does not fit the model: "
                               f"expected {expected} (channels first, as the image processor "
                               f"returns them)")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise ModelConfigError(f"pixel_values dtype {array.dtype} is not a real number type")
    return Tensor(array.astype(np.float32, copy=False))


def check_class_labels(labels, num_labels: int, ignore_index: int) -> Tensor:
    """Class ids (B,) in [0, num_labels) (or ignore_index) as int32; float targets (B,) for a
    one-output regression head. One-line error for anything else."""
    array = labels.asnumpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if num_labels == 1:
        return Tensor(array.astype(np.float32).reshape(-1))
    if not np.issubdtype(array.dtype, np.integer):
        raise ModelConfigError(f"labels must be integer class ids, got dtype {array.dtype}")
    bad = array[(array != ignore_index) & ((array < 0) | (array >= num_labels))]
    if bad.size:
        raise ModelConfigError(f"label {int(bad.flat[0])} is outside the model's {num_labels} "
                               f"classes [0, {num_labels})")
    return Tensor(array.astype(np.int32).reshape(-1))


def classification_loss(logits, labels, num_labels: int, ignore_index: int):
    """Hugging Face's loss for a classification head: cross-entropy over the classes, or the
    mean squared error when the head has a single output (regression)."""
    if num_labels == 1:
        diff = logits.reshape(-1) - ops.cast(labels, mstype.float32).reshape(-1)
        return (diff * diff).mean()
    return cross_entropy(logits, labels, ignore_index)
