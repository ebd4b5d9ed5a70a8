"""Live charts of the job's series (loss, learning rate, grad norm, throughput) with plotext.

A chart redraws only when its series changed and it is on screen, at most MAX_FPS times a
second: plotext renders in Python, and a monitor must stay cheap beside a running job.
"""

from __future__ import annotations

import time

from textual.containers import Grid
from textual_plotext import PlotextPlot

CHARTS = (("loss", "loss (rank 0)"), ("lr", "learning rate"), ("grad_norm", "grad norm"),
          ("tokens_per_s", "tokens/s (all ranks)"))
MAX_FPS = 1.0


class SeriesChart(PlotextPlot):
    def __init__(self, series: str, title: str, **kwargs):
        super().__init__(**kwargs)
        self.series = series
        self.title = title
        self._drawn: tuple[int, float] | None = None  # (points, last value) last drawn
        self._last_draw = 0.0
        self._data_version = 0
        self._rendered: tuple[tuple, object] | None = None

    def on_mount(self) -> None:
        self.plt.title(self.title)

    def show(self, points: tuple[tuple[int, float], ...]) -> bool:
        """Redraw if the points changed (at most MAX_FPS times a second); whether it did."""
        key = (len(points), points[-1][1] if points else 0.0)
        now = time.monotonic()
        if key == self._drawn or now - self._last_draw < 1.0 / MAX_FPS:
            return False
        self._drawn, self._last_draw = key, now
        plt = self.plt
        plt.clear_data()
        plt.title(self.title)
        if points:
            # plotext's cost grows with the points; a braille cell holds 2 columns of dots
            stride = max(1, len(points) // (2 * max(self.size.width, 10)))
            shown = points[::stride] if stride > 1 else points
            if shown[-1] is not points[-1]:
                shown = (*shown, points[-1])
            plt.plot([p[0] for p in shown], [p[1] for p in shown], marker="braille")
        self._data_version += 1
        self.refresh()
        return True

    def render(self):
        # plotext builds the whole figure in Python on every render; a tab switch or a
        # repaint of the screen around the chart should not pay for that again.
        key = (self.size, self._data_version, self.app.theme)
        if self._rendered is None or self._rendered[0] != key:
            self._rendered = (key, super().render())
        return self._rendered[1]


class Charts(Grid):
    DEFAULT_CSS = """
    Charts { grid-size: 2 2; grid-gutter: 0 1; }
    """

    _next = 0  # the chart to look at first on the next call

    def compose(self):
        for series, title in CHARTS:
            yield SeriesChart(series, title, id=f"chart-{series}")

    def show(self, series: dict[str, tuple[tuple[int, float], ...]], all_charts: bool = False,
             ) -> None:
        """Redraw the charts whose series changed: one per call while following a job (plotext
        builds a figure in Python on the UI thread; one at a time keeps a key press from
        waiting for four), every one when the tab is opened."""
        charts = list(self.query(SeriesChart))
        start = self._next
        for i in range(len(charts)):
            chart = charts[(start + i) % len(charts)]
            if chart.show(series.get(chart.series, ())) and not all_charts:
                self._next = (start + i + 1) % len(charts)
                return
