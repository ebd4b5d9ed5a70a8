"""MindSpore's AdamW for a run YAML's `optimizer:`, and its state as named numpy arrays.

`nn.AdamWeightDecay` is MindSpore's AdamW: decoupled weight decay (Loshchilov & Hutter 2019)
and, unlike torch's AdamW, no bias correction of the moments (the BERT optimizer it descends
from has none); MindFormers trains with it, and so does mf. The learning rate is the per-step
array of `lr_schedule.learning_rates`, indexed in the graph by the optimizer's `global_step`,
so the schedule never recompiles anything and resumes with `global_step`.

Weight decay applies to matrices only (ndim >= 2): norms' gains and biases are not decayed,
as in MindFormers' default parameter grouping and nanoGPT.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mf_train.errors import CheckpointMismatchError

# Optimizer parameters that are state (saved in a checkpoint); the learning-rate array is not:
# it is rebuilt from the schedule, and the weights themselves go to model.safetensors.
STATE_PREFIXES = ("adam_m.", "adam_v.")
GLOBAL_STEP = "global_step"


def build_adamw(params: Sequence[Any], learning_rates: np.ndarray, *, beta1: float,
                beta2: float, eps: float, weight_decay: float) -> Any:
    """`nn.AdamWeightDecay` over `params`, decaying only matrices, driven by the LR array."""
    import mindspore as ms
    from mindspore import nn

    decay = [p for p in params if len(p.shape) >= 2]
    no_decay = [p for p in params if len(p.shape) < 2]
    groups = []
    if decay:
        groups.append({"params": decay, "weight_decay": weight_decay})
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    lrs = ms.Tensor(np.asarray(learning_rates, dtype=np.float32))
    return nn.AdamWeightDecay(groups, learning_rate=lrs, beta1=beta1, beta2=beta2, eps=eps)


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


def write_in_place(param: Any, value: np.ndarray) -> None:
    """Overwrite a parameter's values where they are (`ops.assign`).

    `Parameter.set_data` swaps in a new buffer that graphs compiled earlier never see
    (measured: a jit function kept returning the old values), so restored weights and moments
    are assigned in place instead.
    """
    import mindspore as ms
    from mindspore import ops

    target = param.asnumpy().dtype
    ops.assign(param, ms.Tensor(np.ascontiguousarray(value, dtype=target)))


def optimizer_step(optimizer: Any) -> int:
    """How many updates the optimizer has applied (its `global_step`)."""
    return int(optimizer.global_step.asnumpy().reshape(-1)[0])
