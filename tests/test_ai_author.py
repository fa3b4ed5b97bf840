"""The ai_author check: probe arithmetic recomputed by hand, lexical tells, verdicts, validation
loader and rows (tiny model), and planted AI authors on the five examples (embedded model)."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from condpred import Author, Conditional, InputError, Sample, load_conditional, render
from condpred.checks import get_check
from condpred.checks.ai_author import (
    AI_AUTHORS,
    HUMAN_AUTHORS,
    PROBE_SETS,
    SIGNALS,
    AIAuthorCheck,
    Combiner,
    ProbeSet,
    ai_probability,
    author_ratio,
    first_words,
    lexical_hits,
    likelihood_signals,
    load_combiners,
    pick_combiner,
    probe_prior,
    probe_set,
    signals,
)
from condpred.checks.base import CheckInput
from condpred.checks.validation import (
    binoculars,
    combiner_record,
    compute_rows,
    fit_combiners,
    format_validation,
    load_pairs,
    opening,
    split,
    summarise_validation,
    validate_ai_author,
)
from condpred.elicit import Prediction, check
from condpred.model.hf import HFModel
from condpred.model.registry import same_model

CHECK = AIAuthorCheck()  # the check with its default thresholds

EXAMPLES = Path(__file__).parents[1] / "examples"
TEXT = "The alignment paper was published in 2031 by a team of researchers."


@pytest.fixture(scope="module")
def tiny(tiny_model_dir) -> HFModel:
    return HFModel.from_pretrained(tiny_model_dir, device="cpu")


def by_hand(model: HFModel, text: str, probes: ProbeSet) -> list[float]:
    """P(AI) per probe from raw `score` log-probs: logsumexp per side, normalised over sides."""
    values = []
    for probe in probes.probes:
        human = [s.logprob for s in model.score(text, [probe + a for a in probes.human])]
        ai = [s.logprob for s in model.score(text, [probe + a for a in probes.ai])]
        log_h, log_a = np.logaddexp.reduce(human), np.logaddexp.reduce(ai)
        values.append(math.exp(log_a) / (math.exp(log_a) + math.exp(log_h)))
    return values


# --- probe arithmetic -------------------------------------------------------------------------


def test_probability_equals_the_hand_computed_value(tiny):
    p, evidence = ai_probability(tiny, TEXT, "news-article")
    expected = by_hand(tiny, TEXT, PROBE_SETS["news-article"])
    assert [x["p_ai"] for x in evidence["probes"]] == pytest.approx(expected, abs=1e-4)
    assert p == pytest.approx(float(np.mean(expected)), abs=1e-4)
    assert evidence["p_ai_std"] == pytest.approx(float(np.std(expected)), abs=1e-4)
    assert evidence["p_ai_min"] == pytest.approx(min(expected))
    assert evidence["p_ai_max"] == pytest.approx(max(expected))
    assert evidence["camera"] == "news-article"
    assert len(evidence["probes"]) >= 3
    json.dumps(evidence)  # stored with the result: must be JSON


def test_every_builtin_camera_has_three_probes_and_both_sides():
    from condpred import list_cameras

    for camera in list_cameras():
        probes = probe_set(camera)
        assert len(probes.probes) >= 3 and probes.human and probes.ai, camera
    assert probe_set("lab-memo") == PROBE_SETS["plain"]  # user cameras fall back to plain


def test_probabilities_are_normalised_over_the_two_sides(tiny):
    """Answers only on one side: P(AI) is exactly 0.5 when both sides hold the same answer."""
    same = ProbeSet(("\n\nNote: by",) * 3, (" a human",), (" a human",))
    p, evidence = ai_probability(tiny, TEXT, "plain", {"plain": same})
    assert p == pytest.approx(0.5) and evidence["p_ai_std"] == pytest.approx(0.0)


# --- the check --------------------------------------------------------------------------------


def given(model, samples, camera="plain", prefix="Abstract.", own=True) -> CheckInput:
    conditional = Conditional(camera=camera, prefix=prefix)
    return CheckInput(model, conditional, render(conditional), samples, own_samples=own)


def sample(text: str, index: int) -> Sample:
    return Sample(text, [], [], "length", index)


@pytest.mark.parametrize("own, source", [(True, "own samples"), (False, "other text")])
def test_one_result_per_sample_with_its_index_and_value(tiny, own, source):
    samples = [sample(" We study predictive models.", 0), sample(" Members agreed.", 3)]
    g = given(tiny, samples, camera="arxiv-abstract", own=own)
    results = get_check("ai_author").run(g)
    assert [r.sample_index for r in results] == [0, 3]
    combiners, _ = load_combiners()
    for result, s in zip(results, samples, strict=True):
        values, _ = signals(tiny, g.rendered, g.conditional, s.text)
        combiner = pick_combiner(combiners, values, source)
        assert combiner.name == "all signals"  # hf models give every signal
        assert result.evidence["combiner"] == f"all signals, for {source}"
        p = combiner.probability(values)
        assert result.check == "ai_author"
        assert result.value == pytest.approx(p, abs=1e-6)
        assert result.evidence["signals"] == pytest.approx(values, abs=1e-6)
        assert result.threshold == combiner.warn_above
        warn, fail = combiner.warn_above, combiner.fail_above
        assert result.verdict == ("fail" if p > fail else "warn" if p > warn else "pass")
        assert "P(AI author)" in result.message
        json.dumps(result.evidence)  # stored with the result: must be JSON


def test_thresholds_decide_the_verdict(tiny):
    g = given(tiny, [sample(" We study predictive models.", 0)])  # P(AI) near 0.5, not 1
    value = CHECK.run(g)[0].value
    assert AIAuthorCheck(warn_above=1.0, fail_above=1.0).run(g)[0].verdict == "pass"
    assert AIAuthorCheck(warn_above=0.0, fail_above=1.0).run(g)[0].verdict == "warn"
    assert AIAuthorCheck(warn_above=0.0, fail_above=0.0).run(g)[0].verdict == "fail"
    assert 0.0 < value < 1.0


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, lambda c: (c.warn_above, c.fail_above)),
        ({"warn_above": 0.999}, lambda c: (0.999, 0.999)),  # lifts the fail default with it
        ({"fail_above": 0.001}, lambda c: (0.001, 0.001)),  # lowers the warn default with it
        ({"warn_above": 0.2, "fail_above": 0.3}, lambda c: (0.2, 0.3)),
    ],
)
def test_a_threshold_given_alone_keeps_the_other_in_order(kwargs, expected):
    check = AIAuthorCheck(**kwargs)
    for combiner in check.combiners:
        assert check.thresholds(combiner) == pytest.approx(expected(combiner))


def test_a_lexical_tell_in_the_sample_raises_the_verdict(tiny):
    g = given(tiny, [sample(" As an AI language model, I cannot browse the internet.", 0)])
    quiet = AIAuthorCheck(warn_above=1.0, fail_above=1.0)
    result = quiet.run(g)[0]
    assert result.verdict == "warn"
    assert {h["pattern"] for h in result.evidence["lexical"]} >= {"as-an-ai", "cannot-browse"}
    assert "As an AI language model," in result.message
    strict = AIAuthorCheck(warn_above=1.0, fail_above=1.0, lexical_verdict="fail")
    assert strict.run(g)[0].verdict == "fail"


def test_a_blank_prediction_is_no_evidence_of_style(tiny):
    (result,) = CHECK.run(given(tiny, [sample(" \n", 0)]))
    assert result.evidence["signals"]["loglik"] is None
    assert result.evidence["contributions"]["loglik"] == 0.0 and 0 < result.value < 1


def test_a_tell_in_the_conditional_is_not_the_prediction(tiny):
    g = given(tiny, [sample(" Members agreed.", 0)], prefix="He said: as an AI, I obey.")
    result = AIAuthorCheck(warn_above=1.0, fail_above=1.0).run(g)[0]
    assert result.evidence["lexical"] == [] and result.verdict == "pass"


def test_no_samples_is_an_input_error(tiny):
    with pytest.raises(InputError, match="no samples"):
        CHECK.run(given(tiny, []))


def test_a_probe_that_tokenises_to_nothing_is_an_input_error(tiny):
    # The tiny tokenizer knows only its corpus's characters: Japanese text has no tokens.
    check = AIAuthorCheck(probe_sets={"plain": ProbeSet(("あ", "い", "う"), (" a",), (" b",))})
    with pytest.raises(InputError, match="tokenises to nothing"):
        check.run(given(tiny, [sample(" Yes.", 0)]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"warn_above": 0.9, "fail_above": 0.5}, "out of order"),
        ({"warn_above": 1.5}, "out of order"),
        ({"lexical_verdict": "maybe"}, "unknown verdict"),
        ({"probe_sets": {"plain": ProbeSet((" ",), (" a",), (" b",))}}, "blank"),
        ({"probe_sets": {"plain": ProbeSet(("x",), (), (" b",))}}, "no human"),
        ({"combiner": "/nonexistent/combiner.json"}, "cannot read the ai_author combiner"),
    ],
)
def test_bad_configuration_is_an_input_error(kwargs, match):
    with pytest.raises(InputError, match=match):
        AIAuthorCheck(**kwargs)


# --- lexical tells ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "As an AI language model, I can't help with that.",
        "as an AI, I don't have feelings",
        "I'm an AI assistant made to help.",
        "I am a large language model.",
        "I\u2019m just an AI.",
        "I cannot browse the internet.",
        "I can't access the internet",
        "As a language model I lack opinions.",
        "My knowledge cutoff is 2021.",
        "I was trained by OpenAI.",
    ],
)
def test_lexical_tells_are_found(text):
    assert lexical_hits(text)


@pytest.mark.parametrize(
    "text",
    [
        "As an AI researcher, I think the result holds.",
        "I am an author of this paper.",
        "Systems like ChatGPT are language models.",
        "The assistant said the meeting was over.",
        "I collected my training data from public forums.",
        "We cannot browse every archive.",
    ],
)
def test_human_phrases_are_not_tells(text):
    assert lexical_hits(text) == []


def test_a_hit_says_where_it_is():
    text = "Sure. As an AI, I would say no."
    (hit,) = lexical_hits(text)
    assert text[hit["start"] :].startswith(hit["match"])


# --- validation -------------------------------------------------------------------------------


def write(path: Path, data) -> Path:
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


PAIRS = {
    "original": [
        "The treaty was signed. Members agreed.",
        "Chair: Let us begin.",
        "Same text.",
        "Abstract. We study predictive models.",
    ],
    "sampled": [
        "The treaty was signed.\n\nMembers agreed  quickly.",
        "Chair: Let us begin. Members agreed.",
        "Same\ntext.",  # identical once whitespace is collapsed: dropped
        "Abstract. We study models.",
    ],
}


def test_pairs_have_whitespace_collapsed_and_identical_pairs_dropped(tmp_path):
    pairs, dropped = load_pairs(write(tmp_path / "a.json", PAIRS))
    assert dropped == 1 and len(pairs) == 3
    assert pairs[0] == (
        "The treaty was signed. Members agreed.",
        "The treaty was signed. Members agreed quickly.",
    )
    assert not any("\n" in text or "  " in text for pair in pairs for text in pair)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "top level is a list"),
        ({"original": ["a"]}, "'sampled' is missing"),
        ({"original": ["a", 3], "sampled": ["b", "c"]}, r"'original'\[1\] is a int"),
        ({"original": ["a", "b"], "sampled": ["c"]}, "2 original texts but 1 sampled"),
        ({"original": ["  "], "sampled": ["c"]}, "pair 0 holds an empty text"),
    ],
)
def test_malformed_files_name_the_file_and_the_problem(tmp_path, content, match):
    path = write(tmp_path / "bad.json", content)
    with pytest.raises(InputError, match=match) as info:
        load_pairs(path)
    assert str(path) in str(info.value)


def test_a_malformed_file_fails_before_any_model_work(tmp_path):
    write(tmp_path / "a.json", PAIRS)
    write(tmp_path / "b.json", {"original": []})
    with pytest.raises(InputError, match=r"b\.json"):
        validate_ai_author(object(), tmp_path)  # type: ignore[arg-type]  # never called


def test_missing_data_and_bad_limit_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        validate_ai_author(object(), tmp_path / "nope")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"no \*\.json"):
        validate_ai_author(object(), tmp_path)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="keeps no pairs"):
        validate_ai_author(object(), tmp_path, limit=0)  # type: ignore[arg-type]


def test_the_split_puts_every_pair_in_one_part():
    pairs = [(str(i), str(-i)) for i in range(7)]
    fit, held = split(pairs, "fit"), split(pairs, "validate")
    assert [i for i, _ in fit] == [1, 3, 5] and [i for i, _ in held] == [0, 2, 4, 6]
    assert [pair for _, pair in fit + held] != pairs and len(fit + held) == len(pairs)


def test_a_pair_is_seen_as_its_shared_opening_and_two_continuations(tmp_path):
    human = "Story 1: the river rose and the town met at noon."
    machine = "Story 1: the river rose, and the council met."
    conditional, h, m = opening(tmp_path / "xsum_x.json", human, machine)
    assert conditional.prefix == "Story 1: the river" and conditional.camera == "news-article"
    assert (h, m) == (" rose and the town met at noon.", " rose, and the council met.")
    conditional, h, m = opening(tmp_path / "pubmed_x.json", "Same words here.", "Same words here!")
    assert conditional.camera == "plain" and conditional.prefix == "Same words" and h and m


def test_first_words_keeps_whitespace_and_stops_at_the_word():
    assert first_words("  one two\n three four", 3) == "  one two\n three"
    assert first_words(" short ", 80) == " short" and first_words("", 3) == ""


# --- signals and the combiner -------------------------------------------------------------------


def test_likelihood_signals_are_the_backends_own_score(tiny):
    got = likelihood_signals(tiny, "Abstract.", TEXT)
    score = tiny.score("Abstract.", [TEXT])[0]
    assert got["loglik"] == pytest.approx(score.logprob / len(score.token_logprobs), abs=1e-4)
    assert math.isfinite(got["fastdetect"])


def test_the_author_ratio_equals_the_hand_computed_value(tiny):
    page = Conditional(camera="news-article", title="Treaty signed", prefix="GENEVA -")
    got = author_ratio(tiny, page, TEXT)

    def side(authors):
        logp = [tiny.score(render(page.with_(authors=[a])), [TEXT])[0].logprob for a in authors]
        return float(np.logaddexp.reduce(logp) - math.log(len(logp)))

    human, ai = side(HUMAN_AUTHORS), side(AI_AUTHORS)
    assert got["llr"] == pytest.approx(ai - human, abs=1e-4)
    assert got["llr_per_token"] == pytest.approx((ai - human) / got["tokens"], abs=1e-6)
    # The conditional's own authors are replaced, so they cannot move the ratio.
    stated = page.with_(authors=[Author(name="GPT-7", kind="ai")])
    assert author_ratio(tiny, stated, TEXT)["llr"] == pytest.approx(got["llr"], abs=1e-5)


def test_the_probes_are_read_against_the_conditional_alone_with_a_human_author(tiny):
    page = Conditional(camera="news-article", title="Treaty signed", prefix="GENEVA -")
    human_page = render(page.with_(authors=[HUMAN_AUTHORS[0]]))
    p = float(np.mean(by_hand(tiny, human_page, PROBE_SETS["news-article"])))
    prior = probe_prior(tiny, page)
    assert prior == pytest.approx(math.log(p / (1 - p)), abs=1e-3)
    # The prior stands for the document's kind and topic, not its stated author...
    stated = page.with_(authors=[Author(name="GPT-7", kind="ai")])
    assert probe_prior(tiny, stated) == pytest.approx(prior, abs=1e-5)
    # ...so the shift after a stated AI author keeps what the author line says.
    values, evidence = signals(tiny, render(stated), stated, TEXT)
    p_ai = evidence["p_ai_mean"]
    assert values["probe_prior"] == pytest.approx(prior, abs=1e-5)
    assert values["probe_shift"] == pytest.approx(math.log(p_ai / (1 - p_ai)) - prior, abs=1e-5)


def test_fast_detect_is_standard_on_the_models_own_samples(tiny):
    """Known answer: on text the model samples itself the criterion has mean 0 and variance
    about 1 (each position's term is centred and scaled by the model's own distribution)."""
    from condpred.model.base import SamplingParams

    drawn = tiny.sample("", 40, SamplingParams(max_new_tokens=24, seed=1))
    values = np.array(
        [likelihood_signals(tiny, "", s.text)["fastdetect"] for s in drawn if s.text.strip()]
    )
    assert len(values) >= 30
    assert abs(values.mean()) < 4 * values.std(ddof=1) / math.sqrt(len(values))
    assert 0.4 < values.std(ddof=1) < 1.8


def test_binoculars_by_hand_and_on_the_models_own_samples(tiny, tmp_path):
    """Known answers: the score recomputed from raw distributions; and with the model as its own
    performer, on its own samples, log-perplexity and cross-perplexity (then its entropy) have
    the same expectation, so the (negated) score is about -1."""
    from condpred.model.base import SamplingParams
    from tests.tiny import build_tiny_gemma

    other = HFModel.from_pretrained(build_tiny_gemma(tmp_path / "other", seed=1), device="cpu")
    ids = tiny.encode(TEXT)
    seen = tiny.logprob_rows(tiny.context_ids("Abstract."), ids)
    expected = other.logprob_rows(other.context_ids("Abstract."), ids)
    log_ppl = -seen[range(len(ids)), ids].mean()
    x_ppl = -(expected.exp() * seen).sum(-1).mean()
    got = binoculars(tiny, other, "Abstract.", TEXT)
    assert got == pytest.approx(float(-(log_ppl / x_ppl)), abs=1e-5)
    drawn = tiny.sample("", 40, SamplingParams(max_new_tokens=24, seed=2))
    values = [binoculars(tiny, tiny, "", s.text) for s in drawn if s.text.strip()]
    assert abs(np.mean(values) + 1) < 0.1


def test_the_combiner_is_a_logistic_regression_on_standardised_signals():
    c = Combiner(
        "t", "own samples", ("a", "b"), (1.0, -2.0), (2.0, 0.5), (0.8, -1.5), 0.3, 0.6, 0.9
    )
    values = {"a": 4.0, "b": -1.0}
    logit = 0.3 + 0.8 * (4.0 - 1.0) / 2.0 - 1.5 * (-1.0 + 2.0) / 0.5
    assert c.probability(values) == pytest.approx(1 / (1 + math.exp(-logit)))
    assert sum(c.contributions(values).values()) == pytest.approx(logit - 0.3)
    assert not c.usable({"a": 1.0, "b": float("nan")}) and not c.usable({"a": 1.0})
    fallback = Combiner("u", "own samples", ("a",), (0.0,), (1.0,), (1.0,), 0.0, 0.5, 0.9)
    other = Combiner("v", "other text", ("a",), (0.0,), (1.0,), (-1.0,), 0.0, 0.5, 0.9)
    combiners = [c, fallback, other]
    assert pick_combiner(combiners, {"a": 1.0, "b": float("nan")}, "own samples") is fallback
    assert pick_combiner(combiners, {"a": 1.0, "b": 2.0}, "other text") is other
    with pytest.raises(InputError, match="no fitted ai_author combiner for other text"):
        pick_combiner([c, fallback], {"a": 1.0}, "other text")


def synthetic_rows(rng, n: int) -> list[dict]:
    """Known answer: human-vs-machine text separated by likelihood alone, the model's own
    samples by the author ratio alone; every other signal is noise."""
    rows = []
    for kind, signal in (("text", "loglik"), ("sampled", "author_llr")):
        for i in range(n):
            for label in (0, 1):
                values = {s: float(rng.normal()) for s in SIGNALS}
                values[signal] += 3.0 * label
                rows.append(
                    {
                        "kind": kind,
                        "unit": f"{kind}{i}",
                        "label": label,
                        "file": "f",
                        "signals": values,
                    }
                )
    return rows


def test_fitting_without_scikit_learn_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)  # import fails as if absent
    with pytest.raises(InputError, match=r"needs scikit-learn.*pip install 'condpred\[fit\]'"):
        fit_combiners(synthetic_rows(np.random.default_rng(0), 5))


@pytest.mark.parametrize(
    "source, kind, signal",
    [("own samples", "sampled", "author_llr"), ("other text", "text", "loglik")],
)
def test_each_source_is_fitted_on_its_own_rows(source, kind, signal):
    rng = np.random.default_rng(0)
    train = synthetic_rows(rng, 400)
    combiners = fit_combiners(train)
    assert [(c.source, c.name) for c in combiners] == [
        (s, n) for s in ("own samples", "other text") for n in ("all signals", "no Fast-DetectGPT")
    ]
    full = next(c for c in combiners if c.source == source)
    weights = dict(zip(full.features, full.coef, strict=True))
    assert weights[signal] > 1  # the one signal that separates its rows, the others noise
    assert all(abs(w) < weights[signal] / 10 for s, w in weights.items() if s != signal)
    # The thresholds hold the stated false-positive rates on the source's human side.
    human = [full.probability(r["signals"]) for r in train if r["kind"] == kind and not r["label"]]
    assert np.mean(np.array(human) > full.warn_above) <= 0.05
    assert np.mean(np.array(human) > full.fail_above) <= 0.01
    assert full.fail_above >= full.warn_above


def test_validation_judges_each_row_with_its_sources_combiner():
    rng = np.random.default_rng(1)
    combiners = fit_combiners(synthetic_rows(rng, 200))
    summary = summarise_validation(synthetic_rows(rng, 60), combiners)
    assert summary["human_vs_machine"][0]["ai_author (the check)"]["auroc"] > 0.95
    assert summary["self_sampled"]["ai_author (the check)"]["auroc"] > 0.95
    assert summary["self_sampled"]["likelihood"]["auroc"] < 0.7  # noise there, by design
    for key in ("human_vs_machine", "self_sampled"):
        row = summary[key][-1] if key == "human_vs_machine" else summary[key]
        assert row["false_positive_rate"]["warn"] < 0.15
        assert row["true_positive_rate"]["warn"] > 0.8
    # Judged by the own-sample combiner, other text is read by the wrong signal.
    own_for_all = [dataclasses.replace(c, source="other text") for c in combiners[:2]]
    summary = summarise_validation(synthetic_rows(rng, 60), own_for_all + combiners[:2])
    assert summary["human_vs_machine"][0]["ai_author (the check)"]["auroc"] < 0.8


@pytest.mark.parametrize(
    "spec, own, source",
    [
        (None, None, "own samples"),
        ("another-model", None, "other text"),
        ("another-model", True, "own samples"),  # the caller knows better than the spec
    ],
)
def test_a_prediction_checked_by_another_model_is_other_text(tiny, spec, own, source):
    conditional = Conditional(camera="plain", prefix="Abstract.")
    prediction = Prediction(
        None, spec or tiny.spec, conditional, render(conditional), [sample(" We agreed.", 0)]
    )
    (result,) = check(prediction, tiny, ["ai_author"], own_samples=own)
    assert result.evidence["combiner"] == f"all signals, for {source}"


def test_model_specs_are_compared_with_aliases_resolved():
    assert same_model("default", "gemma-3-270m") and same_model("gpt2", "gpt2")
    assert not same_model("default", "smollm2-135m-instruct")


def test_fitting_without_rows_of_a_source_says_which():
    rows = [r for r in synthetic_rows(np.random.default_rng(0), 20) if r["kind"] != "sampled"]
    with pytest.raises(InputError, match=r"no rows of both labels.*own samples"):
        fit_combiners(rows)


# --- rows, fitting and validating on a model ---------------------------------------------------


@pytest.fixture(scope="module")
def pair_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pairs")
    texts = [f"Story {i}: the river rose and the town met at noon to plan." for i in range(6)]
    machine = [f"Story {i}: the river rose, and the town council met to plan." for i in range(6)]
    write(root / "xsum_a.json", {"original": texts, "sampled": machine})
    (root / "sub").mkdir()
    write(root / "sub" / "writing_b.json", {"original": texts[:4], "sampled": machine[:4]})
    return root


def test_rows_are_split_cached_and_resumed(tiny, pair_folder, tmp_path):
    cache = tmp_path / "rows.jsonl"
    options = {"limit": 2, "openings": 1, "samples": 2, "max_tokens": 6, "cache": cache}
    fit = compute_rows(tiny, pair_folder, "fit", **options)
    count = {k: sum(r["kind"] == k for r in fit) for k in ("text", "sampled", "planted")}
    assert count == {"text": 2 * 2 * 2, "sampled": 2 * 2 * 2, "planted": 2 * 2}  # 2 files
    assert {r["unit"].split(":")[1] for r in fit if r["kind"] == "text"} == {"1", "3"}
    lines = cache.read_text().count("\n")
    assert lines == len(fit)
    again = compute_rows(tiny, pair_folder, "fit", **options)
    assert cache.read_text().count("\n") == lines  # nothing computed twice
    assert sorted(r["key"] for r in again) == sorted(r["key"] for r in fit)
    held = compute_rows(tiny, pair_folder, "validate", **options)
    assert {r["kind"] for r in held} == {"text", "sampled", "planted"}
    assert {r["unit"].split(":")[1] for r in held if r["kind"] == "text"} == {"0", "2"}
    row = next(r for r in held if r["key"] == "text:xsum_a.json:0:1")
    conditional, _, machine = opening(
        pair_folder / "xsum_a.json", *load_pairs(pair_folder / "xsum_a.json")[0][0]
    )
    values, _ = signals(tiny, render(conditional), conditional, machine)
    assert row["signals"] == pytest.approx(values, abs=1e-5)
    # Rows cached before the probes were read against their prior get it added, nothing else
    # computed again, and then equal rows computed afresh.
    lines = cache.read_text().splitlines()
    stripped = []
    for line in lines:
        row = json.loads(line)
        for signal in ("probe_prior", "probe_shift"):
            row["signals"].pop(signal)
        stripped.append(json.dumps(row))
    older = tmp_path / "older.jsonl"
    older.write_text("\n".join(stripped) + "\n")
    upgraded = compute_rows(tiny, pair_folder, "validate", **{**options, "cache": older})
    added = older.read_text().count("\n") - len(lines)
    assert added == len(held)  # one line more for each validation row, no row computed again
    fresh = {r["key"]: r["signals"] for r in held}
    for row in upgraded:
        assert row["signals"] == pytest.approx(fresh[row["key"]], abs=1e-5)
    planted = [r for r in held if r["kind"] == "planted" and r["file"] == "xsum_a.json"]
    assert planted[0]["signals"]["author_llr"] == pytest.approx(
        planted[1]["signals"]["author_llr"], abs=1e-5
    )  # the ratio sets its own authors


def test_fit_and_validate_end_to_end(tiny, pair_folder, tmp_path):
    options = {"limit": 2, "openings": 1, "samples": 2, "max_tokens": 6}
    rows = compute_rows(tiny, pair_folder, "fit", **options)
    record = combiner_record(fit_combiners(rows), rows, model="tiny")
    path = write(tmp_path / "combiner.json", record)
    combiners, fitted = load_combiners(path)
    assert fitted["model"] == "tiny" and fitted["rows"] == {"text": 8, "sampled": 8, "planted": 4}
    validated = validate_ai_author(tiny, pair_folder, path, seed=3, **options)
    files = [r["file"] for r in validated["human_vs_machine"]]
    assert files == ["sub/writing_b.json", "xsum_a.json", "(all files pooled)"]
    assert [r["n"] for r in validated["human_vs_machine"]] == [2, 2, 4]
    for row in [*validated["human_vs_machine"], validated["self_sampled"]]:
        assert row["ai_author (the check)"]["ci"] is None  # below MIN_CI_N
        assert 0 <= row["ai_author (the check)"]["auroc"] <= 1
    for row in validated["rows"]:
        source = "other text" if row["kind"] == "text" else "own samples"  # planted: own
        assert row["signals"]["check"] == pytest.approx(
            pick_combiner(combiners, row["signals"], source).probability(row["signals"])
        )
    again = validate_ai_author(tiny, pair_folder, path, seed=3, **options)
    assert again["self_sampled"] == validated["self_sampled"]  # seeded: repeatable
    table = format_validation(validated)
    assert "| xsum_a.json | 2 |" in table and "Planted authors (2 openings)" in table
    json.dumps(validated)


# --- planted AI authors on the embedded model -------------------------------------------------

NEUTRAL = " the details are given in the next section."
AI_AUTHOR = [Author(name="GPT-7, an AI system by OpenAI", affiliation="OpenAI", kind="ai")]
EXAMPLE_NAMES = [
    "alignment-paper-2031",
    "textbook-solved-alignment",
    "news-ai-moratorium",
    "forecast-question",
    "policy-meeting-transcript",
]


@pytest.mark.slow
@pytest.mark.parametrize("own", [True, False], ids=["own samples", "other text"])
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_a_stated_ai_author_scores_higher_than_a_human_one(default_model, name, own):
    """The check's value and each of its probes rise when the document names an AI author
    (the author ratio sets its own authors, so it cannot tell; the probes must). As a
    prediction's check, the stated author moves the log-odds by more than 3/4 and the human
    side passes, though every example is about AI: the probes are read against the topic."""
    human = load_conditional(EXAMPLES / f"{name}.yaml")
    values = {}
    for label, conditional in (("human", human), ("ai", human.with_(authors=AI_AUTHOR))):
        g = CheckInput(
            default_model, conditional, render(conditional), [sample(NEUTRAL, 0)], own_samples=own
        )
        values[label] = CHECK.run(g)[0]
    assert values["ai"].value > values["human"].value
    per_probe = [
        (h["p_ai"], a["p_ai"])
        for h, a in zip(
            values["human"].evidence["probes"], values["ai"].evidence["probes"], strict=True
        )
    ]
    assert all(a > h for h, a in per_probe), per_probe
    if own:
        moved = [values[side].evidence["contributions"]["probe_shift"] for side in ("human", "ai")]
        assert moved[1] - moved[0] > 0.75, moved
        assert values["human"].verdict == "pass", values["human"].message


def test_a_user_camera_is_read_from_its_folder(tiny, tmp_path):
    """The prior and the author ratio render the conditional through the user's camera too."""
    folder = tmp_path / "cameras"
    folder.mkdir()
    (folder / "memo.j2").write_text("MEMO by {{ authors | names | join(', ') }}\n\n{{ prefix }}")
    page = Conditional(camera="memo", prefix="Notes:", authors=[Author(name="Ann Lee")])
    g = CheckInput(tiny, page, render(page, folder), [sample(" We agreed.", 0)], folder)
    (result,) = CHECK.run(g)
    human = render(page.with_(authors=[HUMAN_AUTHORS[0]]), folder)
    p = float(np.mean(by_hand(tiny, human, PROBE_SETS["plain"])))  # user cameras: plain probes
    assert result.evidence["signals"]["probe_prior"] == pytest.approx(
        math.log(p / (1 - p)), abs=1e-3
    )
    ratio = author_ratio(tiny, page, " We agreed.", folder)
    assert result.evidence["author_ratio"]["llr"] == pytest.approx(ratio["llr"], abs=1e-5)
