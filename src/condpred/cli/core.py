"""The core commands: render, predict, check, score, cameras, models, runs, checks."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from condpred.checks import available_checks, describe_check, get_check
from condpred.cli.app import (
    SEED_RANGE,
    CamerasOpt,
    ChecksOpt,
    DbOpt,
    JsonOpt,
    ModelOpt,
    TimeoutOpt,
    app,
    check_names,
    checks_app,
    err,
    load_model_with_bar,
    out,
    runs_app,
    stored,
    write_json,
)
from condpred.condition import describe_camera, list_cameras, load_conditional, render
from condpred.elicit import DEFAULT_CHECKS, check, gated, predict, resume, score, stored_prediction
from condpred.errors import InputError, did_you_mean
from condpred.experiments.runner import expect_kind
from condpred.experiments.runner import resume as resume_run
from condpred.model.base import SamplingParams
from condpred.model.registry import ALIASES, EMBEDDED
from condpred.report import terminal as show
from condpred.store import Store
from condpred.validate import (
    check_model_spec,
    check_output_path,
    check_sampling,
    read_text_input,
)


@app.command("render")
def render_cmd(file: Path, cameras: CamerasOpt = None) -> None:
    """Print the exact text the model will see for a conditional."""
    sys.stdout.write(render(load_conditional(file, cameras), cameras) + "\n")


@app.command("predict")
def predict_cmd(
    file: Annotated[Path | None, typer.Argument(help="A conditional (YAML).")] = None,
    n: Annotated[int, typer.Option("-n", min=1, help="Number of samples.")] = 8,
    model: ModelOpt = "default",
    max_tokens: Annotated[int, typer.Option(min=1, help="New tokens per sample at most.")] = 128,
    temperature: Annotated[float, typer.Option(min=0.0, help="0 means greedy.")] = 1.0,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0, help="Nucleus sampling mass.")] = 1.0,
    stop: Annotated[list[str] | None, typer.Option(help="Stop string (repeatable).")] = None,
    seed: Annotated[
        int, typer.Option(help="Sample i depends only on (seed, i).", **SEED_RANGE)
    ] = 0,
    resume_id: Annotated[
        str | None, typer.Option("--resume", help="Finish an interrupted run by its id.")
    ] = None,
    cameras: CamerasOpt = None,
    checks: ChecksOpt = ",".join(DEFAULT_CHECKS),
    keep_passing: Annotated[
        bool, typer.Option("--gate", help="Keep only samples whose checks all pass.")
    ] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Sample what the conditional's camera would show next; every sample is stored as it exists,
    then checked (ai_author, surprisal, ... ) and the results stored beside it."""
    names = check_names(checks)
    for name in names:  # a typo in --checks fails before any sampling
        get_check(name)
    check_sampling(n, temperature, top_p)
    if not resume_id:  # everything about a new run is checked before the store or model opens
        if file is None:
            raise InputError("predict needs a conditional file", fix="Pass FILE or --resume ID")
        check_model_spec(model)
        load_conditional(file, cameras)
    with Store(db, create=not resume_id) as store:
        if resume_id:
            run = expect_kind(store.get_run(resume_id), "predict")  # before the model loads
            if run.status == "done":
                out.print(f"run {run.id} is already done: nothing to resume")
                prediction = stored_prediction(store, run.id)
                _print_checked(prediction, prediction.checks, keep_passing, as_json)
                if not as_json:
                    stored(store, run.id)
                return
            model_ = load_model_with_bar(run.model_spec)
            prediction = resume(run.id, store, model_)
        else:
            conditional = load_conditional(file, cameras)
            params = SamplingParams(max_tokens, temperature, top_p, tuple(stop or ()), seed)
            model_ = load_model_with_bar(model)
            prediction = predict(
                conditional,
                model_,
                n,
                params,
                store=store,
                cameras_dir=cameras,
                source=file,
                checks=names,
            )
    _print_checked(prediction, prediction.checks, keep_passing, as_json)
    if not as_json:
        stored(store, prediction.run_id)


