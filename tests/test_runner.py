"""The one run lifecycle: items committed whole with their side records (a real SIGKILL at every
write of an item loses nothing and `condpred resume` completes the run to the same rows), one
`resume` for every kind, a kind check before any model loads, one row per item on export."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from condpred import InputError, Store
from condpred.experiments.runner import EXPERIMENTS, resume
from condpred.forecasting import forecast
from condpred.model.hf import HFModel
from condpred.planning import plan
from condpred.report.html import write_report
from tests.test_cli import run_cli
from tests.test_forecast import InterruptAfter, question, write_questions
from tests.test_plan import PLAN_SET, write

# Runs `condpred ARGS` and SIGKILLs the process at the start of its Nth insert into the store.
KILL_AT_NTH_INSERT = """
import os, signal, sys
from condpred.store.db import Store
from condpred.cli import main
limit, original, count = int(sys.argv[1]), Store._insert, [0]
def insert(self, *args):
    count[0] += 1
    if count[0] == limit:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, *args)
Store._insert = insert
sys.argv = ["condpred", *sys.argv[2:]]
main()
"""


@pytest.fixture(scope="module")
def model(tiny_model_dir) -> HFModel:
    return HFModel.from_pretrained(tiny_model_dir, device="cpu")


def _table(db: Path, sql: str) -> list[tuple]:
    connection = sqlite3.connect(db)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def test_a_plan_killed_at_every_write_of_an_item_resumes_to_the_same_rows(tiny_model_dir, tmp_path):
    """The first plan's writes are its conditional, one sample, three check results and its row:
    a SIGKILL before any of them leaves no part of the plan, and resume completes the run."""
    plans = write(tmp_path / "p.yaml", PLAN_SET)
    args = ["plan", str(plans), "--model", str(tiny_model_dir), "--samples", "1"]
    args += ["--max-tokens", "3", "--json"]
    whole_db = tmp_path / "whole.db"
    env = {**os.environ, "CONDPRED_PROGRESS": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "condpred", *args, "--db", str(whole_db)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    expected = json.loads(done.stdout)["plans"]
    writes_per_plan = 1 + 1 + 3 + 1
    for nth in range(1, writes_per_plan + 1):
        db = tmp_path / f"killed-{nth}.db"
        killed = subprocess.run(
            [sys.executable, "-c", KILL_AT_NTH_INSERT, str(nth), *args, "--db", str(db)],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert killed.returncode == -9, killed.stderr[-2000:]
        assert _table(db, "SELECT status FROM runs") == [("running",)]
        for table in ("conditionals", "samples", "check_results", "items"):  # nothing in part
            assert _table(db, f"SELECT COUNT(*) FROM {table}") == [(0,)], (nth, table)
        run_id = _table(db, "SELECT id FROM runs")[0][0]
        resumed = subprocess.run(
            [sys.executable, "-m", "condpred", "resume", run_id, "--db", str(db)],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        with Store(db) as store:
            assert store.get_run(run_id).status == "done"
            rows = store.items(run_id, "plans")
            assert len(store.samples(run_id)) == 2 and len(store.check_results(run_id)) == 6
        for got, want in zip(rows, expected, strict=True):
            for name, dist in want["distributions"].items():
                assert got["distributions"][name]["probs"] == pytest.approx(dist["probs"])
        assert [r["samples"] for r in rows] == [r["samples"] for r in expected]


def test_resume_finishes_a_run_of_any_kind_and_refuses_what_it_cannot(model, tmp_path):
    path = write_questions(tmp_path / "q.jsonl", [question(i) for i in range(4)])
    with Store(tmp_path / "runs.db") as store:
        whole = forecast(path, model)
        with pytest.raises(KeyboardInterrupt):
            forecast(path, InterruptAfter(model, calls=2), store=store)
        broken = store.list_runs(limit=1)[0]
        loaded = []
        resumed = resume(broken.id, store, lambda spec: loaded.append(spec) or model)
        assert loaded == [model.spec] and store.get_run(broken.id).status == "done"
        assert [r["prob"] for r in resumed.rows] == pytest.approx([r["prob"] for r in whole.rows])
        score_run = store.create_run("score", model.spec, {}, None)
        with pytest.raises(InputError, match="'score' run, which cannot be resumed"):
            resume(score_run, store, lambda spec: model)
    assert set(EXPERIMENTS) >= {"predict", "forecast", "plan", "agentic", "zero-one"}


def test_a_kinds_resume_refuses_another_kinds_run_before_loading_a_model(model, tmp_path, capsys):
    db = tmp_path / "runs.db"
    with Store(db) as store:
        run_id = plan(write(tmp_path / "p.yaml", PLAN_SET), model, samples=0, store=store).run_id
    for command in (["predict"], ["forecast"], ["evals", "agentic"], ["evals", "zero-one"]):
        code, _, err = run_cli(capsys, *command, "--resume", run_id, "--db", str(db))
        assert code == 2 and "is a 'plan' run" in err and "Traceback" not in err, command
        assert f"condpred resume {run_id}" in err


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_every_experiment_kind_exports_one_row_per_item(model, tiny_model_dir, tmp_path, fmt):
    """One row per item, its columns the kind's row model's fields, for all four kinds."""
    from condpred.evals.agentic import AgenticRow, run_agentic
    from condpred.evals.zero_one import ZeroOneRow, run_zero_one
    from condpred.forecasting.run import ForecastRow
    from condpred.planning.run import PlanRow
    from tests.test_agentic import data_file
    from tests.test_zero_one import TEMPLATE, write_templates

    def load(spec):
        return HFModel.from_pretrained(tiny_model_dir, spec=spec, device="cpu")

    path = write_questions(tmp_path / "q.jsonl", [question(i) for i in range(3)])
    with Store(tmp_path / "runs.db") as store:
        runs = {
            "forecast": (forecast(path, model, store=store).run_id, ForecastRow, 3),
            "plan": (
                plan(
                    write(tmp_path / "p.yaml", PLAN_SET),
                    model,
                    samples=1,
                    max_tokens=3,
                    store=store,
                ).run_id,
                PlanRow,
                2,
            ),
            "agentic": (
                run_agentic(data_file(tmp_path), ["m1"], ["raw"], store=store, load=load).run_id,
                AgenticRow,
                5,
            ),
            "zero-one": (
                run_zero_one(
                    ["m1"], templates=write_templates(tmp_path, TEMPLATE), store=store, load=load
                ).run_id,
                ZeroOneRow,
                8,
            ),
        }
        for kind, (run_id, row_model, n_items) in runs.items():
            target = tmp_path / f"{kind}.{fmt}"
            n = store.export(run_id, target)
            readers = {"jsonl": lambda p: pd.read_json(p, lines=True), "csv": pd.read_csv}
            frame = readers.get(fmt, pd.read_parquet)(target)
            assert n == len(frame) == n_items, kind
            assert set(frame["run_kind"]) == {kind} and list(frame["index"]) == list(range(n))
            assert store.to_frame(run_id).shape == frame.shape
            assert set(row_model.model_fields) <= set(frame.columns)


def test_jobs_sent_in_batches_give_the_rows_of_one_at_a_time(tiny_model_dir, tmp_path):
    """A backend with `concurrency` gets the jobs as batches of mixed contexts: same rows, same
    order, each row committed."""
    from condpred.evals.agentic import run_agentic
    from tests.test_agentic import data_file

    def load(concurrency):
        def loader(spec):
            model = HFModel.from_pretrained(tiny_model_dir, spec=spec, device="cpu")
            if concurrency:
                model.concurrency = concurrency
            return model

        return loader

    data, args = data_file(tmp_path), (["m1"], ["raw", "ai"])
    one_at_a_time = run_agentic(data, *args, load=load(None))
    with Store(tmp_path / "runs.db") as store:
        batched = run_agentic(data, *args, store=store, load=load(3))
        assert len(store.items(batched.run_id, "agentic")) == len(one_at_a_time.rows) == 10
    for a, b in zip(one_at_a_time.rows, batched.rows, strict=True):
        assert (a["index"], a["options"]) == (b["index"], b["options"])
        assert a["probs"] == pytest.approx(b["probs"], abs=1e-6)


def test_a_new_kind_in_one_file_runs_resumes_and_exports(model, tmp_path, capsys, monkeypatch):
    """examples/extending/date_sweep.py, the README's example kind: stored, interrupted,
    finished by `condpred resume`, exported one row per item — with nothing added to condpred."""
    folder = Path(__file__).parents[1] / "examples" / "extending"
    monkeypatch.syspath_prepend(str(folder))
    from date_sweep import date_sweep

    from condpred import Conditional

    page = Conditional(camera="forecast-question", title="Will the treaty hold?", prefix="Answer:")
    dates = ["2026-01-01", "2028-01-01", "2030-01-01"]
    db = tmp_path / "runs.db"
    with Store(db) as store:
        whole = date_sweep(page, [" Yes", " No"], dates, model)
        with pytest.raises(KeyboardInterrupt):
            date_sweep(page, [" Yes", " No"], dates, InterruptAfter(model, calls=1), store=store)
        run = store.list_runs(limit=1)[0]
        assert run.kind == "date-sweep" and len(store.items(run.id, "date-sweep")) == 1
    # A fresh process has not imported the kind (no entry point names it): a clear refusal.
    fresh = subprocess.run(
        [sys.executable, "-m", "condpred", "resume", run.id, "--db", str(db)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert fresh.returncode == 2 and "'date-sweep' run, which cannot be resumed" in fresh.stderr
    code, out, err = run_cli(capsys, "resume", run.id, "--db", str(db))
    assert code == 0 and "done" in out, err
    code, out, _ = run_cli(capsys, "resume", run.id, "--db", str(db))
    assert code == 0 and "already done: nothing to resume" in out
    with Store(db) as store:
        rows = store.items(run.id, "date-sweep")
        assert store.export(run.id, tmp_path / "sweep.csv") == 3
        page_html = write_report(store, run.id, tmp_path / "sweep.html").read_text()
    assert "Items (3)" in page_html and "2030-01-01" in page_html.split("Items (3)")[1]
    code, out, _ = run_cli(capsys, "runs", "show", run.id, "--db", str(db))
    assert code == 0 and "items (3)" in out and "2028-01-01" in out
    for got, want in zip(rows, whole, strict=True):
        assert got["probs"] == pytest.approx(want["probs"])


def test_a_plan_half_written_by_an_older_condpred_resumes(model, tmp_path):
    """Before items committed whole, a plan's conditional and samples could be stored without
    its row; resuming such a run recomputes the plan in place of those records."""
    with Store(tmp_path / "runs.db") as store:
        plans = write(tmp_path / "p.yaml", PLAN_SET)
        done = plan(plans, model, samples=1, max_tokens=3, store=store)
        store._q("DELETE FROM items WHERE run_id = ? AND item_index = 1", (done.run_id,))
        store._q("UPDATE runs SET status = 'interrupted' WHERE id = ?", (done.run_id,))
        resumed = resume(done.run_id, store, lambda spec: model)
        assert store.get_run(done.run_id).status == "done" and len(resumed.rows) == 2
        assert len(store.samples(done.run_id)) == 2 and len(store.check_results(done.run_id)) == 6
    assert resumed.rows[1]["samples"] == done.rows[1]["samples"]


class CountingBatches(HFModel):
    """The tiny model with a server's `concurrency`, recording each batch of requests."""

    concurrency = 4

    def score_requests(self, requests):
        self.batches = [*getattr(self, "batches", []), len({c for c, _ in requests})]
        return super().score_requests(requests)


