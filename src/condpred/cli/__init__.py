"""The `condpred` command line: parses, calls the library, prints. No logic of its own.

`app.py` holds the typer app and the shared options; each group of commands lives in a module of
its own that registers on it when imported here.
"""

from __future__ import annotations

import sys

from rich.markup import escape

from condpred.cli import (
    core,  # noqa: F401  (registers the commands)
    evals,  # noqa: F401
    forecast,  # noqa: F401
    plan,  # noqa: F401
    report,  # noqa: F401
)
from condpred.cli.app import app, err
from condpred.errors import InputError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: bad input is one clear paragraph and exit code 2, never a traceback.

    Usage errors are typer's own (also exit 2); an interrupted run is marked so in the store."""
    try:
        app()
    except InputError as error:
        err.print(f"[bold red]error:[/] {escape(str(error))}")
        sys.exit(2)
