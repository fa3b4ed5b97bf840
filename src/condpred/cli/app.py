"""The typer app, its sub-apps, the consoles and the options that several commands share."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
from rich.console import Console

from condpred.elicit import DEFAULT_CHECKS
from condpred.model import PredictiveModel
from condpred.model.openai import DEFAULT_TIMEOUT_S
from condpred.model.registry import load_model
from condpred.progress import progress_bar
from condpred.store import Store, package_version
from condpred.validate import SEED_MAX, SEED_MIN, writing

app = typer.Typer(
    help="Condition predictive models (base language models) on observations, and read off "
    "what they predict.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _flags_take_no_value(self: typer.core.TyperOption, ctx: object) -> str | None:
    """typer 0.29 shows `<bool>` beside every flag (--help, --json, --gate) as if it took a value,
    and click then refuses the value a user types: a flag's help shows no placeholder."""
    return None if self.is_flag else _value_placeholder(self, ctx)


_value_placeholder = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = _flags_take_no_value


def _print_version(value: bool) -> None:
    if value:
        print(f"condpred {package_version()}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Options of condpred itself (the app's help text is its own)."""


runs_app = typer.Typer(help="The run store: list, show and export runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
checks_app = typer.Typer(help="The checks on predictions: list and validate.", no_args_is_help=True)
app.add_typer(checks_app, name="checks")
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

ModelOpt = Annotated[
    str, typer.Option("--model", "-m", help="default, an HF id/dir, gguf:PATH or openai:URL#MODEL")
]
CamerasOpt = Annotated[
    Path | None, typer.Option("--cameras", help="A folder of extra camera templates (NAME.j2).")
]
DbOpt = Annotated[
    Path | None,
    typer.Option("--db", help="Run store file [default: $CONDPRED_DB or ./condpred-runs.db]"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a readable layout.")]
ChecksOpt = Annotated[
    str,
    typer.Option(
        "--checks",
        help=f"Comma-separated checks to run on every sample, or 'none'; arguments after the "
        f"name, e.g. ai_author:warn_above=0.4. Default: {','.join(DEFAULT_CHECKS)}.",
    ),
]


# Options every command that loads a model shares; typer refuses values outside these ranges
# with exit code 2 before the command runs.
def _seed_in_range(value: int | None) -> int | None:
    """A seed SQLite can store (a signed 64-bit integer); checked by a callback rather than
    min/max, whose 19-digit bounds typer would print in every command's help."""
    if value is not None and not SEED_MIN <= value <= SEED_MAX:
        raise typer.BadParameter("give a whole number that fits in 64 bits (signed)")
    return value


SEED_RANGE = {"callback": _seed_in_range}
_settings: dict[str, float | None] = {"timeout": None}


def _set_timeout(value: float | None) -> float | None:
    if value is not None and not (0 < value < float("inf")):
        raise typer.BadParameter("give a number of seconds above 0", param_hint="--timeout")
    _settings["timeout"] = value
    return value


TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        callback=_set_timeout,
        help=f"Seconds an openai: server may take to answer one request before the run stops "
        f"with an error naming it [default: {DEFAULT_TIMEOUT_S:g}]",
    ),
]


def check_names(option: str) -> list[str]:
    """The names in a --checks option ("none" means no checks)."""
    return [] if option.strip() == "none" else [n.strip() for n in option.split(",") if n.strip()]


def load_model_with_bar(spec: str) -> PredictiveModel:
    """Load a model behind a spinner: the first load of the embedded model converts it."""
    with progress_bar(None, f"loading model {spec}"):
        return load_model(spec, timeout=_settings["timeout"])


def stored(store: Store, run_id: str | None, written: Path | None = None) -> None:
    """The closing lines of a command that stored a run: where it is and what to do next (never
    wrapped or cut, since the id is what every other command needs)."""
    if written is not None:
        out.print(f"wrote {written}", soft_wrap=True)
    if run_id is None:
        return
    out.print(f"stored as run {run_id} in {store.path}", soft_wrap=True)
    out.print(
        f"next: condpred report {run_id}   (an HTML page)   ·   condpred runs show {run_id}"
        "   ·   condpred serve   (browse every run)",
        soft_wrap=True,
    )


def write_json(output: Path | None, data: Any) -> None:
    """`--out`: the data as indented JSON (a failed write names the file, see `writing`)."""
    if output is not None:
        with writing(output):
            output.write_text(json.dumps(data, indent=2))


def finish(
    store: Store,
    run_id: str | None,
    summary: dict[str, Any],
    output: Path | None,
    as_json: bool,
    show: Callable[[dict[str, Any]], None],
) -> None:
    """How a run command ends: its summary (with the run id) to `--out`, then printed as JSON or
    by `show`, then where the run is stored and what to run next."""
    summary = {"run_id": run_id, **summary}
    write_json(output, summary)
    if as_json:
        out.print_json(json.dumps(summary))
        return
    show(summary)
    stored(store, run_id, output)
