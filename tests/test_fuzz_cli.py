"""The fuzz harness of issue 17: hypothesis drives the real CLI (`condpred.cli.main`, in-process,
so a case costs milliseconds unless it loads the tiny model) with malformed conditionals, question
and plan files, option values and server replies (a real HTTP server on 127.0.0.1 that misbehaves
on command). A case fails on any traceback, any exit code but 0, 2 or 130, an "internal error"
(the CLI's last-resort message for a bug), or any change to what a pre-existing store holds (its
run's rows) or to the bytes of another program's file passed as --db.

Bounded for `make test` (about a minute on a 2-core machine); CONDPRED_FUZZ_LONG=N runs N times
as many cases. CONDPRED_FUZZ_REPORT=FILE appends the counts (cases per target, failures) as JSON.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import os
import sqlite3
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from condpred.cli import main
from tests.misbehaving_server import MODES, MisbehavingServer, echo_reply

SCALE = int(os.environ.get("CONDPRED_FUZZ_LONG", "1"))
EXAMPLES = Path(__file__).parents[1] / "examples"
EXAMPLE = EXAMPLES / "alignment-paper-2031.yaml"
PLANS = EXAMPLES / "plans" / "compute-governance.yaml"
OK_CODES = {0, 2, 130}
COUNTS: Counter[str] = Counter()


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        database=None,  # no .hypothesis folder: every run explores afresh
        suppress_health_check=list(HealthCheck),
    )


# --- the world each case runs in: a store with a finished run, a foreign file, the tiny model ---


class World:
    def __init__(self, root: Path, tiny: Path) -> None:
        self.root = root
        self.tiny = str(tiny)
        self.db = root / "runs.db"
        self.files = root / "inputs"
        self.files.mkdir()
        self.foreign = root / "other-app.sqlite"
        with sqlite3.connect(self.foreign) as conn:
            conn.execute("CREATE TABLE users (name TEXT)")
            conn.execute("INSERT INTO users VALUES ('ada')")
        conn.close()
        self.notes = root / "notes.txt"
        self.notes.write_text("my notes, not a database\n")
        self.foreign_digest = _digest(self.foreign)
        self.notes_digest = _digest(self.notes)
        code, out, err = cli("--db-env", str(self.db), "predict", str(EXAMPLE), "-n", "2",
                             "--max-tokens", "3", "--model", self.tiny, "--json")  # fmt: skip
        assert code == 0, err
        self.run_id = json.loads(out)["run_id"]
        self.snapshot = self.rows()

    def rows(self) -> dict[str, list[tuple]]:
        """What is stored for the pre-existing run: its record, conditional and samples. (Its
        check results are not here: `condpred check` replaces them, by design.)"""
        conn = sqlite3.connect(self.db)
        try:
            runs = conn.execute("SELECT * FROM runs WHERE id = ?", (self.run_id,)).fetchall()
            rows = {"runs": runs}
            for table in ("conditionals", "samples"):
                found = conn.execute(f"SELECT * FROM {table} WHERE run_id = ?", (self.run_id,))
                rows[table] = sorted(found, key=repr)
            return rows
        finally:
            conn.close()

    def check(self, target: str, args: list[str], code: int, out: str, err: str) -> None:
        """The promises, after every case."""
        COUNTS[target] += 1
        problems = []
        if "Traceback" in out + err:
            problems.append("a traceback")
        if code not in OK_CODES:
            problems.append(f"exit code {code}")
        if "internal error" in err:
            problems.append("an internal error")
        if self.rows() != self.snapshot:
            problems.append("the pre-existing run changed")
        if _digest(self.foreign) != self.foreign_digest or _digest(self.notes) != self.notes_digest:
            problems.append("a foreign --db file changed")
        if problems:
            COUNTS["failures"] += 1
            if COUNTS["failures"] == 1:  # later ones may follow from it (a damaged store)
                print(f"\nfirst failure: condpred {' '.join(args)}: {problems}\n{err[-2000:]}")
            raise AssertionError(f"condpred {' '.join(args)}: {', '.join(problems)}\n{err[-3000:]}")

    def write(self, name: str, data: bytes) -> Path:
        path = self.files / name
        path.write_bytes(data)
        return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(*args: str) -> tuple[int, str, str]:
    """The real entry point in-process; `--db-env PATH` first sets CONDPRED_DB."""
    env = os.environ.copy()
    if args and args[0] == "--db-env":
        os.environ["CONDPRED_DB"], args = args[1], args[2:]
    sys.argv = ["condpred", *args]
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException as error:  # escaped main(): what a user sees as a traceback
                code, err_text = 1, f"Traceback (escaped main): {type(error).__name__}: {error}"
                err.write(err_text)
    finally:
        os.environ.clear()
        os.environ.update(env)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_model_dir) -> World:
    return World(tmp_path_factory.mktemp("fuzz"), tiny_model_dir)


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    path = os.environ.get("CONDPRED_FUZZ_REPORT")
    print(f"\nfuzz cases: {dict(COUNTS)}")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"scale": SCALE, **COUNTS}) + "\n")


def run(world: World, target: str, *args: Any) -> None:
    argv = [str(a) for a in args]
    code, out, err = cli("--db-env", str(world.db), *argv)
    world.check(target, argv, code, out, err)


# --- values: junk of every shape, and valid documents broken one place at a time -----------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["2031-02-30", "2031-13-45", "0000-01-01", "{question}", "{{ x }}", "{% x %}",
                     "\x00", "\ufeff", "é" * 50, "x" * 5000, "-1", "1e400", "nan", "[", "&a"]),
)  # fmt: skip
JUNK = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*prefix, i))
    return found


@st.composite
def broken(draw, document: Any) -> Any:
    """`document` with a few places replaced by junk, deleted, or given unknown keys."""
    data = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if not path:
            data = draw(JUNK) if action == "replace" else data
            continue
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        if action == "replace":
            parent[path[-1]] = draw(JUNK)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(JUNK)
    return data


def as_bytes(draw, data: Any) -> bytes:
    """YAML or JSON text of `data`, sometimes damaged byte-wise."""
    try:
        text = yaml.safe_dump(data, allow_unicode=True).encode()
    except (yaml.YAMLError, ValueError, RecursionError):
        text = repr(data).encode()
    damage = draw(st.sampled_from(["none", "none", "truncate", "insert", "binary"]))
    if damage == "truncate" and text:
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif damage == "insert":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.binary(max_size=8)) + text[at:]
    elif damage == "binary":
        text = draw(st.binary(max_size=200))
    return text


CONDITIONAL = yaml.safe_load(EXAMPLE.read_text())
PLAN_SET = yaml.safe_load(PLANS.read_text())
QUESTION = {
    "id": "q1",
    "question": "Will it rain?",
    "background": "Clouds.",
    "as_of": "2024-01-01",
    "resolved": "2024-06-01",
    "outcome": 1,
    "crowd_prob": 0.6,
}


# --- the targets ---------------------------------------------------------------------------------


@fuzz(100)
@given(data=st.data())
def test_fuzz_conditional_files(world: World, data) -> None:
    text = as_bytes(data.draw, data.draw(broken(CONDITIONAL)))
    path = world.write("conditional.yaml", text)
    run(world, "conditionals", "render", path)
    if data.draw(st.integers(0, 9)) == 0:  # a tenth also go through predict and score
        run(world, "conditionals", "predict", path, "--model", world.tiny, "-n", "1",
            "--max-tokens", "2", "--checks", "none")  # fmt: skip
        run(world, "conditionals", "score", path, "-c", " yes", "--model", world.tiny)


@fuzz(50)
@given(data=st.data())
def test_fuzz_question_files(world: World, data) -> None:
    lines = []
    for _ in range(data.draw(st.integers(0, 3))):
        kind = data.draw(st.sampled_from(["good", "broken", "junk", "text"]))
        if kind == "good":
            lines.append(json.dumps({**QUESTION, "id": f"q{len(lines)}"}))
        elif kind == "broken":
            lines.append(json.dumps(data.draw(broken(QUESTION)), default=str))
        elif kind == "junk":
            lines.append(json.dumps(data.draw(JUNK), default=str))
        else:
            lines.append(data.draw(st.text(max_size=40)).replace("\n", " "))
    text = "\n".join(lines).encode()
    if data.draw(st.integers(0, 5)) == 0:
        text = data.draw(st.binary(max_size=100))
    path = world.write("questions.jsonl", text)
    # --cutoff junk and a missing --out folder must both fail before the model loads
    extra = data.draw(st.sampled_from([[], ["--cutoff", "2024-13-01"], ["--limit", "1"],
                                       ["--out", world.root / "nowhere" / "f.json"]]))  # fmt: skip
    run(world, "questions", "forecast", path, "--model", world.tiny, *extra)


@fuzz(25)
@given(data=st.data())
def test_fuzz_plan_files(world: World, data) -> None:
    text = as_bytes(data.draw, data.draw(broken(PLAN_SET)))
    path = world.write("plans.yaml", text)
    run(world, "plans", "plan", path, "--model", world.tiny, "--samples", "0")


NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "x", "1e999", "-0", "0x10", " 3", "1_000", "१"]),
)
SPECS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["default", "gguf:", "gguf:/", "gguf:/dev/null", f"gguf:{EXAMPLE}", "openai:",
                     "openai:#", "openai:http://#m", "openai:htp:/bad url#x", "openai:ftp://h#m",
                     "openai:http://127.0.0.1:1#m", "openai:http://[::1#m", "/", ".", "~",
                     "a/b/c/d", "smollm2-135m-instruct-typo", str(EXAMPLES)]),
)  # fmt: skip


@st.composite
def paths(draw, world: World) -> str:
    return draw(st.sampled_from([
        str(world.root), str(world.root / "missing" / "x"), str(world.notes), str(world.foreign),
        str(world.db), "/", "/proc/version", "", str(world.root / "new.out"), "/dev/null",
    ]) | st.text(min_size=1, max_size=20).map(lambda t: str(world.root / "o" / t)))  # fmt: skip


COMMANDS = ["predict", "score", "forecast", "plan", "list", "show", "export", "report", "check",
            "resume", "zero-one"]  # fmt: skip


@fuzz(50)
@given(data=st.data())
def test_fuzz_options(world: World, data) -> None:
    value = data.draw
    command = value(st.sampled_from(COMMANDS))
    run_id = value(st.sampled_from([world.run_id, world.run_id[:10], "", "x", "%", "2026"]))
    db = ["--db", value(paths(world))] if value(st.integers(0, 4)) == 0 else []
    # a spec that loads (the tiny model) only now and then: most cases must fail fast
    model = world.tiny if value(st.integers(0, 7)) == 0 else value(SPECS)
    if command == "predict":
        tokens = value(st.sampled_from(["1", "2", "0", "-1", "99999"]) | NUMBERS)
        checks = value(st.text(max_size=20) | st.just("none"))
        args = ["predict", EXAMPLE, "--model", model, "-n", value(NUMBERS),
                "--max-tokens", tokens, "--seed", value(NUMBERS),
                "--temperature", value(NUMBERS), "--top-p", value(NUMBERS), "--checks", checks,
                "--timeout", value(NUMBERS)]  # fmt: skip
        if value(st.booleans()):
            args = ["predict", "--resume", run_id, "--model", model]
    elif command == "score":
        args = ["score", EXAMPLE, "-c", value(st.text(max_size=20)), "--model", model,
                "--continuations", value(paths(world))]  # fmt: skip
    elif command == "forecast":
        args = ["forecast", value(paths(world)), "--model", model, "--limit", value(NUMBERS),
                "--seed", value(NUMBERS), "--out", value(paths(world))]  # fmt: skip
    elif command == "plan":
        plans = value(st.sampled_from([str(PLANS), str(EXAMPLE)]) | paths(world))
        args = ["plan", plans, "--model", model, "--samples", value(NUMBERS),
                "--seed", value(NUMBERS)]  # fmt: skip
    elif command == "list":
        args = ["runs", "list", "--kind", value(st.text(max_size=10)), "--limit", value(NUMBERS)]
    elif command == "show":
        args = ["runs", "show", run_id, *value(st.sampled_from([[], ["--json"]]))]
    elif command == "export":
        args = ["runs", "export", run_id, "--format", value(st.sampled_from(["jsonl", "csv", "x"])),
                "--out", value(paths(world))]  # fmt: skip
    elif command == "report":
        args = ["report", run_id, "--out", value(paths(world))]
    elif command == "check":
        args = ["check", EXAMPLE, "--samples", run_id, "--checks", value(st.text(max_size=20)),
                "--model", model]  # fmt: skip
    elif command == "resume":
        args = ["resume", value(st.text(max_size=12))]
    else:
        args = ["evals", "zero-one", "--models", value(SPECS), "--limit", value(NUMBERS),
                "--out", value(paths(world))]  # fmt: skip
    run(world, "options", *args, *db)


@st.composite
def replies(draw) -> tuple[int, bytes]:
    """What a misbehaving server answers to one completions request."""
    status = draw(st.sampled_from([200, 200, 200, 200, 201, 204, 301, 400, 404, 429, 500, 503]))
    kind = draw(st.sampled_from(["broken", "broken", "junk", "bytes"]))
    if kind == "broken":
        good = echo_reply("abc", sample=draw(st.booleans()))
        body = json.dumps(draw(broken(good)), default=str).encode()
    elif kind == "junk":
        body = json.dumps(draw(JUNK), default=str).encode()
    else:
        body = draw(st.binary(max_size=200))
    return status, body


@fuzz(20)
@given(data=st.data())
def test_fuzz_server_replies(world: World, data) -> None:
    with MisbehavingServer() as server:
        mode = data.draw(st.sampled_from([*MODES, "custom", "custom", "custom"]))
        if mode == "custom":
            server.reply = lambda _request, answer=data.draw(replies()): answer
        else:
            server.mode = mode
        if data.draw(st.integers(0, 5)) == 0:
            server.models_reply = data.draw(replies())
        spec = server.spec()
        command = data.draw(st.sampled_from(["score", "predict"]))
        if command == "score":
            args = ["score", EXAMPLE, "-c", " yes", "-c", "", "--model", spec]
        else:
            args = ["predict", EXAMPLE, "-n", "2", "--checks", "none", "--model", spec]
        run(world, "server replies", *args, "--timeout", "1")
