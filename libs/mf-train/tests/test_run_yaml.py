"""The run YAML: schema, base_config, --options, derived values, and every bad-input case."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mf_train.errors import (
    ConfigFileNotFoundError,
    TrainConfigError,
    UnknownKeyError,
    YamlSyntaxError,
)
from mf_train.run_yaml import load_run_config, parse_option

# A run YAML with MindFormers' full key tree (as in its configs/llama and configs/gpt2 run files)
MINDFORMERS_STYLE = """\
seed: 0
output_dir: './output'
load_checkpoint: ''
auto_trans_ckpt: False
only_save_strategy: False
resume_training: False
run_mode: 'train'
trainer:
  type: CausalLanguageModelingTrainer
  model_name: 'llama_7b'
runner_config:
  epochs: 2
  batch_size: 4
  sink_mode: True
  sink_size: 2
optimizer:
  type: FP32StateAdamWeightDecay
  beta1: 0.9
  beta2: 0.95
  eps: 1.e-8
lr_schedule:
  type: CosineWithWarmUpLR
  learning_rate: 3.e-4
  lr_end: 3.e-5
  warmup_ratio: 0.03
  total_steps: -1
train_dataset: &train_dataset
  data_loader:
    type: MindDataset
    dataset_dir: ""
    shuffle: True
  input_columns: ["input_ids"]
  num_parallel_workers: 8
  python_multiprocessing: False
  drop_remainder: True
  batch_size: 4
  repeat: 1
  numa_enable: False
  prefetch_size: 1
train_dataset_task:
  type: CausalLanguageModelDataset
  dataset_config: *train_dataset
do_eval: False
eval_step_interval: -1
eval_epoch_interval: 50
eval_dataset: &eval_dataset
  data_loader:
    type: MindDataset
    dataset_dir: ""
    shuffle: False
  input_columns: ["input_ids"]
  drop_remainder: False
eval_dataset_task:
  type: CausalLanguageModelDataset
  dataset_config: *eval_dataset
use_parallel: False
parallel_config:
  data_parallel: 2
  model_parallel: 1
  pipeline_stage: 1
  optimizer_shard: False
  micro_batch_num: 1
  vocab_emb_dp: True
  gradient_aggregation_group: 4
micro_batch_interleave_num: 1
recompute_config:
  recompute: True
  parallel_optimizer_comm_recompute: False
  mp_comm_recompute: True
  recompute_slice_activation: True
callbacks:
  - type: MFLossMonitor
  - type: CheckpointMointor
    prefix: "llama_7b"
    save_checkpoint_steps: 100
context:
  mode: 0
  device_target: "CPU"
  max_call_depth: 10000
  max_device_memory: "31GB"
  save_graphs: False
  device_id: 0
parallel:
  parallel_mode: 0
  gradients_mean: True
  enable_alltoall: False
  full_batch: True
  search_mode: "sharding_propagation"
  enable_parallel_optimizer: False
  strategy_ckpt_save_file: "./ckpt_strategy.ckpt"
  parallel_optimizer_config:
    gradient_accumulation_shard: False
    parallel_optimizer_threshold: 64
model:
  model_config:
    type: LlamaConfig
    seq_length: 2048
    hidden_size: 4096
    num_layers: 32
  arch:
    type: LlamaForCausalLM
processor:
  return_tensors: ms
  tokenizer:
    type: LlamaTokenizer
metric:
  type: PerplexityMetric
runner_wrapper:
  type: MFTrainOneStepCell
  scale_sense:
    type: DynamicLossScaleUpdateCell
    loss_scale_value: 65536
  use_clip_grad: True
profile: False
profile_start_step: 1
profile_stop_step: 10
layer_scale: False
layer_decay: 0.65
lr_scale_factor: 256
remote_save_url: "Please input obs url on AICC platform."
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_mindformers_key_tree_loads_with_its_values(tmp_path):
    cfg = load_run_config(write(tmp_path, "run.yaml", MINDFORMERS_STYLE))
    assert cfg.runner_config.batch_size == 4
    assert cfg.optimizer.eps == 1e-8
    assert cfg.lr_schedule.learning_rate == 3e-4
    assert cfg.recompute_config.recompute is True
    assert cfg.model.model_config["num_layers"] == 32
    assert cfg.eval_dataset.data_loader.shuffle is False
    assert cfg.train_dataset_task["dataset_config"]["batch_size"] == 4  # the YAML alias
    assert cfg.callbacks[1]["save_checkpoint_steps"] == 100
    # keys that do nothing here are reported, not dropped
    assert "context.max_device_memory" in cfg.inert
    assert "profile" in cfg.inert and "remote_save_url" in cfg.inert
    assert any("no effect" in line for line in cfg.notes())


