"""MindSpore's own strategy files (what MindFormers saves under `strategy/`), read without
MindSpore: protobuf (`ckpt_strategy_rank_<r>.ckpt`, or a merged `.ckpt`) or its JSON twin.

The protobuf schema is `node_strategy.proto` (mindspore/train/node_strategy_pb2.py):

    ParallelStrategyMap { 1 current_stage, 2 repeated ParallelStrategyItem,
                          3 repeated ParallelLayoutItem }
    ParallelStrategyItem { 1 node_name, 2 ParallelStrategys { 1 stage, ... } }
    ParallelLayoutItem { 1 param_name, 2 ParallelLayouts { 1 dev_matrix { repeated dim },
        2 tensor_map { repeated dim }, 3 param_split_shape, 4 indices_offset, 5 field,
        6 opt_weight_shard_step, 7 opt_weight_shard_size } }

A parameter's layout is a device matrix (its stage's devices arranged row-major, the first
dim slowest) and a tensor map: per tensor dim, the device-matrix dim it is split over,
counted from the right (0 is the last, fastest dim), or -1. A merged file (one per job, as
`merge_pipeline_strategys` writes) prefixes each name with its stage: "1-model.norm.weight".

`to_strategy` turns that into mf-parallel's `Strategy` over a (dp, mp) stage mesh (mp
fastest, as MindSpore numbers ranks), which needs each parameter's global shape; a
device-matrix dim that is not dp, mp or dp * mp on that mesh cannot be expressed and is an
error naming the parameter.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mf_parallel.config import ParallelConfig
from mf_parallel.errors import LayoutError, ParallelFileNotFoundError, StrategyFileError
from mf_parallel.strategy import ParamStrategy, Strategy

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5


@dataclass(frozen=True)
class MsLayout:
    """One parameter's entry of a MindSpore strategy file."""

    dev_matrix: tuple[int, ...]
    tensor_map: tuple[int, ...]
    stage: int
    opt_weight_shard_size: int = 0
    field: int = 0


# ---- just enough protobuf ---------------------------------------------------------------------
# (mf_tokenize._sp_proto reads SentencePiece files the same way; the layers keep the two
# libraries apart, and neither should depend on the protobuf package for one message.)

