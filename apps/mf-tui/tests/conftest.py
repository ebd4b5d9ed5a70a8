import subprocess
import sys
from pathlib import Path

import pytest

# Test-only helpers (tui_testing.py) sit beside the tests; importlib mode does not put this
# folder on sys.path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def gone_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid
