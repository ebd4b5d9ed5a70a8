"""ViT-base image classification throughput: mf beside Hugging Face transformers + torch and
beside the machine's matmul floor, from one run, on the same weights and images.

* ViT-B/16 at 224x224 with a 1000-class head (google/vit-base-patch16-224's shape, 86.6M
  parameters), random weights built by mf and written as a Hugging Face directory through mf's
  exporter; the peer loads that directory with transformers;
* batch 8 (and 1) of the same random images; mf's forward compiled
  (`model.forward_function()`, the path the pipelines take) and eager (PyNative), the peer's
  under `torch.no_grad()` with 2 threads; the two take turns `--repeats` times (other jobs
  come and go on this machine: each side's best and median are printed); the largest logit
  difference between the two;
* the floor: every matrix product of one forward (patch embedding, q/k/v, scores, weighted
  values, projections, MLP, head) at the same shapes, back to back in numpy/OpenBLAS.

    uv run python benchmarks/vision.py [--torch-python PATH] [--repeats 3]

torch never enters the project venv: the peer runs in a subprocess (see benchmarks/generate.py
for the default venv it makes); without one, only mf's figures and the floor print.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import TORCH_THREADS, Peer, peer_python  # noqa: E402  (a sibling script)

BATCHES = (8, 1)
SHAPE = dict(image_size=224, patch_size=16, hidden_size=768, num_layers=12, num_heads=12,
             intermediate_size=3072, num_labels=1000, layer_norm_eps=1e-12)

PEER = r"""
import json, sys, time
import numpy as np, torch, transformers
torch.set_num_threads(int(sys.argv[2]))
model = transformers.ViTForImageClassification.from_pretrained(sys.argv[1], dtype=torch.float32)
model.eval()
print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__}),
      flush=True)
with torch.no_grad():
    for line in sys.stdin:
        request = json.loads(line)
        pixels = torch.from_numpy(np.load(request["pixels"]))
        model(pixel_values=pixels)  # warm-up at this shape
        start = time.perf_counter()
        logits = model(pixel_values=pixels).logits
        wall = time.perf_counter() - start
        np.save(request["logits"], logits.numpy())
        print(json.dumps({"wall_s": wall}), flush=True)
"""


def build_directory(directory: Path):
    """mf's ViT-B/16 with random weights, written as a Hugging Face directory."""
    from mf_models import ViTConfig, ViTForImageClassification
    from mf_models.weights import hf

    model = ViTForImageClassification(ViTConfig(**SHAPE), seed=0)
    hf.export_directory(model.config, model.state_dict(), directory)
    return model


def matmul_floor(batch: int, repeats: int = 3) -> tuple[float, float]:
    """(seconds, GFLOP) of one forward's matrix products in numpy/OpenBLAS, best of repeats."""
    c, f, h = SHAPE["hidden_size"], SHAPE["intermediate_size"], SHAPE["num_heads"]
    patches = (SHAPE["image_size"] // SHAPE["patch_size"]) ** 2
    t, d, k = patches + 1, c // h, 3 * SHAPE["patch_size"] ** 2
    rng = np.random.default_rng(0)
    # (batch dims, m, k, n) of each product: patch embedding, then per layer q, k, v,
    # scores, probs @ v, output projection, MLP in and out; then the head on the class token.
    layer = [((), batch * t, c, c)] * 4 + [((batch * h,), t, d, t), ((batch * h,), t, t, d),
                                           ((), batch * t, c, f), ((), batch * t, f, c)]
    shapes = [((), batch * patches, k, c)] + layer * SHAPE["num_layers"] + \
        [((), batch, c, SHAPE["num_labels"])]
    operands = {}
    for lead, m, kk, n in set(shapes):
        operands[(lead, m, kk, n)] = (rng.standard_normal((*lead, m, kk), dtype=np.float32),
                                      rng.standard_normal((*lead, kk, n), dtype=np.float32))
    flops = sum(2 * int(np.prod(lead or (1,))) * m * kk * n for lead, m, kk, n in shapes)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for shape in shapes:
            a, b = operands[shape]
            np.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return best, flops / 1e9


def timed(fn, *args) -> tuple[float, object]:
    """Wall time of fn(*args) until its logits are on the host (MindSpore runs ahead)."""
    start = time.perf_counter()
    out = fn(*args)
    out.logits.asnumpy()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", help="python of a venv with torch + transformers")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from mindspore.device_context.cpu.op_tuning import threads_num

    threads_num(TORCH_THREADS)  # both sides get the same number of kernel threads
    python, why = peer_python(args.torch_python)
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory(prefix="mf-bench-vision-") as tmp:
        tmp = Path(tmp)
        model = build_directory(tmp / "vit")
        compiled = model.forward_function()
        peer = Peer(python, tmp / "vit", script=PEER) if python else None
        print(f"ViT-B/16, 224x224, {model.num_parameters() / 1e6:.1f}M parameters, fp32; "
              f"best (median) of {args.repeats} alternating runs; peer: "
              + (f"torch {peer.versions['torch']}, transformers {peer.versions['transformers']}"
                 f", {TORCH_THREADS} threads" if peer else f"none ({why})"))
        header = (f"{'batch':>5} | {'mf compiled img/s':>18} | {'mf eager img/s':>15} | "
                  f"{'HF img/s':>15} | {'mf/HF':>5} | {'floor img/s':>11} | {'mf/floor':>8} | "
                  f"{'compile s':>9} | max |logit diff|")
        print(header)
        print("-" * len(header))
        for batch in BATCHES:
            pixels = rng.standard_normal((batch, 3, 224, 224), dtype=np.float32)
            np.save(tmp / "pixels.npy", pixels)
            first, _ = timed(compiled, pixels)
            model(pixels[:1])  # the eager path's first call: kernels selected
            runs = {"mf": [], "eager": [], "hf": []}
            for _ in range(args.repeats):
                wall, out = timed(compiled, pixels)
                runs["mf"].append(wall)
                runs["eager"].append(timed(model, pixels)[0])
                if peer:
                    request = {"pixels": str(tmp / "pixels.npy"), "logits": str(tmp / "logits.npy")}
                    runs["hf"].append(peer.ask(request)["wall_s"])
            floor_s, gflop = matmul_floor(batch)
            diff = "-"
            if peer:
                diff = f"{np.abs(np.load(tmp / 'logits.npy') - out.logits.asnumpy()).max():.1e}"

            def rate(times, batch=batch):
                return f"{batch / min(times):7.2f} ({batch / float(np.median(times)):6.2f})"

            hf = rate(runs["hf"]) if runs["hf"] else f"{'-':>15}"
            ratio = f"{min(runs['hf']) / min(runs['mf']):5.2f}" if runs["hf"] else f"{'-':>5}"
            print(f"{batch:>5} | {rate(runs['mf']):>18} | {rate(runs['eager']):>15} | {hf:>15} "
                  f"| {ratio} | {batch / floor_s:11.2f} | {floor_s / min(runs['mf']):8.2f} | "
                  f"{first - min(runs['mf']):9.1f} | {diff}")
            print(f"      one forward: {gflop:.1f} GFLOP of matrix products; the floor runs "
                  f"them at {gflop / floor_s:.0f} GFLOP/s, mf compiled at "
                  f"{gflop / min(runs['mf']):.0f} GFLOP/s (whole forward)")
        if peer:
            peer.close()


if __name__ == "__main__":
    main()
