"""`mf train|finetune|eval|predict CONFIG [--options a.b=c ...]` and `mf data prepare`.

CONFIG is a run YAML in MindFormers' `run_*.yaml` schema; `--options` overrides keys in it,
MindFormers-style (`--options runner_config.batch_size=4 seed=1`, or `--options` repeated).
Every check (YAML, keys, dataset, batch, resume) runs before the job directory is created, so
bad input is one line, exit code 2, and no half-written output directory. A training run shows
a progress bar on a terminal, and the step lines otherwise; both come from the job directory's
per-rank event log, so a data-parallel run under msrun reports the same way.
"""

from __future__ import annotations

import sys

import typer

from mf_tui.exit_codes import EXIT_USAGE

data_app = typer.Typer(no_args_is_help=True, help="Prepare training data.")


class TrainUsageError(ValueError):
    """A command line the run commands cannot take (stray arguments, missing input)."""

    exit_code = EXIT_USAGE


def register(root: typer.Typer) -> None:
    extra = {"allow_extra_args": True}
    root.command("train", context_settings=extra)(train)
    root.command("finetune", context_settings=extra)(finetune)
    root.command("eval", context_settings=extra)(evaluate)
    root.command("predict", context_settings=extra)(predict)
    root.command("export", context_settings=extra)(export)
    root.add_typer(data_app, name="data")


CONFIG_ARG = typer.Argument(..., metavar="CONFIG", help="A run YAML (MindFormers' schema).")
OPTIONS = typer.Option(None, "--options", "-o", metavar="KEY=VALUE",
                       help="Override a key of the run YAML, e.g. runner_config.batch_size=4; "
                            "several may follow one --options.")
INPUTS = typer.Option(None, "--input", "-i", help="A prompt (repeatable).")
CHECKPOINT = typer.Option(None, "--checkpoint", metavar="PATH",
                          help="Weights to use instead of load_checkpoint's: a job directory "
                               "or a checkpoint. Under LoRA (model_config.pet_config), a LoRA "
                               "run's, applied over the base that load_checkpoint names.")
SUFFIXES = typer.Option(None, "--suffix", help="File suffixes read in a directory (default .txt).")
RANDOM_INIT = typer.Option(False, "--random-init",
                           help="Use an untrained, randomly initialised model on purpose "
                                "(without it, a command that needs trained weights refuses "
                                "to run without them).")


def _options(ctx: typer.Context, options: list[str] | None) -> list[str]:
    """`--options a=1 b=2`: click takes a=1 as the option and leaves b=2 as an extra argument."""
    out = list(options or [])
    for arg in ctx.args:
        if "=" not in arg or not options:
            raise TrainUsageError(f"unexpected argument {arg!r}; overrides go after --options "
                                  "as KEY=VALUE")
        out.append(arg)
    return out


RESUME = typer.Option(False, "--resume", help="Continue from the newest checkpoint in output_dir.")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace an existing job in output_dir.")


def _run_options(options: list[str], resume: bool, overwrite: bool) -> list[str]:
    out = list(options)
    if resume:
        out.append("resume_training=true")
    if overwrite:
        out.append("overwrite_output_dir=true")
    return out


DRY_RUN = typer.Option(False, "--dry-run",
                       help="Print the run's plan (layout, batch, steps, memory, job "
                            "directory) and stop: nothing is built or written.")


def train(ctx: typer.Context, config: str = CONFIG_ARG, options: list[str] = OPTIONS,
          resume: bool = RESUME, overwrite: bool = OVERWRITE, dry_run: bool = DRY_RUN) -> None:
    """Train a model as the run YAML describes (several ranks start under mf's launcher)."""
    _fit("train", config, _run_options(_options(ctx, options), resume, overwrite),
         dry_run=dry_run)


def finetune(ctx: typer.Context, config: str = CONFIG_ARG, options: list[str] = OPTIONS,
             resume: bool = RESUME, overwrite: bool = OVERWRITE,
             random_init: bool = RANDOM_INIT, dry_run: bool = DRY_RUN) -> None:
    """Fine-tune from load_checkpoint's weights (LoRA when model_config.pet_config says so)."""
    _fit("finetune", config, _run_options(_options(ctx, options), resume, overwrite),
         random_init, dry_run=dry_run)


