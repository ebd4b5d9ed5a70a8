"""The per-device memory estimate: parameter counts, and how it moves with batch, seq, mp and pp."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mf_parallel import ModelDims, ParallelConfig, ParallelConfigError, estimate_memory
from mf_parallel.memory import layer_activation_elements

# Tests run on shared machines: an example's time is not what these properties check.
no_deadline = settings(deadline=None)

# LLaMA-7B (Touvron et al. 2023); Hugging Face's LlamaForCausalLM of this config has
# 6,738,415,616 parameters (untied embedding and LM head).
LLAMA_7B = ModelDims(num_layers=32, hidden_size=4096, num_heads=32, n_kv_heads=32,
                     ffn_hidden_size=11008, vocab_size=32000, seq_length=2048)
LLAMA_7B_PARAMETERS = 6_738_415_616


def test_one_device_holds_every_parameter_of_llama_7b():
    estimate = estimate_memory(LLAMA_7B, ParallelConfig())
    stage = estimate.peak
    assert stage.parameters == 4 * LLAMA_7B_PARAMETERS
    assert stage.gradients == 4 * LLAMA_7B_PARAMETERS
    assert stage.optimizer_states == 2 * 4 * LLAMA_7B_PARAMETERS  # AdamW m and v in fp32


def test_pipeline_stages_split_the_parameters():
    config = ParallelConfig(pipeline_stage=4, micro_batch_num=4)
    estimate = estimate_memory(LLAMA_7B, config)
    assert sum(s.parameters for s in estimate.stages) == 4 * LLAMA_7B_PARAMETERS
    assert [s.layers for s in estimate.stages] == [8, 8, 8, 8]


def test_optimizer_shard_divides_the_states_over_dp():
    plain = estimate_memory(LLAMA_7B, ParallelConfig(data_parallel=8)).peak
    sharded = estimate_memory(LLAMA_7B, ParallelConfig(data_parallel=8,
                                                       optimizer_shard=True)).peak
    # Every LLaMA-7B weight's dim 0 divides by 8, so every state is cut 8 ways.
    assert sharded.optimizer_states * 8 == plain.optimizer_states
    assert sharded.activations == plain.activations


def test_recompute_keeps_only_layer_inputs():
    config = ParallelConfig()
    full = estimate_memory(LLAMA_7B, config, batch_size=2).peak.activations
    recomputed = estimate_memory(LLAMA_7B, config, batch_size=2, recompute=True).peak.activations
    per_layer = 4 * layer_activation_elements(LLAMA_7B, config, 2, 2048)
    inputs = 4 * 2 * 2048 * 4096
    head = full - 32 * per_layer
    assert recomputed == 32 * inputs + per_layer + head
    assert recomputed < full / 5


# Every dim divides by 8 (the largest model_parallel tried), so each draw is a valid layout.
dims = st.builds(
    lambda layers, heads, mha, head_dim, ffn, vocab, seq: ModelDims(
        num_layers=layers, hidden_size=heads * head_dim, num_heads=heads,
        n_kv_heads=heads if mha else 8, ffn_hidden_size=ffn * 8, vocab_size=vocab * 8,
        seq_length=seq),
    layers=st.sampled_from([4, 8, 12, 24]), heads=st.sampled_from([8, 16]),
    mha=st.booleans(), head_dim=st.sampled_from([8, 16, 64]), ffn=st.integers(4, 64),
    vocab=st.integers(8, 600), seq=st.sampled_from([32, 128, 512]),
)
options = st.fixed_dictionaries({
    "recompute": st.booleans(), "optimizer_shard": st.booleans(),
    "use_seq_parallel": st.booleans(), "vocab_emb_dp": st.booleans(),
})


def _config(opts, dp=1, mp=1, pp=1, m=4):
    return ParallelConfig(data_parallel=dp, model_parallel=mp, pipeline_stage=pp,
                          micro_batch_num=m, optimizer_shard=opts["optimizer_shard"],
                          use_seq_parallel=opts["use_seq_parallel"],
                          vocab_emb_dp=opts["vocab_emb_dp"])


@no_deadline
@given(d=dims, opts=options, b=st.integers(1, 8), dp=st.sampled_from([1, 2]))
def test_memory_grows_with_batch_and_sequence(d, opts, b, dp):
    config = _config(opts, dp=dp, mp=2, pp=2)
    base = estimate_memory(d, config, b, d.seq_length, opts["recompute"]).per_device
    assert estimate_memory(d, config, b + 1, d.seq_length, opts["recompute"]).per_device > base
    assert estimate_memory(d, config, b, d.seq_length * 2, opts["recompute"]).per_device > base


@no_deadline
@given(d=dims, opts=options, b=st.integers(1, 4))
def test_memory_shrinks_as_model_parallel_grows(d, opts, b):
    sizes = [estimate_memory(d, _config(opts, mp=mp), b, None, opts["recompute"]).per_device
             for mp in (1, 2, 4, 8)]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)


@no_deadline
@given(d=dims, opts=options, b=st.integers(1, 4))
def test_memory_shrinks_as_pipeline_stages_grow(d, opts, b):
    # Stage counts that divide the layers; with 1F1B the first stage's activations stay
    # about level (it holds pp micro-batches of num_layers / pp layers), its weights shrink.
    stage_counts = [pp for pp in (1, 2, 4) if d.num_layers % pp == 0]
    sizes = [estimate_memory(d, _config(opts, pp=pp), b, None, opts["recompute"]).per_device
             for pp in stage_counts]
    assert sizes == sorted(sizes, reverse=True)
    weights = [estimate_memory(d, _config(opts, pp=pp), b).peak.parameters
               for pp in stage_counts]
    assert weights == sorted(weights, reverse=True) and len(set(weights)) == len(weights)


@pytest.mark.parametrize(
    ("config", "kwargs", "message"),
    [
        (ParallelConfig(model_parallel=3), {},
         "num_heads(32) is not divisible by model_parallel(3): 32 % 3 = 2"),
        (ParallelConfig(), {"batch_size": 0}, "batch_size(0) must be an integer >= 1"),
        (ParallelConfig(model_parallel=4, use_seq_parallel=True), {"seq_length": 30},
         "seq_length(30) is not divisible by model_parallel(4): 30 % 4 = 2 (use_seq_parallel "
         "splits the sequence)"),
        (ParallelConfig(data_parallel=-1), {},
         "data_parallel(-1) * model_parallel(1) * pipeline_stage(1) has an unknown degree (-1): "
         "resolve it against a world size first"),
    ],
)
def test_memory_errors(config, kwargs, message):
    with pytest.raises(ParallelConfigError) as info:
        estimate_memory(LLAMA_7B, config, **kwargs)
    assert str(info.value) == message
