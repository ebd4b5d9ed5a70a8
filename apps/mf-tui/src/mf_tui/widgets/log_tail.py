"""The log tail of a job: every rank's log (and the launcher's console), filtered by rank.

Lines are kept in a bounded buffer tagged by their source, so changing the filter redraws from
memory; new lines scroll the view only when the reader is at its end (reading back is not
interrupted). While the tail is not on screen, lines only go to the buffer and the view
catches up when it is shown.
"""

from __future__ import annotations

from collections import deque

from textual.widgets import Log

ALL = "all"
KEPT_LINES = 2000


class LogTail(Log):
    def __init__(self, **kwargs):
        super().__init__(max_lines=KEPT_LINES, auto_scroll=False, **kwargs)
        self.lines_kept: deque[tuple[str, str]] = deque(maxlen=KEPT_LINES)
        self.source = ALL
        self._behind = False  # lines came while hidden

    def add(self, lines: list[tuple[str, str]], visible: bool = True) -> None:
        self.lines_kept.extend(lines)
        if not visible:
            self._behind = True
            return
        if self._behind:
            self.catch_up()
            return
        shown = [text for source, text in lines if self.source in (ALL, source)]
        if shown:
            self.write_lines(shown, scroll_end=self.is_vertical_scroll_end)

    def catch_up(self) -> None:
        if self._behind:
            self._behind = False
            self.filter(self.source)

    def filter(self, source: str) -> None:
        self.source = source
        self.clear()
        self.write_lines([text for src, text in self.lines_kept if source in (ALL, src)],
                         scroll_end=True)
