"""The mf command line (typer) and terminal UI (Textual)."""

from importlib.metadata import version as _version

__version__ = _version("mf-tui")
