"""Trainer tasks (issue 14): a text and an image classifier learn separable generated data well
above chance in a short run, CLIP's contrastive loss falls and its checkpoint round-trips, and
bad task data is a one-line error with exit code 2 before anything trains."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mf_train.errors import TrainConfigError
from mf_train.task_data.process import process_records
from mf_train.task_data.records import Records, read_records
from mf_train.task_data.synthetic import synthetic_records
from mf_train.tasks import task_named, task_of

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
VOCAB = CONFIGS / "data" / "debug_vocab"


def _quiet_run(config: str, tmp: Path, *options: str):
    from mf_train.resolve import resolve_run
    from mf_train.session import RunSession

    run = resolve_run(CONFIGS / config, [f"output_dir={tmp}", "eval_step_interval=-1",
                                         "eval_epoch_interval=50", *options], mode="train")
    session = RunSession(run, echo=False, echo_steps=False)
    return session, session.fit(argv=["test"])


# ---- learning ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def text_classifier(tmp_path_factory):
    """bert_debug with a 2-way head, fine-tuned from Python (Trainer) on records made here."""
    from mf_models import preset_config
    from mf_tokenize import BertTokenizer

    from mf_train import TrainingArguments
    from mf_train.trainer import Trainer

    config = preset_config("bert_debug")  # 2 classes
    train = synthetic_records("text_classification", config, 256, "train").rows
    evaluation = synthetic_records("text_classification", config, 64, "eval").rows
    args = TrainingArguments(output_dir=str(tmp_path_factory.mktemp("txtcls")), batch_size=8,
                             learning_rate=5e-4, warmup_steps=2, max_steps=30, do_eval=True,
                             lr_scheduler_type="linear", seed=0)
    trainer = Trainer(task="text_classification", model="bert_debug", args=args,
                      train_dataset=train, eval_dataset=evaluation,
                      tokenizer=BertTokenizer.from_pretrained(VOCAB), log_to_console=False)
    return trainer, trainer.train()


def test_a_text_classifier_learns_well_above_chance(text_classifier):
    trainer, summary = text_classifier
    first, last = summary.evaluations[0].metrics, summary.evaluations[-1].metrics
    assert type(trainer.model).__name__ == "BertForSequenceClassification"
    assert first["accuracy"] < 0.7  # untrained: about chance (0.5)
    assert last["accuracy"] >= 0.9, last
    assert last["loss"] < first["loss"]


def test_an_image_classifier_learns_well_above_chance(tmp_path_factory):
    _, summary = _quiet_run("vit/run_vit_debug.yaml", tmp_path_factory.mktemp("vit"),
                            "runner_config.max_steps=24")
    first, last = summary.evaluations[0].metrics, summary.evaluations[-1].metrics
    assert first["accuracy"] < 0.35  # 10 classes: chance 0.1
    assert last["accuracy"] >= 0.8, last


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory):
    return _quiet_run("clip/run_clip_debug.yaml", tmp_path_factory.mktemp("clip"),
                      "runner_config.max_steps=30")


def test_clips_contrastive_loss_falls(clip_run):
    _, summary = clip_run
    first, last = summary.evaluations[0].metrics, summary.evaluations[-1].metrics
    assert last["loss"] < first["loss"] - 0.3, (first, last)
    assert last["image_to_text_accuracy"] > first["image_to_text_accuracy"]


def test_a_clip_checkpoint_round_trips_its_scalar_logit_scale(clip_run):
    from mf_models.weights.io import read_safetensors

    session, summary = clip_run
    weights = read_safetensors(summary.checkpoint / "model.safetensors")
    model = session.slot.model
    assert weights["logit_scale"].shape == ()  # 0-d, as the parameter is
    for param in model.get_parameters():
        np.testing.assert_array_equal(weights[param.name], param.asnumpy())


# ---- which task -------------------------------------------------------------------------------
def test_the_task_comes_from_trainer_type_the_head_or_python():
    from mf_models import preset_config

    bert = preset_config("bert_debug")
    assert task_of({}, bert).name == "fill_mask"  # its head: BertForMaskedLM
    assert task_of({"type": "TextClassificationTrainer"}, bert).name == "text_classification"
    assert task_of({}, preset_config("gpt2_debug")).causal
    assert task_of({}, bert, "masked_language_modeling").name == "fill_mask"
    with pytest.raises(TrainConfigError, match="task image_classification trains vit, swin"):
        task_of({"type": "ImageClassificationTrainer"}, bert)
    with pytest.raises(TrainConfigError, match="task = 'summarize'; allowed: text_generation"):
        task_named("summarize")


# ---- bad input: one line, exit code 2 -----------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer():
    from mf_tokenize import BertTokenizer

    return BertTokenizer.from_pretrained(VOCAB)


def _process(task: str, rows: list[dict], tokenizer, preset: str, seq_length: int = 32,
             **overrides):
    from mf_models import preset_config

    config = preset_config(preset, **overrides)
    return process_records(task_named(task), Records(rows, "data.jsonl"), tokenizer, config,
                           seq_length)


def _one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and excinfo.value.exit_code == 2
    return message


def test_a_label_outside_the_heads_classes(tokenizer):
    rows = [{"text": "good day", "label": 1}, {"text": "bad day", "label": 5}]
    with pytest.raises(TrainConfigError) as excinfo:
        _process("text_classification", rows, tokenizer, "bert_debug", num_labels=2)
    assert _one_line(excinfo).startswith("data.jsonl[1]: label 5 is outside the model's 2 "
                                         "classes [0, 2)")


def test_text_pairs_missing_their_second_part(tokenizer):
    rows = [{"text": "a", "text_pair": "b", "label": 0}, {"text": "c", "label": 1}]
    with pytest.raises(TrainConfigError) as excinfo:
        _process("text_classification", rows, tokenizer, "bert_debug")
    assert _one_line(excinfo).startswith("data.jsonl[1]: no 'text_pair' column")


def test_a_question_longer_than_the_context_window(tokenizer):
    rows = [{"question": " ".join(["where"] * 40), "context": "bob is in rome",
             "answer": "rome"}]
    with pytest.raises(TrainConfigError) as excinfo:
        _process("question_answering", rows, tokenizer, "bert_debug")
    assert "the question is 40 tokens, which leaves no room for the context in " \
        "seq_length(32)" in _one_line(excinfo)


def test_an_answer_that_is_not_in_the_context(tokenizer):
    rows = [{"question": "where is bob", "context": "bob is in rome",
             "answers": {"text": ["paris"], "answer_start": [10]}}]
    with pytest.raises(TrainConfigError) as excinfo:
        _process("question_answering", rows, tokenizer, "bert_debug")
    assert "answer 'paris' at 10 is not in the context" in _one_line(excinfo)


@pytest.mark.parametrize("shape", [(32, 32, 4), (32, 32), (2, 32, 32, 3)])
def test_an_image_of_the_wrong_channels_or_shape(shape):
    rows = [{"image": np.zeros(shape, np.uint8), "label": 0}]
    with pytest.raises(TrainConfigError) as excinfo:
        _process("image_classification", rows, None, "vit_debug")
    assert f"image array of shape {shape}; the model reads images of 3 channels" in \
        _one_line(excinfo)


def test_a_file_that_is_not_an_image(tmp_path):
    folder = tmp_path / "images" / "cat"
    folder.mkdir(parents=True)
    (folder / "notes.png").write_text("not a picture")
    records = read_records("ImageFolderDataset", tmp_path / "images")
    from mf_models import preset_config

    with pytest.raises(TrainConfigError) as excinfo:
        process_records(task_named("image_classification"), records, None,
                        preset_config("vit_debug", num_labels=1, id2label={0: "cat"}), 32)
    assert "notes.png is not an image Pillow can read" in _one_line(excinfo)


def test_tags_that_do_not_pair_with_tokens(tokenizer):
    rows = [{"tokens": ["bob", "went"], "tags": ["B-PER"]}]
    with pytest.raises(TrainConfigError) as excinfo:
        _process("token_classification", rows, tokenizer, "bert_debug", num_labels=5)
    assert _one_line(excinfo) == "data.jsonl[0]: 2 tokens but 1 tags; give one tag per token"


# ---- what the builders make ---------------------------------------------------------------------
def test_token_tags_go_on_each_words_first_piece(tokenizer):
    from mf_models import preset_config

    config = preset_config("bert_debug", num_labels=3, id2label={0: "O", 1: "B-PER", 2: "I-PER"})
    rows = [{"tokens": ["bob", "zq"], "tags": ["B-PER", "O"]}]  # zq: two pieces, z ##q
    data = process_records(task_named("token_classification"), Records(rows, "x"), tokenizer,
                           config, 8)
    assert data.columns["labels"][0].tolist() == [-100, 1, 0, -100, -100, -100, -100, -100]
    assert data.references[0] == {"tags": ["B-PER", "O"], "positions": [1, 2]}


def test_csv_and_json_lines_give_the_same_examples(tmp_path, tokenizer):
    (tmp_path / "a.csv").write_text("text,label\ngood day,1\nbad day,0\n")
    (tmp_path / "b.jsonl").write_text('{"text": "good day", "label": 1}\n'
                                      '{"text": "bad day", "label": 0}\n')
    from mf_models import preset_config

    config = preset_config("bert_debug", num_labels=2)
    task = task_named("text_classification")
    csv = process_records(task, read_records("CSVDataset", tmp_path / "a.csv"), tokenizer,
                          config, 16)
    jsonl = process_records(task, read_records("JsonLinesDataset", tmp_path / "b.jsonl"),
                            tokenizer, config, 16)
    for name in csv.columns:
        np.testing.assert_array_equal(csv.columns[name], jsonl.columns[name])