def evaluate(ctx: typer.Context, config: str = CONFIG_ARG,
             options: list[str] = OPTIONS, checkpoint: str = CHECKPOINT,
             random_init: bool = RANDOM_INIT) -> None:
    """Evaluate load_checkpoint's weights on eval_dataset (perplexity for a causal LM)."""
    from mf_train.jobs import run_job

    result = run_job(config, _options(ctx, options), "eval", echo=False, checkpoint=checkpoint,
                     random_init=random_init)
    if random_init:
        typer.echo("mf: note: --random-init: these are the metrics of an untrained model",
                   err=True)
    for name, value in (result.metrics or {}).items():
        typer.echo(f"{name}: {value:.4f}")


def predict(
    ctx: typer.Context,
    config: str = CONFIG_ARG,
    options: list[str] = OPTIONS,
    inputs: list[str] = INPUTS,
    max_new_tokens: int = typer.Option(32, "--max-new-tokens", help="Tokens to generate."),
    do_sample: bool = typer.Option(False, "--do-sample",
                                   help="Sample instead of taking the most likely token."),
    top_k: int = typer.Option(None, "--top-k", help="Sample from the k most likely tokens."),
    temperature: float = typer.Option(None, "--temperature", help="Divide the logits by t > 0."),
    seed: int = typer.Option(None, "--seed", help="Seed of sampling: same seed, same text."),
    stream: bool = typer.Option(False, "--stream", help="Print the text as it is generated."),
    checkpoint: str = CHECKPOINT,
    random_init: bool = RANDOM_INIT,
) -> None:
    """Continue each --input with load_checkpoint's weights (greedy unless --do-sample)."""
    if not inputs:
        raise TrainUsageError("mf predict needs at least one --input TEXT")
    if max_new_tokens < 1:
        raise TrainUsageError(f"--max-new-tokens {max_new_tokens}; it must be >= 1")
    sampling = {k: v for k, v in (("top_k", top_k), ("temperature", temperature),
                                  ("seed", seed)) if v is not None}
    if do_sample or sampling:
        from mf_generate import GenerationConfig

        sampling["do_sample"] = True
        GenerationConfig(**sampling)  # one-line errors for bad values, before anything loads
    from mf_train.jobs import run_job

    streamer = None
    option_list = _options(ctx, options)
    if random_init:
        typer.echo("mf: note: --random-init: this text comes from an untrained model", err=True)
    if stream:
        from mf_generate import TextStreamer
        from mf_train.resolve import resolve_run
        from mf_train.run_data import run_tokenizer

        tokenizer, _ = run_tokenizer(resolve_run(config, option_list, mode="predict"))
        streamer = TextStreamer(tokenizer, skip_special_tokens=True) if tokenizer else None
    result = run_job(config, option_list, "predict", echo=False, input_data=inputs,
                     streamer=streamer, max_new_tokens=max_new_tokens, generate=sampling,
                     checkpoint=checkpoint, random_init=random_init)
    if stream:
        typer.echo("")
        return
    for item in result.predictions or []:
        typer.echo(item["text_generation_text"][0])


def export(
    ctx: typer.Context,
    config: str = CONFIG_ARG,
    output: str = typer.Argument(..., metavar="OUT_DIR", help="The model directory to write."),
    options: list[str] = OPTIONS,
    checkpoint: str = CHECKPOINT,
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Replace an earlier export of mf's in OUT_DIR."),
    random_init: bool = RANDOM_INIT,
) -> None:
    """Write the run's model (LoRA merged into its base) as a model directory for mf generate."""
    from mf_train.jobs import export_job

    path = export_job(config, output, _options(ctx, options), checkpoint, overwrite,
                      random_init=random_init)
    untrained = " (untrained: --random-init)" if random_init else ""
    typer.echo(f"wrote {path}{untrained}: mf generate {path} \"PROMPT\"")


