"""Jinja2 filters that camera templates use to write a conditional the way a real source does.

They are plain functions of plain values: dates in each source's own style (computed from fixed
tables, never from the locale, so rendering is the same on every machine), lists of names, premises
joined into prose, and stable pseudo-identifiers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable
from typing import Any

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _ordinal(day: int) -> str:
    if 11 <= day % 100 <= 13:
        return f"{day}th"
    return f"{day}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th') }"


DATE_STYLES: dict[str, Callable[[dt.date], str]] = {
    # "March 3, 2031": American news and most US publications.
    "long": lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    # "3 March 2031": British style, used in UK meeting minutes and transcripts.
    "dmy": lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    # "Monday 3 March 2031": the header of a British transcript.
    "weekday-dmy": lambda d: f"{WEEKDAYS[d.weekday()]} {d.day} {MONTHS[d.month - 1]} {d.year}",
    # "3 Mar 2031": arXiv's "[Submitted on 3 Mar 2031]".
    "arxiv": lambda d: f"{d.day} {MONTHS[d.month - 1][:3]} {d.year}",
    # "3rd Mar 2031": LessWrong / Alignment Forum post dates.
    "forum": lambda d: f"{_ordinal(d.day)} {MONTHS[d.month - 1][:3]} {d.year}",
    # "Mar 3, 2031": forecasting sites (Metaculus) in short form.
    "short": lambda d: f"{MONTHS[d.month - 1][:3]} {d.day}, {d.year}",
    "iso": lambda d: d.isoformat(),
    # "3103": the year-and-month part of an arXiv identifier.
    "yymm": lambda d: f"{d.year % 100:02d}{d.month:02d}",
    "year": lambda d: str(d.year),
}


def datefmt(value: dt.date | str | None, style: str = "long") -> str:
    """Write a date in a named style (see DATE_STYLES).

    An absent date writes nothing and a date already written as text is kept as written, so a
    template can pass free `extra` fields (a closing date, say) through the same filter.
    """
    if style not in DATE_STYLES:
        raise ValueError(f"unknown date style '{style}'; use one of: {', '.join(DATE_STYLES)}")
    if value is None or isinstance(value, str):
        return value or ""
    if not isinstance(value, dt.date):
        raise TypeError(f"datefmt needs a date, got {type(value).__name__}")
    return DATE_STYLES[style](value)


def and_join(items: Iterable[Any], last: str = " and ") -> str:
    """'A', 'A and B', 'A, B and C': how bylines and prose list names."""
    words = [str(item) for item in items]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + last + words[-1]


def names(authors: Iterable[Any], affiliations: bool = False) -> list[str]:
    """Author names, optionally as 'Name (Affiliation)' the way arXiv metadata lists them."""
    return [
        f"{a['name']} ({a['affiliation']})" if affiliations and a.get("affiliation") else a["name"]
        for a in authors
    ]


_CLOSERS = "\"')]»\u201d\u2019"  # closing quotes and brackets may follow the end mark
_TERMINALS = ".!?…"


def sentence(text: Any) -> str:
    """A premise as a sentence: stripped, with a full stop added when it has no end mark."""
    words = str(text).strip()
    if words and words.rstrip(_CLOSERS)[-1:] not in _TERMINALS:
        return words + "."
    return words


def paragraph(premises: Iterable[Any]) -> str:
    """Premises as one paragraph of sentences, the way a writer states background."""
    return " ".join(s for s in (sentence(p) for p in premises) if s)


def listing(value: Any, sep: str = ", ") -> str:
    """A free `extra` field that may be one string or a list of them (tags, subjects)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return sep.join(str(item) for item in value)
    return str(value)


def stable_digits(text: Any, digits: int = 5) -> str:
    """Digits derived from text: an identifier (an arXiv number) that looks real, never varies."""
    if not 1 <= digits <= 20:
        raise ValueError("stable_digits takes 1 to 20 digits")
    number = int(hashlib.sha256(str(text).encode("utf-8", "replace")).hexdigest(), 16)
    return str(number % 10**digits).zfill(digits)


FILTERS: dict[str, Callable[..., Any]] = {
    "datefmt": datefmt,
    "and_join": and_join,
    "names": names,
    "sentence": sentence,
    "paragraph": paragraph,
    "listing": listing,
    "stable_digits": stable_digits,
}
