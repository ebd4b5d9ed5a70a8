"""`mf generate MODEL_OR_DIR PROMPT`: a directory or a preset through $MF_HOME, streaming, and
one-line exit-2 errors for bad requests before any model is loaded."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mf_tui import cli

FIXTURES = Path(__file__).resolve().parents[3] / "libs" / "mf-models" / "tests" / "fixtures"
PROMPT = "I love Beijing, because"
# Chinese, English and stdlib source: enough for a byte-level BPE of exactly 512 ids, the
# vocabulary of the llama fixture (a tiny random LLaMA written by transformers).
TEXTS = ["今天天气很好，我们去公园散步吧。", "中国的首都是北京，上海是最大的城市。",
         "I love Beijing, because it is a big city.", "The quick brown fox jumps."] * 20


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    import inspect
    import textwrap

    from mf_tokenize import train_bpe

    directory = tmp_path_factory.mktemp("models") / "llama_debug"
    shutil.copytree(FIXTURES / "llama" / "hf", directory)
    tokenizer = train_bpe(TEXTS + inspect.getsource(textwrap).splitlines(), 512)
    assert len(tokenizer) == 512
    tokenizer.save_pretrained(directory)
    return directory


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["generate", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_generate_from_a_directory_and_from_a_preset_with_streaming(model_dir, capsys,
                                                                     monkeypatch):
    code, plain, err = run(capsys, str(model_dir), PROMPT, "--max-new-tokens", "8")
    assert code == 0, err
    assert plain.startswith(PROMPT) and len(plain.rstrip("\n")) > len(PROMPT)
    # The preset name reads $MF_HOME/llama_debug/; --stream prints the same text as it comes.
    monkeypatch.setenv("MF_HOME", str(model_dir.parent))
    code, streamed, err = run(capsys, "llama_debug", PROMPT, "--max-new-tokens", "8",
                              "--stream")
    assert code == 0, err
    assert streamed == plain


def _fails_with(capsys, argv, *fragments):
    code, out, err = run(capsys, *argv)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mf: error: "), err
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(("options", "fragment"), [
    (["--max-new-tokens", "0"], "max_new_tokens=0 must be an integer >= 1"),
    (["--top-p", "1.5"], "top_p=1.5 must be in (0, 1]"),
    (["--top-p", "0"], "top_p=0.0 must be in (0, 1]"),
    (["--temperature", "0"], "temperature=0.0 must be > 0 when sampling"),
    (["--do-sample", "--temperature", "-1"], "temperature=-1.0 must be > 0 when sampling"),
    (["--top-k", "-1"], "top_k=-1 must be an integer >= 0"),
    (["--seed", "-1"], "seed=-1 must be None or an integer >= 0"),
])
def test_bad_settings_exit_2_with_one_line(model_dir, capsys, options, fragment):
    _fails_with(capsys, [str(model_dir), PROMPT, *options], fragment)


def test_a_prompt_longer_than_the_positions(model_dir, capsys):
    _fails_with(capsys, [str(model_dir), "I love Beijing, because " * 60],
                "tokens, longer than the model's positions allow", "seq_length(128)")
    _fails_with(capsys, [str(model_dir), PROMPT, "--max-new-tokens", "125"],
                "+ max_new_tokens(125) =", "exceeds the model's seq_length(128)")


def test_a_tokenizer_that_does_not_belong_to_the_model(model_dir, capsys, tmp_path):
    from mf_tokenize import AutoTokenizer

    other = tmp_path / "other"
    shutil.copytree(model_dir, other)
    tokenizer = AutoTokenizer.from_pretrained(other)
    tokenizer.add_tokens([f"<extra_{i}>" for i in range(8)])
    tokenizer.save_pretrained(other)
    _fails_with(capsys, [str(other), PROMPT], "the tokenizer has 520 tokens but the model's "
                "vocab_size is 512")


def test_unknown_model_names_and_empty_directories(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MF_HOME", str(tmp_path))
    _fails_with(capsys, ["lama_7b", PROMPT], "'lama_7b'", "did you mean")
    (tmp_path / "empty").mkdir()
    _fails_with(capsys, [str(tmp_path / "empty"), PROMPT], str(tmp_path / "empty"))


def test_bad_settings_fail_without_importing_mindspore(model_dir):
    code = ("import sys; from mf_tui import cli; "
            f"rc = cli.main(['generate', {str(model_dir)!r}, 'hi', '--top-p', '2']); "
            "assert 'mindspore' not in sys.modules, 'mindspore imported'; sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "top_p=2.0 must be in (0, 1]" in result.stderr


def test_help_lists_the_options(capsys):
    assert cli.main(["generate", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--max-new-tokens", "--top-k", "--top-p", "--temperature", "--do-sample",
                   "--seed", "--stream", "MODEL_OR_DIR"):
        assert option in out


@pytest.mark.msrun
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_model_split_over_two_ranks_gives_one_process_text(model_dir, capsys):
    """Issue 12's distributed inference: `mf generate --model-parallel 2` starts two ranks
    (the fixture's 4 heads and 2 key/value heads split in halves, logits gathered)."""
    code, one, err = run(capsys, str(model_dir), PROMPT, "--max-new-tokens", "12")
    assert code == 0, err
    code, split, err = run(capsys, str(model_dir), PROMPT, "--max-new-tokens", "12",
                           "--model-parallel", "2")
    assert code == 0, err
    assert split == one
    code, _, err = run(capsys, str(model_dir), PROMPT, "--model-parallel", "3")
    assert code == 2 and "num_heads(4) is not divisible by model_parallel(3)" in err
