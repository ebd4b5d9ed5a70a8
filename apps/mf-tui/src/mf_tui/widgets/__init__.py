"""The widgets of the monitor: the per-rank table, the metric charts, the log tail."""
