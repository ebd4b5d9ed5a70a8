import sys
from pathlib import Path

# Test-only helpers (train_fixtures.py, a name no other package's tests use) sit beside the
# tests; importlib mode does not put this folder on sys.path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parent))
