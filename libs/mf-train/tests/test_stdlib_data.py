"""PythonStdlibDataset: the running Python's library sources, split into train and held-out
eval files."""

from __future__ import annotations

from mf_train.data.stdlib import EVAL_EVERY, SKIPPED_PARTS, PythonStdlib


def test_train_and_eval_split_the_library_without_overlap():
    every = PythonStdlib("all").files()
    train, held = PythonStdlib("train").files(), PythonStdlib("eval").files()
    assert not set(train) & set(held)
    assert sorted(train + held) == every
    assert len(held) == len(every) // EVAL_EVERY
    assert any(p.name == "json" or p.parent.name == "json" for p in every)  # the real library


def test_tests_and_installed_packages_are_left_out(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("x = 1\n")
    for part in ("test", "site-packages", "idlelib"):
        (tmp_path / part).mkdir()
        (tmp_path / part / "skip.py").write_text("y = 2\n")
    (tmp_path / "latin1.py").write_bytes(b"s = '\xe9'\n")
    reader = PythonStdlib("all", root=tmp_path)
    assert [p.name for p in reader.files()] == ["latin1.py", "mod.py"]
    assert list(reader) == ["x = 1\n"]
    assert [p.name for p in reader.skipped] == ["latin1.py"]
    assert {"test", "site-packages", "idlelib"} <= SKIPPED_PARTS