@pytest.mark.parametrize("reasoning", [False, True])
def test_a_forecast_sends_its_questions_in_batches_with_the_rows_of_one_at_a_time(
    tiny_model_dir, model, tmp_path, reasoning
):
    questions = write_questions(tmp_path / "q.jsonl", [question(i) for i in range(6)])
    one_at_a_time = forecast(questions, model, reasoning=reasoning)
    batching = CountingBatches.from_pretrained(tiny_model_dir, device="cpu")
    with Store(tmp_path / "runs.db") as store:
        batched = forecast(questions, batching, reasoning=reasoning, store=store)
        assert len(store.items(batched.run_id, "questions")) == 6
    # Batches of 4 + 2 questions. Without reasoning the bare camera's baseline is scored once
    # first; with it, each page's camera alone keeps the page's own comment: a context more each.
    pages = [4, 2] if not reasoning else [8, 4]
    assert batching.batches[-2:] == pages and len(batching.batches) == 2 + (not reasoning)
    for a, b in zip(one_at_a_time.rows, batched.rows, strict=True):
        assert (a.index, a.reasoning) == (b.index, b.reasoning)
        assert a.prob == pytest.approx(b.prob, abs=1e-6)
        flat = [[lp for row in r.distribution["logprobs"] for lp in row] for r in (a, b)]
        assert flat[0] == pytest.approx(flat[1], abs=1e-5)


