"""`mf parallel ...`: check a parallel layout before launching a job."""

from __future__ import annotations

import typer

from mf_tui.exit_codes import EXIT_USAGE

app = typer.Typer(no_args_is_help=True, help="Check parallel layouts and memory estimates.")

# Option name -> ModelDims field, for the explicit model dimensions.
DIM_OPTIONS = {
    "--num-layers": "num_layers",
    "--hidden-size": "hidden_size",
    "--num-heads": "num_heads",
    "--n-kv-heads": "n_kv_heads",
    "--ffn-hidden-size": "ffn_hidden_size",
    "--vocab-size": "vocab_size",
    "--seq-length": "seq_length",
}
# Groups listed in full up to this many per axis; beyond it the table shows the first ones.
MAX_GROUPS_SHOWN = 4
# Ranks of one group listed in full up to this many; beyond it the first ones and the last.
MAX_RANKS_SHOWN = 8


class ParallelUsageError(ValueError):
    """A request `mf parallel check` cannot answer (missing dimensions, no presets)."""

    exit_code = EXIT_USAGE


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="parallel")


def _preset_dims(name: str):
    try:
        import mf_models

        model_dims = mf_models.model_dims
    except (ImportError, AttributeError):
        raise ParallelUsageError(
            f"--model {name}: model presets are unavailable (mf_models.model_dims is not "
            f"installed); give the dimensions with --num-layers --hidden-size --num-heads "
            f"--n-kv-heads --ffn-hidden-size --vocab-size --seq-length"
        ) from None
    return model_dims(name)


def _model_dims(model: str | None, explicit: dict[str, int | None]):
    """ModelDims from a preset, overridden by explicit options; None when neither is given."""
    import dataclasses

    from mf_parallel import ModelDims

    given = {field: value for field, value in explicit.items() if value is not None}
    if model is not None:
        dims = _preset_dims(model)
        return dataclasses.replace(dims, **given) if given else dims
    if not given or set(given) == {"seq_length"}:
        return None
    missing = [option for option, field in DIM_OPTIONS.items() if field not in given]
    if missing:
        raise ParallelUsageError(
            f"model dimensions are incomplete: missing {' '.join(missing)} "
            f"(or name a preset with --model)"
        )
    return ModelDims(**given)


def _unit(num_bytes: int) -> tuple[str, int]:
    """The largest binary unit that keeps `num_bytes` at 1 or more."""
    for name, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if num_bytes >= size:
            return name, size
    return "B", 1


def _groups_text(groups) -> str:
    """The first groups of a (groups, size) array, and how many more (not a list of all)."""
    shown = ", ".join(_ranks_text(group) for group in groups[:MAX_GROUPS_SHOWN])
    if len(groups) > MAX_GROUPS_SHOWN:
        shown += f", ... ({len(groups) - MAX_GROUPS_SHOWN} more)"
    return shown


def _ranks_text(ranks) -> str:
    """One group (a row of ranks) as `[0, 1, 2]`, or `[0, 1, 2, 3, 4, 5, ..., 1023]`."""
    if len(ranks) <= MAX_RANKS_SHOWN:
        return str(ranks.tolist())
    head = ", ".join(str(r) for r in ranks[:MAX_RANKS_SHOWN - 2].tolist())
    return f"[{head}, ..., {int(ranks[-1])}]"


def _fewest_micro_batches(dp: int, mp: int, pp: int, world_size: int | None) -> int:
    """One micro-batch per pipeline stage: the fewest MindSpore accepts (it fills the pipe)."""
    if pp == -1 and world_size and dp > 0 and mp > 0 and world_size % (dp * mp) == 0:
        pp = world_size // (dp * mp)  # the degree ParallelConfig.resolve will infer
    return max(pp, 1)


