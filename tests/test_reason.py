"""reason: the arithmetic check on known calculations (and on GSM8K's own annotations), the gate
on a scripted expert whose wrong and right steps are known (the checks run for real on the tiny
model), a run on the tiny model stored, interrupted and resumed to the same rows, the input
errors, the CLI's output contract and the report section."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from condpred import Store
from condpred.checks import get_check
from condpred.checks.arithmetic import equations
from condpred.errors import InputError
from condpred.experiments.reason import ReasonRow, load_reason_input, run_reason
from condpred.experiments.runner import read_rows, resume
from condpred.model.base import Sample
from condpred.model.hf import HFModel
from tests.test_cli import run_cli

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "reason"
GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "test.jsonl"
QUIET_AI_AUTHOR = "ai_author:warn_above=1.0:fail_above=1.0"  # runs, never gates (random model)


# --- the arithmetic check -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "verdicts"),
    [
        ("She has 16 - 3 - 4 = 9 eggs and makes 9 * $2 = $18.", [True, True]),
        ("So 12 x 3 = 38 bolts.", [False]),
        ("10/3 = 3.33, roughly 10/3 = 3, not 10/3 = 3.4", [True, True, False]),
        ("(5 + 3) * 2 = 16 and 1,000 + 500 = 1,500", [True, True]),
        ("8 \u00f7 2 = 5 but 3 \u00d7 4 = 12", [False, True]),
        ("In 2019 = the year; x = 5; 60g * 4/5 = 240g/5 = 48g; 3 / 6 = 50%", []),
    ],
)
def test_equations_hold_or_not_as_computed_by_hand(text, verdicts):
    assert [e["holds"] for e in equations(text)] == verdicts


def test_the_check_fails_a_sample_with_a_wrong_calculation(tiny_model_dir):
    from condpred.checks.base import CheckInput
    from condpred.condition import Conditional

    model = HFModel.from_pretrained(tiny_model_dir, spec="tiny", device="cpu")
    samples = [
        _sample(" 2 + 2 = 4.", 0),
        _sample(" 2 + 2 = 5, and 3 + 3 = 6.", 1),
        _sample(" no", 2),
    ]
    given = CheckInput(model, Conditional(prefix="Sums:"), "Sums:", samples)
    results = get_check("arithmetic").run(given)
    assert [(r.verdict, r.value) for r in results] == [("pass", 0), ("fail", 0.5), ("pass", 0)]
    assert "2 + 2 = 5" in results[1].message
    lenient = get_check("arithmetic:fail_above=0.6").run(given)
    assert [r.verdict for r in lenient] == ["pass", "warn", "pass"]


@pytest.mark.skipif(not GSM8K.is_file(), reason=f"GSM8K is not at {GSM8K}")
def test_gsm8k_calculator_annotations_hold_and_changed_results_do_not():
    """The dataset's own calculations (`<<48/2=24>>`) on its first 300 problems: every one the
    check reads holds; with the last digit of the result changed, none does."""
    lines = GSM8K.read_text().splitlines()[:300]
    pairs = [m.groups() for line in lines for m in re.finditer(r"<<([^<>=]*)=([^<>=]*)>>", line)]
    read = [(e, r) for e, r in pairs if equations(f"{e} = {r}")]
    assert len(read) > 0.9 * len(pairs)
    assert all(equations(f"{e} = {r}")[0]["holds"] for e, r in read)
    changed = [(e, r[:-1] + str((int(r[-1]) + 1) % 10)) for e, r in read if r[-1].isdigit()]
    assert len(changed) > 0.9 * len(read)
    assert not any(equations(f"{e} = {c}")[0]["holds"] for e, c in changed)


# --- the gate, on a scripted expert -------------------------------------------------------------


def _sample(text: str, index: int = 0) -> Sample:
    return Sample(text=text, token_logprobs=[-1.0], tokens=["x"], finish_reason="stop", index=index)


class ScriptedExpert:
    """The tiny model for scoring (so the checks run on a real model), with steps whose
    rightness is known: `script[k]` is the list of texts drawn for step k, one per draw."""

    def __init__(self, model: HFModel, script: dict[int, list[str]], answer: str = " 7") -> None:
        self.model, self.script, self.answer, self.spec = model, script, answer, "scripted"
        self.draws: dict[int, int] = {}

    def sample(self, context, n, params, start=0):
        step = re.search(r"Step (\d+)\.\n*$", context)  # a blank line goes on below
        if step is None:  # the greedy answer line after `####`
            return [_sample(self.answer)]
        k = int(step.group(1))
        texts = []
        for _ in range(n):
            draw = self.draws.get(k, 0)
            self.draws[k] = draw + 1
            texts.append(self.script[k][min(draw, len(self.script[k]) - 1)])
        return [_sample(t, i) for i, t in enumerate(texts)]

    def __getattr__(self, name):
        return getattr(self.model, name)


def _file(tmp_path: Path, problems: str) -> Path:
    path = tmp_path / "doc.yaml"
    path.write_text(
        "camera: plain\nauthors: [Margaret Ellis]\ntitle: Answer key\n"
        f"extra:\n  problems:\n{problems}\nprefix: Solution.\n"
    )
    return path


def test_the_gate_resamples_a_wrong_step_and_stops_a_chain_that_stays_wrong(
    tmp_path, tiny_model_dir
):
    tiny = HFModel.from_pretrained(tiny_model_dir, spec="tiny", device="cpu")
    file = _file(tmp_path, "    - {question: 'What is 3 times 4?', answer: 12}")
    script = {1: [" 3 * 4 = 13.", " 3 * 4 = 12."], 2: [" #### 12"]}
    checks = ["arithmetic", QUIET_AI_AUTHOR]
    gated = run_reason(file, ScriptedExpert(tiny, script), use_gate=True, checks=checks)
    assert [s.text for s in gated.rows[0].steps] == [" 3 * 4 = 12.", " #### 12"]
    assert [s.resampled for s in gated.rows[0].steps] == [1, 0]
    assert gated.rows[0].verdict == "correct" and gated.rows[0].stopped == "answer"
    assert gated.rows[0].direct_answer == "7" and gated.rows[0].direct_verdict == "wrong"
    assert gated.summary["gate"] == {
        "on": True, "steps_rejected": 1, "chains_stopped": 0, "steps_kept": 2
    }  # fmt: skip
    acc = gated.summary["accuracy"]
    assert acc["reason"]["accuracy"] == 1 and acc["difference"]["reason_minus_direct"] == 1

    ungated = run_reason(file, ScriptedExpert(tiny, script), checks=checks)
    first = ungated.rows[0].steps[0]
    assert first.text == " 3 * 4 = 13." and first.resampled == 0
    assert {c["check"]: c["verdict"] for c in first.checks} == {
        "arithmetic": "fail", "ai_author": "pass"
    }  # fmt: skip

    always_wrong = {1: [" 3 * 4 = 13."]}
    stopped = run_reason(
        file, ScriptedExpert(tiny, always_wrong), use_gate=True, max_resamples=2, checks=checks
    )
    row = stopped.rows[0]
    assert row.steps == [] and row.stopped.startswith("gate: step 1 failed 3 rounds")
    assert "3 * 4 = 13" in row.stopped and row.gate_stops == 1
    # the chain without steps still gets an answer line; the two-candidate step keeps the good one
    assert row.answer == "7"
    # the answer line is the first non-blank line after `####`; step labels are never the answer
    late = ScriptedExpert(tiny, {1: [" I add them."]}, answer="\n12\nProblem 2.")
    assert run_reason(file, late, steps=1, checks=[]).rows[0].answer == "12"
    blank = ScriptedExpert(tiny, {1: [" I add them."]}, answer="\n\n")
    assert run_reason(file, blank, steps=1, checks=[]).rows[0].verdict == "unparseable"
    # a step is the first non-blank line after `Step k.`: a label on a line of its own goes on
    heading = ScriptedExpert(tiny, {1: ["", " 3 * 4 = 12."], 2: [" #### 12"]})
    below = run_reason(file, heading, checks=["arithmetic"]).rows[0]
    assert [s.text for s in below.steps] == ["\n 3 * 4 = 12.", " #### 12"]
    assert below.verdict == "correct" and below.steps[0].candidates == 1
    assert below.steps[0].checks[0]["verdict"] == "pass"  # the check read the line below
    silent = run_reason(file, ScriptedExpert(tiny, {1: [""]}), steps=1, checks=[]).rows[0]
    assert silent.steps[0].text == "\n\n"  # two blank lines passed over, then it stays empty
    # a symbolic (MATH) answer: the `####` line is what math-verify reads, whole
    polar = tmp_path / "polar.yaml"
    gold = "'\\left( 3, \\frac{\\pi}{2} \\right)'"
    polar.write_text(f"prefix: Solution.\nextra: {{problems: [{{question: P, answer: {gold}}}]}}")
    tex = {1: [" #### \\left( 3, \\frac{\\pi}{2} \\right)."]}  # the whole text would read 3
    symbolic = run_reason(polar, ScriptedExpert(tiny, tex, answer=" 3"), checks=[]).rows[0]
    assert symbolic.verdict == "correct" and symbolic.direct_verdict == "wrong"
    two = run_reason(
        file, ScriptedExpert(tiny, script), samples=2, use_gate=True, steps=1, checks=checks
    )
    assert two.rows[0].steps[0].text == " 3 * 4 = 12." and two.rows[0].steps[0].resampled == 0


class DecomposingExpert:
    """The tiny model for the checks; sub-questions, answers and the final line scripted, and
    every context it was asked to continue kept (each answer's own document)."""

    def __init__(self, model: HFModel, answers: dict[str, list[str]]) -> None:
        self.model, self.answers, self.spec, self.contexts = model, answers, "scripted", []
        self.questions = [" What is 3 times 4?", " What is that plus 2?", ""]

    def sample(self, context, n, params, start=0):
        self.contexts.append(context)
        if re.search(r"Sub-question (\d+)\.\n*$", context):
            k = int(re.findall(r"Sub-question (\d+)\.", context)[-1])
            return [_sample(self.questions[min(k, 3) - 1], i) for i in range(n)]
        if context.endswith("Answer."):
            key = context.rsplit("Question. ", 1)[1].split("\n")[0]
            return [_sample(self.answers[key].pop(0), i) for i in range(n)]
        return [_sample(" 14")]  # the final `####` line (and the direct one)

    def __getattr__(self, name):
        return getattr(self.model, name)


def test_decomposition_answers_each_sub_question_in_its_own_document(tmp_path, tiny_model_dir):
    tiny = HFModel.from_pretrained(tiny_model_dir, spec="tiny", device="cpu")
    file = _file(tmp_path, "    - {question: 'What is 3 times 4, plus 2?', answer: 14}")
    answers = {
        "What is 3 times 4?": [" 3 * 4 = 13.", " 3 * 4 = 12."],  # the gate resamples the first
        "What is that plus 2?": [" 12 + 2 = 14."],
    }
    expert = DecomposingExpert(tiny, answers)
    result = run_reason(file, expert, decompose=True, use_gate=True, checks=["arithmetic"])
    row = result.rows[0]
    assert [(s.part, s.text) for s in row.steps] == [
        ("sub-question", " What is 3 times 4?"), ("sub-question", " What is that plus 2?"),
        ("answer", " 3 * 4 = 12."), ("answer", " 12 + 2 = 14."),
    ]  # fmt: skip
    assert [s.resampled for s in row.steps] == [0, 0, 1, 0] and row.gate_stops == 1
    assert row.stopped == "end of the sub-questions" and row.verdict == "correct"
    pages = [c for c in expert.contexts if c.endswith("Answer.")]
    assert len(pages) == 3 and "Sub-question" not in pages[-1]  # each on its own page
    assert "Question. What is that plus 2?" in pages[-1] and "times 4?" not in pages[-1][-40:]
    final = next(c for c in expert.contexts if c.endswith("####") and "Answer 2." in c)
    assert final.endswith("Sub-question 2. What is that plus 2?\nAnswer 2. 12 + 2 = 14.\n####")
    item = result.summary
    assert [s.get("part") for s in item["steps"]][:2] == ["sub-question"] * 2
    assert row.steps[0].label == "Sub-question 1."


# --- runs on the tiny model ---------------------------------------------------------------------


class Interrupting:
    """A model that raises KeyboardInterrupt after `budget` sample calls (a Ctrl-C mid-run)."""

    def __init__(self, model, budget: int) -> None:
        self.model, self.budget = model, budget

    def sample(self, *args, **kwargs):
        self.budget -= 1
        if self.budget < 0:
            raise KeyboardInterrupt
        return self.model.sample(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.model, name)


def test_a_run_is_stored_interrupted_and_resumed_to_the_same_rows(tmp_path, tiny_model_dir):
    def load(spec):
        return HFModel.from_pretrained(tiny_model_dir, spec=spec, device="cpu")

    file = EXAMPLES / "gsm8k-worked-solutions.yaml"
    args = dict(steps=2, max_tokens=5, checks=["arithmetic"], use_gate=True)
    with Store(tmp_path / "runs.db") as store:
        whole = run_reason(file, load("tiny"), store=store, **args)
        assert store.get_run(whole.run_id).status == "done" and len(whole.rows) == 2
        with pytest.raises(KeyboardInterrupt):  # the first problem takes 4 sample calls
            run_reason(file, Interrupting(load("tiny"), 5), store=store, **args)
        broken = store.list_runs(limit=1)[0]
        assert broken.status == "interrupted" and len(store.items(broken.id, "reason")) == 1
        resume(broken.id, store, load)  # the generic resume (condpred resume ID)
        assert store.get_run(broken.id).status == "done"
        resumed = read_rows(store, broken.id, ReasonRow)
        stored = store.samples(broken.id, 1)
        results = store.check_results(broken.id, 1)
        document = store.conditionals(broken.id)[1].rendered
    strip = {"sample_s", "check_s"}
    assert [r.model_dump(exclude=strip) for r in resumed] == [
        r.model_dump(exclude=strip) for r in whole.rows
    ]
    steps = resumed[1].steps
    answer_line = "####" not in "".join(s.text for s in steps)  # drawn after the chain
    assert len(stored) == sum(s.candidates for s in steps) + answer_line + 1  # + the direct one
    assert sorted(s.index for s in stored) == list(range(len(stored)))
    assert {r.check for r in results} == {"arithmetic"}
    assert "Problem. A robe takes 2 bolts" in document and document.endswith("after ####.")


def test_input_errors_name_the_file_the_field_and_every_problem(tmp_path, tiny_model_dir):
    bad = _file(tmp_path, "    - {question: 'ok?'}\n    - 42\n    - {q: 'typo'}")
    with pytest.raises(InputError) as error:
        load_reason_input(bad)
    message = str(error.value)
    assert str(bad) in message and "extra.problems" in message
    assert "item 1" in message and "item 2" in message and "item 0" not in message
    none = tmp_path / "none.yaml"
    none.write_text("camera: plain\nprefix: Solution.\n")
    with pytest.raises(InputError, match="no problem given"):
        load_reason_input(none)
    referee = load_reason_input(EXAMPLES / "referee-report.yaml")
    assert len(referee.problems) == 1 and referee.problems[0].gold == ""


def test_the_command_writes_the_out_contract_and_the_report_shows_the_chain(
    tmp_path, tiny_model_dir, capsys, monkeypatch
):
    monkeypatch.setenv("CONDPRED_DB", str(tmp_path / "runs.db"))
    out = tmp_path / "out.json"
    file = str(EXAMPLES / "referee-report.yaml")
    code, stdout, stderr = run_cli(
        capsys, "reason", file, "--model", str(tiny_model_dir), "--steps", "2",
        "--max-tokens", "4", "--gate", "--checks", f"arithmetic,{QUIET_AI_AUTHOR}",
        "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    result = json.loads(out.read_text())
    assert "items" not in result and {"steps", "answer"} <= set(result)
    assert all(set(s) == {"index", "text", "checks", "resampled"} for s in result["steps"])
    assert [s["index"] for s in result["steps"]] == list(range(1, len(result["steps"]) + 1))
    assert "stored as run" in stdout and "gate on" in stdout
    code, _, stderr = run_cli(capsys, "report", result["run_id"], "--out", str(tmp_path / "r.html"))
    assert code == 0, stderr
    html = (tmp_path / "r.html").read_text()
    assert "Gate and throughput" in html and "Problem problem 0" in html
    code, stdout, _ = run_cli(
        capsys, "reason", str(EXAMPLES / "gsm8k-worked-solutions.yaml"), "--model",
        str(tiny_model_dir), "--steps", "1", "--max-tokens", "3", "--checks", "none", "--json",
    )  # fmt: skip
    several = json.loads(stdout)
    assert len(several["items"]) == 2 and several["accuracy"]["problems"] == 2
    code, stdout, _ = run_cli(
        capsys, "reason", str(EXAMPLES / "gsm8k-worked-solutions.yaml"), "--model",
        str(tiny_model_dir), "--steps", "1", "--max-tokens", "3", "--checks", "none", "--json",
        "--decompose",
    )  # fmt: skip
    parts = {s.get("part") for item in json.loads(stdout)["items"] for s in item["steps"]}
    assert code == 0 and parts <= {"sub-question", "answer"}
    code, _, stderr = run_cli(capsys, "reason", str(tmp_path / "missing.yaml"))
    assert code == 2 and "missing.yaml" in stderr
    code, _, stderr = run_cli(capsys, "reason", file, "--checks", "no_such_check")
    assert code == 2 and "arithmetic" in stderr  # the registered checks are listed
