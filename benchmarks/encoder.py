"""BERT encoder throughput and T5 translation speed beside Hugging Face transformers, one run,
same weights.

* BERT-base shape (hidden 768, 12 layers, 12 heads, FFN 3072, vocab 30522), fp32: the bare
  encoder's forward over batch 8 x 128 tokens, in sequences/s: mf's compiled forward
  (`model.forward_function()`, what the pipelines run) against transformers' BertModel;
  the outputs must agree (max |difference| of the hidden states printed). The floor: the same
  matrix products (q/k/v, scores, probabilities x values, output, the two MLP matrices, the
  pooler) back to back in numpy/OpenBLAS.
* T5-small shape (t5_small: 512 wide, 6 + 6 layers, vocab 32128), fp32: greedy generation of
  64 tokens from a 32-token input at batch 1 and 8, tokens/s of whole generate() calls
  (encoder pass included), mf's cached decoder against transformers' generate(); the greedy
  tokens must match. The floor: the weight matrix-vector products of one decoder step (self-
  and cross-attention queries and outputs, the MLP, the tied head) in numpy/OpenBLAS.

    uv run python benchmarks/encoder.py [--torch-python PATH] [--repeats 3] [--only bert|t5]

As in benchmarks/generate.py (whose peer-venv helper this reuses), torch never enters the
project venv: the peer runs in a subprocess with its own python (by default
~/.cache/mf/bench-venv, made once with torch==2.13.0 + transformers), 2 threads, the two sides
taking turns so a busy moment does not hit one of them only.
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
from generate import TORCH_THREADS, copy_bandwidth, peer_python

BATCH, LENGTH = 8, 128  # the BERT-base serving shape of the issue
T5_INPUT, T5_NEW, T5_BATCHES = 32, 64, (1, 8)

BERT = dict(model_type="bert", architectures=["BertModel"], vocab_size=30522, hidden_size=768,
            num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
            max_position_embeddings=512, type_vocab_size=2, hidden_act="gelu",
            layer_norm_eps=1e-12, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
            pad_token_id=0, torch_dtype="float32")
T5 = dict(model_type="t5", architectures=["T5ForConditionalGeneration"], vocab_size=32128,
          d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_decoder_layers=6, num_heads=8,
          relative_attention_num_buckets=32, relative_attention_max_distance=128,
          feed_forward_proj="relu", tie_word_embeddings=True, dropout_rate=0.0,
          layer_norm_epsilon=1e-6, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
          n_positions=512, is_encoder_decoder=True, torch_dtype="float32")


# ---- the same random weights, as Hugging Face directories -------------------------------------
def _w(rng, *dims, std=0.05):
    return rng.standard_normal(dims, dtype=np.float32) * np.float32(std)


def bert_weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    c, f, v = BERT["hidden_size"], BERT["intermediate_size"], BERT["vocab_size"]
    out = {"embeddings.word_embeddings.weight": _w(rng, v, c),
           "embeddings.position_embeddings.weight": _w(rng, 512, c),
           "embeddings.token_type_embeddings.weight": _w(rng, 2, c),
           "embeddings.LayerNorm.weight": 1 + _w(rng, c), "embeddings.LayerNorm.bias": _w(rng, c),
           "pooler.dense.weight": _w(rng, c, c), "pooler.dense.bias": _w(rng, c)}
    for i in range(BERT["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            out[p + name + ".weight"], out[p + name + ".bias"] = _w(rng, c, c), _w(rng, c)
        out[p + "intermediate.dense.weight"] = _w(rng, f, c)
        out[p + "intermediate.dense.bias"] = _w(rng, f)
        out[p + "output.dense.weight"], out[p + "output.dense.bias"] = _w(rng, c, f), _w(rng, c)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            out[p + norm + ".weight"], out[p + norm + ".bias"] = 1 + _w(rng, c), _w(rng, c)
    return out


def t5_weights(rng: np.random.Generator) -> dict[str, np.ndarray]:
    c, f, v, inner = T5["d_model"], T5["d_ff"], T5["vocab_size"], T5["num_heads"] * T5["d_kv"]
    out = {"shared.weight": _w(rng, v, c, std=1.0),
           "encoder.final_layer_norm.weight": 1 + _w(rng, c),
           "decoder.final_layer_norm.weight": 1 + _w(rng, c)}
    bias = "block.0.layer.0.SelfAttention.relative_attention_bias.weight"
    for stack, sublayers in (("encoder", ("SelfAttention",)),
                             ("decoder", ("SelfAttention", "EncDecAttention"))):
        out[f"{stack}.{bias}"] = _w(rng, T5["relative_attention_num_buckets"], T5["num_heads"])
        for i in range(T5["num_layers"]):
            p = f"{stack}.block.{i}.layer."
            for n, attention in enumerate(sublayers):
                for name in "qkv":
                    out[f"{p}{n}.{attention}.{name}.weight"] = _w(rng, inner, c)
                out[f"{p}{n}.{attention}.o.weight"] = _w(rng, c, inner)
                out[f"{p}{n}.layer_norm.weight"] = 1 + _w(rng, c)
            n = len(sublayers)
            out[f"{p}{n}.DenseReluDense.wi.weight"] = _w(rng, f, c)
            out[f"{p}{n}.DenseReluDense.wo.weight"] = _w(rng, c, f)
            out[f"{p}{n}.layer_norm.weight"] = 1 + _w(rng, c)
    return out


def write_directory(config: dict, weights: dict[str, np.ndarray], directory: Path) -> None:
    from safetensors.numpy import save_file

    directory.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(directory / "model.safetensors"), metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps(config, indent=2))


# ---- floors measured here --------------------------------------------------------------------
def _best_of(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bert_matmul_floor() -> tuple[float, float]:
    """(sequences/s, GFLOP/s) of BERT-base's matrix products alone at batch 8 x 128."""
    c, f, h = BERT["hidden_size"], BERT["intermediate_size"], BERT["num_attention_heads"]
    n, d = BATCH * LENGTH, c // h
    rng = np.random.default_rng(0)
    x, inter = _w(rng, n, c), _w(rng, n, f)
    square, up, down = _w(rng, c, c), _w(rng, c, f), _w(rng, f, c)
    q = _w(rng, BATCH * h, LENGTH, d)
    probs = _w(rng, BATCH * h, LENGTH, LENGTH)

    def layer():
        for _ in range(4):
            x @ square  # q, k, v, output projections
        q @ q.transpose(0, 2, 1)  # scores
        probs @ q  # probabilities x values
        x @ up
        inter @ down

    seconds = _best_of(lambda: [layer() for _ in range(BERT["num_hidden_layers"])])
    seconds += _best_of(lambda: x[:BATCH] @ square)  # pooler
    flops = BERT["num_hidden_layers"] * (2 * n * c * (4 * c + 2 * f)
                                         + 4 * BATCH * h * LENGTH * LENGTH * d)
    return BATCH / seconds, flops / seconds / 1e9


