"""Checks built from a spec with arguments (`ai_author:warn_above=0.4`), the spec stored beside
every result, bad specs refused before any work, and old stores migrated to keep their results."""

from __future__ import annotations

import json
import sqlite3

import pytest

from condpred import Store
from condpred.checks import get_check, parse_spec, run_checks
from condpred.checks.ai_author import AIAuthorCheck
from condpred.errors import InputError
from condpred.store.schema import MIGRATIONS
from tests.test_checks import conditional, given, model, sample  # noqa: F401
from tests.test_cli import EXAMPLE, run_cli


def test_a_spec_names_a_check_and_its_constructors_arguments():
    assert parse_spec("ai_author:warn_above=0.4:fail_above=0.9") == (
        "ai_author",
        {"warn_above": 0.4, "fail_above": 0.9},
    )
    check = get_check("ai_author:warn_above=0.4:fail_above=0.9")
    assert isinstance(check, AIAuthorCheck)
    assert (check.warn_above, check.fail_above) == (0.4, 0.9)
    assert get_check("ai_author") is get_check(" ai_author ")  # no arguments: the default


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("ai_author:nope=1", "takes no argument 'nope'"),
        ("ai_author:warn_above", "is not key=value"),
        ("ai_author:warn_above=0.9:fail_above=0.1", "out of order"),
        ("ai_autor", "unknown check 'ai_autor'"),
    ],
)
def test_bad_specs_are_input_errors(spec, words):
    with pytest.raises(InputError, match=words) as caught:
        get_check(spec)
    assert caught.value.field == "--checks"


def test_the_spec_is_stamped_on_every_result_and_stored(model, tmp_path):  # noqa: F811
    cond = conditional()
    samples = [sample(0, " The treaty was ratified."), sample(1, " Members agreed.")]
    results = run_checks(["ai_author:warn_above=0.0"], given(model, cond, samples))
    assert {r.verdict for r in results} <= {"warn", "fail"}  # nothing passes a 0.0 threshold
    record = json.loads(results[0].spec)
    assert record["check"] == "ai_author" and record["args"] == {"warn_above": 0.0}
    assert record["condpred"]
    with Store(tmp_path / "runs.db") as store:
        run = store.create_run("predict", "tiny", {}, 0)
        store.add_conditional(run, 0, "title: T\n", "T")
        store.add_check_results(run, 0, results)
        assert store.check_results(run) == results


def test_the_cli_takes_specs_and_refuses_a_bad_one_before_sampling(
    capsys, tmp_path, tiny_model_dir
):
    db = str(tmp_path / "runs.db")
    args = ["predict", str(EXAMPLE), "-n", "2", "--max-tokens", "4", "--model", str(tiny_model_dir)]
    code, _, err = run_cli(capsys, *args, "--checks", "ai_author:nope=1", "--db", db)
    assert code == 2 and "takes no argument 'nope'" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, *args, "--checks", "ai_author:warn_above=0.0", "--db", db)
    assert code == 0, err
    specs = sqlite3.connect(db).execute("SELECT DISTINCT spec FROM check_results").fetchall()
    assert [json.loads(s)["args"] for (s,) in specs] == [{"warn_above": 0.0}]


def test_a_store_from_before_specs_is_migrated_and_keeps_its_results(tmp_path):
    path = tmp_path / "old.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT)")
    for number, script in enumerate(MIGRATIONS[:3], start=1):
        connection.executescript(script)
        connection.execute("INSERT INTO schema_version VALUES (?, 'then')", (number,))
    connection.execute(
        "INSERT INTO runs (id, kind, model_spec, params, seed, version, status, created_at)"
        " VALUES ('r1', 'predict', 'tiny', '{}', 0, '0.1.0', 'done', 'then')"
    )
    connection.execute("INSERT INTO conditionals VALUES ('r1', 0, NULL, 'title: T', 'T')")
    connection.execute(
        "INSERT INTO check_results VALUES ('r1', 0, NULL, 'surprisal', 3.0, 7.5, 'pass', '{}',"
        " 'fine', 'then')"
    )
    connection.commit()
    connection.close()
    with Store(path) as store:
        (result,) = store.check_results("r1")
    assert (result.check, result.value, result.spec) == ("surprisal", 3.0, None)
