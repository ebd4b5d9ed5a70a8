"""Issue 10, part 1 through the real CLI: `mf train|export|data prepare|model convert` never
delete or overwrite what mf did not create. Each refusal is one line and exit code 2, and the
person's files are all still there afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from mf_tui import cli

ROOT = Path(__file__).resolve().parents[3]
DEBUG_CONFIG = ROOT / "configs" / "llama" / "run_llama_debug.yaml"


def run(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    return code, capsys.readouterr().err


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working directory holding a person's files, at every level the CLI might touch."""
    work = tmp_path / "home" / "work"
    for folder in (work, work / "victim", tmp_path / "home"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "thesis.txt").write_text("precious\n")
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return work


@pytest.mark.parametrize("output_dir", ["victim", ".", "..", "'~'", ""])
def test_mf_train_refuses_an_output_dir_it_did_not_make(capsys, workdir, output_dir):
    before = tree(workdir.parent)
    code, err = run(capsys, "train", str(DEBUG_CONFIG), "--options", f"output_dir={output_dir}",
                    "runner_config.max_steps=1")
    assert code == 2, err
    assert err.startswith("mf: error: output_dir") and err.count("\n") == 1, err
    assert tree(workdir.parent) == before  # nothing made, nothing removed (not even a tokenizer)
    assert (workdir / "victim" / "thesis.txt").read_text() == "precious\n"


def test_mf_export_refuses_a_persons_directory_even_with_overwrite(capsys, workdir):
    before = tree(workdir)
    code, err = run(capsys, "export", str(DEBUG_CONFIG), "victim", "--overwrite")
    assert code == 2 and "victim" in err and "was not made by mf" in err, err
    assert tree(workdir) == before


def test_mf_model_convert_refuses_the_working_directory(capsys, workdir):
    code, err = run(capsys, "model", "convert", "gpt2_debug", ".")
    assert code == 2, err
    assert (workdir / "thesis.txt").read_text() == "precious\n"


def test_mf_data_prepare_refuses_an_existing_output(capsys, workdir):
    (workdir / "corpus.txt").write_text("def f(x):\n    return x\n" * 50)
    (workdir / "out.mindrecord.db").write_text("someone's index")
    code, err = run(capsys, "data", "prepare", "corpus.txt", "out.mindrecord", "--tokenizer",
                    "gpt2", "--seq-length", "8")
    assert code == 2 and "already exists" in err, err
    assert (workdir / "out.mindrecord.db").read_text() == "someone's index"
    assert not (workdir / "out.mindrecord").exists()
