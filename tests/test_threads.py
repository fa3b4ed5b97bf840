"""The hf backend's thread count: the cores other processes leave free, held while sampling."""

from __future__ import annotations

import multiprocessing
import time

import psutil
import pytest
import torch

from condpred.model._threads import BUSY_CORE, DEFAULT_THREADS, INTERVAL_S, free_threads
from condpred.model.base import SamplingParams
from condpred.model.hf import HFModel


def _spin(stop) -> None:
    while not stop.is_set():
        pass


@pytest.fixture
def model(tiny_model_dir, monkeypatch):
    monkeypatch.delenv("CONDPRED_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    loaded = HFModel.from_pretrained(tiny_model_dir, device="cpu")
    yield loaded
    torch.set_num_threads(before)


@pytest.fixture
def busy_core():
    """Another process keeping one core busy; yields its psutil handle."""
    stop = multiprocessing.get_context("fork").Event()
    spinner = multiprocessing.get_context("fork").Process(target=_spin, args=(stop,), daemon=True)
    spinner.start()
    try:
        yield psutil.Process(spinner.pid)
    finally:
        stop.set()
        spinner.join(5)


def test_a_core_counts_as_taken_from_half_its_use():
    assert [free_threads(2, busy) for busy in (0.0, 0.49, 0.5, 1.4, 1.6, 5.0)] == [2, 2, 1, 1, 1, 1]
    assert [free_threads(8, busy) for busy in (0.3, 2.6, 7.9)] == [8, 5, 1]


def test_scoring_gives_up_the_core_another_process_holds(model, busy_core):
    policy = model.threads
    if policy.most < 2:
        pytest.skip("one core: nothing to give up")
    policy.fix(None)
    spinner_start = sum(busy_core.cpu_times()[:2])
    time.sleep(2 * INTERVAL_S)
    spinner_rate = (sum(busy_core.cpu_times()[:2]) - spinner_start) / (2 * INTERVAL_S)
    model.score("Abstract. We study ", [" a", " the"])
    if spinner_rate < BUSY_CORE:
        pytest.skip(f"the machine gave the spinner {spinner_rate:.2f} of a core: nothing to see")
    # What the policy measured is at least what the spinner used (other load only adds to it).
    assert policy.others_busy >= min(spinner_rate, 1.0) - 0.25
    assert torch.get_num_threads() == policy.chosen < policy.most


def test_sampling_keeps_one_count_whatever_the_load(model, busy_core):
    policy = model.threads
    if policy.most < 2:
        pytest.skip("one core: one count anyway")
    policy.fix(None)
    params = SamplingParams(max_new_tokens=6, seed=4)
    quiet = model.sample("Abstract.", 4, params)
    time.sleep(2 * INTERVAL_S)
    model.score("Abstract.", [" a"])
    assert torch.get_num_threads() < policy.most  # scoring gave a core up...
    loaded = model.sample("Abstract.", 4, params)
    assert torch.get_num_threads() == policy.most  # ...sampling did not
    assert [s.tokens for s in loaded] == [s.tokens for s in quiet]


def test_a_count_is_one_or_more_or_auto(model):
    for wrong in (0, -1, "4", 1.5, True):
        with pytest.raises(ValueError, match="a count of 1 or more"):
            model.threads.fix(wrong)
    model.threads.fix(3)
    assert model.threads.fixed == 3 and not model.threads.hold_sampling
    model.threads.fix("auto")
    assert model.threads.fixed is None and not model.threads.hold_sampling


def test_the_policy_keeps_torchs_count_from_import_time(model, tiny_model_dir):
    """A model loaded after another lowered torch's count still holds sampling at the default."""
    torch.set_num_threads(1)
    later = HFModel.from_pretrained(tiny_model_dir, device="cpu")
    assert later.threads.most == min(DEFAULT_THREADS, len(later.threads.cores))


@pytest.mark.parametrize(
    ("setting", "count", "hold"), [("1", 1, False), ("auto", None, False), ("", None, True)]
)
def test_the_environment_fixes_the_count_or_frees_sampling(
    model, monkeypatch, setting, count, hold
):
    monkeypatch.setenv("CONDPRED_THREADS", setting)
    model.threads.fix(None)
    assert model.threads.fixed == count and model.threads.hold_sampling is hold
    if count:
        model.score("Abstract.", [" a"])
        model.sample("Abstract.", 2, SamplingParams(max_new_tokens=3, seed=0))
        assert torch.get_num_threads() == count
