"""mf never deletes or overwrites what it did not create (issue 10, part 1): the output rule
for job directories, exported models, trained tokenizers, MindRecord files and checkpoints.

Every refusal is a config error (exit code 2) raised before anything is touched, and each test
checks that the person's files are still there afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mf_train.errors import TrainConfigError
from mf_train.jobdir import JobDir
from mf_train.outputs import OutputRefusedError, claim_output, made_by_mf, write_marker


def precious(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    thesis = directory / "thesis.txt"
    thesis.write_text("precious\n", encoding="utf-8")
    return thesis


def refused(path, **kwargs) -> str:
    kwargs.setdefault("kind", "job")
    with pytest.raises(OutputRefusedError) as info:
        claim_output(path, what="output_dir", **kwargs)
    assert info.value.exit_code == 2
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_directory_with_a_persons_file_is_never_replaced(tmp_path, overwrite):
    thesis = precious(tmp_path / "victim")
    assert "was not made by mf" in refused(tmp_path / "victim", overwrite=overwrite)
    with pytest.raises(OutputRefusedError):
        JobDir.create(tmp_path / "victim", config_yaml="a: 1\n", overwrite=overwrite)
    assert thesis.read_text() == "precious\n"
    assert sorted(p.name for p in (tmp_path / "victim").iterdir()) == ["thesis.txt"]


@pytest.mark.parametrize("name, reason", [(".", "the working directory"),
                                          ("..", "a parent of the working directory"),
                                          ("~", "your home directory"),
                                          ("/", "a filesystem root")])
def test_the_working_directory_its_parents_home_and_root_are_refused(tmp_path, monkeypatch,
                                                                     name, reason):
    work = tmp_path / "work"
    thesis = precious(work)
    monkeypatch.chdir(work)
    # even an mf job there is not replaced: these paths are never mf's to replace
    write_marker(work, "job")
    (work / "job.yaml").write_text("seed: 1\n")
    assert reason in refused(name, overwrite=True)
    assert thesis.read_text() == "precious\n"


def test_an_empty_output_dir_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for value in ("", "  "):
        assert "is empty" in refused(value, overwrite=True)


def test_a_file_and_a_symlink_are_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    assert "is a file" in refused(tmp_path / "notes.txt", overwrite=True)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert "symbolic link" in refused(tmp_path / "link", overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_new_and_empty_directories_are_used(tmp_path):
    assert claim_output(tmp_path / "new", kind="job", what="output_dir").replaces is False
    (tmp_path / "empty").mkdir()
    job = JobDir.create(tmp_path / "empty", config_yaml="seed: 1\n")
    assert made_by_mf(job.root, "job") and job.note == ""


def test_an_earlier_job_is_replaced_only_when_asked_and_says_so(tmp_path):
    first = JobDir.create(tmp_path / "job", config_yaml="seed: 1\n")
    first.write_status("finished", step=42)
    assert "earlier job" in refused(tmp_path / "job", overwrite=False)
    second = JobDir.create(tmp_path / "job", config_yaml="seed: 2\n", overwrite=True)
    assert second.note.startswith(f"replacing the earlier job in {second.root}")
    assert "last step 42" in second.note
    assert second.job_yaml.read_text() == "seed: 2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job"]  # no trash left behind


def test_a_marker_of_another_kind_or_without_job_yaml_is_not_a_job(tmp_path):
    write_marker(precious(tmp_path / "model").parent, "model")
    assert "was not made by mf as a job" in refused(tmp_path / "model", overwrite=True)
    write_marker(precious(tmp_path / "half").parent, "job")  # marker but no job.yaml
    assert not made_by_mf(tmp_path / "half", "job")
    (tmp_path / "forged").mkdir()
    (tmp_path / "forged" / ".mf-job").write_text("not json")
    (tmp_path / "forged" / "job.yaml").write_text("")
    assert not made_by_mf(tmp_path / "forged", "job")


def test_mindrecord_output_never_overwrites_either_file(tmp_path):
    from mf_train.data import write_mindrecord

    samples = np.arange(12, dtype=np.int32).reshape(3, 4)
    index = tmp_path / "train.mindrecord.db"
    index.write_text("someone's index")
    with pytest.raises(TrainConfigError, match="already exists") as info:
        write_mindrecord(tmp_path / "train.mindrecord", samples)
    assert info.value.exit_code == 2
    assert index.read_text() == "someone's index"
    assert not (tmp_path / "train.mindrecord").exists()


def test_a_checkpoint_folder_mf_did_not_write_is_not_replaced(tmp_path):
    from mf_train.checkpoint import TrainerState, save_checkpoint

    thesis = precious(tmp_path / "checkpoint-3")
    with pytest.raises(TrainConfigError, match="not a checkpoint of mf's"):
        save_checkpoint(tmp_path, {"w": np.ones(2, np.float32)}, {},
                        TrainerState(step=3, epoch=0, data_position={}))
    assert thesis.read_text() == "precious\n"


def test_tokenizer_training_writes_only_a_new_folder(tmp_path):
    from mf_train.model_setup import build_tokenizer

    docs = [f"def f{i}(x):\n    return x + {i}\n" for i in range(300)]
    thesis = precious(tmp_path / "mine")
    section = {"type": "LlamaTokenizer", "vocab_file": str(tmp_path / "mine" / "tokenizer.model"),
               "train_vocab_size": 300}
    with pytest.raises(OutputRefusedError, match="was not made by mf"):
        build_tokenizer(section, docs)
    assert sorted(p.name for p in thesis.parent.iterdir()) == ["thesis.txt"]
    section["vocab_file"] = str(tmp_path / "new" / "tokenizer.model")
    tokenizer, notes = build_tokenizer(section, docs)
    assert tokenizer.vocab_size == 300 and "trained" in notes[0]
    assert made_by_mf(tmp_path / "new", "tokenizer")
    marker = json.loads((tmp_path / "new" / ".mf-output").read_text())
    assert marker["kind"] == "tokenizer"
