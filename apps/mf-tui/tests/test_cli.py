"""The `mf` entry point: versions, help without MindSpore, and the error convention."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mf_tui import cli


def test_version_lists_every_library(capsys):
    assert cli.main(["--version"]) == 0
    out = capsys.readouterr().out
    for name in ["mf ", "mf-parallel", "mf-tokenize", "mf-models", "mf-generate", "mf-train"]:
        assert name in out


def test_help_does_not_import_mindspore():
    code = (
        "import sys; from mf_tui import cli; rc = cli.main(['--help']); "
        "assert 'mindspore' not in sys.modules, 'mindspore imported by --help'; sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "parallel" in result.stdout


def test_unknown_command_is_a_usage_error():
    assert cli.main(["no-such-command"]) == 2


class _ConfigProblem(ValueError):
    exit_code = 2


class _RuntimeProblem(RuntimeError):
    exit_code = 1


@pytest.mark.parametrize(
    ("exc", "code", "needle"),
    [
        (_ConfigProblem("data_parallel(0) must be >= 1"), 2, "mf: error: data_parallel(0)"),
        (_RuntimeProblem("rank 1 exited with 9"), 1, "mf: error: rank 1 exited with 9"),
        (ZeroDivisionError("division by zero"), 1, "mf: internal error: ZeroDivisionError"),
    ],
)
def test_errors_become_one_line_and_an_exit_code(monkeypatch, capsys, exc, code, needle):
    monkeypatch.delenv("MF_DEBUG", raising=False)

    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr(cli, "app", boom)
    assert cli.main(["anything"]) == code
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err


def test_mf_debug_shows_the_traceback(monkeypatch, capsys):
    monkeypatch.setenv("MF_DEBUG", "1")

    def boom(*args, **kwargs):
        raise _ConfigProblem("bad value")

    monkeypatch.setattr(cli, "app", boom)
    assert cli.main(["anything"]) == 2
    assert "Traceback" in capsys.readouterr().err
