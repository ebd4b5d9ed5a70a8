"""Training speed of mf-train's compiled step beside Hugging Face transformers + torch, one run.

The GPT-2 shape of issue 6: 6 layers, width 512, 8 heads, vocab 32000, seq 256, batch 8, AdamW,
gradient clipping at 1.0, fp32. Both sides start from the same weights (ours, written by
mf-models' Hugging Face exporter) and read the same token batches; both predict the same
256 next tokens per row, so the first losses agree and the work per step is the same.

    uv run python benchmarks/train.py [--torch-python PATH] [--steps 10] [--breakdown]

torch never enters the project venv: the peer runs in a subprocess with a python that has it,
by default ~/.cache/mf/bench-venv (made on first use: `python3 -m venv` + `pip install
torch==2.13.0 transformers safetensors`). `--breakdown` also times our forward alone and
forward + backward alone, to show where a step's time goes. The machine is shared: read
`uptime` before trusting a figure, and compare the two sides of one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPE = dict(seq_length=256, vocab_size=32000, hidden_size=512, num_layers=6, num_heads=8)
BATCH, SEQ = 8, 256
LR = 1e-4
DEFAULT_VENV = Path("~/.cache/mf/bench-venv").expanduser()

PEER = r"""
import json, sys, time
import numpy as np, torch, transformers
torch.set_num_threads(int(sys.argv[4]))
hf_dir, batches, steps = sys.argv[1], np.load(sys.argv[2]), int(sys.argv[3])
# the same model as ours: no dropout (mf's GPT-2 has none)
model = transformers.GPT2LMHeadModel.from_pretrained(
    hf_dir, dtype=torch.float32, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
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
start = time.perf_counter()
for i in range(steps):
    step(batches[2 + i % (len(batches) - 2)])
seconds = time.perf_counter() - start
print(json.dumps({"first_loss": first, "seconds_per_step": seconds / steps}))
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


def measure_ours(model, batches: np.ndarray, steps: int, breakdown: bool) -> dict[str, float]:
    import mindspore as ms
    from mf_train.optim import build_adamw
    from mf_train.train_step import TrainStep, token_nll

    optimizer = build_adamw(model.trainable_params(), np.full(steps + 8, LR, np.float32),
                            beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.0)
    step = TrainStep(model, optimizer, max_grad_norm=1.0)
    out: dict[str, float] = {}
    start = time.perf_counter()
    out["first_loss"] = step.step([batches[0]]).loss
    out["compile_s"] = time.perf_counter() - start
    step.step([batches[1]])
    start = time.perf_counter()
    for i in range(steps):
        step.step([batches[2 + i % (len(batches) - 2)]])
    out["seconds_per_step"] = (time.perf_counter() - start) / steps
    if breakdown:
        def loss(tokens):
            return token_nll(model(tokens[:, :-1]), tokens[:, 1:]).mean()

        forward = ms.jit(loss)
        backward = ms.jit(ms.value_and_grad(loss, None, model.trainable_params()))
        for name, fn in (("forward_s", forward), ("forward_backward_s", backward)):
            tokens = ms.Tensor(batches[0])
            _sync(fn(tokens))  # compile
            start = time.perf_counter()
            for i in range(steps):
                _sync(fn(ms.Tensor(batches[2 + i % (len(batches) - 2)])))
            out[name] = (time.perf_counter() - start) / steps
    return out


def _sync(result) -> None:
    first = result[0] if isinstance(result, tuple) else result
    first.asnumpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", type=Path, help="python of a venv with torch "
                        f"2.13 + transformers (default {DEFAULT_VENV}, made if missing)")
    parser.add_argument("--no-peer", action="store_true", help="time ours only")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per side")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2 cores here)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time our forward and forward + backward alone")
    args = parser.parse_args()

    from mf_models import AutoModelForCausalLM, GPT2Config
    from mf_models.weights.hf import export_directory

    model = AutoModelForCausalLM.from_config(GPT2Config(**SHAPE), seed=0)
    rng = np.random.default_rng(0)
    batches = rng.integers(0, SHAPE["vocab_size"], (6, BATCH, SEQ + 1)).astype(np.int32)
    peer = None
    with tempfile.TemporaryDirectory() as tmp:
        export_directory(model.config, model.state_dict(), Path(tmp) / "hf")  # before training
        np.save(Path(tmp) / "batches.npy", batches)
        if not args.no_peer:
            python = ensure_venv(args.torch_python)
            result = subprocess.run([str(python), "-c", PEER, str(Path(tmp) / "hf"),
                                     str(Path(tmp) / "batches.npy"), str(args.steps),
                                     str(args.threads)],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                sys.exit(f"the peer failed: {result.stderr[-2000:]}")
            peer = json.loads(result.stdout.strip().splitlines()[-1])
    ours = measure_ours(model, batches, args.steps, args.breakdown)

    tokens = BATCH * SEQ
    print("GPT-2 6 layers, width 512, 8 heads, vocab 32000, seq 256, batch 8, AdamW, clip 1.0, "
          f"fp32; {args.steps} timed steps after 2")
    print(f"{'':>22} | {'s/step':>7} | {'tokens/s':>8} | {'first loss':>10}")
    print(f"{'mf (MindSpore, jit)':>22} | {ours['seconds_per_step']:7.3f} | "
          f"{tokens / ours['seconds_per_step']:8.0f} | {ours['first_loss']:10.5f}")
    if peer:
        print(f"{'transformers + torch':>22} | {peer['seconds_per_step']:7.3f} | "
              f"{tokens / peer['seconds_per_step']:8.0f} | {peer['first_loss']:10.5f}")
        print(f"mf / peer: {peer['seconds_per_step'] / ours['seconds_per_step']:.2f}x "
              f"(tokens/s ratio; >= 1.0 is parity or better)")
    print(f"our compile (first step): {ours['compile_s']:.1f} s")
    if args.breakdown:
        print(f"ours alone: forward {ours['forward_s']:.3f} s, forward + backward "
              f"{ours['forward_backward_s']:.3f} s, whole step {ours['seconds_per_step']:.3f} s")


if __name__ == "__main__":
    main()
