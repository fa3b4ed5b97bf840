"""Cyborg planning: plan sets validated before any model, distributions and checks per plan,
expected utility by hand, stored rows and resume; the examples run through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from condpred import InputError, Store
from condpred.elicit.outcomes import outcomes
from condpred.model.hf import HFModel
from condpred.planning import load_plan_set, plan, resume_plans
from condpred.planning.run import PlanRow
from tests.test_cli import run_cli
from tests.test_forecast import InterruptAfter

EXAMPLES = Path(__file__).parents[1] / "examples" / "plans"
PLAN_SET = {
    "situation": {
        "camera": "news-article",
        "date": "2029-01-01",
        "title": "The treaty, a year on",
        "world": ["A global moratorium on frontier AI training has held since 2027."],
        "responses": ["The forecast was published.", "The forecast was kept secret."],
    },
    "plans": [
        {"name": "ratify", "carried_out": "In 2028 the treaty was ratified."},
        {"name": "wait", "carried_out": "In 2028 the vote on the treaty was delayed."},
    ],
    "questions": [
        {"name": "held", "outcomes": ["Yes", "No"], "phrasings": ["Answer: {}.", " {}"]},
        {"name": "mood", "outcomes": ["Yes", "No", "Maybe"], "phrasings": ["Answer: {}"]},
    ],
    "utilities": {"held": {"Yes": 4, "No": -2}},
}


@pytest.fixture(scope="module")
def model(tiny_model_dir) -> HFModel:
    return HFModel.from_pretrained(tiny_model_dir, device="cpu")


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_examples_are_valid_plan_sets():
    for path in sorted(EXAMPLES.glob("*.yaml")):
        plan_set = load_plan_set(path)
        assert len(plan_set.plans) >= 3 and len(plan_set.questions) >= 3
        assert len(plan_set.situation.responses) >= 2  # the performative check applies
    assert len(list(EXAMPLES.glob("*.yaml"))) == 2


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"utilities": {"nope": {"Yes": 1}}}, None, "unknown question 'nope'"),
        ({"utilities": {"held": {"Yes": 1}}}, None, "missing \\['No'\\]"),
        ({"plans": []}, None, "at least one"),
        ({"colour": "red"}, "colour", "not a known field"),
        (
            {"questions": [{"name": "q", "outcomes": ["Yes", "No"], "phrasings": ["x"]}]},
            "questions[0]",
            "exactly once",
        ),
        ({"situation": {"camera": "news-article"}}, "situation", "title or a prefix"),
    ],
)
def test_bad_plan_sets_are_input_errors(tmp_path, change, field, words):
    path = write(tmp_path / "p.yaml", PLAN_SET | change)
    with pytest.raises(InputError, match=words) as caught:
        load_plan_set(path)
    assert caught.value.source == str(path) and caught.value.field == field
    assert caught.value.fix


def test_each_plan_is_predicted_checked_and_stored(model, tmp_path):
    path = write(tmp_path / "p.yaml", PLAN_SET)
    with Store(tmp_path / "runs.db") as store:
        result = plan(path, model, samples=2, max_tokens=4, store=store)
        run = store.get_run(result.run_id)
        assert run.kind == "plan" and run.status == "done"
        assert len(store.samples(run.id, 1)) == 2 and len(store.conditionals(run.id)) == 2
        stored = store.check_results(run.id, 0)
    plan_set = load_plan_set(path)
    for row, option in zip(result.rows, plan_set.plans, strict=True):
        conditional = plan_set.plan_conditional(option)
        assert option.carried_out in conditional.world
        for question in plan_set.questions:
            direct = outcomes(conditional, question.outcomes, model, phrasings=question.phrasings)
            assert row["distributions"][question.name]["probs"] == pytest.approx(direct.probs)
        checks = [(c["check"], c["question"], c["sample"]) for c in row["checks"]]
        assert checks == [
            ("performative", "held", None),
            ("performative", "mood", None),
            ("ai_author", None, 0),
            ("ai_author", None, 1),
        ]
    assert [r.check for r in stored] == ["performative", "performative", "ai_author", "ai_author"]


def test_expected_utility_by_hand(model, tmp_path):
    result = plan(write(tmp_path / "p.yaml", PLAN_SET), model, samples=0)
    for row in result.rows:
        held = row["distributions"]["held"]
        by_phrasing = [4 * p[0] - 2 * p[1] for p in held["by_phrasing"]]
        eu = row["expected_utility"]
        assert eu["value"] == pytest.approx(4 * held["probs"][0] - 2 * held["probs"][1])
        assert (eu["low"], eu["high"]) == pytest.approx((min(by_phrasing), max(by_phrasing)))
        assert row["checks"][-1]["check"] == "performative"  # no samples, no ai_author
    no_utilities = plan(write(tmp_path / "q.yaml", PLAN_SET | {"utilities": {}}), model, samples=0)
    assert all(row["expected_utility"] is None for row in no_utilities.rows)


def test_an_interrupted_plan_run_resumes(model, tmp_path):
    path = write(tmp_path / "p.yaml", PLAN_SET)
    with Store(tmp_path / "runs.db") as store:
        whole = plan(path, model, samples=0)
        # per question: one batch for the plan and the camera alone, then one for each of
        # performative's two responses and the plan as given
        calls_per_plan = 2 * (1 + 3)
        with pytest.raises(KeyboardInterrupt):
            plan(path, InterruptAfter(model, calls_per_plan), samples=0, store=store)
        run = store.list_runs(limit=1)[0]
        assert store.item_indices(run.id, PlanRow.table) == {0}
        resumed = resume_plans(run.id, store, model)
    for got, expected in zip(resumed.rows, whole.rows, strict=True):
        for name, dist in expected["distributions"].items():
            assert got["distributions"][name]["probs"] == pytest.approx(dist["probs"], abs=1e-9)


def test_cli_runs_an_example_and_refuses_a_bad_file(tiny_model_dir, tmp_path, capsys):
    example = EXAMPLES / "compute-governance.yaml"
    args = ["plan", str(example), "--model", str(tiny_model_dir), "--samples", "1"]
    code, stdout, _ = run_cli(capsys, *args, "--max-tokens", "3", "--db", str(tmp_path / "r.db"))
    assert code == 0 and "Not ranked" in stdout and "chip registry" in stdout
    bad = write(tmp_path / "bad.yaml", PLAN_SET | {"utilities": {"held": {"Yes": 1}}})
    code, _, err = run_cli(capsys, "plan", str(bad), "--db", str(tmp_path / "r.db"))
    assert code == 2 and "Traceback" not in err and "missing ['No']" in err


@pytest.mark.slow
def test_an_example_on_the_embedded_model(default_model, tmp_path):
    """Two plans and one question of an example, with one sampled report each, end to end."""
    data = yaml.safe_load((EXAMPLES / "lab-deployment-policy.yaml").read_text())
    data |= {"plans": data["plans"][:2], "questions": data["questions"][:1]}
    data["utilities"] = {"misuse incident": data["utilities"]["misuse incident"]}
    result = plan(write(tmp_path / "p.yaml", data), default_model, samples=1, max_tokens=24)
    for row in result.rows:
        assert sum(row["distributions"]["misuse incident"]["probs"]) == pytest.approx(1)
        assert {c["check"] for c in row["checks"]} == {"performative", "ai_author"}
        assert row["samples"][0].strip()
