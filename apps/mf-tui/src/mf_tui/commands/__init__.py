"""The `mf` commands, one module per subject. Each exposes `register(app: typer.Typer)`.

Command modules import only typer at module level; the library that does the work (and
MindSpore behind it) is imported inside the command function, so `mf --help` stays fast.
"""

from mf_tui.commands import ckpt, generate, jobs, launch, model, parallel, pipeline, train

COMMAND_MODULES = (parallel, model, generate, pipeline, train, launch, ckpt, jobs)
