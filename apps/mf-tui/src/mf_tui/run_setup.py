"""The Setup screen's logic, without the screen: a form of typed text -> a checked run.

`check_setup(form, base)` turns what the user typed over a loaded run YAML into `--options`
(only the values that differ from the YAML), checks the result the way a launch would
(mf-train's run YAML schema, mf-parallel's layout rules, mf-train's data-parallel-only rule) and
says what it derives: the model's size, the world size, the global batch and the memory per
device. Every problem is one line for the screen to show beside the field; nothing raises.
Imports mf-train's run_yaml, mf-models' configs and mf-parallel: no MindSpore.
"""

from __future__ import annotations

import dataclasses
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mf_tui.jobs.launch import node_argv, shown, train_argv

RUN_MODES = ("train", "finetune")
INT_FIELDS = {
    # form field -> the run YAML key it sets
    "batch_size": "runner_config.batch_size",
    "max_steps": "runner_config.max_steps",
    "data_parallel": "parallel_config.data_parallel",
    "model_parallel": "parallel_config.model_parallel",
    "pipeline_stage": "parallel_config.pipeline_stage",
    "micro_batch_num": "parallel_config.micro_batch_num",
}
LAUNCH_INT_FIELDS = ("workers_per_node", "nodes", "master_port")
SAVED_HEADER = "# Run YAML written by mf tui (MindFormers' run_*.yaml schema)."
DEFAULT_MASTER_PORT = 8118  # msrun's default


@dataclass
class SetupForm:
    """What the Setup screen's fields hold, as typed."""

    config: str = ""
    preset: str = ""  # "" = the model of the YAML
    run_mode: str = "train"
    dataset_type: str = ""
    dataset_dir: str = ""
    output_dir: str = ""
    batch_size: str = "1"
    max_steps: str = "-1"
    data_parallel: str = "1"
    model_parallel: str = "1"
    pipeline_stage: str = "1"
    micro_batch_num: str = "1"
    optimizer_shard: bool = False
    recompute: bool = False
    workers_per_node: str = "1"
    nodes: str = "1"
    master_addr: str = field(default_factory=platform.node)
    master_port: str = str(DEFAULT_MASTER_PORT)


@dataclass
class SetupCheck:
    errors: dict[str, str] = field(default_factory=dict)  # field -> one line
    problem: str | None = None  # the run or layout does not hold
    blocker: str | None = None  # valid, but this mf cannot launch it
    options: list[str] = field(default_factory=list)
    config: Any = None  # the checked RunConfig
    model_text: str = ""
    world_text: str = ""
    global_batch_text: str = ""
    memory_text: str = ""
    argv: list[str] = field(default_factory=list)
    node_commands: list[str] = field(default_factory=list)  # for nodes 1..M-1
    output_dir: Path | None = None

    @property
    def launchable(self) -> bool:
        return bool(self.argv) and not (self.errors or self.problem or self.blocker)

    @property
    def command(self) -> str:
        return shown(self.argv) if self.argv else ""


def load_base(path: str | Path):
    """The run YAML as mf-train reads it (bases, schema); its one-line error on failure."""
    from mf_train.run_yaml import load_run_config

    return load_run_config(path)


def form_from_config(config: Any, path: str | Path) -> SetupForm:
    v = config.values
    pc, rc = v.parallel_config, v.runner_config
    world = pc.data_parallel * pc.model_parallel * pc.pipeline_stage
    return SetupForm(
        config=str(path), preset="", run_mode=v.run_mode if v.run_mode in RUN_MODES else "train",
        dataset_type=v.train_dataset.data_loader.type,
        dataset_dir=v.train_dataset.data_loader.dataset_dir, output_dir=v.output_dir,
        batch_size=str(rc.batch_size), max_steps=str(rc.max_steps),
        data_parallel=str(pc.data_parallel), model_parallel=str(pc.model_parallel),
        pipeline_stage=str(pc.pipeline_stage), micro_batch_num=str(pc.micro_batch_num),
        optimizer_shard=bool(pc.optimizer_shard), recompute=bool(v.recompute_config.recompute),
        workers_per_node=str(world), nodes="1")


def preset_choices() -> list[tuple[str, str]]:
    """(label, name) for every model preset: its family, layers and parameter count."""
    from mf_models import preset_config, preset_names

    out = []
    for name in preset_names():
        config = preset_config(name)
        out.append((f"{name} ({config.family}, {config.num_layers} layers, "
                    f"{human_count(config.parameter_count)} params)", name))
    return out


