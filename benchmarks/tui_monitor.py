"""Does the monitor keep up? 8 ranks writing 20 events/s each while keys are pressed.

A writer process appends schema-1 step events (and a log line per step) for 8 ranks at 20
events per second each to a job directory; the app runs headless in this process on the
monitor of that job. Printed, from one run:

- key-press response: from a key press (switching tabs) until the first frame that shows the
  tab is written, median and worst of 24 presses (target: under 100 ms);
- the app's CPU use over 10 s (this process only; the writer is another), on the ranks tab
  and on the charts tab (target: under 15% of one core);
- the floor: the CPU that reading and parsing the same lines costs alone.

    uv run python benchmarks/tui_monitor.py
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RANKS = 8
RATE = 20.0  # events per second per rank
WINDOW = 10.0  # seconds of CPU measurement
KEYS = ("2", "3", "4", "1")
TABS = {"1": "ranks", "2": "charts", "3": "evals", "4": "logs"}

WRITER = r"""
import json, sys, time
root, ranks, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
events = [open(f"{root}/events/rank_{r}.jsonl", "a") for r in range(ranks)]
logs = [open(f"{root}/logs/worker_{r}.log", "a") for r in range(ranks)]
keys = ("schema", "ts", "rank", "kind", "step", "epoch", "loss", "lr", "grad_norm",
        "tokens_per_s", "mem_gib", "metrics", "path", "pid", "host", "message")
step, start = 0, time.time()
while True:
    step += 1
    now = time.time()
    for r in range(ranks):
        record = dict.fromkeys(keys)
        record.update(schema=1, ts=now, rank=r, kind="step", step=step, epoch=0.0,
                      loss=7.0 / (1 + step / 500), lr=1e-3, grad_norm=0.8,
                      tokens_per_s=1000.0 - 300 * (r == 5), mem_gib=0.8)
        events[r].write(json.dumps(record) + "\n"); events[r].flush()
        logs[r].write(f"[rank {r}] step {step} | loss {record['loss']:.4f}\n"); logs[r].flush()
    time.sleep(max(0.0, start + step / rate - time.time()))
"""


def make_job(root: Path, writer_pid: int) -> None:
    (root / ".mf-job").write_text(json.dumps({"schema": 1, "created": time.time()}))
    (root / "job.yaml").write_text(f"parallel_config:\n  data_parallel: {RANKS}\n")
    host = platform.node()
    (root / "launch.json").write_text(json.dumps({"argv": ["bench"], "start_time": time.time(),
                                                  "host": host, "pid": writer_pid}))
    ranks = {str(r): {"pid": writer_pid, "host": host, "state": "running", "exit_code": None}
             for r in range(RANKS)}
    (root / "status.json").write_text(json.dumps({
        "schema": 1, "state": "running", "step": 0, "total_steps": None, "updated": time.time(),
        "message": "", "exit_code": None, "launcher": {"pid": writer_pid, "host": host},
        "ranks": ranks}))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(root: Path) -> dict[str, float | list[float]]:
    from mf_tui.app import MFApp

    app = MFApp(job=root, root=root.parent)
    out: dict[str, float | list[float]] = {}
    async with app.run_test(size=(160, 48)) as pilot:
        await asyncio.sleep(3.0)  # warm up: the monitor catches up with the files
        for tab in ("1", "2"):
            await pilot.press(tab)
            await asyncio.sleep(1.0)
            cpu0, wall0 = cpu_seconds(), time.perf_counter()
            await asyncio.sleep(WINDOW)
            out[f"cpu_{TABS[tab]}"] = (cpu_seconds() - cpu0) / (time.perf_counter() - wall0)
        from textual.widgets import TabbedContent

        tabs = app.screen.query_one(TabbedContent)
        painted: list[float] = []
        display = app._display

        def display_and_time(screen, renderable):  # each frame written to the terminal
            display(screen, renderable)
            painted.append(time.perf_counter())

        app._display = display_and_time
        await pilot.press("1")  # every measured press below changes the tab
        await asyncio.sleep(1.0)
        times, cpu, per_tab = [], [], {}
        for i in range(24):
            key = KEYS[i % len(KEYS)]
            cpu0 = cpu_seconds()
            start = time.perf_counter()
            app.simulate_key(key)  # as the terminal driver posts a key press
            while tabs.active != TABS[key]:
                await asyncio.sleep(0.001)
            switched = time.perf_counter()
            while not any(t > switched for t in painted):
                await asyncio.sleep(0.001)
            times.append(next(t for t in painted if t > switched) - start)
            cpu.append(cpu_seconds() - cpu0)
            per_tab.setdefault(TABS[key], []).append(times[-1])
            await asyncio.sleep(0.4)
        out["keys"] = times
        out["keys_in_order"] = list(times)
        out["key_cpu"] = cpu
        out["per_tab"] = {tab: statistics.median(t) for tab, t in per_tab.items()}
        snapshot = app.screen.snapshot
        out["steps_seen"] = float(min(r.step or 0 for r in snapshot.ranks))
    return out


def parse_floor(root: Path) -> float:
    """CPU share that reading and parsing the same event and log lines alone would cost."""
    from mf_tui.jobs.records import parse_line

    lines = [line for r in range(RANKS)
             for line in (root / "events" / f"rank_{r}.jsonl").read_bytes().splitlines()]
    logs = [line for r in range(RANKS)
            for line in (root / "logs" / f"worker_{r}.log").read_bytes().splitlines()]
    start = time.process_time()
    for line in lines:
        parse_line(line)
    for line in logs:
        line.decode("utf-8", errors="replace")
    seconds = time.process_time() - start
    per_line = seconds / max(1, len(lines))
    return per_line * RANKS * RATE


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mf-tui-bench-") as tmp:
        root = Path(tmp) / "job"
        root.mkdir()
        (root / "events").mkdir()
        (root / "logs").mkdir()
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(RANKS),
                                   str(RATE)])
        try:
            make_job(root, writer.pid)  # the writer stands in for the job's launcher
            results = asyncio.run(measure(root))
        finally:
            writer.kill()
            writer.wait()
        floor = parse_floor(root)
    keys = sorted(results["keys"])
    print(f"mf tui monitor, {RANKS} ranks x {RATE:.0f} events/s ({RANKS * RATE:.0f} event "
          f"lines + {RANKS * RATE:.0f} log lines per second), headless at 160x48, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'':28}{'mf tui':>12}{'target':>12}{'floor':>12}")
    print(f"{'key press, median (ms)':28}{1000 * statistics.median(keys):>12.1f}{'< 100':>12}"
          f"{'':>12}")
    print(f"{'key press, worst of 24 (ms)':28}{1000 * keys[-1]:>12.1f}{'< 100':>12}{'':>12}")
    print(f"{'key press, CPU median (ms)':28}{1000 * statistics.median(results['key_cpu']):>12.1f}"
          f"{'':>12}{'':>12}")
    print("median by tab (ms): " + ", ".join(f"{tab} {1000 * t:.0f}"
                                             for tab, t in results["per_tab"].items()))
    print("every press in order (ms): " + " ".join(f"{1000 * t:.0f}"
                                                   for t in results["keys_in_order"]))
    for tab in ("ranks", "charts"):
        print(f"{'CPU, ' + tab + ' tab (% core)':28}{100 * results['cpu_' + tab]:>12.1f}"
              f"{'< 15':>12}{100 * floor:>12.2f}")
    print("floor: parsing the same lines alone; the monitor read up to step "
          f"{results['steps_seen']:.0f} of every rank")


if __name__ == "__main__":
    main()
