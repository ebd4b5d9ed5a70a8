"""Strategy files: write, read back, validate; broken files are one-line errors."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from mf_parallel import (
    ParallelConfig,
    ParallelFileNotFoundError,
    Strategy,
    StrategyFileError,
    merge,
    read_strategy,
    split,
    write_strategy,
)
from mf_parallel.errors import LayoutError, ParallelConfigError

PLAN = {
    "embed.weight": ("mp", None),
    "layers.*.wq.weight": ("mp", None),
    "layers.*.wo.weight": (None, "mp"),
    "norm.weight": (None,),
    "head.weight": (None, None),
}
PARAMS = [("embed.weight", (16, 8))] + [
    (f"layers.{i}.{w}.weight", (8, 8)) for i in range(4) for w in ("wq", "wo")
] + [("norm.weight", (8,)), ("head.weight", (16, 8))]
CONFIG = ParallelConfig(data_parallel=2, model_parallel=2, pipeline_stage=2, micro_batch_num=2,
                        optimizer_shard=True)


@pytest.fixture
def strategy():
    return Strategy.from_plan(PLAN, PARAMS, CONFIG, num_layers=4)


def test_write_then_read_gives_the_same_strategy(tmp_path, strategy):
    path = write_strategy(strategy, tmp_path / "strategy" / "ckpt_strategy.json")
    assert read_strategy(path) == strategy
    assert [p.name for p in path.parent.iterdir()] == ["ckpt_strategy.json"]  # no temp left
    data = json.loads(path.read_text())
    assert data["mesh"] == {"axes": ["pp", "dp", "mp"], "sizes": [2, 2, 2]}
    assert data["parameters"]["layers.0.wq.weight"] == {"shape": [8, 8], "stage": 0,
                                                        "spec": ["mp", None]}


def test_vocab_emb_dp_keeps_what_is_outside_the_layers_whole():
    split = Strategy.from_plan(PLAN, PARAMS, dataclasses.replace(CONFIG, vocab_emb_dp=False), 4)
    assert split.params["embed.weight"].spec == (("mp",), ())
    whole = Strategy.from_plan(PLAN, PARAMS, CONFIG, 4)  # MindFormers' default: vocab_emb_dp
    assert whole.params["embed.weight"].spec == ((), ())
    assert whole.params["layers.0.wq.weight"].spec == split.params["layers.0.wq.weight"].spec


def test_stages_follow_the_layers(strategy):
    stages = {name: p.stage for name, p in strategy.params.items()}
    assert stages["embed.weight"] == 0
    assert stages["layers.1.wq.weight"] == 0 and stages["layers.2.wq.weight"] == 1
    assert stages["norm.weight"] == 1 and stages["head.weight"] == 1


def test_rank_slices_rebuild_every_parameter(strategy):
    # Each global rank takes its slices; the ranks of a stage together rebuild its weights.
    rng = np.random.default_rng(0)
    weights = {name: rng.standard_normal(shape) for name, shape in PARAMS}
    for stage in range(CONFIG.pipeline_stage):
        ranks = strategy.stage_ranks(stage)
        assert ranks == list(range(stage * 4, stage * 4 + 4))
        per_rank = {rank: strategy.rank_slices(rank) for rank in ranks}
        for name, param in strategy.params.items():
            if param.stage != stage:
                assert all(name not in per_rank[r] for r in ranks)
                continue
            shards = [weights[name][per_rank[r][name]] for r in ranks]
            np.testing.assert_array_equal(merge(shards, strategy.layout(name)), weights[name])


def test_optimizer_layout_splits_over_dp_when_sharded(strategy):
    assert strategy.optimizer_layout("layers.0.wq.weight").shard_shape == (2, 8)
    unsharded = Strategy(ParallelConfig(2, 2, 2, micro_batch_num=2), strategy.params)
    assert unsharded.optimizer_layout("layers.0.wq.weight").shard_shape == (4, 8)


def test_check_params(strategy):
    strategy.check_params(PARAMS)
    with pytest.raises(LayoutError, match=r"^the strategy has parameter 'head.weight' that the "
                                          r"model lacks$"):
        strategy.check_params(PARAMS[:-1])
    with pytest.raises(LayoutError, match=r"^norm.weight: the model's shape \(9,\) != the "
                                          r"strategy's \(8,\)$"):
        strategy.check_params([(n, (9,) if n == "norm.weight" else s) for n, s in PARAMS])


def _write(tmp_path, text):
    path = tmp_path / "s.json"
    path.write_text(text)
    return path


def test_truncated_file_is_one_line(tmp_path, strategy):
    text = json.dumps(strategy.to_dict(), indent=1)
    path = _write(tmp_path, text[: len(text) // 2])
    with pytest.raises(StrategyFileError) as info:
        read_strategy(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not valid JSON (truncated or corrupt?): ")
    assert "\n" not in message


def _broken(strategy, edit):
    data = json.loads(json.dumps(strategy.to_dict()))
    edit(data)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(format="other"),
         "not an mf strategy file: 'format' is 'other', expected 'mf-parallel-strategy'"),
        (lambda d: d.update(version=9),
         "version 9 is not supported (this mf-parallel reads version 1)"),
        (lambda d: d.pop("parameters"), "missing key 'parameters'"),
        (lambda d: d["mesh"].update(sizes=[2, 2, 4]),
         "mesh {'axes': ['pp', 'dp', 'mp'], 'sizes': [2, 2, 4]} does not match parallel_config, "
         "which gives {'axes': ['pp', 'dp', 'mp'], 'sizes': [2, 2, 2]}"),
        (lambda d: d["parallel_config"].update(data_parallel=0),
         "parallel_config: data_parallel(0) must be >= 1 (or -1 to infer it from the world "
         "size)"),
        (lambda d: d["parameters"]["norm.weight"].update(shape=[8, "x"]),
         "parameters['norm.weight'].shape is [8, 'x'], expected a list of integers >= 0"),
        (lambda d: d["parameters"]["norm.weight"].update(stage=2),
         "parameters['norm.weight'].stage is 2, expected 0..1 (pipeline_stage is 2)"),
        (lambda d: d["parameters"]["layers.0.wq.weight"].update(shape=[9, 8]),
         "layers.0.wq.weight: dim 0 of size 9 (shape (9, 8)) is split over mp(2): 9 % 2 = 1"),
        (lambda d: d["parameters"]["layers.0.wq.weight"].pop("spec"),
         "parameters['layers.0.wq.weight'] is missing 'spec'"),
    ],
)
def test_invalid_strategy_files_name_the_problem(tmp_path, strategy, edit, message):
    path = _write(tmp_path, _broken(strategy, edit))
    with pytest.raises(StrategyFileError) as info:
        read_strategy(path)
    assert str(info.value) == f"{path}: {message}"
    assert info.value.exit_code == 2


def test_missing_file(tmp_path):
    with pytest.raises(ParallelFileNotFoundError) as info:
        read_strategy(tmp_path / "nope.json")
    assert isinstance(info.value, FileNotFoundError) and info.value.exit_code == 2


def test_a_strategy_that_cannot_be_read_back_is_never_written(tmp_path, strategy):
    bad = Strategy(strategy.config, {**strategy.params})
    object.__setattr__(bad, "config", ParallelConfig(data_parallel=-1))
    with pytest.raises(ParallelConfigError, match="unknown degree"):
        write_strategy(bad, tmp_path / "s.json")
    assert list(tmp_path.iterdir()) == []


def test_layout_split_matches_strategy_slices(strategy):
    weight = np.arange(64.0).reshape(8, 8)
    layout = strategy.layout("layers.3.wo.weight")
    shards = split(weight, layout)
    for local, rank in enumerate(strategy.stage_ranks(1)):
        np.testing.assert_array_equal(
            shards[local], weight[strategy.rank_slices(rank)["layers.3.wo.weight"]])
