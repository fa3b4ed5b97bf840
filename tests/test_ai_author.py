"""The ai_author check: probe arithmetic recomputed by hand, lexical tells, verdicts, validation
loader and rows (tiny model), and planted AI authors on the five examples (embedded model)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from condpred import Author, Conditional, InputError, Sample, load_conditional, render
from condpred.checks import get_check
from condpred.checks.ai_author import (
    AI_AUTHORS,
    HUMAN_AUTHORS,
    PROBE_SETS,
    AIAuthorCheck,
    ProbeSet,
    ai_probability,
    author_ratio,
    lexical_hits,
    probe_set,
)
from condpred.checks.base import CheckInput
from condpred.checks.validation import (
    format_validation,
    load_pairs,
    validate_ai_author,
    validation_record,
)
from condpred.model.hf import HFModel

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


def given(model, samples, camera="plain", prefix="Abstract.") -> CheckInput:
    conditional = Conditional(camera=camera, prefix=prefix)
    return CheckInput(model, conditional, render(conditional), samples)


def sample(text: str, index: int) -> Sample:
    return Sample(text, [], [], "length", index)


def test_one_result_per_sample_with_its_index_and_value(tiny):
    samples = [sample(" We study predictive models.", 0), sample(" Members agreed.", 3)]
    g = given(tiny, samples, camera="arxiv-abstract")
    results = get_check("ai_author").run(g)
    assert [r.sample_index for r in results] == [0, 3]
    for result, s in zip(results, samples, strict=True):
        p, _ = ai_probability(tiny, g.rendered + s.text, "arxiv-abstract")
        assert result.check == "ai_author"
        assert result.value == pytest.approx(p)
        assert result.threshold == CHECK.warn_above
        assert result.verdict == ("fail" if p > 0.8 else "warn" if p > 0.5 else "pass")
        assert "P(AI author)" in result.message


def test_thresholds_decide_the_verdict(tiny):
    g = given(tiny, [sample(" Yes.", 0)])
    value = CHECK.run(g)[0].value
    assert AIAuthorCheck(warn_above=1.0, fail_above=1.0).run(g)[0].verdict == "pass"
    assert AIAuthorCheck(warn_above=0.0, fail_above=1.0).run(g)[0].verdict == "warn"
    assert AIAuthorCheck(warn_above=0.0, fail_above=0.0).run(g)[0].verdict == "fail"
    assert 0.0 < value < 1.0


def test_a_lexical_tell_in_the_sample_raises_the_verdict(tiny):
    g = given(tiny, [sample(" As an AI language model, I cannot browse the internet.", 0)])
    quiet = AIAuthorCheck(warn_above=1.0, fail_above=1.0)
    result = quiet.run(g)[0]
    assert result.verdict == "warn"
    assert {h["pattern"] for h in result.evidence["lexical"]} >= {"as-an-ai", "cannot-browse"}
    assert "As an AI language model," in result.message
    strict = AIAuthorCheck(warn_above=1.0, fail_above=1.0, lexical_verdict="fail")
    assert strict.run(g)[0].verdict == "fail"


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
        ({"lexical_verdict": "maybe"}, "unknown verdict"),
        ({"probe_sets": {"plain": ProbeSet((" ",), (" a",), (" b",))}}, "blank"),
        ({"probe_sets": {"plain": ProbeSet(("x",), (), (" b",))}}, "no human"),
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


def test_validation_rows_on_a_folder(tiny, tmp_path):
    write(tmp_path / "a.json", PAIRS)
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "b.json", PAIRS)
    rows = validate_ai_author(tiny, tmp_path, limit=2, seed=3)
    assert [r["file"] for r in rows] == ["a.json", "sub/b.json", "(all files pooled)"]
    assert [r["n"] for r in rows] == [2, 2, 4]
    first = rows[0]
    human, machine = load_pairs(tmp_path / "a.json")[0][0]
    p_h, _ = ai_probability(tiny, human)
    whole = tiny.score("", [machine])[0]
    assert first["scores"]["p_ai_human"][0] == pytest.approx(p_h)
    assert first["scores"]["baseline_machine"][0] == pytest.approx(
        whole.logprob / len(whole.tokens)
    )
    for row in rows:
        assert 0 <= row["auroc"] <= 1 and 0 <= row["baseline_auroc"] <= 1
        assert row["auroc_ci"] is None  # 2 pairs a file (4 pooled): too few for an interval
    (again,) = validate_ai_author(tiny, tmp_path / "a.json", limit=2, seed=3)
    assert {**again, "seconds": 0} == {**first, "seconds": 0}  # seeded: repeatable
    table = format_validation(rows)
    assert "| a.json | 2 |" in table and "(all files pooled)" in table
    record = validation_record(rows, model="tiny", data="d", limit=2, seed=3, seconds=1.26)
    assert json.loads(json.dumps(record))["rows"] == json.loads(json.dumps(rows))
    assert record["limit"] == 2 and record["seconds"] == 1.3


# --- the author ratio and the Fast-DetectGPT anchor -------------------------------------------


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


def test_fast_detect_is_standard_on_the_models_own_samples(tiny):
    """Known answer: on text the model samples itself the criterion has mean 0 and variance
    about 1 (each position's term is centred and scaled by the model's own distribution)."""
    from condpred.checks.validation import fast_detect_criterion
    from condpred.model.base import SamplingParams

    drawn = tiny.sample("", 40, SamplingParams(max_new_tokens=24, seed=1))
    values = np.array([fast_detect_criterion(tiny, s.text) for s in drawn if s.text.strip()])
    assert len(values) >= 30
    assert abs(values.mean()) < 4 * values.std(ddof=1) / math.sqrt(len(values))
    assert 0.4 < values.std(ddof=1) < 1.8
    # Its log-likelihood term is the backend's own score of the text as a whole document.
    assert np.isfinite(fast_detect_criterion(tiny, TEXT))


def test_self_sampled_and_planted_validations(tiny):
    from condpred.checks.validation import validate_planted, validate_self_sampled

    pages = [("a", Conditional(camera="news-article", title="Treaty signed", prefix="GENEVA -"))]
    found = validate_self_sampled(tiny, pages * 2, samples=3, max_tokens=8)
    assert found["n_pairs"] == 6 and set(found["signals"]) == {
        "ai_author probes",
        "author ratio",
        "likelihood",
    }
    for signal in found["signals"].values():
        assert 0 <= signal["auroc"] <= 1 and signal["ci"] is None  # 6 pairs < MIN_CI_N
    (planted,) = validate_planted(tiny, pages, " the details follow.")
    assert planted["llr_human"] == pytest.approx(planted["llr_ai"], abs=1e-6)
    assert planted["p_ai_human"] != planted["p_ai_ai"]


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
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_a_stated_ai_author_scores_higher_than_a_human_one(default_model, name):
    """Measured (gemma-3-270m, float32): human → AI author P(AI) alignment-paper 0.23 → 0.50,
    textbook 0.05 → 0.30, news 0.22 → 0.78, forecast 0.30 → 0.62, transcript 0.11 → 0.60.
    All five separate, and under every single probe, not only on average."""
    human = load_conditional(EXAMPLES / f"{name}.yaml")
    values = {}
    for label, conditional in (("human", human), ("ai", human.with_(authors=AI_AUTHOR))):
        g = CheckInput(default_model, conditional, render(conditional), [sample(NEUTRAL, 0)])
        values[label] = CHECK.run(g)[0]
    assert values["ai"].value > values["human"].value
    per_probe = [
        (h["p_ai"], a["p_ai"])
        for h, a in zip(
            values["human"].evidence["probes"], values["ai"].evidence["probes"], strict=True
        )
    ]
    assert all(a > h for h, a in per_probe), per_probe
