"""Linear, norms and embedding with MindFormers' parameter names and shapes."""

from __future__ import annotations

import math

import numpy as np
from mindspore import Parameter, Tensor, nn, ops
from mindspore import dtype as mstype

from mf_models.kernels import fused_ops

DTYPE = {"float32": mstype.float32, "float16": mstype.float16, "bfloat16": mstype.bfloat16}
NP_DTYPE = {"float32": np.float32, "float16": np.float16}


def normal(shape: tuple[int, ...], std: float, dtype: str, rng: np.random.Generator) -> Tensor:
    """A normal(0, std) initial value, drawn in numpy (fast, seedable, no MindSpore RNG state)."""
    data = rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
    return Tensor(data.astype(NP_DTYPE.get(dtype, np.float32)))


def filled(shape: tuple[int, ...], value: float, dtype: str) -> Tensor:
    return Tensor(np.full(shape, value, dtype=NP_DTYPE.get(dtype, np.float32)))


class Linear(nn.Cell):
    """y = x W^T + b with W stored (out, in) when `transpose_b` (HF, LLaMA), else (in, out).

    MindFormers stores some projections (in, out); keeping its shapes makes a MindFormers
    `.ckpt` load as it is, and a matmul with either layout costs the same under jit.
    """

    def __init__(self, in_features: int, out_features: int, *, bias: bool, transpose_b: bool,
                 std: float, param_dtype: str, compute_dtype: str, rng: np.random.Generator):
        super().__init__()
        shape = (out_features, in_features) if transpose_b else (in_features, out_features)
        self.weight = Parameter(normal(shape, std, param_dtype, rng), name="weight")
        self.bias = (Parameter(filled((out_features,), 0.0, param_dtype), name="bias")
                     if bias else None)
        self.out_features = out_features
        self.transpose_b = transpose_b  # weight stored (out, in): which dim a plan splits
        self.matmul = ops.MatMul(transpose_b=transpose_b)
        self.compute_dtype = DTYPE[compute_dtype]

    def construct(self, x):
        y = self.project(x)
        if self.bias is not None:
            y = y + ops.cast(self.bias, self.compute_dtype)
        return y

    def project(self, x):
        """x W^T without the bias (a fused kernel after it may add the bias itself)."""
        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1])  # (N, in)
        y = self.matmul(ops.cast(x2, self.compute_dtype), ops.cast(self.weight, self.compute_dtype))
        return y.reshape(lead + (self.out_features,))  # (..., out)


def linear(config, rng: np.random.Generator, n_in: int, n_out: int, *, transpose_b: bool = True,
           bias: bool = True) -> Linear:
    """A `Linear` initialised and typed as a family config says (initializer_range,
    param_init_type, compute_dtype)."""
    return Linear(n_in, n_out, bias=bias, transpose_b=transpose_b, std=config.initializer_range,
                  param_dtype=config.param_init_type, compute_dtype=config.compute_dtype, rng=rng)


class LayerNorm(nn.Cell):
    """LayerNorm with MindFormers' `gamma`/`beta` names, computed in `compute_type`.

    In float32 its backward is mf's fused kernel when available: MindSpore's LayerNormGrad
    took 22 ms per 2048 x 512 call (issue 6's profile of a GPT-2 train step).
    """

    def __init__(self, dim: int, eps: float, param_dtype: str, compute_type: str = "float32"):
        super().__init__()
        self.gamma = Parameter(filled((dim,), 1.0, param_dtype), name="gamma")
        self.beta = Parameter(filled((dim,), 0.0, param_dtype), name="beta")
        self.norm = ops.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=eps)
        self.compute_type = DTYPE[compute_type]
        fused = fused_ops()
        self.fused = (_FusedGradLayerNorm(self.norm, eps, fused.layer_norm_grad)
                      if fused is not None and compute_type == "float32" else None)

    def construct(self, x):
        if self.fused is not None and x.dtype == mstype.float32 \
                and self.gamma.dtype == mstype.float32:
            return self.fused(x, self.gamma, self.beta)
        y, _, _ = self.norm(ops.cast(x, self.compute_type), ops.cast(self.gamma, self.compute_type),
                            ops.cast(self.beta, self.compute_type))
        return ops.cast(y, x.dtype)