def human_count(count: int) -> str:
    for unit, size in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if count >= size:
            return f"{count / size:.1f}{unit}"
    return str(count)


def human_bytes(count: float) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= size:
            return f"{count / size:.2f} {unit}"
    return f"{count:.0f} B"


def _parse_ints(form: SetupForm, check: SetupCheck) -> dict[str, int]:
    values = {}
    for name in (*INT_FIELDS, *LAUNCH_INT_FIELDS):
        text = getattr(form, name).strip()
        try:
            values[name] = int(text)
        except ValueError:
            check.errors[name] = (f"{name} = {text!r} is not a whole number" if text
                                  else f"{name} is empty; give a whole number")
    for name in ("workers_per_node", "nodes"):
        if name in values and values[name] < 1:
            check.errors[name] = f"{name} = {values[name]}; it must be >= 1"
    if "master_port" in values and not 1 <= values["master_port"] <= 65535:
        check.errors["master_port"] = f"master_port = {values['master_port']}; allowed 1..65535"
    return values


def _options(form: SetupForm, base: Any, ints: dict[str, int]) -> list[str]:
    """`key=value` for every field that differs from the loaded YAML."""
    import yaml

    v = base.values
    current = {
        "train_dataset.data_loader.type": v.train_dataset.data_loader.type,
        "train_dataset.data_loader.dataset_dir": v.train_dataset.data_loader.dataset_dir,
        "output_dir": v.output_dir,
        "parallel_config.optimizer_shard": v.parallel_config.optimizer_shard,
        "recompute_config.recompute": bool(v.recompute_config.recompute),
    }
    wanted: dict[str, Any] = {
        "train_dataset.data_loader.type": form.dataset_type.strip(),
        "train_dataset.data_loader.dataset_dir": form.dataset_dir.strip(),
        "output_dir": form.output_dir.strip(),
        "parallel_config.optimizer_shard": form.optimizer_shard,
        "recompute_config.recompute": form.recompute,
    }
    for name, key in INT_FIELDS.items():
        section, attr = key.split(".")
        current[key] = getattr(getattr(v, section), attr)
        if name in ints:
            wanted[key] = ints[name]
    options = []
    if form.preset:
        from mf_models.registry import family_of_preset

        family = family_of_preset(form.preset)
        if family is not None:
            cls = family.config_class()
            mapping = {"type": cls.__name__, **cls.presets[form.preset.lower()]}
            flow = yaml.safe_dump(mapping, default_flow_style=True, width=10**6).strip()
            options += [f"model.model_config={flow}",
                        f"model.arch.type={family.model_class_name()}"]
    for key, value in wanted.items():
        if value != current[key]:
            text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
            options.append(f"{key}={text.removesuffix('...').strip()}")
    return options


def check_setup(form: SetupForm, base: Any) -> SetupCheck:
    """Check the form over the loaded YAML `base` (a RunConfig)."""
    check = SetupCheck()
    if form.run_mode not in RUN_MODES:
        check.errors["run_mode"] = f"run mode {form.run_mode!r}; allowed: {', '.join(RUN_MODES)}"
    ints = _parse_ints(form, check)
    if base is None:
        check.problem = "load a run YAML first"
        return check
    check.options = _options(form, base, ints)
    try:
        config = _candidate(base, check.options)
    except Exception as exc:  # noqa: BLE001 - every library error is one line for the screen
        check.problem = _one_line(exc)
        return check
    check.config = config
    check.output_dir = Path(config.output_dir).expanduser().absolute()
    model, dims = _model(config, check)
    if check.errors or check.problem:
        return check
    world = ints["workers_per_node"] * ints["nodes"]
    check.world_text = (f"world size {world} = workers per node({ints['workers_per_node']}) * "
                        f"nodes({ints['nodes']})")
    try:
        layout = _parallel_config(config).validate(world, dims)
        check.global_batch_text = str(config.derived()[0])
    except Exception as exc:  # noqa: BLE001
        check.problem = _one_line(exc)
        return check
    if dims is not None:
        _memory(config, layout, model, form.recompute, check)
    _launch(form, config, ints, check)
    return check


def _candidate(base: Any, options: list[str]):
    from mf_train.run_yaml import apply_options, run_config_from_mapping

    origins = dict(base.origins)
    data = apply_options(base.raw, origins, options)
    return run_config_from_mapping(data, origins=origins, files=base.files, options=options)


