"""EditPlan: the validated, versioned, JSON-serialisable result of prompt refinement.

Two layers:
- `EditPlan` (pydantic v2, frozen) *rejects* anything outside its ranges or vocabularies: a plan
  that exists is a valid plan.
- `sanitize_plan(data)` *repairs* loose input (an LLM answer, a hand-edited file, a GUI form):
  it clamps numbers into range, drops unknown components and expression names, fills defaults,
  and returns the plan together with one human-readable note per change. What it cannot repair
  (no refined prompt, no edit kind, not a JSON object) raises `PlanError`.

Version 2 added `action` (add / remove / change) and `lightness` (a shift of the region's own
lightness: "darker", "lighter"). Version-1 data is still read: its accessory plans were additions,
everything else a change, and it had no lightness shift.
"""

from __future__ import annotations

import json
import math
import re
from enum import Enum
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.errors import UserError
from engine.head.components import COMPONENTS, GROUPS, PARTS, expand

SCHEMA_VERSION: int = 2
"""Version written into every plan."""
READABLE_VERSIONS: tuple[int, ...] = (1, 2)
"""Versions `plan_from_json` and `sanitize_plan` read (older ones are upgraded to SCHEMA_VERSION)."""

ACTIONS: tuple[str, ...] = ("change", "add", "remove")
"""What an appearance edit does: change what is there (colour, material, shape), add something new
(an accessory), or remove something named (an accessory, makeup, facial hair, a dye)."""

EXPRESSION_NAMES: tuple[str, ...] = (
    "smile", "frown", "brow_raise", "brow_furrow", "blink_left", "blink_right",
    "pucker", "cheek_puff", "lip_stretch", "nose_wrinkle", "jaw_open",
)
"""Named expression deltas (the demo head's blendshapes). FLAME coefficients use "expr_<index>"."""

EXPR_INDEX_RE = re.compile(r"^expr_(\d{1,3})$")
NAMED_EXPR_RANGE: tuple[float, float] = (-1.0, 1.0)
"""Allowed delta for a named blendshape weight."""
INDEXED_EXPR_RANGE: tuple[float, float] = (-3.0, 3.0)
"""Allowed delta for a FLAME expression coefficient ("expr_12")."""


class EditKind(str, Enum):
    """What an edit changes."""

    COLOUR = "colour"
    TEXTURE = "texture"  # texture or material
    ACCESSORY = "accessory"
    EXPRESSION = "expression"
    SHAPE = "shape"  # shape or size


RANGES: dict[str, tuple[float, float]] = {
    "intensity": (0.0, 1.0),
    "guidance_scale": (1.0, 20.0),
    "image_guidance_scale": (0.5, 5.0),
    "steps": (1, 150),
    "strength": (0.05, 1.0),
    "keyframes": (0, 64),
    "iterations": (0, 20000),
    "lightness": (-0.5, 0.5),
}
"""Safe (inclusive) range of every numeric plan field."""

INT_FIELDS: frozenset[str] = frozenset({"steps", "keyframes", "iterations"})

DEFAULTS: dict[str, Any] = {
    "negative_prompt": "",
    "colour": None,
    "colour_name": None,
    "accessory": None,
    "part": None,
    "action": "change",
    "lightness": 0.0,
    "expression": {},
    "intensity": 0.6,
    "guidance_scale": 7.5,
    "image_guidance_scale": 1.5,
    "steps": 20,
    "strength": 0.75,
    "keyframes": 8,
    "iterations": 1000,
    "rationale": "",
}
"""Values used for optional fields that are missing."""

MAX_TEXT = 600
"""Longest refined/negative prompt kept (characters)."""
MAX_RATIONALE = 300
"""Longest rationale kept (characters)."""


class PlanError(UserError, ValueError):
    """A plan (or text meant to hold one) that cannot be repaired into a valid EditPlan."""


UNCLEAR_PREFIX = "I can't tell what to change: "


class UnclearPrompt(PlanError):
    """A prompt the refiner cannot read confidently (nothing known, mostly unknown words, contradictory,
    or more than one plan can hold). The message starts with UNCLEAR_PREFIX; `suggestions` holds 2-4
    prompts the refiner can read that come close to what was asked."""

    def __init__(self, reason: str, suggestions: list[str] | tuple[str, ...] = ()) -> None:
        self.reason = reason
        self.suggestions: tuple[str, ...] = tuple(suggestions)
        tail = (" Try: " + "; ".join(f'"{s}"' for s in self.suggestions) + ".") if self.suggestions else ""
        super().__init__(UNCLEAR_PREFIX + reason + tail)


