"""How job values read in a table: short, aligned, '-' for what is not known."""

from __future__ import annotations

import math


def number(value: float | None, spec: str = ".4f") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return format(value, spec)


def age(seconds: float | None) -> str:
    """Seconds as '4s', '3m05s', '2h01m'."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    return f"{int(seconds // 86400)}d{int(seconds % 86400 // 3600):02d}h"


def metrics(values: dict[str, float] | None) -> str:
    if not values:
        return "-"
    return ", ".join(f"{name} {number(value)}" for name, value in values.items())


def progress(step: int | None, total: int | None) -> str:
    if step is None:
        return "-"
    return f"{step}/{total}" if total else str(step)
