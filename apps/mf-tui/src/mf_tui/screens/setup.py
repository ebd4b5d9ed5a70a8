"""Setup: a run YAML, a model preset, the run mode, the dataset and the parallel layout.

Each edit is checked as it is typed (after a short pause, in a worker: mf-train's run YAML
schema, mf-parallel's layout rules), with the problems shown inline beside the form and the
derived values (model size, world size, global batch, memory per device) below it. Launch is
enabled only for a run that holds. The YAML loads and saves in MindFormers' schema.
"""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, Select, Static

from mf_tui.messages import ActionDone, BaseLoaded, SetupChecked
from mf_tui.run_setup import RUN_MODES, SetupCheck, SetupForm

CHECK_DELAY = 0.15  # seconds of quiet typing before a check runs
DEFAULT_CONFIG = "configs/quickstart.yaml"
TEXT_FIELDS = ("config", "dataset_dir", "output_dir", "master_addr")
NUMBER_FIELDS = ("batch_size", "max_steps", "data_parallel", "model_parallel", "pipeline_stage",
                 "micro_batch_num", "workers_per_node", "nodes", "master_port")
LABELS = {"batch_size": "batch", "max_steps": "max steps", "data_parallel": "dp",
          "model_parallel": "mp", "pipeline_stage": "pp", "micro_batch_num": "micro batches",
          "workers_per_node": "workers/node", "nodes": "nodes", "master_port": "port"}


def _number(name: str) -> ComposeResult:
    yield Label(LABELS[name], classes="num-label")
    yield Input(id=name, classes="num", compact=True)


