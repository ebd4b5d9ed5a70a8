"""`mf pipeline TASK MODEL_OR_DIR INPUT...`: any pipeline task from the command line.

    mf pipeline fill_mask bert_base_uncased "Paris is the [MASK] of France."
    mf pipeline text_classification DIR "a premise" --pair "a hypothesis"
    mf pipeline question_answering DIR "Where does he live?" --context "He lives in Paris."
    mf pipeline translation_en_to_de t5_small "The house is wonderful." --stream

Prints the pipeline's result as JSON (one document for all inputs, as the Python call returns
it), or with --stream the generated text as it comes. The task name and the settings are
checked before anything loads; `mf generate` remains the short way to continue a prompt.
"""

from __future__ import annotations

import typer

# A list default: typer's Argument as a module-level value, as commands/train.py does.
INPUTS = typer.Argument(..., metavar="INPUT...", help="Texts (question_answering: questions).")


def register(root: typer.Typer) -> None:
    root.command("pipeline")(run_pipeline)


def run_pipeline(
    task: str = typer.Argument(..., metavar="TASK",
                               help="MindFormers' or Hugging Face's task name: fill_mask, "
                               "text_classification, token_classification, question_answering, "
                               "translation[_xx_to_yy], text2text_generation, text_generation."),
    model: str = typer.Argument(..., metavar="MODEL_OR_DIR",
                                help="A model directory (with tokenizer files) or a preset name."),
    inputs: list[str] = INPUTS,
    pair: str = typer.Option(None, "--pair", help="text_classification: the second text of "
                             "the pair, for every INPUT."),
    context: str = typer.Option(None, "--context", help="question_answering: the context."),
    top_k: int = typer.Option(None, "--top-k", help="Candidates or labels to return."),
    aggregation: str = typer.Option(None, "--aggregation",
                                    help="token_classification: simple (default) or none."),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens",
                                       help="Generating tasks: tokens to generate."),
    stream: bool = typer.Option(False, "--stream",
                                help="Generating tasks: print the text as it is generated."),
) -> None:
    """Run a pipeline task on INPUT texts and print the result as JSON."""
    import json

    from mf_generate.errors import GenerateConfigError
    from mf_generate.pipelines import task_settings

    settings = {k: v for k, v in (("top_k", top_k), ("aggregation_strategy", aggregation),
                                  ("max_new_tokens", max_new_tokens)) if v is not None}
    name, _, settings = task_settings(task, settings)  # one line, before anything loads
    generating = name in ("text_generation", "translation", "text2text_generation")
    if pair is not None and name != "text_classification":
        raise GenerateConfigError("--pair is for text_classification")
    if context is not None and name != "question_answering":
        raise GenerateConfigError("--context is for question_answering")
    if name == "question_answering" and context is None:
        raise GenerateConfigError("question_answering needs --context TEXT (the INPUTs are "
                                  "the questions)")
    if stream and (not generating or len(inputs) != 1):
        raise GenerateConfigError("--stream is for one INPUT of a generating task "
                                  "(text_generation, translation, text2text_generation)")

    from mf_generate import pipeline

    pipe = pipeline(name, model=model, **settings)
    if name == "question_answering":
        items = [{"question": q, "context": context} for q in inputs]
        result = pipe(items if len(items) > 1 else items[0])
    elif name == "text_classification" and pair is not None:
        items = [{"text": text, "text_pair": pair} for text in inputs]
        result = pipe(items if len(items) > 1 else items[0])
    elif stream:
        from mf_generate import TextStreamer

        pipe(inputs[0], streamer=TextStreamer(pipe.tokenizer, skip_prompt=name != "text_"
                                              "generation", skip_special_tokens=True))
        return
    else:
        result = pipe(inputs if len(inputs) > 1 else inputs[0])
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
