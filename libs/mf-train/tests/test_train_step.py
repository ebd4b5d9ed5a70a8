"""The compiled train step: its loss, clipping, gradient accumulation, recompute, and the
skipped update on non-finite gradients. Two steps are compiled here (~10 s each); the
assertions share them."""

from __future__ import annotations

import numpy as np
import pytest
from train_fixtures import TINY_LLAMA, pattern_samples

from mf_train import metrics
from mf_train.optim import build_adamw, load_optimizer_state, optimizer_state, optimizer_step

ms = pytest.importorskip("mindspore")


def tiny_model():
    from mf_models import AutoModelForCausalLM
    from mf_models.registry import config_from_dict

    return AutoModelForCausalLM.from_config(config_from_dict(dict(TINY_LLAMA)), seed=3)


def make_step(*, micro_batches: int, max_grad_norm: float | None, recompute: bool = False,
              skip_nonfinite: bool = False):
    from mf_train.model_setup import apply_recompute
    from mf_train.run_yaml.schema import RecomputeConfig
    from mf_train.train_step import TrainStep

    model = tiny_model()
    if recompute:
        assert apply_recompute(model, RecomputeConfig(recompute=True)) == 1
    optimizer = build_adamw(model.trainable_params(), np.full(8, 1e-2, np.float32), beta1=0.9,
                            beta2=0.95, eps=1e-8, weight_decay=0.01)
    step = TrainStep(model, optimizer, micro_batches=micro_batches,
                     max_grad_norm=max_grad_norm, skip_nonfinite=skip_nonfinite)
    return model, optimizer, step


def copies(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    # Parameter.asnumpy() (and so state_dict) shares memory with the parameter on CPU
    return {name: np.array(a, copy=True) for name, a in arrays.items()}


@pytest.fixture(scope="module")
def batches():
    return [pattern_samples(4, seed=s) for s in range(3)]


MAX_NORM = 0.5  # below the first steps' gradient norm (~1.5), so clipping is active


@pytest.fixture(scope="module")
def whole(batches):
    """One batch of 4 per step, clipped at MAX_NORM, skipping non-finite updates: 3 steps."""
    model, optimizer, step = make_step(micro_batches=1, max_grad_norm=MAX_NORM,
                                       skip_nonfinite=True)
    logits_before = model(ms.Tensor(batches[0][:, :-1])).asnumpy()
    outputs = [step.step([batches[0]])]
    after_one = optimizer_state(optimizer)
    outputs += [step.step([b]) for b in batches[1:]]
    return {"model": model, "optimizer": optimizer, "step": step, "outputs": outputs,
            "logits_before": logits_before, "after_one": after_one}


@pytest.fixture(scope="module")
def accumulated(batches):
    """The same steps as two micro batches of 2, with every block recomputed."""
    model, optimizer, step = make_step(micro_batches=2, max_grad_norm=MAX_NORM, recompute=True)
    outputs = [step.step(np.split(b, 2)) for b in batches]
    return {"model": model, "optimizer": optimizer, "outputs": outputs}


def reference_gradients(tokens: np.ndarray) -> list[np.ndarray]:
    """Gradients of the mean next-token loss, op by op (PyNative), of a fresh identical model."""
    from mf_train.train_step import token_nll

    model = tiny_model()

    def loss(ids):
        return token_nll(model(ids[:, :-1]), ids[:, 1:]).mean()

    grad = ms.value_and_grad(loss, None, model.trainable_params())
    _, grads = grad(ms.Tensor(tokens))
    return [g.asnumpy().astype(np.float64) for g in grads]


def test_the_loss_is_the_mean_next_token_nll(whole, batches):
    nll, count = metrics.token_nll(whole["logits_before"], batches[0][:, 1:])
    assert whole["outputs"][0].loss == pytest.approx(nll / count, rel=1e-5)


def test_the_norm_is_reported_before_clipping_and_the_update_is_clipped(whole, batches):
    grads = reference_gradients(batches[0])
    norm = np.sqrt(sum(float((g ** 2).sum()) for g in grads))
    assert norm > 2 * MAX_NORM  # the clip is active in this step
    assert whole["outputs"][0].grad_norm == pytest.approx(norm, rel=1e-4)
    # After one AdamW update from zero moments, adam_m = (1 - beta1) * the clipped gradient.
    moments = [v.astype(np.float64) for k, v in whole["after_one"].items()
               if k.startswith("adam_m.")]
    clipped = np.sqrt(sum(float((m ** 2).sum()) for m in moments)) / 0.1
    assert clipped == pytest.approx(MAX_NORM, rel=1e-4)


def test_accumulation_and_recompute_change_nothing_in_the_math(whole, accumulated):
    for a, b in zip(whole["outputs"], accumulated["outputs"], strict=True):
        assert a.loss == pytest.approx(b.loss, abs=1e-5)
        assert a.grad_norm == pytest.approx(b.grad_norm, rel=1e-4)
    weights_a = copies(whole["model"].state_dict())
    weights_b = copies(accumulated["model"].state_dict())
    for name in weights_a:
        np.testing.assert_allclose(weights_a[name], weights_b[name], atol=2e-5, err_msg=name)
    assert optimizer_step(accumulated["optimizer"]) == 3


def test_a_non_finite_gradient_skips_the_update(whole, batches):
    before = copies(whole["model"].state_dict())
    moments = optimizer_state(whole["optimizer"])
    out = whole["step"].step([batches[0]], loss_scale=3e38)  # the scaled loss overflows
    assert not out.finite
    after = copies(whole["model"].state_dict())
    for name in before:
        np.testing.assert_array_equal(before[name], after[name])
    assert optimizer_step(whole["optimizer"]) == 3  # no update counted
    load_optimizer_state(whole["optimizer"], moments)  # round trip of the saved state
    again = optimizer_state(whole["optimizer"])
    for name in moments:
        np.testing.assert_array_equal(moments[name], again[name])


def test_optimizer_state_refuses_another_model(whole):
    from mf_train.errors import CheckpointMismatchError

    state = optimizer_state(whole["optimizer"])
    name = next(k for k in state if k.startswith("adam_v."))
    broken = {**state, name: np.zeros((3, 3), np.float32)}
    with pytest.raises(CheckpointMismatchError, match=f"{name}' has shape .3, 3."):
        load_optimizer_state(whole["optimizer"], broken)
    del broken[name]
    with pytest.raises(CheckpointMismatchError, match="optimizer state lacks"):
        load_optimizer_state(whole["optimizer"], broken)


def test_fp16_compute_with_a_loss_scale_tracks_fp32(whole, batches):
    from mf_models import AutoModelForCausalLM
    from mf_models.registry import config_from_dict

    from mf_train.train_step import TrainStep

    model = AutoModelForCausalLM.from_config(
        config_from_dict({**TINY_LLAMA, "compute_dtype": "float16"}), seed=3)
    optimizer = build_adamw(model.trainable_params(), np.full(8, 1e-2, np.float32), beta1=0.9,
                            beta2=0.95, eps=1e-8, weight_decay=0.01)
    step = TrainStep(model, optimizer, max_grad_norm=MAX_NORM, skip_nonfinite=True)
    out = step.step([batches[0]], loss_scale=1024.0)  # unscaled inside the graph
    assert out.finite
    reference = whole["outputs"][0]
    assert out.loss == pytest.approx(reference.loss, rel=2e-3)
    assert out.grad_norm == pytest.approx(reference.grad_norm, rel=2e-2)
    assert {p.dtype for p in model.trainable_params()} == {ms.float32}  # fp32 master weights
