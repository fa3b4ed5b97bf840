"""The run store on real SQLite files: round trips, ids, export, migrations, crashes."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import condpred.store.db as db
from condpred.errors import InputError
from condpred.model.base import Sample, Score
from condpred.store import Store
from condpred.store.export import COLUMNS
from condpred.store.schema import MIGRATIONS

SRC = str(Path(__file__).resolve().parents[1] / "src")
TRICKY = [0.1 + 0.2, -1e-300, -5e-324, -0.0, -math.inf, -123.45678901234567, -(2.0**-1074)]


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "runs.db") as s:
        yield s


def new_run(store: Store, n_conds: int = 1, **kw: object) -> str:
    run = store.create_run(kw.get("kind", "predict"), "tiny", {"temperature": 0.7}, 7)
    for c in range(n_conds):
        store.add_conditional(run, c, f"camera: c{c}\n", f"rendered {c}", source=f"c{c}.yaml")
    return run


# --- round trips ----------------------------------------------------------------------------------


def test_samples_round_trip_exactly(store: Store) -> None:
    run = new_run(store, n_conds=2)
    made = {
        (c, i): Sample(f"é {c}/{i}\n\x00🙂", TRICKY[i:], ["é", "\n", "\x00"][: i + 1], "eos", i)
        for c in (1, 0)
        for i in (2, 0, 1)
    }
    for (c, _), s in made.items():
        store.add_sample(run, c, s)
    got = store.samples(run)
    assert got == [made[c, i] for c in (0, 1) for i in (0, 1, 2)]
    assert [math.copysign(1, x) for x in got[0].token_logprobs] == [
        math.copysign(1, x) for x in TRICKY
    ]  # -0.0 stays -0.0
    assert store.samples(run, cond_index=1) == [made[1, i] for i in range(3)]
    assert store.sample_indices(run, 0) == {0, 1, 2}
    assert store.sample_indices(run, 5) == set()


def test_float_and_text_round_trip_property(tmp_path: Path) -> None:
    floats = st.floats(allow_nan=False)
    with Store(tmp_path / "p.db") as store:
        run = new_run(store)
        counter = iter(range(10**6))

        @settings(max_examples=100, deadline=None)
        @given(st.text(), st.lists(floats), st.lists(st.text()), floats)
        def check(text: str, lps: list[float], toks: list[str], lp: float) -> None:
            i = next(counter)
            sample = Sample(text, lps, toks, "stop", index=i)
            store.add_sample(run, 0, sample)
            assert store.samples(run)[-1] == sample
            score = Score(text, lp, lps, toks, greedy=bool(i % 2))
            store.add_scores(run, 0, [score])
            assert store.scores(run)[-1] == score

        check()


def test_check_results_round_trip(store: Store) -> None:
    from condpred.checks.base import CheckResult

    run = new_run(store, n_conds=2)
    results = [
        CheckResult("ai_author", 0.25, 0.5, "pass", {"probes": [-1.5, -2.0]}, 0, "human"),
        CheckResult("surprisal", 7.5, 6.0, "warn", {}, None, "unlikely"),
    ]
    store.add_check_results(run, 1, results)
    assert store.check_results(run) == results
    assert store.check_results(run, cond_index=0) == []


def test_a_check_run_again_replaces_its_own_rows_only(store: Store) -> None:
    from condpred.checks.base import CheckResult

    run = new_run(store, n_conds=2)

    def result(name: str, value: float) -> CheckResult:
        return CheckResult(name, value, 0.5, "pass", {}, None, "")

    first = [result("surprisal.premises", 1.0), result("surprisal.prefix", 2.0)]
    store.add_check_results(run, 0, [result("ai_author", 0.1), *first])
    store.add_check_results(run, 1, [result("surprisal.premises", 3.0)])
    store.add_check_results(run, 0, [result("surprisal_x", 9.0)])  # another check's name
    store.replace_check_results(run, 0, ["surprisal"], [result("surprisal.premises", 4.0)])
    assert [(r.check, r.value) for r in store.check_results(run, 0)] == [
        ("ai_author", 0.1),
        ("surprisal_x", 9.0),
        ("surprisal.premises", 4.0),
    ]
    assert [r.value for r in store.check_results(run, 1)] == [3.0]


def test_items_round_trip_per_table_and_resume_indices(store: Store) -> None:
    run = new_run(store)
    store.add_item(run, "forecast", 1, {"id": "q1", "prob": TRICKY[0], "text": "naïve \u2014 ✓"})
    store.add_item(run, "forecast", 0, {"id": "q0", "prob": 0.25, "outcome": None})
    store.add_item(run, "agentic", 0, {"category": "power", "matching_prob": 0.5})
    assert store.items(run, "forecast") == [
        {"id": "q0", "prob": 0.25, "outcome": None},
        {"id": "q1", "prob": TRICKY[0], "text": "naïve \u2014 ✓"},
    ]
    assert store.item_indices(run, "forecast") == {0, 1}
    assert store.items(run, "agentic") == [{"category": "power", "matching_prob": 0.5}]
    assert store.items(run, "plan") == []
    with pytest.raises(ValueError, match="already stored"):
        store.add_item(run, "forecast", 0, {"id": "again"})
    assert store.items(run, "forecast")[0]["id"] == "q0"


def test_scores_append_per_conditional(store: Store) -> None:
    run = new_run(store, n_conds=2)
    a = [
        Score(" yes", -0.25, [-0.25], [" yes"], True),
        Score(" no", TRICKY[0], [TRICKY[0]], [" no"]),
    ]
    b = [Score(" maybe", -math.inf, [-1.0, -math.inf], [" may", "be"])]
    store.add_scores(run, 1, a)
    store.add_scores(run, 0, b)
    store.add_scores(run, 1, b)  # appended after a, not clashing with it
    assert store.scores(run) == [*b, *a, *b]
    assert store.scores(run, cond_index=1) == [*a, *b]
    assert store.get_run(run).n_scores == 4


def test_run_record_and_lifecycle(store: Store) -> None:
    run = store.create_run("score", "gguf:/m.gguf", {"stop": ["\n"], "top_p": 0.9}, None)
    rec = store.get_run(run)
    assert (rec.kind, rec.model_spec, rec.seed, rec.status) == (
        "score",
        "gguf:/m.gguf",
        None,
        "running",
    )
    assert rec.params == {"stop": ["\n"], "top_p": 0.9}
    assert rec.version and rec.finished_at is None
    store.finish_run(run, "failed", timings={"sample_s": 1.5}, error="CUDA out of memory")
    rec = store.get_run(run)
    assert (rec.status, rec.timings, rec.error) == (
        "failed",
        {"sample_s": 1.5},
        "CUDA out of memory",
    )
    assert rec.finished_at >= rec.created_at
    assert store.reopen_run(run[:12]) == run
    assert (store.get_run(run).status, store.get_run(run).finished_at) == ("running", None)
    with pytest.raises(ValueError, match="finishes as one of"):
        store.finish_run(run, "exploded")  # type: ignore[arg-type]


def test_list_runs_newest_first_and_by_kind(store: Store) -> None:
    runs = [store.create_run(k, "m", {}, i) for i, k in enumerate(["predict", "score"] * 3)]
    assert [r.id for r in store.list_runs()] == runs[::-1]
    assert [r.id for r in store.list_runs(limit=2)] == runs[:-3:-1]
    assert [r.id for r in store.list_runs(kind="score")] == runs[1::2][::-1]
    assert len(store.list_runs(limit=None)) == 6


def test_conditionals_and_write_order_errors(store: Store) -> None:
    run = new_run(store, n_conds=2)
    conds = store.conditionals(run)
    assert [(c.index, c.yaml_text, c.rendered, c.source) for c in conds] == [
        (0, "camera: c0\n", "rendered 0", "c0.yaml"),
        (1, "camera: c1\n", "rendered 1", "c1.yaml"),
    ]
    with pytest.raises(ValueError, match="add its conditional first"):
        store.add_sample(run, 9, Sample("x", [], [], "eos"))
    store.add_sample(run, 0, Sample("x", [], [], "eos"))
    with pytest.raises(ValueError, match="already stored"):
        store.add_sample(run, 0, Sample("y", [], [], "eos"))
    with pytest.raises(ValueError, match="already stored"):
        store.add_conditional(run, 1, "", "")


# --- ids ------------------------------------------------------------------------------------------


@pytest.fixture
def frozen_ids(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fix the clock and the random suffixes, so ids are known in advance."""
    suffixes = ["aaaa", "aaab", "aaaa", "bbbb"]  # the second "aaaa" collides and is redrawn

    class Clock(datetime):
        @classmethod
        def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
            return datetime(2026, 11, 22, 14, 30, 12, 345000, tzinfo=UTC)

    monkeypatch.setattr(db, "datetime", Clock)
    monkeypatch.setattr(db.secrets, "token_hex", lambda n: suffixes.pop(0))
    return suffixes