def _print_checked(prediction, results, keep_passing: bool, as_json: bool) -> None:
    dropped: dict = {}
    if keep_passing:
        prediction, dropped = gated(prediction, results)
    if as_json:
        payload = {
            "run_id": prediction.run_id,
            "samples": [asdict(s) for s in prediction.samples],
            "checks": [asdict(r) for r in results],
            "dropped": {str(i): [r.check for r in rs] for i, rs in dropped.items()},
        }
        out.print_json(json.dumps(payload, default=str))
        return
    show.prediction(out, prediction)
    if results:
        show.check_summary(out, results)
    if keep_passing:
        show.dropped(out, dropped)
        if dropped and not prediction.samples:
            out.print(
                "[yellow]every sample was dropped.[/] The findings above say which checks and "
                "values; a check's thresholds are its arguments (condpred checks list), e.g. "
                "--checks ai_author:warn_above=0.7, or drop --gate to see every sample."
            )


@app.command("check")
def check_cmd(
    file: Annotated[Path, typer.Argument(help="The conditional (YAML) the samples answer.")],
    samples: Annotated[
        str, typer.Option("--samples", help="The predict run whose samples to check.")
    ],
    checks: ChecksOpt = ",".join(DEFAULT_CHECKS),
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Default: the run's own model. Another model reads the samples as other text "
            "(ai_author judges them with its other-text combiner).",
        ),
    ] = None,
    keep_passing: Annotated[
        bool, typer.Option("--gate", help="Show only passing samples.")
    ] = False,
    cameras: CamerasOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Re-run checks on stored predictions without sampling again; results are stored too."""
    names = check_names(checks)
    for name in names:  # a typo in --checks fails before the model loads
        get_check(name)
    if model is not None:
        check_model_spec(model)
    conditional = load_conditional(file, cameras)
    with Store(db, create=False) as store:
        earlier = stored_prediction(store, samples)
        rendered = render(conditional, cameras)
        if rendered != earlier.rendered:
            err.print(
                f"note: {file} renders differently from the conditional run {earlier.run_id}"
                " sampled under; the checks use the file's"
            )
        prediction = replace(earlier, conditional=conditional, rendered=rendered)
        model_ = load_model_with_bar(model or earlier.model_spec)
        own = True if model is None else None  # None: compared by model spec
        results = check(
            prediction, model_, names, store=store, cameras_dir=cameras, own_samples=own
        )
    _print_checked(prediction, results, keep_passing, as_json)
    if not as_json:
        out.print(
            f"checked the {len(earlier.samples)} stored samples of run {earlier.run_id} "
            f"(nothing was sampled); the results are stored with the run"
        )
        stored(store, earlier.run_id)


DataOpt = Annotated[Path, typer.Option(help="A file or folder of human-vs-AI pairs (JSON).")]
LimitOpt = Annotated[
    int, typer.Option(min=1, help="Pairs of each file (of its part: odd or even).")
]
OpeningsOpt = Annotated[
    int, typer.Option(min=0, help="Openings of each file sampled under a human vs an AI author.")
]
SamplesOpt = Annotated[int, typer.Option(min=1, help="Samples a side per opening.")]
CacheOpt = Annotated[
    Path | None, typer.Option(help="JSONL of computed rows: run again to go on from there.")
]


def _only_ai_author(name: str, command: str) -> None:
    if name != "ai_author":
        raise InputError(
            f"no {command} for check '{name}'", source=f"checks {command}", fix="Use ai_author"
        )


@checks_app.command("validate")
def checks_validate(
    name: Annotated[str, typer.Argument(help="The check to validate (ai_author).")],
    data: DataOpt,
    limit: LimitOpt = 24,
    openings: OpeningsOpt = 3,
    samples: SamplesOpt = 3,
    combiner: Annotated[
        Path | None, typer.Option(help="A fitted combiner (default: the package's).")
    ] = None,
    output: Annotated[Path | None, typer.Option("--out", help="Write the rows as JSON.")] = None,
    cache: CacheOpt = None,
    model: ModelOpt = "default",
    performer: Annotated[
        str | None,
        typer.Option(help="A second model with the same tokenizer: adds the Binoculars anchor."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of sampling and bootstrap.", **SEED_RANGE)] = 0,
    timeout: TimeoutOpt = None,
) -> None:
    """The check beside its signals and anchors (likelihood, Fast-DetectGPT; Binoculars with
    --performer), AUROC with 95% CIs, on the even pairs of each file (the combiner was fitted on
    the odd ones): human vs machine text, the model's own samples under a human vs an AI
    author, and planted authors."""
    from condpred.checks.ai_author import load_combiners
    from condpred.checks.validation import check_data, format_validation, validate_ai_author

    _only_ai_author(name, "validate")
    check_output_path(output)
    check_model_spec(model)
    if performer is not None:
        check_model_spec(performer)
    check_data(data)  # a malformed file fails before the model loads
    load_combiners(combiner)
    record = validate_ai_author(
        load_model_with_bar(model),
        data,
        combiner,
        seed,
        limit=limit,
        openings=openings,
        samples=samples,
        cache=cache,
        performer=load_model_with_bar(performer) if performer else None,
    )
    out.print(format_validation(record))
    if output is not None:
        write_json(output, record)
        out.print(f"wrote {output}")


@checks_app.command("fit")
def checks_fit(
    name: Annotated[str, typer.Argument(help="The check to fit (ai_author).")],
    data: DataOpt,
    output: Annotated[Path, typer.Option("--out", help="Where to write the combiner (JSON).")],
    limit: LimitOpt = 30,
    openings: OpeningsOpt = 3,
    samples: SamplesOpt = 3,
    cache: CacheOpt = None,
    model: ModelOpt = "default",
    seed: Annotated[int, typer.Option(help="Seed of the samples.", **SEED_RANGE)] = 0,
    timeout: TimeoutOpt = None,
) -> None:
    """Refit ai_author's combiners on the odd pairs of each file: one set for the model's own
    samples (under human vs AI authors, and planted authors), one for other text (human vs
    machine), each with thresholds at false-positive rates measured on its human side; use it with
    --checks ai_author:combiner=FILE, or write it over the package's to make it the default."""
    from condpred.checks.validation import check_data, fit_ai_author

    _only_ai_author(name, "fit")
    check_output_path(output)
    check_model_spec(model)
    check_data(data)
    record = fit_ai_author(
        load_model_with_bar(model),
        data,
        limit=limit,
        openings=openings,
        samples=samples,
        seed=seed,
        cache=cache,
    )
    for combiner in record["combiners"]:
        weights = ", ".join(
            f"{f} {c:+.2f}" for f, c in zip(combiner["features"], combiner["coef"], strict=True)
        )
        out.print(
            f"{combiner['source']}, {combiner['name']}: {weights}; "
            f"warn above {combiner['warn_above']:.3f}, fail above {combiner['fail_above']:.3f}"
        )
    write_json(output, record)
    out.print(f"wrote {output}")