def test_defaults_fill_what_was_not_written(tmp_path):
    cfg = load_run_config(write(tmp_path, "run.yaml", "runner_config:\n  epochs: 3\n"))
    assert cfg.runner_config.epochs == 3
    assert cfg.runner_config.batch_size == 1
    assert cfg.eval_dataset.drop_remainder is False
    assert cfg.was_written("runner_config.epochs")
    assert not cfg.was_written("runner_config.batch_size")


def test_derived_values_are_spelled_out_and_not_written_back(tmp_path):
    cfg = load_run_config(write(tmp_path, "run.yaml", MINDFORMERS_STYLE))
    derived = {d.name: d for d in cfg.derived(num_samples=1003)}
    gbs = derived["global_batch_size"]
    assert gbs.value == 8
    assert gbs.formula == "batch_size(4) * data_parallel(2) * micro_batch_num(1)"
    assert derived["steps_per_epoch"].value == 125  # 1003 // 8
    assert derived["lr_schedule.total_steps"].value == 250  # 2 epochs
    assert derived["lr_schedule.warmup_steps"].value == 7  # int(250 * 0.03)
    assert "derived" in str(gbs)
    assert cfg.lr_schedule.total_steps == -1  # what the user wrote stays as written
    schedule = cfg.lr_schedule_for(cfg.total_steps(1003))
    assert schedule.total_steps == 250 and schedule.warmup_steps == 7


def test_written_total_steps_is_used_as_is(tmp_path):
    cfg = load_run_config(write(tmp_path, "run.yaml", "lr_schedule:\n  total_steps: 77\n"))
    assert cfg.total_steps(10_000) == 77
    assert "lr_schedule.total_steps" not in {d.name for d in cfg.derived(10_000)}


def test_gradient_accumulation_enters_the_global_batch(tmp_path):
    cfg = load_run_config(write(tmp_path, "run.yaml", """\
        runner_config: {batch_size: 2, gradient_accumulation_steps: 4}
        parallel_config: {data_parallel: 2, micro_batch_num: 3}
        """))
    (gbs,) = cfg.derived()
    assert gbs.value == 2 * 2 * 3 * 4
    assert "gradient_accumulation_steps(4)" in gbs.formula


def test_base_config_relative_paths_and_override_order(tmp_path):
    write(tmp_path, "common/base.yaml", """\
        seed: 5
        runner_config: {epochs: 9, batch_size: 16}
        model:
          model_config: {type: LlamaConfig, num_layers: 4, hidden_size: 64}
        """)
    write(tmp_path, "common/more.yaml", "base_config: base.yaml\nrunner_config: {epochs: 2}\n")
    run = write(tmp_path, "runs/run.yaml", """\
        base_config: ['../common/more.yaml']
        runner_config: {batch_size: 4}
        model:
          model_config: {num_layers: 2}
        """)
    cfg = load_run_config(run)
    assert cfg.seed == 5
    assert cfg.runner_config.epochs == 2  # more.yaml over base.yaml
    assert cfg.runner_config.batch_size == 4  # the file over its bases
    assert cfg.model.model_config == {"type": "LlamaConfig", "num_layers": 2, "hidden_size": 64}
    assert [p.name for p in cfg.files] == ["base.yaml", "more.yaml", "run.yaml"]


def test_base_config_cycle_is_named(tmp_path):
    write(tmp_path, "a.yaml", "base_config: b.yaml\n")
    write(tmp_path, "b.yaml", "base_config: [c.yaml]\n")
    write(tmp_path, "c.yaml", "base_config: a.yaml\n")
    with pytest.raises(TrainConfigError, match=r"base_config cycle: a.yaml -> b.yaml -> c.yaml "
                                               r"-> a.yaml"):
        load_run_config(tmp_path / "a.yaml")


def test_missing_base_config_names_the_file(tmp_path):
    run = write(tmp_path, "run.yaml", "base_config: nowhere.yaml\n")
    with pytest.raises(ConfigFileNotFoundError, match="nowhere.yaml does not exist") as info:
        load_run_config(run)
    assert info.value.exit_code == 2


