"""One module per `mf` command group, each with its own `Typer` named `app`."""
