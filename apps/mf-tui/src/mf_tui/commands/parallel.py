"""`mf parallel ...`: check a parallel layout before launching a job."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Check parallel layouts and memory estimates.")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="parallel")
