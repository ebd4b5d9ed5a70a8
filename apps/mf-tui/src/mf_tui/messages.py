"""Messages the app's workers post to its screens (results of work done off the UI thread)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message

from mf_tui.jobs.view import JobSnapshot


@dataclass
class JobUpdated(Message):
    """A fresh reading of the monitored job; new log lines wait in the screen's buffer."""

    snapshot: JobSnapshot

    def can_replace(self, message: Message) -> bool:
        # a newer reading makes an older one that was not handled yet worthless
        return isinstance(message, JobUpdated)


@dataclass
class JobsListed(Message):
    """The jobs under the root, newest first."""

    snapshots: list[JobSnapshot]

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, JobsListed)


@dataclass
class BaseLoaded(Message):
    """A run YAML loaded for the Setup screen (config is None and error says why if not)."""

    path: str
    config: Any
    error: str | None = None
    serial: int = 0  # which load it answers


@dataclass
class SetupChecked(Message):
    check: Any  # run_setup.SetupCheck
    serial: int  # which edit it answers: only the newest is shown

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SetupChecked)


@dataclass
class LaunchProgress(Message):
    """Where a launch is: text for people, the job once its directory exists, or an error."""

    text: str
    job: Path | None = None
    error: str | None = None


@dataclass
class ActionDone(Message):
    """The outcome of stop / restart / save, for a notification."""

    text: str
    error: bool = False


@dataclass
class ModelLoaded(Message):
    text: str
    error: bool = False


@dataclass
class GeneratedText(Message):
    text: str
    done: bool = False
    error: str | None = None
