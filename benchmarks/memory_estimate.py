"""mf's memory estimate beside the measured peak of real `mf train` runs on this machine's CPU.

Each row trains a scaled-up debug preset (hidden 512, 4 layers, seq 512, vocab 8192: tensors
dominate MindSpore's own footprint) for 3 steps with `mf train CONFIG --options ...`, in a
fresh process, under dp/mp/pp layouts (mf's launcher starts the ranks), batch sizes and
recompute, for LLaMA (SwiGLU, untied head) and GPT-2 (GELU, tied head). "measured" is the
peak resident size of the busiest process of the run (the largest `ru_maxrss` of the finished
process tree: a rank under mp/pp/dp); "estimate" is what `mf train` itself plans per rank
(`mf_train.plan.run_memory_estimate`: the family's parameters walked with its sharding plan,
plus mf_parallel.memory's CPU model). The first three rows are the ones the CPU constants in
mf_parallel/memory.py were fitted on; the others test them.

    uv run python benchmarks/memory_estimate.py          # about 10 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024**2
LLAMA = ROOT / "configs/llama/run_llama_debug.yaml"
GPT2 = ROOT / "configs/gpt2/run_gpt2_debug.yaml"
# Large enough that tensors dominate, small enough for a laptop CPU.
SHAPE = ["model.model_config.seq_length=512", "model.model_config.hidden_size=512",
         "model.model_config.num_layers=4", "model.model_config.num_heads=8",
         "model.model_config.vocab_size=8192"]
LLAMA_SHAPE = SHAPE + ["model.model_config.n_kv_heads=8",
                       "model.model_config.intermediate_size=1408"]
COMMON = ["do_eval=false", "runner_config.max_steps=3", "callbacks=[{type: MFLossMonitor}]"]

ROWS = [  # (label, run YAML, options)
    ("llama b2", LLAMA, LLAMA_SHAPE + ["runner_config.batch_size=2"]),
    ("llama b4", LLAMA, LLAMA_SHAPE + ["runner_config.batch_size=4"]),
    ("llama b4 seq256", LLAMA, LLAMA_SHAPE + ["runner_config.batch_size=4",
                                              "model.model_config.seq_length=256"]),
    ("llama b4 recompute", LLAMA, LLAMA_SHAPE + ["runner_config.batch_size=4",
                                                 "recompute_config.recompute=true"]),
    ("llama b1", LLAMA, LLAMA_SHAPE + ["runner_config.batch_size=1"]),
    ("gpt2 b4", GPT2, SHAPE + ["runner_config.batch_size=4"]),
    ("gpt2 b2 recompute", GPT2, SHAPE + ["runner_config.batch_size=2",
                                         "recompute_config.recompute=true"]),
    ("llama dp2 b2", LLAMA, LLAMA_SHAPE + ["runner_config.batch_size=2",
                                           "parallel_config.data_parallel=2"]),
    ("llama dp2 b2 optimizer_shard", LLAMA, LLAMA_SHAPE + [
        "runner_config.batch_size=2", "parallel_config.data_parallel=2",
        "parallel_config.optimizer_shard=true"]),
    ("llama mp2 b4", LLAMA, LLAMA_SHAPE + ["runner_config.batch_size=4",
                                           "parallel_config.model_parallel=2"]),
    ("llama pp2 b4 m2 (1F1B)", LLAMA, LLAMA_SHAPE + [
        "runner_config.batch_size=4", "parallel_config.pipeline_stage=2",
        "parallel_config.micro_batch_num=2"]),
    ("gpt2 mp2 b4", GPT2, SHAPE + ["runner_config.batch_size=4",
                                   "parallel_config.model_parallel=2"]),
]


def estimate(config: Path, options: list[str]) -> int:
    """Bytes per rank, as `mf train` plans them."""
    from mf_train.plan import run_memory_estimate
    from mf_train.resolve import resolve_run

    run = resolve_run(config, options, mode="train")
    return run_memory_estimate(run.config, run.model_config, run.parallel).per_device


def measure(config: Path, options: list[str], scratch: Path) -> int:
    """Peak resident bytes of the busiest process of one `mf train` run (run in a child, so
    its RUSAGE_CHILDREN holds this run's processes only)."""
    code = ("import json, resource, subprocess, sys; "
            "r = subprocess.run(json.loads(sys.argv[1]), capture_output=True, text=True); "
            "print(json.dumps([r.returncode, r.stderr[-2000:], "
            "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    argv = [sys.executable, "-m", "mf_tui.cli", "train", str(config), "--options",
            f"output_dir={scratch / 'job'}", "overwrite_output_dir=true", *COMMON, *options]
    out = subprocess.run([sys.executable, "-c", code, json.dumps(argv)], cwd=scratch,
                         capture_output=True, text=True, check=True)
    returncode, stderr, maxrss_kib = json.loads(out.stdout)
    if returncode:
        sys.exit(f"mf train failed ({returncode}) for {options}:\n{stderr}")
    return maxrss_kib * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="run the rows whose label contains this")
    args = parser.parse_args()
    rows = [r for r in ROWS if args.only is None or args.only in r[0]]
    print("mf train, 3 steps, fp32, AdamW, MindSpore 2.10 on CPU; hidden 512, 4 layers, "
          "seq 512, vocab 8192 unless the row says")
    header = f"{'configuration':<30} {'estimate':>10} {'measured':>10} {'meas/est':>8}"
    print(header)
    print("-" * len(header))
    worst = 0.0
    # One scratch directory for every row: the debug YAMLs train their tokenizer into
    # ./output once, and MindSpore may write rank_0/ dumps into the working directory.
    with tempfile.TemporaryDirectory() as scratch:
        for label, config, options in rows:
            predicted = estimate(config, COMMON + options)
            measured = measure(config, options, Path(scratch))
            ratio = measured / predicted
            worst = max(worst, abs(ratio - 1))
            print(f"{label:<30} {predicted / MIB:>6.0f} MiB {measured / MIB:>6.0f} MiB "
                  f"{ratio:>8.2f}", flush=True)
    print(f"largest deviation: {worst:.0%} (target: every row within 30%)")


if __name__ == "__main__":
    main()
