import sys
from pathlib import Path

# The test-only helpers (greedy.py) sit beside the tests; importlib mode needs the path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
