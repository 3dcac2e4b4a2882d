"""Prompt refinement: the EditPlan schema and the rules / local-LM / HTTP refiner backends.

Public API: `refine(prompt, backend, settings) -> RefineResult`, `make_refiner`, `refine_with`,
`EditPlan`, `EditKind`, `sanitize_plan`, `plan_from_json`, `PlanError`, `BackendError`.
Nothing heavy is imported here: language-model code loads on first use.
"""

from engine.prompting.llm_json import BackendError
from engine.prompting.plan import (
    EXPRESSION_NAMES, RANGES, SCHEMA_VERSION, EditKind, EditPlan, PlanError, build_plan, plan_from_json,
    sanitize_plan,
)
from engine.prompting.refine import BACKENDS, RefineResult, RefineSettings, Refiner, make_refiner, refine, refine_with

__all__ = [
    "BACKENDS", "BackendError", "EXPRESSION_NAMES", "EditKind", "EditPlan", "PlanError", "RANGES", "RefineResult",
    "RefineSettings", "Refiner", "SCHEMA_VERSION", "build_plan", "make_refiner", "plan_from_json", "refine",
    "refine_with", "sanitize_plan",
]
