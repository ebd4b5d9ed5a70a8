"""`mf ckpt transform SRC DST (--dst-strategy FILE | --dst-layout dp=D,mp=M,pp=P)`: merge a
sharded checkpoint into a whole one (`--dst-layout dp=1,mp=1,pp=1`: a model directory for
`mf generate` and `mf eval --checkpoint`), split a whole one, or reshard one layout to another.
"""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Move checkpoints between parallel layouts.")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="ckpt")


@app.command("transform")
def transform(
    src: str = typer.Argument(..., metavar="SRC", help="A checkpoint directory, whole or with "
                              "rank_<i>/ folders."),
    dst: str = typer.Argument(..., metavar="DST", help="A new directory to write."),
    dst_strategy: str = typer.Option(None, "--dst-strategy", metavar="FILE",
                                     help="The destination's strategy file (mf's strategy.json "
                                          "or MindSpore's)."),
    dst_layout: str = typer.Option(None, "--dst-layout", metavar="dp=D,mp=M,pp=P",
                                   help="The destination layout (add ,optimizer_shard=true to "
                                        "shard AdamW's state); dp=1,mp=1,pp=1 merges."),
    src_strategy: str = typer.Option(None, "--src-strategy", metavar="FILE",
                                     help="SRC's strategy when it has none of its own (e.g. "
                                          "MindSpore's ckpt_strategy.ckpt from MindFormers)."),
    src_layout: str = typer.Option(None, "--src-layout", metavar="dp=D,mp=M,pp=P",
                                   help="The layout a MindSpore strategy was saved under, when "
                                        "it cannot be read from the file."),
    model: str = typer.Option(None, "--model", metavar="PRESET_OR_DIR",
                              help="The model, when SRC has no config.json (LoRA weights)."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Replace DST if it is an earlier output of mf's."),
) -> None:
    """Write SRC's weights and optimizer state under another layout, exactly."""
    from mf_train.sharded import transform_checkpoint

    path = transform_checkpoint(src, dst, dst_strategy=dst_strategy, dst_layout=dst_layout,
                                src_strategy=src_strategy, src_layout=src_layout, model=model,
                                overwrite=overwrite)
    typer.echo(f"wrote {path}")
