"""mf's fused CPU kernels (mf_models.kernels) against the built-in MindSpore path they replace:
each op forward and gradient, whole LLaMA and GPT-2 models (logits, gradients, cached decode
with left padding), and the fallback when the kernels cannot be built or are switched off."""

from __future__ import annotations

import math

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, ops

from mf_models import AutoModelForCausalLM, GPT2Config, LlamaConfig, kernels
from mf_models.kernels import fused_ops
from mf_models.modules.attention import attend, causal_allowed, mask_to_bias
from mf_models.modules.layers import gelu_tanh
from mf_models.modules.rope import apply_rope, rope_tables

RNG = np.random.default_rng(0)


def rand(*shape, scale=1.0):
    return Tensor((RNG.standard_normal(shape) * scale).astype(np.float32))


@pytest.fixture(scope="module")
def fused():
    ops_ = fused_ops()
    if ops_ is None:
        pytest.fail("the custom kernels did not build on this machine (g++ is a test "
                    "requirement); see the line printed on stderr")
    return ops_


def close(a, b, tol=2e-5):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    scale = max(1.0, float(np.abs(b).max()))
    assert np.abs(a - b).max() <= tol * scale, np.abs(a - b).max()


def test_rms_norm_forward_and_gradient(fused):
    x, w, eps = rand(3, 5, 64), rand(64), Tensor(np.array([1e-5], np.float32))

    def builtin(x, w):
        return w * (x * ops.rsqrt(ops.mean(ops.square(x), -1, keep_dims=True) + 1e-5))

    def custom(x, w):
        return fused.rms_norm_op(x, w, eps)

    close(custom(x, w).asnumpy(), builtin(x, w).asnumpy())
    dy = rand(3, 5, 64)
    for a, b in zip(ms.grad(lambda x, w: (custom(x, w) * dy).sum(), (0, 1))(x, w),
                    ms.grad(lambda x, w: (builtin(x, w) * dy).sum(), (0, 1))(x, w), strict=True):
        close(a.asnumpy(), b.asnumpy())


def test_rope_forward_and_gradient(fused):
    cos_t, sin_t = rope_tables(16, 32, 10000.0)
    positions = np.array([[3, 4, 5], [0, 1, 2]])
    cos, sin = Tensor(cos_t[positions][:, None]), Tensor(sin_t[positions][:, None])  # (B,1,T,D)
    x, dy = rand(2, 4, 3, 16), rand(2, 4, 3, 16)
    close(apply_rope(x, cos, sin, fused.rope).asnumpy(), apply_rope(x, cos, sin).asnumpy())
    def loss(kernel):
        return lambda x: (apply_rope(x, cos, sin, kernel) * dy).sum()

    close(ms.grad(loss(fused.rope))(x).asnumpy(), ms.grad(loss(None))(x).asnumpy())


def test_silu_mul_and_bias_gelu_forward_and_gradient(fused):
    gate, up, dy = rand(6, 40, scale=3), rand(6, 40), rand(6, 40)
    pairs = [(lambda a, b: fused.silu_mul(a, b), lambda a, b: ops.silu(a) * b, up),
             (lambda a, b: fused.bias_gelu(a, b), lambda a, b: gelu_tanh(a + b), rand(40))]
    for custom, builtin, second in pairs:
        close(custom(gate, second).asnumpy(), builtin(gate, second).asnumpy())
        grads = [ms.grad(lambda x, y, f=f: (f(x, y) * dy).sum(), (0, 1))(gate, second)
                 for f in (custom, builtin)]
        for a, b in zip(*grads, strict=True):
            close(a.asnumpy(), b.asnumpy())


def test_layer_norm_gradient(fused):
    from mf_models.modules.layers import LayerNorm

    x, dy = rand(4, 7, 48, scale=2) + 1.0, rand(4, 7, 48)
    gamma, beta = rand(48) + 1.0, rand(48)
    results = []
    for on in (True, False):
        norm = LayerNorm(48, 1e-5, "float32")
        norm.gamma.set_data(gamma)
        norm.beta.set_data(beta)
        if not on:
            norm.fused = None
        else:
            assert norm.fused is not None
        value, grads = ms.value_and_grad(lambda x, norm=norm: (norm(x) * dy).sum(), 0,
                                         [norm.gamma, norm.beta])(x)
        results.append([value.asnumpy(), grads[0].asnumpy(), *(g.asnumpy() for g in grads[1])])
    for a, b in zip(*results, strict=True):
        close(a, b)


def test_cached_attention_reads_the_cache_rows(fused):
    """Grouped-query heads (8 query heads over 2 key/value heads), left padding, a slot past
    the written ones: the kernel on the cache rows equals `attend` on (B, KV, S, D)."""
    b, h, kv, t, s, d = 2, 8, 2, 3, 10, 16
    q, keys, values = rand(b, h, t, d), rand(b, kv, s, d), rand(b, kv, s, d)
    key_mask = np.ones((b, s), np.int32)
    key_mask[0, :2] = 0  # left padding
    key_mask[:, 7:] = 0  # not written yet
    bias = mask_to_bias(causal_allowed(Tensor(4, ms.int32), t, s, Tensor(key_mask)))
    got = fused.cached_attention(q, keys.reshape(b * kv * s, d), values.reshape(b * kv * s, d),
                                 bias)
    close(got.asnumpy(), attend(q, keys, values, bias).asnumpy())


