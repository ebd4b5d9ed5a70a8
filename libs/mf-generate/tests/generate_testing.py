"""Test helpers of mf-generate (a module name no other package's tests use): models shared
by every test module, built once per session, since each compiled bucket costs ~2 s here."""

from __future__ import annotations

from pathlib import Path

MODEL_FIXTURES = Path(__file__).resolve().parents[2] / "mf-models" / "tests" / "fixtures"
_MODELS: dict = {}


def fixture_model(family: str):
    """The tiny random HF checkpoint of mf-models' parity fixtures, through our importer."""
    if family not in _MODELS:
        from mf_models import AutoModelForCausalLM

        import mf_generate  # noqa: F401  (installs model.generate)

        _MODELS[family] = AutoModelForCausalLM.from_pretrained(MODEL_FIXTURES / family / "hf")
    return _MODELS[family]
