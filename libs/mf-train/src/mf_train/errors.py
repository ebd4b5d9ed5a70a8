"""The errors of mf-train, in the convention shared by every mf library.

`MfTrainError` is a runtime failure (exit code 1); `TrainConfigError` is a usage or config error
(exit code 2) and is also a ValueError. The message is always one line that names the bad value
and what is allowed, so the CLI prints it as is.
"""

from __future__ import annotations


class MfTrainError(Exception):
    """A training run failed at run time."""

    exit_code = 1


class TrainConfigError(MfTrainError, ValueError):
    """A run YAML, TrainingArguments or command line asked for something that cannot be done."""

    exit_code = 2


class YamlSyntaxError(TrainConfigError):
    """A YAML file that does not parse; the message names the file and line."""


class UnknownKeyError(TrainConfigError):
    """A key the run YAML schema does not know; the message names the full key path."""


class DatasetNotFoundError(TrainConfigError, FileNotFoundError):
    """A dataset path that does not exist."""


class ConfigFileNotFoundError(TrainConfigError, FileNotFoundError):
    """A run YAML, or a base_config it names, that does not exist."""


class DatasetTooShortError(TrainConfigError):
    """A dataset that cannot fill a single batch."""


class CheckpointMismatchError(TrainConfigError):
    """A checkpoint written for another model, or a resume into a changed config."""


class CheckpointNotFoundError(TrainConfigError, FileNotFoundError):
    """A checkpoint path that does not exist or holds no complete checkpoint."""


def one_line(text: str) -> str:
    """Collapse whitespace so a message from a library (YAML, MindSpore) fits on one line."""
    return " ".join(str(text).split())
