"""MindSpore's AdamW for a run YAML's `optimizer:`, and its state as named numpy arrays.

AdamW here is MindSpore's fused `ops.AdamWeightDecay` kernel, one call per parameter in the
compiled step: the update of `nn.AdamWeightDecay` (decoupled weight decay, Loshchilov & Hutter
2019, and, unlike torch's AdamW, no bias correction of the moments: MindFormers trains with
it), bit for bit (tests/test_optim.py), at 0.17 s instead of 0.40 s per step for the 41M
parameters of benchmarks/train.py. The state keeps `nn.AdamWeightDecay`'s names
(`adam_m.<param>`, `adam_v.<param>`, `global_step`).

The learning rate is the per-step array of `lr_schedule.learning_rates`, indexed in the graph
by `global_step`, so the schedule never recompiles anything and resumes with `global_step`.
Weight decay applies to matrices only (ndim >= 2): norms' gains and biases are not decayed,
as in MindFormers' default parameter grouping and nanoGPT.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from mf_models.weights.io import write_in_place

from mf_train.errors import CheckpointMismatchError

# Optimizer parameters that are state (saved in a checkpoint); the learning-rate array is not:
# it is rebuilt from the schedule, and the weights themselves go to model.safetensors.
STATE_PREFIXES = ("adam_m.", "adam_v.")
GLOBAL_STEP = "global_step"


def build_adamw(params: Sequence[Any], learning_rates: np.ndarray, *, beta1: float,
                beta2: float, eps: float, weight_decay: float) -> Any:
    """AdamW over `params`, decaying only matrices, driven by the per-step LR array."""
    return _adamw_class()(params, learning_rates, beta1=beta1, beta2=beta2, eps=eps,
                          weight_decay=weight_decay)


def _adamw_class() -> type:
    """The AdamW cell; defined on first use so that importing this module needs no MindSpore."""
    global _AdamW
    if _AdamW is not None:
        return _AdamW
    import mindspore as ms
    from mindspore import Parameter, ParameterTuple, nn, ops
    from mindspore import dtype as mstype

    class AdamW(nn.Cell):
        """`nn.AdamWeightDecay`'s update through the fused kernel; call with the gradients."""

        def __init__(self, params: Sequence[Any], learning_rates: np.ndarray, *,
                     beta1: float, beta2: float, eps: float, weight_decay: float):
            super().__init__(auto_prefix=False)
            params = list(params)
            self.parameters = ParameterTuple(params)
            self.moments1 = ParameterTuple(
                Parameter(ms.Tensor(np.zeros(p.shape, np.float32)), name=f"adam_m.{p.name}",
                          requires_grad=False) for p in params)
            self.moments2 = ParameterTuple(
                Parameter(ms.Tensor(np.zeros(p.shape, np.float32)), name=f"adam_v.{p.name}",
                          requires_grad=False) for p in params)
            self.global_step = Parameter(ms.Tensor([0], mstype.int32), name=GLOBAL_STEP,
                                         requires_grad=False)
            self.learning_rate = Parameter(
                ms.Tensor(np.asarray(learning_rates, dtype=np.float32)), name="learning_rate",
                requires_grad=False)
            self.decays = tuple(float(weight_decay) if len(p.shape) >= 2 else 0.0
                                for p in params)
            self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
            self.kernel = ops.AdamWeightDecay()

        def construct(self, grads):
            lr = ops.gather(self.learning_rate, self.global_step, 0).reshape(())
            for i in range(len(self.decays)):
                self.kernel(self.parameters[i], self.moments1[i], self.moments2[i], lr,
                            self.beta1, self.beta2, self.eps, self.decays[i], grads[i])
            ops.assign_add(self.global_step, ops.ones_like(self.global_step))
            return lr

    _AdamW = AdamW
    return AdamW


_AdamW: type | None = None


def optimizer_state(optimizer: Any) -> dict[str, np.ndarray]:
    """The moments and the step counter, by MindSpore's names (`adam_m.<param>`, ...).

    Copies: `Parameter.asnumpy()` shares memory with the parameter on CPU (measured), so a
    view would change under the next update.
    """
    out: dict[str, np.ndarray] = {}
    for param in optimizer.get_parameters():
        if param.name == GLOBAL_STEP or param.name.startswith(STATE_PREFIXES):
            out[param.name] = param.asnumpy().copy()
    return out


def load_optimizer_state(optimizer: Any, state: Mapping[str, np.ndarray],
                         source: str = "checkpoint") -> None:
    """Copy saved moments and step counter back; a missing or misshapen entry is refused."""
    expected = {p.name: p for p in optimizer.get_parameters()
                if p.name == GLOBAL_STEP or p.name.startswith(STATE_PREFIXES)}
    missing = sorted(set(expected) - set(state))
    if missing:
        raise CheckpointMismatchError(
            f"{source}: optimizer state lacks {missing[0]!r} ({len(missing)} of "
            f"{len(expected)} entries missing); was it saved with another model or pet_method?")
    for name, param in expected.items():
        value = np.asarray(state[name])
        if tuple(value.shape) != tuple(param.shape):
            raise CheckpointMismatchError(
                f"{source}: optimizer state {name!r} has shape {tuple(value.shape)}, the "
                f"optimizer needs {tuple(param.shape)}")
        write_in_place(param, value)


def optimizer_step(optimizer: Any) -> int:
    """How many updates the optimizer has applied (its `global_step`)."""
    return int(optimizer.global_step.asnumpy().reshape(-1)[0])
