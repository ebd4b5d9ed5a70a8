"""Sharding plans: glob patterns over parameter names -> layout specs, resolved to Layouts.

A plan is plain data that a model family writes beside its single-device code:

    {
        "model.tok_embeddings.embedding_weight": (None, None),
        "model.layers.*.attention.wq.weight": ("mp", None),   # column-parallel
        "model.layers.*.attention.wo.weight": (None, "mp"),   # row-parallel
        "model.norm.weight": (None,),
    }

Each spec has one entry per tensor dim: None (whole), "dp" or "mp" (split over that mesh axis)
or a list of both (split over the first, then each part over the second). Patterns use shell
globs (`fnmatch`): `*` matches any run of characters, dots included. The first pattern that
matches a name, in the plan's order, gives its spec. Pipeline stages are not in the plan: a
parameter's stage follows from its layer (see `mf_parallel.pipeline.parameter_stages`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase

from mf_parallel.config import ParallelConfig
from mf_parallel.errors import LayoutError
from mf_parallel.layout import DimSpec, Layout, normalize_dim_spec
from mf_parallel.mesh import Mesh

ShardingPlan = Mapping[str, Sequence[DimSpec]]

# The mesh axes a plan may split a dim over. "pp" places whole tensors, it never splits one.
PLAN_AXES = ("dp", "mp")


def stage_mesh(config: ParallelConfig) -> Mesh:
    """The (dp, mp) mesh of one pipeline stage: the mesh that plans and layouts are over."""
    config.require_resolved()
    return Mesh.of(dp=config.data_parallel, mp=config.model_parallel)


def check_plan(plan: ShardingPlan) -> None:
    """Raise on a malformed plan (before any parameter is looked at)."""
    if not isinstance(plan, Mapping):
        raise LayoutError(f"a sharding plan must be a mapping of pattern -> spec, got {plan!r}")
    for pattern, spec in plan.items():
        if not isinstance(pattern, str) or not pattern:
            raise LayoutError(f"sharding plan pattern {pattern!r} must be a non-empty string")
        if isinstance(spec, str) or not isinstance(spec, Sequence):
            raise LayoutError(
                f"sharding plan entry {pattern!r}: spec {spec!r} must be a tuple with one entry "
                f"per dim, e.g. ('mp', None)"
            )
        for dim_spec in spec:
            try:
                axes = normalize_dim_spec(dim_spec)
            except LayoutError as exc:
                raise LayoutError(f"sharding plan entry {pattern!r}: {exc}") from None
            for axis in axes:
                if axis not in PLAN_AXES:
                    why = (" ('pp' places whole tensors on stages, it does not split a dim)"
                           if axis == "pp" else "")
                    raise LayoutError(
                        f"sharding plan entry {pattern!r}: axis {axis!r} in {tuple(spec)!r} is "
                        f"not one of {list(PLAN_AXES)}{why}"
                    )


def match(plan: ShardingPlan, name: str) -> tuple[str, Sequence[DimSpec]] | None:
    """The first (pattern, spec) of `plan` whose pattern matches `name`, or None."""
    for pattern, spec in plan.items():
        if fnmatchcase(name, pattern):
            return pattern, spec
    return None


def resolve_plan(
    plan: ShardingPlan,
    params: Iterable[tuple[str, Sequence[int]]],
    mesh: Mesh | ParallelConfig,
) -> dict[str, Layout]:
    """Every parameter's Layout, in the order given.

    `params` is (name, global shape) pairs, as a model lists them; `mesh` is a stage mesh or
    the ParallelConfig to take it from. Raises LayoutError for a parameter no pattern covers,
    a spec of the wrong length, or a dim that does not divide.
    """
    check_plan(plan)
    if isinstance(mesh, ParallelConfig):
        mesh = stage_mesh(mesh)
    params = [(name, tuple(shape)) for name, shape in params]
    uncovered = [name for name, _ in params if match(plan, name) is None]
    if uncovered:
        first = dict(params)[uncovered[0]]
        more = f" (and {len(uncovered) - 1} more: {uncovered[1:4]})" if len(uncovered) > 1 else ""
        raise LayoutError(
            f"no pattern in the sharding plan covers parameter {uncovered[0]!r} of shape "
            f"{first}{more}; add a pattern for it, e.g. {uncovered[0]!r}: "
            f"{tuple(None for _ in first)}"
        )
    layouts = {}
    for name, shape in params:
        pattern, spec = match(plan, name)
        if len(spec) != len(shape):
            raise LayoutError(
                f"{name}: shape {shape} has {len(shape)} dim(s), but pattern {pattern!r} gives "
                f"the {len(spec)}-dim spec {tuple(spec)!r}"
            )
        layouts[name] = Layout(shape, tuple(spec), mesh, name)
    return layouts


def unused_patterns(plan: ShardingPlan, names: Iterable[str]) -> list[str]:
    """Patterns that win for no parameter (often a typo in the plan)."""
    winners = {hit[0] for name in names if (hit := match(plan, name)) is not None}
    return [pattern for pattern in plan if pattern not in winners]
