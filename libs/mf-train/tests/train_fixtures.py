"""Shared pieces of mf-train's training tests: a tiny model, learnable data, run YAMLs, and
a child process that runs a job (for SIGKILL and msrun tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

# A LLaMA small enough that a step takes milliseconds; compiling its step still takes ~5-10 s,
# which is what the tests pay for.
TINY_LLAMA = {"type": "LlamaConfig", "seq_length": 32, "vocab_size": 128, "hidden_size": 32,
              "num_layers": 1, "num_heads": 2, "intermediate_size": 64}
SAMPLE_LENGTH = TINY_LLAMA["seq_length"] + 1


class ByteTokenizer:
    """The smallest tokenizer of the protocol: UTF-8 bytes, 256 = end of text."""

    eos_token_id = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))


def pattern_samples(count: int, seed: int = 0, vocab: int = 100,
                    length: int = SAMPLE_LENGTH) -> np.ndarray:
    """Rows that repeat a short random pattern: a model can learn them in a few steps."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        pattern = rng.integers(3, vocab, rng.integers(2, 5))
        rows.append(np.resize(pattern, length))
    return np.stack(rows).astype(np.int32)


def write_mindrecord_samples(path: Path, samples: np.ndarray) -> Path:
    from mf_train.data import write_mindrecord

    return write_mindrecord(path, samples)


def run_yaml(tmp_path: Path, dataset: Path, *, output: Path | None = None, extra: str = "",
             name: str = "run.yaml", runner: str = "{epochs: 1, batch_size: 4}") -> Path:
    """A run YAML over a MindRecord file, training TINY_LLAMA; `extra` is appended."""
    model = json.dumps(TINY_LLAMA)
    text = textwrap.dedent(f"""\
        seed: 7
        output_dir: {output or tmp_path / "out"}
        runner_config: {runner}
        lr_schedule: {{type: cosine, learning_rate: 1.0e-2, warmup_steps: 2, lr_end: 1.0e-3}}
        optimizer: {{type: AdamW, weight_decay: 0.01}}
        train_dataset:
          data_loader: {{type: MindDataset, dataset_dir: "{dataset}", shuffle: true}}
        model:
          model_config: {model}
        """) + textwrap.dedent(extra)
    path = tmp_path / name
    path.write_text(text)
    return path


CHILD = """
import sys
from mf_train.jobs import run_job
run_job(sys.argv[1], sys.argv[2:], "train", echo=False)
"""


def start_job(config: Path, options: list[str], log: Path) -> subprocess.Popen:
    """`run_job(config, options)` in a child process, its output in `log`."""
    handle = open(log, "wb")  # noqa: SIM115 - closed with the process by the caller
    return subprocess.Popen([sys.executable, "-c", CHILD, str(config), *options],
                            stdout=handle, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def step_losses(events_file: Path) -> dict[int, float]:
    """step -> loss from an event log; a step logged twice (a resume) keeps its last value."""
    from mf_train.jobdir import read_events

    out = {}
    for event in read_events(events_file).events:
        if event["kind"] == "step":
            out[event["step"]] = event["loss"]
    return out
