"""Parallel training speed on this machine, from one run: data-parallel scaling, and what model
and pipeline parallelism cost per step against one process, with where the time goes.

A LLaMA decoder (4 layers, width 512, 8 heads, ffn 1408, vocab 8192, seq 256, fp32, AdamW,
clipping at 1.0), mf-train's compiled step. Every rank gets one CPU core (MindSpore's kernel
threads = cores per rank), so "one device" is one core:

- 1 device: one process, 1 kernel thread, batch B;
- dp 2: two ranks under msrun, batch B each (twice the tokens per step); scaling efficiency =
  tokens/s(dp 2) / (2 x tokens/s(1 device));
- mp 2 and pp 2 (4 micro batches, 1F1B): two ranks on the same global batch B as one device,
  so their step time is comparable with it directly (model/pipeline parallelism trade speed
  for memory per device; on CPU, with collectives built from AllReduce, they cost time).

Where the time goes, per rank: for pp, host clocks around the compiled stage graphs and the
hand-overs (which include waiting for the other stage: the bubble); for mp and dp, whose
collectives run inside the compiled step, the same collectives (count and shapes read from the
sharded model or the gradients) timed alone in this run, subtracted from the step.

    uv run python benchmarks/scaling.py [--steps 4]      # a few minutes on 2 cores

The machine is shared: read `uptime` before trusting a figure; compare rows of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHAPE = dict(num_layers=4, hidden_size=512, num_heads=8, intermediate_size=1408,
             vocab_size=8192, seq_length=256)
BATCH = 4
MIB = 2**20
LAYOUTS = {  # name: (dp, mp, pp, micro batches, rows per micro batch and rank, optimizer_shard)
    "dp2": (2, 1, 1, 1, BATCH, False),
    "dp2_optimizer_shard": (2, 1, 1, 1, BATCH, True),
    "mp2": (1, 2, 1, 1, BATCH, False),
    "pp2": (1, 1, 2, 4, BATCH // 4, False),
}
# Kernels run inline (mf's runtime default): host clocks time them.
ENV = {"MS_DEV_HOST_BLOCKING_RUN": "1", "MF_BIND_CORES": "1"}  # mf's defaults for its ranks


def _setup(threads: int):
    import mindspore as ms
    from mf_parallel.runtime import apply_runtime_defaults

    apply_runtime_defaults()
    ms.set_context(mode=ms.PYNATIVE_MODE)
    from mindspore.device_context.cpu import op_tuning

    op_tuning.threads_num(threads)  # one core per "device" here, whatever mf's default says


def _model():
    from mf_models import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(**SHAPE), seed=0)


def _batches(count: int, rows: int):
    import numpy as np

    rng = np.random.default_rng(0)
    return [rng.integers(0, SHAPE["vocab_size"], (rows, SHAPE["seq_length"] + 1))
            .astype(np.int32) for _ in range(count)]


def _adamw() -> dict:
    return dict(beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1)


def single(steps: int, threads: int) -> dict:
    """One process on `threads` cores: seconds per step of batch BATCH."""
    import numpy as np
    from mf_train.optim import build_adamw
    from mf_train.train_step import TrainStep

    _setup(threads)
    model = _model()
    optimizer = build_adamw(model.trainable_params(), np.full(steps + 1, 1e-4, np.float32),
                            **_adamw())
    step = TrainStep(model, optimizer)
    batches = _batches(steps + 1, BATCH)
    step.step([batches[0]])  # compiles
    start = time.perf_counter()
    for batch in batches[1:]:
        step.step([batch])
    return {"step_s": (time.perf_counter() - start) / steps}


def _time_collectives(reduce, tensors, repeats: int = 5) -> float:
    """Seconds of one compiled pass of `reduce` over every tensor (after a compiling call)."""
    import mindspore as ms
    from mindspore import nn

    class Each(nn.Cell):
        def __init__(self):
            super().__init__()
            self.reduce = reduce

        def construct(self, xs):
            out = []
            for x in xs:
                out.append(self.reduce(x))
            return out

    each = Each()
    fn = ms.jit(each.construct)
    fn(tensors)  # compiles
    start = time.perf_counter()
    for _ in range(repeats):
        out = fn(tensors)
    _ = [o.asnumpy() for o in out]
    return (time.perf_counter() - start) / repeats


def _in_graph_collectives(step, layout: str) -> float:
    """Seconds per step of the collectives compiled into the step, timed alone."""
    import numpy as np
    from mf_models.parallel import ColumnParallel, RowParallel
    from mf_parallel.collectives import AllReduce
    from mindspore import Tensor

    part = step.part
    if layout.startswith("dp2"):  # one AllReduce per gradient (and the loss)
        grads = tuple(Tensor(np.ones(p.shape, np.float32)) for p in part.params)
        return _time_collectives(AllReduce(part.groups.dp), grads)
    # mp: f (backward) of each column-parallel Linear over its input, g (forward) of each
    # row-parallel one over its output; per micro batch, on (rows * seq, features)
    tokens = BATCH * SHAPE["seq_length"]
    sizes = [c.inner.weight.shape[1 if c.inner.transpose_b else 0]
             for _, c in part.model.cells_and_names() if isinstance(c, ColumnParallel)]
    sizes += [c.inner.out_features for _, c in part.model.cells_and_names()
              if isinstance(c, RowParallel)]
    tensors = tuple(Tensor(np.ones((tokens, n), np.float32)) for n in sizes)
    return _time_collectives(AllReduce(part.groups.mp), tensors)


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _settle() -> None:
    """Return freed heap to the OS and reset the peak resident size (Linux, glibc)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    except OSError:
        pass


