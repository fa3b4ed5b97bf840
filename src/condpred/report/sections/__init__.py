"""One module per run kind builds that kind's part of an HTML report.

The interface is one function, `build(store, run) -> list[Block]`, registered for its kind with
`@SECTIONS.register("kind")`; `html.py` looks the run's kind up, so a new kind of run needs one
new module (here, or in a user's package through the entry-point group
`condpred.report_sections`) and nothing else; a kind without one gets `generic.py`.
A block holds a title, an optional note, an HTML fragment built with the
escaping helpers below, and an optional plotly figure; `html.py` embeds plotly.js once per page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from condpred.registry import Registry

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from condpred.store import RunRecord, Store

SECTIONS: Registry[Callable[[Store, RunRecord], list[Block]]] = Registry(
    "report section",
    "condpred.report_sections",
    builtins=[
        f"condpred.report.sections.{name}"
        for name in (
            "agentic",
            "assistant",
            "forecast",
            "passk",
            "plan",
            "predict",
            "reason",
            "score",
            "zero_one",
        )
    ],
)


@dataclass(frozen=True)
class Block:
    """One titled part of a report: a note (plain text), HTML, and/or a figure, in that order."""

    title: str
    html: Markup = field(default_factory=Markup)
    figure: go.Figure | None = None
    note: str = ""


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], numeric: str = ".3f") -> Markup:
    """An HTML table with every cell escaped; floats formatted with `numeric`."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell(value, numeric))}</td>" for value in row) + "</tr>"
        for row in rows
    )
    return Markup(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def cell(value: Any, numeric: str = ".3f") -> str:
    """A value as table text: floats formatted, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, numeric)
    return str(value)


def pre(text: str) -> Markup:
    """Preformatted text, escaped (a rendered conditional, a sample)."""
    return Markup(f"<pre>{escape(text)}</pre>")


def layout(figure: go.Figure, title: str, x: str, y: str) -> go.Figure:
    """The house style every report figure shares."""
    figure.update_layout(
        title=title,
        xaxis_title=x,
        yaxis_title=y,
        template="plotly_white",
        height=380,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
    )
    return figure


def conditional_blocks(store: Store, run: RunRecord) -> list[Block]:
    """Each of the run's conditionals as the exact text the model saw."""
    return [
        Block(f"Conditional {c.index} as the model saw it", pre(c.rendered))
        for c in store.conditionals(run.id)
    ]
