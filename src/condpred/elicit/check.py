"""Check a prediction: run the named checks on its samples and store what they find."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from condpred.checks import CheckInput, CheckResult, gate, parse_spec, run_checks
from condpred.elicit.predict import Prediction
from condpred.model.base import PredictiveModel
from condpred.model.registry import same_model
from condpred.store import Store

DEFAULT_CHECKS = ("ai_author", "surprisal")  # need nothing beyond the conditional and samples


def check(
    prediction: Prediction,
    model: PredictiveModel,
    names: Sequence[str] = DEFAULT_CHECKS,
    *,
    store: Store | None = None,
    cameras_dir: str | Path | None = None,
    own_samples: bool | None = None,
) -> list[CheckResult]:
    """Run checks (names or specs with arguments, e.g. "ai_author:warn_above=0.4") on a
    prediction's samples; stored with its run when given a store, in place of what the same
    checks found there before. `own_samples`: whether `model` drew them; None decides by model
    spec (aliases resolved), so samples checked by another model are other text."""
    folder = Path(cameras_dir) if cameras_dir else None
    if own_samples is None:
        own_samples = same_model(prediction.model_spec, getattr(model, "spec", ""))
    given = CheckInput(
        model, prediction.conditional, prediction.rendered, prediction.samples, folder, own_samples
    )
    results = run_checks(names, given)
    if store is not None and prediction.run_id is not None:
        checks = [parse_spec(spec)[0] for spec in names]
        store.replace_check_results(prediction.run_id, 0, checks, results)
    return results


def gated(prediction: Prediction, results: Sequence[CheckResult]) -> tuple[Prediction, dict]:
    """The prediction with only the samples whose checks pass, and why the others were dropped."""
    kept, dropped = gate(prediction.samples, results)
    return Prediction(
        prediction.run_id, prediction.model_spec, prediction.conditional, prediction.rendered, kept
    ), dropped
