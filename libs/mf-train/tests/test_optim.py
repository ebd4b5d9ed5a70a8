"""mf-train's AdamW (MindSpore's fused AdamWeightDecay kernel) against nn.AdamWeightDecay, the
optimizer MindFormers trains with: same update, same state names, driven by the LR array."""

from __future__ import annotations

import numpy as np
import pytest

from mf_train.lr_schedule import learning_rates, make_schedule
from mf_train.optim import build_adamw, optimizer_state, optimizer_step

ms = pytest.importorskip("mindspore")


def _params(seed: int):
    rng = np.random.default_rng(seed)
    return [ms.Parameter(ms.Tensor(rng.standard_normal(shape).astype(np.float32)), name=name)
            for name, shape in (("layer.weight", (5, 3)), ("layer.bias", (3,)),
                                ("norm.weight", (4,)))]


def _run(optimizer, params, steps: int):
    def update(grads):
        return optimizer(grads)

    step = ms.jit(update)
    rng = np.random.default_rng(7)
    for _ in range(steps):
        step(tuple(ms.Tensor(rng.standard_normal(p.shape).astype(np.float32)) for p in params))
    return {p.name: p.asnumpy().copy() for p in params}


def test_fused_adamw_is_mindspores_adamweightdecay():
    from mindspore import nn

    lrs = learning_rates(make_schedule("cosine", 1e-2, warmup_steps=1, total_steps=5), 6)
    ours_params, ref_params = _params(0), _params(0)
    ours = build_adamw(ours_params, lrs, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1)
    reference = nn.AdamWeightDecay(
        [{"params": [ref_params[0]], "weight_decay": 0.1},  # matrices decay, vectors do not
         {"params": ref_params[1:], "weight_decay": 0.0}],
        learning_rate=ms.Tensor(lrs), beta1=0.9, beta2=0.95, eps=1e-8)
    got, expected = _run(ours, ours_params, 5), _run(reference, ref_params, 5)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    state = optimizer_state(ours)
    reference_state = optimizer_state(reference)
    assert sorted(state) == sorted(reference_state)  # adam_m.*, adam_v.*, global_step
    for name in state:
        np.testing.assert_array_equal(state[name], reference_state[name], err_msg=name)
    assert optimizer_step(ours) == 5
