"""Strategy files: the mesh and every parameter's global shape, stage and layout, as JSON.

A sharded checkpoint is only readable with the strategy it was saved under; this file is that
strategy. It is written atomically and checked fully when read, so a truncated or hand-edited
file fails with one line that names the problem. The format (version 1):

    {
      "format": "mf-parallel-strategy",
      "version": 1,
      "mesh": {"axes": ["pp", "dp", "mp"], "sizes": [2, 2, 2]},
      "parallel_config": {"data_parallel": 2, "model_parallel": 2, "pipeline_stage": 2, ...},
      "parameters": {
        "model.layers.0.attention.wq.weight": {"shape": [4096, 4096], "stage": 0,
                                               "spec": ["mp", null]},
        ...
      }
    }

"spec" is over the (dp, mp) mesh of the parameter's stage (see `mf_parallel.plan`); rank i of
stage s's mesh is global rank s * dp * mp + i (`mf_parallel.mesh`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mf_parallel.atomic import atomic_write_text
from mf_parallel.config import ParallelConfig
from mf_parallel.errors import (
    LayoutError,
    ParallelConfigError,
    ParallelFileNotFoundError,
    StrategyFileError,
)
from mf_parallel.layout import Layout, optimizer_layout
from mf_parallel.mesh import PARALLEL_AXES, Mesh
from mf_parallel.pipeline import assign_stages, layer_of, parameter_stages
from mf_parallel.plan import ShardingPlan, resolve_plan, stage_mesh

FORMAT = "mf-parallel-strategy"
VERSION = 1


@dataclass(frozen=True)
class ParamStrategy:
    """One parameter: its global shape, its pipeline stage and its layout on that stage."""

    shape: tuple[int, ...]
    stage: int
    spec: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Strategy:
    """A resolved ParallelConfig and every parameter's placement."""

    config: ParallelConfig
    params: Mapping[str, ParamStrategy]

    @classmethod
    def from_plan(
        cls,
        plan: ShardingPlan,
        params: Iterable[tuple[str, Sequence[int]]],
        config: ParallelConfig,
        num_layers: int,
        offset: int | Sequence[int] = 0,
    ) -> Strategy:
        """Resolve `plan` over `params` and place them on stages (MindFormers' `offset`).

        With `vocab_emb_dp` (MindFormers' default) the parameters outside the transformer
        layers (embedding, final norm, LM head) are whole on every model-parallel rank, as
        MindFormers keeps the embedding and head then; the plan's "mp" splits of them apply
        only with `vocab_emb_dp: false`.
        """
        params = [(name, tuple(shape)) for name, shape in params]
        layouts = resolve_plan(plan, params, config)
        layer_stages = assign_stages(num_layers, config.pipeline_stage, offset)
        stages = parameter_stages([name for name, _ in params], layer_stages)

        def spec(name: str, layout: Layout) -> tuple[tuple[str, ...], ...]:
            if config.vocab_emb_dp and layer_of(name) is None:
                return tuple(tuple(a for a in axes if a != "mp") for axes in layout.spec)
            return layout.spec

        return cls(config, {
            name: ParamStrategy(layout.shape, stages[name], spec(name, layout))
            for name, layout in layouts.items()
        })

    @property
    def mesh(self) -> Mesh:
        return Mesh.from_config(self.config)

    @property
    def stage_mesh(self) -> Mesh:
        return stage_mesh(self.config)

    def layout(self, name: str) -> Layout:
        """The parameter's layout over its stage's (dp, mp) mesh."""
        param = self._param(name)
        return Layout(param.shape, param.spec, self.stage_mesh, name)

    def optimizer_layout(self, name: str) -> Layout:
        """The layout of the parameter's optimizer state (split over dp too if optimizer_shard)."""
        layout = self.layout(name)
        return optimizer_layout(layout, "dp") if self.config.optimizer_shard else layout

    def stage_ranks(self, stage: int) -> list[int]:
        """Global ranks of pipeline stage `stage`, in the order of its stage mesh."""
        return self.mesh.submesh(pp=stage)[1]

    def rank_slices(self, rank: int) -> dict[str, tuple[slice, ...]]:
        """The slice of every parameter that global `rank` holds (its stage's parameters only)."""
        coords = self.mesh.coords(rank)
        local = self.stage_mesh.rank(dp=coords["dp"], mp=coords["mp"])
        return {
            name: self.layout(name).slices(local)
            for name, param in self.params.items() if param.stage == coords["pp"]
        }

    def _param(self, name: str) -> ParamStrategy:
        try:
            return self.params[name]
        except KeyError:
            raise LayoutError(f"the strategy has no parameter {name!r}") from None

    def check_params(self, params: Iterable[tuple[str, Sequence[int]]]) -> None:
        """Raise unless `params` (name, shape) are exactly the strategy's parameters."""
        given = {name: tuple(shape) for name, shape in params}
        missing = [name for name in self.params if name not in given]
        extra = [name for name in given if name not in self.params]
        if missing:
            raise LayoutError(
                f"the strategy has parameter {missing[0]!r} that the model lacks"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )
        if extra:
            raise LayoutError(
                f"the model has parameter {extra[0]!r} that the strategy lacks"
                + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
            )
        for name, shape in given.items():
            if shape != self.params[name].shape:
                raise LayoutError(
                    f"{name}: the model's shape {shape} != the strategy's "
                    f"{self.params[name].shape}"
                )

    # -- JSON -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        mesh = self.mesh
        return {
            "format": FORMAT,
            "version": VERSION,
            "mesh": {"axes": list(mesh.axis_names), "sizes": list(mesh.axis_sizes)},
            "parallel_config": self.config.to_dict(),
            "parameters": {
                name: {
                    "shape": list(param.shape),
                    "stage": param.stage,
                    "spec": self.layout(name).spec_json(),
                }
                for name, param in self.params.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "strategy") -> Strategy:
        """Build and fully validate a strategy from its JSON form; `source` names it in errors."""

        def fail(message: str) -> StrategyFileError:
            return StrategyFileError(f"{source}: {message}")

        if not isinstance(data, dict):
            raise fail(f"the top level must be a JSON object, got {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise fail(f"not an mf strategy file: 'format' is {data.get('format')!r}, "
                       f"expected {FORMAT!r}")
        if data.get("version") != VERSION:
            raise fail(f"version {data.get('version')!r} is not supported (this mf-parallel "
                       f"reads version {VERSION})")
        for key in ("mesh", "parallel_config", "parameters"):
            if key not in data:
                raise fail(f"missing key {key!r}")
        raw_config = data["parallel_config"]
        if not isinstance(raw_config, dict):
            raise fail(f"'parallel_config' must be an object, got {raw_config!r}")
        try:
            config = ParallelConfig.from_dict(raw_config)
            config.require_resolved()
        except ParallelConfigError as exc:
            raise fail(f"parallel_config: {exc}") from None
        expected_mesh = {"axes": list(PARALLEL_AXES),
                         "sizes": [config.pipeline_stage, config.data_parallel,
                                   config.model_parallel]}
        if data["mesh"] != expected_mesh:
            raise fail(f"mesh {data['mesh']!r} does not match parallel_config, which gives "
                       f"{expected_mesh!r}")
        raw_params = data["parameters"]
        if not isinstance(raw_params, dict):
            raise fail(f"'parameters' must be an object of name -> layout, got "
                       f"{type(raw_params).__name__}")
        mesh = stage_mesh(config)
        params = {}
        for name, entry in raw_params.items():
            where = f"parameters[{name!r}]"
            if not isinstance(entry, dict):
                raise fail(f"{where} must be an object with shape, stage and spec")
            missing = [k for k in ("shape", "stage", "spec") if k not in entry]
            if missing:
                raise fail(f"{where} is missing {missing[0]!r}")
            shape, stage, spec = entry["shape"], entry["stage"], entry["spec"]
            if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
            ):
                raise fail(f"{where}.shape is {shape!r}, expected a list of integers >= 0")
            if not isinstance(stage, int) or isinstance(stage, bool) or not (
                0 <= stage < config.pipeline_stage
            ):
                raise fail(f"{where}.stage is {stage!r}, expected 0..{config.pipeline_stage - 1} "
                           f"(pipeline_stage is {config.pipeline_stage})")
            if not isinstance(spec, list):
                raise fail(f"{where}.spec is {spec!r}, expected a list with one entry per dim")
            try:
                layout = Layout(tuple(shape), tuple(spec), mesh, name)
            except LayoutError as exc:
                raise fail(str(exc)) from None
            params[name] = ParamStrategy(layout.shape, stage, layout.spec)
        return cls(config, params)


def write_strategy(strategy: Strategy, path: str | os.PathLike) -> Path:
    """Write `strategy` as JSON atomically (temp file, fsync, rename): all or nothing on disk."""
    path = Path(path)
    text = json.dumps(strategy.to_dict(), indent=1) + "\n"
    Strategy.from_dict(json.loads(text), str(path))  # never write what we could not read back
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, text)


def read_strategy(path: str | os.PathLike) -> Strategy:
    """Read and validate a strategy file; any problem is one StrategyFileError line."""
    path = Path(path)
    if not path.is_file():
        raise ParallelFileNotFoundError(f"strategy file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise StrategyFileError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StrategyFileError(
            f"{path}: not valid JSON (truncated or corrupt?): {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}"
        ) from None
    return Strategy.from_dict(data, str(path))
