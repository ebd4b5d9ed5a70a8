"""Event records of `events/rank_<r>.jsonl`, schema 1 and the older records before it.

Schema 1 (the job directory's seam, written by mf-train) has exactly these keys, in this order:
schema, ts, rank, kind, step, epoch, loss, lr, grad_norm, tokens_per_s, mem_gib, metrics, path,
pid, host, message. Older records had no schema/metrics/path/pid/host: an eval carried its
metrics only as message text ("loss 4.0258, perplexity 56.0277") and a checkpoint its folder as
the message. `normalize` turns either into one dict with every key, values of the wrong type
dropped to None, so no reader ever trips over a garbled field.
"""

from __future__ import annotations

import json
import math
from typing import Any

SCHEMA = 1
EVENT_KEYS = ("schema", "ts", "rank", "kind", "step", "epoch", "loss", "lr", "grad_norm",
              "tokens_per_s", "mem_gib", "metrics", "path", "pid", "host", "message")
KINDS = ("start", "step", "eval", "checkpoint", "end", "error")
_FLOATS = ("ts", "epoch", "loss", "lr", "grad_norm", "tokens_per_s", "mem_gib")
_INTS = ("schema", "rank", "step", "pid")
_STRINGS = ("path", "host", "message")


def parse_line(raw: bytes) -> dict[str, Any] | None:
    """One complete line -> a normalized event, or None for a line that is not one."""
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict) or record.get("kind") not in KINDS:
        return None
    return normalize(record)


def normalize(record: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = {key: None for key in EVENT_KEYS}
    event["kind"] = record["kind"]
    for key in _FLOATS:
        event[key] = _number(record.get(key))
    for key in _INTS:
        value = _number(record.get(key))
        whole = value is not None and math.isfinite(value) and value == int(value)
        event[key] = int(value) if whole else None
    for key in _STRINGS:
        value = record.get(key)
        event[key] = value if isinstance(value, str) else None
    metrics = record.get("metrics")
    if isinstance(metrics, dict):
        event["metrics"] = {str(k): v for k, v in metrics.items() if _number(v) is not None}
    if event["schema"] is None:  # an older record: what it said in words
        if event["kind"] == "eval":
            event["metrics"] = parse_metrics_text(event["message"] or "")
        elif event["kind"] == "checkpoint" and event["path"] is None:
            event["path"] = event["message"]
    return event


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)  # NaN stays: a NaN loss is news, not noise


def parse_metrics_text(text: str) -> dict[str, float]:
    """`"loss 4.0258, perplexity 56.0277"` (an older eval record's message) -> a dict."""
    out: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.strip().rpartition(" ")
        try:
            number = float(value)
        except ValueError:
            continue
        if name:
            out[name] = number
    return out
