"""Parameter names and shapes of a family's model, from its config alone (no MindSpore).

What a model would hold, listed the way the model lists it (`model.get_parameters()`), so the
family's sharding plan resolves over it exactly as over the built model: the memory estimate
(mf_parallel.memory) walks this list with the plan to know what each rank stores, before
anything is allocated. `tests/test_shapes.py` builds every family's debug model and checks
that the names and shapes are the same.

Pieces several families share are here; each family's config lists its own order.
"""

from __future__ import annotations

Shapes = list[tuple[str, tuple[int, ...]]]


def norm(prefix: str, width: int, bias: bool = True) -> Shapes:
    """A LayerNorm (gamma, beta) or, without bias, an RMSNorm named as MindFormers' `gamma`."""
    return [(f"{prefix}.gamma", (width,))] + ([(f"{prefix}.beta", (width,))] if bias else [])


def linear(prefix: str, out: int, inp: int, bias: bool = True) -> Shapes:
    """A Linear stored (out, in), as mf's `Linear` with transpose_b."""
    return [(f"{prefix}.weight", (out, inp))] + ([(f"{prefix}.bias", (out,))] if bias else [])


def mindformers_block(prefix: str, hidden: int, ffn: int, *, inner: int | None = None,
                      bias: bool = True, norm_bias: bool = True) -> Shapes:
    """MindFormers' `TransformerEncoderLayer` (GPT-2, BLOOM, PanGu-alpha, BERT, T5, ViT):
    dense1/2/3 (q, k, v) stored (out, in); projection and the MLP's mapping and projection
    stored (in, out), MindFormers' own layout."""
    inner = hidden if inner is None else inner
    attention = f"{prefix}.attention"
    shapes = norm(f"{prefix}.layernorm1", hidden, norm_bias)
    for name in ("dense1", "dense2", "dense3"):
        shapes += linear(f"{attention}.{name}", inner, hidden, bias)
    shapes += [(f"{attention}.projection.weight", (inner, hidden))]
    shapes += [(f"{attention}.projection.bias", (hidden,))] if bias else []
    shapes += norm(f"{prefix}.layernorm2", hidden, norm_bias)
    shapes += [(f"{prefix}.output.mapping.weight", (hidden, ffn))]
    shapes += [(f"{prefix}.output.mapping.bias", (ffn,))] if bias else []
    shapes += [(f"{prefix}.output.projection.weight", (ffn, hidden))]
    shapes += [(f"{prefix}.output.projection.bias", (hidden,))] if bias else []
    return shapes


def numel(shapes: Shapes) -> int:
    """Elements of every parameter in `shapes`."""
    total = 0
    for _, shape in shapes:
        count = 1
        for size in shape:
            count *= size
        total += count
    return total
