"""`condpred report RUN_ID`: a self-contained HTML report of any stored run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from condpred.cli.app import DbOpt, app, out
from condpred.report.html import write_report
from condpred.store import Store
from condpred.validate import check_output_path


@app.command("report")
def report_cmd(
    run_id: Annotated[str, typer.Argument(help="A run id or unique prefix.")],
    output: Annotated[
        Path | None, typer.Option("--out", help="HTML file to write [default: RUN_ID.html]")
    ] = None,
    db: DbOpt = None,
) -> None:
    """Write an HTML report of a run (tables and plots) that opens offline in any browser."""
    check_output_path(output)
    with Store(db, create=False) as store:
        run_id = store.resolve_id(run_id)
        check_output_path(output or Path(f"{run_id}.html"))
        path = write_report(store, run_id, output or Path(f"{run_id}.html"))
    out.print(f"wrote {path}")
