"""Decode-step speed of mf-models' compiled step API beside Hugging Face transformers.

The LLaMA shape of issue 5: hidden 512, 8 layers, 8 heads, ffn 1376, vocab 32000, fp32,
prompt 32, cache 160. Both sides run the same random weights (written by our HF exporter).

    uv run python benchmarks/models_decode_step.py [--peer-python /tmp/ref/bin/python]

The peer needs torch, which never enters the project venv: give it the python of a throwaway
venv (`python3 -m venv /tmp/ref && /tmp/ref/bin/pip install torch==2.13.0 transformers`).
Without one, only our figures are printed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

PROMPT, CACHE, STEPS = 32, 160, 64
SHAPE = dict(hidden_size=512, num_layers=8, num_heads=8, intermediate_size=1376,
             vocab_size=32000, seq_length=512)

PEER = r"""
import json, sys, time, torch, transformers
torch.set_num_threads(2)
hf_dir, prompt, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = transformers.AutoModelForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32)
model.eval()
out = {}
for batch in (1, 8):
    ids = torch.randint(4, 32000, (batch, prompt))
    with torch.no_grad():
        res = model(ids, use_cache=True)
        past, token = res.past_key_values, res.logits[:, -1:].argmax(-1)
        for _ in range(3):  # warm up
            res = model(token, past_key_values=past, use_cache=True)
            past, token = res.past_key_values, res.logits[:, -1:].argmax(-1)
        start = time.perf_counter()
        for _ in range(steps):
            res = model(token, past_key_values=past, use_cache=True)
            past, token = res.past_key_values, res.logits[:, -1:].argmax(-1)
        out[batch] = (time.perf_counter() - start) / steps * 1000
print(json.dumps(out))
"""


def measure_ours(model, batch: int) -> dict[str, float]:
    cache = model.new_cache(batch, CACHE)
    step = model.step_function(cache)
    ids = np.random.default_rng(0).integers(4, 32000, (batch, PROMPT)).astype(np.int32)
    key_mask = np.zeros((batch, CACHE), np.int32)
    key_mask[:, :PROMPT] = 1
    positions = model.prefill_positions(key_mask[:, :PROMPT])
    start = time.perf_counter()
    logits = step(ids, positions, 0, key_mask).asnumpy()
    prefill_compile = time.perf_counter() - start
    start = time.perf_counter()
    step(ids, positions, 0, key_mask).asnumpy()
    prefill = time.perf_counter() - start
    token = logits[:, -1].argmax(-1).astype(np.int32)[:, None]
    positions = model.next_positions(positions)
    key_mask[:, PROMPT] = 1
    start = time.perf_counter()
    logits = step(token, positions, PROMPT, key_mask).asnumpy()
    decode_compile = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(1, STEPS + 1):
        token = logits[:, -1].argmax(-1).astype(np.int32)[:, None]
        positions = model.next_positions(positions)
        key_mask[:, PROMPT + i] = 1
        logits = step(token, positions, PROMPT + i, key_mask).asnumpy()
    decode = (time.perf_counter() - start) / STEPS
    return {"prefill_compile_s": prefill_compile, "prefill_ms": prefill * 1000,
            "decode_compile_s": decode_compile, "decode_ms": decode * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-python", help="python of a venv with torch + transformers")
    args = parser.parse_args()

    from generate import settings
    from mf_models import AutoModelForCausalLM, LlamaConfig
    from mf_models.weights.hf import export_directory

    model = AutoModelForCausalLM.from_config(LlamaConfig(**SHAPE))
    ours = {batch: measure_ours(model, batch) for batch in (1, 8)}
    peer = None
    if args.peer_python:
        with tempfile.TemporaryDirectory() as tmp:
            export_directory(model.config, model.state_dict(), Path(tmp))
            result = subprocess.run([args.peer_python, "-c", PEER, tmp, str(PROMPT), str(STEPS)],
                                    capture_output=True, text=True, check=True)
            peer = {int(k): v for k, v in json.loads(result.stdout.strip().splitlines()[-1])
                    .items()}

    print(settings())
    print(f"LLaMA hidden 512, 8 layers, ffn 1376, vocab 32000, fp32, prompt {PROMPT}, "
          f"cache {CACHE}, {STEPS} decode steps")
    print(f"{'batch':>5} | {'mf ms/step':>10} | {'mf tok/s':>8} | {'HF ms/step':>10} | "
          f"{'HF tok/s':>8} | {'mf prefill ms':>13} | compile prefill/decode s")
    for batch in (1, 8):
        o = ours[batch]
        hf_ms = f"{peer[batch]:10.1f}" if peer else f"{'-':>10}"
        hf_tps = f"{batch * 1000 / peer[batch]:8.1f}" if peer else f"{'-':>8}"
        print(f"{batch:>5} | {o['decode_ms']:10.1f} | {batch * 1000 / o['decode_ms']:8.1f} | "
              f"{hf_ms} | {hf_tps} | {o['prefill_ms']:13.1f} | "
              f"{o['prefill_compile_s']:.1f} / {o['decode_compile_s']:.1f}")


if __name__ == "__main__":
    main()
