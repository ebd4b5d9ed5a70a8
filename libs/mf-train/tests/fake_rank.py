"""A stand-in for a training rank in the launcher's tests: no MindSpore, only the job directory.

`python fake_rank.py JOB_DIR [--steps N] [--step-seconds S] [--fail-rank R --fail-at K
--fail-code C --fail-message M] [--fail-once FILE]` writes the events a rank writes (start,
one step event per step, end or error) for the rank in RANK_ID, as the real worker does.
With --fail-once, the failure happens only while FILE does not exist (it is created then), so
a restarted job succeeds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from mf_train.jobdir import EventWriter, JobDir


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("job")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--step-seconds", type=float, default=0.05)
    parser.add_argument("--fail-rank", type=int, default=-1)
    parser.add_argument("--fail-at", type=int, default=1)
    parser.add_argument("--fail-code", type=int, default=1)
    parser.add_argument("--fail-message", default="")
    parser.add_argument("--fail-once", default="")
    args = parser.parse_args()
    rank = int(os.environ["RANK_ID"])
    events = EventWriter(JobDir(Path(args.job)), rank)
    events.emit("start", step=0, message=f"fake rank {rank} of {os.environ['MS_WORKER_NUM']}")
    fails = rank == args.fail_rank and not (args.fail_once and Path(args.fail_once).exists())
    for step in range(1, args.steps + 1):
        if fails and step == args.fail_at:
            if args.fail_once:
                Path(args.fail_once).touch()
            if args.fail_message:
                events.emit("error", step=step, message=args.fail_message)
            print(f"rank {rank}: failing at step {step}", file=sys.stderr, flush=True)
            return args.fail_code
        time.sleep(args.step_seconds)
        events.emit("step", step=step, loss=1.0 / step)
    events.emit("end", step=args.steps, message="done")
    events.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
