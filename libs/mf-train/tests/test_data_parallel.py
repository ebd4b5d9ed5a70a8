"""Data parallel on CPU: `run_job` with data_parallel 2 launches two ranks under msrun, which
average gradients with AllReduce; the losses equal one process with the same global batch
(~40 s: the msrun job and the single-process reference run side by side)."""

from __future__ import annotations

import pytest
from train_fixtures import (
    pattern_samples,
    run_yaml,
    start_job,
    step_losses,
    write_mindrecord_samples,
)

from mf_train.jobdir import JobDir, read_events

STEPS = 8


@pytest.mark.msrun
@pytest.mark.timeout(400)
def test_two_ranks_under_msrun_match_one_process_with_the_same_global_batch(tmp_path):
    data = write_mindrecord_samples(tmp_path / "train.mindrecord", pattern_samples(64))
    # evaluation too: each rank scores its share of the eval samples, the sums are all-reduced
    evaluation = (f"do_eval: true\neval_step_interval: 4\neval_dataset:\n  data_loader: "
                  f"{{type: MindDataset, dataset_dir: \"{data}\", num_samples: 7}}\n")
    dp = run_yaml(tmp_path, data, output=tmp_path / "dp", name="dp.yaml",
                  runner=f"{{epochs: 1, batch_size: 2, max_steps: {STEPS}}}",
                  extra="parallel_config: {data_parallel: 2}\n" + evaluation)
    single = run_yaml(tmp_path, data, output=tmp_path / "single", name="single.yaml",
                      runner=f"{{epochs: 1, batch_size: 4, max_steps: {STEPS}}}",
                      extra=evaluation)
    ranks = start_job(dp, [], tmp_path / "dp.log")
    one = start_job(single, [], tmp_path / "single.log")
    assert one.wait(timeout=300) == 0, (tmp_path / "single.log").read_text()[-3000:]
    assert ranks.wait(timeout=300) == 0, (tmp_path / "dp.log").read_text()[-3000:]

    job = JobDir(tmp_path / "dp")
    expected = step_losses(JobDir(tmp_path / "single").events_file(0))
    assert sorted(expected) == list(range(1, STEPS + 1))
    for rank in (0, 1):
        got = step_losses(job.events_file(rank))
        assert sorted(got) == sorted(expected)
        for step, loss in expected.items():
            assert got[step] == pytest.approx(loss, abs=1e-5), (rank, step)
    def evals(path):
        return [(e["step"], e["loss"]) for e in read_events(path).events if e["kind"] == "eval"]

    reference = evals(JobDir(tmp_path / "single").events_file(0))
    assert [s for s, _ in reference] == [0, 4, 8]
    for rank in (0, 1):  # 7 samples: shares of 4 and 3, padded to the eval batch
        got = evals(job.events_file(rank))
        assert [s for s, _ in got] == [0, 4, 8]
        for (_, loss), (_, expected_loss) in zip(got, reference, strict=True):
            assert loss == pytest.approx(expected_loss, abs=1e-5)
    # the job directory of a launched run: one status, each rank's log and events, msrun's logs
    assert job.read_status()["state"] == "finished"
    assert job.worker_log(0).is_file() and job.worker_log(1).is_file()
    assert any((job.logs / "msrun").glob("worker_*.log"))
    start = next(e for e in read_events(job.events_file(1)).events if e["kind"] == "start")
    assert "world 2" in start["message"]
    assert (job.checkpoints / f"checkpoint-{STEPS}").is_dir()  # saved once, by rank 0
