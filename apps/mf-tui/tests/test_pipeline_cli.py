"""`mf pipeline TASK MODEL_OR_DIR INPUT...`: JSON equal to transformers' pipelines on the
tiny fixtures, a preset name through $MF_HOME, streaming, and one-line exit-2 errors before
any model loads."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from mf_tui import cli

FIXTURES = Path(__file__).resolve().parents[3] / "libs" / "mf-models" / "tests" / "fixtures"
BERT = FIXTURES / "bert"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["pipeline", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_text_pair_through_a_preset_name(capsys, tmp_path, monkeypatch):
    """$MF_HOME/<preset>/ holds the model and its tokenizer; --pair is the second text."""
    shutil.copytree(BERT / "sequence_classification" / "hf",
                    tmp_path / "txtcls_bert_base_uncased_mnli")
    monkeypatch.setenv("MF_HOME", str(tmp_path))
    case = next(c for c in json.loads((BERT / "sequence_classification" / "pipeline.json")
                                      .read_text()) if isinstance(c["input"], dict))
    code, out, err = run(capsys, "text_classification", "txtcls_bert_base_uncased_mnli",
                         case["input"]["text"], "--pair", case["input"]["text_pair"])
    assert code == 0, err
    result = json.loads(out)  # the JSON of the pipeline's result
    assert result["label"] == case["top1"]["label"]
    assert abs(result["score"] - case["top1"]["score"]) < 1e-5


def test_translation_streams_its_text(capsys):
    case = json.loads((FIXTURES / "t5" / "pipeline.json").read_text())[2]
    code, out, err = run(capsys, "translation", str(FIXTURES / "t5" / "hf"), case["input"],
                         "--max-new-tokens", "20", "--stream")
    assert code == 0, err
    assert out.rstrip("\n") == case["generated_text"]


def _fails_with(capsys, argv, fragment):
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], err


def test_bad_requests_are_one_line_exit_2(capsys):
    qa = str(BERT / "question_answering" / "hf")
    _fails_with(capsys, ["question_anwsering", qa, "Where?"], "did you mean "
                                                               "'question_answering'")
    _fails_with(capsys, ["question_answering", qa, "Where?"], "needs --context")
    _fails_with(capsys, ["fill_mask", qa, "x", "--pair", "y"], "--pair is for "
                                                                "text_classification")
    _fails_with(capsys, ["token_classification", qa, "x", "--aggregation", "max"],
                "aggregation_strategy='max' is not one of")
    _fails_with(capsys, ["fill_mask", qa, "a", "b", "--stream"], "--stream is for one INPUT")
    _fails_with(capsys, ["image_classification", qa, "x"], "image file x does not exist")


def test_bad_settings_fail_without_importing_mindspore():
    code = ("import sys; from mf_tui import cli; "
            "rc = cli.main(['pipeline', 'fill_mask', 'bert_base_uncased', 'a [MASK]', "
            "'--top-k', '0']); "
            "assert 'mindspore' not in sys.modules, 'mindspore imported'; sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "top_k=0 must be an integer >= 1" in result.stderr
