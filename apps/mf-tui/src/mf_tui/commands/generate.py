"""`mf generate MODEL_OR_DIR PROMPT`: text generation from the command line."""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    """Adds `mf generate` (written with mf-generate)."""
