"""Progress bars with ETA for long work (conversion, loading, sampling, scoring).

Library code calls `progress_bar(total, description)`; bars are drawn on stderr by rich and are
silent when `CONDPRED_PROGRESS=0`, so notebooks, tests and pipes stay clean when asked to.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

_console = Console(stderr=True)


def progress_enabled() -> bool:
    return os.environ.get("CONDPRED_PROGRESS", "1") != "0"


_active: Progress | None = None  # one live display at a time: nested bars join it as tasks


@contextmanager
def progress_bar(total: int | None, description: str) -> Iterator[Callable[[int], None]]:
    """Yield `advance(k)`; a `total` of None draws a spinner for work of unknown length."""
    global _active
    if not progress_enabled():
        yield lambda k=1: None
        return
    if _active is not None:
        task = _active.add_task(description, total=total)
        try:
            yield lambda k=1: _active.advance(task, k)
        finally:
            _active.remove_task(task)
        return
    columns = [
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=_console, transient=True) as bar:
        _active = bar
        try:
            task = bar.add_task(description, total=total)
            yield lambda k=1: bar.advance(task, k)
        finally:
            _active = None
