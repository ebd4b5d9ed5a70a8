"""`mf pipeline TASK MODEL_OR_DIR INPUT... [--labels a,b,c]`: one MindFormers task on inputs.

TASK is a task name of `pipeline(task=...)`; MODEL_OR_DIR a model directory (ours or Hugging
Face's, with its processor files) or a preset name ($MF_HOME/<name>); each INPUT is what the
task reads (an image file for the image tasks). Results print one line per candidate
(`label<TAB>score`), or JSON with --json. Each task's runner is one entry of `RUNNERS`.

Everything that needs no weights is checked first (task, model family, input files, options),
so a bad request fails in a moment with one line and exit code 2. The model runs eagerly for a
few inputs and compiled for more than a batch (compiling costs seconds, once per process).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from mf_tui.exit_codes import EXIT_USAGE

# Inputs above which the model is compiled: one batch of the pipelines' default size.
COMPILE_ABOVE = 8


def register(root: typer.Typer) -> None:
    root.command("pipeline")(pipeline)


class UsageError(ValueError):
    """A request this command refuses before loading anything (exit code 2)."""

    exit_code = EXIT_USAGE


INPUTS_ARG = typer.Argument(..., metavar="INPUT...",
                            help="What the task reads: image files for the image tasks.")
OUTPUT = typer.Option(None, "--output", help="Masked image modeling: where to write the "
                      "reconstructed image (a directory for several inputs).")


def pipeline(
    task: str = typer.Argument(..., metavar="TASK", help="The task, e.g. image_classification, "
                                         "zero_shot_image_classification."),
    model: str = typer.Argument(..., metavar="MODEL_OR_DIR",
                                help="A model directory or a preset name."),
    inputs: list[str] = INPUTS_ARG,
    labels: str = typer.Option(None, "--labels", help="Comma-separated labels or texts: the "
                               "candidates (zero-shot, contrastive) or the classes to show."),
    top_k: int = typer.Option(5, "--top-k", help="Classes to show per input (classification)."),
    hypothesis_template: str = typer.Option(
        "This is a photo of {}.", "--hypothesis-template",
        help="Zero-shot: the sentence a label is put in ({} marks where)."),
    seed: int = typer.Option(None, "--seed", help="Masked image modeling: seed of the mask."),
    output: Path = OUTPUT,
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Run TASK with a model on INPUT...: classify images, score images against labels or
    texts, reconstruct masked images."""
    from mf_generate.pipelines import check_task

    check_task(task)
    if task not in RUNNERS:
        raise UsageError(f"task '{task}' has no command-line runner yet; tasks: "
                         f"{', '.join(RUNNERS)}")
    options = dict(labels=_split(labels), top_k=top_k, hypothesis_template=hypothesis_template,
                   seed=seed, output=output)
    RUNNERS[task](task, model, inputs, options, as_json)


def _split(labels: str | None) -> list[str] | None:
    if labels is None:
        return None
    parts = [p.strip() for p in labels.split(",")]
    if not all(parts):
        raise UsageError(f"--labels {labels!r} has an empty label; give a,b,c")
    return parts


# ---- the image tasks ----------------------------------------------------------------------------
def _image_pipeline(task: str, model: str, inputs: list[str]):
    """Check the model's family and the image files, then build the pipeline."""
    from mf_generate.vision_pipelines import PIPELINES, vision_pipeline
    from mf_models import load_config

    family = load_config(model).family
    needs = PIPELINES[task].families
    if family not in needs:
        raise UsageError(f"task '{task}' needs a {' or '.join(needs)} model; {model} is "
                         f"{family}")
    for name in inputs:
        if not Path(name).expanduser().is_file():
            raise UsageError(f"image file {name} does not exist")
    return vision_pipeline(task, model, compile=len(inputs) > COMPILE_ABOVE)


