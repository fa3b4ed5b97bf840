"""Cyborg planning: predicted outcomes of candidate plans, for a human to evaluate."""

from condpred.planning.run import PlanRun, plan, resume_plans, stored_plans
from condpred.planning.spec import PlanSet, load_plan_set

__all__ = ["PlanRun", "PlanSet", "load_plan_set", "plan", "resume_plans", "stored_plans"]
