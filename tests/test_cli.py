"""The command line end to end on the tiny model: output, store, bad input, SIGKILL + resume."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from condpred import load_conditional, render
from condpred.cli import main
from condpred.store import Store

EXAMPLE = Path(__file__).parents[1] / "examples" / "alignment-paper-2031.yaml"


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run `condpred ARGS` in-process; returns (exit code, stdout, stderr)."""
    sys.argv = ["condpred", *args]
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def db(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "runs.db"
    monkeypatch.setenv("CONDPRED_DB", str(path))
    return path


def test_render_prints_exactly_what_the_model_sees(capsys):
    code, out, _ = run_cli(capsys, "render", str(EXAMPLE))
    assert code == 0
    assert out == render(load_conditional(EXAMPLE)) + "\n"


def test_predict_stores_samples_and_runs_commands_read_them(capsys, db, tiny_model_dir, tmp_path):
    args = ["predict", str(EXAMPLE), "-n", "3", "--model", str(tiny_model_dir)]
    code, out, err = run_cli(capsys, *args, "--max-tokens", "12", "--seed", "5", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert [s["index"] for s in result["samples"]] == [0, 1, 2]
    run_id = result["run_id"]

    code, out, _ = run_cli(capsys, "runs", "list")
    assert code == 0 and run_id[:12] in out and "done" in out
    code, out, _ = run_cli(capsys, "runs", "show", run_id[:15])
    assert code == 0 and "Paul Christiano" in out
    for fmt in ("jsonl", "parquet"):
        target = tmp_path / f"export.{fmt}"
        code, _, err = run_cli(
            capsys, "runs", "export", run_id, "--format", fmt, "--out", str(target)
        )
        assert code == 0, err
        frame = pd.read_json(target, lines=True) if fmt == "jsonl" else pd.read_parquet(target)
        assert list(frame["text"]) == [s["text"] for s in result["samples"]]

    code, out, _ = run_cli(capsys, *args, "--max-tokens", "12", "--seed", "5", "--json")
    assert [s["text"] for s in json.loads(out)["samples"]] == [s["text"] for s in result["samples"]]
    code, out, _ = run_cli(capsys, *args, "--max-tokens", "12", "--seed", "5")
    assert "sample 2" in out and "stored as run" in out


def test_score_from_options_and_file(capsys, db, tiny_model_dir, tmp_path):
    lines = tmp_path / "continuations.txt"
    lines.write_text(" we show\n\n the answer\n")
    code, out, err = run_cli(
        capsys,
        "score",
        str(EXAMPLE),
        "-c",
        " Yes",
        "--continuations",
        str(lines),
        "--model",
        str(tiny_model_dir),
        "--json",
    )
    assert code == 0, err
    scores = json.loads(out)["scores"]
    assert [s["continuation"] for s in scores] == [" Yes", " we show", " the answer"]
    assert all(s["logprob"] == pytest.approx(sum(s["token_logprobs"])) for s in scores)


def test_cameras_and_models_are_listed(capsys):
    code, out, _ = run_cli(capsys, "cameras")
    assert code == 0 and "arxiv-abstract" in out and "forecast-question" in out
    code, out, _ = run_cli(capsys, "models")
    assert code == 0 and "gemma-3-270m" in out and "smollm2-135m-instruct" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["render", "no-such-file.yaml"], "no-such-file.yaml"),
        (["predict", "--model", "no/such-model-dir", str(EXAMPLE)], "no/such-model-dir"),
        (["predict", "--model", "openai:http://127.0.0.1:9", str(EXAMPLE)], "openai:URL#MODEL"),
        (["runs", "show", "nope"], "nope"),
        (["score", str(EXAMPLE)], "--continuation"),
        (["predict"], "FILE or --resume"),
    ],
)
def test_bad_input_is_one_clear_message_and_exit_2(capsys, db, args, expected):
    Store(db).close()  # an existing, empty store (a missing one is its own error)
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    assert expected in " ".join(err.split())
    assert "Traceback" not in out + err


def _dump(db: Path) -> list[tuple]:
    connection = sqlite3.connect(db)
    tables = ["runs", "conditionals", "samples", "scores"]
    rows = [row for table in tables for row in connection.execute(f"SELECT * FROM {table}")]
    connection.close()
    return rows


def test_bad_input_leaves_the_store_as_it_was(capsys, db, tiny_model_dir, tmp_path):
    model = ["--model", str(tiny_model_dir)]
    code, _, _ = run_cli(capsys, "predict", str(EXAMPLE), "-n", "2", "--max-tokens", "4", *model)
    assert code == 0
    before = _dump(db)
    bad = tmp_path / "bad.yaml"
    bad.write_text("camera: no-such-camera\ntitle: x\n")
    code, _, err = run_cli(capsys, "predict", str(bad), *model)
    assert code == 2 and "arxiv-abstract" in err  # the allowed cameras are listed
    code, _, err = run_cli(capsys, "predict", "--resume", "no-such-run", *model)
    assert code == 2 and "no-such-run" in err
    assert _dump(db) == before


