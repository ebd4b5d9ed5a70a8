"""The per-device memory estimate: parameter counts, and how it moves with batch, seq, mp and pp."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mf_parallel import ModelDims, ParallelConfig, ParallelConfigError, estimate_memory
from mf_parallel.memory import (
    CPU_PROCESS_BASE,
    ParamSpec,
    decoder_params,
    layer_activation_elements,
)

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


def test_recompute_keeps_only_layer_inputs_on_accelerators():
    config = ParallelConfig()
    full = estimate_memory(LLAMA_7B, config, batch_size=2,
                           backend="accelerator").peak.activations
    recomputed = estimate_memory(LLAMA_7B, config, batch_size=2, recompute=True,
                                 backend="accelerator").peak.activations
    per_layer = 4 * sum(layer_activation_elements(LLAMA_7B, config, 2, 2048))
    inputs = 4 * 2 * 2048 * 4096
    head = full - 32 * per_layer
    assert recomputed == 32 * inputs + per_layer + head
    assert recomputed < full / 5


def test_recompute_adds_one_layer_on_cpu():
    # Measured (benchmarks/memory_estimate.py): MindSpore's CPU autodiff keeps every forward
    # output anyway, and the recomputed layer's come on top.
    config = ParallelConfig()
    full = estimate_memory(LLAMA_7B, config, batch_size=2).peak.activations
    recomputed = estimate_memory(LLAMA_7B, config, batch_size=2, recompute=True).peak.activations
    assert full < recomputed < full * 33 / 32


def test_cpu_adds_the_process_and_keeps_more_activations():
    cpu = estimate_memory(LLAMA_7B, ParallelConfig(), batch_size=2).peak
    device = estimate_memory(LLAMA_7B, ParallelConfig(), batch_size=2,
                             backend="accelerator").peak
    assert device.framework == 0 and cpu.framework > CPU_PROCESS_BASE
    assert cpu.activations > 4 * device.activations
    assert cpu.parameters == device.parameters


def _plain_params(dims, trainable=True):
    return [ParamSpec(p.name, p.shape, trainable) for p in decoder_params(dims)]


def test_the_parameter_list_decides_what_each_rank_holds():
    # The same decoder given as its parameter list and plan gives the built-in count; without
    # a plan every tensor is whole on every rank, so mp=2 saves no weights.
    small = ModelDims(num_layers=4, hidden_size=64, num_heads=4, n_kv_heads=4,
                      ffn_hidden_size=128, vocab_size=256, seq_length=32)
    config = ParallelConfig(model_parallel=2)
    builtin = estimate_memory(small, config).peak
    unplanned = estimate_memory(small, config, params=_plain_params(small)).peak
    assert unplanned.parameters > builtin.parameters
    one = estimate_memory(small, ParallelConfig(), params=_plain_params(small)).peak
    assert unplanned.parameters == one.parameters


def test_frozen_weights_keep_no_gradients_or_optimizer_states():
    small = ModelDims(num_layers=2, hidden_size=64, num_heads=4, n_kv_heads=4,
                      ffn_hidden_size=128, vocab_size=256, seq_length=32)
    frozen = estimate_memory(small, ParallelConfig(), params=_plain_params(small, False)).peak
    trained = estimate_memory(small, ParallelConfig(), params=_plain_params(small)).peak
    assert frozen.gradients == frozen.optimizer_states == 0
    assert frozen.parameters == trained.parameters
    assert frozen.total < trained.total


def test_inference_counts_a_cache_and_no_optimizer():
    peak = estimate_memory(LLAMA_7B, ParallelConfig(), batch_size=2, train=False).peak
    assert peak.gradients == peak.optimizer_states == 0
    assert peak.caches == 2 * 32 * 2 * 2048 * 4096 * 4  # K and V, every layer, fp32


def test_gpipe_holds_every_micro_batch_1f1b_at_most_pp():
    config = ParallelConfig(pipeline_stage=2, micro_batch_num=8)
    gpipe = estimate_memory(LLAMA_7B, config, schedule="gpipe").stages[0].activations
    one_f_one_b = estimate_memory(LLAMA_7B, config).stages[0].activations
    assert gpipe == 4 * one_f_one_b  # 8 micro-batches in flight against 2


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
