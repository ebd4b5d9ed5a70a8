"""The `mf` command line.

Each command module in `mf_tui.commands` has a `register(app)` that adds its commands or mounts
its group, so the modules never touch each other.
Nothing heavy is imported at module level: `mf --help` must not pay for MindSpore (~2 s).

Errors follow one convention across the libraries, so this module needs no import of them:
an exception with an ``exit_code`` attribute is a known failure whose message is already the
one line a person should read (2 = usage or config error, 1 = runtime failure). Anything else
is a bug and is reported as such. ``MF_DEBUG=1`` shows the traceback in both cases.
"""

from __future__ import annotations

import os
import sys
import tempfile

import typer

from mf_tui import __version__
from mf_tui.commands import COMMAND_MODULES
from mf_tui.exit_codes import EXIT_RUNTIME

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


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and turn known errors into one line on stderr and a named exit code."""
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
        # Standalone mode: typer itself reports usage errors (bad option, missing argument)
        # with the usage line and exit code 2; only our own exceptions come through.
        app(args=argv, prog_name="mf")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        typer.echo("mf: interrupted", err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place errors become exit codes
        return _report(exc)
    return 0


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
    typer.echo(f"mf: internal error: {type(exc).__name__}: {exc}{hint}", err=True)
    return EXIT_RUNTIME


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
