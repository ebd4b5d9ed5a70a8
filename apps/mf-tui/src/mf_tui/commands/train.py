"""`mf train|finetune|eval|predict CONFIG` and `mf data prepare`: run-YAML driven jobs."""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    """Adds the run-YAML commands (written with mf-train)."""