class _FusedGradLayerNorm(nn.Cell):
    """MindSpore's LayerNorm forward with mf's one-kernel backward (`mf_layer_norm_grad`)."""

    def __init__(self, norm, eps: float, grad):
        super().__init__()
        self.norm, self.grad = norm, grad
        self.eps = Tensor(np.array([eps], np.float32))

    def construct(self, x, gamma, beta):
        return self.norm(x, gamma, beta)[0]

    def bprop(self, x, gamma, beta, out, dout):
        return self.grad(x, gamma, self.eps, dout)


class RMSNorm(nn.Cell):
    """x / sqrt(mean(x^2) + eps) * weight (Zhang & Sennrich 2019), in float32 like HF LLaMA.

    The parameter is `weight` (LLaMA) or, with param_name="gamma", MindFormers' T5 name.
    """

    def __init__(self, dim: int, eps: float, param_dtype: str, compute_type: str = "float32",
                 param_name: str = "weight"):
        super().__init__()
        self.param_name = param_name
        setattr(self, param_name, Parameter(filled((dim,), 1.0, param_dtype), name=param_name))
        self.eps = eps
        self.compute_type = DTYPE[compute_type]
        fused = fused_ops()  # one kernel instead of seven (mf_models.kernels)
        self.fused = fused.rms_norm_op if fused is not None and compute_type == "float32" \
            else None
        self.eps_tensor = Tensor(np.array([eps], np.float32))

    def construct(self, x):
        weight = getattr(self, self.param_name)
        if self.fused is not None and x.dtype == mstype.float32 \
                and weight.dtype == mstype.float32:
            return self.fused(x, weight, self.eps_tensor)
        h = ops.cast(x, self.compute_type)
        h = h * ops.rsqrt(ops.mean(ops.square(h), -1, keep_dims=True) + self.eps)
        # HF casts back to the input dtype before the weight; the same order keeps fp16 equal.
        return ops.cast(weight, x.dtype) * ops.cast(h, x.dtype)


# 2 sqrt(2 / pi) and 2 sqrt(2 / pi) * 0.044715: GELU's tanh approximation (Hendrycks & Gimpel
# 2016, arXiv:1606.08415, eq. in section 2), doubled for the sigmoid form below.
_GELU_A = 2.0 * math.sqrt(2.0 / math.pi)
_GELU_B = _GELU_A * 0.044715


def gelu_tanh(x):
    """GELU, tanh approximation (HF "gelu_new", MindSpore nn.GELU's default), as plain ops.

    0.5 x (1 + tanh(u)) is x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3). MindSpore's
    GeLU and GeLUGrad CPU kernels take 38 + 44 ms on 2048 x 2048 where these four ops and
    their autodiff take 7 + 9 ms (under ms.jit): 0.85 s of a GPT-2 training step
    (benchmarks/train.py). They agree with the kernel to 6e-7.
    """
    return x * ops.sigmoid(x * (_GELU_A + _GELU_B * (x * x)))


def activation(name: str, x):
    """The MLP activations of the GPT-style families, by MindFormers' `hidden_act` names."""
    if name == "gelu":  # tanh approximation: HF "gelu_new", MindSpore nn.GELU's default
        return gelu_tanh(x)
    if name == "gelu_exact":
        return ops.gelu(x, approximate="none")
    if name == "fast_gelu":  # MindSpore FastGelu: x * sigmoid(1.702 x)
        return ops.fast_gelu(x)
    return ops.relu(x)


