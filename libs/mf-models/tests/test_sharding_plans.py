"""Every family's sharding plan covers every parameter, as mf-parallel resolves it."""

from __future__ import annotations

import pytest
from mf_parallel import ParallelConfig
from mf_parallel.plan import resolve_plan, unused_patterns

from mf_models import AutoModel

DEBUG = ["gpt2_debug", "llama_debug", "bloom_debug", "glm_debug", "glm2_debug",
         "pangualpha_debug", "vit_debug", "swin_debug", "mae_debug", "clip_debug"]


@pytest.mark.parametrize("name", DEBUG)
def test_plan_covers_every_parameter_with_mp_2(name):
    # Swin's optional absolute position embedding on, so its pattern is used too.
    extra = {"use_absolute_embeddings": True} if name == "swin_debug" else {}
    model = AutoModel.from_config(name, **extra)
    params = [(p.name, tuple(p.shape)) for p in model.get_parameters()]
    layouts = resolve_plan(model.config.sharding_plan, params,
                           ParallelConfig(data_parallel=1, model_parallel=2).resolve(2))
    assert set(layouts) == {name for name, _ in params}
    assert unused_patterns(model.config.sharding_plan, [n for n, _ in params]) == []
    split = {n for n, lay in layouts.items() if "mp" in str(lay.spec)}
    if name == "glm2_debug":  # fused [q | k | v] and [gate | up] stay whole (see its config)
        assert all("layers" not in n for n in split) and split
    elif name == "clip_debug":  # fused in_proj stays whole; the MLP is split (see its config)
        assert all("attn" not in n for n in split) and any("c_fc" in n for n in split)
    else:  # column-parallel q and row-parallel output projection: the Megatron pairing
        assert any(q in n for n in split
                   for q in ("wq", "dense1", "query_key_value", "attn.q."))
