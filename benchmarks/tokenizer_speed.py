"""Encoding speed of mf's GPT2Tokenizer beside transformers' Python GPT2Tokenizer and the Rust
`tokenizers`, on the same byte-level BPE vocabulary and the same few MB of local text.

    uv run python benchmarks/tokenizer_speed.py [--mb 3] [--peer-python /tmp/ref4/bin/python]

The text is Python standard-library source (English comments, code, runs of spaces). The
vocabulary (GPT-2 size, 50257) is trained with `tokenizers` on *other* stdlib files, so the
encoded text is not the training text.

transformers 5 no longer has a pure-Python GPT2Tokenizer (its GPT2Tokenizer is the Rust
one), so the Python reference is transformers 4.x's GPT2Tokenizer, run by the python of a
throwaway venv (no torch needed):

    python3 -m venv /tmp/ref4 && /tmp/ref4/bin/pip install "transformers>=4.45,<5"

Every tokenizer starts fresh (empty word cache) for each timed pass, the best of --repeats
passes counts, and all three must produce identical ids. Single-threaded throughout.
"""

from __future__ import annotations

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os
import subprocess  # noqa: E402
import sys
import sysconfig  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from array import array  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # the Rust peer on one thread, like ours

DEFAULT_PEER = Path("/tmp/ref4/bin/python")
VOCAB_SIZE = 50257  # GPT-2's

PEER = r"""
import hashlib, json, sys, time
from array import array
from transformers import GPT2Tokenizer
vocab_dir, repeats, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
docs = [open(p, encoding="utf-8").read() for p in paths]
best, digest = None, None
for _ in range(repeats):
    tok = GPT2Tokenizer(vocab_dir + "/vocab.json", vocab_dir + "/merges.txt")  # empty cache
    start = time.perf_counter()
    ids = [tok.encode(d) for d in docs]
    elapsed = time.perf_counter() - start
    best = elapsed if best is None else min(best, elapsed)
    digest = hashlib.sha256(array("q", [i for d in ids for i in d]).tobytes()).hexdigest()
import transformers
print(json.dumps({"seconds": best, "digest": digest, "version": transformers.__version__}))
"""


def stdlib_files(megabytes: float, exclude: frozenset[Path] = frozenset(),
                 recursive: bool = False) -> list[Path]:
    """Standard-library .py files in name order, ``megabytes`` worth, not in ``exclude``."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files, total = [], 0
    paths = sorted(root.rglob("*.py") if recursive else root.glob("*.py"))
    for path in paths:
        if path in exclude or "site-packages" in path.parts:
            continue
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        files.append(path)
        total += path.stat().st_size
        if total >= megabytes * 1e6:
            break
    return files


def train_vocabulary(files: list[Path], out: Path) -> int:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train([str(f) for f in files], trainer)
    tok.model.save(str(out))
    return tok.get_vocab_size()


def digest(ids: list[list[int]]) -> str:
    return hashlib.sha256(array("q", [i for d in ids for i in d]).tobytes()).hexdigest()


def best_of(repeats: int, make, encode, docs: list[str]) -> tuple[float, str]:
    best, result = None, None
    for _ in range(repeats):
        tok = make()  # fresh: the word cache starts empty every pass
        start = time.perf_counter()
        ids = [encode(tok, d) for d in docs]
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
        result = digest(ids)
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=3.0, help="MB of text to encode")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peer-python", type=Path, default=None,
                        help="python of a venv with transformers<5 (default /tmp/ref4/bin/python"
                             " if it exists)")
    args = parser.parse_args()

    encode_files = stdlib_files(args.mb)
    train_files = stdlib_files(25.0, exclude=frozenset(encode_files), recursive=True)
    docs = [f.read_text(encoding="utf-8") for f in encode_files]
    megabytes = sum(len(d.encode("utf-8")) for d in docs) / 1e6

    with tempfile.TemporaryDirectory() as tmp:
        vocab_dir = Path(tmp)
        size = train_vocabulary(train_files, vocab_dir)
        print(f"text: {megabytes:.2f} MB in {len(docs)} stdlib files; vocabulary: {size} tokens "
              f"trained on {len(train_files)} other stdlib files (GPT-2 has {VOCAB_SIZE})")

        from mf_tokenize import GPT2Tokenizer
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers

        def make_rust():
            tok = Tokenizer(models.BPE.from_file(str(vocab_dir / "vocab.json"),
                                                 str(vocab_dir / "merges.txt")))
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            tok.decoder = decoders.ByteLevel()
            return tok

        rows = []
        seconds, ours_digest = best_of(args.repeats, lambda: GPT2Tokenizer.from_pretrained(
            vocab_dir), lambda t, d: t.encode(d), docs)
        rows.append(("mf_tokenize GPT2Tokenizer (Python)", seconds, ours_digest))
        seconds, rust_digest = best_of(args.repeats, make_rust,
                                       lambda t, d: t.encode(d).ids, docs)
        rows.append(("tokenizers (Rust, 1 thread)", seconds, rust_digest))

        peer = args.peer_python or (DEFAULT_PEER if DEFAULT_PEER.exists() else None)
        python_reference = None
        if peer is not None:
            done = subprocess.run(
                [str(peer), "-c", PEER, str(vocab_dir), str(args.repeats),
                 *map(str, encode_files)],
                capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"peer failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            else:
                result = json.loads(done.stdout.strip().splitlines()[-1])
                python_reference = result["seconds"]
                rows.append((f"transformers {result['version']} GPT2Tokenizer (Python)",
                             result["seconds"], result["digest"]))

    print(f"\n{'tokenizer':<44} {'MB/s':>7}  ids")
    for name, seconds, ids_digest in rows:
        same = "same" if ids_digest == ours_digest else "DIFFERENT"
        print(f"{name:<44} {megabytes / seconds:7.2f}  {same}")
    if python_reference is None:
        print("\n(no transformers<5 python given: the Python reference was skipped; see the "
              "module docstring to make one)")
    else:
        ratio = python_reference / rows[0][1]
        print(f"\nours / Python reference = {ratio:.2f}x (target >= 1.5x)")
    return 0 if all(r[2] == ours_digest for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
