"""The surprisal, consistency and performative checks: their arithmetic against hand-computed
values, their numbers against `model.score` recomputed by hand (tiny random Gemma-3), every bad
input as an InputError, and a few runs on the embedded gemma-3-270m (slow)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest

from condpred.checks import available_checks, get_check, run_checks
from condpred.checks._probes import add_years, outcomes_of, rewrite_date, score_outcomes
from condpred.checks.base import CheckInput, CheckResult
from condpred.checks.consistency import ConsistencyCheck, date_drops, paraphrases, reword
from condpred.checks.performative import PerformativeCheck
from condpred.checks.surprisal import SurprisalCheck, split_premises
from condpred.condition import Conditional, load_conditional, render
from condpred.errors import InputError
from condpred.model.base import Sample
from condpred.model.hf import HFModel
from condpred.probability import (
    effective_sample_size,
    js_divergence,
    kl_bits,
    logsumexp,
    normalise,
    pairwise,
    self_normalised_weights,
    tv_distance,
)

LN2 = math.log(2)
TOL = 1e-4  # float32 batches of different sizes agree to about 1e-6 (test_hf_backend: 1e-4)
EXAMPLES = Path(__file__).parent.parent / "examples"
PREMISES = ["A global moratorium on frontier AI training has held since 2027.", "Members agreed."]
QUESTION = "Question: Will the treaty be ratified by January 1, 2030? Answer:"


@pytest.fixture(scope="module")
def model(tiny_model_dir) -> HFModel:
    return HFModel.from_pretrained(tiny_model_dir, device="cpu")


def conditional(**fields) -> Conditional:
    """A conditional in the tiny model's vocabulary (it knows only its training corpus)."""
    base = {
        "camera": "news-article",
        "date": "2031-03-03",
        "title": "The alignment paper was published",
        "world": PREMISES,
        "prefix": QUESTION,
        "extra": {"outcomes": [" Yes", " No"]},
        "responses": ["The treaty was published.", "Members agreed."],
    }
    return Conditional.model_validate(base | fields)


def given(model, cond: Conditional, samples=(), cameras_dir=None) -> CheckInput:
    return CheckInput(model, cond, render(cond, cameras_dir), list(samples), cameras_dir)


def sample(index: int, text: str) -> Sample:
    return Sample(text, [], [], "length", index)


SAMPLES = [sample(0, " Yes. The paper"), sample(1, " No"), sample(2, " Maybe.")]


def lp(model, context: str, text: str) -> float:
    return model.score(context, [text])[0].logprob


def dist(model, context: str, outcomes: list[str]) -> list[float]:
    """P over outcomes, normalised by hand."""
    probs = [math.exp(lp(model, context, o)) for o in outcomes]
    return [p / sum(probs) for p in probs]


def only(results: list[CheckResult], check: str) -> CheckResult:
    [result] = [r for r in results if r.check == check]
    return result


# --- _math: known distributions -------------------------------------------------------------


def test_js_divergence_of_known_distributions():
    assert js_divergence([0.3, 0.7], [0.3, 0.7]) == 0.0
    assert js_divergence([1.0, 0.0], [0.0, 1.0]) == pytest.approx(1.0)
    assert js_divergence([0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]) == pytest.approx(1.0)
    # p = (1/2, 1/2), q = (1, 0), m = (3/4, 1/4)
    expected = 0.5 * (0.5 * math.log2(2 / 3) + 0.5 * math.log2(2)) + 0.5 * math.log2(4 / 3)
    assert js_divergence([0.5, 0.5], [1.0, 0.0]) == pytest.approx(expected)
    assert js_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(expected)  # symmetric
    assert kl_bits([1.0, 0.0], [0.0, 1.0]) == math.inf


def test_tv_distance_of_known_distributions():
    assert tv_distance([0.5, 0.5], [1.0, 0.0]) == pytest.approx(0.5)
    assert tv_distance([0.2, 0.3, 0.5], [0.5, 0.3, 0.2]) == pytest.approx(0.3)
    assert tv_distance([1.0, 0.0], [0.0, 1.0]) == 1.0
    assert tv_distance([0.25, 0.75], [0.25, 0.75]) == 0.0


