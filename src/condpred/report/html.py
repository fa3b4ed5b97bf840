"""Self-contained HTML reports of stored runs: tables and plotly figures that open offline.

`build_report` dispatches on the run's kind to the section registered for it (see
`sections/__init__.py` for the interface) and lays the blocks out with a Jinja2 template shipped
as package data.
plotly.js is written into the page once, with the first figure; every later figure reuses it, so
the page needs no network and stays one file (about 5 MB).
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from types import ModuleType

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from condpred.model.registry import describe_model
from condpred.report.sections import SECTIONS, Block, generic
from condpred.store import RunRecord, Store
from condpred.validate import writing

PLOT_CONFIG = {"displaylogo": False, "responsive": True}


def section_module(kind: str) -> ModuleType:
    """The module whose `build` reports runs of this kind (registered in SECTIONS), or the
    generic one."""
    build = SECTIONS.get(kind) if kind in SECTIONS else generic.build
    return sys.modules[build.__module__]


def build_report(store: Store, run_id: str) -> str:
    """The report of one run as a complete HTML page."""
    run = store.get_run(run_id)
    build = section_module(run.kind).build
    if _stored_nothing(store, run):  # e.g. killed before its first item
        blocks = [Block("No results yet", note=_nothing_note(run))]
        with contextlib.suppress(Exception):  # a section may not expect an empty run
            blocks += build(store, run)
    else:
        blocks = build(store, run)
    template = _environment().get_template("report.html.j2")
    return template.render(run=run, facts=_facts(run), blocks=_with_figures(blocks))


def write_report(store: Store, run_id: str, path: str | Path) -> Path:
    """Write the report of a run to `path` (UTF-8)."""
    path = Path(path)
    page = build_report(store, run_id)
    with writing(path):
        path.write_text(page, encoding="utf-8")
    return path


def _stored_nothing(store: Store, run: RunRecord) -> bool:
    return (
        not store.has_items(run.id)
        and not store.samples(run.id)
        and not store.scores(run.id)
        and not store.check_results(run.id)
    )


def _nothing_note(run: RunRecord) -> str:
    note = f"This {run.kind} run ({run.status}) has stored no results."
    if run.status in ("running", "interrupted", "failed"):
        note += f" If it is not running, finish it with: condpred resume {run.id}"
    return note


def _with_figures(blocks: list[Block]) -> list[tuple[Block, Markup]]:
    """Each block with its figure as HTML; plotly.js goes into the first figure only."""
    laid_out = []
    embedded = False
    for block in blocks:
        figure = Markup("")
        if block.figure is not None:
            figure = Markup(
                block.figure.to_html(
                    full_html=False, include_plotlyjs=not embedded, config=PLOT_CONFIG
                )
            )
            embedded = True
        laid_out.append((block, figure))
    return laid_out


def _facts(run: RunRecord) -> list[tuple[str, str]]:
    facts = [
        ("run", run.id),
        ("kind", run.kind),
        ("model", run.model_spec),
        *(
            (f"source of {spec}" if "," in run.model_spec else "model source", describe_model(spec))
            for spec in run.model_spec.split(",")
        ),
        ("status", run.status),
        ("seed", str(run.seed)),
        ("condpred", run.version),
        ("created", run.created_at),
        ("finished", str(run.finished_at)),
        ("parameters", json.dumps(run.params, sort_keys=True, default=str)),
    ]
    if run.error:
        facts.append(("error", run.error))
    return facts


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("condpred.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
