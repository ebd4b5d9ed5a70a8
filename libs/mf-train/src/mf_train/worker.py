"""One rank of a job: `msrun ... worker.py --job DIR`.

Started by mf's launcher (`mf_train.launch`, `supervisor`) that has already planned the run and
created the job directory. Every rank resolves the run from the job's job.yaml (the run the
launcher checked, never the user's YAML again), joins the cluster, trains its share of each
global batch and writes its own events and log into that directory. A failure is recorded in
the rank's event log (and status.json by rank 0 when no supervisor owns it), so the launcher
can report the one line that matters.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, this file's folder (mf_train/) heads sys.path, and its modules (data,
    # optim, loop, ...) would shadow any top-level package of the same name: drop it.
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mf_train.worker")
    parser.add_argument("--job", required=True, help="the job directory the launcher made")
    args = parser.parse_args(argv)
    try:
        from mf_train.resolve import resolve_job
        from mf_train.session import RunSession

        run = resolve_job(args.job)
        if run.mode not in ("train", "finetune"):
            from mf_train.errors import TrainConfigError

            raise TrainConfigError(f"{args.job}: run_mode {run.mode!r}; ranks train or "
                                   "finetune")
        RunSession(run, echo=False).fit(argv=sys.argv, job_exists=True)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a status and an exit code
        return _report(exc, args.job)
    return 0


def _report(exc: BaseException, job_root: str) -> int:
    from mf_train.distributed import current_world
    from mf_train.jobdir import JobDir

    code = getattr(exc, "exit_code", 1)
    message = " ".join(str(exc).split()) or type(exc).__name__
    world = current_world()
    job = JobDir(job_root)
    if world.rank == 0 and os.environ.get("MF_SUPERVISED") != "1" \
            and job.read_status().get("state") != "failed":
        job.write_status("failed", message=message, exit_code=code)
    print(f"rank {world.rank}: error: {message}", file=sys.stderr, flush=True)
    if code == 1:
        import traceback

        traceback.print_exception(exc)
    return code if isinstance(code, int) else 1


if __name__ == "__main__":
    sys.exit(main())