# Runs `condpred ARGS` and SIGKILLs the process as it starts storing check results.
KILL_WHILE_CHECKING = """
import os, signal, sys
from condpred.store.db import Store
from condpred.cli import main
def killed(self, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
Store.replace_check_results = killed
sys.argv = ["condpred", *sys.argv[1:]]
main()
"""


def test_a_predict_run_killed_while_checking_is_interrupted_and_resumes_its_checks(
    tiny_model_dir, tmp_path, capsys
):
    """Sampling is done, the checks are not: the run is not 'done' (its process is gone, so it
    reads 'interrupted'), and `condpred resume` runs the checks it was started with."""
    from tests.test_cli import EXAMPLE

    db = tmp_path / "runs.db"
    args = ["predict", str(EXAMPLE), "-n", "2", "--max-tokens", "4", "--checks", "surprisal"]
    args += ["--model", str(tiny_model_dir), "--db", str(db)]
    killed = subprocess.run(
        [sys.executable, "-c", KILL_WHILE_CHECKING, *args],
        capture_output=True, text=True,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-2000:]
    with Store(db) as store:
        run = store.get_run("latest")
        assert run.status == "interrupted" and run.n_samples == 2
        assert store.check_results(run.id) == []
    code, out, err = run_cli(capsys, "resume", run.id, "--db", str(db))
    assert code == 0, err
    with Store(db) as store:
        assert store.get_run(run.id).status == "done"
        found = {r.check.split(".")[0] for r in store.check_results(run.id)}
        assert found == {"surprisal"}
    code, out, _ = run_cli(capsys, "predict", "--resume", run.id, "--db", str(db))
    assert code == 0 and "already done: nothing to resume" in out


def test_a_check_that_fails_fails_its_run(model, tmp_path):
    from condpred import Conditional, predict
    from condpred.checks import CHECKS

    @CHECKS.register("refuses_everything")
    class Refuses:
        name = "refuses_everything"

        def run(self, given):
            raise InputError("planted failure", field="samples")

    page = Conditional(camera="plain", title="A note", prefix="Hello")
    with Store(tmp_path / "runs.db") as store, pytest.raises(InputError, match="planted"):
        predict(page, model, 1, store=store, checks=["refuses_everything"])
    with Store(tmp_path / "runs.db") as store:
        run = store.get_run("latest")
    assert run.status == "failed" and "planted failure" in run.error
