"""Issue 11: a run is resolved once, and the one Run object reaches the compiled step.

This follows two run-YAML values from `mf train`'s entry (`jobs.run_job`) to where they act:
`parallel_config.micro_batch_num` (with gradient accumulation: the micro batches of the
compiled step) and `lr_schedule.learning_rate` (the learning-rate array inside AdamW's graph),
and checks that plan, build and loop all hold the very same Run and RunConfig objects."""

from __future__ import annotations

import numpy as np
from train_fixtures import pattern_samples, run_yaml, write_mindrecord_samples

import mf_train.build
import mf_train.loop
from mf_train.jobs import run_job


def test_one_run_object_from_the_cli_entry_to_the_compiled_step(tmp_path, monkeypatch):
    data = write_mindrecord_samples(tmp_path / "train.mindrecord", pattern_samples(32))
    config = run_yaml(tmp_path, data, runner="{epochs: 1, batch_size: 2, max_steps: 2, "
                                             "gradient_accumulation_steps: 2}",
                      extra="parallel_config: {micro_batch_num: 2}\n")
    seen: dict[str, object] = {}
    real_build = mf_train.build.build_training

    def build_spy(run, plan, data, slot, world, **kwargs):
        seen.update(run=run, plan=plan, slot_run=slot.run)
        parts = real_build(run, plan, data, slot, world, **kwargs)
        seen["parts"] = parts
        return parts

    real_init = mf_train.loop.TrainingLoop.__init__

    def loop_spy(self, **kwargs):
        real_init(self, **kwargs)
        seen["loop"] = self

    monkeypatch.setattr("mf_train.session.build_training", build_spy)
    monkeypatch.setattr(mf_train.loop.TrainingLoop, "__init__", loop_spy)
    result = run_job(config, ["lr_schedule.learning_rate=0.004"], "train", echo=False)
    assert result.summary.steps == 2

    run, plan, parts, loop = seen["run"], seen["plan"], seen["parts"], seen["loop"]
    # one Run, one RunConfig, from plan to build to loop
    assert plan.run is run and seen["slot_run"] is run
    assert loop.plan is plan and loop.config is run.config
    # micro_batch_num (2) x gradient_accumulation_steps (2) micro batches in the compiled step
    assert run.parallel.micro_batch_num == 2
    assert plan.micro_batches == 4 == parts.train_step.micro_batches
    assert parts.train_step.world_size == run.world_size == 1
    # the learning rate written as an option shapes the array AdamW indexes in its graph
    rates = parts.optimizer.learning_rate.asnumpy()
    np.testing.assert_array_equal(rates, parts.learning_rates)
    assert run.config.lr_schedule.learning_rate == 0.004
    assert plan.schedule.learning_rate == 0.004
    assert np.isclose(rates[1], 0.004 / 2)  # halfway through the 2 warmup steps