class MappingMLP(nn.Cell):
    """projection(act(mapping(x))) with MindFormers' (in, out) weight layout: the MLP of GPT-2,
    BLOOM, PanGu-Alpha, BERT, ViT and MAE (with biases; MAE's decoder passes its own widths) and
    of T5 (without)."""

    def __init__(self, config, rng: np.random.Generator, act: str, bias: bool = True,
                 width: int | None = None, ffn_width: int | None = None):
        super().__init__()
        c, f = width or config.hidden_size, ffn_width or config.ffn_hidden_size
        self.mapping = linear(config, rng, c, f, transpose_b=False, bias=bias)
        self.projection = linear(config, rng, f, c, transpose_b=False, bias=bias)
        self.act = act
        fused = fused_ops()
        # GELU on the mapping's output, bias add included: one kernel instead of seven.
        self.bias_gelu = fused.bias_gelu if fused is not None and act == "gelu" and bias \
            and config.compute_dtype == "float32" and config.param_init_type == "float32" \
            else None

    def construct(self, x):
        # A parallel plan or LoRA may have wrapped the mapping: then the built-in path.
        if self.bias_gelu is not None and x.dtype == mstype.float32 \
                and isinstance(self.mapping, Linear):
            return self.projection(self.bias_gelu(self.mapping.project(x), self.mapping.bias))
        return self.projection(activation(self.act, self.mapping(x)))


_MATMUL_NT = ops.MatMul(transpose_b=True)


def tied_logits(h, table):
    """h (B, T, C) @ table (V, C)^T -> (B, T, V) without materialising the transposed table.

    `ops.matmul(h, table.swapaxes(0, 1))` copies the whole table every call: measured 229 ms
    per decode step against 11 ms this way (LLaMA shape, vocab 32000, under ms.jit on CPU).
    With a KV cache, give it the value `tied_table` returned to the embedding lookup too.
    """
    lead = h.shape[:-1]
    logits = _MATMUL_NT(h.reshape(-1, h.shape[-1]), table)  # (B*T, V)
    return logits.reshape(lead + (table.shape[0],))


class TiedLMHead(nn.Cell):
    """The LM head of a model whose output projection is its token embedding: `tied_logits`.

    A cell, though it holds no parameter, so that a parallel plan can wrap the head of a tied
    model as it wraps an untied `lm_head` (mf-models' `parallel.shard_model`).
    """

    def construct(self, h, table):
        return tied_logits(h, table)


def tied_table(table, cache):
    """The embedding table a tied model reads for both its lookup and its LM head.

    A cached step writes the cache in place, and MindSpore then orders every parameter read
    against those writes: the lookup's read and the head's read of one table become two reads
    at different points, each guarded by a copy of the whole table (TensorMove: two 154 MB
    copies, 30 of a 63 ms GPT-2 124M decode step). `stop_gradient` makes it one value read
    once; a cached step is never differentiated. Without a cache (training) the parameter
    itself is used, so its gradient flows.
    """
    return table if cache is None else ops.stop_gradient(table)


class Embedding(nn.Cell):
    """A (vocab, dim) lookup table whose parameter is called `param_name` (MindFormers differs
    by family: `embedding_table` for GPT-2/BLOOM, `embedding_weight` for LLaMA)."""

    def __init__(self, vocab_size: int, dim: int, *, std: float, param_dtype: str,
                 rng: np.random.Generator, param_name: str = "embedding_table"):
        super().__init__()
        self.param_name = param_name
        setattr(self, param_name, Parameter(normal((vocab_size, dim), std, param_dtype, rng),
                                            name=param_name))

    @property
    def table(self) -> Parameter:
        return getattr(self, self.param_name)

    def construct(self, ids, table=None):
        """Rows of the table for ids (B, T) -> (B, T, dim). A model that ties its LM head to
        this table passes the value `tied_table` gave it."""
        return ops.gather(self.table if table is None else table, ids, 0)  # (B, T, dim)
