"""Generation with the model split over ranks (model parallel): the same tokens as one process.

On every rank of a job of `model_parallel` ranks (started by `mf generate --model-parallel N`,
mf's launcher, or msrun), each loads the whole model, keeps its slices (mf-models'
`shard_model`: projections split by the family's plan, the KV cache holding kv_heads / mp
heads) and gathers the logits whole, so the decoding loop is the one-process loop:

    rank = join_ranks(model_parallel=2)    # first: MindSpore's context before any model
    model = shard_for_generation(AutoModelForCausalLM.from_pretrained(path), 2, rank)
    generate(model, prompts, ...)          # identical tokens on every rank

`python -m mf_generate.distributed --model DIR --request FILE --out FILE` is one rank of
`mf generate --model-parallel N`: rank 0 writes the texts as JSON to `--out`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mf_generate.errors import GenerateConfigError


def join_ranks(model_parallel: int) -> int:
    """Join the job's cluster (before any model is built: MindSpore sets its context first)
    and return this rank; the job must have `model_parallel` ranks."""
    from mf_parallel import ContextConfig, init_context

    rank, world = init_context(use_parallel=True,
                               context_config=ContextConfig(mode=1, device_target="CPU"))
    if world != model_parallel:
        raise GenerateConfigError(f"model_parallel({model_parallel}) needs that many ranks, but "
                                  f"this job has {world}")
    return rank


def shard_for_generation(model: Any, model_parallel: int, rank: int) -> Any:
    """This rank's part of `model` (built or loaded whole, the same on every rank, after
    `join_ranks`); the model itself when model_parallel is 1."""
    if model_parallel == 1:
        return model
    from mf_models.dims import model_dims
    from mf_models.parallel import shard_model
    from mf_parallel import ParallelConfig
    from mf_parallel.collectives import process_groups

    config = ParallelConfig(model_parallel=model_parallel).validate(
        world_size=model_parallel, dims=model_dims(model.config))
    return shard_model(model, process_groups(config, rank), gather_logits=True).model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mf_generate.distributed")
    parser.add_argument("--model", required=True, help="a model directory or preset name")
    parser.add_argument("--request", required=True,
                        help="JSON: {prompts, settings, model_parallel}")
    parser.add_argument("--out", required=True, help="where rank 0 writes the texts (JSON)")
    args = parser.parse_args(argv)
    from mindspore.communication import get_rank

    from mf_generate.pipelines import pipeline

    request = json.loads(Path(args.request).read_text(encoding="utf-8"))
    pipe = pipeline("text_generation", model=args.model,
                    model_parallel=int(request["model_parallel"]))
    texts = [pipe(prompt, **request["settings"])[0]["text_generation_text"][0]
             for prompt in request["prompts"]]
    if get_rank() == 0:
        out = Path(args.out)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps({"texts": texts}), encoding="utf-8")
        tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
