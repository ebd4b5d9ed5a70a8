"""Training speed of mf-train's compiled step beside Hugging Face transformers + torch, one run.

The GPT-2 shape of issue 6: 6 layers, width 512, 8 heads, vocab 32000, seq 256, batch 8, AdamW,
gradient clipping at 1.0, fp32; and LLaMA at the same size (ffn 1376, as issue 5's shape).
Both sides start from the same weights (ours, written by mf-models' Hugging Face exporter) and
read the same token batches; both predict the same 256 next tokens per row, so the first losses
agree and the work per step is the same. Beside tokens/s it prints the GFLOP/s each side
achieves (matmul FLOPs of forward + backward) and numpy/OpenBLAS's matmul rate on the same
shapes, measured in the same run: the machine's floor for a step.

    uv run python benchmarks/train.py [--models gpt2,llama] [--torch-python PATH] [--rounds 3]
                                      [--steps 4] [--breakdown]

torch never enters the project venv: the peer runs in a subprocess with a python that has it,
by default ~/.cache/mf/bench-venv (made on first use: `python3 -m venv` + `pip install
torch==2.13.0 transformers safetensors`). `--breakdown` also times our forward alone and
forward + backward alone, to show where a step's time goes. The machine is shared: the two
sides alternate in rounds (the peer process waits for its turn), so a busy neighbour slows
both alike; compare the two sides of one run, and read `uptime` before trusting a figure.
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

import numpy as np

SHAPE = dict(seq_length=256, vocab_size=32000, hidden_size=512, num_layers=6, num_heads=8,
             bos_token_id=0, eos_token_id=0, pad_token_id=0)  # ids inside this vocabulary
FFN = {"gpt2": 4 * SHAPE["hidden_size"], "llama": 1376}
BATCH, SEQ = 8, 256
LR = 1e-4
DEFAULT_VENV = Path("~/.cache/mf/bench-venv").expanduser()

PEER = r"""
import json, sys, time
import numpy as np, torch, transformers
torch.set_num_threads(int(sys.argv[3]))
hf_dir, batches = sys.argv[1], np.load(sys.argv[2])
# the same model as ours: no dropout (mf's GPT-2 has none)
no_dropout = ({"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}
              if sys.argv[4] == "gpt2" else {"attention_dropout": 0.0})
model = transformers.AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32,
                                                          **no_dropout)
model.train()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), eps=1e-8,
                              weight_decay=0.0)
def step(tokens):
    tokens = torch.from_numpy(tokens).long()
    logits = model(input_ids=tokens[:, :-1]).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             tokens[:, 1:].reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss)
first = step(batches[0])
step(batches[1])  # warm up
print(json.dumps({"first_loss": first}), flush=True)
done = 0
for line in sys.stdin:  # one round per line: "<steps>"
    start = time.perf_counter()
    for _ in range(int(line)):
        step(batches[2 + done % (len(batches) - 2)])
        done += 1
    print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)
"""


def ensure_venv(python: Path | None) -> Path | None:
    """The peer's python: the given one, or the default venv (made if missing)."""
    if python is not None:
        return python
    candidate = DEFAULT_VENV / "bin" / "python"
    if candidate.is_file():
        return candidate
    print(f"making {DEFAULT_VENV} for the peer (torch==2.13.0, transformers) ...", flush=True)
    subprocess.run(["python3", "-m", "venv",
                    str(DEFAULT_VENV)], check=True)
    subprocess.run([str(candidate), "-m", "pip", "install", "-q", "torch==2.13.0",
                    "transformers", "safetensors"], check=True)
    return candidate


