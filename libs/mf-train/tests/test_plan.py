"""resolve -> plan: every bad input is one line, exit code 2, before anything is written; the
plan is pure (it writes nothing) and the job it leads to records the run it planned."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from mf_train.checkpoint import TrainerState, save_checkpoint
from mf_train.data import DataPosition
from mf_train.plan import plan_run
from mf_train.resolve import resolve_job, resolve_run
from mf_train.run_data import load_run_data
from mf_train.session import RunSession


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
          model_config: {{type: LlamaConfig, seq_length: 15, vocab_size: 300, hidden_size: 32,
                          num_layers: 1, num_heads: 2, intermediate_size: 64}}
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


def planned(path, *options, **kwargs):
    run = resolve_run(path, options, mode="train")
    return plan_run(run, load_run_data(run, ByteTokenizer()), **kwargs)


def test_a_plan_decides_everything_and_writes_nothing(tmp_path, corpus):
    plan = planned(run_yaml(tmp_path, corpus))
    assert plan.num_samples == 10 * 46 // 16  # samples of seq_length + 1
    assert plan.order.batches_per_epoch == 28 // 4
    assert plan.train_steps == plan.total_steps == 2 * 7
    assert plan.schedule.warmup_steps == 1  # int(14 * 0.1)
    assert plan.memory is not None and plan.memory.ranks_here == 2
    assert any("total_steps = 14" in line for line in plan.summary_lines())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "run.yaml"]
    as_json = json.loads(plan.to_json())
    assert (as_json["train_steps"], as_json["global_batch_size"], as_json["world_size"]) \
        == (14, 4, 2)


def test_the_job_records_the_run_and_a_rank_resolves_the_same_run(tmp_path, corpus):
    run = resolve_run(run_yaml(tmp_path, corpus), mode="train")
    session = RunSession(run, tokenizer=ByteTokenizer())
    plan, _, job = session.prepare(argv=["mf", "train", "run.yaml"])
    text = job.job_yaml.read_text()
    assert "#   global_batch_size = 4  (derived: batch_size(2) * data_parallel(2)" in text
    assert json.loads(job.plan_json.read_text())["train_steps"] == plan.train_steps
    rank = resolve_job(job.root)  # what each msrun rank executes: the job's job.yaml
    assert rank.fingerprint() == run.fingerprint() and rank.to_dict() == run.to_dict()
    assert rank.model_config == run.model_config and rank.parallel == run.parallel
    assert rank.mode == "train"


BAD_INPUT = {
    # case: (corpus directory name, lines replacing the matching top-level keys)
    "missing_path": ("no_such_corpus", {}),
    "too_short": ("corpus", {"runner_config": "runner_config: {epochs: 2, batch_size: 64}"}),
    "unknown_key": ("corpus", {"seed": "sede: 3"}),
    "malformed": ("corpus", {"seed": "seed: [3"}),
    "no_seq_length": ("corpus", {"model_config": "  model_config: {type: LlamaConfig, "
                                                  "seq_length: null}"}),
    "does_not_fit": ("corpus", {"model_config": "  model_config: {type: LlamaConfig}"}),
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
        RunSession(resolve_run(path, mode="train"), tokenizer=ByteTokenizer()).prepare()
    error = info.value
    assert getattr(error, "exit_code", None) == 2, repr(error)
    assert "\n" not in str(error)
    assert not (tmp_path / "out").exists()


def test_a_run_that_cannot_fit_this_machine_is_refused_with_the_numbers(tmp_path, corpus):
    path = run_yaml(tmp_path, corpus, "")
    with pytest.raises(Exception, match=r"needs [\d,.]+ GiB per rank x 2 ranks, this machine "
                                        r"has [\d.]+ GiB available") as info:
        plan_run(resolve_run(path, ["model.model_config.seq_length=100000000"]))
    assert info.value.exit_code == 2


def _resume_setup(tmp_path, corpus):
    path = run_yaml(tmp_path, corpus)
    trajectory = planned(path, new_job=False).trajectory
    assert trajectory["derived.lr_schedule.total_steps"] == 14
    state = TrainerState(step=5, epoch=0, data_position={"epoch": 0, "batch": 5},
                         trajectory=trajectory)
    save_checkpoint(tmp_path / "old" / "checkpoints", {"w": np.zeros(2, np.float32)}, {}, state)
    return path


def test_resume_from_another_config_is_refused_before_anything_is_written(tmp_path, corpus):
    path = _resume_setup(tmp_path, corpus)
    resumed = planned(path, resume_from=tmp_path / "old", new_job=False)
    assert resumed.start == DataPosition(0, 5) and resumed.resume.state.step == 5
    with pytest.raises(Exception, match=r"seed was 3 there, 4 now") as info:
        planned(path, "seed=4", f"output_dir={tmp_path / 'out2'}", resume_from=tmp_path / "old")
    assert info.value.exit_code == 2
    assert not (tmp_path / "out2").exists()


def test_a_resume_may_extend_the_run(tmp_path, corpus):
    """Hugging Face allows a larger max_steps on resume; only the step budget may change."""
    path = _resume_setup(tmp_path, corpus)
    longer = planned(path, "runner_config.max_steps=30", resume_from=tmp_path / "old",
                     new_job=False)
    assert longer.train_steps == 30 and longer.start == DataPosition(0, 5)
    assert any("schedule of 30 steps instead of 14" in note for note in longer.notes)
    with pytest.raises(Exception, match="it is at step 5, past this run's 4 steps"):
        planned(path, "runner_config.max_steps=4", resume_from=tmp_path / "old", new_job=False)
    with pytest.raises(Exception, match="seed was 3 there, 9 now"):
        planned(path, "runner_config.max_steps=30", "seed=9", resume_from=tmp_path / "old",
                new_job=False)
