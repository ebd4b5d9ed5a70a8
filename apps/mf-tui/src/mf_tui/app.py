"""The mf terminal UI: jobs, the monitor of one job, job setup and launch, and generation.

    from mf_tui.app import MFApp
    MFApp(root="output").run()          # the jobs under ./output
    MFApp(job="output/llama_debug").run()   # the monitor of one job

Top-level views are App.MODES (jobs, setup, generate); the monitor of a job is pushed over the
jobs view. The first screen imports neither MindSpore nor numpy: it reads job directories
with mf_tui.jobs alone; Setup and Generate load their libraries in workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from textual.app import App
from textual.binding import Binding

from mf_tui.palette import MFCommands
from mf_tui.screens.generate import GenerateScreen
from mf_tui.screens.jobs import JobsScreen
from mf_tui.screens.setup import SetupScreen

POLL_INTERVAL = 0.25  # seconds between reads of a monitored job directory
REAP_SECONDS = 2.0


class MFApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "mf"
    MODES = {"jobs": JobsScreen, "setup": SetupScreen, "generate": GenerateScreen}
    DEFAULT_MODE = "jobs"
    COMMANDS = App.COMMANDS | {MFCommands}
    BINDINGS = [
        # F-keys reach every view, also while typing in a field; the footer shows each
        # screen's own keys, the command palette (ctrl+p) lists these too.
        Binding("f1", "switch_mode('jobs')", "Jobs", show=False),
        Binding("f2", "switch_mode('setup')", "Setup", show=False),
        Binding("f3", "switch_mode('generate')", "Generate", show=False),
        Binding("ctrl+q", "quit", "Quit"),
    ]

    def __init__(self, job: str | Path | None = None, root: str | Path = "output", *,
                 clock: Callable[[], float] = time.time, poll_interval: float = POLL_INTERVAL):
        super().__init__()
        self.root = Path(root).expanduser().absolute()
        self.job = Path(job).expanduser().absolute() if job else None
        self.clock = clock
        self.poll_interval = poll_interval
        self.known_jobs: list[Path] = []
        self.started: list = []  # jobs launched from here (mf_tui.jobs.launch.Started)

    def on_mount(self) -> None:
        if self.job is not None:
            self.open_job(self.job)
        self.set_interval(REAP_SECONDS, self._reap)

    def open_job(self, path: str | Path) -> None:
        from mf_tui.screens.monitor import MonitorScreen

        if self.current_mode != "jobs":
            self.switch_mode("jobs")
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.push_screen(MonitorScreen(path))

    def open_generate(self, model: str | None) -> None:
        self.switch_mode("generate")
        if model:
            screen = self.screen
            if isinstance(screen, GenerateScreen):
                screen.set_model(model)

    def _reap(self) -> None:
        """Collect the exit status of jobs started here that ended (no zombies left)."""
        self.started = [s for s in self.started if s.process.poll() is None]


def make_app(job: str | Path | None = None, root: str | Path = "output", **kwargs) -> MFApp:
    """The app as `mf tui` runs it (shared by the CLI and the tests)."""
    if job is not None:
        from mf_tui.jobs.control import require_job

        require_job(job)  # a missing or foreign directory is one line before any screen
    return MFApp(job=job, root=root, **kwargs)
