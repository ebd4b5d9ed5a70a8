"""Parity with Hugging Face transformers on tiny random checkpoints (fixtures/make_hf_fixtures.py).

The fixtures were computed by torch + transformers; these tests load them through our importer,
with no torch: fp32 logits within 1e-4, greedy continuation of 32 tokens identical.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mindspore import Tensor
from models_greedy import greedy_with_cache
from safetensors.numpy import load_file

from mf_models import AutoModelForCausalLM

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FAMILIES = ["gpt2", "llama", "bloom"]
ATOL = 1e-4


@pytest.fixture(scope="module", params=FAMILIES)
def loaded(request):
    family = request.param
    model = AutoModelForCausalLM.from_pretrained(FIXTURES / family / "hf")
    expected = load_file(str(FIXTURES / family / "expected.safetensors"))
    return family, model, expected


def test_imported_model_is_the_right_family(loaded):
    family, model, _ = loaded
    assert model.config.family == family
    assert model.config.num_layers == 2


def test_logits_match_transformers(loaded):
    _, model, expected = loaded
    logits = model(Tensor(expected["input_ids"])).asnumpy()
    assert logits.shape == expected["logits"].shape
    assert np.abs(logits - expected["logits"]).max() < ATOL


def test_left_padded_logits_match_transformers(loaded):
    _, model, expected = loaded
    mask = expected["padded_mask"]
    logits = model(Tensor(expected["padded_ids"]), None, Tensor(mask)).asnumpy()
    real = mask.astype(bool)  # padded query rows are undefined in both frameworks
    assert np.abs(logits[real] - expected["padded_logits"][real]).max() < ATOL


def test_greedy_32_tokens_match_transformers_generate(loaded):
    _, model, expected = loaded
    prompt, mask = expected["prompt_ids"], expected["prompt_mask"]
    new = expected["greedy_ids"].shape[1] - prompt.shape[1]
    ours = greedy_with_cache(model, prompt, mask, new)
    np.testing.assert_array_equal(ours, expected["greedy_ids"])


def test_loss_is_cross_entropy_of_the_reference_logits(loaded):
    _, model, expected = loaded
    ids = expected["input_ids"]
    labels = ids.copy()
    labels[0, 5:] = -100
    loss, _ = model(Tensor(ids), Tensor(labels))
    ref = expected["logits"].astype(np.float64)[:, :-1]
    targets = labels[:, 1:]
    log_probs = ref - np.log(np.exp(ref).sum(-1, keepdims=True))
    valid = targets != -100
    picked = np.take_along_axis(log_probs, np.where(valid, targets, 0)[..., None], -1)[..., 0]
    assert abs(float(loss.asnumpy()) - (-picked[valid].mean())) < 1e-4
