"""A researcher's first hour: every command says what it did, where it is stored and what next."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from condpred.progress import progress_bar
from condpred.store import Store, package_version
from tests.test_cli import run_cli

EXAMPLE = Path(__file__).parents[1] / "examples" / "alignment-paper-2031.yaml"
RUN_ID = r"\d{8}-\d{6}-[0-9a-f]{4}"


def test_version_and_help_without_bool_placeholders(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert (code, out.strip()) == (0, f"condpred {package_version()}")
    for command in ([], ["predict"], ["check"], ["runs", "show"]):
        code, out, _ = run_cli(capsys, *command, "--help")
        assert code == 0 and "--help" in out
        assert "<bool>" not in out  # typer 0.29 writes it beside flags, which take no value


def test_checks_list_says_what_each_check_estimates(capsys):
    code, out, _ = run_cli(capsys, "checks", "list", "--json")
    assert code == 0
    described = {c["name"]: c for c in json.loads(out)}
    assert set(described) >= {"ai_author", "consistency", "performative", "surprisal"}
    from condpred.checks.ai_author import load_combiners

    stated = described["ai_author"]["arguments"]["warn_above"]
    for fitted in load_combiners()[0]:  # thresholds measured, not written in the signature
        assert stated[f"{fitted.source}, {fitted.name}"] == round(fitted.warn_above, 3)
    assert len(stated) == 4  # two sources, with and without Fast-DetectGPT
    assert described["surprisal"]["unit"] == "bits per token"
    assert all(
        c["summary"] and c["unit"] and "name" not in c["arguments"] for c in described.values()
    )
    code, out, _ = run_cli(capsys, "checks", "list")
    assert "warn_tv=0.2" in out and "total variation" in out


def test_a_run_announces_its_id_and_store_and_closes_with_the_next_command(
    capsys, tmp_path, monkeypatch, tiny_model_dir
):
    db = tmp_path / "runs.db"
    monkeypatch.setenv("CONDPRED_DB", str(db))
    args = ["predict", str(EXAMPLE), "-n", "2", "--max-tokens", "4", "-m", str(tiny_model_dir)]
    code, out, err = run_cli(capsys, *args, "--checks", "none")
    assert code == 0, err
    started = re.search(rf"run ({RUN_ID}) \(predict\) started in (\S+);", err)
    assert started and Path(started[2]) == db
    run_id = started[1]
    assert f"stored as run {run_id} in {db}" in out
    assert f"next: condpred report {run_id}" in out

    code, out, err = run_cli(capsys, "check", str(EXAMPLE), "--samples", run_id, "--checks", "none")
    assert code == 0, err
    assert f"checked the 2 stored samples of run {run_id} (nothing was sampled)" in out

    code, out, err = run_cli(capsys, "resume", run_id)
    assert code == 0 and "already done: nothing to resume" in out and "next:" in out
    with Store(db) as store:
        assert len(store.list_runs(limit=None)) == 1  # neither check nor resume made a run


def test_without_a_terminal_progress_is_plain_lines(capsys, monkeypatch):
    monkeypatch.setenv("CONDPRED_PROGRESS", "1")
    monkeypatch.setenv("CONDPRED_PROGRESS_EVERY", "0")
    with progress_bar(3, "scoring") as advance:
        with progress_bar(2, "inner") as inner:
            inner(2)
        advance(3)
    lines = capsys.readouterr().err.splitlines()
    assert "inner: 2/2 (100%)" in lines[0]  # periodic lines from nested bars too
    assert re.fullmatch(r"scoring: 3/3 \(100%\), \d+ s, eta 0 s", lines[-1])  # the closing line
    assert not any(line.startswith("inner") for line in lines[1:])  # only the outer bar closes


def test_check_results_are_in_runs_show_exports_and_frames(capsys, tmp_path, tiny_model_dir):
    """Checks run inside predict; every view of the run shows them beside the samples."""
    db = str(tmp_path / "runs.db")
    args = ["predict", str(EXAMPLE), "-n", "2", "--max-tokens", "4", "-m", str(tiny_model_dir)]
    code, out, err = run_cli(capsys, *args, "--checks", "surprisal", "--db", db, "--json")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    with Store(db) as store:
        stored = store.check_results(run_id)
        frame = store.to_frame(run_id)
    assert stored and {r.check for r in stored} >= {"surprisal.rendered", "surprisal.pmi"}
    for _, row in frame.iterrows():  # each sample: its own results and its conditional's
        listed = json.loads(row["checks"])
        own = [r for r in stored if r.sample_index in (None, row["index"])]
        assert [(c["check"], c["value"], c["verdict"]) for c in listed] == [
            (r.check, r.value, r.verdict) for r in own
        ]
        order = ["pass", "warn", "fail"]
        assert row["worst_verdict"] == max((r.verdict for r in own), key=order.index)
    code, out, _ = run_cli(capsys, "runs", "show", run_id, "--db", db)
    assert code == 0 and "surprisal.pmi" in out and "sample 1" in out
    target = tmp_path / "export.parquet"
    code, _, err = run_cli(capsys, "runs", "export", run_id, "--out", str(target), "--db", db)
    assert code == 0, err
    import pandas as pd

    assert list(pd.read_parquet(target)["worst_verdict"]) == list(frame["worst_verdict"])


@pytest.mark.parametrize(
    ("args", "guess"),
    [
        (["predict", str(EXAMPLE), "--checks", "ai_autor"], "Did you mean 'ai_author'?"),
        (["predict", str(EXAMPLE), "-m", "gemma-3-27m"], "Did you mean 'gemma-3-270m'?"),
        (["predict", str(EXAMPLE), "-m", "gguff:x.gguf"], "Did you mean 'gguf:'?"),
        (["render", "CAMERA"], "Did you mean 'news-article'?"),
        (["runs", "list", "--kind", "predct"], "Did you mean 'predict'?"),
    ],
)
def test_every_name_a_user_types_gets_a_did_you_mean(capsys, tmp_path, args, guess):
    if args[-1] == "CAMERA":
        args[-1] = str(tmp_path / "c.yaml")
        Path(args[-1]).write_text("camera: newsarticle\ntitle: A treaty\n")
    db = tmp_path / "runs.db"
    with Store(db) as store:  # a store with one predict run, for --kind
        store.finish_run(store.create_run("predict", "default", {}, 0))
    code, _, err = (
        run_cli(capsys, *args, "--db", str(db)) if args[0] != "render" else run_cli(capsys, *args)
    )
    assert code == 2 and guess in " ".join(err.split()), err
