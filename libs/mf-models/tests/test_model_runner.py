"""One runner over every `<family>_debug` preset (mlx-lm style): shapes, dtypes, batch > 1,
prompt pass and decode step, KV cache == full recompute, save/load round trip, training loss."""

from __future__ import annotations

import numpy as np
import pytest
from mindspore import Tensor
from models_greedy import greedy_recompute, greedy_with_cache

from mf_models import AutoModelForCausalLM, CausalLM, preset_names
from mf_models.errors import ModelConfigError
from mf_models.registry import family_of_preset

ALL_DEBUG_PRESETS = [name for name in preset_names() if name.endswith("_debug")]
# The decoders' runner; the encoder and encoder-decoder families have their own test files.
DEBUG_PRESETS = [name for name in ALL_DEBUG_PRESETS
                 if issubclass(family_of_preset(name).model_class(), CausalLM)]


@pytest.fixture(scope="module", params=DEBUG_PRESETS)
def model(request):
    return AutoModelForCausalLM.from_config(request.param, seed=3)


def _prompt(batch: int, length: int, vocab: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(4, vocab, (batch, length)).astype(np.int32)
    mask = np.ones((batch, length), np.int32)
    if batch > 1:  # left-pad row 1
        ids[1, :2] = 0
        mask[1, :2] = 0
    return ids, mask


def test_every_family_has_a_debug_preset():
    from mf_models import FAMILIES

    assert {name.removesuffix("_debug") for name in ALL_DEBUG_PRESETS} >= set(FAMILIES)


def test_forward_shapes_and_dtype(model):
    vocab = model.config.vocab_size
    ids, mask = _prompt(3, 7, vocab)
    logits = model(Tensor(ids), None, Tensor(mask))
    assert logits.shape == (3, 7, vocab)
    assert logits.asnumpy().dtype == np.float32
    assert np.isfinite(logits.asnumpy()).all()


def test_kv_cache_equals_full_recompute(model):
    ids, mask = _prompt(2, 6, model.config.vocab_size, seed=1)
    with_cache = greedy_with_cache(model, ids, mask, 10, max_length=24)
    recomputed = greedy_recompute(model, ids, mask, 10)
    np.testing.assert_array_equal(with_cache, recomputed)


def test_prefill_last_only_equals_the_last_row_of_all_logits(model):
    ids, mask = _prompt(2, 5, model.config.vocab_size, seed=2)
    cache = model.new_cache(2, 8)
    key_mask = np.zeros((2, 8), np.int32)
    key_mask[:, :5] = mask
    positions = model.prefill_positions(mask)
    last = model.step_function(cache, last_only=True)(ids, positions, 0, key_mask).asnumpy()
    full = model.step_function(model.new_cache(2, 8), last_only=False)(
        ids, positions, 0, key_mask).asnumpy()
    assert last.shape == (2, 1, model.config.vocab_size)
    assert full.shape == (2, 5, model.config.vocab_size)
    np.testing.assert_allclose(last[:, 0], full[:, -1], atol=1e-5)


def test_save_load_round_trip(model, tmp_path):
    ids, mask = _prompt(2, 5, model.config.vocab_size)
    before = model(Tensor(ids), None, Tensor(mask)).asnumpy()
    for fmt in ("safetensors", "ckpt"):
        model.save_pretrained(tmp_path / fmt, fmt=fmt)
        loaded = AutoModelForCausalLM.from_pretrained(tmp_path / fmt)
        assert type(loaded) is type(model)
        assert loaded.config == model.config
        np.testing.assert_array_equal(loaded(Tensor(ids), None, Tensor(mask)).asnumpy(), before)


def test_fp16_runs_and_stays_near_fp32(model, tmp_path):
    model.save_pretrained(tmp_path)
    half = AutoModelForCausalLM.from_pretrained(tmp_path, param_init_type="float16",
                                                compute_dtype="float16")
    assert {str(p.dtype) for p in half.get_parameters()} == {"Float16"}
    ids, mask = _prompt(2, 5, model.config.vocab_size)
    ref = model(Tensor(ids), None, Tensor(mask)).asnumpy()
    out = half(Tensor(ids), None, Tensor(mask)).asnumpy()
    assert out.dtype == np.float32  # logits are handed out in float32 for sampling
    real = mask.astype(bool)
    assert np.abs(out[real] - ref[real]).max() < 0.05 * max(1.0, np.abs(ref).max())
    step_out = greedy_with_cache(half, ids, mask, 3)
    assert step_out.shape == (2, 8)


def test_training_loss_ignores_minus_100(model):
    ids, _ = _prompt(2, 6, model.config.vocab_size)
    labels = ids.copy()
    loss_all, logits = model(Tensor(ids), Tensor(labels))
    labels[:, 3:] = -100
    loss_part, _ = model(Tensor(ids), Tensor(labels))
    logp = logits.asnumpy().astype(np.float64)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp[:, :-1], ids[:, 1:, None], -1)[..., 0]  # (B, T-1)
    assert abs(float(loss_all.asnumpy()) - nll.mean()) < 1e-5
    assert abs(float(loss_part.asnumpy()) - nll[:, :2].mean()) < 1e-5


