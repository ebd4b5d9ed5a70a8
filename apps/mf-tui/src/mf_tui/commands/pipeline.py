"""`mf pipeline TASK MODEL_OR_DIR INPUT...`: any pipeline task from the command line.

    mf pipeline fill_mask bert_base_uncased "Paris is the [MASK] of France."
    mf pipeline text_classification DIR "a premise" --pair "a hypothesis"
    mf pipeline question_answering DIR "Where does he live?" --context "He lives in Paris."
    mf pipeline translation_en_to_de t5_small "The house is wonderful." --stream
    mf pipeline image_classification DIR cat.jpg dog.png --top-k 3
    mf pipeline zero_shot_image_classification CLIP_DIR cat.jpg --labels cat,dog,car
    mf pipeline masked_image_modeling MAE_DIR cat.jpg --seed 0 --output mae.png

Prints the pipeline's result as JSON (one document for all inputs, as the Python call returns
it), or with --stream the generated text as it comes. The task name and the settings are
checked before anything loads (image files too); `mf generate` remains the short way to
continue a prompt. The image tasks run eagerly for a few images and compiled for more than a
batch (compiling costs seconds, once per process).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

# A list default: typer's Argument as a module-level value, as commands/train.py does.
INPUTS = typer.Argument(..., metavar="INPUT...", help="Texts (question_answering: questions); "
                        "image files for the image tasks.")
OUTPUT = typer.Option(None, "--output", help="masked_image_modeling: where to write the "
                      "reconstructed image (a directory for several inputs).")
IMAGE_TASKS = ("image_classification", "zero_shot_image_classification",
               "contrastive_language_image_pretrain", "masked_image_modeling")
# Images above which an image task compiles its model: one batch of the pipelines' default.
COMPILE_ABOVE = 8


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
    labels: str = typer.Option(None, "--labels", help="Image tasks: comma-separated labels or "
                               "texts, the candidates (zero_shot_image_classification, "
                               "contrastive_language_image_pretrain) or the classes to keep "
                               "(image_classification)."),
    hypothesis_template: str = typer.Option(
        None, "--hypothesis-template",
        help="zero_shot_image_classification: the sentence a label goes in ({} marks where; "
             "default 'This is a photo of {}.')."),
    seed: int = typer.Option(None, "--seed", help="masked_image_modeling: seed of the mask."),
    output: Path = OUTPUT,
) -> None:
    """Run a pipeline task on INPUT texts or images and print the result as JSON."""
    import json

    from mf_generate.errors import GenerateConfigError
    from mf_generate.pipelines import resolve_task, task_settings

    settings = {k: v for k, v in (("top_k", top_k), ("aggregation_strategy", aggregation),
                                  ("max_new_tokens", max_new_tokens)) if v is not None}
    image_options = {"--labels": labels, "--hypothesis-template": hypothesis_template,
                     "--seed": seed, "--output": output}
    if resolve_task(task) in IMAGE_TASKS:
        settings.update(_image_settings(resolve_task(task), inputs, image_options))
    elif any(v is not None for v in image_options.values()):
        given = next(k for k, v in image_options.items() if v is not None)
        raise GenerateConfigError(f"{given} is for the image tasks ({', '.join(IMAGE_TASKS)})")
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
    if name == "masked_image_modeling":
        typer.echo(json.dumps(_reconstruct(pipe, inputs, output), indent=2))
        return
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


# ---- the image tasks ------------------------------------------------------------------------
class UsageError(ValueError):
    """A request refused before anything loads (exit code 2)."""

    exit_code = 2


def _image_settings(name: str, inputs: list[str], options: dict[str, Any]) -> dict[str, Any]:
    """The pipeline settings of an image task's options; files and --output checked first."""
    for path in inputs:
        if not Path(path).expanduser().is_file():
            raise UsageError(f"image file {path} does not exist")
    allowed = {"image_classification": ("--labels",),
               "zero_shot_image_classification": ("--labels", "--hypothesis-template"),
               "contrastive_language_image_pretrain": ("--labels",),
               "masked_image_modeling": ("--seed", "--output")}[name]
    for option, value in options.items():
        if value is not None and option not in allowed:
            raise UsageError(f"{option} is not an option of {name} (its options: "
                             f"{', '.join(allowed)})")
    settings: dict[str, Any] = {"compile": len(inputs) > COMPILE_ABOVE}
    labels = options["--labels"]
    if labels is not None:
        parts = [p.strip() for p in labels.split(",")]
        if not all(parts):
            raise UsageError(f"--labels {labels!r} has an empty label; give a,b,c")
        key = {"image_classification": "labels", "zero_shot_image_classification":
               "candidate_labels", "contrastive_language_image_pretrain": "texts"}[name]
        settings[key] = parts
    elif name in ("zero_shot_image_classification", "contrastive_language_image_pretrain"):
        raise UsageError(f"{name} needs --labels a,b,c (the candidate labels or texts)")
    if options["--hypothesis-template"] is not None:
        settings["hypothesis_template"] = options["--hypothesis-template"]
    if options["--seed"] is not None:
        settings["seed"] = options["--seed"]
    if options["--output"] is not None:
        _output_targets(options["--output"], inputs)  # refused now, not after the model runs
    return settings


def _output_targets(output: Path, inputs: list[str]) -> list[Path]:
    """Where MAE's reconstructions go: the file, or <stem>_mae.png in a directory; never over
    an existing file (mf does not replace what it did not make)."""
    output = output.expanduser()
    if len(inputs) > 1:
        if output.exists() and not output.is_dir():
            raise UsageError(f"--output {output} must be a directory for {len(inputs)} inputs")
        targets = [output / f"{Path(i).stem}_mae.png" for i in inputs]
    else:
        if output.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"):
            raise UsageError(f"--output {output} needs an image suffix (.png, .jpg ...)")
        targets = [output]
    for target in targets:
        if target.exists():
            raise UsageError(f"--output {target} exists; mf does not overwrite files it did "
                             "not make")
    return targets


def _reconstruct(pipe, inputs: list[str], output: Path | None) -> list[dict[str, Any]]:
    """MAE on each image: loss and mask as JSON, the reconstruction written to --output."""
    targets = _output_targets(output, inputs) if output is not None else [None] * len(inputs)
    results = pipe(inputs)
    rows = []
    for path, result, target in zip(inputs, results, targets, strict=True):
        if target is not None:
            _save_image(result["image"], target)
        rows.append({"input": path, "loss": result["loss"],
                     "masked_patches": int(result["mask"].sum()),
                     "mask": result["mask"].astype(int).tolist(),
                     "output": str(target) if target is not None else None})
    return rows


def _save_image(image, target: Path) -> None:
    """Write atomically (the one helper: temp name, the user's file mode, fsync, rename)."""
    import PIL.Image
    from mf_train.atomic import atomic_file

    image_format = PIL.Image.registered_extensions()[target.suffix.lower()]
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(target) as tmp, open(tmp, "wb") as handle:
        image.save(handle, format=image_format)
