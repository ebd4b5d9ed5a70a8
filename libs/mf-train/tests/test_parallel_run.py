"""Issue 12 through the run path: `mf train` (run_job) with model or pipeline parallel starts
the ranks under mf's launcher, trains to one process's losses and evaluations, saves sharded
checkpoints with the job's strategy, and a single process resumes them (auto_trans_ckpt)."""

from __future__ import annotations

import pytest
from train_fixtures import pattern_samples, run_yaml, write_mindrecord_samples

from mf_train.errors import TrainConfigError
from mf_train.jobdir import JobDir, read_events
from mf_train.jobs import run_job
from mf_train.resolve import resolve_run

STEPS = 4
TWO_LAYERS = ["model.model_config.num_layers=2"]  # a pipeline of 2 stages needs 2 layers


def losses(job: JobDir, rank: int = 0, kind: str = "step") -> dict[int, float]:
    return {e["step"]: e["loss"] for e in read_events(job.events_file(rank)).events
            if e["kind"] == kind}


def layout_yaml(tmp_path, data, name, parallel, runner="{epochs: 1, batch_size: 2, "
                f"max_steps: {STEPS}}}", extra=""):
    evaluation = ("do_eval: true\neval_step_interval: 2\neval_dataset:\n  data_loader: "
                  f"{{type: MindDataset, dataset_dir: \"{data}\", num_samples: 6}}\n")
    return run_yaml(tmp_path, data, output=tmp_path / name, name=f"{name}.yaml", runner=runner,
                    extra=f"parallel_config: {parallel}\n" + evaluation + extra)


@pytest.mark.msrun
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_model_and_pipeline_parallel_runs_match_one_process(tmp_path):
    data = write_mindrecord_samples(tmp_path / "train.mindrecord", pattern_samples(48))
    one = layout_yaml(tmp_path, data, "one", "{micro_batch_num: 2}")
    run_job(one, TWO_LAYERS, "train", echo=False)
    reference = JobDir(tmp_path / "one")
    for name, parallel in (("mp2", "{model_parallel: 2, micro_batch_num: 2}"),
                           ("pp2", "{pipeline_stage: 2, micro_batch_num: 2}")):
        config = layout_yaml(tmp_path, data, name, parallel)
        result = run_job(config, TWO_LAYERS, "train", echo=False)
        job = JobDir(result.job)
        for rank in (0, 1):
            got = losses(job, rank)
            assert sorted(got) == list(range(1, STEPS + 1)), (name, rank)
            for step, loss in losses(reference).items():
                assert got[step] == pytest.approx(loss, abs=1e-5), (name, rank, step)
        for step, loss in losses(reference, kind="eval").items():  # perplexity while training
            assert losses(job, kind="eval")[step] == pytest.approx(loss, abs=1e-5), name
        checkpoint = job.checkpoints / f"checkpoint-{STEPS}"
        assert (checkpoint / "rank_0").is_dir() and (checkpoint / "rank_1").is_dir()
        assert (checkpoint / "strategy.json").is_file() and (job.strategy / "strategy.json")
        status = job.read_status()
        assert [status["ranks"][r]["state"] for r in ("0", "1")] == ["finished", "finished"]

    # a single process continues the mp2 run from its sharded checkpoint, as the reference
    # continues its own: the same losses
    longer = [*TWO_LAYERS, "runner_config.max_steps=6", "resume_training=true"]
    run_job(layout_yaml(tmp_path, data, "one", "{micro_batch_num: 2}"), longer, "train",
            echo=False)
    with pytest.raises(Exception, match="set auto_trans_ckpt: true"):
        run_job(layout_yaml(tmp_path, data, "mp2", "{micro_batch_num: 2}"), longer, "train",
                echo=False)
    run_job(layout_yaml(tmp_path, data, "mp2", "{micro_batch_num: 2}"),
            [*longer, "auto_trans_ckpt=true"], "train", echo=False)
    resumed = losses(JobDir(tmp_path / "mp2"))
    for step in (5, 6):
        assert resumed[step] == pytest.approx(losses(reference)[step], abs=1e-5)


def test_what_a_split_model_cannot_do_is_refused_before_any_rank_starts(tmp_path):
    data = tmp_path / "train.mindrecord"  # never read: every case fails while resolving
    path = layout_yaml(tmp_path, data, "run", "{model_parallel: 2}")
    cases = {
        "LoRA": (["model.model_config.pet_config={pet_type: lora}"],
                 "LoRA .* trains data parallel only"),
        "interleave": (["parallel_config.model_parallel=1", "micro_batch_interleave_num=3"],
                       r"batch_size\(2\) is not divisible by micro_batch_interleave_num\(3\)"),
        "bloom": (["model.model_config={type: BloomConfig, num_layers: 2, num_heads: 2, "
                   "hidden_size: 32, seq_length: 32, vocab_size: 128}"],
                  "bloom runs data parallel only"),
    }
    for name, (options, message) in cases.items():
        with pytest.raises(TrainConfigError, match=message) as info:
            resolve_run(path, options, mode="train")
        assert info.value.exit_code == 2, name
    assert not (tmp_path / "run").exists()
