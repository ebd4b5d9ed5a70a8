"""The run's memory estimate (what mf train plans, refuses by and writes in plan.json): LoRA's
frozen base keeps no optimizer state, optimizer_shard divides the states by dp."""

from __future__ import annotations

import textwrap

from mf_train.plan import run_memory_estimate
from mf_train.resolve import resolve_run


def _estimate(tmp_path, model_extra="", parallel="{}"):
    text = textwrap.dedent("""\
        output_dir: out
        parallel_config: %s
        runner_config: {epochs: 1, batch_size: 2}
        train_dataset:
          data_loader: {type: TextFileDataset, dataset_dir: corpus}
        model:
          model_config: {type: LlamaConfig, seq_length: 32, vocab_size: 256, hidden_size: 64,
                          num_layers: 2, num_heads: 4, intermediate_size: 128%s}
        """) % (parallel, model_extra)
    path = tmp_path / "run.yaml"
    path.write_text(text)
    run = resolve_run(path, [], mode="train")
    return run, run_memory_estimate(run.config, run.model_config, run.parallel).peak


def test_lora_trains_less_than_the_full_model(tmp_path):
    run, full = _estimate(tmp_path)
    _, lora = _estimate(tmp_path, ", pet_config: {pet_type: lora, lora_rank: 4}")
    count = run.model_config.parameter_count
    assert full.optimizer_states == 2 * 4 * count
    # A (4, 64) and B (out, 4) on each of wq, wk, wv, wo of both layers
    lora_weights = 2 * 4 * 4 * (64 + 64)
    assert lora.optimizer_states == 2 * 4 * lora_weights
    assert lora.gradients == 4 * lora_weights
    assert lora.parameters == 4 * (count + lora_weights)
    assert lora.total < full.total


def test_optimizer_shard_divides_the_states_by_dp(tmp_path):
    _, plain = _estimate(tmp_path, parallel="{data_parallel: 2}")
    _, sharded = _estimate(tmp_path, parallel="{data_parallel: 2, optimizer_shard: true}")
    assert sharded.optimizer_states * 2 == plain.optimizer_states  # every dim 0 is even
    assert sharded.parameters == plain.parameters  # ShardedAdamW keeps whole weights