def t5_matvec_floor(weights: dict[str, np.ndarray], batch: int) -> float:
    """Tokens/s of one decoder step's weight products alone (cross-attention keys and values
    are computed once per call, so only its q and o count)."""
    mats = [a for name, a in weights.items() if name.startswith("decoder.block") and a.ndim == 2
            and "relative_attention_bias" not in name
            and not any(k in name for k in ("EncDecAttention.k.", "EncDecAttention.v."))]
    mats.append(weights["shared.weight"])  # the tied LM head
    vectors = {m.shape[1]: np.ones((m.shape[1], batch), np.float32) for m in mats}
    return batch / _best_of(lambda: [m @ vectors[m.shape[1]] for m in mats], 5)


# ---- ours ---------------------------------------------------------------------------------------
class Ours:
    def __init__(self, bert_dir: Path | None, t5_dir: Path | None):
        import mf_generate  # noqa: F401  (installs model.generate)
        from mf_generate import generate
        from mf_models import AutoModel

        self.generate = generate
        self.bert = AutoModel.from_pretrained(bert_dir) if bert_dir else None
        self.t5 = AutoModel.from_pretrained(t5_dir) if t5_dir else None

    def encode(self, ids: np.ndarray) -> dict:
        forward = self.bert.forward_function()
        mask, types = np.ones_like(ids), np.zeros_like(ids)
        start = time.perf_counter()
        out = forward(ids, mask, types)
        hidden = out.last_hidden_state.asnumpy()
        seconds = time.perf_counter() - start
        return dict(seq_s=ids.shape[0] / seconds, sample=hidden[0, :8].tolist())

    def translate(self, ids: np.ndarray) -> dict:
        start = time.perf_counter()
        out = self.generate(self.t5, ids, max_new_tokens=T5_NEW, eos_token_id=None,
                            return_dict=True)
        seconds = time.perf_counter() - start
        return dict(tok_s=ids.shape[0] * T5_NEW / seconds,
                    tokens=out.sequences[:, 1:].tolist())


