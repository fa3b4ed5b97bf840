"""A plan set (YAML): a situation, candidate plans, outcome questions and optional utilities.

```yaml
situation:        # a conditional: how the world reports what happened after the decision
  camera: news-article
  date: 2028-03-01
  title: ...
  responses: [...]        # optional: responses to the prediction, for the performative check
plans:
  - name: staged release
    carried_out: In March 2027 the lab released the model only to vetted researchers.
questions:
  - name: misuse
    outcomes: [Yes, No]
    phrasings: ["Has the model been used in a serious cyberattack since? {}"]
utilities:        # optional: a value per outcome of some questions; without it nothing is ranked
  misuse: {Yes: -10, No: 0}
```
Each plan's `carried_out` is added to the situation's premises: the camera then reports a world
in which the plan was carried out, dated at the situation's date (after the decision).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from condpred.condition import Conditional
from condpred.condition.conditional import (
    check_size,
    conditional_from_dict,
    describe_error,
    error_path,
    fix_for_error,
    parse_yaml,
    read_yaml_text,
)
from condpred.elicit.outcomes import validate_exclusive, validate_outcomes, validate_phrasings
from condpred.errors import InputError


class PlanOption(BaseModel):
    """One candidate plan: a short name and the premise that it was carried out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    carried_out: str


class OutcomeQuestion(BaseModel):
    """An outcome to predict under each plan: named outcomes, written by each phrasing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    outcomes: list[str]
    phrasings: list[str]

    @model_validator(mode="after")
    def _valid(self) -> OutcomeQuestion:
        try:
            validate_exclusive(validate_outcomes(self.outcomes), validate_phrasings(self.phrasings))
        except InputError as error:
            raise ValueError(error.problem) from error
        return self


class PlanSet(BaseModel):
    """Everything `condpred plan` needs; validated as a whole so a typo fails before any model."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    situation: Conditional
    plans: list[PlanOption]
    questions: list[OutcomeQuestion]
    utilities: dict[str, dict[str, float]] = {}

    @field_validator("situation", mode="before")
    @classmethod
    def _conditional(cls, value: Any) -> Conditional:
        if isinstance(value, Conditional):
            return value
        try:
            return conditional_from_dict(value, source="situation")
        except InputError as error:
            raise ValueError(error.problem) from error

    @model_validator(mode="after")
    def _consistent(self) -> PlanSet:
        for what, names in (("plans", [p.name for p in self.plans]), ("questions", self._names())):
            if not names or len(set(names)) < len(names):
                raise ValueError(f"{what} needs at least one entry, each with its own name")
        questions = {q.name: q for q in self.questions}
        for name, values in self.utilities.items():
            if name not in questions:
                raise ValueError(
                    f"utilities name an unknown question {name!r}; known: {list(questions)}"
                )
            missing = set(questions[name].outcomes) - set(values)
            extra = set(values) - set(questions[name].outcomes)
            if missing or extra:
                raise ValueError(
                    f"utilities of {name!r} must give a number for exactly its outcomes "
                    f"{questions[name].outcomes}"
                    + (f"; missing {sorted(missing)}" if missing else "")
                    + (f"; unknown {sorted(extra)}" if extra else "")
                )
        return self

    def _names(self) -> list[str]:
        return [q.name for q in self.questions]

    def plan_conditional(self, plan: PlanOption) -> Conditional:
        """The situation in a world where the plan was carried out."""
        return self.situation.with_(world=[*self.situation.world, plan.carried_out])


def load_plan_set(path: str | Path) -> PlanSet:
    """Read and validate a plan set; every problem is an InputError naming the file and field."""
    source = str(path)
    data = parse_yaml(read_yaml_text(Path(path), "a YAML plan set"), source, empty_fix=FIX)
    return plan_set_from_dict(data, source, check_cameras=True)


def plan_set_from_dict(
    data: Any, source: str = "<dict>", *, check_cameras: bool = False
) -> PlanSet:
    """Validate a plan set, or raise one InputError listing every problem (file, field path such
    as `situation.camera` or `plans[1].name`, and each fix). `check_cameras`: the situation's
    camera must exist (checked when loading a file, before any model loads)."""
    if not isinstance(data, dict):
        raise InputError(
            "expected a mapping with situation, plans, questions (and optional utilities)",
            source=source,
            fix=FIX,
        )
    check_size(data, source)  # YAML aliases can expand a small file into gigabytes
    problems: list[tuple[str, str, str]] = []  # (field path, what is wrong, fix)
    situation = data.get("situation")
    if isinstance(situation, dict):
        try:
            Conditional.model_validate(
                situation, context={"cameras_dir": None} if check_cameras else None
            )
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                field = error_path(("situation", *error["loc"]))
                problems.append((field, describe_error(error), fix_for_error(error)))
    try:
        plan_set = PlanSet.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = error["loc"]
            if problems and loc and loc[0] == "situation":
                continue  # already listed, field by field
            key = str(loc[0]) if loc else ""
            problems.append((error_path(loc), describe_error(error), FIXES.get(key, FIX)))
    if not problems:
        return plan_set
    if len(problems) == 1:
        field, problem, fix = problems[0]
        raise InputError(problem, source=source, field=field or None, fix=fix)
    lines = [
        f"  - {_where(field)}: {problem}. {fix}".rstrip(". ") + "."
        for field, problem, fix in problems[:20]
    ]
    if len(problems) > 20:
        lines.append(f"  - ... and {len(problems) - 20} more")
    raise InputError(f"{len(problems)} problems:\n" + "\n".join(lines), source=source)


def _where(field: str) -> str:
    return f"field '{field}'" if field else "top level"


FIX = "A plan set has situation, plans, questions and optional utilities (see examples/plans/)"
FIXES = {
    "situation": "Write situation: as a conditional (camera, date, title, world, ...)",
    "plans": "Write each plan as {name: ..., carried_out: a sentence saying it was done}",
    "questions": "Write each question as {name: ..., outcomes: [Yes, No], phrasings: ['... {}']}",
    "utilities": "Write utilities: {question name: {outcome: number, ...}}",
}
