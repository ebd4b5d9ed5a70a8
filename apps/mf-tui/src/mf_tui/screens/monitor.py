"""The monitor of one job: per-rank table, charts, evaluations and the log tail.

One thread worker follows the job directory (a JobView and one LineTailer per log), a few times
a second, and posts a `JobUpdated` only when something was read (or once a second, for the
ages); log lines wait in a buffer that the UI thread drains when it handles the message, so a
burst of lines costs one redraw. Stop and restart act in workers too.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Select, Static, TabbedContent, TabPane
from textual.worker import get_current_worker

from mf_tui.jobs.format import age, metrics, progress
from mf_tui.jobs.tail import LineTailer
from mf_tui.jobs.view import JobSnapshot, JobView
from mf_tui.messages import ActionDone, JobUpdated
from mf_tui.screens.confirm import ConfirmScreen
from mf_tui.widgets.charts import Charts
from mf_tui.widgets.log_tail import ALL, LogTail
from mf_tui.widgets.rank_table import STATE_STYLES, RankTable

LOG_TAIL_BYTES = 256 * 1024  # of each log, when the monitor opens
HEARTBEAT_SECONDS = 1.0  # post at least this often, so the ages move
# Widgets redraw at most this often however fast the job writes: a DataTable repaints every
# row when one cell changes (benchmarks/tui_monitor.py: 8 ranks x 20 events/s).
SHOW_SECONDS = 0.5


class MonitorScreen(Screen):
    AUTO_FOCUS = "#rank-table"
    BINDINGS = [
        Binding("escape", "back", "Jobs"),
        Binding("s", "stop", "Stop"),
        Binding("r", "restart", "Restart"),
        Binding("1", "tab('ranks')", "Ranks"),
        Binding("2", "tab('charts')", "Charts"),
        Binding("3", "tab('evals')", "Eval"),
        Binding("4", "tab('logs')", "Logs"),
        Binding("g", "generate", "Generate"),
    ]

    def __init__(self, job: str | Path, **kwargs):
        super().__init__(**kwargs)
        self.job = Path(job).expanduser().absolute()
        self.snapshot: JobSnapshot | None = None
        self._pending: deque[tuple[str, str]] = deque()
        self._lock = threading.Lock()
        self._sources: set[str] = set()
        self._evals_shown = -1
        self._shown_at = 0.0
        self._show_timer = None
        self._summary_text = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"{self.job}\nreading…", id="job-summary")
        with TabbedContent(initial="ranks"):
            with TabPane("Ranks", id="ranks"):
                yield RankTable(id="rank-table")
            with TabPane("Charts", id="charts"):
                yield Charts(id="charts-grid")
            with TabPane("Eval", id="evals"):
                yield DataTable(id="eval-table", zebra_stripes=True)
            with TabPane("Logs", id="logs"):
                with Horizontal(id="log-bar"):
                    yield Static("rank", id="log-label")
                    yield Select([("all ranks", ALL)], value=ALL, allow_blank=False,
                                 id="log-filter", compact=True)
                yield LogTail(id="log")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"mf · {self.job.name}"
        self.follow()

    # ---- reading (worker thread) -----------------------------------------------------------

    @work(thread=True, exclusive=True, group="monitor-follow")
    def follow(self) -> None:
        worker = get_current_worker()
        view = JobView(self.job, clock=self.app.clock)
        tailers: dict[str, LineTailer] = {}
        last_version, last_post = -1, 0.0
        while not worker.is_cancelled:
            snapshot = view.poll()
            for source, path in self._log_files(snapshot).items():
                if source not in tailers:
                    tailers[source] = LineTailer(path, tail_bytes=LOG_TAIL_BYTES)
            lines = [(source, raw.decode("utf-8", errors="replace"))
                     for source, tailer in tailers.items() for raw in tailer.read()]
            now = time.monotonic()
            if lines or snapshot.version != last_version or now - last_post >= HEARTBEAT_SECONDS:
                with self._lock:
                    self._pending.extend(lines)
                self.post_message(JobUpdated(snapshot))
                last_version, last_post = snapshot.version, now
            time.sleep(self.app.poll_interval)

    def _log_files(self, snapshot: JobSnapshot) -> dict[str, Path]:
        files = {f"rank {r.rank}": self.job / "logs" / f"worker_{r.rank}.log"
                 for r in snapshot.ranks}
        files["console"] = self.job / "logs" / "console.log"
        files["launcher"] = self.job / "logs" / "launcher.log"
        return files

    # ---- showing (UI thread) ---------------------------------------------------------------

    def on_job_updated(self, message: JobUpdated) -> None:
        self.snapshot = message.snapshot
        wait = self._shown_at + SHOW_SECONDS - time.monotonic()
        if wait <= 0:
            self._show()
        elif self._show_timer is None:  # merge what arrives until then into one redraw
            self._show_timer = self.set_timer(wait, self._show)

    def _show(self) -> None:
        self._show_timer = None
        self._shown_at = time.monotonic()
        snapshot = self.snapshot
        summary = self._summary(snapshot)
        if summary != self._summary_text:
            self._summary_text = summary
            self.query_one("#job-summary", Static).update(summary)
        active = self.query_one(TabbedContent).active
        self.query_one(RankTable).show(snapshot)
        if active == "charts":
            self.query_one(Charts).show(snapshot.series)
        if len(snapshot.evals) != self._evals_shown:
            self._show_evals(snapshot)
        with self._lock:
            lines = list(self._pending)
            self._pending.clear()
        if lines:
            self._add_sources({source for source, _ in lines})
            self.query_one(LogTail).add(lines, visible=active == "logs")

    def _summary(self, snap: JobSnapshot) -> str:
        style = STATE_STYLES.get(snap.state, "") or "bold"
        state = f"[{style}]{snap.state}[/]"
        if snap.exit_code:
            state += f" (exit code {snap.exit_code})"
        parts = [f"{state}  step {progress(snap.step, snap.total_steps)}",
                 f"{len(snap.ranks)} rank{'s' if len(snap.ranks) != 1 else ''}"]
        if snap.started:
            parts.append(f"started {age(self.app.clock() - snap.started)} ago")
        last = snap.last_eval
        if last:
            parts.append(f"eval@{last.step}: {metrics(last.metrics)}")
        lines = [str(self.job), "  ·  ".join(parts)]
        if snap.message:
            lines.append(f"[red]{_escape(snap.message)}[/]" if snap.state in (
                "failed", "dead") else _escape(snap.message))
        lines += [f"[yellow]{_escape(w)}[/]" for w in snap.warnings]
        return "\n".join(lines)

    def _show_evals(self, snap: JobSnapshot) -> None:
        table = self.query_one("#eval-table", DataTable)
        names: list[str] = []
        for ev in snap.evals:
            names += [n for n in ev.metrics if n not in names]
        table.clear(columns=True)
        table.add_columns("step", "rank", *names)
        for ev in snap.evals:
            table.add_row(str(ev.step), str(ev.rank),
                          *(f"{ev.metrics[n]:.4f}" if n in ev.metrics else "-" for n in names))
        self._evals_shown = len(snap.evals)

    def _add_sources(self, sources: set[str]) -> None:
        new = sources - self._sources
        if not new:
            return
        self._sources |= new
        select = self.query_one("#log-filter", Select)
        ordered = sorted(self._sources, key=_source_order)
        select.set_options([("all ranks", ALL), *((s, s) for s in ordered)])
        select.value = self.query_one(LogTail).source

    @on(Select.Changed, "#log-filter")
    def _filter(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value != self.query_one(LogTail).source:
            self.query_one(LogTail).filter(event.value)

    @on(TabbedContent.TabActivated)
    def _tab(self, event: TabbedContent.TabActivated) -> None:
        # The tab shows at once with what its widgets last drew; the costly catching up
        # (plotext's drawing, refilling the log view) follows a frame later.
        if event.pane.id == "charts" and self.snapshot is not None:
            self.call_after_refresh(self.query_one(Charts).show, self.snapshot.series, True)
        elif event.pane.id == "logs":
            self.call_after_refresh(self.query_one(LogTail).catch_up)

    # ---- actions ---------------------------------------------------------------------------

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def action_generate(self) -> None:
        checkpoint = self.snapshot.last_checkpoint if self.snapshot else None
        self.app.open_generate(checkpoint)

    def action_stop(self) -> None:
        if self.snapshot is not None and self.snapshot.ended:
            self.notify(f"the job has already ended ({self.snapshot.state})")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.notify("stopping…")
                self._stop()

        self.app.push_screen(ConfirmScreen(f"Stop {self.job.name}? Its ranks get SIGTERM "
                                           "(SIGKILL after 15 s)."), answered)

    @work(thread=True, exclusive=True, group="monitor-action")
    def _stop(self) -> None:
        from mf_tui.jobs import stop_job

        try:
            result = stop_job(self.job)
            self.post_message(ActionDone(result.message))
        except Exception as exc:  # noqa: BLE001 - shown, never raised into the UI
            self.post_message(ActionDone(str(exc), error=True))

    def action_restart(self) -> None:
        from mf_tui.jobs import last_checkpoint

        if self.snapshot is not None and not self.snapshot.ended:
            self.notify("the job is still running; stop it first", severity="warning")
            return
        checkpoint = last_checkpoint(self.job)
        if checkpoint is None:
            self.notify(f"{self.job.name} has no complete checkpoint to restart from",
                        severity="error")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._restart()

        self.app.push_screen(ConfirmScreen(f"Restart {self.job.name} from {checkpoint.name}?"),
                             answered)

    @work(thread=True, exclusive=True, group="monitor-action")
    def _restart(self) -> None:
        from mf_tui.jobs.launch import launch_cwd, shown, start_detached, train_argv

        argv = [*train_argv(self.job / "job.yaml", []), "--resume"]
        try:
            start_detached(argv, self.job, cwd=launch_cwd(self.job))
            self.post_message(ActionDone(f"restarted: {shown(argv)}"))
        except Exception as exc:  # noqa: BLE001
            self.post_message(ActionDone(f"restart failed: {exc}", error=True))

    def on_action_done(self, message: ActionDone) -> None:
        self.notify(message.text, severity="error" if message.error else "information")


def _source_order(source: str) -> tuple[int, int | str]:
    head, _, tail = source.partition(" ")
    return (0, int(tail)) if head == "rank" and tail.isdigit() else (1, source)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
