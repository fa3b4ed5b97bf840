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
            "gap",
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
    """A value as table text: floats formatted, None as a dash, HTML built by a section (Markup,
    e.g. a verdict badge) kept as it is."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, numeric)
    return str(value)


def verdict_badge(verdict: str) -> Markup:
    """A check's verdict, coloured (pass green, warn amber, fail red)."""
    return Markup('<span class="verdict verdict-{0}">{0}</span>').format(verdict)


def folded(summary: str, text: str) -> Markup:
    """Long text (a page the model saw) folded under a one-line summary."""
    return Markup("<details><summary>{}</summary><pre>{}</pre></details>").format(summary, text)


def integer_ticks(figure: go.Figure, axis: str = "x", most: int = 0) -> go.Figure:
    """Whole-number ticks for an axis of indices or counts (sample 0, 1, 2; never 0.5): one per
    unit up to a dozen (`most`, the largest value, where known), plotly's own choice above."""
    update = figure.update_xaxes if axis == "x" else figure.update_yaxes
    return update(tickformat="d", dtick=1 if most <= 12 else None, rangemode="tozero")


def pre(text: str) -> Markup:
    """Preformatted text, escaped (a rendered conditional, a sample)."""
    return Markup(f"<pre>{escape(text)}</pre>")


def error_bars(centres: Sequence[float], cis: Sequence[Sequence[float] | None]) -> dict[str, Any]:
    """Plotly's asymmetric error bars for points with 95% intervals; none where a point has no
    interval (too few units: see `condpred.stats.MIN_CI_N`)."""
    return {
        "type": "data",
        "symmetric": False,
        "array": [ci[1] - c if ci else 0 for c, ci in zip(centres, cis, strict=True)],
        "arrayminus": [c - ci[0] if ci else 0 for c, ci in zip(centres, cis, strict=True)],
    }


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
    """Each of the run's conditionals as the exact text the model saw, and the file it is from."""
    return [
        Block(
            f"Conditional {c.index} as the model saw it",
            pre(c.rendered),
            note=f"From {c.source}." if c.source else "",
        )
        for c in store.conditionals(run.id)
    ]
