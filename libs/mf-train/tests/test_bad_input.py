"""mf-train's bad inputs (issue 10 parts 2, 4-6; issue 11): every weights path reads through
mf-models' one reader, YAML through the one bounded loader, skipped text is reported, and what
mf-train writes keeps the user's mode, whole or not at all."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from mf_models import (
    AutoModelForCausalLM,
    CorruptWeightsError,
    NonFiniteWeightsError,
    UnsafeFileError,
    WeightsNotFoundError,
)
from train_fixtures import ByteTokenizer

from mf_train.checkpoint import (
    OPTIMIZER_FILE,
    STATE_FILE,
    WEIGHTS_FILE,
    TrainerState,
    load_checkpoint,
    save_checkpoint,
)
from mf_train.data import TokenDataset, prepare_mindrecord, write_mindrecord
from mf_train.errors import CheckpointMismatchError, DatasetTooShortError, TrainConfigError
from mf_train.model_setup import read_start_weights
from mf_train.run_yaml import load_run_config


def one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message and err.value.exit_code == 2, message
    return message


@pytest.fixture(scope="module")
def model():
    return AutoModelForCausalLM.from_config("llama_debug")


def _checkpoint(root, model, step=3):
    weights = model.state_dict()
    optimizer = {f"adam_m.{name}": np.zeros_like(a) for name, a in weights.items()}
    return save_checkpoint(root, weights, optimizer, TrainerState(step=step, epoch=0,
                                                                  data_position={}))


# ---- weights: one reader ---------------------------------------------------------------------

def test_start_weights_and_resume_share_the_reader_s_errors(model, tmp_path):
    ckpt = _checkpoint(tmp_path / "job" / "checkpoints", model)
    weights = ckpt / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:100])
    for load in (lambda: read_start_weights(ckpt, model),
                 lambda: read_start_weights(tmp_path / "job", model),  # a job directory
                 lambda: load_checkpoint(ckpt)):
        with pytest.raises(CorruptWeightsError) as err:
            load()
        assert one_line(err).startswith(f"{weights} is truncated or corrupt")


def test_a_truncated_optimizer_state_is_named_on_resume(model, tmp_path):
    ckpt = _checkpoint(tmp_path, model)
    optimizer = ckpt / OPTIMIZER_FILE
    optimizer.write_bytes(optimizer.read_bytes()[:-10])
    with pytest.raises(CorruptWeightsError) as err:
        load_checkpoint(ckpt)
    assert one_line(err).startswith(f"{optimizer} is truncated or corrupt")


def test_nan_start_weights_are_refused_naming_the_tensor(model, tmp_path):
    from safetensors.numpy import save_file

    ckpt = _checkpoint(tmp_path, model)
    weights = model.state_dict()
    name = sorted(weights)[0]
    weights[name].reshape(-1)[:2] = np.nan
    save_file(weights, str(ckpt / WEIGHTS_FILE))
    for load in (lambda: read_start_weights(ckpt, model), lambda: load_checkpoint(ckpt)):
        with pytest.raises(NonFiniteWeightsError) as err:
            load()
        assert f"tensor {name} holds 2 NaN or inf value(s)" in one_line(err)


def test_a_missing_weights_file_names_it_and_the_pickle_beside_it(model, tmp_path):
    ckpt = _checkpoint(tmp_path, model)
    (ckpt / WEIGHTS_FILE).unlink()
    (ckpt / "pytorch_model.bin").write_bytes(b"\x80\x04 never unpickled")
    for load in (lambda: read_start_weights(ckpt, model), lambda: load_checkpoint(ckpt)):
        with pytest.raises(WeightsNotFoundError) as err:
            load()
        assert one_line(err) == (f"weight file {ckpt / WEIGHTS_FILE} does not exist (beside it: "
                                 "pytorch_model.bin, a pickle file, which mf never loads)")


@pytest.mark.parametrize("name", ["pytorch_model.bin", "adapter_model.PT", "w.pickle"])
def test_pickles_are_refused_by_the_one_guard(model, tmp_path, name):
    (tmp_path / name).write_bytes(b"\x80\x04 never unpickled")
    for load in (lambda: read_start_weights(tmp_path / name, model),
                 lambda: load_checkpoint(tmp_path / name)):
        with pytest.raises(UnsafeFileError) as err:
            load()
        assert one_line(err).startswith(f"refusing to load {tmp_path / name}: a pickle file")


def test_a_trainer_state_that_is_not_utf8_is_one_line(model, tmp_path):
    ckpt = _checkpoint(tmp_path, model)
    (ckpt / STATE_FILE).write_bytes(b'{"step": \xff}')
    with pytest.raises(CheckpointMismatchError) as err:
        load_checkpoint(ckpt)
    assert one_line(err) == f"{ckpt / STATE_FILE}: not UTF-8 text (corrupt?)"


# ---- writing: whole, the user's mode, disk errors as OSError ----------------------------------

def test_checkpoint_files_follow_the_umask(model, tmp_path):
    old = os.umask(0o027)
    try:
        ckpt = _checkpoint(tmp_path, model)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in ckpt.iterdir()}
    assert modes == {WEIGHTS_FILE: 0o640, OPTIMIZER_FILE: 0o640, STATE_FILE: 0o640}


def test_a_full_disk_is_an_os_error_and_the_last_checkpoint_survives(model, tmp_path,
                                                                      monkeypatch):
    import safetensors.numpy
    from safetensors import SafetensorError

    first = _checkpoint(tmp_path, model, step=1)

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device "
                              "(os error 28)")

    monkeypatch.setattr(safetensors.numpy, "save_file", full)
    with pytest.raises(OSError) as err:
        _checkpoint(tmp_path, model, step=2)
    assert err.value.errno == 28 and WEIGHTS_FILE in err.value.filename
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-1"]
    assert load_checkpoint(tmp_path).path == first


def test_mindrecord_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_mindrecord(tmp_path / "d.mindrecord", np.arange(12).reshape(3, 4))
    finally:
        os.umask(old)
    for item in (path, path.with_name(path.name + ".db")):
        assert stat.S_IMODE(item.stat().st_mode) == 0o644, item


# ---- text that is not UTF-8 ------------------------------------------------------------------

def test_skipped_files_are_counted_named_and_explained(tmp_path):
    (tmp_path / "a.txt").write_text("aaaa " * 20)
    (tmp_path / "b.txt").write_bytes(b"abc\xff\xfe")
    (tmp_path / "c.txt").write_bytes(b"\xc3")
    dataset = TokenDataset.from_text(tmp_path, ByteTokenizer(), seq_length=8)
    assert len(dataset) > 0
    assert dataset.notes == [f"skipped 2 file(s), e.g. {tmp_path / 'b.txt'}: not UTF-8 "
                             "(byte 0xff at offset 3)"]


def test_when_every_file_is_skipped_the_error_says_so(tmp_path):
    (tmp_path / "only.txt").write_bytes(b"abc\xff\xfe")
    with pytest.raises(DatasetTooShortError) as err:
        prepare_mindrecord(tmp_path, tmp_path / "out.mindrecord", ByteTokenizer(), 8)
    assert one_line(err) == (f"dataset {tmp_path} has no text left to read: skipped 1 file(s), "
                             f"e.g. {tmp_path / 'only.txt'}: not UTF-8 (byte 0xff at offset 3)")
    assert not (tmp_path / "out.mindrecord").exists()


def test_too_little_text_after_skipping_names_both_reasons(tmp_path):
    (tmp_path / "a.txt").write_text("hi")
    (tmp_path / "b.txt").write_bytes(b"\xff")
    with pytest.raises(DatasetTooShortError) as err:
        prepare_mindrecord(tmp_path, tmp_path / "out.mindrecord", ByteTokenizer(), 8)
    message = one_line(err)
    assert "yields no sample of seq_length(8) + 1 = 9 tokens (skipped 1 file(s)" in message
    assert message.endswith("add text or lower seq_length")


def test_a_jsonl_line_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"text": "fine"}\n{"text": "\xff"}\n')
    with pytest.raises(TrainConfigError) as err:
        TokenDataset.from_jsonl(path, ByteTokenizer(), 2)
    assert one_line(err) == f"{path}:2: not UTF-8 (byte 0xff at offset 10)"


# ---- the run YAML ----------------------------------------------------------------------------

def test_a_billion_laughs_run_yaml_is_refused_in_one_line(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = tmp_path / "run.yaml"
    path.write_text("seed: 1\n" + "\n".join(lines) + "\n")
    with pytest.raises(Exception) as err:
        load_run_config(path)
    assert one_line(err).startswith(f"{path}: YAML aliases would expand this document")


def test_a_billion_laughs_option_is_refused_before_it_expands(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("seed: 1\n")
    levels = ["&a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    levels += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    with pytest.raises(TrainConfigError) as err:
        load_run_config(path, [f"runner_config.sink_size=[{', '.join(levels)}]"])
    assert err.value.exit_code == 2
    assert one_line(err).startswith("--options runner_config.sink_size: YAML aliases would "
                                    "expand this document")


def test_the_train_step_loss_is_the_model_s():
    from mf_models.models import base

    from mf_train import train_step

    assert train_step.token_nll is base.token_nll
