"""The device mesh: rank <-> coordinates and process groups."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mf_parallel import Mesh, MeshCoord, ParallelConfig, ParallelConfigError

# Tests run on shared machines: an example's time is not what these properties check.
no_deadline = settings(deadline=None)

sizes = st.integers(1, 4)


def test_groups_match_megatron_documented_example():
    # Megatron-LM's `initialize_model_parallel` docstring: 16 GPUs, tensor-parallel 2,
    # pipeline 4 (so data-parallel 2) give these groups; our mesh orders ranks the same way.
    mesh = Mesh.from_config(ParallelConfig(data_parallel=2, model_parallel=2, pipeline_stage=4,
                                           micro_batch_num=4))
    assert mesh.groups("mp") == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10, 11], [12, 13],
                                 [14, 15]]
    assert mesh.groups("dp") == [[0, 2], [1, 3], [4, 6], [5, 7], [8, 10], [9, 11], [12, 14],
                                 [13, 15]]
    assert mesh.groups("pp") == [[0, 4, 8, 12], [1, 5, 9, 13], [2, 6, 10, 14], [3, 7, 11, 15]]


def test_stages_are_contiguous_rank_blocks_as_mindspore_numbers_them():
    # MindSpore: stage = rank // (device_num / pipeline_stages).
    config = ParallelConfig(data_parallel=2, model_parallel=3, pipeline_stage=2,
                            micro_batch_num=2)
    mesh = Mesh.from_config(config)
    per_stage = config.device_num // config.pipeline_stage
    for rank in range(mesh.size):
        assert mesh.coord(rank).pp == rank // per_stage


@no_deadline
@given(pp=sizes, dp=sizes, mp=sizes)
def test_rank_and_coordinates_are_a_bijection_with_mp_fastest(pp, dp, mp):
    mesh = Mesh.from_config(ParallelConfig(dp, mp, pp, micro_batch_num=4))
    seen = set()
    for rank in range(mesh.size):
        coord = mesh.coord(rank)
        assert isinstance(coord, MeshCoord)
        assert rank == (coord.pp * dp + coord.dp) * mp + coord.mp  # the documented formula
        assert mesh.rank(coord._asdict()) == rank
        seen.add(coord)
    assert len(seen) == pp * dp * mp


@no_deadline
@given(shape=st.lists(sizes, min_size=1, max_size=4), data=st.data())
def test_groups_of_every_axis_partition_the_ranks(shape, data):
    names = [f"a{i}" for i in range(len(shape))]
    mesh = Mesh(tuple(names), tuple(shape))
    axes = data.draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
    groups = mesh.groups(axes)
    flat = sorted(rank for group in groups for rank in group)
    assert flat == list(range(mesh.size))
    group_size = 1
    for axis in axes:
        group_size *= mesh.shape[axis]
    for group in groups:
        assert len(group) == group_size
        fixed = [n for n in names if n not in axes]
        # Members agree on every other axis.
        assert len({tuple(mesh.coords(r)[n] for n in fixed) for r in group}) == 1
        for rank in group:
            assert mesh.group_of(rank, axes) == group


def test_submesh_is_one_stage():
    mesh = Mesh.from_config(ParallelConfig(2, 2, 2, micro_batch_num=2))
    sub, ranks = mesh.submesh(pp=1)
    assert sub.axis_names == ("dp", "mp")
    assert ranks == [4, 5, 6, 7]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Mesh(("dp", "mp"), (2,)),
         "a mesh needs one size per axis, got axes ['dp', 'mp'] and sizes [2]"),
        (lambda: Mesh(("dp", "dp"), (2, 2)), "mesh axis names repeat: ['dp', 'dp']"),
        (lambda: Mesh.of(dp=0), "mesh axis dp(0) must be an integer >= 1"),
        (lambda: Mesh.of(dp=2, mp=2).coords(4),
         "rank 4 is outside the mesh: ranks are 0..3 (dp(2) * mp(2) = 4)"),
        (lambda: Mesh.of(dp=2).groups("mp"),
         "mesh axis 'mp' does not exist; the mesh has axes ['dp']"),
        (lambda: Mesh.from_config(ParallelConfig(-1, 2, 1)),
         "data_parallel(-1) * model_parallel(2) * pipeline_stage(1) has an unknown degree (-1): "
         "resolve it against a world size first"),
    ],
)
def test_mesh_errors(make, message):
    with pytest.raises(ParallelConfigError) as info:
        make()
    assert str(info.value) == message
