"""The layer contract of DESIGN.md, enforced by import-linter over the installed packages."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept():
    lint_imports = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run(
        [lint_imports, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_every_package_reports_its_installed_version():
    from importlib.metadata import version

    import mf_generate  # noqa: E401
    import mf_models
    import mf_parallel
    import mf_tokenize
    import mf_train
    import mf_tui

    for module, dist in [
        (mf_parallel, "mf-parallel"), (mf_tokenize, "mf-tokenize"), (mf_models, "mf-models"),
        (mf_generate, "mf-generate"), (mf_train, "mf-train"), (mf_tui, "mf-tui"),
    ]:
        assert module.__version__ == version(dist)
