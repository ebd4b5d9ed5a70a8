"""`mf model ...`: inspect presets and checkpoints, convert weights to and from Hugging Face."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Inspect model presets and convert checkpoints.")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="model")
