"""One rank of tests/test_parallel_training.py: train several layouts for 3 steps each.

Run as `msrun ... msrun_parallel_worker.py OUT_DIR CASES_JSON`; not a test module itself. Every
case builds its model whole from a debug preset (same seed on every rank), shards it with
`build_parallel_step`, trains 3 optimizer steps on the rows of `global_batches` this rank's
data-parallel index reads, and writes `OUT_DIR/<case>/rank_<r>.npz` (this rank's weight slices)
and `rank_<r>.json` (losses, grad norms, optimizer-state bytes, peak RSS); rank 0 also writes
the case's strategy file.
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

import numpy as np
from mf_parallel import ContextConfig, ParallelConfig, init_context, write_strategy
from parallel_cases import GENERATE_OPTIONS, LR, PROMPTS, STEPS, adamw, global_batches


def run_case(case: dict, rank: int, world: int, out: Path) -> None:
    from mf_models import AutoModelForCausalLM

    from mf_train.parallel_step import build_parallel_step

    config = ParallelConfig(
        data_parallel=case["dp"], model_parallel=case["mp"], pipeline_stage=case["pp"],
        micro_batch_num=case["micro"], optimizer_shard=case.get("optimizer_shard", False),
        vocab_emb_dp=case.get("vocab_emb_dp", True)).resolve(world)
    model = AutoModelForCausalLM.from_config(case["model"], seed=0)
    step = build_parallel_step(
        model, config, rank, learning_rates=np.full(STEPS, LR, np.float32), adamw=adamw(),
        micro_batches=case["micro"], interleave=case.get("interleave", 1),
        schedule=case.get("schedule", "1f1b"))
    dp, dp_rank = step.data_ranks, step.data_rank
    losses, norms = [], []
    for batch in global_batches(model.config.vocab_size):
        rows = len(batch) // dp
        mine = batch[dp_rank * rows:(dp_rank + 1) * rows]
        micro = np.split(mine, case["micro"])
        out_step = step.step(micro)
        losses.append(out_step.loss)
        norms.append(out_step.grad_norm)
    folder = out / case["name"]
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / f"rank_{rank}.npz", **step.part.local_state())
    optimizer = step.optimizer
    state_bytes = sum(p.nbytes for p in optimizer.get_parameters()
                      if p.name.startswith(("adam_m.", "adam_v.")))
    report = {"model": case["model"], "losses": losses, "norms": norms,
              "optimizer_state_bytes": state_bytes,
              "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    (folder / f"rank_{rank}.json").write_text(json.dumps(report))
    if rank == 0:
        write_strategy(step.part.strategy, folder / "strategy.json")


def generate_case(case: dict, rank: int, world: int, out: Path) -> None:
    """Greedy generation with the model split over mp ranks (KV cache split by heads)."""
    from mf_generate import generate
    from mf_models import AutoModelForCausalLM
    from mf_models.parallel import shard_model
    from mf_parallel.collectives import process_groups

    config = ParallelConfig(model_parallel=case["mp"]).resolve(world)
    model = AutoModelForCausalLM.from_config(case["model"], seed=0)
    part = shard_model(model, process_groups(config, rank), gather_logits=True)
    tokens = generate(part.model, PROMPTS, **GENERATE_OPTIONS)
    cache_heads = part.model.cache_heads
    folder = out / case["name"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"rank_{rank}.json").write_text(json.dumps(
        {"model": case["model"], "tokens": np.asarray(tokens).tolist(),
         "cache_heads": cache_heads}))


def main(out: Path, cases_file: Path) -> None:
    rank, world = init_context(use_parallel=True,
                               context_config=ContextConfig(mode=1, device_target="CPU"))
    for case in json.loads(cases_file.read_text()):
        if case.get("kind") == "generate":
            generate_case(case, rank, world, out)
        else:
            run_case(case, rank, world, out)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