def test_sigkill_then_resume_gives_the_uninterrupted_samples(db, tiny_model_dir, tmp_path):
    """A real SIGKILL mid-run loses nothing stored; --resume completes the run exactly."""
    n, tokens = 96, 24
    args = [
        sys.executable,
        "-m",
        "condpred",
        "predict",
        str(EXAMPLE),
        "-n",
        str(n),
        "--max-tokens",
        str(tokens),
        "--seed",
        "3",
        "--model",
        str(tiny_model_dir),
    ]
    env = {**os.environ, "CONDPRED_DB": str(db)}
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stored = _wait_for_samples(db, at_least=8, process=process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 8 <= stored < n, "the run must be killed part-way"

    connection = sqlite3.connect(db)
    run_id, status = connection.execute("SELECT id, status FROM runs").fetchone()
    assert status == "running"  # killed: nobody closed it
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    kept = connection.execute("SELECT sample_index, text FROM samples").fetchall()
    connection.close()

    resumed = subprocess.run(
        [sys.executable, "-m", "condpred", "predict", "--resume", run_id[:16], "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    after = json.loads(resumed.stdout)["samples"]
    assert [s["index"] for s in after] == list(range(n))
    assert {i: t for i, t in kept}.items() <= {s["index"]: s["text"] for s in after}.items()

    fresh_db = tmp_path / "fresh.db"
    uninterrupted = subprocess.run(
        [*args, "--json"],
        env={**env, "CONDPRED_DB": str(fresh_db)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert [s["text"] for s in after] == [
        s["text"] for s in json.loads(uninterrupted.stdout)["samples"]
    ]
    status = sqlite3.connect(db).execute("SELECT status FROM runs").fetchone()[0]
    assert status == "done"


def _wait_for_samples(
    db: Path, at_least: int, process: subprocess.Popen, timeout: float = 120
) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"predict ended before it was killed: {process.stderr.read()}")
        if db.exists():
            try:
                count = sqlite3.connect(db).execute("SELECT COUNT(*) FROM samples").fetchone()[0]
            except sqlite3.OperationalError:  # tables not created yet
                count = 0
            if count >= at_least:
                return count
        time.sleep(0.01)
    raise AssertionError("no samples were stored in time")


def test_predict_runs_checks_stores_them_and_gates(capsys, db, tiny_model_dir):
    args = ["predict", str(EXAMPLE), "-n", "3", "--max-tokens", "8", "--model", str(tiny_model_dir)]
    code, out, err = run_cli(capsys, *args, "--checks", "ai_author,surprisal", "--gate", "--json")
    assert code == 0, err
    result = json.loads(out)
    names = {c["check"].split(".")[0] for c in result["checks"]}
    assert names == {"ai_author", "surprisal"}
    per_sample = {c["sample_index"] for c in result["checks"] if c["check"] == "ai_author"}
    assert per_sample == {0, 1, 2}
    kept = {s["index"] for s in result["samples"]}
    assert kept.isdisjoint(int(i) for i in result["dropped"])
    assert kept | {int(i) for i in result["dropped"]} == {0, 1, 2}
    connection = sqlite3.connect(db)
    stored = connection.execute("SELECT COUNT(*) FROM check_results").fetchone()[0]
    assert stored == len(result["checks"])

    code, out, err = run_cli(
        capsys, "check", str(EXAMPLE), "--samples", result["run_id"], "--checks", "ai_author"
    )
    assert code == 0, err
    assert "sample 2" in out and "ai_author" in out
    # ai_author's three rows are replaced, not stored a second time
    assert connection.execute("SELECT COUNT(*) FROM check_results").fetchone()[0] == stored


def test_an_unknown_check_fails_before_any_sampling(capsys, db, tiny_model_dir):
    args = ["predict", str(EXAMPLE), "--model", str(tiny_model_dir), "--checks", "ai_autor"]
    code, _, err = run_cli(capsys, *args)
    assert code == 2 and "ai_author" in err
    assert not db.exists() or _dump(db) == []
    code, out, _ = run_cli(capsys, "checks", "list")
    assert code == 0 and "performative" in out and "base" not in out.split()


def test_checks_fit_then_validate(capsys, tiny_model_dir, tmp_path):
    pairs = {
        "original": [f"A human wrote note {i} about the weather." for i in range(4)],
        "sampled": [f"An AI wrote note {i}\nabout the weather today." for i in range(4)],
    }
    data = tmp_path / "pairs.json"
    data.write_text(json.dumps(pairs))
    small = ["--limit", "2", "--openings", "1", "--samples", "2", "--model", str(tiny_model_dir)]
    combiner = tmp_path / "combiner.json"
    code, out, err = run_cli(
        capsys, "checks", "fit", "ai_author", "--data", str(data), "--out", str(combiner), *small
    )
    assert code == 0, err
    assert "all signals:" in out and "warn above" in out
    target = tmp_path / "validation.json"
    args = ["checks", "validate", "ai_author", "--data", str(data), "--combiner", str(combiner)]
    code, out, err = run_cli(capsys, *args, "--out", str(target), *small)
    assert code == 0, err
    record = json.loads(target.read_text())
    (row,) = record["human_vs_machine"]  # one file: no pooled row
    assert row["n"] == 2 and row["ai_author (the check)"]["ci"] is None  # n < 10
    assert "pairs.json" in out and "n/a (n < 10)" in out and "Planted authors" in out
    bad = tmp_path / "bad.json"
    bad.write_text('{"original": ["x"]}')
    code, _, err = run_cli(
        capsys,
        "checks",
        "validate",
        "ai_author",
        "--data",
        str(bad),
        "--model",
        str(tiny_model_dir),
    )
    assert code == 2 and "bad.json" in err
