"""gap: the KL instrument on planted pairs built from the tiny model, where the answer is known:
identical models (KL exactly 0), a tuned model that *is* the base model under a hidden prefix (a
soft prompt recovers it, as does the true prefix written as a conditional) and a tuned model that
learned a mapping the base model lacks (no soft prompt recovers it); the vocabulary check, bad
input, the stored and resumed run, the CLI's `--out` contract and the report section."""

from __future__ import annotations

import json
import math

import pytest
import torch

from condpred import Store
from condpred.errors import InputError
from condpred.experiments.gap import GapRow, SoftEvalRow, run_gap
from condpred.experiments.gap.data import load_conditionals, load_prompts
from condpred.experiments.gap.measure import compare, table_row
from condpred.experiments.runner import read_rows, resume
from condpred.model.hf import HFModel
from tests import planted_gap
from tests.planted_gap import (
    SIZES,
    SOFT,
    WORDS,
    loader,
    prefixed,
    write_conditionals,
    write_prompts,
)
from tests.test_cli import run_cli


@pytest.fixture(scope="module")
def base(tiny_model_dir) -> HFModel:
    return HFModel.from_pretrained(tiny_model_dir, spec="base", device="cpu")


@pytest.fixture(scope="module")
def planted(base) -> HFModel:
    return prefixed(base)


@pytest.fixture(scope="module")
def skilled(base) -> HFModel:
    model, loss = planted_gap.skilled(base)
    assert loss < 0.5  # it did learn the mapping
    return model


@pytest.fixture
def prompts(tmp_path):
    return write_prompts(tmp_path / "prompts.jsonl")


def row(summary: dict, name: str) -> dict:
    return next(r for r in summary["rows"] if r["conditional"] == name)


# --- the measurement on known answers -----------------------------------------------------------


def test_kl_and_rank_match_their_definitions():
    p = torch.tensor([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]])
    q = torch.tensor([[0.1, 0.2, 0.7], [0.25, 0.25, 0.5]])
    kl, ranks = compare(p.log(), q.log())
    exact = sum(a * math.log(a / b) for a, b in zip(p[0].tolist(), q[0].tolist(), strict=True))
    assert kl[0] == pytest.approx(exact, rel=1e-5) and kl[1] == 0.0
    assert ranks == [3, 1]  # tuned top token: base's third, then base's first
    totals = [{"kl": 2.0, "tokens": 4.0, "unshifted": 2, "marginal": 1, "shifted": 1}] * 12
    bare = [{"kl": 8.0, "tokens": 4.0, "unshifted": 0, "marginal": 0, "shifted": 4}] * 12
    r = table_row("c", totals, bare, seed=0)
    assert r["kl_per_token"] == 0.5 and r["fraction_closed"] == 0.75
    assert r["shifted_ratio"] == 0.25 and r["ci"] == [0.5, 0.5]
    assert table_row("c", totals[:3], bare[:3], seed=0)["ci"] is None  # 3 prompts: no interval


def test_identical_models_give_kl_exactly_zero(base, prompts):
    result = run_gap("base", "base", str(prompts), soft_prompt=0, load=loader(base), **SIZES)
    none = row(result.summary, "none")
    assert none["kl_per_token"] == 0.0 and none["shifted_ratio"] == 0.0 and none["tokens"] > 50
    assert none["fraction_closed"] is None  # nothing to close
    assert none["prompts"] == len(WORDS)  # no split without a soft prompt or a search


def test_a_planted_conditional_is_recovered_by_the_soft_prompt(base, planted, prompts, tmp_path):
    conditionals = write_conditionals(tmp_path / "c.yaml")
    result = run_gap(
        "base",
        "planted",
        str(prompts),
        conditionals=str(conditionals),
        **SOFT,
        load=loader(base, planted),
        **SIZES,
    )
    s = result.summary
    assert row(s, "none")["kl_per_token"] > 0.05
    assert row(s, "true-prefix")["kl_per_token"] == 0.0  # the hidden prefix itself closes it all
    assert row(s, "best-of-search")["chosen"] == "true-prefix"  # chosen on the training prompts
    soft = row(s, "soft-prompt")
    assert soft["fraction_closed"] > 0.8, soft
    assert s["prompts"]["evaluated"] == len(s["split"]["held_out"]) == 6


def test_a_learned_skill_is_not_recovered_by_the_soft_prompt(base, skilled, prompts):
    result = run_gap(
        "base",
        "skilled",
        str(prompts),
        **SOFT,
        load=loader(base, skilled),
        **SIZES,
    )
    none, soft = row(result.summary, "none"), row(result.summary, "soft-prompt")
    assert none["kl_per_token"] > 1.0 and none["shifted_ratio"] > 0.5
    assert soft["fraction_closed"] < 0.3 and soft["kl_per_token"] > 1.0, soft


# --- input ----------------------------------------------------------------------------------


