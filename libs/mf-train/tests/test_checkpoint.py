"""Checkpoints: round trip, atomicity under SIGKILL, rotation, resume checks, no pickle."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from mf_train.atomic import atomic_directory, atomic_write_text
from mf_train.checkpoint import (
    TrainerState,
    check_resume,
    get_last_checkpoint,
    list_checkpoints,
    load_checkpoint,
    model_signature,
    save_checkpoint,
)
from mf_train.errors import CheckpointMismatchError, CheckpointNotFoundError


def _weights(seed=0, width=8):
    rng = np.random.default_rng(seed)
    return {"embed.weight": rng.normal(size=(16, width)).astype(np.float32),
            "layers.0.attention.wq.weight": rng.normal(size=(width, width)).astype(np.float32),
            "norm.weight": np.ones(width, dtype=np.float32)}


def _state(step, **kw):
    return TrainerState(step=step, epoch=0, data_position={"epoch": 0, "batch": step, "seed": 3},
                        rng={"numpy": np.random.default_rng(5).bit_generator.state}, **kw)


def test_round_trip_is_exact(tmp_path):
    weights = _weights()
    optimizer = {"adam_m.norm.weight": np.full(8, 0.5, np.float32),
                 "global_step": np.array([7], np.int32)}
    path = save_checkpoint(tmp_path, weights, optimizer, _state(7, metrics={"loss": 2.5}))
    assert path.name == "checkpoint-7"
    loaded = load_checkpoint(tmp_path)
    assert loaded.path == path
    for name, value in weights.items():
        np.testing.assert_array_equal(loaded.weights[name], value)
        assert loaded.weights[name].dtype == value.dtype
    np.testing.assert_array_equal(loaded.optimizer["global_step"], [7])
    assert loaded.state.step == 7 and loaded.state.data_position["batch"] == 7
    assert loaded.state.metrics == {"loss": 2.5}
    assert loaded.state.model_signature == model_signature(weights)
    # the RNG state survives JSON and restores the same stream
    restored = np.random.default_rng()
    restored.bit_generator.state = loaded.state.rng["numpy"]
    assert restored.random() == np.random.default_rng(5).random()


def test_rotation_keeps_the_newest(tmp_path):
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path, _weights(), {}, _state(step), save_total_limit=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-30", "checkpoint-40"]
    assert get_last_checkpoint(tmp_path).name == "checkpoint-40"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-30", "checkpoint-40"]


def test_steps_sort_numerically_and_temporaries_are_skipped(tmp_path):
    for step in (9, 100, 20):
        save_checkpoint(tmp_path, _weights(), {}, _state(step))
    (tmp_path / ".checkpoint-200.tmp-1-abc").mkdir()
    (tmp_path / "checkpoint-300").mkdir()  # no trainer_state.json: incomplete
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "checkpoint-9", "checkpoint-20", "checkpoint-100"]


def test_a_failed_save_leaves_nothing(tmp_path):
    weights = _weights()
    weights["bad"] = object()  # safetensors cannot write this
    with pytest.raises(Exception):  # noqa: B017 - whatever safetensors raises
        save_checkpoint(tmp_path, weights, {}, _state(5))
    assert list(tmp_path.iterdir()) == []


def test_resaving_a_step_replaces_it_whole(tmp_path):
    save_checkpoint(tmp_path, _weights(seed=1), {}, _state(5))
    save_checkpoint(tmp_path, _weights(seed=2), {}, _state(5))
    loaded = load_checkpoint(tmp_path / "checkpoint-5")
    np.testing.assert_array_equal(loaded.weights["embed.weight"], _weights(seed=2)["embed.weight"])
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-5"]


def test_resume_into_another_model_names_the_parameter(tmp_path):
    save_checkpoint(tmp_path, _weights(width=8), {}, _state(1))
    state = load_checkpoint(tmp_path).state
    with pytest.raises(CheckpointMismatchError, match=r"'embed.weight' has shape \(16, 8\) there, "
                                                      r"\(16, 4\) in this model") as info:
        check_resume(state, signature=model_signature(_weights(width=4)))
    assert info.value.exit_code == 2
    other = dict(_weights())
    other["lm_head.weight"] = np.zeros((16, 8), np.float32)
    with pytest.raises(CheckpointMismatchError, match="'lm_head.weight' is in the model but not"):
        check_resume(state, signature=model_signature(other))
    check_resume(state, signature=model_signature(_weights()))  # same model: fine


def test_resume_into_a_changed_config_names_the_key(tmp_path):
    trajectory = {"runner_config.batch_size": 8, "seed": 0}
    save_checkpoint(tmp_path, _weights(), {}, _state(1, trajectory=trajectory,
                                                    config_fingerprint="abc"))
    state = load_checkpoint(tmp_path).state
    with pytest.raises(CheckpointMismatchError,
                       match=r"runner_config.batch_size was 8 there, 4 now") as info:
        check_resume(state, trajectory={"runner_config.batch_size": 4, "seed": 0})
    assert "\n" not in str(info.value)
    check_resume(state, trajectory=dict(trajectory))
    with pytest.raises(CheckpointMismatchError, match="fingerprint abc there"):
        check_resume(state, config_fingerprint="def")


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "state.pkl"])
def test_pickle_files_are_refused(tmp_path, name):
    (tmp_path / name).write_bytes(b"\x80\x04K\x01.")
    from mf_models.errors import UnsafeFileError  # mf-models' one pickle guard

    with pytest.raises(UnsafeFileError, match=r"refusing to load .*: a pickle file") as info:
        load_checkpoint(tmp_path / name)
    assert info.value.exit_code == 2


def test_missing_and_empty_paths(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="does not exist") as info:
        load_checkpoint(tmp_path / "nope")
    assert isinstance(info.value, FileNotFoundError) and info.value.exit_code == 2
    with pytest.raises(CheckpointNotFoundError, match="holds no complete checkpoint"):
        load_checkpoint(tmp_path)


def test_a_garbled_state_file_is_one_line(tmp_path):
    path = save_checkpoint(tmp_path, _weights(), {}, _state(3))
    (path / "trainer_state.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CheckpointMismatchError, match="not valid JSON"):
        load_checkpoint(path)


def test_atomic_helpers_replace_whole(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    with pytest.raises(RuntimeError), atomic_directory(tmp_path / "d") as tmp:
        (tmp / "x").write_text("partial")
        raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


WRITER = textwrap.dedent("""
    import sys, numpy as np
    from mf_train.checkpoint import TrainerState, save_checkpoint
    directory = sys.argv[1]
    rng = np.random.default_rng(0)
    step = 0
    while True:
        step += 1
        value = np.full((256, 256), step, dtype=np.float32)  # 256 KiB per tensor
        weights = {f"w{i}": value for i in range(4)}
        state = TrainerState(step=step, epoch=0, data_position={"batch": step})
        save_checkpoint(directory, weights, {"m": value}, state, save_total_limit=2)
        print(step, flush=True)
""")


def test_sigkill_at_any_instant_leaves_the_last_checkpoint_loadable(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    ckpts = tmp_path / "ckpts"
    rng = np.random.default_rng(0)
    for attempt in range(4):
        proc = subprocess.Popen([sys.executable, str(script), str(ckpts)],
                                stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()  # at least one checkpoint exists
        time.sleep(float(rng.uniform(0.0, 0.3)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        last = load_checkpoint(ckpts)  # must not raise
        step = last.state.step
        for name, value in last.weights.items():
            assert np.all(value == step), (attempt, name)
        assert len(list_checkpoints(ckpts)) <= 3  # rotation may be cut short, never worse


def test_host_rng_state_survives_a_checkpoint(tmp_path):
    import random

    from mf_train.checkpoint import capture_rng, restore_rng

    random.seed(1)
    np.random.seed(2)
    random.random(), np.random.rand(3)  # move both streams somewhere
    state = _state(1)
    state.rng = capture_rng()
    expected = (random.random(), np.random.rand(4).tolist())
    save_checkpoint(tmp_path, _weights(), {}, state)
    random.seed(99)
    np.random.seed(99)
    restore_rng(load_checkpoint(tmp_path).state.rng)
    assert (random.random(), np.random.rand(4).tolist()) == expected
