"""`mf generate MODEL_OR_DIR PROMPT`: text generation from the command line.

MODEL_OR_DIR is a directory holding a model (ours or Hugging Face's) and its tokenizer files,
or a preset name, read from $MF_HOME/<name>. Every check that needs no weights (settings,
tokenizer, prompt length, vocabulary) runs before the model is loaded, and before MindSpore is
imported, so a bad request fails in a moment with one line and exit code 2.
"""

from __future__ import annotations

import typer


def register(root: typer.Typer) -> None:
    root.command("generate")(generate)


def generate(
    model: str = typer.Argument(..., metavar="MODEL_OR_DIR",
                                help="A model directory (with tokenizer files) or a preset name."),
    prompt: str = typer.Argument(..., help="The text to continue."),
    max_new_tokens: int = typer.Option(32, "--max-new-tokens", help="Tokens to generate."),
    do_sample: bool = typer.Option(False, "--do-sample",
                                   help="Sample instead of taking the most likely token."),
    top_k: int = typer.Option(None, "--top-k",
                              help="Sample from the k most likely tokens (implies --do-sample)."),
    top_p: float = typer.Option(None, "--top-p", help="Sample from the smallest set of tokens "
                                "whose probability reaches p, in (0, 1] (implies --do-sample)."),
    temperature: float = typer.Option(None, "--temperature",
                                      help="Divide the logits by t > 0 (implies --do-sample)."),
    seed: int = typer.Option(None, "--seed", help="Seed of sampling: same seed, same text."),
    stream: bool = typer.Option(False, "--stream", help="Print the text as it is generated."),
    model_parallel: int = typer.Option(1, "--model-parallel", metavar="N",
                                       help="Split the model over N local ranks (tensor "
                                            "parallel; the same tokens as one process)."),
) -> None:
    """Continue PROMPT with a model: greedy by default, sampling with --do-sample."""
    from mf_generate import GenerationConfig
    from mf_generate.generation import check_lengths
    from mf_generate.pipelines import check_vocabulary, tokenizer_for
    from mf_models import load_config

    sampling = {k: v for k, v in (("top_k", top_k), ("top_p", top_p),
                                  ("temperature", temperature)) if v is not None}
    settings = dict(max_new_tokens=max_new_tokens, do_sample=do_sample or bool(sampling),
                    seed=seed, **sampling)
    GenerationConfig(**settings)  # one-line errors for bad values, before anything loads
    config = load_config(model)
    tokenizer = tokenizer_for(model)
    check_vocabulary(tokenizer, config.vocab_size)
    ids = tokenizer(prompt)["input_ids"]
    check_lengths(len(ids), max_new_tokens, config.max_positions)

    if model_parallel != 1:
        typer.echo(_split_over_ranks(model, prompt, settings, model_parallel, config, stream))
        return
    from mf_generate import TextStreamer
    from mf_generate.pipelines import TextGenerationPipeline
    from mf_models import AutoModelForCausalLM

    pipe = TextGenerationPipeline(AutoModelForCausalLM.from_pretrained(model), tokenizer)
    streamer = TextStreamer(tokenizer, skip_special_tokens=True) if stream else None
    result = pipe(prompt, streamer=streamer, **settings)
    if not stream:
        typer.echo(result[0]["text_generation_text"][0])



def _split_over_ranks(model: str, prompt: str, settings: dict, model_parallel: int,
                      config, stream: bool) -> str:
    """The text from `model_parallel` ranks of mf_generate.distributed under mf's launcher."""
    import json
    import shutil
    import sys
    import tempfile
    from pathlib import Path

    from mf_models.dims import model_dims
    from mf_parallel import ParallelConfig
    from mf_train.launch import launch_local
    from mf_train.supervisor import raise_for

    from mf_tui.commands.train import TrainUsageError

    if stream:
        raise TrainUsageError("--stream prints from one process; with --model-parallel the "
                              "text is printed when the ranks are done")
    # the layout's one-line errors (heads, kv heads, ffn not divisible) before any rank starts
    ParallelConfig(model_parallel=model_parallel).validate(model_parallel, model_dims(config))
    # a folder of mf's own in the temp dir: removed after a success, kept (with the ranks'
    # logs the error names) after a failure
    tmp = Path(tempfile.mkdtemp(prefix="mf-generate-"))
    request, out = tmp / "request.json", tmp / "out.json"
    request.write_text(json.dumps({"prompts": [prompt], "settings": settings,
                                   "model_parallel": model_parallel}))
    command = [sys.executable, "-m", "mf_generate.distributed", "--model", model,
               "--request", str(request), "--out", str(out)]
    raise_for(launch_local(command, model_parallel, tmp / "logs").outcome)
    text = json.loads(out.read_text())["texts"][0]
    shutil.rmtree(tmp, ignore_errors=True)
    return text
