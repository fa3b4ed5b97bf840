"""Check a prediction: run the named checks on its samples and store what they find."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from condpred.checks import CheckInput, CheckResult, gate, parse_spec, run_checks
from condpred.elicit.predict import Prediction
from condpred.model.base import PredictiveModel
from condpred.store import Store

DEFAULT_CHECKS = ("ai_author", "surprisal")  # need nothing beyond the conditional and samples


def check(
    prediction: Prediction,
    model: PredictiveModel,
    names: Sequence[str] = DEFAULT_CHECKS,
    *,
    store: Store | None = None,
    cameras_dir: str | Path | None = None,
) -> list[CheckResult]:
    """Run checks (names or specs with arguments, e.g. "ai_author:warn_above=0.4") on a
    prediction's samples; stored with its run when given a store, in place of what the same
    checks found there before. The samples count as `model`'s own when the prediction names the
    same model spec; checked by another model, they are other text."""
    folder = Path(cameras_dir) if cameras_dir else None
    own = prediction.model_spec == getattr(model, "spec", None)
    given = CheckInput(
        model, prediction.conditional, prediction.rendered, prediction.samples, folder, own
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