def test_a_pair_with_different_vocabularies_is_refused(tmp_path, tiny_model_dir, prompts, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    other = tmp_path / "other"
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.add_tokens(["<extra-token>"])
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model.resize_token_embeddings(len(tokenizer))
    model.save_pretrained(other)
    tokenizer.save_pretrained(other)
    code, _, stderr = run_cli(
        capsys, "gap", "--base", str(tiny_model_dir), "--tuned", str(other),
        "--prompts", str(prompts), "--db", str(tmp_path / "runs.db"),
    )  # fmt: skip
    message = " ".join(stderr.split())  # rich wraps long lines
    assert code == 2, stderr
    assert "tokenizers differ" in message and "output layers differ" in message
    assert "Traceback" not in message and "share one tokenizer" in message


def test_bad_prompts_and_conditionals_name_every_problem(tmp_path):
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"prompt": "ok"}\nnot json\n{"category": "x"}\n')
    with pytest.raises(InputError) as error:
        load_prompts(bad)
    assert "line 2: not JSON" in str(error.value) and "line 3: needs" in str(error.value)
    conds = tmp_path / "c.yaml"
    conds.write_text("- name: none\n  template: x\n- name: a\n  template: '{prompt}'\n  z: 1\n")
    with pytest.raises(InputError) as error:
        load_conditionals(conds)
    message = str(error.value)
    assert "entry 0: name 'none' is reserved" in message and "with {prompt} once" in message
    assert "entry 1: must have exactly" in message


# --- the stored run, the CLI and the report ---------------------------------------------------


class Interrupting:
    """A model that stops (as by Ctrl-C) after `budget` samples; everything else delegated."""

    def __init__(self, model: HFModel, budget: int) -> None:
        self.inner, self.budget = model, budget

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def sample(self, *args, **kwargs):
        if self.budget == 0:
            raise KeyboardInterrupt
        self.budget -= 1
        return self.inner.sample(*args, **kwargs)


def test_an_interrupted_run_resumes_to_the_same_rows(base, planted, prompts, tmp_path):
    args = dict(soft_prompt=2, soft_steps=3, samples=1, max_tokens=6)
    with Store(tmp_path / "runs.db") as store:
        whole = run_gap(
            "base", "planted", str(prompts), store=store, load=loader(base, planted), **args
        )
        broken_load = {"base": base, "planted": Interrupting(planted, 5)}.__getitem__
        with pytest.raises(KeyboardInterrupt):
            run_gap("base", "planted", str(prompts), store=store, load=broken_load, **args)
        broken = store.list_runs(limit=1)[0]
        assert broken.status == "interrupted" and len(store.items(broken.id, "gap")) == 5
        resumed = resume(broken.id, store, loader(base, planted))
        assert store.get_run(broken.id).status == "done"
        strip = {"sample_s", "measure_s"}
        assert [r.model_dump(exclude=strip) for r in read_rows(store, broken.id, GapRow)] == [
            r.model_dump(exclude=strip) for r in read_rows(store, whole.run_id, GapRow)
        ]
        assert read_rows(store, broken.id, SoftEvalRow) == read_rows(
            store, whole.run_id, SoftEvalRow
        )
    assert resumed.summary["rows"] == whole.summary["rows"]


def test_the_command_writes_the_out_contract_and_the_report_draws_it(
    tmp_path, tiny_model_dir, prompts, capsys, monkeypatch
):
    monkeypatch.setenv("CONDPRED_DB", str(tmp_path / "runs.db"))
    conds = tmp_path / "c.yaml"
    conds.write_text('- name: a\n  template: "Q: {prompt}\\n"\n- name: b\n  template: "{prompt}"\n')
    out = tmp_path / "out.json"
    code, stdout, stderr = run_cli(
        capsys, "gap", "--base", str(tiny_model_dir), "--tuned", f"hf:{tiny_model_dir}",
        "--prompts", str(prompts), "--conditionals", str(conds), "--soft-prompt", "2",
        "--soft-steps", "2", "--samples", "1", "--max-tokens", "4", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    result = json.loads(out.read_text())
    names = [r["conditional"] for r in result["rows"]]
    assert names == ["none", "a", "b", "best-of-search", "soft-prompt"]
    for r in result["rows"]:
        assert {"conditional", "kl_per_token", "ci", "fraction_closed", "shifted_ratio"} <= set(r)
    assert row(result, "none")["kl_per_token"] == 0.0  # the same weights, loaded twice
    assert set(result["by_category"]) == {"a", "b"}
    assert "KL(tuned || base | c)" in stdout and "stored as run" in stdout
    code, stdout, _ = run_cli(capsys, "resume", result["run_id"])
    assert code == 0 and "already done" in stdout
    report = tmp_path / "report.html"
    code, _, stderr = run_cli(capsys, "report", result["run_id"], "--out", str(report))
    assert code == 0, stderr
    html = report.read_text()
    assert "KL by position" in html and "best-of-search" in html and "Soft prompt" in html
    code, _, stderr = run_cli(capsys, "gap", "--base", str(tiny_model_dir))
    assert code == 2 and "--tuned, --prompts" in stderr


def test_full_rows_agree_with_the_scoring_path(base):
    """`logprob_rows` is the scoring path's distribution, whole: its entries at the continuation
    tokens are `score`'s token log-probabilities, and each row sums to 1."""
    context, continuation = "The alignment paper", " was published in 2031"
    ids = base.encode(continuation)
    rows = base.logprob_rows(base.context_ids(context), ids)
    chosen = rows.gather(-1, torch.tensor(ids).unsqueeze(-1)).squeeze(-1).tolist()
    assert chosen == pytest.approx(base.score(context, [continuation])[0].token_logprobs, abs=1e-4)
    assert rows.exp().sum(-1).tolist() == pytest.approx([1.0] * len(ids), abs=1e-5)
