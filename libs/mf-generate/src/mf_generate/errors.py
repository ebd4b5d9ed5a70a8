"""Errors of mf-generate, in the convention shared by every mf library.

`GenerateError` is a runtime failure (exit code 1); `GenerateConfigError` is a bad value,
argument or input given by the user (exit code 2). The CLI reads `exit_code` and prints the
one-line message.
"""

from __future__ import annotations


class GenerateError(RuntimeError):
    """A runtime failure while generating (exit code 1)."""

    exit_code = 1


class GenerateConfigError(ValueError):
    """A bad generation setting, prompt, tokenizer or task name (exit code 2)."""

    exit_code = 2


class UnsupportedTaskError(GenerateConfigError):
    """A MindFormers pipeline task whose models mf does not have yet."""