def test_options_are_typed_and_win(tmp_path):
    run = write(tmp_path, "run.yaml", MINDFORMERS_STYLE)
    cfg = load_run_config(run, options=[
        "runner_config.batch_size=2", "train_dataset.batch_size=2",
        "lr_schedule.learning_rate=1e-4",
        "recompute_config.recompute=false", "model.model_config.num_layers=2",
        "callbacks=[{type: MFLossMonitor}]", "output_dir=/tmp/x y"])
    assert cfg.runner_config.batch_size == 2
    assert cfg.lr_schedule.learning_rate == 1e-4
    assert cfg.recompute_config.recompute is False
    assert cfg.model.model_config["num_layers"] == 2
    assert cfg.callbacks == [{"type": "MFLossMonitor"}]
    assert cfg.output_dir == "/tmp/x y"
    assert cfg.origins["runner_config.batch_size"] == "--options runner_config.batch_size=2"


def test_parse_option():
    assert parse_option("a.b=3") == (["a", "b"], 3)
    assert parse_option("a=true") == (["a"], True)
    assert parse_option("a=") == (["a"], "")
    for bad in ("novalue", "=3", "a..b=1"):
        with pytest.raises(TrainConfigError):
            parse_option(bad)


@pytest.mark.parametrize("text, options, pattern", [
    ("runner_config:\n  batch_sze: 4\n", [],
     r"run.yaml:2: unknown key 'runner_config.batch_sze'; did you mean "
     r"'runner_config.batch_size'\?$"),
    ("runer_config: {}\n", [], r"did you mean 'runner_config'\?"),
    ("seed: 1\n", ["parallel_config.data_paralel=2"],
     r"--options parallel_config.data_paralel=2: unknown key 'parallel_config.data_paralel'; "
     r"did you mean 'parallel_config.data_parallel'\?"),
    ("train_dataset:\n  data_loader:\n    dataset_dri: x\n", [],
     r"run.yaml:3: unknown key 'train_dataset.data_loader.dataset_dri'; "
     r"did you mean 'train_dataset.data_loader.dataset_dir'\?"),
    ("zzz: 1\n", [], r"unknown key 'zzz'; the top level accepts: "),
])
def test_unknown_keys_name_the_full_path(tmp_path, text, options, pattern):
    run = write(tmp_path, "run.yaml", text)
    with pytest.raises(UnknownKeyError, match=pattern) as info:
        load_run_config(run, options)
    assert info.value.exit_code == 2 and "\n" not in str(info.value)


@pytest.mark.parametrize("text, pattern", [
    ("runner_config:\n  batch_size: [4\nseed: 1\n", r"run.yaml:3: malformed YAML: "),
    ("seed: 1\n  bad indent: 2\n", r"run.yaml:2: malformed YAML: "),
    ("seed: 1\nseed: 2\n", r"run.yaml:2: key 'seed' is written twice in one mapping "
                           r"\(first on line 1\)"),
    ("- 1\n- 2\n", r"run.yaml: a run YAML is a mapping of keys"),
])
def test_malformed_yaml_names_file_and_line(tmp_path, text, pattern):
    run = write(tmp_path, "run.yaml", text)
    with pytest.raises(TrainConfigError, match=pattern) as info:
        load_run_config(run)
    assert info.value.exit_code == 2 and "\n" not in str(info.value)


def test_malformed_yaml_is_a_yaml_syntax_error(tmp_path):
    with pytest.raises(YamlSyntaxError):
        load_run_config(write(tmp_path, "run.yaml", "a: [\n"))


