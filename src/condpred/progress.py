"""Progress for long work (conversion, loading, sampling, scoring): bars with ETA on a terminal,
periodic plain lines otherwise, and one-line notices (a run's id and store when it starts).

Library code calls `progress_bar(total, description)` and `notice(text)`; both write to stderr, so
stdout stays the command's result. Without a terminal (logs, CI, `nohup`) a bar becomes a plain
line every `CONDPRED_PROGRESS_EVERY` seconds (default 30) and one when it ends, so a long run is
never silent. `CONDPRED_PROGRESS=0` silences the bars and lines (notebooks, tests), not notices.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

_console = Console(stderr=True, highlight=False)


def progress_enabled() -> bool:
    return os.environ.get("CONDPRED_PROGRESS", "1") != "0"


def notice(text: str) -> None:
    """One line for the user on stderr (e.g. "run 2026…-ab12 started in runs.db")."""
    _console.print(escape(text), soft_wrap=True)  # an id must never wrap or be cut


_active: Progress | None = None  # one live display at a time: nested bars join it as tasks


@contextmanager
def progress_bar(total: int | None, description: str) -> Iterator[Callable[[int], None]]:
    """Yield `advance(k)`; a `total` of None draws a spinner for work of unknown length."""
    global _active
    if not progress_enabled():
        yield lambda k=1: None
        return
    if not _console.is_terminal:
        with _plain_lines(total, description) as advance:
            yield advance
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


_plain_depth = 0  # bars open without a terminal: only the outermost prints a closing line


@contextmanager
def _plain_lines(total: int | None, description: str) -> Iterator[Callable[[int], None]]:
    """Progress as a line every few seconds, for logs: done/total, elapsed and the ETA."""
    global _plain_depth
    every = float(os.environ.get("CONDPRED_PROGRESS_EVERY", "30"))
    started = last = time.monotonic()
    done = 0

    def line() -> str:
        elapsed = time.monotonic() - started
        if not total:
            return f"{description}: {done} done, {elapsed:.0f} s"
        eta = elapsed / done * (total - done) if done else float("nan")
        eta_text = f"eta {eta:.0f} s" if done else "eta unknown"
        return f"{description}: {done}/{total} ({done / total:.0%}), {elapsed:.0f} s, {eta_text}"

    def advance(k: int = 1) -> None:
        nonlocal done, last
        done += k
        if time.monotonic() - last >= every:
            last = time.monotonic()
            _console.print(line(), soft_wrap=True, markup=False)

    _plain_depth += 1
    try:
        yield advance
    finally:
        _plain_depth -= 1
    if total and done and _plain_depth == 0:
        _console.print(line(), soft_wrap=True, markup=False)