class SetupScreen(Screen):
    AUTO_FOCUS = "#config"
    BINDINGS = [
        Binding("ctrl+l", "launch", "Launch"),
        Binding("ctrl+s", "save", "Save YAML"),
        Binding("ctrl+o", "load", "Load YAML"),
        Binding("escape", "app.switch_mode('jobs')", "Jobs"),
    ]

    def __init__(self, config: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.base = None
        self.check: SetupCheck | None = None
        self._serial = 0
        self._checked_serial = -1
        self._loads = 0  # only the newest load's result is taken
        self._timer = None
        self._filling = False
        start = config or (DEFAULT_CONFIG if Path(DEFAULT_CONFIG).is_file() else "")
        self._start_config = start

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="setup-form"):
            with Horizontal(classes="row"):
                yield Label("run YAML", classes="label")
                yield Input(self._start_config, placeholder="path to a run_*.yaml", id="config",
                            compact=True)
                yield Button("Load", id="load", compact=True)
            with Horizontal(classes="row"):
                yield Label("model", classes="label")
                yield Select([("the YAML's model", "")], value="", allow_blank=False,
                             id="preset", compact=True)
            with Horizontal(classes="row"):
                yield Label("run mode", classes="label")
                yield Select([(m, m) for m in RUN_MODES], value="train", allow_blank=False,
                             id="run_mode", classes="short", compact=True)
                yield Label("output", classes="num-label")
                yield Input(id="output_dir", compact=True)
            with Horizontal(classes="row"):
                yield Label("dataset", classes="label")
                yield Select([], prompt="loader", id="dataset_type", compact=True)
                yield Input(placeholder="dataset_dir (not for PythonStdlibDataset)",
                            id="dataset_dir", compact=True)
            with Horizontal(classes="row"):
                yield Label("training", classes="label")
                yield from _number("batch_size")
                yield from _number("max_steps")
            with Horizontal(classes="row"):
                yield Label("parallel", classes="label")
                for name in ("data_parallel", "model_parallel", "pipeline_stage",
                             "micro_batch_num"):
                    yield from _number(name)
            with Horizontal(classes="row"):
                yield Label("", classes="label")
                yield Checkbox("optimizer shard", id="optimizer_shard", compact=True)
                yield Checkbox("recompute", id="recompute", compact=True)
            with Horizontal(classes="row"):
                yield Label("processes", classes="label")
                yield from _number("workers_per_node")
                yield from _number("nodes")
            with Horizontal(classes="row"):
                yield Label("master", classes="label")
                yield Input(id="master_addr", classes="addr", compact=True)
                yield from _number("master_port")
            yield Static("", id="setup-errors")
            yield Static("", id="setup-derived")
            with Horizontal(classes="row"):
                yield Label("save as", classes="label")
                yield Input(placeholder="path of a new run YAML", id="save_path", compact=True)
                yield Button("Save", id="save", compact=True)
                yield Button("Launch", id="launch", variant="success", disabled=True,
                             compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.title = "mf · set up a job"
        self._choices()
        if self._start_config:
            self.action_load()
        else:
            self._show_problem("give the path of a run YAML and press Load")

    # ---- loading --------------------------------------------------------------------------

    @work(thread=True, group="setup-choices")
    def _choices(self) -> None:
        from mf_train.run_yaml.schema import DATA_LOADERS

        from mf_tui.run_setup import preset_choices

        presets = preset_choices()
        self.app.call_from_thread(self._set_choices, presets, list(DATA_LOADERS))

    def _set_choices(self, presets: list[tuple[str, str]], loaders: list[str]) -> None:
        preset = self.query_one("#preset", Select)
        current = preset.value
        preset.set_options([("the YAML's model", ""), *presets])
        preset.value = current if current in {v for _, v in presets} else ""
        self._loaders = loaders
        self._set_loader_options()

    def _set_loader_options(self) -> None:
        loaders = list(getattr(self, "_loaders", []))
        select = self.query_one("#dataset_type", Select)
        current = self.base.values.train_dataset.data_loader.type if self.base else None
        if current and current not in loaders:
            loaders.append(current)
        select.set_options([(name, name) for name in loaders])
        if current:
            select.value = current

    def action_load(self) -> None:
        path = self.query_one("#config", Input).value.strip()
        if not path:
            self._show_problem("give the path of a run YAML")
            return
        self._loads += 1
        self._load(path, self._loads)

    @work(thread=True, exclusive=True, group="setup-load")
    def _load(self, path: str, serial: int) -> None:
        from mf_tui.run_setup import load_base

        try:
            self.post_message(BaseLoaded(path, load_base(path), serial=serial))
        except Exception as exc:  # noqa: BLE001 - one line on the screen, never a crash
            self.post_message(BaseLoaded(path, None, " ".join(str(exc).split()), serial))

    def on_base_loaded(self, message: BaseLoaded) -> None:
        if message.serial != self._loads:
            return  # an older load finished after a newer one was asked for
        if message.config is None:
            self.base = None
            self.check = None
            # A check of the previous YAML may still be running or queued: its answer must not
            # cover this failure (it did, under load, in CI).
            self._serial += 1
            if self._timer is not None:
                self._timer.stop()
            self.query_one("#launch", Button).disabled = True
            self._show_problem(f"cannot load {message.path}: {message.error}")
            return
        from mf_tui.run_setup import form_from_config

        self.base = message.config
        self._fill(form_from_config(message.config, message.path))
        self._set_loader_options()
        self.notify(f"loaded {message.path}")
        self._schedule()

    def _fill(self, form: SetupForm) -> None:
        self._filling = True
        try:
            for name in (*TEXT_FIELDS, *NUMBER_FIELDS):
                if name == "master_addr" and self.query_one(f"#{name}", Input).value:
                    continue
                self.query_one(f"#{name}", Input).value = str(getattr(form, name))
            self.query_one("#run_mode", Select).value = form.run_mode
            self.query_one("#preset", Select).value = ""
            self.query_one("#optimizer_shard", Checkbox).value = form.optimizer_shard
            self.query_one("#recompute", Checkbox).value = form.recompute
        finally:
            self._filling = False

    # ---- checking -------------------------------------------------------------------------

    @property
    def settled(self) -> bool:
        """The shown check answers the newest edit."""
        return self._checked_serial == self._serial

    def form(self) -> SetupForm:
        values = {name: self.query_one(f"#{name}", Input).value
                  for name in (*TEXT_FIELDS, *NUMBER_FIELDS)}
        preset = self.query_one("#preset", Select).value
        mode = self.query_one("#run_mode", Select).value
        loader = self.query_one("#dataset_type", Select).value
        return SetupForm(
            **values, preset=preset if isinstance(preset, str) else "",
            run_mode=mode if isinstance(mode, str) else "train",
            dataset_type=loader if isinstance(loader, str) else "",
            optimizer_shard=self.query_one("#optimizer_shard", Checkbox).value,
            recompute=self.query_one("#recompute", Checkbox).value)

    @on(Input.Changed)
    @on(Select.Changed)
    @on(Checkbox.Changed)
    def _edited(self, event) -> None:
        if self._filling or getattr(event, "input", None) is not None and event.input.id in (
                "config", "save_path"):
            return
        self._schedule()

    def _schedule(self) -> None:
        self._serial += 1
        self.query_one("#launch", Button).disabled = True
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(CHECK_DELAY, self._start_check)

    def _start_check(self) -> None:
        if self.base is not None:
            self._check(self.form(), self.base, self._serial)

    @work(thread=True, exclusive=True, group="setup-check")
    def _check(self, form: SetupForm, base, serial: int) -> None:
        from mf_tui.run_setup import check_setup

        self.post_message(SetupChecked(check_setup(form, base), serial))

    def on_setup_checked(self, message: SetupChecked) -> None:
        if message.serial != self._serial:
            return  # answers an older edit
        check = message.check
        self.check = check
        self._checked_serial = message.serial
        for name in NUMBER_FIELDS:
            self.query_one(f"#{name}", Input).set_class(name in check.errors, "-invalid")
        problems = list(check.errors.values())
        if check.problem:
            problems.append(check.problem)
        errors = self.query_one("#setup-errors", Static)
        if problems:
            errors.update("\n".join(f"[b red]✗[/] {_escape(p)}" for p in problems))
        elif check.blocker:
            errors.update(f"[b yellow]![/] {_escape(check.blocker)}")
        else:
            errors.update("[b green]✓[/] the run and its layout hold")
        derived = [check.model_text, check.world_text, check.global_batch_text,
                   check.memory_text]
        if check.command:
            derived.append(f"command: {check.command}")
        derived += [f"node {k}: {cmd}" for k, cmd in enumerate(check.node_commands, 1)]
        self.query_one("#setup-derived", Static).update(
            "\n".join(_escape(d) for d in derived if d))
        self.query_one("#launch", Button).disabled = not check.launchable

    def _show_problem(self, text: str) -> None:
        self.query_one("#setup-errors", Static).update(f"[b red]✗[/] {_escape(text)}")
        self.query_one("#setup-derived", Static).update("")

    # ---- buttons --------------------------------------------------------------------------

    def on_button_pressed(self, event: Button.Pressed) -> None:
        {"load": self.action_load, "save": self.action_save,
         "launch": self.action_launch}[event.button.id]()

    @on(Input.Submitted, "#config")
    def _config_submitted(self) -> None:
        self.action_load()

    def action_launch(self) -> None:
        from mf_tui.screens.launch import LaunchScreen

        check = self.check
        if check is None or not check.launchable or self.query_one("#launch", Button).disabled:
            self.notify("this run cannot be launched: see the messages above",
                        severity="error")
            return
        self.app.push_screen(LaunchScreen(check))

    def action_save(self) -> None:
        path = self.query_one("#save_path", Input).value.strip()
        if self.base is None or self.check is None:
            self.notify("load a run YAML first", severity="error")
            return
        if not path:
            self.notify("give the path to save the run YAML as", severity="error")
            return
        if self.check.errors or self.check.problem:
            self.notify("fix the messages above before saving", severity="error")
            return
        self._save(path, list(self.check.options), self.form().run_mode)

    @work(thread=True, exclusive=True, group="setup-save")
    def _save(self, path: str, options: list[str], run_mode: str) -> None:
        from mf_tui.run_setup import load_base, save_run_yaml

        try:
            saved = save_run_yaml(self.base, options, path, run_mode)
            load_base(saved)  # what was written loads back as a valid run YAML
            self.post_message(ActionDone(f"saved {saved}"))
        except Exception as exc:  # noqa: BLE001
            self.post_message(ActionDone(f"not saved: {' '.join(str(exc).split())}", True))

    def on_action_done(self, message: ActionDone) -> None:
        self.notify(message.text, severity="error" if message.error else "information")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
