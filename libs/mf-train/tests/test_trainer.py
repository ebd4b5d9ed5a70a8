"""Trainer, as MindFormers' README drives it: TrainingArguments, a preset name, a generator and a
batched mindspore.dataset; what the run leaves in its job directory; and every bad input as one
line with exit code 2 and no output directory."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from train_fixtures import TINY_LLAMA, pattern_samples

from mf_train import TrainingArguments, load_run_config, metrics
from mf_train.checkpoint import TrainerState, list_checkpoints, save_checkpoint
from mf_train.jobdir import EVENT_KEYS, JobDir, read_events
from mf_train.steplog import parse_step_line
from mf_train.trainer import Trainer

ms = pytest.importorskip("mindspore")

# Tokens 3..19 only: a 1024-word model learns their frequencies in a few steps.
TRAIN = pattern_samples(64, seed=1, vocab=20)
EVAL = pattern_samples(10, seed=2, vocab=20)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import mindspore.dataset as ds

    out = tmp_path_factory.mktemp("trainer") / "out"

    def generator():  # MindFormers' README: a generator of 1-D token rows
        yield from TRAIN

    eval_set = ds.GeneratorDataset(lambda: iter(EVAL), column_names=["input_ids"],
                                   shuffle=False).batch(4)  # batched, as in the README
    args = TrainingArguments(output_dir=str(out), batch_size=4, learning_rate=1e-2,
                             warmup_steps=2, max_steps=12, save_steps=4, save_total_limit=2,
                             evaluation_strategy="steps", eval_steps=6, seed=5)
    trainer = Trainer(task="text_generation", model="llama_debug", args=args,
                      train_dataset=generator, eval_dataset=eval_set, log_to_console=False)
    summary = trainer.train()
    return {"trainer": trainer, "summary": summary, "job": JobDir(out)}


def test_the_run_trains_evaluates_and_keeps_the_newest_checkpoints(trained):
    summary, job = trained["summary"], trained["job"]
    assert summary.steps == 12
    assert [e.step for e in summary.evaluations] == [0, 6, 12]
    before, after = (summary.evaluations[i].metrics["perplexity"] for i in (0, -1))
    assert after < before / 4  # the patterns are learnable
    assert [p.name for p in list_checkpoints(job.checkpoints)] == ["checkpoint-8",
                                                                   "checkpoint-12"]
    assert trained["trainer"].get_last_checkpoint() == job.checkpoints / "checkpoint-12"
    state = json.loads((job.checkpoints / "checkpoint-12" / "trainer_state.json").read_text())
    assert state["step"] == 12 and state["data_position"] == {"epoch": 0, "batch": 12}
    assert job.read_status()["state"] == "finished"


def test_a_checkpoint_is_also_a_model_directory(trained):
    from mf_models import AutoModelForCausalLM

    checkpoint = trained["job"].checkpoints / "checkpoint-12"
    loaded = AutoModelForCausalLM.from_pretrained(checkpoint)
    assert loaded.config == trained["trainer"].model.config
    ours = {p.name: p.asnumpy() for p in trained["trainer"].model.get_parameters()}
    for param in loaded.get_parameters():
        np.testing.assert_array_equal(param.asnumpy(), ours[param.name], param.name)


def test_events_and_step_lines_are_structured(trained):
    job = trained["job"]
    events = read_events(job.events_file(0)).events
    assert all(tuple(e) == EVENT_KEYS for e in events)
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert kinds.count("step") == 12 and kinds.count("eval") == 3
    assert kinds.count("checkpoint") == 3  # steps 4, 8, 12
    steps = [e for e in events if e["kind"] == "step"]
    assert all(e["tokens_per_s"] > 0 and e["grad_norm"] > 0 for e in steps)
    lines = [parse_step_line(line) for line in job.worker_log(0).read_text().splitlines()]
    parsed = [p for p in lines if p is not None]
    assert [p["step"] for p in parsed] == list(range(1, 13))
    assert [p["loss"] for p in parsed] == [round(e["loss"], 4) for e in steps]


def test_evaluate_is_the_perplexity_of_the_model_logits(trained):
    trainer = trained["trainer"]
    result = trainer.evaluate()
    assert result == pytest.approx(trained["summary"].evaluations[-1].metrics, rel=1e-6)
    logits = trainer.model(ms.Tensor(EVAL[:, :-1])).asnumpy()
    nll, count = metrics.token_nll(logits, EVAL[:, 1:])
    assert result["perplexity"] == pytest.approx(metrics.perplexity(nll, count), rel=1e-4)


def test_job_yaml_records_the_resolved_run(trained):
    job = trained["job"]
    config = load_run_config(job.job_yaml)  # a valid run YAML
    assert config.model.model_config["num_layers"] == 2  # llama_debug, resolved
    assert config.runner_config.max_steps == 12
    assert config.callbacks[1] == {"type": "CheckpointMointor", "save_checkpoint_steps": 4,
                                   "keep_checkpoint_max": 2}
    assert "#   train_steps = 12" in job.job_yaml.read_text()


# ---- bad input: one line, exit code 2, nothing on disk ----------------------------------------

def _args(tmp_path, **changes):
    values = dict(output_dir=str(tmp_path / "out"), batch_size=4, max_steps=3)
    values.update(changes)
    return TrainingArguments(**values)


def _tiny_trainer(tmp_path, data, **changes):
    from mf_models import AutoModelForCausalLM
    from mf_models.registry import config_from_dict

    model = AutoModelForCausalLM.from_config(config_from_dict(dict(TINY_LLAMA)))
    return Trainer(model=model, args=_args(tmp_path, **changes), train_dataset=data,
                   log_to_console=False)


def _fails(tmp_path, call, pattern):
    from mf_train.errors import TrainConfigError

    with pytest.raises(Exception, match=pattern) as info:
        call()
    assert getattr(info.value, "exit_code", None) == 2, info.value
    assert isinstance(info.value, (TrainConfigError, ValueError))
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()


def test_token_ids_outside_the_vocabulary(tmp_path):
    data = pattern_samples(16, vocab=500)  # TINY_LLAMA's vocabulary is 128
    trainer = _tiny_trainer(tmp_path, data)
    _fails(tmp_path, trainer.train, r"train dataset .* holds token id \d+, outside the model's "
                                    r"vocabulary \[0, 128\)")


def test_a_dataset_too_short_for_one_batch(tmp_path):
    trainer = _tiny_trainer(tmp_path, pattern_samples(3))
    _fails(tmp_path, trainer.train, r"holds 3 sample\(s\) of 33 tokens, fewer than one global "
                                    r"batch of 4 = batch_size\(4\)")


def test_samples_longer_than_the_model(tmp_path):
    trainer = _tiny_trainer(tmp_path, pattern_samples(8, length=40))
    _fails(tmp_path, trainer.train, r"samples of 40 tokens; the model reads 2 \.\. "
                                    r"seq_length\(32\) \+ 1 = 33")


def test_a_dataset_path_that_does_not_exist(tmp_path):
    trainer = _tiny_trainer(tmp_path, str(tmp_path / "nowhere.mindrecord"))
    _fails(tmp_path, trainer.train, r"dataset .*nowhere.mindrecord does not exist")


def test_resume_from_a_checkpoint_of_another_model(tmp_path):
    other = tmp_path / "other"
    save_checkpoint(other, {"lm_head.weight": np.zeros((4, 4), np.float32)}, {},
                    TrainerState(step=2, epoch=0, data_position={"epoch": 0, "batch": 2}))
    trainer = _tiny_trainer(tmp_path, pattern_samples(16))
    _fails(tmp_path, lambda: trainer.train(resume_from_checkpoint=other),
           r"was written for another model: parameter 'lm_head.weight' has shape|"
           r"written for another model: .*in the model but not in the checkpoint")


def test_resume_into_a_changed_config(tmp_path):
    trainer = _tiny_trainer(tmp_path, pattern_samples(16))
    weights = {p.name: np.zeros(p.shape, np.float32) for p in trainer.model.get_parameters()}
    trajectory = {**trainer.run.trajectory(), "derived.lr_schedule.total_steps": 3,
                  "seed": 41}
    state = TrainerState(step=2, epoch=0, data_position={"epoch": 0, "batch": 2},
                         trajectory=trajectory)
    save_checkpoint(tmp_path / "old", weights, {}, state)
    _fails(tmp_path, lambda: trainer.train(resume_from_checkpoint=tmp_path / "old"),
           r"cannot resume from .*checkpoint-2: seed was 41 there, 42 now")


@pytest.mark.parametrize(("build", "pattern"), [
    (lambda: Trainer(task="summarization"), r"task = 'summarization'; allowed: "),
    (lambda: Trainer(task="image_classification", model="llama_debug"),
     r"task image_classification trains vit, swin models, but the model is llama"),
    (lambda: Trainer(pet_method="prefix"), r"pet_method = 'prefix'; allowed: '' .* or 'lora'"),
    (lambda: Trainer(args=TrainingArguments(num_train_epochs=2.5)),
     r"num_train_epochs = 2.5; mf trains whole epochs"),
    (lambda: Trainer(model="llama_debug").set_parallel_config(model_parallel=3),
     r"num_heads\(4\) is not divisible by model_parallel\(3\)"),
    (lambda: Trainer(args=TrainingArguments(data_parallel=2), model="llama_debug",
                     train_dataset=TRAIN).train(),
     r"this run needs 2 processes \(2 data parallel ranks\): start it with `mf train CONFIG`"),
    (lambda: Trainer(args=load_run_config_from({"model": {"model_config": {
        "type": "LlamaConfig", "hiden_size": 64}}}), train_dataset=TRAIN).model,
     r"unknown key 'model.model_config.hiden_size'; did you mean "
     r"'model.model_config.hidden_size'\?"),
    (lambda: Trainer(model="llama_debug",
                     args=load_run_config_from({"callbacks": [{"type": "CheckpointMonitr"}]})),
     r"callbacks\[0\].type = 'CheckpointMonitr'; did you mean 'CheckpointMonitor'\?"),
])
def test_bad_requests_fail_in_one_line(tmp_path, monkeypatch, build, pattern):
    monkeypatch.chdir(tmp_path)
    _fails(tmp_path, build, pattern)


def load_run_config_from(mapping):
    from mf_train.run_yaml import run_config_from_mapping

    return run_config_from_mapping(mapping)


def test_dataset_arguments_become_config_keys(tmp_path):
    from mf_train.data import write_mindrecord

    path = write_mindrecord(tmp_path / "data" / "train.mindrecord", TRAIN)
    trainer = Trainer(model="llama_debug", args=_args(tmp_path), train_dataset=path.parent,
                      eval_dataset=str(tmp_path / "eval.jsonl"))
    loader = trainer.config.train_dataset.data_loader
    assert (loader.type, loader.dataset_dir) == ("MindDataset", str(path.parent))
    assert trainer.config.eval_dataset.data_loader.type == "JsonLinesDataset"
    assert math.isclose(trainer.config.lr_schedule.learning_rate, 5e-5)


# ---- LoRA fine-tuning -------------------------------------------------------------------------

def test_lora_finetune_trains_and_saves_only_lora_weights_and_resumes_exactly(trained,
                                                                              tmp_path):
    from safetensors.numpy import load_file

    from mf_train.lora.model import is_lora_name

    pretrained = trained["job"].root  # a job directory: its newest checkpoint's weights
    base = load_file(str(pretrained / "checkpoints" / "checkpoint-12" / "model.safetensors"))

    def finetune(output, **kwargs):
        args = TrainingArguments(output_dir=str(output), batch_size=4, learning_rate=1e-2,
                                 warmup_steps=1, max_steps=4, save_steps=2, seed=5)
        trainer = Trainer(model="llama_debug", pet_method="lora", args=args,
                          train_dataset=TRAIN, log_to_console=False)
        trainer.finetune(finetune_checkpoint=pretrained, **kwargs)
        return trainer

    trainer = finetune(tmp_path / "lora")
    saved = load_file(str(tmp_path / "lora" / "checkpoints" / "checkpoint-4" /
                          "model.safetensors"))
    assert saved and all(is_lora_name(name) for name in saved)
    # LoRA weights alone are no model: no config beside them to load them as one
    assert not (tmp_path / "lora" / "checkpoints" / "checkpoint-4" / "config.json").exists()
    assert any(np.abs(w).max() > 0 for n, w in saved.items() if n.endswith("lora_b"))
    for param in trainer.model.get_parameters():  # the base did not move
        if not is_lora_name(param.name):
            np.testing.assert_array_equal(param.asnumpy(), base[param.name], param.name)

    # A resume restores the LoRA weights from the run's checkpoint and the frozen base from
    # the pretrained checkpoint, and replays steps 3-4 exactly.
    finetune(tmp_path / "resumed", resume_from_checkpoint=tmp_path / "lora" / "checkpoints" /
             "checkpoint-2")
    first = read_events(JobDir(tmp_path / "lora").events_file(0)).events
    again = read_events(JobDir(tmp_path / "resumed").events_file(0)).events
    losses = {e["step"]: e["loss"] for e in first if e["kind"] == "step"}
    replayed = {e["step"]: e["loss"] for e in again if e["kind"] == "step"}
    assert sorted(replayed) == [3, 4]
    assert [replayed[s] for s in (3, 4)] == [losses[s] for s in (3, 4)]


def test_trainer_is_importable_from_the_package_as_mindformers_writes_it():
    import mf_train
    from mf_train import Trainer as FromPackage
    from mf_train.trainer import Trainer as FromModule

    assert FromPackage is FromModule and "Trainer" in mf_train.__all__
