"""mf-generate's `generate()` beside Hugging Face transformers' `generate()`, one run, same weights.

For each shape (issue 5: LLaMA hidden 512, 8 layers, 8 heads, ffn 1376, vocab 32000; and
GPT-2 124M), fp32, prompt 32, 128 new greedy tokens, batch 1 and 8:

* random weights written once as a Hugging Face directory (numpy + safetensors); mf imports it
  through its HF importer, the peer loads the same directory with transformers;
* the greedy tokens of both must match;
* tokens/s of the whole generate() call (prefill included) for mf and for the peer (torch CPU,
  2 threads), the two taking turns `--repeats` times (others' jobs come and go on this
  machine; each side's best and median are printed), time to first token (the prompt pass),
  mf's one-off compile time, and that a second prompt length of the same bucket does not
  compile again;
* the memory-bandwidth bound: weight bytes streamed per token over the copy bandwidth measured
  here (STREAM convention: bytes read + written), and the weight matrix-vector products alone,
  back to back in numpy/OpenBLAS;
* the KV cache against full recompute (use_past=False) at 512 total tokens.

    uv run python benchmarks/generate.py [--torch-python PATH] [--shapes llama,gpt2] [--repeats 3]

torch never enters the project venv: the peer runs in a subprocess with `--torch-python`, by
default a venv under ~/.cache/mf/bench-venv made (once) with `python3 -m venv` and
`pip install torch==2.13.0 transformers safetensors`. Without one, only mf's figures print.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROMPT, NEW, BATCHES = 32, 128, (1, 8)
LONG_PROMPT, LONG_NEW = 480, 32  # 512 total tokens: KV cache against recompute
TORCH_THREADS = 2
VENV = Path("~/.cache/mf/bench-venv").expanduser()
PEER_PACKAGES = ["torch==2.13.0", "transformers", "safetensors"]

SHAPES = {
    # Issue 5's LLaMA shape.
    "llama": dict(model_type="llama", architectures=["LlamaForCausalLM"], hidden_size=512,
                  intermediate_size=1376, num_attention_heads=8, num_hidden_layers=8,
                  num_key_value_heads=8, vocab_size=32000, max_position_embeddings=512,
                  rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                  hidden_act="silu", bos_token_id=1, eos_token_id=2, torch_dtype="float32"),
    # GPT-2 small, 124M parameters (Radford et al. 2019; HF "gpt2" config.json).
    "gpt2": dict(model_type="gpt2", architectures=["GPT2LMHeadModel"], n_embd=768, n_layer=12,
                 n_head=12, n_positions=1024, n_inner=None, vocab_size=50257,
                 activation_function="gelu_new", layer_norm_epsilon=1e-5, resid_pdrop=0.0,
                 embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=50256, eos_token_id=50256,
                 tie_word_embeddings=True, torch_dtype="float32"),
}


# ---- the same random weights, as a Hugging Face directory ------------------------------------
def hf_weights(shape: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """HF-named fp32 tensors. Weights N(0, 0.05) so the logits have clear winners (greedy
    tokens then do not hinge on float rounding); norm weights around 1."""
    def w(*dims):
        return (rng.standard_normal(dims, dtype=np.float32) * np.float32(0.05))

    def norm(dim):
        return 1 + 0.1 * rng.standard_normal(dim, dtype=np.float32)

    out = {}
    if shape["model_type"] == "llama":
        c, f, v = shape["hidden_size"], shape["intermediate_size"], shape["vocab_size"]
        out["model.embed_tokens.weight"] = w(v, c)
        for i in range(shape["num_hidden_layers"]):
            p = f"model.layers.{i}."
            for name in ("q", "k", "v", "o"):
                out[p + f"self_attn.{name}_proj.weight"] = w(c, c)
            out[p + "mlp.gate_proj.weight"] = w(f, c)
            out[p + "mlp.up_proj.weight"] = w(f, c)
            out[p + "mlp.down_proj.weight"] = w(c, f)
            out[p + "input_layernorm.weight"] = norm(c)
            out[p + "post_attention_layernorm.weight"] = norm(c)
        out["model.norm.weight"] = norm(c)
        out["lm_head.weight"] = w(v, c)
    else:
        c, v, n = shape["n_embd"], shape["vocab_size"], shape["n_positions"]
        out["transformer.wte.weight"] = w(v, c)
        out["transformer.wpe.weight"] = w(n, c)
        for i in range(shape["n_layer"]):
            p = f"transformer.h.{i}."
            out[p + "ln_1.weight"], out[p + "ln_1.bias"] = norm(c), w(c)
            out[p + "attn.c_attn.weight"], out[p + "attn.c_attn.bias"] = w(c, 3 * c), w(3 * c)
            out[p + "attn.c_proj.weight"], out[p + "attn.c_proj.bias"] = w(c, c), w(c)
            out[p + "ln_2.weight"], out[p + "ln_2.bias"] = norm(c), w(c)
            out[p + "mlp.c_fc.weight"], out[p + "mlp.c_fc.bias"] = w(c, 4 * c), w(4 * c)
            out[p + "mlp.c_proj.weight"], out[p + "mlp.c_proj.bias"] = w(4 * c, c), w(c)
        out["transformer.ln_f.weight"], out["transformer.ln_f.bias"] = norm(c), w(c)
    return out


def write_hf_directory(shape: dict, directory: Path) -> int:
    """Write config.json + model.safetensors; returns the bytes one decode step streams (every
    matrix once; of the embedding only the rows looked up, i.e. none, unless it is tied)."""
    from safetensors.numpy import save_file

    weights = hf_weights(shape, np.random.default_rng(0))
    save_file(weights, str(directory / "model.safetensors"), metadata={"format": "pt"})
    config = {k: v for k, v in shape.items() if v is not None}
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    streamed = 0
    for name, array in weights.items():
        looked_up = name in ("model.embed_tokens.weight", "transformer.wpe.weight")
        if not looked_up:  # GPT-2's wte is the tied LM head: streamed whole
            streamed += array.nbytes
    return streamed


# ---- bounds measured here ---------------------------------------------------------------------
def copy_bandwidth() -> float:
    """Bytes per second of a 256 MiB numpy copy, counting bytes read + written (STREAM)."""
    src = np.ones(64 * 2**20, np.float32)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best


def matvec_tokens_per_s(directory: Path) -> float:
    """Tokens/s of only the weight matrix-vector products of one decode step, in numpy."""
    from safetensors.numpy import load_file

    mats = [a for n, a in load_file(str(directory / "model.safetensors")).items()
            if a.ndim == 2 and n not in ("model.embed_tokens.weight", "transformer.wpe.weight")]
    vectors = {m.shape[1]: np.ones(m.shape[1], np.float32) for m in mats}
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for m in mats:
            m @ vectors[m.shape[1]]  # streams every element of m once
        best = min(best, time.perf_counter() - start)
    return 1 / best


# ---- ours ----------------------------------------------------------------------------------------
def settings() -> str:
    """Apply mf's runtime settings as `mf` does (MS_DEV_HOST_BLOCKING_RUN, kernel threads) and
    say which are on, custom kernels included (MF_CUSTOM_KERNELS=0 turns them off)."""
    from mf_models.kernels import status
    from mf_parallel.runtime import apply_runtime_defaults, runtime_summary, set_kernel_threads

    apply_runtime_defaults()
    set_kernel_threads()
    return f"mf settings: {runtime_summary()}; {status()}"


class Ours:
    """mf's model, loaded through the HF importer, timed in this process."""

    def __init__(self, directory: Path):
        import mf_generate  # noqa: F401  (installs model.generate)
        from mf_generate import generate
        from mf_models import AutoModelForCausalLM

        self.generate = generate
        self.model = AutoModelForCausalLM.from_pretrained(directory)

    def run(self, ids: np.ndarray, new: int = NEW, use_past: bool = True) -> dict:
        start = time.perf_counter()
        res = self.generate(self.model, ids, max_new_tokens=new, eos_token_id=None,
                            use_past=use_past, return_dict=True)
        wall = time.perf_counter() - start
        return dict(tokens=res.sequences[:, ids.shape[1]:].tolist(),
                    tok_s=ids.shape[0] * new / wall, ttft_s=res.prefill_s,
                    decode_tok_s=ids.shape[0] * (new - 1) / res.decode_s, wall_s=wall)


