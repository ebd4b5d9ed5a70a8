"""Training gradients equal torch's autograd through Hugging Face transformers.

Fixtures from fixtures/make_grad_fixtures.py: the loss and the gradients of the first block
and of every norm and bias, for the tiny checkpoints of test_hf_parity.py. The first block's
gradients pass back through every later block, so this checks the backward of every piece of
the math, including those written for speed (the GELU as plain ops, the softmax's backward).
Gradients go to HF names and layouts by the same table as an HF export.
"""

from __future__ import annotations

from pathlib import Path

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor
from safetensors.numpy import load_file

from mf_models import AutoModelForCausalLM
from mf_models.registry import family_of_config
from mf_models.weights.hf import mf_to_hf

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RTOL = 1e-4  # of the largest gradient of each tensor: fp32 on both sides


@pytest.mark.parametrize("family", ["gpt2", "llama", "bloom"])
def test_loss_and_gradients_match_torch_autograd(family):
    model = AutoModelForCausalLM.from_pretrained(FIXTURES / family / "hf")
    expected = load_file(str(FIXTURES / family / "grads.safetensors"))
    ids = Tensor(load_file(str(FIXTURES / family / "expected.safetensors"))["input_ids"])
    weights = model.trainable_params()

    def loss_fn(tokens):
        return model(tokens, tokens)[0]

    loss, grads = ms.value_and_grad(loss_fn, None, weights)(ids)
    assert float(loss.asnumpy()) == pytest.approx(float(expected["loss"]), rel=1e-5)

    ours = model.state_dict()  # any tensor without a gradient keeps its shape
    ours.update({w.name: g.asnumpy() for w, g in zip(weights, grads, strict=True)})
    table = family_of_config(model.config).mapping().table_for(model.config)
    ours_hf = mf_to_hf(table, ours, model.config)
    names = [name for name in expected if name != "loss"]
    assert len(names) >= 12
    for name in names:
        want = expected[name]
        got = ours_hf[name]
        assert got.shape == want.shape, name
        assert np.abs(got - want).max() <= RTOL * np.abs(want).max() + 1e-7, name
