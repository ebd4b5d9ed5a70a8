"""Launch: the exact command (and every other node's), then the job started detached.

The job runs in a session of its own, so closing the UI leaves it running; this screen waits
for its job directory (mf train makes it before any rank starts) and opens the monitor on it.
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from mf_tui.messages import LaunchProgress
from mf_tui.run_setup import SetupCheck


class LaunchScreen(ModalScreen):
    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, check: SetupCheck):
        super().__init__()
        self.check = check

    def compose(self) -> ComposeResult:
        check = self.check
        lines = [f"[b]this node[/]: {_escape(check.command)}"]
        for k, command in enumerate(check.node_commands, 1):
            lines.append(f"[b]node {k}[/]: {_escape(command)}")
        if check.node_commands:
            lines.append("run each node's command on that node; all of them read the same "
                         "job directory on a shared file system")
        with Vertical(id="launch-box"):
            yield Static("\n".join(lines), id="launch-commands")
            yield Static(f"job directory: {check.output_dir}", id="launch-status")
            with Horizontal(id="launch-buttons"):
                yield Button("Start", variant="success", id="start",
                             disabled=not check.launchable)
                yield Button("Close", id="close")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            event.button.disabled = True
            self.query_one("#launch-status", Static).update("starting…")
            self._start()
        else:
            self.action_close()

    def action_close(self) -> None:
        self.dismiss()

    @work(thread=True, exclusive=True, group="launch")
    def _start(self) -> None:
        from mf_tui.jobs.launch import start_detached

        check = self.check
        try:
            started = start_detached(check.argv, check.output_dir)
            self.app.started.append(started)
            self.post_message(LaunchProgress(f"started pid {started.process.pid}; waiting for "
                                             f"its job directory {check.output_dir}"))
            job = started.wait_for_job()
            self.post_message(LaunchProgress(f"job directory ready: {job}", job=job))
        except Exception as exc:  # noqa: BLE001 - shown here, never raised into the UI
            self.post_message(LaunchProgress("", error=" ".join(str(exc).split())))

    def on_launch_progress(self, message: LaunchProgress) -> None:
        status = self.query_one("#launch-status", Static)
        if message.error:
            status.update(f"[b red]✗[/] {_escape(message.error)}")
            self.query_one("#start", Button).disabled = False
            return
        status.update(_escape(message.text))
        if message.job is not None:
            self.dismiss()
            self.app.open_job(message.job)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