class Ours:
    """Our compiled step on the model, ready to run rounds of timed steps."""

    def __init__(self, model, batches: np.ndarray):
        from mf_train.optim import build_adamw
        from mf_train.train_step import TrainStep

        self.model, self.batches, self.done = model, batches, 0
        optimizer = build_adamw(model.trainable_params(), np.full(4096, LR, np.float32),
                                beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.0)
        self.step = TrainStep(model, optimizer, max_grad_norm=1.0)
        start = time.perf_counter()
        self.first_loss = self.step.step([batches[0]]).loss
        self.compile_s = time.perf_counter() - start
        self.step.step([batches[1]])  # warm up

    def round(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            self.step.step([self.batches[2 + self.done % (len(self.batches) - 2)]])
            self.done += 1
        return time.perf_counter() - start

    def breakdown(self, steps: int) -> dict[str, float]:
        """Our forward alone and forward + backward alone, seconds per step."""
        import mindspore as ms
        from mf_train.train_step import token_nll

        model, batches = self.model, self.batches

        def loss(tokens):
            return token_nll(model(tokens[:, :-1]), tokens[:, 1:]).mean()

        out = {}
        forward = ms.jit(loss)
        backward = ms.jit(ms.value_and_grad(loss, None, model.trainable_params()))
        for name, fn in (("forward_s", forward), ("forward_backward_s", backward)):
            _sync(fn(ms.Tensor(batches[0])))  # compile
            start = time.perf_counter()
            for i in range(steps):
                _sync(fn(ms.Tensor(batches[2 + i % (len(batches) - 2)])))
            out[name] = (time.perf_counter() - start) / steps
        return out


def matmul_shapes(family: str) -> list[tuple[int, int, int]]:
    """(m, k, n) of every weight matmul of one forward pass, LM head included."""
    c, f, v, rows = SHAPE["hidden_size"], FFN[family], SHAPE["vocab_size"], BATCH * SEQ
    if family == "gpt2":
        layer = [(rows, c, c)] * 4 + [(rows, c, f), (rows, f, c)]
    else:
        layer = [(rows, c, c)] * 4 + [(rows, c, f)] * 2 + [(rows, f, c)]
    return layer * SHAPE["num_layers"] + [(rows, c, v)]


def step_flops(family: str) -> float:
    """Matmul FLOPs of one training step: 3x the forward's (the backward does two matmuls per
    forward one), weights and attention's two (S x S x C) products per layer and row."""
    weights = sum(2 * m * k * n for m, k, n in matmul_shapes(family))
    attention = 2 * 2 * BATCH * SEQ * SEQ * SHAPE["hidden_size"] * SHAPE["num_layers"]
    return 3.0 * (weights + attention)


class NumpyMatmuls:
    """numpy/OpenBLAS FLOP/s over one forward's weight matmuls (the same shapes), timed in
    turn with the two sides (a busy neighbour then slows all three alike)."""

    def __init__(self, family: str):
        rng = np.random.default_rng(0)
        self.shapes = matmul_shapes(family)
        self.operands = {shape: (rng.standard_normal(shape[:2], dtype=np.float32),
                                 rng.standard_normal(shape[1:], dtype=np.float32))
                         for shape in set(self.shapes)}
        self.rates: list[float] = []

    def round(self) -> None:
        start = time.perf_counter()
        for shape in self.shapes:
            a, b = self.operands[shape]
            a @ b
        seconds = time.perf_counter() - start
        self.rates.append(sum(2 * m * k * n for m, k, n in self.shapes) / seconds)


def _sync(result) -> None:
    first = result[0] if isinstance(result, tuple) else result
    first.asnumpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", type=Path, help="python of a venv with torch "
                        f"2.13 + transformers (default {DEFAULT_VENV}, made if missing)")
    parser.add_argument("--no-peer", action="store_true", help="time ours only")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round and side")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2 cores here)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time our forward and forward + backward alone")
    parser.add_argument("--models", default="gpt2,llama", help="comma-separated: gpt2, llama")
    args = parser.parse_args()
    families = [f.strip() for f in args.models.split(",") if f.strip()]
    for family in families:
        if family not in FFN:
            parser.error(f"unknown model '{family}'; allowed: {', '.join(FFN)}")

    from generate import settings

    print(settings())
    python = None if args.no_peer else ensure_venv(args.torch_python)
    for family in families:
        run(family, args, python)