def test_training_forward_compiles_with_jit_and_grad(model):
    import mindspore as ms

    ids, mask = _prompt(2, 6, model.config.vocab_size)
    weights = model.trainable_params()

    def loss_fn(x, y, m):
        return model(x, y, m)[0]

    grad_fn = ms.jit(ms.value_and_grad(loss_fn, None, weights))
    loss, grads = grad_fn(Tensor(ids), Tensor(ids), Tensor(mask))
    assert np.isfinite(float(loss.asnumpy()))
    assert len(grads) == len(weights)
    assert all(np.isfinite(g.asnumpy()).all() for g in grads)
    assert any(np.abs(g.asnumpy()).sum() > 0 for g in grads)


def test_step_rejects_a_prompt_longer_than_the_cache(model):
    cache = model.new_cache(1, 8)
    step = model.step_function(cache)
    ids = np.ones((1, 9), np.int32)
    with pytest.raises(ModelConfigError, match=r"slot\(0\) \+ tokens\(9\) = 9 exceeds"):
        step(ids, np.arange(9, dtype=np.int32)[None], 0, np.ones((1, 8), np.int32))


def test_cache_longer_than_seq_length_is_refused(model):
    with pytest.raises(ModelConfigError, match="longer than the model's seq_length"):
        model.new_cache(1, model.config.seq_length + 1)


def test_sequence_longer_than_seq_length_is_a_one_line_error(model):
    too_long = model.config.seq_length + 1
    with pytest.raises(ModelConfigError) as err:
        model(Tensor(np.ones((1, too_long), np.int32)))
    assert str(err.value) == (f"sequence length {too_long} is longer than the model's "
                              f"seq_length({model.config.seq_length})")


def test_step_rejects_positions_beyond_seq_length(model):
    cache = model.new_cache(1, 4)
    step = model.step_function(cache)
    beyond = model.config.seq_length
    with pytest.raises(ModelConfigError, match=f"position {beyond} is beyond"):
        step(np.ones((1, 1), np.int32), np.full((1, 1), beyond, np.int32), 0,
             np.ones((1, 4), np.int32))


def test_compiled_recompute_without_cache_matches_the_cached_step(model):
    ids, mask = _prompt(2, 6, model.config.vocab_size, seed=4)
    positions = model.prefill_positions(mask)
    full = model.step_function(None, last_only=True)(ids, positions, 0, mask).asnumpy()
    key_mask = np.zeros((2, 8), np.int32)
    key_mask[:, :6] = mask
    cached = model.step_function(model.new_cache(2, 8))(ids, positions, 0, key_mask).asnumpy()
    np.testing.assert_allclose(full, cached, atol=1e-5)
    assert full.shape == (2, 1, model.config.vocab_size)


def test_step_function_is_built_once_per_cache(model):
    cache = model.new_cache(1, 8)
    step = model.step_function(cache)
    assert model.step_function(cache) is step
    assert model.step_function(cache, last_only=False) is not step
    assert model.step_function(None) is model.step_function(None)
    assert model.step_function(model.new_cache(1, 8)) is not step
    # Holding step functions must not add parameters to the model.
    assert all(not p.name.startswith("kv_cache") for p in model.get_parameters())