def _print_ranked(inputs: list[str], results: list[list[dict[str, Any]]], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([{"input": i, "results": r} for i, r in zip(inputs, results,
                                                                             strict=True)]))
        return
    for name, ranked in zip(inputs, results, strict=True):
        if len(inputs) > 1:
            typer.echo(f"{name}:")
        for row in ranked:
            extra = f"\tsimilarity={row['similarity']:.4f}" if "similarity" in row else ""
            typer.echo(f"{row['label']}\t{row['score']:.4f}{extra}")


def _classify(task: str, model: str, inputs: list[str], opt: dict[str, Any],
              as_json: bool) -> None:
    if opt["top_k"] < 1:
        raise UsageError(f"--top-k {opt['top_k']} must be >= 1")
    pipe = _image_pipeline(task, model, inputs)
    _print_ranked(inputs, pipe(inputs, top_k=opt["top_k"], labels=opt["labels"]), as_json)


def _zero_shot(task: str, model: str, inputs: list[str], opt: dict[str, Any],
               as_json: bool) -> None:
    if not opt["labels"]:
        raise UsageError(f"task '{task}' needs --labels a,b,c (the candidate labels)")
    if "{}" not in opt["hypothesis_template"]:
        raise UsageError(f"--hypothesis-template {opt['hypothesis_template']!r} needs a {{}} "
                         "where the label goes")
    pipe = _image_pipeline(task, model, inputs)
    results = pipe(inputs, candidate_labels=opt["labels"],
                   hypothesis_template=opt["hypothesis_template"])
    _print_ranked(inputs, results, as_json)


def _contrastive(task: str, model: str, inputs: list[str], opt: dict[str, Any],
                 as_json: bool) -> None:
    if not opt["labels"]:
        raise UsageError(f"task '{task}' needs --labels 'text a,text b' (the texts to score)")
    pipe = _image_pipeline(task, model, inputs)
    _print_ranked(inputs, pipe(inputs, texts=opt["labels"]), as_json)


def _reconstruct(task: str, model: str, inputs: list[str], opt: dict[str, Any],
                 as_json: bool) -> None:
    out = opt["output"]
    targets: list[Path | None] = [None] * len(inputs)
    if out is not None:
        out = out.expanduser()
        if len(inputs) > 1:
            if out.exists() and not out.is_dir():
                raise UsageError(f"--output {out} must be a directory for {len(inputs)} inputs")
            targets = [out / f"{Path(i).stem}_mae.png" for i in inputs]
        else:
            if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"):
                raise UsageError(f"--output {out} needs an image suffix (.png, .jpg ...)")
            targets = [out]
        for target in targets:
            if target.exists():
                raise UsageError(f"--output {target} exists; mf does not overwrite files it "
                                 "did not make")
    pipe = _image_pipeline(task, model, inputs)
    results = pipe(inputs, seed=opt["seed"])
    rows = []
    for name, result, target in zip(inputs, results, targets, strict=True):
        if target is not None:
            _save_image(result["image"], target)
        mask = result["mask"]
        rows.append({"input": name, "loss": result["loss"], "masked_patches": int(mask.sum()),
                     "patches": int(mask.size), "output": str(target) if target else None})
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        saved = f"\twrote {row['output']}" if row["output"] else ""
        typer.echo(f"{row['input']}\tloss={row['loss']:.4f}\tmasked="
                   f"{row['masked_patches']}/{row['patches']}{saved}")


def _save_image(image, target: Path) -> None:
    """Write atomically: a temp name in the same folder, fsync, rename."""
    import os
    import tempfile

    import PIL.Image

    image_format = PIL.Image.registered_extensions()[target.suffix.lower()]
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=target.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            image.save(handle, format=image_format)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp made it private; an image is for reading
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# Task name -> runner(task, model, inputs, options, as_json).
RUNNERS: dict[str, Callable[..., None]] = {
    "image_classification": _classify,
    "zero_shot_image_classification": _zero_shot,
    "contrastive_language_image_pretrain": _contrastive,
    "masked_image_modeling": _reconstruct,
}
