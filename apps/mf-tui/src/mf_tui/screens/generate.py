"""Generate: load a checkpoint or model directory and talk to it, tokens streaming in.

Loading (MindSpore, the weights, a compile) and generating run in thread workers; the text
arrives through mf-generate's TextIteratorStreamer and is posted to the screen in small
batches. The generation settings sit beside the conversation and are checked as given
(GenerationConfig's one-line errors).
"""

from __future__ import annotations

import threading
import time

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, Log, Static

from mf_tui.messages import GeneratedText, ModelLoaded

POST_EVERY = 0.05  # seconds: streamed text is posted in batches this far apart
SETTINGS = (("max_new_tokens", "64"), ("temperature", "0.8"), ("top_k", "40"), ("top_p", "1.0"),
            ("seed", "0"))


class GenerateScreen(Screen):
    AUTO_FOCUS = "#model-path"
    BINDINGS = [Binding("escape", "app.switch_mode('jobs')", "Jobs"),
                Binding("ctrl+o", "load", "Load model")]

    def __init__(self, model: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.initial_model = model or ""
        self.pipe = None
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(classes="row"):
            yield Label("model", classes="label")
            yield Input(self.initial_model, placeholder="a checkpoint or model directory",
                        id="model-path", compact=True)
            yield Button("Load", id="load-model", compact=True)
        yield Static("no model loaded", id="model-status")
        with Horizontal(id="generate-body"):
            yield Log(id="transcript")
            with Vertical(id="settings"):
                yield Checkbox("sample", True, id="do_sample", compact=True)
                for name, default in SETTINGS:
                    yield Label(name)
                    yield Input(default, id=name, compact=True)
        yield Input(placeholder="a prompt; Enter generates", id="prompt", disabled=True,
                    compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.title = "mf · generate"
        if self.initial_model:
            self.action_load()

    def set_model(self, path: str) -> None:
        self.query_one("#model-path", Input).value = path
        self.action_load()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "load-model":
            self.action_load()

    @on(Input.Submitted, "#model-path")
    def action_load(self) -> None:
        path = self.query_one("#model-path", Input).value.strip()
        if not path:
            self.query_one("#model-status", Static).update("give a checkpoint or model directory")
            return
        self.query_one("#model-status", Static).update(f"loading {path}…")
        self.query_one("#prompt", Input).disabled = True
        self._load(path)

    @work(thread=True, exclusive=True, group="generate-load")
    def _load(self, path: str) -> None:
        try:
            from mf_generate.pipelines import check_vocabulary, tokenizer_for
            from mf_models import load_config

            config = load_config(path)  # a bad path fails here, before MindSpore loads
            tokenizer = tokenizer_for(path)
            check_vocabulary(tokenizer, config.vocab_size)
            from mf_generate.pipelines import TextGenerationPipeline
            from mf_models import AutoModelForCausalLM

            self.pipe = TextGenerationPipeline(AutoModelForCausalLM.from_pretrained(path),
                                               tokenizer)
            self.post_message(ModelLoaded(f"{path}: {config.family}, {config.num_layers} "
                                          f"layers, hidden {config.hidden_size}"))
        except Exception as exc:  # noqa: BLE001 - one line on the screen
            self.pipe = None
            self.post_message(ModelLoaded(f"cannot load {path}: {' '.join(str(exc).split())}",
                                          error=True))

    def on_model_loaded(self, message: ModelLoaded) -> None:
        status = self.query_one("#model-status", Static)
        status.update(("[b red]✗[/] " if message.error else "") + _escape(message.text))
        prompt = self.query_one("#prompt", Input)
        prompt.disabled = message.error
        if not message.error:
            prompt.focus()

    def settings(self) -> dict:
        """The generation settings, checked by GenerationConfig; raises its one-line error."""
        from mf_generate import GenerationConfig

        raw = {name: self.query_one(f"#{name}", Input).value.strip() for name, _ in SETTINGS}
        values: dict = {}
        for name, text in raw.items():
            if not text:
                continue
            kind = float if name in ("temperature", "top_p") else int
            try:
                values[name] = kind(text)
            except ValueError:
                noun = "a number" if kind is float else "a whole number"
                raise ValueError(f"{name} = {text!r} is not {noun}") from None
        values["do_sample"] = self.query_one("#do_sample", Checkbox).value
        if not values["do_sample"]:
            for name in ("temperature", "top_k", "top_p"):
                values.pop(name, None)
        GenerationConfig(**values)
        return values

    @on(Input.Submitted, "#prompt")
    def _prompt(self, event: Input.Submitted) -> None:
        text = event.value
        if not text.strip() or self.pipe is None or self.busy:
            return
        try:
            settings = self.settings()
        except Exception as exc:  # noqa: BLE001
            self.query_one("#model-status", Static).update(f"[b red]✗[/] {_escape(str(exc))}")
            return
        event.input.value = ""
        log = self.query_one("#transcript", Log)
        log.write(f"\n> {text}\n{text}")
        self.busy = True
        self._generate(text, settings)

    @work(thread=True, exclusive=True, group="generate-run")
    def _generate(self, prompt: str, settings: dict) -> None:
        from mf_generate import TextIteratorStreamer

        pipe = self.pipe
        streamer = TextIteratorStreamer(pipe.tokenizer, skip_prompt=True, timeout=600,
                                        skip_special_tokens=True)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                pipe(prompt, streamer=streamer, **settings)
            except BaseException as exc:  # noqa: BLE001 - reported through the screen
                failure.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        pending, last = [], time.monotonic()
        for text in streamer:
            pending.append(text)
            if time.monotonic() - last >= POST_EVERY:
                self.post_message(GeneratedText("".join(pending)))
                pending, last = [], time.monotonic()
        thread.join()
        error = " ".join(str(failure[0]).split()) if failure else None
        self.post_message(GeneratedText("".join(pending), done=True, error=error))

    def on_generated_text(self, message: GeneratedText) -> None:
        log = self.query_one("#transcript", Log)
        if message.text:
            log.write(message.text)
        if message.done:
            self.busy = False
            if message.error:
                log.write(f"\n[error: {message.error}]")
            log.write("\n")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
