"""The per-rank table: one row per rank (row key = rank), cells updated only when they change.

Stragglers stand out: a running rank whose throughput is under STRAGGLER_RATIO of the median
rank's, or that is STRAGGLER_STEPS or more behind the leading rank, is marked in yellow; failed
and dead ranks in red.
"""

from __future__ import annotations

import statistics

from rich.text import Text
from textual.widgets import DataTable

from mf_tui.jobs.format import age, number
from mf_tui.jobs.view import JobSnapshot, RankView

# (key, label, width): fixed widths, so a value longer than the first one shown is not cut
COLUMNS = (("rank", "rank", 4), ("state", "state", 11), ("step", "step", 7),
           ("age", "last event", 10), ("tokens_per_s", "tokens/s", 8), ("loss", "loss", 8),
           ("mem", "mem GiB", 7), ("pid", "pid", 8), ("note", "note", None))
STATE_STYLES = {"failed": "bold red", "dead": "bold red", "stalled": "bold yellow",
                "finished": "green", "running": "", "starting": "cyan", "stopped": "magenta"}
STRAGGLER_RATIO = 0.8
STRAGGLER_STEPS = 2


class RankTable(DataTable):
    def __init__(self, **kwargs):
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._cells: dict[tuple[str, str], str] = {}

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    def show(self, snapshot: JobSnapshot) -> None:
        running = [r for r in snapshot.ranks if r.state in ("running", "stalled")]
        speeds = [r.tokens_per_s for r in running if r.tokens_per_s]
        median_speed = statistics.median(speeds) if len(speeds) > 1 else None
        lead = max((r.step for r in running if r.step is not None), default=None)
        for rank in snapshot.ranks:
            row = str(rank.rank)
            cells = self._cells_of(rank, median_speed, lead)
            if row not in self.rows:
                self.add_row(*cells.values(), key=row)
                self._cells.update({(row, k): str(v) for k, v in cells.items()})
                continue
            for column, value in cells.items():
                if self._cells.get((row, column)) != str(value):
                    self._cells[(row, column)] = str(value)
                    self.update_cell(row, column, value, update_width=column == "note")

    @staticmethod
    def _cells_of(rank: RankView, median_speed: float | None, lead: int | None) -> dict:
        slow = (rank.state == "running" and median_speed is not None and rank.tokens_per_s
                is not None and rank.tokens_per_s < STRAGGLER_RATIO * median_speed)
        behind = (rank.state == "running" and lead is not None and rank.step is not None
                  and lead - rank.step >= STRAGGLER_STEPS)
        note = rank.message
        if slow:
            note = note or f"slow: under {STRAGGLER_RATIO:.0%} of the median rank"
        if behind:
            note = note or f"{lead - rank.step} steps behind"
        return {
            "rank": str(rank.rank),
            "state": Text(rank.state_text, style=STATE_STYLES.get(rank.state, "")),
            "step": Text(number(rank.step, "d") if rank.step is not None else "-",
                         style="yellow" if behind else ""),
            "age": age(rank.age),
            "tokens_per_s": Text(number(rank.tokens_per_s, ".0f"), style="yellow" if slow else ""),
            "loss": number(rank.loss),
            "mem": number(rank.mem_gib, ".2f"),
            "pid": str(rank.pid) if rank.pid else "-",
            "note": note,
        }
