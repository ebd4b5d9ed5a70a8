"""Errors of mf-models, in the convention shared by every mf library.

`ModelError` is a runtime failure (exit code 1); `ModelConfigError` is a bad name, value or file
given by the user (exit code 2). The CLI reads `exit_code` and prints the one-line message.
"""

from __future__ import annotations


class ModelError(RuntimeError):
    """A runtime failure inside mf-models (exit code 1)."""

    exit_code = 1


class ModelConfigError(ValueError):
    """A bad preset name, config value, input shape or argument (exit code 2)."""

    exit_code = 2


class UnknownModelError(ModelConfigError):
    """A model name that is neither a preset nor a directory."""


class WeightsNotFoundError(FileNotFoundError):
    """No weight file where one was looked for (exit code 2)."""

    exit_code = 2


class CheckpointMismatchError(ModelConfigError):
    """A checkpoint whose names or shapes do not match the model."""


class UnsafeFileError(ModelConfigError):
    """A pickle-based file (*.bin, *.pt, *.pth, *.pkl, *.pickle) that we refuse to load."""


class CorruptWeightsError(ModelConfigError):
    """A weight file that is truncated or corrupt (the file is named)."""


class NonFiniteWeightsError(ModelConfigError):
    """Weights holding NaN or inf (the tensor is named)."""
