"""Cyborg planning: predicted outcomes of candidate plans, for a human to evaluate."""

from condpred.plan.run import PlanRun, plan, resume_plans, stored_plans
from condpred.plan.spec import PlanSet, load_plan_set

__all__ = ["PlanRun", "PlanSet", "load_plan_set", "plan", "resume_plans", "stored_plans"]
