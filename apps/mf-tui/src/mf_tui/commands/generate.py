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

    from mf_generate import TextStreamer
    from mf_generate.pipelines import TextGenerationPipeline
    from mf_models import AutoModelForCausalLM

    pipe = TextGenerationPipeline(AutoModelForCausalLM.from_pretrained(model), tokenizer)
    streamer = TextStreamer(tokenizer, skip_special_tokens=True) if stream else None
    result = pipe(prompt, streamer=streamer, **settings)
    if not stream:
        typer.echo(result[0]["text_generation_text"][0])

