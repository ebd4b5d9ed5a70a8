"""AdamW with its state split over the data-parallel ranks (`parallel_config.optimizer_shard`).

ZeRO stage 1 (Rajbhandari et al. 2020), as MindSpore's parallel optimizer shards it: data-
parallel rank i of n keeps the moments of rows [i * d0 / n, (i + 1) * d0 / n) of every
parameter whose dim 0 divides by n (mf_parallel's `optimizer_layout`; the others keep whole
moments, replicated, as MindSpore leaves them), updates only those rows from its slice of the
all-reduced gradient, and the updated rows are gathered over the group so every rank holds the
whole (model-parallel-local) parameter for the next forward. The moments, the largest state of
a run (2 x the parameters in fp32), shrink n times.

On CPU the gather is a zero-filled AllReduce unless the group is the whole world (native
AllGather); on Ascend/GPU the gradient's AllReduce-then-slice would be a ReduceScatter.

The update is `nn.AdamWeightDecay`'s (no bias correction, decay on matrices only, the learning
rate of `global_step`), written as ops: the fused kernel of `mf_train.optim` updates a whole
Parameter in place, and a slice of one is not a Parameter. State names are the same
(`adam_m.<param>`, `adam_v.<param>`, `global_step`), with the shapes of the slices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mindspore as ms
import numpy as np
from mf_parallel.collectives import AllGather, Group
from mindspore import Parameter, ParameterTuple, nn, ops
from mindspore import dtype as mstype

from mf_train.optim import GLOBAL_STEP


class ShardedAdamW(nn.Cell):
    """AdamW over `params` whose moments this data-parallel rank holds a slice of."""

    def __init__(self, params: Sequence[Any], learning_rates: np.ndarray, *, group: Group,
                 beta1: float, beta2: float, eps: float, weight_decay: float):
        super().__init__(auto_prefix=False)
        params = list(params)
        self.parameters = ParameterTuple(params)
        n, i = group.size, group.index
        # (first row, rows) of this rank's slice, or None: dim 0 does not divide (kept whole)
        self.rows = tuple((i * (p.shape[0] // n), p.shape[0] // n)
                          if n > 1 and len(p.shape) and p.shape[0] % n == 0 else None
                          for p in params)

        def moments(prefix: str) -> ParameterTuple:
            return ParameterTuple(
                Parameter(ms.Tensor(np.zeros(self._state_shape(p, rows), np.float32)),
                          name=f"{prefix}.{p.name}", requires_grad=False)
                for p, rows in zip(params, self.rows, strict=True))

        self.moments1 = moments("adam_m")
        self.moments2 = moments("adam_v")
        self.global_step = Parameter(ms.Tensor([0], mstype.int32), name=GLOBAL_STEP,
                                     requires_grad=False)
        self.learning_rate = Parameter(
            ms.Tensor(np.asarray(learning_rates, dtype=np.float32)), name="learning_rate",
            requires_grad=False)
        self.decays = tuple(float(weight_decay) if len(p.shape) >= 2 else 0.0 for p in params)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.gather = AllGather(group, 0)

    @staticmethod
    def _state_shape(param: Any, rows: tuple[int, int] | None) -> tuple[int, ...]:
        return tuple(param.shape) if rows is None else (rows[1],) + tuple(param.shape[1:])

    @property
    def state_bytes(self) -> int:
        """Bytes of the moments this rank holds."""
        return sum(m.nbytes for m in (*self.moments1, *self.moments2))

    def construct(self, grads):
        lr = ops.gather(self.learning_rate, self.global_step, 0).reshape(())
        for k in range(len(self.decays)):
            param, grad, rows = self.parameters[k], grads[k], self.rows[k]
            weight = param  # read before the assign below (MindSpore orders side effects)
            if rows is not None:
                weight = ops.narrow(param, 0, rows[0], rows[1])
                grad = ops.narrow(grad, 0, rows[0], rows[1])
            m = self.beta1 * self.moments1[k] + (1.0 - self.beta1) * grad
            v = self.beta2 * self.moments2[k] + (1.0 - self.beta2) * (grad * grad)
            update = m / (ops.sqrt(v) + self.eps)
            if self.decays[k] > 0.0:
                update = update + self.decays[k] * weight
            weight = weight - lr * update
            ops.assign(self.moments1[k], m)
            ops.assign(self.moments2[k], v)
            if rows is not None:
                weight = self.gather(weight)  # every rank's rows -> the whole parameter
            ops.assign(param, weight)
        ops.assign_add(self.global_step, ops.ones_like(self.global_step))
        return lr
