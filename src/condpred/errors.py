"""The one error type users see: bad input, named precisely enough to fix.

The CLI turns an `InputError` into a one-paragraph message and exit code 2, never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class InputError(Exception):
    """Bad user input: where it is (file, field), what is wrong, and how to fix it."""

    def __init__(
        self,
        problem: str,
        *,
        source: str | None = None,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.source = source
        self.field = field
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ", ".join(
            part for part in (self.source, f"field '{self.field}'" if self.field else None) if part
        )
        message = f"{where}: {self.problem}" if where else self.problem
        return f"{message}. {self.fix}" if self.fix else message


def did_you_mean(name: str, choices: Iterable[str], suffix: str = "") -> str:
    """ "Did you mean 'x'? " for the closest of `choices` to a name the user typed, else ""."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"Did you mean '{close[0]}{suffix}'? " if close else ""
