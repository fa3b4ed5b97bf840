"""HTML reports, opened in headless Chromium: the plots render and the page makes no request."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from condpred import SamplingParams, Store, predict
from condpred.condition import Conditional
from condpred.elicit import check
from condpred.model.hf import HFModel
from condpred.report.html import build_report, section_module, write_report
from tests.browser import broken_words, dump_dom, page_requests, screenshot


@pytest.fixture(scope="module")
def model(tiny_model_dir) -> HFModel:
    return HFModel.from_pretrained(tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def predict_run(model, tmp_path_factory) -> tuple[Path, str]:
    """A predict run with stored samples and check results, on the tiny model."""
    db = tmp_path_factory.mktemp("report") / "runs.db"
    conditional = Conditional(title="The alignment paper", prefix="Abstract.")
    with Store(db) as store:
        prediction = predict(
            conditional, model, 3, SamplingParams(max_new_tokens=8, seed=0), store=store
        )
        check(prediction, model, ["surprisal", "ai_author"], store=store)
    return db, prediction.run_id


def test_the_instrument_sees_a_page_that_reaches_the_network(tmp_path):
    """Known answer first: a page that fetches from three hosts must show each request, a Google
    CDN beside the browser's own service hosts included."""
    page = tmp_path / "online.html"
    page.write_text(
        '<img src="http://example.com/x.png">'
        '<script>fetch("https://cdn.example.org/plotly.js")</script>'
        '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Inter"><p>hi</p>'
    )
    dom, requests = dump_dom(page)
    hosts = " ".join(page_requests(requests))
    assert all(h in hosts for h in ("example.com", "cdn.example.org", "fonts.googleapis.com"))
    assert "<p>hi</p>" in dom


def test_predict_report_renders_offline(predict_run, tmp_path):
    db, run_id = predict_run
    with Store(db) as store:
        path = write_report(store, run_id, tmp_path / "report.html")
    html = path.read_text()
    assert html.count("PlotlyConfig") == 1  # plotly.js embedded once, not once per figure
    dom, requests = dump_dom(path)
    assert page_requests(requests) == []
    assert dom.count('class="plot-container plotly"') == 2  # both figures drawn by plotly.js
    assert dom.count('class="main-svg"') >= 2
    assert "Check results" in dom and "surprisal" in dom


def test_unknown_kinds_get_the_generic_section(predict_run):
    db, run_id = predict_run
    assert section_module("no-such-kind").__name__.endswith(".generic")
    assert section_module("predict").__name__.endswith(".predict")
    with Store(db) as store:
        html = build_report(store, run_id)
    assert "Samples (3)" in html


def test_report_command_writes_the_page(predict_run, tmp_path):
    from typer.testing import CliRunner

    from condpred.cli import app

    db, run_id = predict_run
    target = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", run_id[:12], "--db", str(db), "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text().startswith("<!DOCTYPE html>")


@pytest.fixture(scope="module")
def forecast_and_plan_runs(model, tmp_path_factory) -> tuple[Path, str, str]:
    """A forecast run (two sources, crowd probabilities) and a plan run, on the tiny model."""
    from condpred.forecasting import forecast
    from condpred.planning import plan
    from tests.test_forecast import question, write_questions
    from tests.test_plan import PLAN_SET, write

    folder = tmp_path_factory.mktemp("report-kinds")
    questions = write_questions(folder / "q.jsonl", [question(i) for i in range(8)])
    with Store(folder / "runs.db") as store:
        forecast_run = forecast(questions, model, cutoff=dt.date(2024, 8, 1), store=store)
        plan_run = plan(
            write(folder / "p.yaml", PLAN_SET), model, samples=1, max_tokens=4, store=store
        )
    return folder / "runs.db", forecast_run.run_id, plan_run.run_id


@pytest.mark.parametrize(
    ("kind", "figures", "words"),
    [
        ("forecast", 3, ["Reliability diagram", "resolved_after_cutoff", "crowd Brier"]),
        ("plan", 3, ["Outcomes by plan", "Expected utility", "performative", "Plan: ratify"]),
    ],
)
def test_forecast_and_plan_reports_render_offline(
    forecast_and_plan_runs, tmp_path, kind, figures, words
):
    db, forecast_id, plan_id = forecast_and_plan_runs
    with Store(db) as store:
        path = write_report(
            store, forecast_id if kind == "forecast" else plan_id, tmp_path / "r.html"
        )
    assert path.read_text().count("PlotlyConfig") == 1
    dom, requests = dump_dom(path)
    assert page_requests(requests) == []
    assert dom.count('class="plot-container plotly"') == figures  # drawn by plotly.js
    assert dom.count('class="main-svg"') >= figures
    for word in words:
        assert word in dom


# --- read as a researcher reads them: in Chromium, laid out, with screenshots kept ---------------


def test_the_broken_word_probe_sees_a_word_wrapped_mid_word(tmp_path):
    """Known answer first: a narrow cell that may break anywhere splits its words; one that may
    break only between words does not."""
    cell = '<td style="width: 5em; {}">conditioning predictive models</td>'
    page = tmp_path / "cells.html"
    page.write_text(
        "<html><body><table><tr>"
        + cell.format("overflow-wrap: anywhere; word-break: break-all")
        + "</tr></table><table><tr>"
        + cell.format("overflow-wrap: normal")
        + "</tr></table></body></html>"
    )
    assert "conditioning" in broken_words(page)
    page.write_text(page.read_text().replace("overflow-wrap: anywhere; word-break: break-all", ""))
    assert broken_words(page) == []


def test_reports_read_well_in_chromium(predict_run, model, tmp_path):
    """The predict and forecast reports as drawn: coloured verdicts, one panel per check, the
    model's source, the questions' text with the page the model saw, bins with counts, and no
    word wrapped mid-word in any table. Screenshots are kept in tests/artifacts/."""
    from condpred.forecasting import forecast
    from tests.test_forecast import question, write_questions

    db, run_id = predict_run
    questions = write_questions(tmp_path / "q.jsonl", [question(i) for i in range(6)])
    with Store(db) as store:
        predict_page = write_report(store, run_id, tmp_path / "predict.html")
        result = forecast(questions, model, store=store)
        forecast_page = write_report(store, result.run_id, tmp_path / "forecast.html")
    dom, _ = dump_dom(predict_page)
    assert "verdict verdict-" in dom and "model source" in dom
    assert "ai_author per sample" in dom and "probability of an AI author" in dom  # its unit
    dom, _ = dump_dom(forecast_page)
    assert "Will the treaty be ratified before 2030? (3)" in dom and "<details>" in dom
    assert "n=" in dom  # reliability bins labelled with their question counts
    assert "n/a (n &lt; 10)" in dom  # six questions: no interval, and the reason
    for page in (predict_page, forecast_page):
        long_tokens = [w for w in broken_words(page) if len(w) <= 30]  # a path may still break
        assert long_tokens == [], page.name
        screenshot(page, page.stem)
