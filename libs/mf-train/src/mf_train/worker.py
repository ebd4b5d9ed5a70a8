"""One rank of a data-parallel job: `msrun ... worker.py --config C --mode M --job DIR`.

Started by `mf_train.jobs.launch_data_parallel`, which has already checked the run and created
the job directory; every rank joins the cluster, trains its share of each global batch and
writes its own events and log into that directory. A failure is recorded in status.json (by
rank 0) and in the rank's event log, so the launcher can report the one line that matters.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, this file's folder (mf_train/) heads sys.path, and its modules (data,
    # optim, loop, ...) would shadow any top-level package of the same name: drop it.
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mf_train.worker")
    parser.add_argument("--config", required=True)
    parser.add_argument("--mode", required=True, choices=["train", "finetune"])
    parser.add_argument("--job", required=True)
    parser.add_argument("--option", action="append", default=[])
    args = parser.parse_args(argv)
    try:
        from mf_train.jobs import load_job_config, pet_method_of
        from mf_train.trainer import Trainer

        config = load_job_config(args.config, args.option, args.mode)
        trainer = Trainer(args=config, pet_method=pet_method_of(config), log_to_console=False)
        trainer._job_exists = True
        if args.mode == "train":
            trainer.train(argv=sys.argv)
        else:
            trainer.finetune(argv=sys.argv)
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
    if world.rank == 0 and job.read_status().get("state") != "failed":
        job.write_status("failed", message=message, exit_code=code)
    print(f"rank {world.rank}: error: {message}", file=sys.stderr, flush=True)
    if code == 1:
        import traceback

        traceback.print_exception(exc)
    return code if isinstance(code, int) else 1


if __name__ == "__main__":
    sys.exit(main())