def test_normalise_and_logsumexp():
    assert normalise([math.log(1), math.log(3)]) == pytest.approx([0.25, 0.75])
    assert normalise([-1000.0, -1000.0]) == pytest.approx([0.5, 0.5])  # no underflow
    assert logsumexp([1000.0, 1000.0]) == pytest.approx(1000 + math.log(2))
    assert logsumexp([]) == -math.inf
    with pytest.raises(ValueError):
        normalise([-math.inf, -math.inf])


def test_pairwise_and_importance_weights():
    assert pairwise([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], tv_distance) == [
        (0, 1, 1.0),
        (0, 2, 0.5),
        (1, 2, 0.5),
    ]
    # target 1:2:1 over samples drawn from a proposal 1:1:2 -> weights 1:2:0.5
    target = [math.log(0.25), math.log(0.5), math.log(0.25)]
    proposal = [math.log(0.25), math.log(0.25), math.log(0.5)]
    assert self_normalised_weights(target, proposal) == pytest.approx([1 / 3.5, 2 / 3.5, 0.5 / 3.5])
    assert effective_sample_size([0.25] * 4) == pytest.approx(4)
    assert effective_sample_size([1.0, 0.0]) == pytest.approx(1)


def test_distributions_must_match():
    with pytest.raises(ValueError, match="different outcome sets"):
        tv_distance([0.5, 0.5], [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="not a probability distribution"):
        js_divergence([0.5, 0.6], [0.5, 0.5])


# --- _probes: outcomes and dates ---------------------------------------------------------------


def test_rewrite_date_matches_whole_written_dates_longest_first():
    day = dt.date(2031, 3, 3)
    text = "Monday 3 March 2031; March 3, 2031; 13 March 2031; 2031-03-03; 3rd Mar 2031; 2031"
    rewritten, count = rewrite_date(text, day, lambda style: f"<{style}>")
    assert count == 4
    assert rewritten == "<weekday-dmy>; <long>; 13 March 2031; <iso>; <forum>; 2031"


def test_add_years_keeps_the_day():
    assert add_years(dt.date(2029, 1, 1), 5) == dt.date(2034, 1, 1)
    assert add_years(dt.date(2028, 2, 29), 1) == dt.date(2029, 2, 28)


@pytest.mark.parametrize(
    ("outcomes", "problem"),
    [
        ([" Yes"], "at least two different outcomes"),
        ([" Yes", " Yes"], "at least two different outcomes"),
        ([" Yes", ""], "an outcome is empty"),
        ([" Yes", "  "], "an outcome is empty"),
        (" Yes", "must be a list of texts"),
        ([" Yes", 1], "must be a list of texts"),
        ([" 5", " 50"], "is the start of"),
    ],
)
def test_bad_outcomes_are_input_errors(outcomes, problem):
    with pytest.raises(InputError, match=problem) as error:
        outcomes_of(conditional(extra={"outcomes": outcomes}))
    assert error.value.field == "extra.outcomes" and error.value.fix


def test_an_outcome_that_tokenises_to_nothing_is_an_input_error(model):
    # The tiny tokenizer knows only its corpus's characters and drops the rest.
    assert model.score("Answer:", ["€"])[0].tokens == []
    with pytest.raises(InputError, match="tokenises to nothing") as error:
        score_outcomes(model, "Answer:", [" Yes", "€"])
    assert error.value.field == "extra.outcomes"
    with pytest.raises(InputError, match="tokenises to nothing"):
        run_checks(["performative"], given(model, conditional(extra={"outcomes": [" Yes", "€"]})))


def test_the_three_checks_are_found_by_name():
    assert {"surprisal", "consistency", "performative"} <= set(available_checks())
    assert get_check("surprisal").name == "surprisal"


# --- surprisal -------------------------------------------------------------------------------


def test_split_premises_finds_the_span_only_the_premises_add():
    cond = conditional(camera="alignment-forum-post", prefix="Cats are", extra={})
    before, span, after = split_premises(render(cond), render(cond.without_premises()))
    assert span == "Context: " + " ".join(PREMISES)  # the shared "C" of "Cats" is not cut off
    assert before + span + after == render(cond)
    assert before + after.removeprefix("\n\n") == render(cond.without_premises())
    plain = conditional(camera="plain")
    before, span, after = split_premises(render(plain), render(plain.without_premises()))
    assert (before, span) == ("", "\n".join(PREMISES))


def test_surprisal_numbers_equal_model_scores_by_hand(model):
    cond = conditional()
    with_, without = render(cond), render(cond.without_premises())
    results = SurprisalCheck().run(given(model, cond, SAMPLES))

    rendered = only(results, "surprisal.rendered")
    token_lps = model.score("", [with_])[0].token_logprobs
    assert rendered.value == pytest.approx(-sum(token_lps) / len(token_lps) / LN2, abs=TOL)
    assert rendered.evidence["max_bits"] == pytest.approx(-min(token_lps) / LN2)

    premises = only(results, "surprisal.premises")
    before, span, after = split_premises(with_, without)
    span_score = model.score(before, [span])[0]
    assert premises.value == pytest.approx(
        -span_score.logprob / len(span_score.tokens) / LN2, abs=TOL
    )
    rest_pmi = (lp(model, before + span, after) - lp(model, before, without[len(before) :])) / LN2
    assert premises.evidence["premise_bits"] == pytest.approx(-span_score.logprob / LN2)
    assert premises.evidence["rest_pmi_bits"] == pytest.approx(rest_pmi, abs=TOL)
    assert premises.evidence["shift_bits"] == pytest.approx(
        rest_pmi + span_score.logprob / LN2, abs=TOL
    )
    # the shift is log P(with) - log P(without), up to how tokens merge at the span's edges
    full_shift = (lp(model, "", with_) - lp(model, "", without)) / LN2
    assert premises.evidence["shift_bits"] == pytest.approx(full_shift, abs=0.05 * abs(full_shift))


def test_pmi_per_sample_equals_model_scores_by_hand(model):
    cond = conditional()
    with_, without = render(cond), render(cond.without_premises())
    pmis = [r for r in SurprisalCheck().run(given(model, cond, SAMPLES)) if r.check.endswith("pmi")]
    assert [r.sample_index for r in pmis] == [0, 1, 2]
    for s, result in zip(SAMPLES, pmis, strict=True):
        expected = (lp(model, with_, s.text) - lp(model, without, s.text)) / LN2
        assert result.value == pytest.approx(expected, abs=TOL)
        assert result.verdict == "pass" and result.threshold is None  # reported, not gated


def test_surprisal_thresholds_warn_and_fail(model):
    results = SurprisalCheck(warn_premise_bits=0.0, fail_premise_bits=0.5).run(
        given(model, conditional())
    )
    assert only(results, "surprisal.premises").verdict == "fail"
    calm = SurprisalCheck(warn_premise_bits=1e9, warn_rendered_bits=None, warn_pmi_bits=-1e9)
    results = calm.run(given(model, conditional(), SAMPLES))
    assert {r.check: r.verdict for r in results if r.sample_index is None} == {
        "surprisal.rendered": "pass",
        "surprisal.premises": "pass",
    }
    assert all(r.verdict == "warn" for r in results if r.sample_index is not None)


def test_surprisal_without_premises_reports_the_rendering_alone(model):
    results = SurprisalCheck().run(given(model, conditional(world=[]), SAMPLES))
    assert [r.check for r in results] == ["surprisal.rendered"]
    assert "no premises" in results[0].message


def test_surprisal_with_a_camera_that_ignores_premises(model, tmp_path):
    (tmp_path / "bare.j2").write_text("{{ title }}\n{{ prefix }}")
    cond = conditional(camera="bare")
    results = SurprisalCheck().run(given(model, cond, SAMPLES, cameras_dir=tmp_path))
    assert [r.check for r in results] == ["surprisal.rendered"]
    assert "does not write the premises" in results[0].message


# --- consistency -----------------------------------------------------------------------------


def test_reword_keeps_names_and_acronyms():
    assert reword("The lab uses a base model.") == "It is the case that the lab uses a base model."
    assert (
        reword("Alignment research is done.") == "It is the case that alignment research is done."
    )
    assert reword("Paul Christiano wrote it.") == "It is the case that Paul Christiano wrote it."
    assert reword("AI tools are used.") == "It is the case that AI tools are used."
    assert reword("A moratorium holds.") == "It is the case that a moratorium holds."
    assert reword("I agree.") == "It is the case that I agree."


def test_paraphrases_vary_one_thing_each(model):
    cond = conditional()
    variants = paraphrases(cond, render(cond), None, ("plain", "news-article"))
    assert list(variants) == [
        "original",
        "date in another style",
        "premises reordered",
        "premises reworded",
        "camera plain",
    ]
    assert "3 March 2031 —" in variants["date in another style"]
    assert "Members agreed. A global" in variants["premises reordered"]
    assert "It is the case that a global moratorium" in variants["premises reworded"]
    bare = conditional(camera="plain", date=None, world=[])
    assert list(paraphrases(bare, render(bare), None, ("plain",))) == ["original"]


def test_paraphrase_js_equals_model_scores_by_hand(model):
    cond = conditional()
    result = only(ConsistencyCheck().run(given(model, cond)), "consistency.paraphrase")
    outcomes = [" Yes", " No"]
    dists = [dist(model, text, outcomes) for text in result.evidence["renderings"].values()]
    js = [js_divergence(p, q) for i, p in enumerate(dists) for q in dists[i + 1 :]]
    assert len(dists) == 5
    assert result.value == pytest.approx(max(js), abs=TOL)
    assert result.evidence["mean_js_bits"] == pytest.approx(sum(js) / len(js), abs=TOL)
    assert result.verdict == ("warn" if max(js) > 0.1 else "pass")


def test_paraphrase_without_outcomes_cross_scores_the_samples(model):
    cond = conditional(extra={})
    result = only(ConsistencyCheck().run(given(model, cond, SAMPLES)), "consistency.paraphrase")
    texts = list(result.evidence["renderings"].values())
    spreads = []
    for s in SAMPLES:
        scores = [model.score(text, [s.text])[0] for text in texts]
        lps = [x.logprob for x in scores]
        spreads.append((max(lps) - min(lps)) / LN2 / len(scores[0].tokens))
    assert result.value == pytest.approx(sum(spreads) / len(spreads), abs=TOL)


def test_coherence_and_negation_by_hand(model):
    negated_title = "The alignment paper was not published"
    cond = conditional(extra={"outcomes": [" Yes", " No"], "negation": {"title": negated_title}})
    results = ConsistencyCheck().run(given(model, cond))
    text = render(cond)
    mass = math.exp(lp(model, text, " Yes")) + math.exp(lp(model, text, " No"))
    assert only(results, "consistency.coherence").value == pytest.approx(1 - mass, abs=TOL)
    p_q = dist(model, text, [" Yes", " No"])[0]
    p_not_q = dist(model, render(cond.with_(title=negated_title)), [" Yes", " No"])[0]
    negation = only(results, "consistency.negation")
    assert negation.value == pytest.approx(abs(p_q + p_not_q - 1), abs=TOL)


def test_coherence_needs_exactly_two_outcomes(model):
    cond = conditional(extra={"outcomes": [" Yes", " No", " Maybe"]})
    checks = [r.check for r in ConsistencyCheck().run(given(model, cond))]
    assert checks == ["consistency.paraphrase"]


def test_date_drops_lists_every_later_deadline_that_loses_probability():
    assert date_drops([0.2, 0.5, 0.4, 0.1]) == [
        (0, 3, pytest.approx(0.1)),
        (1, 2, pytest.approx(0.1)),
        (1, 3, pytest.approx(0.4)),
        (2, 3, pytest.approx(0.3)),
    ]
    assert date_drops([0.1, 0.1, 0.3]) == []


def test_dates_rewrite_the_deadline_and_compare_by_hand(model):
    cond = conditional(extra={"outcomes": [" Yes", " No"], "by": "2030-01-01"})
    result = only(ConsistencyCheck(years=(1, 5)).run(given(model, cond)), "consistency.dates")
    assert result.evidence["deadlines"] == ["2030-01-01", "2031-01-01", "2035-01-01"]
    expected = [
        dist(
            model, render(cond.with_(prefix=QUESTION.replace("2030", str(year)))), [" Yes", " No"]
        )[0]
        for year in (2030, 2031, 2035)
    ]
    assert result.evidence["p"] == pytest.approx(expected, abs=TOL)
    drops = [p - q for i, p in enumerate(expected) for q in expected[i + 1 :] if q < p]
    assert result.value == pytest.approx(max(drops, default=0.0), abs=TOL)
    assert len(result.evidence["violations"]) == len(drops)


def test_a_deadline_not_written_in_the_text_is_an_input_error(model):
    cond = conditional(extra={"outcomes": [" Yes", " No"], "by": "2040-06-01"})
    with pytest.raises(InputError, match="not written") as error:
        ConsistencyCheck().run(given(model, cond))
    assert error.value.field == "extra.by"
    with pytest.raises(InputError, match="ISO date"):
        ConsistencyCheck().run(
            given(model, conditional(extra={"outcomes": [" Yes", " No"], "by": "soon"}))
        )


def test_a_resolution_date_not_written_skips_the_date_probe(model):
    cond = conditional(extra={"outcomes": [" Yes", " No"], "resolves": "2040-06-01"})
    assert "consistency.dates" not in [r.check for r in ConsistencyCheck().run(given(model, cond))]


@pytest.mark.parametrize("samples", [[], [sample(0, "")]])
def test_consistency_without_outcomes_or_samples_is_an_input_error(model, samples):
    with pytest.raises(InputError, match="needs outcomes to score or samples") as error:
        ConsistencyCheck().run(given(model, conditional(extra={}), samples))
    assert "extra.outcomes" in error.value.fix


def test_bad_negation_is_an_input_error(model):
    cond = conditional(extra={"outcomes": [" Yes", " No"], "negation": "not"})
    with pytest.raises(InputError, match="negated values"):
        ConsistencyCheck().run(given(model, cond))


# --- performative ----------------------------------------------------------------------------


def response_renderings(cond: Conditional) -> list[str]:
    return [render(cond.with_(world=[*cond.world, r])) for r in cond.responses]


def test_performative_tv_on_outcomes_by_hand(model):
    cond = conditional(responses=["The treaty was published.", "Members agreed.", "Wow!"])
    [result] = PerformativeCheck().run(given(model, cond))
    dists = [dist(model, text, [" Yes", " No"]) for text in response_renderings(cond)]
    tvs = [tv_distance(p, q) for i, p in enumerate(dists) for q in dists[i + 1 :]]
    assert result.check == "performative" and result.sample_index is None
    assert result.value == pytest.approx(max(tvs), abs=TOL)
    assert result.evidence["mean_tv"] == pytest.approx(sum(tvs) / 3, abs=TOL)
    # with two outcomes TV is the difference in P(first outcome)
    assert tvs[0] == pytest.approx(abs(dists[0][0] - dists[1][0]))


def test_performative_on_samples_uses_importance_weights(model):
    cond = conditional(extra={})
    [result] = PerformativeCheck().run(given(model, cond, SAMPLES))
    given_lps = [lp(model, render(cond), s.text) for s in SAMPLES]
    weights = []
    for text in response_renderings(cond):
        ratios = [
            math.exp(lp(model, text, s.text) - g) for s, g in zip(SAMPLES, given_lps, strict=True)
        ]
        weights.append([r / sum(ratios) for r in ratios])
    assert result.value == pytest.approx(tv_distance(*weights), abs=TOL)
    assert result.evidence["effective_sample_size"][0] == pytest.approx(
        1 / sum(w * w for w in weights[0])
    )


@pytest.mark.parametrize("responses", [[], ["The treaty was published."], ["Wow!", "Wow!"]])
def test_fewer_than_two_responses_is_an_input_error(model, responses):
    with pytest.raises(InputError, match="at least two different responses") as error:
        PerformativeCheck().run(given(model, conditional(responses=responses)))
    assert error.value.field == "responses"
    assert "at least two possible responses" in error.value.fix


@pytest.mark.parametrize("samples", [[], [sample(0, "")]])
def test_performative_without_outcomes_or_samples_is_an_input_error(model, samples):
    with pytest.raises(InputError, match="needs outcomes to score or samples"):
        PerformativeCheck().run(given(model, conditional(extra={}), samples))


def test_a_camera_that_ignores_premises_cannot_condition_on_responses(model, tmp_path):
    (tmp_path / "bare.j2").write_text("{{ title }}\n{{ prefix }}")
    cond = conditional(camera="bare")
    with pytest.raises(InputError, match="same text for every response"):
        PerformativeCheck().run(given(model, cond, cameras_dir=tmp_path))


# --- the embedded gemma-3-270m on the example conditionals (slow) --------------------------


def example(name: str) -> Conditional:
    return load_conditional(EXAMPLES / name)


def forecast_yes_no() -> Conditional:
    """The forecast page, ending where a forecaster states how the question will resolve."""
    page = example("forecast-question.yaml")
    outcomes = {**page.extra, "outcomes": [" YES", " NO"]}
    return page.with_(prefix="I think this question will resolve", extra=outcomes)


@pytest.mark.slow
def test_surprisal_on_the_alignment_post(default_model):
    cond = example("alignment-paper-2031.yaml")
    results = {r.check: r for r in SurprisalCheck().run(given(default_model, cond))}
    premises = results["surprisal.premises"]
    assert premises.evidence["premise_span"].startswith("Context: No AI system more capable")
    assert 2 < premises.value < 7.5 and premises.verdict == "pass"  # 6.0 when measured
    assert (
        2 < results["surprisal.rendered"].value < 7
        and results["surprisal.rendered"].verdict == "pass"
    )
    assert premises.evidence["premise_bits"] > 100  # two sentences the camera did not promise


@pytest.mark.slow
def test_consistency_over_deadlines_on_the_forecast_page(default_model):
    cond = forecast_yes_no()
    results = {
        r.check: r for r in ConsistencyCheck(years=(5,), cameras=()).run(given(default_model, cond))
    }
    dates = results["consistency.dates"]
    assert dates.evidence["deadlines"] == ["2029-01-01", "2034-01-01"]
    assert dates.evidence["rewritten"] == 3  # the title, the resolution date and the criteria
    assert all(0.05 < p < 0.95 for p in dates.evidence["p"])
    assert dates.value < 0.05 and dates.verdict == "pass"  # 0.647 -> 0.641 when measured
    paraphrase = results["consistency.paraphrase"]
    assert list(paraphrase.evidence["renderings"]) == ["original", "date in another style"]
    assert paraphrase.value < 0.1  # June 1, 2026 vs 1 June 2026
    assert 0.3 < 1 - results["consistency.coherence"].value <= 1  # 0.62 on YES or NO


@pytest.mark.slow
def test_performative_on_the_forecast_pages_two_responses(default_model):
    [result] = PerformativeCheck().run(given(default_model, forecast_yes_no()))
    assert len(result.evidence["responses"]) == 2
    assert 0 < result.value < 0.2 and result.verdict == "pass"  # 0.04 when measured
    assert result.value == pytest.approx(result.evidence["mean_tv"])  # one pair
