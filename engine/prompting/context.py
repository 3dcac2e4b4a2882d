"""What the refiner may know about the avatar it refines for: which components it has Gaussians for and
their typical colours. Refining with a context refuses to change or remove what the avatar lacks
("remove her glasses" on an avatar with no accessory Gaussians) and turns "darker"/"lighter" into the
component's own colour, shifted.

Built from plain arrays (a label tensor and optional colours), so this package never imports the avatar
code: `context_from_labels(g.labels, dc_to_rgb(g.sh[:, 0]))`, or `gaussians_context(g)` which does exactly
that for an avatar's Gaussians `g` (with its edit layers composed, when they count).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.head.components import COMPONENTS
from engine.prompting.colours import RGB
from engine.prompting.plan import EditKind, EditPlan, NothingToEdit

if TYPE_CHECKING:
    from engine.avatar.gaussians import BoundGaussians

MIN_GAUSSIANS = 1
"""A component counts as present with at least this many Gaussians."""


@dataclass(frozen=True)
class AvatarContext:
    """The avatar's components (COMPONENTS names with Gaussians) and each one's median colour (sRGB 0-255)."""

    components: frozenset[str]  # components the avatar has Gaussians for
    colours: Mapping[str, RGB] = field(default_factory=dict)  # median display colour per present component

    def __post_init__(self) -> None:
        unknown = set(self.components) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"unknown components in avatar context: {', '.join(sorted(unknown))}")

    def has(self, component: str) -> bool:
        return component in self.components

    def colour_of(self, components: tuple[str, ...] | list[str]) -> RGB | None:
        """The mean of the present components' colours (None when none is known)."""
        known = [self.colours[c] for c in components if c in self.colours]
        if not known:
            return None
        return tuple(int(round(sum(c[i] for c in known) / len(known))) for i in range(3))  # type: ignore[return-value]


def context_from_labels(labels: Any, rgb: Any | None = None) -> AvatarContext:
    """A context from per-Gaussian labels [N] (ints into COMPONENTS) and optional colours [N, 3] in 0..1."""
    lab = np.asarray(labels).reshape(-1).astype(np.int64)
    counts = np.bincount(lab[(lab >= 0) & (lab < len(COMPONENTS))], minlength=len(COMPONENTS))
    present = frozenset(COMPONENTS[i] for i in range(len(COMPONENTS)) if counts[i] >= MIN_GAUSSIANS)
    colours: dict[str, RGB] = {}
    if rgb is not None:
        col = np.asarray(rgb, dtype=np.float64)
        assert col.shape == (lab.shape[0], 3), f"rgb must be [N, 3] like labels [N], got {col.shape}"
        for name in present:
            med = np.median(np.clip(col[lab == COMPONENTS.index(name)], 0.0, 1.0), axis=0)
            colours[name] = tuple(int(round(255 * float(c))) for c in med)  # type: ignore[assignment]
    return AvatarContext(present, colours)


def gaussians_context(gaussians: BoundGaussians) -> AvatarContext:
    """The context of an avatar's Gaussians: their labels and view-independent colours."""
    from engine.render.splats import dc_to_rgb

    g = gaussians
    return context_from_labels(g.labels.detach().cpu(), dc_to_rgb(g.sh[:, 0].detach().cpu()))


def component_words(components: tuple[str, ...] | list[str], part: str | None = None) -> str:
    """Plain words for components: ("left_eye", "right_eye") -> "eyes"; part "teeth" -> "teeth"."""
    if part == "teeth":
        return "teeth"
    names = list(components)
    for group, members in (("eyes", ("left_eye", "right_eye")), ("brows", ("left_brow", "right_brow")),
                           ("lips", ("upper_lip", "lower_lip"))):
        if all(m in names for m in members):
            names = [n for n in names if n not in members] + [group]
    words = [n.replace("_", " ").replace("mouth interior", "mouth") for n in names]
    return " and ".join(words) if len(words) < 3 else ", ".join(words[:-1]) + " and " + words[-1]


def check_plan(plan: EditPlan, context: AvatarContext | None) -> list[str]:
    """Refuse a plan that changes or removes what the avatar lacks (NothingToEdit); notes for targets
    that are partly missing. Adding an accessory needs no accessory Gaussians (the edit makes them)."""
    if context is None or plan.is_expression_only:
        return []
    verb = "remove" if plan.action == "remove" else "change"
    if plan.accessory and plan.action != "add" and not context.has("accessory"):
        raise NothingToEdit(f"nothing to {verb}: this avatar has no {plan.accessory}", plan.accessory)
    wanted = [c for c in plan.components if not (c == "accessory" and plan.action == "add")]
    missing = [c for c in wanted if not context.has(c)]
    if missing and len(missing) == len(wanted):
        what = component_words(missing, plan.part)
        raise NothingToEdit(f"nothing to {verb}: this avatar has no {what}", what)
    if missing and EditKind.ACCESSORY not in plan.kinds:
        return [f"this avatar has no {component_words(missing)}; the edit covers the rest"]
    return []