class NothingToEdit(PlanError):
    """The prompt asks to change or remove something this avatar does not have ("remove her glasses" on
    an avatar without accessory Gaussians)."""

    def __init__(self, message: str, missing: str) -> None:
        self.missing = missing  # what the avatar lacks, in words ("glasses", "hair")
        super().__init__(message)


def is_expression_name(name: str) -> bool:
    """True for a named blendshape or an "expr_<index>" FLAME coefficient name."""
    return name in EXPRESSION_NAMES or EXPR_INDEX_RE.match(name) is not None


def expression_range(name: str) -> tuple[float, float]:
    """The allowed delta range for one expression name."""
    return NAMED_EXPR_RANGE if name in EXPRESSION_NAMES else INDEXED_EXPR_RANGE


class EditPlan(BaseModel):
    """A structured, validated edit plan. Frozen: edits make a new plan (`plan.model_copy` + validate)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[2] = SCHEMA_VERSION  # schema version
    prompt: str = ""  # the user's original words
    refined_prompt: str = Field(min_length=1, max_length=MAX_TEXT)  # instruction for the image editor
    negative_prompt: str = Field(default="", max_length=MAX_TEXT)  # what the editor must avoid
    components: tuple[str, ...] = ()  # target components (COMPONENTS names, in COMPONENTS order)
    kinds: tuple[EditKind, ...] = Field(min_length=1)  # edit kinds, primary first, no repeats
    colour: tuple[int, int, int] | None = None  # target sRGB 0-255 where a colour applies
    colour_name: str | None = None  # the words that named the colour ("bright red")
    accessory: str | None = None  # the accessory added, changed or removed ("glasses")
    part: str | None = None  # a named part inside the components (PARTS: "iris", "sclera", "teeth"), or None
    action: Literal["change", "add", "remove"] = "change"  # ACTIONS: what the appearance edit does
    lightness: float = Field(default=0.0, ge=-0.5, le=0.5)  # shift of the region's own Oklab lightness
    # ("darker" < 0 < "lighter"); when `colour` is set too it already includes the shift
    expression: dict[str, float] = Field(default_factory=dict)  # expression deltas by name
    intensity: float = Field(default=0.6, ge=0.0, le=1.0)  # how strong the appearance edit is
    guidance_scale: float = Field(default=7.5, ge=1.0, le=20.0)  # text classifier-free guidance
    image_guidance_scale: float = Field(default=1.5, ge=0.5, le=5.0)  # InstructPix2Pix image guidance
    steps: int = Field(default=20, ge=1, le=150)  # diffusion denoising steps
    strength: float = Field(default=0.75, ge=0.05, le=1.0)  # img2img/inpaint noise strength
    keyframes: int = Field(default=8, ge=0, le=64)  # frames edited in 2D (0: no image edit)
    iterations: int = Field(default=1000, ge=0, le=20000)  # Gaussian optimisation iterations
    rationale: str = Field(default="", max_length=MAX_RATIONALE)  # why these values, briefly

    @field_validator("components")
    @classmethod
    def _known_components(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        expanded = expand(value)  # raises ValueError naming the unknown word
        if tuple(value) != expanded:
            raise ValueError(f"components must be COMPONENTS names in order: expected {expanded}")
        return expanded

    @field_validator("kinds")
    @classmethod
    def _unique_kinds(cls, value: tuple[EditKind, ...]) -> tuple[EditKind, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"repeated edit kind in {[k.value for k in value]}")
        return value

    @field_validator("colour")
    @classmethod
    def _rgb(cls, value: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
        if value is not None and any(not 0 <= c <= 255 for c in value):
            raise ValueError(f"colour channels must be 0-255, got {value}")
        return value

    @field_validator("part")
    @classmethod
    def _known_part(cls, value: str | None) -> str | None:
        if value is not None and value not in PARTS:
            raise ValueError(f"unknown part {value!r}; known: {', '.join(PARTS)}")
        return value

    @field_validator("expression")
    @classmethod
    def _expression(cls, value: dict[str, float]) -> dict[str, float]:
        for name, delta in value.items():
            if not is_expression_name(name):
                raise ValueError(f"unknown expression {name!r}; known: {', '.join(EXPRESSION_NAMES)}, expr_<i>")
            lo, hi = expression_range(name)
            if not (math.isfinite(delta) and lo <= delta <= hi):
                raise ValueError(f"expression {name}={delta} outside [{lo}, {hi}]")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "EditPlan":
        appearance = [k for k in self.kinds if k is not EditKind.EXPRESSION]
        if appearance and not self.components:
            raise ValueError(f"a {appearance[0].value} edit needs at least one target component")
        if appearance and self.keyframes < 1:
            raise ValueError("an appearance edit needs at least one keyframe")
        if self.part is not None and not set(PARTS[self.part]) & set(self.components):
            where = ", ".join(PARTS[self.part])
            raise ValueError(f"part {self.part!r} lies in {where}, none of which the plan targets")
        if self.action == "add" and (EditKind.ACCESSORY not in self.kinds or not self.accessory):
            raise ValueError("an add plan adds an accessory: it needs the accessory kind and the accessory's name")
        if self.action == "remove" and not appearance:
            raise ValueError("a remove plan needs an appearance kind (what is removed); expressions take negative "
                             "deltas")
        if EditKind.EXPRESSION in self.kinds and not self.expression:
            raise ValueError("an expression edit needs at least one expression delta")
        return self

    @property
    def kind(self) -> EditKind:
        """The primary edit kind."""
        return self.kinds[0]

    @property
    def is_expression_only(self) -> bool:
        """True when the plan changes only the expression (no image edit, no optimisation)."""
        return self.kinds == (EditKind.EXPRESSION,)

    def to_json(self, indent: int | None = 2) -> str:
        """The plan as JSON text (enums as their values)."""
        return self.model_dump_json(indent=indent)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "plan"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def build_plan(data: Mapping[str, Any]) -> EditPlan:
    """Strictly validate a mapping into an EditPlan; PlanError with every problem otherwise."""
    try:
        return EditPlan.model_validate(dict(data))
    except ValidationError as exc:
        raise PlanError(f"invalid edit plan: {_validation_message(exc)}") from exc


def plan_from_json(text: str, source: str = "plan") -> EditPlan:
    """Read a plan written by `EditPlan.to_json`; `source` names the file in error messages."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(f"{source}: not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise PlanError(f"{source}: expected a JSON object, got {type(data).__name__}")
    version = data.get("version", SCHEMA_VERSION)
    if version not in READABLE_VERSIONS:
        readable = " and ".join(str(v) for v in READABLE_VERSIONS)
        raise PlanError(f"{source}: plan version {version!r} is not supported (this build reads {readable})")
    try:
        return build_plan(upgrade(data))
    except PlanError as exc:
        raise PlanError(f"{source}: {exc}") from exc


