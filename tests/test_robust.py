"""Issue 17, "no traceback, ever": each bad input or fault the probe found, reproduced through the
real CLI (real files, real SQLite, a real HTTP server, the tiny model), must be one clear message
(file or option, field, what, fix), exit code 2, and leave stored runs as they were."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from condpred.cli import main
from condpred.errors import InputError
from condpred.planning import load_plan_set
from condpred.store import Store
from tests.misbehaving_server import MisbehavingServer

EXAMPLES = Path(__file__).parents[1] / "examples"
EXAMPLE = EXAMPLES / "alignment-paper-2031.yaml"
PLANS = EXAMPLES / "plans" / "compute-governance.yaml"
QUESTION = {"id": "q1", "question": "Will it rain?", "as_of": "2024-01-01", "outcome": 1}


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """`condpred ARGS` in-process: (exit code, stdout, stderr with line breaks undone)."""
    sys.argv = ["condpred", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


def refused(capsys, *args: str) -> str:
    """The message of a command that must be refused cleanly."""
    code, out, err = run_cli(capsys, *args)
    assert "Traceback" not in out + err and "internal error" not in err, err
    assert code == 2, (code, out, err)
    return err


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    """Messages on one line: rich would break long paths inside words."""
    from condpred.cli.app import err

    monkeypatch.setattr(err, "width", 100_000)


@pytest.fixture
def db(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "runs.db"
    monkeypatch.setenv("CONDPRED_DB", str(path))
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- 1. model specs that cannot name a model -------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (f"gguf:{EXAMPLE}", "not a GGUF file"),
        ("gguf:/no/such/file.gguf", "no such file"),
        ("openai:htp:/bad url#x", "not an http:// or https:// URL"),
        ("openai:ftp://host/v1#x", "not an http:// or https:// URL"),
        ("openai:http://host:99999#x", "Port out of range"),
        ("openai:http://#x", "names no host"),
        ("openai:http://127.0.0.1:8000", "does not name a server and a model"),
        (str(EXAMPLE), "is a file, not a model folder"),
        ("./no-such-folder", "no model folder"),
        ("", "empty model spec"),
        ("opnai:http://127.0.0.1:8000#m", "Did you mean 'openai:'?"),
    ],
)
def test_model_specs_that_cannot_name_a_model_are_refused_before_loading(
    capsys, db, spec, expected
):
    err = refused(capsys, "predict", EXAMPLE, "--model", spec)
    assert expected in err
    assert not db.exists()  # refused before the store opened: no run left behind


def test_a_folder_without_a_model(capsys, db, tmp_path):
    err = refused(capsys, "predict", EXAMPLE, "--model", tmp_path)
    assert "holds no model (no config.json)" in err and str(tmp_path) in err


def test_a_folder_whose_model_cannot_load(capsys, db, tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "no-such-architecture"}')
    err = refused(capsys, "score", EXAMPLE, "-c", " x", "--model", tmp_path)
    assert "cannot load model" in err


# --- 2. seeds SQLite cannot store ------------------------------------------------------------


@pytest.mark.parametrize("seed", [str(2**63), str(-(2**63) - 1), str(10**30)])
def test_seed_outside_64_bits(capsys, db, tiny_model_dir, seed):
    err = refused(capsys, "predict", EXAMPLE, "--model", tiny_model_dir, "--seed", seed)
    assert "--seed" in err
    with Store(db) as store, pytest.raises(InputError, match="signed 64-bit"):
        store.create_run("predict", "x", {}, int(seed))
    assert Store(db).list_runs() == []


# --- 3, 4. output paths, checked before any work ---------------------------------------------


@pytest.fixture
def stored_run(db, capsys, tiny_model_dir) -> str:
    args = ["predict", EXAMPLE, "-n", "1", "--max-tokens", "2", "--checks", "none", "--json"]
    code, out, err = run_cli(capsys, *args, "--model", tiny_model_dir)
    assert code == 0, err
    return json.loads(out)["run_id"]


@pytest.mark.parametrize("command", [["runs", "export"], ["report"]])
def test_out_to_a_missing_folder_or_a_folder(capsys, db, stored_run, tmp_path, command):
    before = digest(db)
    err = refused(capsys, *command, stored_run, "--out", tmp_path / "missing" / "x.out")
    assert "does not exist" in err and "mkdir -p" in err
    assert not (tmp_path / "missing").exists()
    err = refused(capsys, *command, stored_run, "--out", tmp_path)
    assert "is a folder" in err
    assert digest(db) == before


def test_out_onto_the_run_store_is_refused(capsys, db, stored_run):
    """Found by the fuzz harness: `runs export --out runs.db` wrote the export over the store."""
    before = digest(db)
    for target in (db, Path(f"{db}-wal")):
        for command in (["runs", "export", stored_run], ["report", stored_run]):
            if target.exists():
                err = refused(capsys, *command, "--out", target)
                assert "does not write over one" in err
    assert digest(db) == before and Store(db).get_run(stored_run).status == "done"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("command", [["runs", "export"], ["report"]])
def test_a_write_that_fails_midway_is_named(capsys, db, stored_run, command):
    """Found by the fuzz harness (--out /proc/version): an I/O error while writing the output."""
    err = refused(capsys, *command, stored_run, "--out", "/dev/full")
    assert "--out /dev/full: cannot be written (No space left on device)" in err


def test_forecast_out_is_checked_before_the_run(capsys, db, tmp_path, tiny_model_dir):
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps(QUESTION) + "\n")
    out = tmp_path / "nowhere" / "forecast.json"
    err = refused(capsys, "forecast", questions, "--model", tiny_model_dir, "--out", out)
    assert str(out) in err
    assert not db.exists()  # nothing ran


def test_zero_one_out_is_checked_before_the_run(capsys, db, tmp_path):
    err = refused(capsys, "evals", "zero-one", "--models", "default", "--out", tmp_path)
    assert "is a folder" in err
    assert not db.exists()


# --- 5. a report of a run with no rows yet ---------------------------------------------------


def test_report_of_a_plan_run_with_no_rows(capsys, db, tmp_path):
    plan_set = load_plan_set(PLANS)
    with Store(db) as store:  # a plan run killed before its first plan was stored
        params = {"plans_file": str(PLANS), "plan_set": plan_set.model_dump(mode="json"),
                  "samples": 0, "max_tokens": 4}  # fmt: skip
        run_id = store.create_run("plan", "default", params, 0)
    target = tmp_path / "report.html"
    code, _, err = run_cli(capsys, "report", run_id, "--out", target)
    assert code == 0, err
    assert "No results yet" in target.read_text() and f"condpred resume {run_id}" in (
        target.read_text()
    )


# --- 6, 15. servers that answer wrongly or not at all ----------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("html", "not JSON"),
        ("badjson", "not JSON"),
        ("shape", "not an OpenAI completions reply"),
        ("nonnumeric", "not an OpenAI completions reply"),
        ("empty", "not an OpenAI completions reply"),
        ("list", "not an OpenAI completions reply"),
        ("nulls", "null log-prob"),
        ("404", "answered 404"),
    ],
)
def test_a_server_answering_wrongly_is_a_clear_error(capsys, db, mode, expected):
    with MisbehavingServer(mode=mode) as server:
        for command in (
            ["score", EXAMPLE, "-c", " yes"],
            ["predict", EXAMPLE, "-n", "2", "--checks", "none"],
        ):
            err = refused(capsys, *command, "--model", server.spec())
            assert expected in err and server.url in err
            if mode in ("nulls", "mismatch"):
                break  # a sample's null log-prob is its own message below


def test_a_sample_with_null_or_missing_log_probs(capsys, db):
    with MisbehavingServer(mode="mismatch") as server:
        err = refused(capsys, "predict", EXAMPLE, "-n", "1", "--model", server.spec(),
                      "--checks", "none")  # fmt: skip
        assert "log-prob for a generated token of sample 0" in err


def test_a_well_behaved_server_still_works(capsys, db):
    with MisbehavingServer(mode="ok") as server:
        code, out, err = run_cli(capsys, "score", EXAMPLE, "-c", " yes", "--model", server.spec(),
                                 "--json")  # fmt: skip
        assert code == 0, err
        assert json.loads(out)["scores"][0]["logprob"] == pytest.approx(-4.0)


def test_a_hung_server_is_named_after_timeout_seconds(capsys, db):
    with MisbehavingServer(mode="hang") as server:
        start = time.monotonic()
        err = refused(capsys, "score", EXAMPLE, "-c", " yes", "--model", server.spec(),
                      "--timeout", "1")  # fmt: skip
        assert time.monotonic() - start < 10
    assert f"POST {server.url}/v1/completions" in err
    assert "within 1 s" in err and "--timeout" in err and "log-probs of" in err


def test_timeout_must_be_positive(capsys, db):
    for value in ("0", "-1", "inf", "nan"):
        code, _, err = run_cli(capsys, "score", EXAMPLE, "-c", "x", "--timeout", value)
        assert code == 2 and "--timeout" in err


# --- 8. a conditional longer than the context window -----------------------------------------


def test_a_conditional_longer_than_the_context_window(capsys, db, tmp_path, tiny_model_dir):
    long = tmp_path / "long.yaml"
    long.write_text("title: long\nprefix: " + json.dumps("word " * 3000) + "\n")
    err = refused(capsys, "predict", long, "--model", tiny_model_dir, "-n", "1")
    assert "context window" in err and "(2048 tokens)" in err and "+ 128 new tokens" in err
    assert Store(db).list_runs() == []  # refused before the run was stored
    err = refused(capsys, "predict", EXAMPLE, "--model", tiny_model_dir, "--max-tokens", "5000")
    assert "lower --max-tokens" in err


# --- 10, 16. plan sets -----------------------------------------------------------------------


def test_plan_with_an_unknown_camera_fails_before_the_model(capsys, db, tmp_path):
    bad = tmp_path / "plans.yaml"
    bad.write_text(PLANS.read_text().replace("camera: transcript", "camera: no-such-camera"))
    start = time.monotonic()
    err = refused(capsys, "plan", bad, "--model", "default")  # loading it takes seconds
    assert time.monotonic() - start < 3
    assert str(bad) in err and "field 'situation.camera'" in err and "transcript" in err
    assert not db.exists()


def test_plan_errors_list_every_problem_once(capsys, db, tmp_path):
    bad = tmp_path / "plans.yaml"
    bad.write_text("situation:\n  camera: nosuch\n  titel: x\nplans: []\nquestions: 3\n")
    err = refused(capsys, "plan", bad)
    assert "3 problems" in err
    for field in ("situation.camera", "situation.titel", "questions"):
        assert f"field '{field}'" in err
    assert "{" not in err.split("questions")[0]  # no dumped dict

    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    err = refused(capsys, "plan", empty)
    assert "is empty" in err and "plans" in err and "title or a prefix" not in err


def test_a_field_the_camera_cannot_write_names_the_file_and_field(capsys, tmp_path):
    bad = tmp_path / "question.yaml"
    text = (EXAMPLES / "forecast-question.yaml").read_text()
    bad.write_text(text.replace("resolves: 2029-01-01", "resolves: [1, 2]"))
    err = refused(capsys, "render", bad)
    assert err.startswith(f"error: {bad}, field 'extra.resolves'")


def test_runs_list_of_an_unknown_kind(capsys, db, stored_run):
    err = refused(capsys, "runs", "list", "--kind", "nosuch")
    assert "no runs of kind 'nosuch'" in err and "predict" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_a_read_only_store_is_called_read_only(capsys, db, stored_run, tiny_model_dir):
    db.chmod(0o444)
    try:
        code, out, _ = run_cli(capsys, "runs", "list")
        assert code == 0 and stored_run[:12] in out
        err = refused(capsys, "predict", EXAMPLE, "--model", tiny_model_dir, "-n", "1")
        assert "read-only" in err and "damaged" not in err
    finally:
        db.chmod(0o644)


# --- 11, 17. stores: never modify a foreign file, never create one to read -------------------


def test_another_programs_sqlite_file_is_left_byte_for_byte(capsys, db, tmp_path, tiny_model_dir):
    foreign = tmp_path / "app.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
        conn.execute("INSERT INTO users VALUES ('ada')")
    conn.close()
    notes = tmp_path / "notes.db"
    notes.write_text("my notes\n")
    for path in (foreign, notes):
        before = digest(path)
        for command in (["runs", "list"], ["predict", EXAMPLE, "--model", tiny_model_dir]):
            err = refused(capsys, *command, "--db", path)
            assert "not a condpred run store" in err and "untouched" in err
        assert digest(path) == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["app.sqlite", "notes.db"]


@pytest.mark.parametrize(
    "command",
    [["runs", "list"], ["runs", "show", "x"], ["runs", "export", "x"], ["report", "x"],
     ["resume", "x"], ["predict", "--resume", "x"], ["check", str(EXAMPLE), "--samples", "x"]],
)  # fmt: skip
def test_reading_a_mistyped_store_creates_nothing(capsys, tmp_path, command):
    typo = tmp_path / "typo" / "runs.db"
    err = refused(capsys, *command, "--db", typo)
    assert "no run store here" in err and str(typo) in err
    assert list(tmp_path.iterdir()) == []


# --- smaller points --------------------------------------------------------------------------


def test_check_with_an_unknown_check_fails_before_the_store_and_model(capsys, tmp_path):
    err = refused(capsys, "check", EXAMPLE, "--samples", "x", "--checks", "nosuch",
                  "--db", tmp_path / "runs.db")  # fmt: skip
    assert "unknown check 'nosuch'" in err


def test_a_huge_input_file_is_refused_at_once(capsys, tmp_path):
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"title: x\nprefix: |\n" + b"  " + b"y" * (20 * 2**20) + b"\n")
    start = time.monotonic()
    err = refused(capsys, "render", huge)
    assert time.monotonic() - start < 2
    assert "20.0 MiB" in err and "10 MiB" in err


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [("--temperature", "inf", "--temperature"), ("--temperature", "nan", "--temperature"),
     ("-n", "100000", "at most 10000"), ("--top-p", "0", "--top-p")],
)  # fmt: skip
def test_sampling_options_no_one_means(capsys, db, tiny_model_dir, option, value, expected):
    err = refused(capsys, "predict", EXAMPLE, "--model", tiny_model_dir, option, value)
    assert expected in err
    assert not db.exists()


def test_an_escaped_nul_is_refused_like_a_raw_one(capsys, tmp_path):
    for text in ('title: "a\\0b"\n', 'world: ["ok", "a\\x00b"]\n'):
        path = tmp_path / "nul.yaml"
        path.write_text(text)
        assert "NUL character" in refused(capsys, "render", path)
    path.write_bytes(b"title: a\x00b\n")
    assert "binary file" in refused(capsys, "render", path)


def test_binary_questions_and_continuations_get_a_fix(capsys, db, tmp_path):
    binary = tmp_path / "data.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    err = refused(capsys, "score", EXAMPLE, "--continuations", binary)
    assert "binary file" in err and "one continuation per line" in err
    err = refused(capsys, "forecast", binary)
    assert "binary file" in err and "JSON" in err
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"id": "é"}\n'.encode("latin-1"))
    err = refused(capsys, "forecast", latin)
    assert "not UTF-8" in err and "iconv" in err