def test_ids_readable_unique_and_prefix_resolved(store: Store, frozen_ids: list[str]) -> None:
    ids = [store.create_run("predict", "m", {}, 0) for _ in range(3)]
    assert ids == ["20261122-143012-aaaa", "20261122-143012-aaab", "20261122-143012-bbbb"]
    assert store.resolve_id("20261122-143012-b") == ids[2]
    assert store.resolve_id(" 20261122-143012-aaab ") == ids[1]
    assert store.get_run("20261122-143012-aaaa").id == ids[0]  # a full id that is also a prefix
    with pytest.raises(InputError, match="ambiguous") as e:
        store.resolve_id("20261122-143012-a")
    assert ids[0] in str(e.value) and ids[1] in str(e.value) and ids[2] not in str(e.value)
    with pytest.raises(InputError, match=r"did you mean: .*20261122-143012-aaaa"):
        store.samples("20261122-143012-aaaz")  # a typo
    with pytest.raises(InputError, match="recent runs: 20261122-143012-bbbb") as e:
        store.get_run("zzz")
    assert str(store.path) in str(e.value)
    with pytest.raises(InputError, match="empty run id"):
        store.resolve_id("")


def test_real_ids_sort_by_time(store: Store) -> None:
    run = store.create_run("predict", "m", {}, 0)
    assert len(run) == 20 and run[8] == "-" and run[15] == "-"
    assert run[:15] == datetime.now(UTC).strftime("%Y%m%d-%H%M%S")[:13] + run[13:15]
    with pytest.raises(InputError, match="no run with id 'nope'"):
        Store(store.path).get_run("nope")