def _parallel_config(config: Any):
    """mf-parallel's ParallelConfig of `parallel_config:` (MindFormers' names are its fields),
    for any layout: mf-train's resolve refuses the layouts it cannot train, but Setup plans
    them too (world size, memory)."""
    import dataclasses

    from mf_parallel import ParallelConfig

    section = config.parallel_config
    values = {f.name: getattr(section, f.name) for f in dataclasses.fields(ParallelConfig)
              if hasattr(section, f.name)}
    return ParallelConfig(**values, micro_batch_interleave_num=config.micro_batch_interleave_num)


def _model(config: Any, check: SetupCheck):
    from mf_train.resolve import model_dims_of, resolve_model_config

    try:
        model, _ = resolve_model_config(config)
        dims = model_dims_of(model)
    except Exception as exc:  # noqa: BLE001
        check.problem = f"model: {_one_line(exc)}"
        return None, None
    name = model.name or "the YAML's model"
    check.model_text = (f"{name}: {model.family}, {model.num_layers} layers, hidden "
                        f"{model.hidden_size}, {model.num_heads} heads, seq {model.seq_length}, "
                        f"{human_count(model.parameter_count)} parameters")
    return model, dims


def _memory(config: Any, layout: Any, model: Any, recompute: bool, check: SetupCheck) -> None:
    from mf_train.plan import run_memory_estimate

    try:  # what `mf train` plans and refuses by (mf_train.plan)
        estimate = run_memory_estimate(config, model, layout, recompute=recompute)
    except Exception as exc:  # noqa: BLE001
        check.problem = _one_line(exc)
        return
    if estimate is None:
        return
    peak = estimate.peak
    check.memory_text = (f"memory per device {human_bytes(estimate.per_device)} (weights "
                         f"{human_bytes(peak.parameters)}, grads {human_bytes(peak.gradients)}, "
                         f"AdamW {human_bytes(peak.optimizer_states)}, activations "
                         f"{human_bytes(peak.activations)}, MindSpore on CPU "
                         f"{human_bytes(peak.framework)})")


def _launch(form: SetupForm, config: Any, ints: dict[str, int], check: SetupCheck) -> None:
    from mf_train.resolve import resolve_run

    try:  # what `mf train` resolves before it starts anything (e.g. data parallel only)
        resolve_run(config, mode=form.run_mode)
    except Exception as exc:  # noqa: BLE001
        check.blocker = _one_line(exc)
    path = Path(form.config).expanduser().absolute()
    nodes = ints["nodes"]
    if nodes == 1:
        if ints["workers_per_node"] != config.parallel_config.data_parallel and not check.blocker:
            check.blocker = (f"one node runs data_parallel({config.parallel_config.data_parallel})"
                             f" ranks, not workers_per_node({ints['workers_per_node']})")
        check.argv = train_argv(path, check.options, form.run_mode)
        return
    from mf_train.launch import new_job_id

    # One id for the job, chosen here so that every node's command is known before node 0
    # starts (mf launch would otherwise make one up on node 0 and print it).
    common = dict(workers=ints["workers_per_node"] * nodes, nodes=nodes,
                  master_addr=form.master_addr.strip() or platform.node(),
                  master_port=ints["master_port"], job_id=new_job_id(), mode=form.run_mode)
    check.argv = node_argv(path, check.options, node_rank=0, **common)
    check.node_commands = [shown(node_argv(path, check.options, node_rank=k, **common))
                           for k in range(1, nodes)]


def save_run_yaml(base: Any, options: list[str], path: str | Path, run_mode: str) -> Path:
    """Write the loaded YAML with the form's changes, whole (bases merged), atomically.

    A file that exists is replaced only if mf tui wrote it (its first line says so).
    """
    import yaml
    from mf_train.atomic import atomic_write_text
    from mf_train.errors import TrainConfigError
    from mf_train.run_yaml import apply_options

    path = Path(path).expanduser().absolute()
    if path.exists():
        try:
            first = path.read_text(encoding="utf-8").splitlines()[:1]
        except (OSError, UnicodeDecodeError):
            first = []
        if first != [SAVED_HEADER]:
            raise TrainConfigError(f"{path} exists and was not written by mf tui; "
                                   "choose another name")
    if not path.parent.is_dir():
        raise TrainConfigError(f"{path.parent}: no such folder")
    data = apply_options(base.raw, dict(base.origins), [*options, f"run_mode={run_mode}"])
    source = base.source or "?"
    text = (f"{SAVED_HEADER}\n# From {source}" + (f" with {', '.join(options)}" if options else "")
            + "\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    atomic_write_text(path, text)
    return path


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def replace_form(form: SetupForm, **changes: Any) -> SetupForm:
    return dataclasses.replace(form, **changes)
