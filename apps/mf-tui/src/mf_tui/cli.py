"""The `mf` command line.

Each command module in `mf_tui.commands` has a `register(app)` that adds its commands or mounts
its group, so the modules never touch each other.
Nothing heavy is imported at module level: `mf --help` must not pay for MindSpore (~2 s).

Errors follow one convention across the libraries, so this module needs no import of them:
an exception with an ``exit_code`` attribute is a known failure whose message is already the
one line a person should read (2 = usage or config error, 1 = runtime failure). An OSError
(disk full, read-only or forbidden output) is a runtime failure of the machine, printed as
``mf: error: <what>: <path>`` with exit code 1. Anything else is a bug and is reported as
such. ``MF_DEBUG=1`` shows the traceback in every case.

Command-line text is read as UTF-8. An argument holding bytes that are not UTF-8 (Python
carries them as lone surrogates in sys.argv) is refused before any command runs, naming it:
a prompt, a path or an option value that cannot be written back out as text would fail
later, deeper and less clearly (sentencepiece, JSON, the job directory).
"""

from __future__ import annotations

import os
import sys
import tempfile

import typer

from mf_tui import __version__
from mf_tui.commands import COMMAND_MODULES
from mf_tui.exit_codes import EXIT_RUNTIME, EXIT_USAGE

app = typer.Typer(
    name="mf",
    help="mf: train, fine-tune, evaluate and serve transformer models on MindSpore.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for _module in COMMAND_MODULES:
    _module.register(app)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        packages = ["mf-parallel", "mf-tokenize", "mf-models", "mf-generate", "mf-train"]
        typer.echo(f"mf {__version__}")
        for name in packages:
            typer.echo(f"  {name} {version(name)}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", "-V", is_eager=True, callback=_print_version,
        help="Show the versions of mf and its libraries.",
    ),
) -> None:
    """mf: train, fine-tune, evaluate and serve transformer models on MindSpore."""


def _debug_enabled() -> bool:
    return os.environ.get("MF_DEBUG", "") not in ("", "0", "false", "False")


def undecodable_argument(args: list[str]) -> str | None:
    """The one-line refusal of the first argument that is not UTF-8 text, or None."""
    for position, arg in enumerate(args, start=1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError as exc:
            try:  # the bytes the shell passed, shown as escapes: 'abc\xff\xfe'
                shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            except UnicodeEncodeError:
                shown = arg.encode("utf-8", "backslashreplace").decode("ascii")
            return (f"argument {position} '{shown}' is not UTF-8 text (character {exc.start}); "
                    "mf reads prompts, paths and options as UTF-8")
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and turn known errors into one line on stderr and a named exit code."""
    refusal = undecodable_argument(sys.argv[1:] if argv is None else list(argv))
    if refusal is not None:
        typer.echo(f"mf: error: {refusal}", err=True)
        return EXIT_USAGE
    from mf_parallel.runtime import apply_runtime_defaults

    # MindSpore runtime settings measured to pay on CPU, for this process and the ranks it
    # starts (a value already in the environment wins)
    apply_runtime_defaults()
    if not _debug_enabled():
        # MindSpore writes rank_0/om/analyze_fail.ir into the working directory when a graph
        # fails to compile; a failed command must leave nothing behind. MF_DEBUG=1 keeps
        # MindSpore's default, for a bug report.
        os.environ.setdefault("MS_OM_PATH", os.path.join(tempfile.gettempdir(), "mf-om"))
    try:
        # Not standalone: click's usage errors (bad option, missing argument) come back here
        # to be one line like every other error, instead of a boxed panel.
        result = app(args=argv, prog_name="mf", standalone_mode=False)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        typer.echo("mf: interrupted", err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place errors become exit codes
        if _is_click(exc, "Abort"):
            typer.echo("mf: interrupted", err=True)
            return 130
        if _is_click(exc, "UsageError"):
            where = exc.ctx.command_path if getattr(exc, "ctx", None) is not None else "mf"
            typer.echo(f"mf: error: {exc.format_message()} (see {where} --help)", err=True)
            return EXIT_USAGE
        return _report(exc)
    return result if isinstance(result, int) else 0


def _is_click(exc: BaseException, name: str) -> bool:
    """An exception of click's (typer vendors its own copy of click, so match by class name)."""
    return any(cls.__name__ == name and "click" in cls.__module__ for cls in type(exc).__mro__)


def _report(exc: BaseException) -> int:
    if _debug_enabled():
        import traceback

        traceback.print_exception(exc)
    code = getattr(exc, "exit_code", None)
    hint = "" if _debug_enabled() else " (set MF_DEBUG=1 for the traceback)"
    if isinstance(code, int):
        typer.echo(f"mf: error: {exc}", err=True)
        if code == EXIT_RUNTIME and hint:
            typer.echo(f"mf:{hint}", err=True)
        return code
    if isinstance(exc, OSError) and exc.strerror:
        typer.echo(f"mf: error: {os_error_text(exc)}", err=True)
        if hint:
            typer.echo(f"mf:{hint}", err=True)
        return EXIT_RUNTIME
    typer.echo(f"mf: internal error: {type(exc).__name__}: {exc}{hint}", err=True)
    return EXIT_RUNTIME


def os_error_text(exc: OSError) -> str:
    """`No space left on device: /out/checkpoints/...` (both paths of a failed rename)."""
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return exc.strerror + (": " + " -> ".join(paths) if paths else "")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
