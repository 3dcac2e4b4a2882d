"""The refiner's contract: a suite of prompts (tests/data/prompt_suite.jsonl), each with the plan it must
give, and the judge that compares a refiner's answer with it. Used by bench/prompting.py and the tests.

One JSON object per line:
- "prompt", "categories" (tags; component tags "component_<name>" are added from the expected components)
- either "error": "unclear" (UnclearPrompt with 2-4 suggestions) or "nothing" (NothingToEdit), with an
  optional "message" the error must contain,
- or the plan: "components" (COMPONENTS or GROUPS names), "kinds" (in plan order), "action" (default
  "change"), "colour" (null, a family of oklab.FAMILIES, or a list of acceptable families), "lightness"
  ("darker" / "lighter"; absent: no shift), "part" (absent: none), "accessory" (checked when given),
  "expression" ({name: "+small" | "-medium" | "+large" | "+full" or a number}; absent names must be
  absent), "intensity" ("low" < 0.45 <= "default" < 0.75 <= "high"; checked when given),
- optional "context": {"components": [...], "colours": {component: [r, g, b]}} (an AvatarContext).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.head.components import expand
from engine.prompting.context import AvatarContext
from engine.prompting.oklab import FAMILIES, family_of
from engine.prompting.plan import UNCLEAR_PREFIX, EditPlan, NothingToEdit, PlanError, UnclearPrompt

SIZES: dict[str, tuple[float, float]] = {
    "small": (0.0, 0.45), "medium": (0.45, 0.75), "large": (0.75, 1.0001), "full": (0.99, 1.0001),
}
"""Expression size bands: |delta| in [lo, hi)."""
INTENSITIES: dict[str, tuple[float, float]] = {"low": (0.0, 0.45), "default": (0.45, 0.75), "high": (0.75, 1.0001)}
VALUE_TOL = 0.051
"""Tolerance of a numeric expected expression value."""
KEYS = frozenset({"prompt", "categories", "error", "message", "components", "kinds", "action", "colour", "lightness",
                  "part", "accessory", "expression", "intensity", "context"})

RefineFn = Callable[[str, "AvatarContext | None"], tuple[EditPlan, list[str]]]


@dataclass(frozen=True)
class CaseResult:
    """How one suite prompt fared."""

    prompt: str
    categories: tuple[str, ...]
    problems: tuple[str, ...]  # empty: the plan (or error) matches

    @property
    def ok(self) -> bool:
        return not self.problems


def load_suite(path: str | Path) -> list[dict[str, Any]]:
    """The suite's cases; ValueError naming the file and line for a malformed one."""
    cases = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from exc
        problems = _malformed(case)
        if problems:
            raise ValueError(f"{path}:{n}: {problems}")
        cases.append(case)
    return cases


def _malformed(case: Any) -> str:
    if not isinstance(case, dict) or not isinstance(case.get("prompt"), str) or not case.get("categories"):
        return "each line needs a prompt and categories"
    if set(case) - KEYS:
        return f"unknown keys {sorted(set(case) - KEYS)}"
    if "error" in case:
        return "" if case["error"] in ("unclear", "nothing") else f"unknown error {case['error']!r}"
    if "components" not in case or "kinds" not in case:
        return "a plan case needs components and kinds"
    families = case.get("colour") if isinstance(case.get("colour"), list) else [case.get("colour")]
    if any(f is not None and f not in FAMILIES for f in families):
        return f"unknown colour family in {case.get('colour')!r}; known: {', '.join(FAMILIES)}"
    return ""


def categories_of(case: dict[str, Any]) -> tuple[str, ...]:
    """The case's tags plus one "component_<name>" per expected component."""
    comps = [f"component_{c}" for c in expand(case.get("components", []))]
    return tuple(dict.fromkeys(list(case["categories"]) + comps))


def context_of(case: dict[str, Any]) -> AvatarContext | None:
    spec = case.get("context")
    if spec is None:
        return None
    colours = {k: tuple(v) for k, v in spec.get("colours", {}).items()}
    return AvatarContext(frozenset(expand(spec["components"])), colours)  # type: ignore[arg-type]