def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 70:
            raise ValueError("varint too long")


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, int or bytes) of one message, in order."""
    out, pos = [], 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(data, pos)
        elif wire == _LENGTH:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated field")
            value, pos = data[pos:pos + size], pos + size
        elif wire in (_FIXED64, _FIXED32):
            width = 8 if wire == _FIXED64 else 4
            value, pos = int.from_bytes(data[pos:pos + width], "little"), pos + width
        else:
            raise ValueError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _signed(value: int) -> int:
    # int32/int64 are varints of their 64-bit two's complement: -1 is 2**64 - 1.
    return value - (1 << 64) if value >= 1 << 63 else value


def _repeated_ints(message: bytes, number: int = 1) -> list[int]:
    """A repeated integer field, packed or not."""
    values = []
    for field_number, wire, value in _fields(message):
        if field_number != number:
            continue
        if wire == _VARINT:
            values.append(_signed(value))
        elif wire == _LENGTH:  # packed
            pos = 0
            while pos < len(value):
                item, pos = _varint(value, pos)
                values.append(_signed(item))
    return values


def _scalar(fields: list[tuple[int, int, Any]], number: int, default: int = 0) -> int:
    found = [value for n, wire, value in fields if n == number and wire == _VARINT]
    return _signed(found[-1]) if found else default


def parse_protobuf_strategy(data: bytes) -> dict[str, MsLayout]:
    """The layouts of a ParallelStrategyMap message."""
    top = _fields(data)
    stage = 0
    for number, wire, value in top:
        if number == 2 and wire == _LENGTH:  # ParallelStrategyItem
            for n, w, v in _fields(value):
                if n == 2 and w == _LENGTH:
                    stage = _scalar(_fields(v), 1)
                    break
            break
    layouts: dict[str, MsLayout] = {}
    for number, wire, value in top:
        if number != 3 or wire != _LENGTH:
            continue
        item = _fields(value)
        names = [v for n, w, v in item if n == 1 and w == _LENGTH]
        bodies = [v for n, w, v in item if n == 2 and w == _LENGTH]
        if not names or not bodies:
            raise ValueError("a layout item without param_name or parallel_layouts")
        body = _fields(bodies[0])
        messages = {k: [v for n, w, v in body if n == k and w == _LENGTH] for k in (1, 2)}
        if not messages[1] or not messages[2]:
            raise ValueError(f"{names[0].decode()!r} has no dev_matrix or tensor_map")
        if len(messages[2]) > 1 and sum(bool(_repeated_ints(m)) for m in messages[2]) > 1:
            raise ValueError(f"{names[0].decode()!r} splits a dim over several device dims")
        tensor_map = next((_repeated_ints(m) for m in messages[2] if _repeated_ints(m)), [])
        _add(layouts, names[0].decode("utf-8"), _repeated_ints(messages[1][0]), tensor_map,
             stage, _scalar(body, 7), _scalar(body, 5))
    return layouts


def _add(layouts: dict[str, MsLayout], name: str, dev_matrix: Sequence[int],
         tensor_map: Sequence[int], stage: int, shard_size: int, field: int) -> None:
    head, _, rest = name.partition("-")
    if rest and head.isdigit():  # a merged file: "<stage>-<name>"
        stage, name = int(head), rest
    if name in layouts and layouts[name].stage <= stage:
        return  # a parameter shared by stages (tied embedding): its first stage holds it
    layouts[name] = MsLayout(tuple(dev_matrix), tuple(tensor_map), stage, shard_size, field)


def parse_json_strategy(data: Mapping[str, Any]) -> dict[str, MsLayout]:
    """MindSpore's JSON strategy form ({"parallel_layout_item": {name: {...}}, ...})."""
    items = data.get("parallel_strategy_item") or {}
    first = next(iter(items.values()), {}) if isinstance(items, dict) else {}
    stage = int(first.get("stage", 0)) if isinstance(first, dict) else 0
    layouts: dict[str, MsLayout] = {}
    for name, entry in (data.get("parallel_layout_item") or {}).items():
        tensor_map = entry.get("tensor_map", [])
        if tensor_map and isinstance(tensor_map[0], list):
            raise ValueError(f"{name!r} splits a dim over several device dims")
        _add(layouts, name, entry.get("dev_matrix", []), tensor_map, stage,
             int(entry.get("opt_weight_shard_size") or 0), int(entry.get("field") or 0))
    return layouts


def read_mindspore_strategy(path: str | os.PathLike) -> dict[str, MsLayout]:
    """Every parameter's layout in a MindSpore strategy file (protobuf, or .json)."""
    path = Path(path)
    if not path.is_file():
        raise ParallelFileNotFoundError(f"strategy file {str(path)!r} does not exist")
    data = path.read_bytes()
    try:
        if path.suffix == ".json":
            layouts = parse_json_strategy(json.loads(data))
        else:
            layouts = parse_protobuf_strategy(data)
    except (ValueError, UnicodeDecodeError, AttributeError, TypeError) as exc:
        raise StrategyFileError(f"{path}: not a MindSpore strategy file ({exc})") from None
    if not layouts:
        raise StrategyFileError(f"{path}: the MindSpore strategy file lists no parameter")
    return layouts


def is_mf_strategy(path: str | os.PathLike) -> bool:
    """Whether a file is mf-parallel's JSON strategy (else it may be MindSpore's)."""
    try:
        head = Path(path).read_bytes()[:4096].decode("utf-8", errors="replace")
    except OSError:
        return False
    return '"mf-parallel-strategy"' in head


# ---- to mf-parallel's Strategy ------------------------------------------------------------------

def _dim_axes(dev_matrix: Sequence[int], index_from_right: int, dp: int, mp: int,
              name: str) -> tuple[str, ...]:
    """The (dp, mp) axes that a device-matrix dim covers; mp varies fastest in both."""
    position = len(dev_matrix) - 1 - index_from_right
    if not 0 <= position < len(dev_matrix):
        raise LayoutError(f"{name}: tensor_map names device dim {index_from_right}, but the "
                          f"device matrix {list(dev_matrix)} has {len(dev_matrix)} dims")
    size = dev_matrix[position]
    if size == 1:
        return ()
    stride = math.prod(dev_matrix[position + 1:])
    # later entries win where sizes of 1 make two spans equal: the plainest name stays
    span = {(1, mp * dp): ("dp", "mp"), (1, mp): ("mp",), (mp, mp * dp): ("dp",)}
    axes = span.get((stride, stride * size))
    if axes is None:
        raise LayoutError(
            f"{name}: device dim of size {size} (device matrix {list(dev_matrix)}) is not "
            f"dp({dp}), mp({mp}) or dp * mp of the stage mesh; give the layout it was saved "
            f"under (dp, mp) explicitly")
    return axes


