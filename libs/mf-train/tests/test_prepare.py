"""prepare_run: every bad input of issue 6 is one line, exit code 2, and leaves no output dir."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from mf_train.checkpoint import TrainerState, save_checkpoint
from mf_train.data import DataPosition
from mf_train.prepare import prepare_run
from mf_train.run_yaml import load_run_config


class ByteTokenizer:
    eos_token_id = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))


def run_yaml(tmp_path, corpus, extra=""):
    text = textwrap.dedent(f"""\
        seed: 3
        output_dir: {tmp_path / "out"}
        runner_config: {{epochs: 2, batch_size: 2}}
        parallel_config: {{data_parallel: 2}}
        lr_schedule: {{type: cosine, learning_rate: 1.0e-3, warmup_ratio: 0.1}}
        train_dataset:
          data_loader: {{type: TextFileDataset, dataset_dir: "{corpus}"}}
        model:
          model_config: {{type: LlamaConfig, seq_length: 15}}
        """) + textwrap.dedent(extra)
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def corpus(tmp_path):
    directory = tmp_path / "corpus"
    directory.mkdir()
    for i in range(10):
        (directory / f"{i}.txt").write_text(f"text number {i}. " * 3)  # 45 bytes + eos
    return directory


def test_a_good_run_is_prepared_and_its_job_created(tmp_path, corpus):
    cfg = load_run_config(run_yaml(tmp_path, corpus))
    prepared = prepare_run(cfg, ByteTokenizer(), argv=["mf", "train", "run.yaml"])
    assert len(prepared.train_dataset) == 10 * 46 // 16  # samples of seq_length + 1
    assert prepared.order.batches_per_epoch == 28 // 4
    assert prepared.total_steps == 2 * 7
    assert prepared.schedule.warmup_steps == 1  # int(14 * 0.1)
    job = prepared.job
    assert job.exists() and (tmp_path / "out" / "events").is_dir()
    text = job.job_yaml.read_text()
    assert "#   global_batch_size = 4  (derived: batch_size(2) * data_parallel(2)" in text
    reloaded = load_run_config(job.job_yaml)  # the job's config is a valid run YAML
    assert reloaded.fingerprint() == cfg.fingerprint()
    assert any("total_steps = 14" in line for line in prepared.summary_lines())


BAD_INPUT = {
    # case: (corpus directory name, lines replacing the matching top-level keys)
    "missing_path": ("no_such_corpus", {}),
    "too_short": ("corpus", {"runner_config": "runner_config: {epochs: 2, batch_size: 64}"}),
    "unknown_key": ("corpus", {"seed": "sede: 3"}),
    "malformed": ("corpus", {"seed": "seed: [3"}),
    "no_seq_length": ("corpus", {"model_config": "  model_config: {type: LlamaConfig}"}),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_exit_2_with_no_output_directory(tmp_path, corpus, case):
    corpus_name, replacements = BAD_INPUT[case]
    path = run_yaml(tmp_path, tmp_path / corpus_name)
    lines = path.read_text().splitlines()
    for key, replacement in replacements.items():
        lines = [replacement if line.strip().startswith(key + ":") else line for line in lines]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(Exception) as info:
        prepare_run(load_run_config(path), ByteTokenizer())
    error = info.value
    assert getattr(error, "exit_code", None) == 2, repr(error)
    assert "\n" not in str(error)
    assert not (tmp_path / "out").exists()


def test_resume_from_another_config_is_refused_before_anything_is_written(tmp_path, corpus):
    cfg = load_run_config(run_yaml(tmp_path, corpus))
    # what a trainer records: the config's trajectory keys plus the derived schedule length
    trajectory = prepare_run(cfg, ByteTokenizer(), create_job=False).trajectory
    assert trajectory["derived.lr_schedule.total_steps"] == 14
    state = TrainerState(step=5, epoch=0, data_position={"epoch": 0, "batch": 5},
                         trajectory=trajectory)
    ckpt_dir = tmp_path / "old" / "checkpoints"
    save_checkpoint(ckpt_dir, {"w": np.zeros(2, np.float32)}, {}, state)
    resumed = prepare_run(cfg, ByteTokenizer(), resume_from=tmp_path / "old")
    assert resumed.start == DataPosition(0, 5)
    changed = load_run_config(run_yaml(tmp_path, corpus), ["seed=4",
                                                           f"output_dir={tmp_path / 'out2'}"])
    with pytest.raises(Exception, match=r"seed was 3 there, 4 now") as info:
        prepare_run(changed, ByteTokenizer(), resume_from=tmp_path / "old")
    assert info.value.exit_code == 2
    assert not (tmp_path / "out2").exists()