@app.command("check")
def check(
    world_size: int | None = typer.Option(
        None, "--world-size", help="Devices in the job [default: the product of the degrees]."),
    data_parallel: int = typer.Option(
        1, "--data-parallel", help="Data-parallel degree (-1: infer from the world size)."),
    model_parallel: int = typer.Option(
        1, "--model-parallel", help="Tensor-parallel degree (-1: infer)."),
    pipeline_stage: int = typer.Option(
        1, "--pipeline-stage", help="Pipeline stages (-1: infer)."),
    micro_batch_num: int | None = typer.Option(
        None, "--micro-batch-num",
        help="Micro-batches per step [default: the number of pipeline stages]."),
    optimizer_shard: bool = typer.Option(
        False, "--optimizer-shard/--no-optimizer-shard",
        help="Split optimizer states (and weights) over data-parallel ranks."),
    batch_size: int = typer.Option(1, "--batch-size", help="Micro-batch size per device."),
    seq_length: int | None = typer.Option(
        None, "--seq-length", help="Sequence length [default: the model's]."),
    recompute: bool = typer.Option(
        False, "--recompute/--no-recompute", help="Recompute layer activations in backward."),
    num_layers: int | None = typer.Option(None, "--num-layers"),
    hidden_size: int | None = typer.Option(None, "--hidden-size"),
    num_heads: int | None = typer.Option(None, "--num-heads"),
    n_kv_heads: int | None = typer.Option(None, "--n-kv-heads"),
    ffn_hidden_size: int | None = typer.Option(None, "--ffn-hidden-size"),
    vocab_size: int | None = typer.Option(None, "--vocab-size"),
    model: str | None = typer.Option(
        None, "--model", help="A model preset (e.g. llama_7b); explicit dimensions override it."),
    backend: str = typer.Option(
        "cpu", "--backend", help="cpu (what mf runs here, measured) or accelerator "
        "(what backward needs, as Ascend/GPU keep it)."),
) -> None:
    """Validate a layout against a world size and a model; show its groups and memory."""
    from mf_parallel import Mesh, ParallelConfig, estimate_memory
    from mf_parallel.config import check_limit

    check_limit("batch_size", batch_size)  # every count is bounded before anything is built
    dims = _model_dims(model, {
        "num_layers": num_layers, "hidden_size": hidden_size, "num_heads": num_heads,
        "n_kv_heads": n_kv_heads, "ffn_hidden_size": ffn_hidden_size, "vocab_size": vocab_size,
        "seq_length": seq_length,
    })
    if micro_batch_num is None:
        micro_batch_num = _fewest_micro_batches(data_parallel, model_parallel, pipeline_stage,
                                                world_size)
    config = ParallelConfig(
        data_parallel=data_parallel, model_parallel=model_parallel,
        pipeline_stage=pipeline_stage, micro_batch_num=micro_batch_num,
        optimizer_shard=optimizer_shard,
    )
    if world_size is None:
        if not config.is_resolved:
            unknown = [name for name, value in (("--data-parallel", data_parallel),
                                                ("--model-parallel", model_parallel),
                                                ("--pipeline-stage", pipeline_stage))
                       if value == -1]
            raise ParallelUsageError(
                f"{unknown[0]} is -1 (inferred): give --world-size to infer it from")
        world_size = config.device_num
    config = config.validate(world_size, dims)
    global_batch = config.global_batch_text(batch_size)

    from mf_parallel.pipeline import assign_stages, bubble_fraction, stage_layer_counts
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold green]OK[/]: {config.describe()}"
                  + (f" for {model}" if model else ""))
    console.print(f"global batch: {global_batch}")
    pp = config.pipeline_stage
    if pp > 1:
        console.print(
            f"pipeline: {pp} stages, {config.micro_batch_num} micro-batches, bubble "
            f"(p - 1) / (m + p - 1) = {bubble_fraction(pp, config.micro_batch_num):.1%}"
            + (f"; layers per stage {stage_layer_counts(assign_stages(dims.num_layers, pp), pp)}"
               if dims else "")
        )

    mesh = Mesh.from_config(config)
    groups = Table(title="Process groups", caption="rank = (pp * dp_size + dp) * mp_size + mp")
    groups.add_column("axis")
    groups.add_column("size", justify="right")
    groups.add_column("groups", justify="right")
    groups.add_column("ranks")
    for axis in ("dp", "mp", "pp"):
        axis_groups = mesh.group_array(axis)
        groups.add_row(axis, str(mesh.axis_size(axis)), str(len(axis_groups)),
                       _groups_text(axis_groups))
    console.print(groups)

    if dims is None:
        console.print("memory: give --model or the model dimensions for an estimate")
        return
    inputs = {}
    resized = any(v is not None for v in (num_layers, hidden_size, num_heads, n_kv_heads,
                                          ffn_hidden_size, vocab_size))
    if model is not None and not resized:  # the preset's own parameters and sharding plan
        from mf_models import load_config, memory_inputs

        inputs = memory_inputs(load_config(model).replace(seq_length=dims.seq_length))
    estimate = estimate_memory(dims, config, batch_size=batch_size, recompute=recompute,
                               backend=backend, **inputs)
    seq = dims.seq_length
    unit, size = _unit(estimate.per_device)
    memory = Table(
        title=f"Memory per device ({unit})",
        caption=(f"fp32, AdamW, batch {batch_size} x seq {seq}, "
                 f"recompute {'on' if recompute else 'off'}"),
    )
    for column in ("stage", "layers", "params", "grads", "optimizer", "activations",
                   "framework", "total"):
        memory.add_column(column, justify="right")
    peak = estimate.peak.stage
    for stage in estimate.stages:
        style = "bold" if stage.stage == peak else None
        amounts = (stage.parameters, stage.gradients, stage.optimizer_states,
                   stage.activations, stage.data + stage.caches + stage.framework, stage.total)
        memory.add_row(str(stage.stage), str(stage.layers),
                       *(f"{amount / size:,.2f}" for amount in amounts), style=style)
    console.print(memory)
    console.print(f"peak: stage {peak} needs {estimate.per_device / size:,.2f} {unit} per device")
    # mf_parallel/memory.py says what each backend's figure models; benchmarks/
    # memory_estimate.py measures the CPU one against real runs.
    if backend == "cpu":
        console.print("CPU (MindSpore 2.10): activations as the CPU backend keeps them, and "
                      "framework = the process and the optimizer's temporaries, as measured")