def run(family: str, args: argparse.Namespace, python: Path | None) -> None:
    """One family's alternating rounds, then its report."""
    from mf_models import AutoModelForCausalLM, GPT2Config, LlamaConfig
    from mf_models.weights.hf import export_directory

    if family == "gpt2":
        config = GPT2Config(**SHAPE)
    else:
        config = LlamaConfig(**SHAPE, intermediate_size=FFN["llama"])
    model = AutoModelForCausalLM.from_config(config, seed=0)
    load_before = os.getloadavg()[0]
    floor = NumpyMatmuls(family)
    rng = np.random.default_rng(0)
    batches = rng.integers(0, SHAPE["vocab_size"], (6, BATCH, SEQ + 1)).astype(np.int32)
    tokens = BATCH * SEQ
    with tempfile.TemporaryDirectory() as tmp:
        export_directory(model.config, model.state_dict(), Path(tmp) / "hf")  # before training
        np.save(Path(tmp) / "batches.npy", batches)
        peer = None
        if python is not None:
            peer_log = open(Path(tmp) / "peer.log", "w")  # noqa: SIM115 - closed below
            peer = subprocess.Popen([str(python), "-c", PEER, str(Path(tmp) / "hf"),
                                     str(Path(tmp) / "batches.npy"), str(args.threads),
                                     family],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=peer_log, text=True)
            line = peer.stdout.readline()
            if not line:
                peer.wait()
                peer_log.close()
                sys.exit("the peer failed: " + (Path(tmp) / "peer.log").read_text()[-2000:])
            peer_first = json.loads(line)["first_loss"]
        ours = Ours(model, batches)
        # Rounds alternate between the two sides, so a busy neighbour slows both alike.
        ours_s, peer_s = [], []
        for _ in range(args.rounds):
            floor.round()
            ours_s.append(ours.round(args.steps) / args.steps)
            if peer is not None:
                peer.stdin.write(f"{args.steps}\n")
                peer.stdin.flush()
                peer_s.append(json.loads(peer.stdout.readline())["seconds"] / args.steps)
        if peer is not None:
            peer.stdin.close()
            peer.wait(timeout=60)
            peer_log.close()
    breakdown = ours.breakdown(args.steps) if args.breakdown else None

    name = "GPT-2" if family == "gpt2" else f"LLaMA (ffn {FFN['llama']})"
    flops = step_flops(family)
    print(f"\n== {name} 6 layers, width 512, 8 heads, vocab 32000, seq 256, batch 8, AdamW, "
          f"clip 1.0, fp32; {args.rounds} alternating rounds of {args.steps} steps, after 2 "
          f"warm-up steps; load average {load_before:.2f} -> {os.getloadavg()[0]:.2f} ==")
    print(f"{'':>22} | {'s/step (median)':>15} | {'tokens/s':>8} | {'GFLOP/s':>7} | "
          f"{'first loss':>10} | rounds")
    ours_med = float(np.median(ours_s))
    print(f"{'mf (MindSpore, jit)':>22} | {ours_med:15.3f} | {tokens / ours_med:8.0f} | "
          f"{flops / ours_med / 1e9:7.1f} | {ours.first_loss:10.5f} | "
          f"{' '.join(f'{x:.2f}' for x in ours_s)}")
    if peer_s:
        peer_med = float(np.median(peer_s))
        print(f"{'transformers + torch':>22} | {peer_med:15.3f} | {tokens / peer_med:8.0f} | "
              f"{flops / peer_med / 1e9:7.1f} | {peer_first:10.5f} | "
              f"{' '.join(f'{x:.2f}' for x in peer_s)}")
    numpy_rate = float(np.median(floor.rates))
    floor_s = flops / numpy_rate
    print(f"{'numpy matmuls alone':>22} | {floor_s:15.3f} | {tokens / floor_s:8.0f} | "
          f"{numpy_rate / 1e9:7.1f} | {'':>10} | the step's matmul FLOPs at numpy/OpenBLAS's "
          "rate on the same shapes (the floor)")
    if peer_s:
        ratios = [p / o for o, p in zip(ours_s, peer_s, strict=True)]
        print(f"mf / peer (tokens/s): {peer_med / ours_med:.2f}x; per round "
              f"{' '.join(f'{r:.2f}' for r in ratios)} (>= 1.0 is parity or better); "
              f"mf / floor: {floor_s / ours_med:.2f}x")
    print(f"our compile (first step): {ours.compile_s:.1f} s")
    if breakdown:
        print(f"ours alone: forward {breakdown['forward_s']:.3f} s, forward + backward "
              f"{breakdown['forward_backward_s']:.3f} s, whole step {ours_med:.3f} s")


if __name__ == "__main__":
    main()