def upgrade(data: Mapping[str, Any]) -> dict[str, Any]:
    """Plan data of any readable version as SCHEMA_VERSION data (version 1: accessory plans were additions)."""
    out = dict(data)
    if out.get("version", SCHEMA_VERSION) == 1:
        kinds = out.get("kinds") or []
        adds = out.get("accessory") and EditKind.ACCESSORY.value in [getattr(k, "value", k) for k in kinds]
        out.update(version=SCHEMA_VERSION, action="add" if adds else "change", lightness=0.0)
    return out


def sanitize_plan(data: Mapping[str, Any], prompt: str | None = None) -> tuple[EditPlan, list[str]]:
    """Repair loose plan data into a valid EditPlan; returns (plan, notes about every repair).

    Clamps numbers into RANGES, drops unknown components/expressions and unknown keys, expands
    component groups, de-duplicates kinds. Raises PlanError when the data cannot make a plan.
    """
    from engine.prompting.repair import repair_fields  # local: keeps this module schema-only

    if not isinstance(data, Mapping):
        raise PlanError(f"expected a JSON object for the plan, got {type(data).__name__}")
    fields, notes = repair_fields(dict(data))
    if prompt is not None:
        fields["prompt"] = prompt
    return build_plan(fields), notes


__all__ = [
    "ACTIONS", "COMPONENTS", "GROUPS", "DEFAULTS", "EXPRESSION_NAMES", "EditKind", "EditPlan", "NothingToEdit",
    "PlanError", "RANGES", "READABLE_VERSIONS", "SCHEMA_VERSION", "UNCLEAR_PREFIX", "UnclearPrompt", "build_plan",
    "expression_range", "is_expression_name", "plan_from_json", "sanitize_plan", "upgrade",
]