def test_unknown_id_in_empty_store(store: Store) -> None:
    with pytest.raises(InputError, match="no runs yet"):
        store.get_run("2026")


# --- export ---------------------------------------------------------------------------------------


def filled_run(store: Store) -> str:
    run = new_run(store, n_conds=2)
    for c in (0, 1):
        for i in range(3):
            store.add_sample(run, c, Sample(f"s{c}{i} é", TRICKY[i:], ["a", "é"], "length", i))
    store.add_scores(run, 1, [Score(" yes", TRICKY[0], [TRICKY[0]], [" yes"], True)])
    return run


def test_export_jsonl(store: Store, tmp_path: Path) -> None:
    run = filled_run(store)
    n = store.export(run[:10], tmp_path / "out" / "run.jsonl")
    lines = (tmp_path / "out" / "run.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert n == len(rows) == 7
    assert rows == store.rows(run)
    assert [list(r) for r in rows] == [list(COLUMNS)] * 7
    assert [(r["record"], r["cond_index"], r["index"]) for r in rows] == [
        *[("sample", c, i) for c in (0, 1) for i in range(3)],
        ("score", 1, 0),
    ]
    first = rows[0]
    assert first["token_logprobs"] == TRICKY  # exact, -inf included
    assert first["logprob"] == -math.inf and first["rendered"] == "rendered 0"
    assert json.loads(first["params"]) == {"temperature": 0.7} and first["seed"] == 7
    assert rows[-1]["greedy"] is True and rows[-1]["finish_reason"] is None


def test_export_parquet_reads_back_with_pandas(store: Store, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pq = pytest.importorskip("pyarrow.parquet")
    run = filled_run(store)
    path = tmp_path / "run.parquet"
    assert store.export(run, path, format="parquet") == 7
    df = pd.read_parquet(path)
    assert list(df.columns) == list(COLUMNS)
    back = df.astype(object).where(df.notna(), None).to_dict("records")
    for row, want in zip(back, store.rows(run), strict=True):
        row["tokens"], row["token_logprobs"] = list(row["tokens"]), list(row["token_logprobs"])
        assert row == want
    assert store.to_frame(run).shape == df.shape
    # A run with no scores still writes the same typed schema, so exports concatenate.
    other = new_run(store)
    store.add_sample(other, 0, Sample("x", [-1.0], ["x"], "eos"))
    store.export(other, tmp_path / "other.parquet")
    assert pq.read_schema(tmp_path / "other.parquet") == pq.read_schema(path)
    empty = store.create_run("predict", "m", {}, None)
    assert store.export(empty, tmp_path / "empty.parquet") == 0
    assert pq.read_schema(tmp_path / "empty.parquet") == pq.read_schema(path)


def test_export_errors(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = filled_run(store)
    with pytest.raises(InputError, match="unknown export format 'tsv'"):
        store.export(run, tmp_path / "run.tsv")
    with pytest.raises(InputError, match="unknown export format 'xlsx'"):
        store.export(run, tmp_path / "run.parquet", format="xlsx")  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed
    with pytest.raises(InputError, match=r"pip install 'condpred\[parquet\]'"):
        store.export(run, tmp_path / "run.parquet")
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(InputError, match=r"condpred\[parquet\]"):
        store.to_frame(run)


# --- the file: migrations, bad files, concurrency, durability -------------------------------------


def versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]


def test_settings_and_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONDPRED_DB", raising=False)
    with Store() as s:
        assert s.path == Path("condpred-runs.db")
        assert s._q("PRAGMA journal_mode")[0][0] == "wal"
        assert s._q("PRAGMA foreign_keys")[0][0] == 1
        assert s._q("PRAGMA synchronous")[0][0] == 1  # NORMAL
    monkeypatch.setenv("CONDPRED_DB", str(tmp_path / "deep" / "er" / "runs.db"))
    with Store() as s:
        new_run(s)
    assert (tmp_path / "deep" / "er" / "runs.db").exists()


def test_migrations_idempotent_and_additive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "runs.db"
    with Store(path) as s:
        run = filled_run(s)
        before = s.rows(run)
    for _ in range(3):
        with Store(path) as s:
            assert s.rows(run) == before
    assert versions(path) == list(range(1, len(MIGRATIONS) + 1))

    # A later feature adds a table: old databases gain it and keep everything.
    later = [
        *MIGRATIONS,
        "CREATE TABLE checks (run_id TEXT, name TEXT);\nCREATE INDEX c ON checks (name);",
    ]
    monkeypatch.setattr(db, "MIGRATIONS", later)
    with Store(path) as s:
        assert s.rows(run) == before
        assert s._q("SELECT COUNT(*) FROM checks")[0][0] == 0
    assert versions(path) == list(range(1, len(later) + 1))

    # A migration that fails half-way leaves no trace: its statements and version roll back.
    broken = [*later, "CREATE TABLE half (x);\nTHIS IS NOT SQL;"]
    monkeypatch.setattr(db, "MIGRATIONS", broken)
    with pytest.raises(InputError, match="syntax error"):
        Store(path)
    assert versions(path) == list(range(1, len(later) + 1))
    with sqlite3.connect(path) as conn:
        assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'half'").fetchall()


def test_newer_schema_is_refused_not_touched(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with Store(path) as s:
        run = new_run(s)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (999, 'future')")
    with pytest.raises(InputError, match="newer condpred") as e:
        Store(path)
    assert str(path) in str(e.value)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT id FROM runs").fetchall() == [(run,)]


def test_bad_files_are_input_errors_and_untouched(tmp_path: Path) -> None:
    junk = tmp_path / "notes.db"
    junk.write_bytes(b"these are my notes, not a database\n" * 200)
    with pytest.raises(InputError, match="not a database") as e:
        Store(junk)
    assert str(junk) in str(e.value)
    assert junk.read_bytes() == b"these are my notes, not a database\n" * 200

    foreign = tmp_path / "other-app.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
        conn.execute("INSERT INTO users VALUES ('ada')")
    conn.close()
    with pytest.raises(InputError, match=r"not a condpred run store .*users"):
        Store(foreign)
    with sqlite3.connect(foreign) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("users",)]
    conn.close()

    with pytest.raises(InputError, match="directory"):
        Store(tmp_path)


def test_damaged_store_later_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with Store(path) as s:
        run = filled_run(s)
        s._q("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = 4096
    data[page : 3 * page] = b"\xff" * (2 * page)  # smash the pages after the first
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=re.escape(str(path))), Store(path) as s:
        s.samples(run)


def test_two_stores_on_one_file(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with Store(path) as a, Store(path) as b:
        run = new_run(a)
        for i in range(10):
            (a if i % 2 else b).add_sample(run, 0, Sample(f"t{i}", [-float(i)], ["t"], "eos", i))
            assert b.sample_indices(run, 0) == set(range(i + 1))
        b.finish_run(run)
        assert a.get_run(run).status == "done" and a.get_run(run).n_samples == 10


WRITER = """
import sys
from condpred.model.base import Sample, Score
from condpred.store import Store
with Store(sys.argv[1]) as store:
    for r in range(int(sys.argv[2])):
        run = store.create_run("predict", "m", {"writer": sys.argv[3]}, r)
        store.add_conditional(run, 0, "y", "r")
        for i in range(5):
            store.add_sample(run, 0, Sample("t", [-1.0], ["t"], "eos", i))
        store.add_scores(run, 0, [Score("t", -1.0, [-1.0], ["t"])])
        store.finish_run(run)
"""


def test_processes_open_and_write_one_new_file_together(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), "15", str(w)], env=child_env())
        for w in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * 4
    assert versions(path) == list(range(1, len(MIGRATIONS) + 1))  # migrated once
    with Store(path) as s:
        runs = s.list_runs(limit=None)
        assert len(runs) == 60 and len({r.id for r in runs}) == 60
        assert {(r.n_samples, r.n_scores, r.status) for r in runs} == {(5, 1, "done")}


KILLED = """
import sys
from condpred.model.base import Sample
from condpred.store import Store
store = Store(sys.argv[1])
run = store.create_run("predict", "m", {}, 0)
store.add_conditional(run, 0, "y", "r")
print(run, flush=True)
i = 0
while True:
    store.add_sample(run, 0, Sample("x" * 2000 + str(i), [-i / 3] * 50, ["x"] * 50, "length", i))
    print(i, flush=True)
    i += 1
"""


def test_sigkill_loses_nothing_reported(tmp_path: Path) -> None:
    """Kill a writer with a real SIGKILL while it is writing; every sample it reported survives."""
    path = tmp_path / "runs.db"
    rounds = [1, 60, 300]  # several kills on one file: each recovery starts from the last
    for n_reported in rounds:
        proc = subprocess.Popen(
            [sys.executable, "-c", KILLED, str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        run = proc.stdout.readline().strip()
        assert run, proc.stderr.read()
        reported = [int(proc.stdout.readline()) for _ in range(n_reported)]
        os.kill(proc.pid, signal.SIGKILL)  # mid-way: the child is still writing
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        proc.stdout.close()
        proc.stderr.close()

        with Store(path) as s:
            assert s._q("PRAGMA integrity_check")[0][0] == "ok"
            stored = s.sample_indices(run, 0)
            assert set(reported) <= stored == set(range(len(stored)))
            last = s.samples(run)[reported[-1]]
            assert last.text.endswith(str(reported[-1]))
            assert last.token_logprobs[0] == -reported[-1] / 3
            killed = s.get_run(run)  # its process is gone: detected, not guessed
            assert killed.status == "interrupted" and f"({proc.pid} on " in killed.error
            assert s._q("SELECT status FROM runs WHERE id = ?", (run,))[0][0] == "running"
            s.add_sample(run, 0, Sample("resumed", [], [], "eos", len(stored)))
            s.finish_run(run, "interrupted")
    with Store(path) as s:
        assert [r.status for r in s.list_runs()] == ["interrupted"] * len(rounds)


def test_item_rows_export_every_column_and_refuse_mixed_types(store: Store, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    run = new_run(store, kind="forecast")
    store.add_item(run, "questions", 0, {"a": None})
    store.add_item(run, "questions", 1, {"b": 1, "nested": {"x": [1, 2]}})
    assert store.export(run, tmp_path / "items.parquet") == 2
    frame = pd.read_parquet(tmp_path / "items.parquet")
    assert {"a", "b", "nested", "table", "run_id"} <= set(frame.columns)  # b is not in row 0
    assert frame["nested"].tolist()[1] == '{"x": [1, 2]}'
    store.add_item(run, "questions", 2, {"b": "text"})
    with pytest.raises(InputError, match="one type per column") as caught:
        store.export(run, tmp_path / "mixed.parquet")
    assert "jsonl" in caught.value.fix


def test_latest_names_the_newest_runs(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        with pytest.raises(InputError, match="this store has 0 runs"):
            store.resolve_id("latest")
        first, second = (store.create_run("predict", "m", {}, 0) for _ in range(2))
        assert store.resolve_id("latest") == store.resolve_id(" latest~0 ") == second
        assert store.get_run("latest~1").id == first
        with pytest.raises(InputError, match="'latest~2': this store has 2 runs"):
            store.resolve_id("latest~2")


def test_a_live_run_is_not_resumed_twice_and_a_dead_one_reads_interrupted(tmp_path):
    """A run owned by a live process (a real child that created it and waits) is refused by
    reopen_run; once that process is killed, the run reads 'interrupted' and reopens."""
    db = tmp_path / "runs.db"
    child = subprocess.Popen(
        [sys.executable, "-c", OWNER_SCRIPT, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        run = child.stdout.readline().strip()
        with Store(db) as store:
            live = store.get_run(run)
            assert live.status == "running" and live.live_elsewhere
            with pytest.raises(InputError, match=f"still running in process {child.pid}"):
                store.reopen_run(run)
    finally:
        child.kill()
        child.wait()
    with Store(db) as store:
        assert store.get_run(run).status == "interrupted"
        store.reopen_run(run)
        mine = store.get_run(run)
        assert mine.status == "running" and not mine.live_elsewhere
        assert mine.owner["pid"] == os.getpid()
        store.finish_run(run, timings={"sample_s": 2.0, "new_tokens": 10})
        store.reopen_run(run)
        store.finish_run(run, timings={"sample_s": 0.5, "new_tokens": 3, "check_s": 1.0})
        assert store.get_run(run).timings == {"sample_s": 2.5, "new_tokens": 13, "check_s": 1.0}


OWNER_SCRIPT = """
import sys, time
from condpred import Store
store = Store(sys.argv[1])
print(store.create_run("predict", "m", {}, 0), flush=True)
time.sleep(600)
"""


def test_a_store_already_open_in_this_process_is_not_read_raw(tmp_path, monkeypatch):
    """Closing any descriptor of an SQLite file drops every POSIX lock the process holds on it,
    other connections' included (seen as "disk I/O error" under the viewer): the raw header
    check runs only while no Store of this process has the file open."""
    from condpred.store import db as store_db

    path = tmp_path / "runs.db"
    with Store(path) as first:
        first.create_run("predict", "m", {}, 0)

        def read_raw(_path):
            raise AssertionError("the open store's file was opened and closed outside SQLite")

        monkeypatch.setattr(store_db, "_check_header", read_raw)
        with Store(path) as second:
            assert len(second.list_runs(None)) == 1
    monkeypatch.undo()
    path.write_bytes(b"not a database at all")
    with pytest.raises(InputError, match="no SQLite header"):  # checked again once all closed
        Store(path)
