"""ParallelConfig and ModelDims: validation at construction, against a world size and a model."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mf_parallel import ModelDims, ParallelConfig, ParallelConfigError

# LLaMA-7B as Meta published it (Touvron et al. 2023, table 2) with its 32k vocabulary.
LLAMA_7B = ModelDims(num_layers=32, hidden_size=4096, num_heads=32, n_kv_heads=32,
                     ffn_hidden_size=11008, vocab_size=32000, seq_length=2048)


def test_defaults_are_mindformers_defaults():
    config = ParallelConfig()
    assert (config.data_parallel, config.model_parallel, config.pipeline_stage) == (1, 1, 1)
    assert config.micro_batch_num == 1
    assert config.vocab_emb_dp is True
    assert config.gradient_aggregation_group == 4
    assert config.optimizer_shard is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(data_parallel=0),
         "data_parallel(0) must be >= 1 (or -1 to infer it from the world size)"),
        (dict(model_parallel=-2),
         "model_parallel(-2) must be >= 1 (or -1 to infer it from the world size)"),
        (dict(pipeline_stage="2"), "pipeline_stage must be an integer, got '2' (str)"),
        (dict(data_parallel=True), "data_parallel must be an integer, got True (bool)"),
        (dict(data_parallel=-1, pipeline_stage=-1),
         "only one degree may be -1 (inferred from the world size), but data_parallel(-1) "
         "and pipeline_stage(-1) are"),
        (dict(micro_batch_num=0), "micro_batch_num(0) must be >= 1"),
        (dict(expert_parallel=0), "expert_parallel(0) must be >= 1"),
        (dict(optimizer_shard="yes"), "optimizer_shard must be true or false, got 'yes' (str)"),
        (dict(pipeline_stage=4, micro_batch_num=2),
         "micro_batch_num(2) < pipeline_stage(4): a pipeline of 4 stages needs at least 4 "
         "micro-batches"),
        (dict(data_parallel=4, expert_parallel=3),
         "data_parallel(4) is not divisible by expert_parallel(3): 4 % 3 = 1"),
    ],
)
def test_construction_errors_name_the_value(kwargs, message):
    with pytest.raises(ParallelConfigError) as info:
        ParallelConfig(**kwargs)
    assert str(info.value) == message
    assert info.value.exit_code == 2
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("config", "world", "message"),
    [
        (ParallelConfig(2, 2, 2, micro_batch_num=2), 4,
         "data_parallel(2) * model_parallel(2) * pipeline_stage(2) = 8, but 4 devices are "
         "available"),
        (ParallelConfig(1, 2, 1), 1,
         "data_parallel(1) * model_parallel(2) * pipeline_stage(1) = 2, but 1 device is "
         "available"),
        (ParallelConfig(-1, 3, 1), 8,
         "data_parallel(-1) cannot be inferred: world_size(8) / (model_parallel(3) * "
         "pipeline_stage(1)) = 8 / 3 is not a whole number"),
        (ParallelConfig(2, 2, 1), 0, "world_size(0) must be >= 1"),
        (ParallelConfig(1, 1, -1), 4,
         "micro_batch_num(1) < pipeline_stage(4): a pipeline of 4 stages needs at least 4 "
         "micro-batches"),
    ],
)
def test_world_size_errors_spell_out_the_product(config, world, message):
    with pytest.raises(ParallelConfigError) as info:
        config.resolve(world)
    assert str(info.value) == message


@given(
    dp=st.integers(1, 8), mp=st.integers(1, 8), pp=st.integers(1, 8),
    which=st.sampled_from(["data_parallel", "model_parallel", "pipeline_stage"]),
)
def test_an_inferred_degree_fills_the_world(dp, mp, pp, which):
    degrees = {"data_parallel": dp, "model_parallel": mp, "pipeline_stage": pp}
    world = dp * mp * pp
    degrees[which] = -1
    config = ParallelConfig(**degrees, micro_batch_num=8)
    resolved = config.resolve(world)
    assert getattr(resolved, which) == {"data_parallel": dp, "model_parallel": mp,
                                        "pipeline_stage": pp}[which]
    assert resolved.device_num == world
    assert getattr(config, which) == -1  # the user's config is not rewritten


@pytest.mark.parametrize(
    ("config", "dims", "message"),
    [
        (ParallelConfig(model_parallel=3), LLAMA_7B,
         "num_heads(32) is not divisible by model_parallel(3): 32 % 3 = 2"),
        (ParallelConfig(model_parallel=4),
         ModelDims(2, 64, 8, 2, 128, 100, 16),
         "n_kv_heads(2) is not divisible by model_parallel(4): 2 % 4 = 2; each model-parallel "
         "rank needs whole key/value heads, so model_parallel must divide n_kv_heads"),
    ],
)
def test_model_errors_spell_out_the_remainder(config, dims, message):
    with pytest.raises(ParallelConfigError) as info:
        config.check_model(dims)
    assert str(info.value) == message


def test_ffn_vocab_sequence_and_layers_must_fit():
    dims = ModelDims(num_layers=2, hidden_size=64, num_heads=8, n_kv_heads=8,
                     ffn_hidden_size=132, vocab_size=101, seq_length=30)
    with pytest.raises(ParallelConfigError, match=r"^ffn_hidden_size\(132\) is not divisible "
                                                  r"by model_parallel\(8\): 132 % 8 = 4$"):
        ParallelConfig(model_parallel=8).check_model(dims)
    # A replicated embedding (the default) leaves the vocabulary whole.
    ParallelConfig(model_parallel=2).check_model(dims)
    with pytest.raises(ParallelConfigError, match=r"^vocab_size\(101\) is not divisible by "
                                                  r"model_parallel\(2\): 101 % 2 = 1; set "
                                                  r"vocab_emb_dp"):
        ParallelConfig(model_parallel=2, vocab_emb_dp=False).check_model(dims)
    with pytest.raises(ParallelConfigError, match=r"^seq_length\(30\) is not divisible by "
                                                  r"model_parallel\(4\): 30 % 4 = 2$"):
        ParallelConfig(model_parallel=4, use_seq_parallel=True).check_model(dims)
    with pytest.raises(ParallelConfigError, match=r"^num_layers\(2\) < pipeline_stage\(4\): "
                                                  r"every pipeline stage needs at least one"):
        ParallelConfig(pipeline_stage=4, micro_batch_num=4).check_model(dims)


def test_validate_resolves_then_checks_the_model():
    resolved = ParallelConfig(data_parallel=-1, model_parallel=8).validate(64, LLAMA_7B)
    assert resolved.data_parallel == 8
    with pytest.raises(ParallelConfigError, match=r"num_heads\(32\) is not divisible by "
                                                  r"model_parallel\(3\)"):
        ParallelConfig(data_parallel=-1, model_parallel=3).validate(6, LLAMA_7B)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(hidden_size=100, num_heads=8),
         "hidden_size(100) is not divisible by num_heads(8): 100 % 8 = 4"),
        (dict(num_heads=8, n_kv_heads=3),
         "num_heads(8) is not divisible by n_kv_heads(3): 8 % 3 = 2"),
        (dict(vocab_size=0), "vocab_size(0) must be >= 1"),
        (dict(num_layers=2.5), "num_layers must be an integer, got 2.5 (float)"),
    ],
)
def test_model_dims_errors(kwargs, message):
    base = dict(num_layers=2, hidden_size=64, num_heads=8, n_kv_heads=8, ffn_hidden_size=128,
                vocab_size=100, seq_length=16)
    with pytest.raises(ParallelConfigError) as info:
        ModelDims(**{**base, **kwargs})
    assert str(info.value) == message


def test_model_dims_derived_sizes():
    dims = ModelDims(2, 64, 8, 2, 128, 100, 16)
    assert dims.head_dim == 8
    assert dims.kv_size == 16


@given(b=st.integers(1, 64), dp=st.integers(1, 16), m=st.integers(1, 16), i=st.integers(1, 4))
def test_global_batch_is_the_product_and_is_not_written_back(b, dp, m, i):
    config = ParallelConfig(data_parallel=dp, micro_batch_num=m, micro_batch_interleave_num=i)
    assert config.global_batch_size(b) == b * dp * m * i
    assert config.global_batch_text(b).endswith(f"= {b * dp * m * i}")
    assert config.micro_batch_num == m  # unchanged


def test_global_batch_needs_a_known_data_parallel():
    with pytest.raises(ParallelConfigError, match=r"data_parallel\(-1\) is unknown"):
        ParallelConfig(data_parallel=-1).global_batch_size(2)
    with pytest.raises(ParallelConfigError, match=r"^batch_size\(0\) must be >= 1$"):
        ParallelConfig().global_batch_size(0)


def test_from_dict_reads_a_run_yaml_section_and_suggests_a_fix():
    config = ParallelConfig.from_dict({"data_parallel": 2, "model_parallel": 4,
                                       "pipeline_stage": 1, "vocab_emb_dp": False})
    assert config.model_parallel == 4 and config.vocab_emb_dp is False
    assert ParallelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ParallelConfigError,
                       match=r"^unknown parallel_config key 'model_paralel'; did you mean "
                             r"'model_parallel'\?$"):
        ParallelConfig.from_dict({"model_paralel": 2})


def test_describe():
    assert ParallelConfig(2, 2, 2, micro_batch_num=2).describe() == \
        "dp 2 x mp 2 x pp 2 = 8 devices"
    assert ParallelConfig(-1, 2, 1).describe() == "dp -1 x mp 2 x pp 1"
