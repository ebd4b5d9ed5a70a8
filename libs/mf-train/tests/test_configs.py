"""The run YAMLs in configs/: one per model family at MindFormers' sizes, a debug size of each,
and the default job; every one loads, names a buildable model, and passes the run checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from mf_train import load_run_config
from mf_train.callbacks import plan_callbacks
from mf_train.evaluation import metric_types
from mf_train.loss_scale import step_wrapper_from_config
from mf_train.model_setup import model_config_from_run
from mf_train.tasks import task_of

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
FILES = sorted(CONFIGS.rglob("*.yaml"))


def test_every_family_has_a_run_yaml_and_a_debug_one():
    from mf_models import FAMILIES

    for family in FAMILIES:
        names = [p.name for p in (CONFIGS / family).glob("run_*.yaml")]
        assert any(not n.endswith("_debug.yaml") for n in names), family
        assert f"run_{family}_debug.yaml" in names, family


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CONFIGS)) for p in FILES])
def test_config_loads_and_names_its_model(path):
    config = load_run_config(path)
    model, _ = model_config_from_run(config.model.model_config, config.model.arch)
    family = path.parent.name if path.parent != CONFIGS else "llama"
    assert model.family == family
    plan_callbacks(config.callbacks)
    step_wrapper_from_config(config.runner_wrapper)
    metric_types(config.metric)
    task = task_of(config.trainer, model)
    if path.stem.endswith("debug") and not task.causal:
        # a trainer task's examples are generated (SyntheticTaskDataset), read with the
        # debug vocabulary when the task has text
        assert config.train_dataset.data_loader.type == "SyntheticTaskDataset"
        assert config.eval_dataset.data_loader.type == "SyntheticTaskDataset"
        assert config.runner_config.max_steps > 0
    elif path.stem.endswith("debug") or path.stem == "quickstart":
        # runnable anywhere: the standard library as data, a tokenizer trained on it
        assert config.train_dataset.data_loader.type == "PythonStdlibDataset"
        assert config.processor["tokenizer"]["train_vocab_size"] == model.vocab_size
        assert config.runner_config.max_steps > 0


def test_debug_configs_inherit_the_full_size_run():
    debug = load_run_config(CONFIGS / "llama" / "run_llama_debug.yaml")
    assert [p.name for p in debug.files] == ["run_llama_7b.yaml", "run_llama_debug.yaml"]
    assert debug.optimizer.weight_decay == 0.1  # from the base
    assert debug.model.model_config["num_layers"] == 2  # its own
    assert debug.runner_wrapper["scale_sense"] is None  # fp32: the base's loss scale is off


def test_the_debug_vocabulary_file_holds_every_generated_word():
    from mf_train.task_data.synthetic import debug_vocabulary

    written = (CONFIGS / "data" / "debug_vocab" / "vocab.txt").read_text().split("\n")[:-1]
    assert written == debug_vocabulary()


def test_a_dataset_dir_given_to_the_generated_examples_is_refused_not_ignored():
    from mf_train.errors import TrainConfigError
    from mf_train.resolve import resolve_run

    with pytest.raises(TrainConfigError, match="is not read by SyntheticTaskDataset.*"
                                                "type=JsonLinesDataset"):
        resolve_run(CONFIGS / "vit" / "run_vit_debug.yaml",
                    ["train_dataset.data_loader.dataset_dir=my_images"])
