"""Counts past any sane size are refused in one line before anything is computed from them
(issue 10 part 2), process groups stay cheap at the largest allowed mesh, and the one atomic
writer keeps its promises (issue 11)."""

from __future__ import annotations

import itertools
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mf_parallel import Mesh, ModelDims, ParallelConfig, ParallelConfigError, estimate_memory
from mf_parallel.atomic import atomic_directory, atomic_file, atomic_write_text
from mf_parallel.config import LIMITS, MAX_DEVICES

DIMS = dict(num_layers=4, hidden_size=64, num_heads=4, n_kv_heads=2, ffn_hidden_size=128,
            vocab_size=1000, seq_length=32)


def one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message and err.value.exit_code == 2
    return message


@pytest.mark.parametrize("field", list(DIMS))
def test_every_model_dimension_is_bounded(field):
    with pytest.raises(ParallelConfigError) as err:
        ModelDims(**{**DIMS, field: LIMITS[field] + 1})
    assert one_line(err) == (f"{field}({LIMITS[field] + 1}) is more than mf plans for: "
                             f"at most {LIMITS[field]:,} (a typo?)")
    if field not in ("num_heads", "n_kv_heads"):  # (those must also divide the others)
        assert getattr(ModelDims(**{**DIMS, field: LIMITS[field]}), field) == LIMITS[field]


@pytest.mark.parametrize("field", ["data_parallel", "model_parallel", "pipeline_stage",
                                   "micro_batch_num", "expert_parallel"])
def test_every_degree_and_count_is_bounded(field):
    with pytest.raises(ParallelConfigError) as err:
        ParallelConfig(**{field: 10**12})
    assert f"{field}(1000000000000) is more than mf plans for" in one_line(err)


def test_a_world_size_of_a_trillion_is_one_line():
    for config in (ParallelConfig(), ParallelConfig(data_parallel=-1)):
        with pytest.raises(ParallelConfigError) as err:
            config.resolve(10**12)
        assert one_line(err).startswith("world_size(1000000000000) is more than mf plans for")


def test_degrees_whose_product_is_too_large_are_refused():
    with pytest.raises(ParallelConfigError) as err:
        ParallelConfig(data_parallel=1024, model_parallel=1024, pipeline_stage=2)
    assert "= 2,097,152 devices is more than mf plans for" in one_line(err)
    with pytest.raises(ParallelConfigError) as err:
        Mesh.of(dp=4096, mp=4096)
    assert "16,777,216 ranks is more than mf plans for" in one_line(err)


def test_batch_and_sequence_are_bounded_in_the_estimate():
    dims = ModelDims(**DIMS)
    config = ParallelConfig()
    for kwargs, name in (({"batch_size": 2**40}, "batch_size"),
                         ({"seq_length": 2**40}, "seq_length")):
        with pytest.raises(ParallelConfigError) as err:
            estimate_memory(dims, config, **kwargs)
        assert one_line(err).startswith(f"{name}({2**40}) is more than mf plans for")
    with pytest.raises(ParallelConfigError) as err:
        config.global_batch_size(2**40)
    assert "batch_size(1099511627776) is more than" in one_line(err)


def _groups_by_definition(mesh: Mesh, axes: tuple[str, ...]) -> list[list[int]]:
    """Ranks that differ only in `axes`, by brute force over every pair of ranks."""
    fixed = [a for a in mesh.axis_names if a not in axes]
    by_key: dict[tuple, list[int]] = {}
    for rank in range(mesh.size):
        coords = mesh.coords(rank)
        by_key.setdefault(tuple(coords[a] for a in fixed), []).append(rank)
    return sorted(sorted(g) for g in by_key.values())


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data())
def test_group_array_matches_the_definition(sizes, data):
    names = ("pp", "dp", "mp")[: len(sizes)]
    mesh = Mesh(names, tuple(sizes))
    axes = data.draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
    assert mesh.groups(axes) == _groups_by_definition(mesh, tuple(axes))
    for group, other in itertools.combinations(mesh.groups(axes), 2):
        assert not set(group) & set(other)


def test_groups_of_the_largest_mesh_are_cheap():
    mesh = Mesh.from_config(ParallelConfig(data_parallel=-1).resolve(MAX_DEVICES))
    dp = mesh.group_array("dp")
    mp = mesh.group_array("mp")
    assert dp.shape == (1, MAX_DEVICES) and mp.shape == (MAX_DEVICES, 1)
    assert dp[0, -1] == MAX_DEVICES - 1 and mp[-1, 0] == MAX_DEVICES - 1


# ---- the atomic writer --------------------------------------------------------------------

@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
        with atomic_file(tmp_path / "b.bin") as tmp:
            tmp.write_bytes(b"x")
            os.chmod(tmp, 0o600)  # as safetensors and MindSpore create theirs
        with atomic_directory(tmp_path / "d") as tmp:
            (tmp / "c.bin").write_bytes(b"y")
            os.chmod(tmp / "c.bin", 0o600)
    finally:
        os.umask(old)
    for path in (tmp_path / "a.json", tmp_path / "b.bin", tmp_path / "d" / "c.bin"):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "strategy.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["strategy.json"]
