"""`mf model ...`: inspect presets and checkpoints, convert weights to and from Hugging Face."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Inspect model presets and convert checkpoints.")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="model")


def _human(count: int) -> str:
    for unit, size in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if count >= size:
            return f"{count / size:.2f}{unit}"
    return str(count)


@app.command("list")
def list_models() -> None:
    """List the model presets (MindFormers' names)."""
    from mf_models import preset_config, preset_names

    names = preset_names()
    width = max(len(n) for n in names)
    for name in names:
        config = preset_config(name)
        typer.echo(f"{name:<{width}} {config.family:<10} layers={config.num_layers:<3} "
                   f"hidden={config.hidden_size:<6} params={_human(config.parameter_count):<8} "
                   f"{_model_class(config)}")


def _model_class(config) -> str:
    """The class the config builds (a BERT preset names its head), without importing it."""
    from mf_models.registry import family_of_config

    return getattr(config, "architecture", None) or family_of_config(config).model_class_name()


@app.command("show")
def show(name_or_dir: str = typer.Argument(..., metavar="NAME|DIR",
                                           help="A preset name or a model directory.")) -> None:
    """Show a model's config, parameter count and where its weights are looked up."""
    from mf_models import load_config
    from mf_models.auto import weights_directory
    from mf_models.weights.io import weight_files

    config = load_config(name_or_dir)
    directory = weights_directory(name_or_dir)
    files = weight_files(directory) if directory.is_dir() else []
    typer.echo(f"model:      {config.name or name_or_dir}")
    typer.echo(f"family:     {config.family} ({_model_class(config)})")
    typer.echo(f"parameters: {config.parameter_count:,} ({_human(config.parameter_count)})")
    if files:
        typer.echo(f"weights:    {', '.join(str(f) for f in files)}")
    else:
        typer.echo(f"weights:    none in {directory} (looked for model.safetensors, its index, "
                   f"model.ckpt); random init only via from_config")
    typer.echo("config:")
    for key, value in config.to_dict().items():
        typer.echo(f"  {key}: {value}")


@app.command("convert")
def convert(
    src: str = typer.Argument(..., metavar="SRC", help="HF directory, our directory or preset."),
    dst: str = typer.Argument(..., metavar="DST", help="A new (or empty) output directory."),
    to: str = typer.Option(None, "--to", help="mf or hf; default: the other format than SRC's."),
    fmt: str = typer.Option("safetensors", "--format",
                            help="Our format's weight file: safetensors or ckpt (MindSpore)."),
) -> None:
    """Convert a Hugging Face directory to our format, or ours to Hugging Face's."""
    from mf_models.weights.convert import convert as run
    from mf_train.outputs import claim_output

    # mf's output rule (never the working directory, home, a root or a person's folder);
    # convert itself then writes a new directory only, in one rename
    claim_output(dst, kind="model", what="DST", hint="choose a new directory")
    target, out = run(src, dst, to=to, fmt=fmt)
    label = "Hugging Face" if target == "hf" else "mf"
    typer.echo(f"wrote {label} checkpoint to {out}")
