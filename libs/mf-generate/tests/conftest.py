import sys
from pathlib import Path

import pytest

# Test-only helpers (generate_testing.py) sit beside the tests; importlib mode does not put
# this folder on sys.path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def llama():
    from generate_testing import fixture_model

    return fixture_model("llama")