# ---- the peer: transformers in a python with torch, one request per line ---------------------
PEER = r"""
import json, sys, time
import torch, transformers
torch.set_num_threads(int(sys.argv[3]))
bert = transformers.AutoModel.from_pretrained(sys.argv[1], dtype=torch.float32).eval() \
    if sys.argv[1] != "-" else None
t5 = transformers.T5ForConditionalGeneration.from_pretrained(sys.argv[2], dtype=torch.float32)\
    .eval() if sys.argv[2] != "-" else None
print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__}),
      flush=True)
warm = set()
with torch.no_grad():
    for line in sys.stdin:
        request = json.loads(line)
        ids = torch.tensor(request["ids"])
        if request["kind"] == "encode":
            if ("encode", ids.shape) not in warm:
                bert(ids)
                warm.add(("encode", ids.shape))
            start = time.perf_counter()
            hidden = bert(ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            seconds = time.perf_counter() - start
            print(json.dumps(dict(seq_s=ids.shape[0] / seconds,
                                  sample=hidden[0, :8].tolist())), flush=True)
        else:
            kw = dict(attention_mask=torch.ones_like(ids), do_sample=False, eos_token_id=None,
                      pad_token_id=0)
            new = request["new"]
            if ("t5", ids.shape) not in warm:
                t5.generate(ids, max_new_tokens=4, min_new_tokens=4, **kw)
                warm.add(("t5", ids.shape))
            start = time.perf_counter()
            out = t5.generate(ids, max_new_tokens=new, min_new_tokens=new, **kw)
            seconds = time.perf_counter() - start
            print(json.dumps(dict(tok_s=ids.shape[0] * new / seconds,
                                  tokens=out[:, 1:].tolist())), flush=True)
"""


