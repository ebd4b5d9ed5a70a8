"""The one structured per-step log line (torchtitan-style fixed keys), and its parser.

    step 120/300 | loss 3.2150 | lr 2.500e-04 | grad_norm 0.8123 | tokens/s 1534 | mem 1.25 GiB

Written to logs/worker_<rank>.log and the console; the TUI reads the JSON events instead, but
the line parses back (`parse_step_line`) so a log alone is still machine-readable.
"""

from __future__ import annotations

import math
import re
from typing import Any


def _num(value: float | None, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return format(value, spec)


def format_step_line(step: int, total_steps: int | None, loss: float | None,
                     lr: float | None, grad_norm: float | None, tokens_per_s: float | None,
                     mem_gib: float | None) -> str:
    total = "?" if total_steps is None else str(total_steps)
    return (f"step {step}/{total} | loss {_num(loss, '.4f')} | lr {_num(lr, '.3e')} | "
            f"grad_norm {_num(grad_norm, '.4f')} | tokens/s {_num(tokens_per_s, '.0f')} | "
            f"mem {_num(mem_gib, '.2f')} GiB")


_LINE = re.compile(
    r"step (?P<step>\d+)/(?P<total>\d+|\?) \| loss (?P<loss>\S+) \| lr (?P<lr>\S+) \| "
    r"grad_norm (?P<grad_norm>\S+) \| tokens/s (?P<tokens_per_s>\S+) \| mem (?P<mem_gib>\S+) GiB")


def parse_step_line(line: str) -> dict[str, Any] | None:
    """The fields of a step line found in `line` (None if there is none)."""
    match = _LINE.search(line)
    if match is None:
        return None
    out: dict[str, Any] = {"step": int(match["step"]),
                           "total_steps": None if match["total"] == "?" else int(match["total"])}
    for key in ("loss", "lr", "grad_norm", "tokens_per_s", "mem_gib"):
        text = match[key]
        out[key] = None if text == "-" else float(text)
    return out