def test_unsafe_yaml_tags_are_refused(tmp_path):
    run = write(tmp_path, "run.yaml", "seed: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(YamlSyntaxError):
        load_run_config(run)


@pytest.mark.parametrize("text, pattern", [
    ("runner_config: {batch_size: true}\n",
     r"runner_config.batch_size = True \(bool\); expected an integer"),
    ("runner_config: {batch_size: 0}\n", r"runner_config.batch_size = 0; it must be >= 1"),
    ("lr_schedule: {learning_rate: fast}\n", r"lr_schedule.learning_rate = 'fast' \(str\)"),
    ("run_mode: fly\n", r"run_mode = 'fly'; allowed: train, finetune, eval, predict"),
    ("lr_schedule: {type: cosin}\n", r"lr_schedule.type = 'cosin'; allowed: "),
    ("runner_config: {batch_size: 8}\ntrain_dataset: {batch_size: 4}\n",
     r"train_dataset.batch_size\(4\) differs from runner_config.batch_size\(8\)"),
    ("optimizer: {learning_rate: 1.0e-3}\nlr_schedule: {learning_rate: 1.0e-4}\n",
     r"optimizer.learning_rate\(0.001\) differs from lr_schedule.learning_rate\(0.0001\)"),
    ("train_dataset: {data_loader: {type: ParquetDataset}}\n",
     r"train_dataset.data_loader.type = 'ParquetDataset'; allowed: MindDataset"),
    ("model: []\n", r"model must be a mapping of keys"),
])
def test_bad_values_are_one_line_errors(tmp_path, text, pattern):
    run = write(tmp_path, "run.yaml", text)
    with pytest.raises(TrainConfigError, match=pattern) as info:
        load_run_config(run)
    assert info.value.exit_code == 2 and "\n" not in str(info.value)
    assert str(info.value).startswith(str(run))  # the message says where


def test_yaml11_exponent_without_dot_is_read_as_the_number(tmp_path):
    # YAML 1.1 reads 1e-4 as a string; the float field takes its numeric value unchanged
    cfg = load_run_config(write(tmp_path, "run.yaml", "lr_schedule: {learning_rate: 1e-4}\n"))
    assert cfg.lr_schedule.learning_rate == 1e-4


def test_missing_file_is_exit_code_2(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_run_config(tmp_path / "absent.yaml")
    assert info.value.exit_code == 2


def test_resolved_config_round_trips(tmp_path):
    cfg = load_run_config(write(tmp_path, "run.yaml", MINDFORMERS_STYLE))
    again = load_run_config(write(tmp_path, "resolved.yaml", cfg.to_yaml()))
    assert again.to_dict() == cfg.to_dict()
    assert again.fingerprint() == cfg.fingerprint()


def test_fingerprint_follows_the_trajectory_keys_only(tmp_path):
    run = write(tmp_path, "run.yaml", MINDFORMERS_STYLE)
    base = load_run_config(run)
    assert load_run_config(run, ["output_dir=/elsewhere"]).fingerprint() == base.fingerprint()
    assert load_run_config(run, ["eval_step_interval=5"]).fingerprint() == base.fingerprint()
    changed = load_run_config(run, ["runner_config.batch_size=2", "train_dataset.batch_size=2"])
    assert changed.fingerprint() != base.fingerprint()
    assert load_run_config(run, ["seed=1"]).fingerprint() != base.fingerprint()
    assert load_run_config(run, ["model.model_config.num_layers=2"]).fingerprint() \
        != base.fingerprint()


def test_parallel_config_resolves_to_mf_parallel(tmp_path):
    from mf_parallel import ParallelConfig, ParallelConfigError

    from mf_train.resolve import resolve_run

    model = "model: {model_config: {type: LlamaConfig, num_layers: 2, num_heads: 4}}\n"
    run = resolve_run(write(tmp_path, "run.yaml", """\
        parallel_config: {data_parallel: 4, micro_batch_num: 4, vocab_emb_dp: false}
        micro_batch_interleave_num: 2
        runner_config: {batch_size: 2}
        """ + model))
    parallel = run.parallel
    assert isinstance(parallel, ParallelConfig) and run.world_size == 4
    assert (parallel.data_parallel, parallel.model_parallel, parallel.pipeline_stage) == (4, 1, 1)
    assert parallel.micro_batch_num == 4 and parallel.micro_batch_interleave_num == 2
    assert parallel.vocab_emb_dp is False
    bad = write(tmp_path, "bad.yaml", "parallel_config: {context_parallel: 2}\n" + model)
    with pytest.raises(TrainConfigError, match="context_parallel = 2; .* must be 1"):
        resolve_run(bad)
    heads = write(tmp_path, "heads.yaml", "parallel_config: {model_parallel: 3}\n" + model)
    with pytest.raises(ParallelConfigError, match=r"num_heads\(4\) is not divisible by "
                                                  r"model_parallel\(3\)"):
        resolve_run(heads)
    assert issubclass(ParallelConfigError, ValueError)


def test_options_reach_into_lists_by_index(tmp_path):
    path = write(tmp_path, "run.yaml", """\
        callbacks:
          - type: MFLossMonitor
          - type: CheckpointMointor
            save_checkpoint_steps: 100
        """)
    cfg = load_run_config(path, ["callbacks.1.save_checkpoint_steps=7"])
    assert cfg.callbacks[1] == {"type": "CheckpointMointor", "save_checkpoint_steps": 7}
    with pytest.raises(TrainConfigError, match=r"'callbacks' is a list of 2; '5' must be an "
                                               r"index 0\.\.1"):
        load_run_config(path, ["callbacks.5.prefix=x"])
