"""A model's tensors over whole layouts (pp x dp x mp): split/merge/reshard are exact, any
layout to any other and back; MindSpore's strategy files read as MindSpore writes them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mf_parallel import Layout, LayoutError, ParallelConfig
from mf_parallel.ms_strategy import (
    infer_config,
    parse_json_strategy,
    read_mindspore_strategy,
    split_counts,
    to_strategy,
)
from mf_parallel.plan import stage_mesh
from mf_parallel.shards import Placement, merge_tensors, reshard_tensors, split_tensors

no_deadline = settings(deadline=None, max_examples=60)
DTYPES = (np.float32, np.float16, np.int32, np.float64)


@st.composite
def configs(draw):
    pp = draw(st.integers(1, 3))
    return ParallelConfig(data_parallel=draw(st.integers(1, 2)),
                          model_parallel=draw(st.integers(1, 3)), pipeline_stage=pp,
                          micro_batch_num=pp)


@st.composite
def models(draw):
    """name -> (array, spec, stage seed): dims split anywhere divide by 2 * 3 * 2."""
    tensors = {}
    for index in range(draw(st.integers(1, 6))):
        ndim = draw(st.integers(0, 3))
        spec: list[list[str]] = [[] for _ in range(ndim)]
        if ndim:
            for axis in draw(st.permutations(["dp", "mp"])):
                where = draw(st.integers(-1, ndim - 1))
                if where >= 0:
                    spec[where].append(axis)
        shape = tuple(12 * draw(st.integers(1, 2)) if axes else draw(st.integers(1, 3))
                      for axes in spec)
        dtype = draw(st.sampled_from(DTYPES))
        array = np.random.default_rng(index).standard_normal(shape).astype(dtype)
        tensors[f"t{index}"] = (array, tuple(tuple(a) for a in spec), draw(st.integers(-1, 8)))
    return tensors


def placed(model, config):
    """Placements over `config`; a stage seed of -1 puts the tensor on every stage."""
    mesh = stage_mesh(config)
    return {name: Placement(Layout(array.shape, spec, mesh, name),
                            None if seed < 0 else seed % config.pipeline_stage)
            for name, (array, spec, seed) in model.items()}


def whole(model):
    return {name: array for name, (array, _, _) in model.items()}


def assert_identical(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and a[name].shape == b[name].shape, name
        assert a[name].tobytes() == b[name].tobytes(), name  # bit for bit


@no_deadline
@given(models(), configs())
def test_split_then_merge_gives_back_every_tensor_bit_for_bit(model, config):
    placements = placed(model, config)
    ranks = split_tensors(whole(model), placements, config)
    assert len(ranks) == config.device_num
    assert_identical(merge_tensors(ranks, placements, config), whole(model))
    for rank, tensors in enumerate(ranks):  # a rank holds only its stage's tensors
        stage = rank // (config.data_parallel * config.model_parallel)
        expected = {n for n, p in placements.items() if p.stage in (None, stage)}
        assert set(tensors) == expected


@no_deadline
@given(models(), configs(), configs())
def test_a_to_b_to_a_is_bit_identical_and_keeps_the_merged_tensors(model, a, b):
    src, dst = placed(model, a), placed(model, b)
    shards = split_tensors(whole(model), src, a)
    moved = reshard_tensors(shards, src, a, dst, b)
    for got, expected in zip(moved, split_tensors(whole(model), dst, b), strict=True):
        assert_identical(got, expected)  # resharding == merge then split
    assert_identical(merge_tensors(moved, dst, b), merge_tensors(shards, src, a))
    back = reshard_tensors(moved, dst, b, src, a)
    for got, expected in zip(back, shards, strict=True):
        assert_identical(got, expected)


def test_missing_tensors_and_wrong_rank_counts_are_one_line():
    config = ParallelConfig(model_parallel=2).resolve(2)
    placements = {"w": Placement(Layout((4, 2), (("mp",), ()), stage_mesh(config), "w"), 0)}
    with pytest.raises(LayoutError, match=r"^rank 1 lacks 'w', which the layout places there$"):
        merge_tensors([{"w": np.zeros((2, 2))}, {}], placements, config)
    with pytest.raises(LayoutError, match=r"got the tensors of 1 ranks, but data_parallel\(1\) "
                                          r"\* model_parallel\(2\) \* pipeline_stage\(1\) = 2"):
        merge_tensors([{}], placements, config)
    with pytest.raises(LayoutError, match="tensor 'x' has no placement"):
        split_tensors({"x": np.zeros(2)}, placements, config)


# ---- MindSpore's strategy files ----------------------------------------------------------------

def _node_strategy_pb2():
    """MindSpore's own generated protobuf module, loaded alone (not through `import mindspore`,
    which takes seconds): the writer our reader must agree with."""
    spec = importlib.util.find_spec("mindspore")
    if spec is None or spec.origin is None:
        pytest.skip("MindSpore is not installed: no reference writer for its strategy files")
    path = Path(spec.origin).parent / "train" / "node_strategy_pb2.py"
    module_spec = importlib.util.spec_from_file_location("ms_node_strategy_pb2", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _write_ms_strategy(pb2, path: Path, stage: int, items: dict, merged: bool = False) -> None:
    message = pb2.ParallelStrategyMap()
    message.current_stage = 1
    strategy = message.parallel_strategy_item.add()
    strategy.node_name = "MatMul-op0"
    strategy.parallel_strategys.stage = stage
    strategy.parallel_strategys.parallel_strategy.add().dim.extend([2, 1])
    for name, (dev_matrix, tensor_map, shard) in items.items():
        item = message.parallel_layout_item.add()
        item.param_name = f"{stage}-{name}" if merged else name
        layouts = item.parallel_layouts
        layouts.dev_matrix.add().dim.extend(dev_matrix)
        layouts.tensor_map.add().dim.extend(tensor_map)
        layouts.param_split_shape.add()
        layouts.indices_offset.add()
        layouts.field = 0
        layouts.opt_weight_shard_step = 0
        layouts.opt_weight_shard_size = shard
    path.write_bytes(message.SerializeToString())


def test_a_mindspore_protobuf_strategy_reads_as_mindspore_wrote_it(tmp_path):
    pb2 = _node_strategy_pb2()
    items = {"model.layers.0.attention.wq.weight": ([2, 4], [0, -1], 0),   # rows over mp
             "model.layers.0.attention.wo.weight": ([2, 4], [-1, 0], 0),   # columns over mp
             "model.tok_embeddings.embedding_weight": ([2, 4], [1, -1], 0),  # rows over dp
             "model.norm_out.weight": ([8], [-1], 0)}                      # whole
    _write_ms_strategy(pb2, tmp_path / "ckpt_strategy_rank_0.ckpt", 0, items)
    layouts = read_mindspore_strategy(tmp_path / "ckpt_strategy_rank_0.ckpt")
    assert {n: (list(lay.dev_matrix), list(lay.tensor_map)) for n, lay in layouts.items()} == \
        {n: (d, t) for n, (d, t, _) in items.items()}
    config = infer_config(layouts)
    assert (config.data_parallel, config.model_parallel, config.pipeline_stage) == (2, 4, 1)
    shapes = {"model.layers.0.attention.wq.weight": (64, 32),
              "model.layers.0.attention.wo.weight": (32, 64),
              "model.tok_embeddings.embedding_weight": (100, 32), "model.norm_out.weight": (32,)}
    strategy = to_strategy(layouts, shapes, config)
    assert strategy.layout("model.layers.0.attention.wq.weight").spec == (("mp",), ())
    assert strategy.layout("model.layers.0.attention.wo.weight").spec == ((), ("mp",))
    assert strategy.layout("model.tok_embeddings.embedding_weight").spec == (("dp",), ())
    assert strategy.layout("model.norm_out.weight").spec == ((),)
    assert split_counts(layouts["model.layers.0.attention.wq.weight"]) == (4, 1)
    # MindSpore numbers a stage's devices row-major over the device matrix, mp fastest: device
    # 5 = (dp 1, mp 1) holds rows 16..31 of wq, as our layout's rank 5 does
    assert strategy.layout("model.layers.0.attention.wq.weight").slices(5)[0] == slice(16, 32)


def test_a_merged_mindspore_strategy_gives_each_parameter_its_stage(tmp_path):
    pb2 = _node_strategy_pb2()
    files = []
    for stage, name in enumerate(["model.layers.0.w", "model.layers.1.w"]):
        _write_ms_strategy(pb2, tmp_path / f"s{stage}.ckpt", stage, {name: ([1, 2], [0], 0)},
                           merged=True)
        files.append(tmp_path / f"s{stage}.ckpt")
    merged = b"".join(path.read_bytes() for path in files)  # repeated fields concatenate
    (tmp_path / "merged.ckpt").write_bytes(merged)
    layouts = read_mindspore_strategy(tmp_path / "merged.ckpt")
    assert {n: lay.stage for n, lay in layouts.items()} == {"model.layers.0.w": 0,
                                                        "model.layers.1.w": 1}
    config = infer_config(layouts)
    assert (config.data_parallel, config.model_parallel, config.pipeline_stage) == (1, 2, 2)


def test_bad_mindspore_strategies_are_one_line(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"\x1a\xff\xff")
    with pytest.raises(Exception, match=r"bad.ckpt: not a MindSpore strategy file"):
        read_mindspore_strategy(bad)
    layouts = parse_json_strategy({"parallel_layout_item": {
        "w": {"dev_matrix": [2, 2], "tensor_map": [1, -1], "opt_weight_shard_size": 2}}})
    config = ParallelConfig(data_parallel=2, model_parallel=2).resolve(4)
    with pytest.raises(LayoutError, match="optimizer-sharded or field-split weights"):
        to_strategy(layouts, {"w": (4, 4)}, config)
    layouts = parse_json_strategy({"parallel_layout_item": {
        "w": {"dev_matrix": [2, 2], "tensor_map": [0, -1]}}})
    with pytest.raises(LayoutError, match=r"dim 0 of size 3 .* 3 % 2 = 1"):
        to_strategy(layouts, {"w": (3, 4)}, config)
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"parallel_strategy_item": {}, "parallel_layout_item": {}}))
    with pytest.raises(Exception, match="lists no parameter"):
        read_mindspore_strategy(path)