def tiny(family: str):
    if family == "llama":
        return LlamaConfig(hidden_size=64, num_layers=2, num_heads=4, n_kv_heads=2,
                           intermediate_size=96, vocab_size=100, seq_length=64)
    return GPT2Config(hidden_size=64, num_layers=2, num_heads=4, vocab_size=100, seq_length=64)


def model_outputs(family: str, monkeypatch, on: bool):
    monkeypatch.setenv(kernels.SWITCH, "1" if on else "0")
    fused_ops.cache_clear()
    try:
        model = AutoModelForCausalLM.from_config(tiny(family), seed=0)
    finally:
        fused_ops.cache_clear()
    ids = np.random.default_rng(1).integers(3, 100, (2, 7)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[1, :3] = 0  # left padding
    loss, grads = ms.value_and_grad(
        lambda x, m: model(x, labels=x, attention_mask=m)[0], None,
        model.trainable_params())(Tensor(ids), Tensor(mask))
    # Cached decode: the prompt, then two tokens one at a time.
    step = model.step_function(model.new_cache(2, 12))
    key_mask = np.zeros((2, 12), np.int32)
    key_mask[:, :7] = mask
    positions = model.prefill_positions(mask)
    logits = [step(ids, positions, 0, key_mask).asnumpy()]
    for slot in (7, 8):
        token = logits[-1][:, -1].argmax(-1).astype(np.int32)[:, None]
        positions = model.next_positions(positions)
        key_mask[:, slot] = 1
        logits.append(step(token, positions, slot, key_mask).asnumpy())
    return [loss.asnumpy(), *(g.asnumpy() for g in grads), *logits]


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_models_agree_with_and_without_the_kernels(family, fused, monkeypatch):
    on = model_outputs(family, monkeypatch, True)
    off = model_outputs(family, monkeypatch, False)
    for a, b in zip(on, off, strict=True):
        close(a, b, tol=1e-5)


def test_switched_off_or_unbuildable_means_the_builtin_path(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(kernels.SWITCH, "0")
    fused_ops.cache_clear()
    try:
        assert fused_ops() is None
        assert "off" in kernels.status()
        monkeypatch.setenv(kernels.SWITCH, "1")
        monkeypatch.setenv("MF_HOME", str(tmp_path))  # nothing cached there
        monkeypatch.setenv("PATH", str(tmp_path))  # and no compiler on PATH
        monkeypatch.delenv("CXX", raising=False)
        fused_ops.cache_clear()
        assert fused_ops() is None
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no C++ compiler found" in err[0]
        model = AutoModelForCausalLM.from_config(tiny("llama"), seed=0)
        assert model.model.norm_out.fused is None  # built-in kernels, still a working model
        assert np.isfinite(model(Tensor(np.ones((1, 4), np.int32))).asnumpy()).all()
    finally:
        fused_ops.cache_clear()


def test_a_failed_compile_is_one_line_and_leaves_nothing(monkeypatch, tmp_path):
    bad = tmp_path / "bad.cc"
    bad.write_text("this is not C++\n")
    monkeypatch.setattr(kernels, "SOURCE", bad)
    with pytest.raises(RuntimeError, match="failed on bad.cc"):
        kernels.build(tmp_path / "cache")
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))


def test_built_once_per_source_text(tmp_path):
    first = kernels.build(tmp_path)
    stamp = first.stat().st_mtime_ns
    assert kernels.build(tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert first.parent.parent == tmp_path and len(first.parent.name) == 16
    assert math.isfinite(stamp)


def test_a_wrapped_mapping_keeps_the_builtin_path(fused):
    """A parallel plan or LoRA wraps the MLP's mapping in another cell (its bias is then not
    the mapping's to fuse): the MLP must take the built-in path, compiled or not."""
    from mindspore import nn

    model = AutoModelForCausalLM.from_config(tiny("gpt2"), seed=0)
    mlp = model.backbone.blocks[0].output
    x = rand(2, 3, 64)
    fused_out = mlp(x).asnumpy()

    class Shifted(nn.Cell):  # a wrapper whose output differs from the mapping's
        def __init__(self, inner):
            super().__init__(auto_prefix=False)
            self.inner = inner

        def construct(self, x):
            return self.inner(x) + 1.0

    mlp.mapping = Shifted(mlp.mapping)
    expected = mlp.projection(gelu_tanh(mlp.mapping(x))).asnumpy()
    close(ms.jit(mlp.construct)(x).asnumpy(), expected)
    assert np.abs(expected - fused_out).max() > 1e-3