def _check_error(case: dict[str, Any], exc: PlanError | None) -> list[str]:
    want = UnclearPrompt if case["error"] == "unclear" else NothingToEdit
    if not isinstance(exc, want):
        return [f"expected {want.__name__}, got {type(exc).__name__ if exc else 'a plan'}"]
    problems = []
    if case.get("message") and case["message"] not in str(exc):
        problems.append(f"message {str(exc)!r} lacks {case['message']!r}")
    if isinstance(exc, UnclearPrompt):
        if not str(exc).startswith(UNCLEAR_PREFIX):
            problems.append(f"message does not start {UNCLEAR_PREFIX!r}")
        if not 2 <= len(exc.suggestions) <= 4:
            problems.append(f"{len(exc.suggestions)} suggestions (want 2-4)")
    return problems


def _in_band(value: float, band: tuple[float, float]) -> bool:
    return band[0] <= value < band[1]


def _check_expression(expected: dict[str, Any], got: dict[str, float]) -> list[str]:
    problems = [f"unexpected expression {k}={v}" for k, v in got.items() if k not in expected]
    for name, want in expected.items():
        value = got.get(name)
        if value is None:
            problems.append(f"missing expression {name}")
        elif isinstance(want, (int, float)):
            if abs(value - want) > VALUE_TOL:
                problems.append(f"expression {name}={value}, want {want}")
        elif (value > 0) != (want[0] == "+") or not _in_band(abs(value), SIZES[want[1:]]):
            problems.append(f"expression {name}={value}, want {want}")
    return problems


def _check_plan(case: dict[str, Any], plan: EditPlan) -> list[str]:
    problems = []
    if plan.components != expand(case["components"]):
        problems.append(f"components {list(plan.components)}, want {list(expand(case['components']))}")
    if [k.value for k in plan.kinds] != case["kinds"]:
        problems.append(f"kinds {[k.value for k in plan.kinds]}, want {case['kinds']}")
    if plan.action != case.get("action", "change"):
        problems.append(f"action {plan.action}, want {case.get('action', 'change')}")
    want = case.get("colour")
    families = want if isinstance(want, list) else [want]
    if want is None and plan.colour is not None:
        problems.append(f"colour {plan.colour}, want none")
    elif want is not None and (plan.colour is None or family_of(plan.colour) not in families):
        problems.append(f"colour {plan.colour} ({plan.colour and family_of(plan.colour)}), want {want}")
    shift = "darker" if plan.lightness < 0 else "lighter" if plan.lightness > 0 else None
    if shift != case.get("lightness"):
        problems.append(f"lightness {plan.lightness}, want {case.get('lightness')}")
    if plan.part != case.get("part"):
        problems.append(f"part {plan.part}, want {case.get('part')}")
    if "accessory" in case and plan.accessory != case["accessory"]:
        problems.append(f"accessory {plan.accessory}, want {case['accessory']}")
    problems += _check_expression(case.get("expression", {}), plan.expression)
    if "intensity" in case and not _in_band(plan.intensity, INTENSITIES[case["intensity"]]):
        problems.append(f"intensity {plan.intensity}, want {case['intensity']}")
    return problems


def judge(case: dict[str, Any], refine: RefineFn) -> CaseResult:
    """Refine the case's prompt (with its context) and compare with what it must give."""
    try:
        plan, _ = refine(case["prompt"], context_of(case))
    except PlanError as exc:
        problems = _check_error(case, exc) if "error" in case else [f"{type(exc).__name__}: {exc}"]
    else:
        problems = _check_error(case, None) if "error" in case else _check_plan(case, plan)
    return CaseResult(case["prompt"], categories_of(case), tuple(problems))


def summarise(results: list[CaseResult]) -> dict[str, Any]:
    """plan_match_share over all results, and per category: share and count."""
    per: dict[str, list[bool]] = {}
    for r in results:
        for c in r.categories:
            per.setdefault(c, []).append(r.ok)
    share = sum(r.ok for r in results) / max(1, len(results))
    return {
        "plan_match_share": round(share, 4),
        "per_category": {c: round(sum(v) / len(v), 4) for c, v in sorted(per.items())},
        "category_counts": {c: len(v) for c, v in sorted(per.items())},
    }
