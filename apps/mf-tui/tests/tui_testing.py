"""Test helpers of mf-tui (a module name no other package's tests use): job directories
written by hand in the exact schema the readers follow (schema 1, and the older one before
it), so the reader, the CLI and the app are tested without training."""

from __future__ import annotations

import json
from pathlib import Path

T0 = 1_800_000_000.0  # a fixed start time: snapshots and ages do not depend on the clock
STEP_SECONDS = 2.0
KEYS = ("schema", "ts", "rank", "kind", "step", "epoch", "loss", "lr", "grad_norm",
        "tokens_per_s", "mem_gib", "metrics", "path", "pid", "host", "message")


def event(kind: str, rank: int, ts: float, **fields) -> dict:
    record = {key: None for key in KEYS}
    record.update(schema=1, ts=ts, rank=rank, kind=kind, **fields)
    return record


def old_event(kind: str, rank: int, ts: float, **fields) -> dict:
    """An event as mf-train wrote it before schema 1 (no schema/metrics/path/pid/host)."""
    record = event(kind, rank, ts, **fields)
    for key in ("schema", "metrics", "path", "pid", "host"):
        record.pop(key)
    return record


def append(path: Path, records: list[dict], torn: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
        handle.write(torn)


def step_events(rank: int, steps: range, speed: float = 1000.0, ts0: float = T0) -> list[dict]:
    return [event("step", rank, ts0 + 5 + STEP_SECONDS * s, step=s, epoch=0.0,
                  loss=7.0 - 0.1 * s, lr=1e-3, grad_norm=0.5, tokens_per_s=speed,
                  mem_gib=0.8) for s in steps]


def write_job(root: Path, *, ranks: int = 2, steps: int = 5, state: str = "running",
              host: str = "node-a", pids: dict[int, int | None] | None = None,
              launcher_pid: int | None = None, finished: bool = False,
              speeds: dict[int, float] | None = None) -> Path:
    """A schema-1 job directory; ranks ran `steps` steps, rank 0 evaluated at step 0."""
    root.mkdir(parents=True, exist_ok=True)
    (root / ".mf-job").write_text(json.dumps({"schema": 1, "created": T0}))
    (root / "job.yaml").write_text(f"output_dir: {root}\nparallel_config:\n"
                                   f"  data_parallel: {ranks}\n")
    (root / "launch.json").write_text(json.dumps({"argv": ["mf", "train", "x.yaml"],
                                                  "start_time": T0, "host": host,
                                                  "pid": launcher_pid or 4242}))
    (root / "plan.json").write_text(json.dumps({"schema": 1, "world_size": ranks}))
    pids = pids or {}
    rank_states = {}
    for rank in range(ranks):
        rank_state = "finished" if finished else "running"
        rank_states[str(rank)] = {"pid": pids.get(rank, 5000 + rank), "host": host,
                                  "state": rank_state, "exit_code": 0 if finished else None,
                                  "log": f"logs/worker_{rank}.log"}
        records = [event("start", rank, T0 + 1, step=0, pid=pids.get(rank, 5000 + rank),
                         host=host, message=f"training {steps} steps")]
        if rank == 0:
            records.append(event("eval", 0, T0 + 3, step=0, epoch=0.0,
                                 metrics={"loss": 7.1, "perplexity": 1211.97}))
        records += step_events(rank, range(1, steps + 1), (speeds or {}).get(rank, 1000.0))
        if finished:
            folder = root / "checkpoints" / f"checkpoint-{steps}"
            records.append(event("checkpoint", rank, T0 + 6 + STEP_SECONDS * steps,
                                 step=steps, path=str(folder)))
            records.append(event("end", rank, T0 + 7 + STEP_SECONDS * steps, step=steps,
                                 message="done in 20.0 s"))
        append(root / "events" / f"rank_{rank}.jsonl", records)
        log = root / "logs" / f"worker_{rank}.log"
        log.parent.mkdir(exist_ok=True)
        log.write_text("".join(f"[rank {rank}] step {s}/{steps} | loss {7.0 - 0.1 * s:.4f}\n"
                               for s in range(1, steps + 1)))
    status = {"schema": 1, "state": "finished" if finished else state, "step": steps,
              "total_steps": 10, "updated": T0 + 5 + STEP_SECONDS * steps, "message": "",
              "exit_code": 0 if finished else None,
              "launcher": {"pid": launcher_pid or 4242, "host": host}, "ranks": rank_states}
    (root / "status.json").write_text(json.dumps(status))
    return root


def write_old_job(root: Path, steps: int = 4) -> Path:
    """A job directory as mf-train wrote them before schema 1 (one pid, metrics as text)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "job.yaml").write_text("parallel_config:\n  data_parallel: 1\n")
    (root / "launch.json").write_text(json.dumps({"argv": ["mf"], "start_time": T0,
                                                  "host": "old-host", "pid": 7541}))
    (root / "status.json").write_text(json.dumps({"state": "finished", "step": steps,
                                                  "total_steps": steps, "pid": 7541,
                                                  "updated": T0 + 60, "message": ""}))
    records = [old_event("start", 0, T0 + 1, step=0, epoch=0, message="4 steps, world 1"),
               old_event("eval", 0, T0 + 2, step=0, epoch=0, loss=6.9246,
                         message="loss 6.9246, perplexity 1016.9979")]
    records += [old_event("step", 0, T0 + 5 + s, step=s, epoch=0, loss=7.0 - 0.1 * s, lr=1e-3,
                          grad_norm=0.8, tokens_per_s=8000.0, mem_gib=0.82)
                for s in range(1, steps + 1)]
    records += [old_event("eval", 0, T0 + 20, step=steps, epoch=0, loss=6.3625,
                          message="loss 6.3625, perplexity 579.6724"),
                old_event("checkpoint", 0, T0 + 21, step=steps, epoch=0,
                          message=str(root / "checkpoints" / f"checkpoint-{steps}")),
                old_event("end", 0, T0 + 22, step=steps, epoch=0, message="done in 17.2 s")]
    append(root / "events" / "rank_0.jsonl", records)
    (root / "logs").mkdir(exist_ok=True)
    (root / "logs" / "worker_0.log").write_text("[rank 0] eval at step 0: loss 6.9246\n")
    return root


def fixed_clock(seconds_after_t0: float):
    return lambda: T0 + seconds_after_t0
