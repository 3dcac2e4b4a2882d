"""Prompt refinement: the EditPlan schema and the rules / local-LM / HTTP refiner backends.

Public API: `refine(prompt, backend, settings, context) -> RefineResult`, `make_refiner`, `refine_with`,
`EditPlan`, `EditKind`, `sanitize_plan`, `plan_from_json`, `AvatarContext`, `gaussians_context`,
`context_from_labels`, and the errors `PlanError` (with `UnclearPrompt` and `NothingToEdit`) and
`BackendError`. Nothing heavy is imported here: language-model code loads on first use.
"""

from engine.prompting.context import AvatarContext, context_from_labels, gaussians_context
from engine.prompting.llm_json import BackendError
from engine.prompting.plan import (
    ACTIONS, EXPRESSION_NAMES, RANGES, SCHEMA_VERSION, EditKind, EditPlan, NothingToEdit, PlanError, UnclearPrompt,
    build_plan, plan_from_json, sanitize_plan,
)
from engine.prompting.refine import BACKENDS, RefineResult, RefineSettings, Refiner, make_refiner, refine, refine_with

__all__ = [
    "ACTIONS", "AvatarContext", "BACKENDS", "BackendError", "EXPRESSION_NAMES", "EditKind", "EditPlan",
    "NothingToEdit", "PlanError", "RANGES", "RefineResult", "RefineSettings", "Refiner", "SCHEMA_VERSION",
    "UnclearPrompt", "build_plan", "context_from_labels", "gaussians_context", "make_refiner", "plan_from_json",
    "refine", "refine_with", "sanitize_plan",
]