class Peer:
    def __init__(self, python: str, bert_dir: Path | None, t5_dir: Path | None):
        env = dict(os.environ, OMP_NUM_THREADS=str(TORCH_THREADS))
        self.process = subprocess.Popen(
            [python, "-c", PEER, str(bert_dir or "-"), str(t5_dir or "-"), str(TORCH_THREADS)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env)
        self.versions = self._answer()

    def ask(self, **request) -> dict:
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


# ---- the runs, in turns ------------------------------------------------------------------------
def bench_bert(ours: Ours, peer: Peer | None, repeats: int) -> None:
    ids = np.random.default_rng(1).integers(1000, BERT["vocab_size"], (BATCH, LENGTH))
    start = time.perf_counter()
    ours.encode(ids)  # compiles this shape
    compile_s = time.perf_counter() - start
    runs: dict[str, list[dict]] = {"ours": [], "peer": []}
    for _ in range(repeats):
        runs["ours"].append(ours.encode(ids))
        if peer is not None:
            runs["peer"].append(peer.ask(kind="encode", ids=ids.tolist()))
    floor_seq_s, gflops = bert_matmul_floor()
    mf = [r["seq_s"] for r in runs["ours"]]
    print(f"\n== BERT-base encoder (110M, fp32), batch {BATCH} x {LENGTH} tokens; sequences/s, "
          f"best (median) of {repeats} alternating runs ==")
    line = f"mf {max(mf):7.1f} ({np.median(mf):6.1f})"
    if runs["peer"]:
        hf = [r["seq_s"] for r in runs["peer"]]
        diff = np.abs(np.array(runs["ours"][0]["sample"]) - np.array(runs["peer"][0]["sample"]))
        line += (f" | transformers {max(hf):7.1f} ({np.median(hf):6.1f}) | mf/HF "
                 f"{max(mf) / max(hf):.2f} | hidden states max |diff| {diff.max():.1e}")
    print(line)
    print(f"floor: the same matrix products in numpy/OpenBLAS {floor_seq_s:7.1f} sequences/s "
          f"({gflops:.0f} GFLOP/s); mf at {max(mf) / floor_seq_s:.0%} of it; mf compile "
          f"{compile_s:.1f} s (once per batch x length bucket)")


def bench_t5(ours: Ours, peer: Peer | None, weights: dict, repeats: int) -> None:
    rng = np.random.default_rng(2)
    print(f"\n== T5-small (60M, fp32), {T5_INPUT}-token input, {T5_NEW} greedy tokens; tokens/s "
          f"of whole generate() calls, best (median) of {repeats} alternating runs ==")
    for batch in T5_BATCHES:
        ids = rng.integers(3, T5["vocab_size"], (batch, T5_INPUT))
        start = time.perf_counter()
        ours.translate(ids)  # compiles the encoder and the decoder step of this bucket
        compile_s = time.perf_counter() - start
        runs: dict[str, list[dict]] = {"ours": [], "peer": []}
        for _ in range(repeats):
            runs["ours"].append(ours.translate(ids))
            if peer is not None:
                runs["peer"].append(peer.ask(kind="t5", ids=ids.tolist(), new=T5_NEW))
        compile_s -= T5_NEW * batch / max(r["tok_s"] for r in runs["ours"])
        mf = [r["tok_s"] for r in runs["ours"]]
        line = f"batch {batch}: mf {max(mf):6.1f} ({np.median(mf):6.1f})"
        if runs["peer"]:
            hf = [r["tok_s"] for r in runs["peer"]]
            same = runs["ours"][0]["tokens"] == runs["peer"][0]["tokens"]
            line += (f" | transformers {max(hf):6.1f} ({np.median(hf):6.1f}) | mf/HF "
                     f"{max(mf) / max(hf):.2f} | greedy tokens "
                     f"{'identical' if same else 'DIFFER'}")
        floor = t5_matvec_floor(weights, batch)
        print(f"{line} | floor (decoder-step matrix products, numpy) {floor:7.1f} | "
              f"mf compile {compile_s:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", help="python of a venv with torch + transformers")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=("bert", "t5"))
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats} must be >= 1")
    python, why = peer_python(args.torch_python)
    if python is None:
        print(f"no peer: {why}. Printing mf's figures only.", file=sys.stderr)
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores; others' jobs add noise); "
          f"copy bandwidth {copy_bandwidth() / 1e9:.1f} GB/s")
    with tempfile.TemporaryDirectory() as tmp:
        bert_dir = t5_dir = None
        if args.only in (None, "bert"):
            bert_dir = Path(tmp) / "bert"
            write_directory(BERT, bert_weights(np.random.default_rng(0)), bert_dir)
        t5w = None
        if args.only in (None, "t5"):
            t5_dir = Path(tmp) / "t5"
            t5w = t5_weights(np.random.default_rng(0))
            write_directory(T5, t5w, t5_dir)
        peer = Peer(python, bert_dir, t5_dir) if python else None
        try:
            ours = Ours(bert_dir, t5_dir)
            if bert_dir:
                bench_bert(ours, peer, args.repeats)
            if t5_dir:
                bench_t5(ours, peer, t5w, args.repeats)
        finally:
            if peer is not None:
                peer.close()
    if peer is not None:
        print(f"peer: torch {peer.versions['torch']}, transformers "
              f"{peer.versions['transformers']}, {TORCH_THREADS} threads")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
