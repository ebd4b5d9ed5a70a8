"""Layouts: slices tile the tensor, split/merge, reshard == split(merge), optimizer sharding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mf_parallel import Layout, LayoutError, Mesh, merge, optimizer_layout, reshard, split
from mf_parallel.layout import reshard_plan

# Tests run on shared machines: an example's time is not what these properties check.
no_deadline = settings(deadline=None)

AXIS_NAMES = ("x", "y", "z")


@st.composite
def meshes(draw, names=AXIS_NAMES):
    count = draw(st.integers(1, len(names)))
    chosen = draw(st.permutations(names))[:count]
    return Mesh(tuple(chosen), tuple(draw(st.integers(1, 3)) for _ in chosen))


@st.composite
def layouts(draw, mesh=None, shape=None):
    """A random valid layout: each mesh axis splits at most one dim; dims are made to divide."""
    mesh = mesh if mesh is not None else draw(meshes())
    ndim = len(shape) if shape is not None else draw(st.integers(0, 3))
    spec: list[list[str]] = [[] for _ in range(ndim)]
    if ndim:
        for axis in draw(st.permutations(mesh.axis_names)):
            where = draw(st.integers(-1, ndim - 1))  # -1: the axis replicates
            if where >= 0:
                spec[where].append(axis)
    if shape is None:
        shape = []
        for axes in spec:
            parts = int(np.prod([mesh.shape[a] for a in axes])) if axes else 1
            shape.append(parts * draw(st.integers(1, 3)))
    return Layout(tuple(shape), tuple(tuple(a) for a in spec), mesh)


def _array(shape):
    return np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)


@no_deadline
@given(layouts())
def test_split_then_merge_is_the_identity(layout):
    array = _array(layout.shape)
    shards = split(array, layout)
    assert len(shards) == layout.mesh.size
    assert all(s.shape == layout.shard_shape for s in shards)
    np.testing.assert_array_equal(merge(shards, layout), array)


@no_deadline
@given(layouts())
def test_slices_tile_the_tensor_with_no_gap_and_no_overlap(layout):
    cover = np.zeros(layout.shape, dtype=np.int64)
    for ranks in layout.holders().values():
        cover[layout.slices(ranks[0])] += 1
    assert (cover == 1).all()
    # Every rank holds exactly one shard, and replicas hold the same region.
    for index, ranks in layout.holders().items():
        assert all(layout.slices(r) == layout.slices(ranks[0]) for r in ranks)
        assert all(layout.shard_index(r) == index for r in ranks)
    assert sum(len(r) for r in layout.holders().values()) == layout.mesh.size
    assert len(layout.holders()) == layout.num_shards


@st.composite
def layout_pairs(draw, same_mesh=False):
    """Two layouts of one tensor, over one random mesh or two independent ones."""
    src_mesh = draw(meshes())
    dst_mesh = src_mesh if same_mesh else draw(meshes())
    ndim = draw(st.integers(0, 3))
    # Choose specs first, then a shape every chosen split divides.
    specs = []
    for mesh in (src_mesh, dst_mesh):
        spec: list[list[str]] = [[] for _ in range(ndim)]
        if ndim:
            for axis in draw(st.permutations(mesh.axis_names)):
                where = draw(st.integers(-1, ndim - 1))
                if where >= 0:
                    spec[where].append(axis)
        specs.append(spec)
    shape = []
    for dim in range(ndim):
        parts = [int(np.prod([m.shape[a] for a in s[dim]])) if s[dim] else 1
                 for m, s in zip((src_mesh, dst_mesh), specs, strict=True)]
        shape.append(int(np.lcm(*parts)) * draw(st.integers(1, 2)))
    src = Layout(tuple(shape), tuple(map(tuple, specs[0])), src_mesh)
    dst = Layout(tuple(shape), tuple(map(tuple, specs[1])), dst_mesh)
    return src, dst


@no_deadline
@given(st.one_of(layout_pairs(same_mesh=True), layout_pairs()))
def test_reshard_equals_split_of_merge(pair):
    src, dst = pair
    shards = split(_array(src.shape), src)
    got = reshard(shards, src, dst)
    expected = split(merge(shards, src), dst)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)


@no_deadline
@given(layout_pairs())
def test_reshard_plan_moves_each_destination_element_exactly_once(pair):
    src, dst = pair
    for rank in range(dst.mesh.size):
        cover = np.zeros(dst.shard_shape, dtype=np.int64)
        offsets = dst.offsets(rank)
        for transfer in reshard_plan(src, dst):
            if transfer.dst_rank != rank:
                continue
            # The piece lies inside what the source rank holds.
            for r, o, s in zip(transfer.region, src.offsets(transfer.src_rank), src.shard_shape,
                               strict=True):
                assert o <= r.start and r.stop <= o + s
            cover[tuple(slice(r.start - o, r.stop - o)
                        for r, o in zip(transfer.region, offsets, strict=True))] += 1
        assert (cover == 1).all()


def test_reshard_copies_locally_when_the_rank_already_holds_the_piece():
    mesh = Mesh.of(dp=2, mp=2)
    src = Layout((4, 4), ("mp", None), mesh)
    dst = Layout((4, 4), (("mp", "dp"), None), mesh)  # a finer cut of the same rows
    assert all(t.src_rank == t.dst_rank for t in reshard_plan(src, dst))


@no_deadline
@given(layouts())
def test_optimizer_layout_cuts_each_shard_further_over_dp(layout):
    mesh = layout.mesh
    axis = mesh.axis_names[0]
    opt = optimizer_layout(layout, axis)
    used = {a for axes in layout.spec for a in axes}
    if layout.ndim and axis not in used and layout.shape[0] % (
            layout.parts(0) * mesh.shape[axis]) == 0:
        assert opt.parts(0) == layout.parts(0) * mesh.shape[axis]
    else:
        assert opt == layout  # MindSpore leaves such a parameter's state replicated
    # Each rank's optimizer slice lies inside its parameter slice.
    for rank in range(mesh.size):
        for o, p in zip(opt.slices(rank), layout.slices(rank), strict=True):
            assert p.start <= o.start and o.stop <= p.stop
    np.testing.assert_array_equal(merge(split(_array(layout.shape), opt), opt),
                                  _array(layout.shape))


def test_a_dim_split_over_two_axes_is_cut_coarsest_first():
    mesh = Mesh.of(dp=2, mp=2)
    layout = Layout((8,), (("mp", "dp"),), mesh)
    # rank = dp * 2 + mp; part = mp * 2 + dp.
    assert [layout.offsets(rank)[0] for rank in range(4)] == [0, 4, 2, 6]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda m: Layout((10, 4), ("mp", None), m, "w"),
         "w: dim 0 of size 10 (shape (10, 4)) is split over mp(4): 10 % 4 = 2"),
        (lambda m: Layout((12, 4), (("mp", "dp"), None), m, "w"),
         "w: dim 0 of size 12 (shape (12, 4)) is split over mp(4) * dp(2) = 8: 12 % 8 = 4"),
        (lambda m: Layout((8,), ("tp",), m, "b"),
         "b: spec ['tp'] names mesh axis 'tp', but the mesh has axes ['dp', 'mp']"),
        (lambda m: Layout((8, 8), ("mp", "mp"), m),
         "spec ['mp', 'mp'] splits over axis 'mp' twice; each mesh axis may split at most one "
         "dim once"),
        (lambda m: Layout((8, 8), ("mp",), m, "w"),
         "w: shape (8, 8) has 2 dim(s), but the spec ['mp'] gives 1"),
        (lambda m: Layout((8,), (3,), m),
         "a dim spec must be None, a mesh axis name or a list of axis names, got 3"),
    ],
)
def test_layout_errors(make, message):
    with pytest.raises(LayoutError) as info:
        make(Mesh.of(dp=2, mp=4))
    assert str(info.value) == message
    assert info.value.exit_code == 2


def test_split_merge_reshard_reject_wrong_input():
    mesh = Mesh.of(dp=2, mp=2)
    layout = Layout((4, 4), ("mp", None), mesh, "w")
    with pytest.raises(LayoutError, match=r"^w: array of shape \(4, 5\) does not match the "
                                          r"layout's shape \(4, 4\)$"):
        split(np.zeros((4, 5)), layout)
    shards = split(np.zeros((4, 4)), layout)
    with pytest.raises(LayoutError, match=r"^w: got 3 shards, but the mesh"):
        merge(shards[:3], layout)
    shards[2] = np.zeros((1, 4))
    with pytest.raises(LayoutError, match=r"^w: the shard of rank 2 has shape \(1, 4\), but the "
                                          r"layout gives every rank \(2, 4\)$"):
        merge(shards, layout)
    with pytest.raises(LayoutError, match=r"source shape \(4, 4\) != destination shape \(4,\)"):
        reshard_plan(layout, Layout((4,), (None,), mesh))