def _default(value: object) -> str:
    """A default as `checks list` shows it; a fitted one per variant as 'variant: value' lines."""
    if isinstance(value, dict):
        return "".join(f"\n  {k}: {v}" for k, v in value.items())
    return str(value)


@checks_app.command("list")
def checks_list(as_json: JsonOpt = False) -> None:
    """The checks that can run on predictions: what each estimates, its unit, and its arguments
    with their defaults (thresholds included), as --checks NAME:ARG=VALUE takes them."""
    described = [describe_check(name) for name in available_checks()]
    if as_json:
        out.print_json(json.dumps(described, default=str))
        return
    table = Table(box=None, show_lines=True)
    table.add_column("check", no_wrap=True)
    table.add_column("estimates (unit)", ratio=3)
    table.add_column("arguments = defaults", overflow="fold", ratio=2)
    for described_check in described:
        arguments = "\n".join(f"{k}={_default(v)}" for k, v in described_check["arguments"].items())
        about = f"{described_check['summary']} [dim]unit: {described_check['unit']}[/]"
        table.add_row(described_check["name"], about, escape(arguments))
    out.print(table)


@app.command("score")
def score_cmd(
    file: Annotated[Path, typer.Argument(help="A conditional (YAML).")],
    continuation: Annotated[
        list[str] | None, typer.Option("--continuation", "-c", help="A continuation (repeatable).")
    ] = None,
    continuations: Annotated[
        Path | None, typer.Option(help="A text file with one continuation per line.")
    ] = None,
    model: ModelOpt = "default",
    cameras: CamerasOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    timeout: TimeoutOpt = None,
) -> None:
    """Log-probability of each continuation under the conditional, with per-token surprisal."""
    texts = list(continuation or []) + _read_lines(continuations)
    if not texts:
        raise InputError(
            "nothing to score", fix="Pass --continuation TEXT (repeatable) or --continuations FILE"
        )
    conditional = load_conditional(file, cameras)
    check_model_spec(model)
    with Store(db) as store:
        run_id, scores = score(
            conditional,
            texts,
            load_model_with_bar(model),
            store=store,
            cameras_dir=cameras,
            source=file,
        )
    if as_json:
        out.print_json(json.dumps({"run_id": run_id, "scores": [asdict(s) for s in scores]}))
    else:
        show.scores(out, scores)
        stored(store, run_id)