def rank_main(out: Path, layout: str, steps: int) -> None:
    """One rank of one layout under msrun: time its steps; rank 0 writes the figures."""
    import numpy as np
    from mf_parallel import ContextConfig, ParallelConfig, init_context
    from mf_parallel.runtime import bind_rank_cores
    from mf_train.parallel_step import build_parallel_step

    rank, world = init_context(use_parallel=True,
                               context_config=ContextConfig(mode=1, device_target="CPU"))
    bind_rank_cores()  # mf's default (MF_BIND_CORES=1), off in the "dp2, unbound" run
    _setup(1)
    dp, mp, pp, micro, rows, shard = LAYOUTS[layout]
    config = ParallelConfig(data_parallel=dp, model_parallel=mp, pipeline_stage=pp,
                            micro_batch_num=micro, optimizer_shard=shard).resolve(world)
    step = build_parallel_step(_model(), config, rank,
                               learning_rates=np.full(steps + 1, 1e-4, np.float32),
                               adamw=_adamw(), micro_batches=micro)
    batches = _batches(steps + 1, rows * micro)
    step.step(np.split(batches[0], micro))  # compiles
    _settle()
    seconds = {"compute": 0.0, "hand_over": 0.0}
    start = time.perf_counter()
    for batch in batches[1:]:
        step.step(np.split(batch, micro))
        for key, value in getattr(step, "last_seconds", {}).items():
            seconds[key] += value / steps
    step_s = (time.perf_counter() - start) / steps
    peak_rss = _rss_kib("VmHWM") * 1024
    state = sum(p.nbytes for p in step.optimizer.get_parameters()
                if p.name.startswith(("adam_m.", "adam_v.")))
    collectives = seconds["hand_over"] if pp > 1 else _in_graph_collectives(step, layout)
    if rank == 0:
        (out / f"{layout}.json").write_text(json.dumps({
            "step_s": step_s, "collectives_s": collectives, "peak_rss": peak_rss,
            "optimizer_state": state, "tokens": rows * micro * dp * SHAPE["seq_length"]}))


def _child(args: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as scratch:  # MindSpore may write rank_0/ dumps here
        result = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args],
                                capture_output=True, text=True, cwd=scratch,
                                env={**os.environ, **ENV})
    if result.returncode:
        sys.exit(f"{args} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--single", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rank-out", help=argparse.SUPPRESS)
    parser.add_argument("--layout", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        print(json.dumps(single(args.steps, args.single)))
        return
    if args.rank_out:
        rank_main(Path(args.rank_out), args.layout, args.steps)
        return

    from mf_parallel.local import run_local

    tokens = BATCH * SHAPE["seq_length"]
    print(f"LLaMA {SHAPE}, batch {BATCH} x seq {SHAPE['seq_length']}, fp32, AdamW; "
          f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    one = _child(["--single", "1", "--steps", str(args.steps)])
    machine = _child(["--single", str(os.cpu_count() or 1), "--steps", str(args.steps)])
    ranks = {}
    with tempfile.TemporaryDirectory() as scratch:
        for layout in LAYOUTS:  # a fresh pair of processes each: clean memory figures
            run_local(Path(__file__).resolve(),
                      ["--rank-out", scratch, "--layout", layout, "--steps", str(args.steps)],
                      workers=2, log_dir=Path(scratch) / f"logs_{layout}", timeout=3600,
                      env=ENV)
            ranks[layout] = json.loads((Path(scratch) / f"{layout}.json").read_text())
        # the same dp 2 run without pinning each rank to its own core (MF_BIND_CORES=0)
        (Path(scratch) / "bound").mkdir()
        run_local(Path(__file__).resolve(),
                  ["--rank-out", f"{scratch}/bound", "--layout", "dp2", "--steps",
                   str(args.steps)], workers=2, log_dir=Path(scratch) / "logs_bound",
                  timeout=3600, env={**ENV, "MF_BIND_CORES": "0"})
        bound = json.loads((Path(scratch) / "bound" / "dp2.json").read_text())

    def row(name: str, step_s: float, tokens: int, collectives: float | None = None) -> None:
        where = ("" if collectives is None else
                 f"{step_s - collectives:>8.2f} s {collectives:>8.2f} s "
                 f"({collectives / step_s:>4.0%})")
        print(f"{name:<28} {step_s:>7.2f} s {tokens / step_s:>9.0f}  {where}")

    print(f"{'layout':<28} {'step':>9} {'tokens/s':>9}  {'compute':>10} {'collectives':>10}")
    row("1 device (1 core)", one["step_s"], tokens)
    row(f"1 process ({os.cpu_count()} cores)", machine["step_s"], tokens)
    for name in LAYOUTS:
        r = ranks[name]
        row(f"{name} (2 ranks, 1 core each)", r["step_s"], r["tokens"], r["collectives_s"])
    row("dp2, ranks not bound to cores", bound["step_s"], bound["tokens"],
        bound["collectives_s"])
    dp_rate = ranks["dp2"]["tokens"] / ranks["dp2"]["step_s"]
    print(f"data-parallel scaling efficiency: {dp_rate / (2 * tokens / one['step_s']):.0%} "
          f"(dp 2 tokens/s over 2 x one device's)")
    for name in ("mp2", "pp2"):
        print(f"{name}: a step of the same global batch costs "
              f"{ranks[name]['step_s'] / one['step_s']:.2f}x one device's")
    whole, shard = ranks["dp2"], ranks["dp2_optimizer_shard"]
    print(f"optimizer_shard, rank 0: AdamW state {whole['optimizer_state'] / MIB:.0f} -> "
          f"{shard['optimizer_state'] / MIB:.0f} MiB, peak resident "
          f"{whole['peak_rss'] / MIB:.0f} -> {shard['peak_rss'] / MIB:.0f} MiB")


if __name__ == "__main__":
    main()