def to_strategy(layouts: Mapping[str, MsLayout], shapes: Mapping[str, Sequence[int]],
                config: ParallelConfig) -> Strategy:
    """mf-parallel's Strategy for the parameters in `shapes` (global shapes)."""
    config.require_resolved()
    dp, mp = config.data_parallel, config.model_parallel
    params = {}
    for name, shape in shapes.items():
        layout = layouts.get(name)
        if layout is None:
            raise LayoutError(f"the MindSpore strategy has no layout for {name!r}")
        if math.prod(layout.dev_matrix) != dp * mp:
            raise LayoutError(
                f"{name}: device matrix {list(layout.dev_matrix)} holds "
                f"{math.prod(layout.dev_matrix)} devices, but a stage of data_parallel({dp}) * "
                f"model_parallel({mp}) has {dp * mp}")
        if layout.opt_weight_shard_size > 1 or layout.field:
            raise LayoutError(f"{name}: optimizer-sharded or field-split weights "
                              f"(opt_weight_shard_size {layout.opt_weight_shard_size}, field "
                              f"{layout.field}) are not supported; save with integrated_save")
        if len(layout.tensor_map) != len(shape):
            raise LayoutError(f"{name}: tensor_map {list(layout.tensor_map)} has "
                              f"{len(layout.tensor_map)} dims, the tensor {len(shape)}")
        if not 0 <= layout.stage < config.pipeline_stage:
            raise LayoutError(f"{name}: stage {layout.stage} is outside 0.."
                              f"{config.pipeline_stage - 1}")
        spec = tuple(() if index < 0 else _dim_axes(layout.dev_matrix, index, dp, mp, name)
                     for index in layout.tensor_map)
        params[name] = ParamStrategy(tuple(int(d) for d in shape), layout.stage, spec)
    strategy = Strategy(config, params)
    for name in params:
        strategy.layout(name)  # divisibility, one line per problem
    return strategy


def split_counts(layout: MsLayout) -> tuple[int, ...]:
    """Into how many parts each tensor dim is cut (to get a global shape from a shard's)."""
    return tuple(1 if index < 0 else layout.dev_matrix[len(layout.dev_matrix) - 1 - index]
                 for index in layout.tensor_map)


def infer_config(layouts: Mapping[str, MsLayout]) -> ParallelConfig:
    """The (dp, mp, pp) a MindSpore strategy was saved under, when only one fits.

    pp is the number of stages; mp is read from the parameters split over the fastest device
    dim (MindFormers' matmul weights: device matrix (dp, mp)). Ambiguous files need the
    layout given explicitly.
    """
    stages = sorted({layout.stage for layout in layouts.values()})
    if stages != list(range(len(stages))):
        raise StrategyFileError(f"the strategy's stages {stages} are not 0..{len(stages) - 1}")
    devices = {math.prod(layout.dev_matrix) for layout in layouts.values()}
    if len(devices) != 1:
        raise StrategyFileError(f"the strategy's device matrices hold different numbers of "
                                f"devices {sorted(devices)}")
    stage_size = devices.pop()
    fastest = {layout.dev_matrix[-1] for layout in layouts.values()
               if 0 in layout.tensor_map and len(layout.dev_matrix) > 1}
    mp = fastest.pop() if len(fastest) == 1 else (1 if not fastest else 0)
    if mp == 0 or stage_size % mp:
        raise StrategyFileError(
            "cannot tell model_parallel from the strategy (its parameters split over device "
            f"dims of sizes {sorted(fastest)}); give the source layout explicitly")
    return ParallelConfig(data_parallel=stage_size // mp, model_parallel=mp,
                          pipeline_stage=len(stages), micro_batch_num=len(stages))