def _read_lines(path: Path | None) -> list[str]:
    if path is None:
        return []
    text = read_text_input(
        path,
        what="a text file of continuations",
        fix="Pass a UTF-8 text file with one continuation per line (--continuations FILE)",
    )
    return [line for line in text.splitlines() if line.strip()]


@app.command("cameras")
def cameras_cmd(cameras: CamerasOpt = None) -> None:
    """List the cameras (kinds of document) a conditional can be rendered through."""
    table = Table("camera", "imitates", box=None)
    for name in list_cameras(cameras):
        table.add_row(name, escape(describe_camera(name, cameras)))
    out.print(table)


@app.command("models")
def models_cmd() -> None:
    """List the models that ship with condpred (no download needed)."""
    table = Table("spec", "kind", "cutoff", "about", box=None)
    aliases = {v: k for k, v in ALIASES.items()}
    for name, info in EMBEDDED.items():
        label = f"{name} ({aliases[name]})" if name in aliases else name
        kind = "tuned" if info.tuned else "base"
        table.add_row(label, kind, str(info.cutoff or "unknown"), info.about)
    out.print(table)


@app.command("resume")
def resume_cmd(run_id: Annotated[str, typer.Argument(help="A run id (or unique prefix).")],
               db: DbOpt = None, timeout: TimeoutOpt = None) -> None:  # fmt: skip
    """Finish an interrupted run of any kind: only what it has not stored yet is computed, with
    the parameters, seed and model(s) stored with it."""
    with Store(db, create=False) as store:
        run = store.get_run(run_id)
        if resume_run(run.id, store, load_model_with_bar) is None:
            out.print(f"run {run.id} ({run.kind}) is already done: nothing to resume.")
        else:
            out.print(f"run {run.id} ({run.kind}): {store.get_run(run.id).status}")
    stored(store, run.id)


@runs_app.command("list")
def runs_list(
    limit: Annotated[int, typer.Option(min=1)] = 20,
    kind: Annotated[str | None, typer.Option(help="Only runs of this kind.")] = None,
    db: DbOpt = None,
) -> None:
    """The most recent runs, newest first."""
    with Store(db, create=False) as store:
        runs = store.list_runs(limit=limit, kind=kind)
        if not runs and kind is not None:
            kinds = sorted({run.kind for run in store.list_runs(limit=None)})
            raise InputError(
                f"no runs of kind '{kind}' in this store",
                source=str(store.path),
                field="--kind",
                fix=f"{did_you_mean(kind, kinds)}Kinds stored here: {', '.join(kinds)}"
                if kinds
                else "The store has no runs",
            )
        show.runs(out, runs)


@runs_app.command("show")
def runs_show(run_id: str, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """One run: its parameters, conditionals, and samples, scores or experiment items."""
    with Store(db, create=False) as store:
        run = store.get_run(run_id)
        if as_json:
            out.print_json(
                json.dumps({"run": asdict(run), "rows": store.rows(run.id)}, default=str)
            )
            return
        show.run(
            out,
            run,
            store.conditionals(run.id),
            store.samples(run.id),
            store.scores(run.id),
            store.item_rows(run.id),
            store.check_results(run.id),
        )


@runs_app.command("export")
def runs_export(
    run_id: str,
    format: Annotated[
        str | None,
        typer.Option(
            "--format", help="jsonl, parquet or csv [default: --out's suffix if one of them; jsonl]"
        ),
    ] = None,
    output: Annotated[Path | None, typer.Option("--out", help="File to write.")] = None,
    db: DbOpt = None,
) -> None:
    """Write a run's samples and scores as JSONL or Parquet, one row each."""
    check_output_path(output)
    with Store(db, create=False) as store:
        run_id = store.resolve_id(run_id)
        suffix = output.suffix.lstrip(".").lower() if output else ""
        format = format or (suffix if suffix in ("jsonl", "parquet", "csv") else "jsonl")
        path = output or Path(f"{run_id}.{format}")
        check_output_path(path)
        rows = store.export(run_id, path, format)
    out.print(f"wrote {rows} rows to {path}")
