"""One registry mechanism: a user's installed package adds a check, a model backend, an
experiment kind and a report section through entry points, without touching condpred; and
typed, versioned experiment rows (validated on write and read, a newer version refused, a store
from before row versions migrated)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from condpred import InputError, Store
from condpred.evals.agentic import AgenticRow
from condpred.experiments.runner import Recorder, read_rows
from condpred.store.schema import MIGRATIONS

PLUGIN = '''
from condpred.checks import CHECKS
from condpred.checks.base import CheckResult
from condpred.experiments.runner import resumable
from condpred.model.hf import HFModel
from condpred.model.registry import BACKENDS
from condpred.report.sections import SECTIONS, Block


@CHECKS.register("always_warns")
class AlwaysWarns:
    name = "always_warns"

    def __init__(self, level: float = 0.7):
        self.level = level

    def run(self, given):
        return [CheckResult(self.name, self.level, 0.5, "warn", message="planted")]


@BACKENDS.register("alias")
def load_alias(target, *, spec, device):
    """`alias:PATH`: the model folder PATH, known by the whole spec."""
    return HFModel.from_pretrained(target, spec=spec, device=device)


@resumable("noop")
def resume_noop(run_id, store, load):
    store.finish_run(run_id)


@SECTIONS.register("noop")
def build(store, run):
    return [Block("From the plugin")]
'''


@pytest.fixture
def plugin_path(tmp_path) -> Path:
    """An installed distribution (a module and its dist-info) whose entry points name the
    module in all four groups: what `pip install my-plugin` leaves on sys.path."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "my_plugin.py").write_text(PLUGIN)
    info = site / "my_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-plugin\nVersion: 0.1\n")
    groups = ("checks", "backends", "experiments", "report_sections")
    (info / "entry_points.txt").write_text(
        "".join(f"[condpred.{group}]\nmy = my_plugin\n\n" for group in groups)
    )
    return site


def test_an_installed_package_extends_every_registry(plugin_path, tiny_model_dir, tmp_path):
    script = textwrap.dedent(f"""
        import json
        from condpred import Store
        from condpred.checks import available_checks, get_check
        from condpred.experiments.runner import EXPERIMENTS, resume
        from condpred.model.registry import load_model
        from condpred.report.html import build_report

        model = load_model("alias:{tiny_model_dir}")
        with Store({str(tmp_path / "runs.db")!r}) as store:
            run = store.create_run("noop", model.spec, {{}}, None)
            resume(run, store)
            page = build_report(store, run)
            status = store.get_run(run).status
        print(json.dumps({{
            "checks": available_checks(),
            "level": get_check("always_warns:level=0.9").level,
            "kinds": EXPERIMENTS.names(),
            "spec": model.spec,
            "status": status,
            "section": "From the plugin" in page,
        }}))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_path), *sys.path])},
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert "always_warns" in found["checks"] and "ai_author" in found["checks"]
    assert found["level"] == 0.9
    assert {"noop", "forecast", "plan"} <= set(found["kinds"])
    assert found["spec"] == f"alias:{tiny_model_dir}"
    assert found["status"] == "done" and found["section"]


def test_an_unknown_name_lists_what_is_registered():
    from condpred.checks import get_check
    from condpred.model.registry import BACKENDS

    with pytest.raises(InputError) as error:
        get_check("no_such_check")
    assert "unknown check 'no_such_check'" in str(error.value)
    assert "ai_author" in str(error.value) and "condpred.checks" in str(error.value)
    assert "Did you mean" not in str(error.value)
    with pytest.raises(InputError, match="Did you mean 'ai_author'"):
        get_check("ai_autor")
    assert {"gguf", "hf", "openai"} <= set(BACKENDS.names())


def _agentic_row(index: int) -> dict:
    return {
        "index": index,
        "category": "power",
        "line": index + 1,
        "model": "m1",
        "conditional": "raw",
        "matching": [" (A)"],
        "options": [" (A)", " (B)"],
        "logprobs": [-1.0, -2.0],
        "tokens": [2, 2],
        "probs": [0.731, 0.269],
        "probs_norm": [0.622, 0.378],
        "matching_prob": 0.731,
        "matching_prob_norm": 0.622,
    }


def test_rows_are_validated_when_stored_and_typed_when_read(tmp_path):
    with Store(tmp_path / "runs.db") as store:
        run = store.create_run("agentic", "m1", {}, 0)
        recorder = Recorder(store, run)
        rows = recorder.add_items(
            AgenticRow, [0, 1], lambda i: AgenticRow(**_agentic_row(i)), "rows"
        )
        back = read_rows(store, run, AgenticRow)
        assert back == rows and back[1].matching_prob == back[1]["matching_prob"] == 0.731
        with pytest.raises(TypeError, match="AgenticRow with index 2"):  # a kind's bug, caught
            recorder.add_items(AgenticRow, [2], lambda i: AgenticRow(**_agentic_row(0)), "r")
        assert store.item_indices(run, "agentic") == {0, 1}


def test_a_row_from_a_newer_condpred_or_a_damaged_row_is_refused(tmp_path):
    db = tmp_path / "runs.db"
    with Store(db) as store:
        run = store.create_run("agentic", "m1", {}, 0)
        store.add_item(run, "agentic", 0, _agentic_row(0), version=AgenticRow.version + 1)
        with pytest.raises(InputError) as newer:
            read_rows(store, run, AgenticRow)
        assert "written by a newer condpred (row version 2" in str(newer.value)
        damaged = {**_agentic_row(1), "matching_prob": "high"}
        del damaged["line"]
        store.add_item(run, "agentic", 1, damaged)
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE items SET row_version = 1")
    with Store(db) as store, pytest.raises(InputError) as error:
        read_rows(store, run, AgenticRow)
    message = str(error.value)
    assert "row 1 of table 'agentic'" in message and "damaged" in message
    assert "line: Field required" in message and "matching_prob:" in message


def test_a_store_written_before_row_versions_is_migrated_and_read(tmp_path):
    """A store at schema 4 (the previous release) with an agentic row in that release's shape:
    opening it adds the version column, and its rows read as version-1 typed rows."""
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as connection:
        connection.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        for number, script in enumerate(MIGRATIONS[:4], start=1):
            connection.executescript(script)
            connection.execute("INSERT INTO schema_version VALUES (?, 'then')", (number,))
        connection.execute(
            "INSERT INTO runs (id, kind, model_spec, params, seed, version, status, created_at)"
            " VALUES ('20260101-000000-aaaa', 'agentic', 'm1', '{}', 0, '0.3', 'done', 'then')"
        )
        connection.execute(
            "INSERT INTO items VALUES ('20260101-000000-aaaa', 'agentic', 0, ?, 'then')",
            (json.dumps(_agentic_row(0)),),
        )
    with Store(db) as store:
        rows = read_rows(store, "20260101-000000-aaaa", AgenticRow)
        assert rows == [AgenticRow(**_agentic_row(0))]
        assert store.export("20260101-000000-aaaa", tmp_path / "old.csv") == 1
    with sqlite3.connect(db) as connection:
        versions = [v for (v,) in connection.execute("SELECT version FROM schema_version")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))
