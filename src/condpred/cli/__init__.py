"""The `condpred` command line: parses, calls the library, prints. No logic of its own.

`app.py` holds the typer app and the shared options; each group of commands lives in a module of
its own that registers on it when imported here.
"""

from __future__ import annotations

import os
import sys

from rich.markup import escape

from condpred.cli import (
    chat,  # noqa: F401  (registers the commands)
    core,  # noqa: F401
    evals,  # noqa: F401
    forecast,  # noqa: F401
    gap,  # noqa: F401
    passk,  # noqa: F401
    plan,  # noqa: F401
    reason,  # noqa: F401
    report,  # noqa: F401
    serve,  # noqa: F401
)
from condpred.cli.app import app, err
from condpred.errors import InputError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: bad input is one clear paragraph and exit code 2, never a traceback.

    Usage errors are typer's own (also exit 2); Ctrl-C is exit code 130 (an interrupted run is
    marked so in the store, and `condpred resume ID` finishes it). Anything else is a bug in
    condpred: one line saying so and exit code 1 (CONDPRED_DEBUG=1 shows the traceback)."""
    try:
        app()
    except InputError as error:
        err.print(f"[bold red]error:[/] {escape(str(error))}")
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted. A stored run keeps what it finished: condpred resume RUN_ID")
        sys.exit(130)
    except BrokenPipeError:  # `condpred runs list | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        sys.exit(0)
    except Exception as error:  # a bug: say so in one paragraph, not a traceback
        if os.environ.get("CONDPRED_DEBUG"):
            raise
        err.print(
            f"[bold red]internal error:[/] {escape(type(error).__name__)}: {escape(str(error))}. "
            "This is a bug in condpred, not in your input; please report it with the command "
            "you ran (CONDPRED_DEBUG=1 shows the traceback)"
        )
        sys.exit(1)
