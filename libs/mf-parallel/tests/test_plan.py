"""Sharding plans: glob patterns -> specs, resolved against (name, shape) lists."""

from __future__ import annotations

import numpy as np
import pytest

from mf_parallel import LayoutError, ParallelConfig, resolve_plan, split
from mf_parallel.plan import unused_patterns

# The plan format other libraries write (the package README documents it).
PLAN = {
    "model.tok_embeddings.embedding_weight": (None, None),
    "model.layers.*.attention.wq.weight": ("mp", None),
    "model.layers.*.attention.wo.weight": (None, "mp"),
    "model.layers.*.attention_norm.weight": (None,),
    "model.norm.weight": (None,),
}
PARAMS = [
    ("model.tok_embeddings.embedding_weight", (100, 8)),
    ("model.layers.0.attention.wq.weight", (8, 8)),
    ("model.layers.0.attention.wo.weight", (8, 8)),
    ("model.layers.0.attention_norm.weight", (8,)),
    ("model.layers.1.attention.wq.weight", (8, 8)),
    ("model.layers.1.attention.wo.weight", (8, 8)),
    ("model.layers.1.attention_norm.weight", (8,)),
    ("model.norm.weight", (8,)),
]
CONFIG = ParallelConfig(data_parallel=2, model_parallel=4)


def test_plan_resolves_to_megatron_column_and_row_splits():
    layouts = resolve_plan(PLAN, PARAMS, CONFIG)
    assert list(layouts) == [name for name, _ in PARAMS]
    wq = layouts["model.layers.1.attention.wq.weight"]
    wo = layouts["model.layers.1.attention.wo.weight"]
    assert wq.shard_shape == (2, 8) and wo.shard_shape == (8, 2)
    assert layouts["model.norm.weight"].shard_shape == (8,)
    # Column-parallel: mp rank r holds output rows 2r..2r+1, the same on both dp replicas.
    weight = np.arange(64.0).reshape(8, 8)
    shards = split(weight, wq)
    mesh = wq.mesh
    for rank in range(mesh.size):
        mp = mesh.coords(rank)["mp"]
        np.testing.assert_array_equal(shards[rank], weight[2 * mp:2 * mp + 2])


def test_first_matching_pattern_wins():
    plan = {"model.layers.0.*": (None, None), "model.layers.*": ("mp", None)}
    layouts = resolve_plan(plan, [("model.layers.0.w", (8, 8)), ("model.layers.1.w", (8, 8))],
                           CONFIG)
    assert layouts["model.layers.0.w"].parts(0) == 1
    assert layouts["model.layers.1.w"].parts(0) == 4


def test_a_dim_may_be_split_over_both_axes():
    layouts = resolve_plan({"w": (("mp", "dp"), None)}, [("w", (16, 3))], CONFIG)
    assert layouts["w"].shard_shape == (2, 3)


@pytest.mark.parametrize(
    ("plan", "params", "message"),
    [
        (PLAN, PARAMS + [("lm_head.weight", (100, 8)), ("model.extra", (3,))],
         "no pattern in the sharding plan covers parameter 'lm_head.weight' of shape (100, 8) "
         "(and 1 more: ['model.extra']); add a pattern for it, e.g. 'lm_head.weight': "
         "(None, None)"),
        (PLAN, [("model.layers.0.attention.wq.weight", (10, 8))],
         "model.layers.0.attention.wq.weight: dim 0 of size 10 (shape (10, 8)) is split over "
         "mp(4): 10 % 4 = 2"),
        (PLAN, [("model.norm.weight", (8, 8))],
         "model.norm.weight: shape (8, 8) has 2 dim(s), but pattern 'model.norm.weight' gives "
         "the 1-dim spec (None,)"),
        ({"w": ("pp", None)}, [("w", (8, 8))],
         "sharding plan entry 'w': axis 'pp' in ('pp', None) is not one of ['dp', 'mp'] ('pp' "
         "places whole tensors on stages, it does not split a dim)"),
        ({"w": ("tp", None)}, [("w", (8, 8))],
         "sharding plan entry 'w': axis 'tp' in ('tp', None) is not one of ['dp', 'mp']"),
        ({"w": "mp"}, [("w", (8,))],
         "sharding plan entry 'w': spec 'mp' must be a tuple with one entry per dim, e.g. "
         "('mp', None)"),
        ({"": (None,)}, [("w", (8,))], "sharding plan pattern '' must be a non-empty string"),
        (["w"], [("w", (8,))],
         "a sharding plan must be a mapping of pattern -> spec, got ['w']"),
    ],
)
def test_plan_errors(plan, params, message):
    with pytest.raises(LayoutError) as info:
        resolve_plan(plan, params, CONFIG)
    assert str(info.value) == message


def test_unused_patterns_point_at_typos():
    plan = {**PLAN, "model.layers.*.atention.wk.weight": ("mp", None)}
    assert unused_patterns(plan, [n for n, _ in PARAMS]) == ["model.layers.*.atention.wk.weight"]
