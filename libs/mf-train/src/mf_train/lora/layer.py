"""`LoraLinear`: a frozen `mf_models` Linear plus a trainable low-rank update.

    y = base(x) + (B A dropout(x)) * alpha / rank        (Hu et al. 2021, arXiv:2106.09685)

A (rank, in) and B (out, rank) are stored as MindFormers' LoRADense and peft store them, so
the update of a weight kept (out, in) is B @ A. B starts at zero, so at step 0 the adapted
layer returns the base output bit for bit; A is Kaiming-uniform with a = sqrt(5), peft's and
the reference implementation's init, i.e. U(-1/sqrt(in), 1/sqrt(in)).
"""

from __future__ import annotations

import math

import numpy as np
from mindspore import Parameter, Tensor, nn, ops

from mf_train.lora.config import LORA_A_NAME, LORA_B_NAME

# A and B are read in place ((N, in) x (r, in)^T), never transposed copies; see mf_models'
# tied_logits for what a transposed copy costs under jit.
_MATMUL_NT = ops.MatMul(transpose_b=True)


def kaiming_uniform_a(rank: int, in_features: int, rng: np.random.Generator) -> np.ndarray:
    """A (rank, in) ~ U(-b, b), b = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)), a =
    sqrt(5): torch's kaiming_uniform_(a=sqrt(5)), which peft and microsoft/LoRA apply to A."""
    gain = math.sqrt(2.0 / (1.0 + 5.0))
    bound = gain * math.sqrt(3.0 / in_features)  # = 1 / sqrt(in_features)
    return rng.uniform(-bound, bound, size=(rank, in_features)).astype(np.float32)


class LoraLinear(nn.Cell):
    """Wraps one `mf_models.modules.layers.Linear` (kept as `base`, frozen by `apply_lora`).

    `auto_prefix=False` so that holding `base` does not rename its parameters: the base keeps
    MindFormers' name (`...attention.wq.weight`) and A and B are named as in MindFormers' LoRA
    checkpoints (`...attention.wq.mindpet_delta_lora_a`, `..._lora_b`).
    """

    def __init__(self, base, path: str, rank: int, alpha: float, dropout: float,
                 rng: np.random.Generator):
        super().__init__(auto_prefix=False)
        self.base = base
        self.path = path
        weight = base.weight
        # A square weight cannot tell its layout by shape; the matmul flag can.
        self.weight_is_out_in = bool(base.matmul.transpose_b)
        self.in_features = _in_features(base)
        self.out_features = base.out_features
        self.rank = rank
        self.scaling = float(alpha) / rank
        np_dtype = weight.asnumpy().dtype
        self.lora_a = Parameter(Tensor(kaiming_uniform_a(rank, self.in_features, rng)
                                       .astype(np_dtype)), name=f"{path}.{LORA_A_NAME}")
        self.lora_b = Parameter(Tensor(np.zeros((self.out_features, rank), np_dtype)),
                                name=f"{path}.{LORA_B_NAME}")
        self.compute_dtype = base.compute_dtype
        # No dropout cell at p = 0: nothing random in the graph, and eval == train exactly.
        self.dropout = nn.Dropout(p=dropout) if dropout > 0 else None

    def construct(self, x):
        y = self.base(x)  # (..., out), exactly what the frozen layer computes alone
        lead = x.shape[:-1]
        h = x if self.dropout is None else self.dropout(x)
        h = ops.cast(h.reshape(-1, self.in_features), self.compute_dtype)  # (N, in)
        down = _MATMUL_NT(h, ops.cast(self.lora_a, self.compute_dtype))  # (N, r)
        up = _MATMUL_NT(down, ops.cast(self.lora_b, self.compute_dtype))  # (N, out)
        return y + (up * self.scaling).reshape(lead + (self.out_features,))

    def delta_weight(self) -> np.ndarray:
        """The update B A * alpha / rank in the base weight's own layout, as float32."""
        a = self.lora_a.asnumpy().astype(np.float32)
        b = self.lora_b.asnumpy().astype(np.float32)
        delta = (b @ a) * np.float32(self.scaling)  # (out, in)
        return delta if self.weight_is_out_in else delta.T  # (in, out) for MindFormers' layout

    def num_lora_parameters(self) -> int:
        return self.rank * (self.in_features + self.out_features)


def _in_features(base) -> int:
    """`Linear` stores (out, in) or (in, out); the side that is not out_features is `in`."""
    rows, cols = base.weight.shape
    if base.matmul.transpose_b:
        return int(cols)
    return int(rows)