def _fit(mode: str, config: str, options: list[str], random_init: bool = False, *,
         dry_run: bool = False) -> None:
    from mf_train.jobs import plan_job, run_job

    if dry_run:
        for line in plan_job(config, options, mode):
            typer.echo(line)
        typer.echo("dry run: nothing was built or written")
        return
    interactive = sys.stderr.isatty()
    progress = _Progress() if interactive else None
    callbacks = [progress] if progress else []
    try:
        result = run_job(config, options, mode, callbacks=callbacks, echo=True,
                         argv=["mf", mode, config, *options],
                         step_lines=not interactive, random_init=random_init)
    finally:
        if progress is not None:
            progress.stop()
    summary = result.summary
    if summary is None:
        return
    evals = [e.metrics.get("perplexity") for e in summary.evaluations]
    evals = [p for p in evals if p is not None]
    if len(evals) >= 2:
        typer.echo(f"held-out perplexity: {evals[0]:.2f} before training -> {evals[-1]:.2f} "
                   f"after {summary.steps} steps")
    loss = "-" if summary.last_loss is None else f"{summary.last_loss:.4f}"
    typer.echo(f"done: {summary.steps} steps in {summary.seconds:.0f} s, last loss {loss}; "
               f"checkpoint {summary.checkpoint}; job {result.job}")


class _Progress:
    """A rich progress bar fed by the loop's step records (or rank 0's events under msrun)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[speed]} tok/s"),
            TimeElapsedColumn(), TimeRemainingColumn(),
            console=Console(stderr=True), transient=False)
        self.task = None

    def _ensure(self, total: int, done: int = 0) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("train", total=total, completed=done,
                                               loss="-", speed="-")

    def on_train_begin(self, info) -> None:
        self._ensure(info.total_steps, info.start_step)

    def on_step_end(self, record) -> None:
        self._ensure(record.total_steps, record.step - 1)
        self.progress.update(self.task, completed=record.step, loss=f"{record.loss:.4f}",
                             speed=f"{record.tokens_per_s:.0f}")

    def on_train_end(self, summary) -> None:
        self.stop()  # before a sample is streamed to stdout

    def stop(self) -> None:
        if self.task is not None:
            self.progress.stop()
            self.task = None


@data_app.command("prepare")
def prepare(
    source: str = typer.Argument(..., metavar="INPUT",
                                 help="A text file, a directory of them, or JSON lines."),
    output: str = typer.Argument(..., metavar="OUTPUT", help="The .mindrecord file to write."),
    tokenizer: str = typer.Option(..., "--tokenizer", "-t",
                                  help="A tokenizer directory or preset name."),
    seq_length: int = typer.Option(..., "--seq-length",
                                   help="The model's seq_length: samples are seq_length + 1."),
    kind: str = typer.Option(None, "--format", help="text or jsonl (default: from INPUT)."),
    text_key: str = typer.Option("text", "--text-key", help="The JSON field holding text."),
    suffixes: list[str] = SUFFIXES,
) -> None:
    """Tokenize text or JSON lines, pack it into seq_length + 1 samples, write MindRecord."""
    from pathlib import Path

    if seq_length < 1:
        raise TrainUsageError(f"--seq-length {seq_length}; it must be >= 1")
    out = Path(output)
    for existing in (out, out.with_name(out.name + ".db")):  # MindRecord's pair of files
        if existing.exists() or existing.is_symlink():
            raise TrainUsageError(f"{existing} already exists; choose a new OUTPUT (nothing "
                                  "was written)")
    if out.suffix != ".mindrecord":
        raise TrainUsageError(f"OUTPUT {out} must end in .mindrecord")
    src = Path(source)
    if kind is None:
        kind = "jsonl" if src.suffix in (".jsonl", ".json") else "text"
    if kind not in ("text", "jsonl"):
        raise TrainUsageError(f"--format {kind!r}; allowed: text, jsonl")
    from mf_tokenize import AutoTokenizer
    from mf_train.data import prepare_mindrecord

    tok = AutoTokenizer.from_pretrained(tokenizer)
    dataset = prepare_mindrecord(src, out, tok, seq_length, kind=kind, text_key=text_key,
                                 suffixes=tuple(suffixes or [".txt"]))
    typer.echo(f"wrote {len(dataset)} samples of {dataset.sample_length} tokens to {out}")
    for note in dataset.notes:  # e.g. files skipped as not UTF-8: how many, the first, why
        typer.echo(f"note: {note}")
