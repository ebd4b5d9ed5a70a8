"""The jobs under the root: state, progress, last loss and evaluation; open one."""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import get_current_worker

from mf_tui.jobs.control import find_jobs
from mf_tui.jobs.format import age, metrics, number, progress
from mf_tui.jobs.view import JobSnapshot, JobView
from mf_tui.messages import JobsListed
from mf_tui.widgets.rank_table import STATE_STYLES

REFRESH_SECONDS = 2.0


class JobsScreen(Screen):
    AUTO_FOCUS = "#jobs-table"
    BINDINGS = [
        Binding("enter", "open", "Open", show=True),
        Binding("n", "app.switch_mode('setup')", "New job"),
        Binding("g", "app.switch_mode('generate')", "Generate"),
        Binding("r", "refresh", "Refresh"),
    ]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.views: dict[Path, JobView] = {}
        self.snapshots: list[JobSnapshot] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="jobs-root")
        yield DataTable(id="jobs-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.title = "mf · jobs"
        table = self.query_one(DataTable)
        for key, label in (("job", "job"), ("state", "state"), ("step", "step"),
                           ("ranks", "ranks"), ("loss", "loss"), ("started", "started"),
                           ("eval", "last eval")):
            table.add_column(label, key=key)
        self.query_one("#jobs-root", Static).update(f"jobs under {self.app.root}")
        self.watch_jobs()

    @work(thread=True, exclusive=True, group="jobs-list")
    def watch_jobs(self) -> None:
        worker = get_current_worker()
        while not worker.is_cancelled:
            self.post_message(JobsListed(self.read_jobs()))
            deadline = time.monotonic() + REFRESH_SECONDS
            while time.monotonic() < deadline and not worker.is_cancelled:
                time.sleep(0.1)

    def read_jobs(self) -> list[JobSnapshot]:
        out = []
        for path in find_jobs(self.app.root):
            view = self.views.setdefault(path, JobView(path, clock=self.app.clock))
            out.append(view.poll())
        return out

    def on_jobs_listed(self, message: JobsListed) -> None:
        self.snapshots = message.snapshots
        self.app.known_jobs = [s.root for s in message.snapshots]
        table = self.query_one(DataTable)
        keys = [str(s.root) for s in message.snapshots]
        if [str(k.value) for k in table.rows] != keys:
            cursor = table.cursor_row
            table.clear()
            for snap in message.snapshots:
                table.add_row(*self._cells(snap).values(), key=str(snap.root))
            if message.snapshots:
                table.move_cursor(row=min(cursor, len(keys) - 1))
        else:
            for snap in message.snapshots:
                for column, value in self._cells(snap).items():
                    table.update_cell(str(snap.root), column, value)
        root = self.query_one("#jobs-root", Static)
        if not message.snapshots:
            root.update(f"no jobs under {self.app.root} yet: press n to set one up")
        else:
            root.update(f"{len(keys)} job{'s' if len(keys) > 1 else ''} under {self.app.root}")

    def _cells(self, snap: JobSnapshot) -> dict:
        try:
            name = str(snap.root.relative_to(self.app.root))
        except ValueError:
            name = str(snap.root)
        loss = snap.series.get("loss") or ()
        last = snap.last_eval
        return {
            "job": name,
            "state": Text(snap.state, style=STATE_STYLES.get(snap.state, "")),
            "step": progress(snap.step, snap.total_steps),
            "ranks": str(len(snap.ranks)),
            "loss": number(loss[-1][1]) if loss else "-",
            "started": (age(self.app.clock() - snap.started) + " ago") if snap.started else "-",
            "eval": metrics(last.metrics) if last else "-",
        }

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            self.app.open_job(key)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.app.open_job(event.row_key.value)

    def action_refresh(self) -> None:
        self.watch_jobs()