# ---- the peer, in a python that has torch: a small server on stdin/stdout ---------------------
PEER = r"""
import json, sys, time
import torch, transformers
torch.set_num_threads(int(sys.argv[2]))
model = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
model.eval()
model.generation_config.eos_token_id = None
print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__}),
      flush=True)
warm = set()
with torch.no_grad():
    for line in sys.stdin:
        request = json.loads(line)
        ids = torch.tensor(request["ids"])
        mask = torch.ones_like(ids)
        new = request["new"]
        kw = dict(attention_mask=mask, do_sample=False, pad_token_id=0)
        if ids.shape not in warm:
            model.generate(ids, max_new_tokens=8, min_new_tokens=8, **kw)
            warm.add(ids.shape)
        start = time.perf_counter()
        res = model.generate(ids, max_new_tokens=new, min_new_tokens=new, **kw)
        wall = time.perf_counter() - start
        start = time.perf_counter()
        model(ids, attention_mask=mask, use_cache=True).logits[:, -1].argmax(-1)
        ttft = time.perf_counter() - start
        print(json.dumps(dict(tokens=res[:, ids.shape[1]:].tolist(),
                              tok_s=ids.shape[0] * new / wall, ttft_s=ttft, wall_s=wall)),
              flush=True)
"""


class Peer:
    """transformers in a subprocess running `script` (default: generate()), which answers one
    JSON request per line (benchmarks/vision.py gives its own script)."""

    def __init__(self, python: str, directory: Path, script: str = PEER):
        env = dict(os.environ, OMP_NUM_THREADS=str(TORCH_THREADS))
        self.process = subprocess.Popen(
            [python, "-c", script, str(directory), str(TORCH_THREADS)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.versions = self._answer()

    def run(self, ids: np.ndarray, new: int = NEW) -> dict:
        return self.ask({"ids": ids.tolist(), "new": new})

    def ask(self, request: dict) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._answer()

    def _answer(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            err = self.process.stderr.read().strip().splitlines()
            raise RuntimeError(f"the peer failed: {err[-1] if err else 'no output'}")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def peer_python(requested: str | None) -> tuple[str | None, str]:
    """The python to run the peer with, or None and why not."""
    if requested:
        if not Path(requested).exists():
            return None, f"--torch-python {requested} does not exist"
        return requested, ""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import torch, transformers, safetensors"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return str(python), ""
    base = shutil.which("python3")
    if base is None:
        return None, "no python3 on PATH to make the peer's venv"
    print(f"making the peer venv {VENV} (python3 -m venv; pip install "
          f"{' '.join(PEER_PACKAGES)}) ...", flush=True)
    try:
        if not python.exists():
            subprocess.run([base, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", *PEER_PACKAGES], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        return None, (f"could not make {VENV} ({exc}); give a python with torch 2.13 and "
                      "transformers as --torch-python PATH")
    return str(python), ""


def measure(ours: Ours, peer: Peer | None, prompts: dict[int, np.ndarray],
            long_prompt: np.ndarray, repeats: int) -> dict:
    """Ours and the peer in turn, `repeats` times per batch (others' jobs come and go on this
    machine, so each side keeps its best run; the median is printed beside it)."""
    out: dict = {"ours": {}, "peer": {}, "compile_s": {}, "other_length_tok_s": {}}
    for batch, ids in prompts.items():
        start = time.perf_counter()
        ours.run(ids)  # the first call of this bucket compiles
        first = time.perf_counter() - start
        runs = {"ours": [], "peer": []}
        for _ in range(repeats):
            runs["ours"].append(ours.run(ids))
            if peer is not None:
                runs["peer"].append(peer.run(ids))
        out["compile_s"][batch] = first - min(r["wall_s"] for r in runs["ours"])
        # Another prompt length of the same bucket (24 -> the 32 bucket): no compile.
        out["other_length_tok_s"][batch] = ours.run(ids[:, 8:])["tok_s"]
        for side, results in runs.items():
            if results:
                out[side][batch] = results
    long_runs: dict[bool, list[dict]] = {True: [], False: []}
    for use_past in (True, False):
        ours.run(long_prompt, LONG_NEW, use_past)  # compiles this bucket
    for _ in range(max(1, repeats - 1)):  # turns again: a busy moment must not hit one side
        for use_past in (True, False):
            long_runs[use_past].append(ours.run(long_prompt, LONG_NEW, use_past))
    for use_past, name in ((True, "past"), (False, "recompute")):
        out[name] = max(long_runs[use_past], key=lambda r: r["tok_s"])
    return out


# ---- report ----------------------------------------------------------------------------------
def first_difference(a: list, b: list) -> str:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape == b.shape and (a == b).all():
        return f"identical ({a.shape[0]} x {a.shape[1]})"
    diff = np.argwhere(a != b)
    row, col = diff[0] if len(diff) else (0, 0)
    return f"DIFFER: row {row} token {col} first ({(a == b).mean():.0%} equal)"


def _best(runs: list[dict], key: str, largest: bool = True) -> float:
    values = [r[key] for r in runs]
    return max(values) if largest else min(values)


def _median(runs: list[dict], key: str) -> float:
    return float(np.median([r[key] for r in runs]))


def report(name: str, shape: dict, streamed: int, bandwidth: float, matvec: float,
           figures: dict, repeats: int) -> None:
    params = sum(np.prod(a.shape) for a in hf_weights(shape, np.random.default_rng(0)).values())
    print(f"\n== {name}: {params / 1e6:.0f}M parameters, fp32, prompt {PROMPT}, {NEW} new "
          f"tokens, greedy; best (median) of {repeats} alternating runs ==")
    print(f"bandwidth bound: {streamed / 1e6:.0f} MB of weights per token / "
          f"{bandwidth / 1e9:.1f} GB/s copy = {bandwidth / streamed:.1f} tokens/s at batch 1; "
          f"the weight matrix-vector products alone (numpy/OpenBLAS): {matvec:.1f} tokens/s")
    header = (f"{'batch':>5} | {'mf tok/s':>14} | {'HF tok/s':>14} | {'mf/HF':>5} | "
              f"{'mf decode tok/s':>15} | {'/floor':>6} | "
              f"{'TTFT ms mf / HF':>15} | {'mf compile s':>12} | {'mf prompt 24':>12} | "
              "greedy tokens")
    print(header)
    print("-" * len(header))
    for batch in BATCHES:
        o = figures["ours"][batch]
        p = figures["peer"].get(batch)
        mf = f"{_best(o, 'tok_s'):6.1f} ({_median(o, 'tok_s'):5.1f})"
        hf = f"{_best(p, 'tok_s'):6.1f} ({_median(p, 'tok_s'):5.1f})" if p else f"{'-':>14}"
        ratio = f"{_best(o, 'tok_s') / _best(p, 'tok_s'):5.2f}" if p else f"{'-':>5}"
        ttft = (f"{_best(o, 'ttft_s', False) * 1000:6.1f} / "
                + (f"{_best(p, 'ttft_s', False) * 1000:6.1f}" if p else "     -"))
        same = first_difference(o[0]["tokens"], p[0]["tokens"]) if p else "no peer"
        decode = _best(o, "decode_tok_s")
        # The floor is one token's matrix-vector products: a batch-1 figure (a batch of 8
        # reads the same weights once for 8 tokens).
        floor = f"{decode / matvec:6.2f}" if batch == 1 else f"{'-':>6}"
        print(f"{batch:>5} | {mf} | {hf} | {ratio} | {decode:15.1f} | {floor} | {ttft:>15} | "
              f"{figures['compile_s'][batch]:12.1f} | "
              f"{figures['other_length_tok_s'][batch]:12.1f} | {same}")
    print("tok/s: whole generate() calls, prefill included; mf decode tok/s: the decode steps "
          "alone, /floor: over the numpy matrix-vector products above (batch 1); TTFT: the "
          "prompt pass; mf compile: first call - best call; mf prompt 24: tok/s of a 24-token "
          "prompt next (same prefill bucket: no compile)")
    past, full = figures["past"], figures["recompute"]
    print(f"KV cache vs recompute at {LONG_PROMPT}+{LONG_NEW} = {LONG_PROMPT + LONG_NEW} tokens "
          f"(batch 1, best of {max(1, repeats - 1)} alternating runs): {past['tok_s']:.1f} vs "
          f"{full['tok_s']:.2f} tokens/s = "
          f"{past['tok_s'] / full['tok_s']:.1f}x (decode steps alone "
          f"{past['decode_tok_s'] / full['decode_tok_s']:.1f}x); greedy tokens "
          f"{first_difference(past['tokens'], full['tokens'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", help="python of a venv with torch + transformers "
                        f"(default: {VENV}, made if missing)")
    parser.add_argument("--shapes", default="llama,gpt2",
                        help="comma-separated: " + ", ".join(SHAPES))
    parser.add_argument("--repeats", type=int, default=3,
                        help="alternating runs per batch and side (default 3)")
    args = parser.parse_args()
    names = [s.strip() for s in args.shapes.split(",") if s.strip()]
    for name in names:
        if name not in SHAPES:
            parser.error(f"unknown shape '{name}'; allowed: {', '.join(SHAPES)}")
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats} must be >= 1")

    python, why = peer_python(args.torch_python)
    if python is None:
        print(f"no peer: {why}. Printing mf's figures only.", file=sys.stderr)
    print(settings())
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores; others' jobs add noise)")
    bandwidth = copy_bandwidth()
    for name in names:
        shape = SHAPES[name]
        vocab = shape["vocab_size"]
        rng = np.random.default_rng(1)
        prompts = {b: rng.integers(4, vocab, (b, PROMPT)).astype(np.int64) for b in BATCHES}
        long_prompt = rng.integers(4, vocab, (1, LONG_PROMPT)).astype(np.int64)
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            streamed = write_hf_directory(shape, directory)
            matvec = matvec_tokens_per_s(directory)
            peer = None
            if python is not None:
                try:
                    peer = Peer(python, directory)
                except (RuntimeError, ValueError, OSError) as exc:
                    print(f"no peer figures for {name}: {exc}", file=sys.stderr)
            try:
                figures = measure(Ours(directory), peer, prompts, long_prompt, args.repeats)
            finally:
                if peer is not None:
                    peer.close()
        report(name, shape, streamed, bandwidth, matvec, figures, args.repeats)
        if peer is not None:
            v = peer.versions
            print(f"peer: torch {v['torch']}, transformers {v['transformers']}, "
                  f"{TORCH_THREADS} threads")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
