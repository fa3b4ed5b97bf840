"""The typer app, its sub-apps, the consoles and the options that several commands share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from condpred.elicit import DEFAULT_CHECKS
from condpred.model import PredictiveModel
from condpred.model.openai import DEFAULT_TIMEOUT_S
from condpred.model.registry import load_model
from condpred.progress import progress_bar
from condpred.validate import SEED_MAX, SEED_MIN

app = typer.Typer(
    help="Condition predictive models (base language models) on observations, and read off "
    "what they predict.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
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
SEED_RANGE = {"min": SEED_MIN, "max": SEED_MAX}
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
