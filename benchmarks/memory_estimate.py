"""mf-parallel's memory estimate beside the measured peak of a real MindSpore training step.

A LLaMA-style decoder (the one `mf_parallel.memory` counts: embedding, RMSNorm, Q/K/V/O, gated
MLP, final norm, untied LM head; no RoPE, which keeps nothing for backward) trains on one
process in fp32 with AdamW, the step compiled with `ms.jit`, as mf trains. Each configuration
runs in a fresh process, which reports its resident memory (Linux /proc):

- base: after importing MindSpore, before any parameter exists;
- peak: the highest resident size during steady steps (the peak is reset after the first
  step, which also compiles the graph, once freed heap is returned to the OS).

"measured" is peak - base: weights, gradients, optimizer states, activations and whatever the
framework keeps on top (temporaries, memory-pool slack). The estimate counts the first four.
The activations per extra sample (the slope between two batch sizes) cancel everything that
does not grow with the batch.

    uv run python benchmarks/memory_estimate.py          # about 2 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import ctypes
import json
import subprocess
import sys
import tempfile
from pathlib import Path

MIB = 1024**2
STEPS = 3  # the first compiles; the others are steady

# Large enough that tensors dominate MindSpore's own footprint, small enough for a laptop CPU.
SHAPE = dict(num_layers=4, hidden_size=512, num_heads=8, n_kv_heads=8, ffn_hidden_size=1408,
             vocab_size=8192, seq_length=512)
CONFIGS = [
    dict(batch_size=2, recompute=False),
    dict(batch_size=4, recompute=False),
    dict(batch_size=4, recompute=True),
]


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _trim_heap() -> None:
    # Return freed malloc arenas to the OS, so the resident size counts live memory only.
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc: measurements include freed heap
        pass


def _reset_peak() -> None:
    # Writing 5 to clear_refs resets the peak resident size (VmHWM), Linux >= 4.0.
    Path("/proc/self/clear_refs").write_text("5")


def child(config: dict) -> dict:
    """Build, train STEPS steps, report resident sizes in bytes (runs in its own process)."""
    import mindspore as ms
    import numpy as np
    from mindspore import nn, ops

    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device("CPU")
    ms.set_seed(0)
    h, n_heads, f, vocab = (SHAPE["hidden_size"], SHAPE["num_heads"], SHAPE["ffn_hidden_size"],
                            SHAPE["vocab_size"])
    seq, batch = SHAPE["seq_length"], config["batch_size"]
    head_dim = h // n_heads

    class RMSNorm(nn.Cell):
        def __init__(self):
            super().__init__()
            self.weight = ms.Parameter(ms.Tensor(np.ones(h, np.float32)))

        def construct(self, x):
            return x * ops.rsqrt((x * x).mean(-1, keep_dims=True) + 1e-6) * self.weight

    class Block(nn.Cell):
        def __init__(self):
            super().__init__()
            self.attention_norm, self.ffn_norm = RMSNorm(), RMSNorm()
            self.wq, self.wk, self.wv, self.wo = (nn.Dense(h, h, has_bias=False)
                                                  for _ in range(4))
            self.w1, self.w3 = nn.Dense(h, f, has_bias=False), nn.Dense(h, f, has_bias=False)
            self.w2 = nn.Dense(f, h, has_bias=False)
            self.mask = ms.Tensor(np.triu(np.full((seq, seq), -1e9, np.float32), 1))

        def split_heads(self, x):
            return x.reshape(batch, seq, n_heads, head_dim).transpose(0, 2, 1, 3)  # (B, H, T, D)

        def construct(self, x):  # x: (B*T, h)
            y = self.attention_norm(x)
            q, k, v = (self.split_heads(self.wq(y)), self.split_heads(self.wk(y)),
                       self.split_heads(self.wv(y)))
            scores = ops.matmul(q, k.transpose(0, 1, 3, 2)) / head_dim**0.5 + self.mask
            context = ops.matmul(ops.softmax(scores, -1), v)  # (B, H, T, D)
            x = x + self.wo(context.transpose(0, 2, 1, 3).reshape(batch * seq, h))
            y = self.ffn_norm(x)
            return x + self.w2(ops.silu(self.w1(y)) * self.w3(y))

    class Decoder(nn.Cell):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(vocab, h)
            self.layers = nn.CellList([Block() for _ in range(SHAPE["num_layers"])])
            if config["recompute"]:
                for layer in self.layers:
                    layer.recompute()
            self.norm = RMSNorm()
            self.lm_head = nn.Dense(h, vocab, has_bias=False)

        def construct(self, ids, labels):
            x = self.embedding(ids).reshape(batch * seq, h)
            for layer in self.layers:
                x = layer(x)
            logits = self.lm_head(self.norm(x))  # (B*T, vocab)
            return ops.cross_entropy(logits, labels.reshape(-1))

    _trim_heap()
    base = _status_kib("VmRSS") * 1024
    model = Decoder()
    optimizer = nn.AdamWeightDecay(model.trainable_params(), learning_rate=1e-4)
    grad_fn = ms.value_and_grad(model, None, optimizer.parameters)

    @ms.jit
    def train_step(ids, labels):
        loss, grads = grad_fn(ids, labels)
        optimizer(grads)
        return loss

    rng = np.random.default_rng(0)
    ids = ms.Tensor(rng.integers(0, vocab, (batch, seq)).astype(np.int32))
    labels = ms.Tensor(rng.integers(0, vocab, (batch, seq)).astype(np.int32))
    losses = [float(train_step(ids, labels).asnumpy())]
    _trim_heap()
    _reset_peak()
    for _ in range(STEPS - 1):
        losses.append(float(train_step(ids, labels).asnumpy()))
    peak = _status_kib("VmHWM") * 1024
    parameters = sum(int(np.prod(p.shape)) for p in model.trainable_params())
    return dict(base=base, peak=peak, parameters=parameters, losses=losses)


def estimate(config: dict):
    from mf_parallel import ModelDims, ParallelConfig, estimate_memory

    return estimate_memory(ModelDims(**SHAPE), ParallelConfig(),
                           batch_size=config["batch_size"],
                           recompute=config["recompute"]).peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    print(f"decoder {SHAPE}, fp32, AdamW, one CPU process, {STEPS} steps under ms.jit")
    header = (f"{'batch':>5} {'recompute':>9} | {'est. weights+grads+states':>25} "
              f"{'est. activations':>16} {'est. total':>10} | {'measured':>9} {'meas/est':>8}")
    print(header)
    print("-" * len(header))
    rows = []
    for config in CONFIGS:
        # A scratch directory: MindSpore may write rank_0/ dumps into the working directory.
        with tempfile.TemporaryDirectory() as scratch:
            result = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(config)],
                capture_output=True, text=True, check=False, cwd=scratch)
        if result.returncode:
            sys.exit(f"child failed for {config}:\n{result.stderr[-3000:]}")
        measured = json.loads(result.stdout.strip().splitlines()[-1])
        stage = estimate(config)
        static = stage.parameters + stage.gradients + stage.optimizer_states
        meas_total = measured["peak"] - measured["base"]
        rows.append((config, stage, measured))
        print(f"{config['batch_size']:>5} {str(config['recompute']):>9} | "
              f"{static / MIB:>21.0f} MiB {stage.activations / MIB:>12.0f} MiB "
              f"{stage.total / MIB:>6.0f} MiB | {meas_total / MIB:>5.0f} MiB "
              f"{meas_total / stage.total:>8.2f}")
    # Activations per sample: the slope between the two batch sizes without recompute
    # cancels everything that does not depend on the batch (weights, states, framework).
    (c2, s2, m2), (c4, s4, m4) = rows[0], rows[1]
    est_slope = (s4.activations - s2.activations) / (c4["batch_size"] - c2["batch_size"])
    meas_slope = (m4["peak"] - m2["peak"]) / (c4["batch_size"] - c2["batch_size"])
    print(f"activations per extra sample: estimate {est_slope / MIB:.0f} MiB, "
          f"measured {meas_slope / MIB:.0f} MiB ({meas_slope / est_slope:.2f}x)")
    print(f"parameters: estimate {s2.parameters // 4:,}, model {m2['parameters']:,}")


if __name__ == "__main__":
    main()
