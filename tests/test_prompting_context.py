"""AvatarContext: built from an avatar's labels and colours; refinement refuses what the avatar lacks and
reads "darker" from the avatar's own colours, for every backend."""

from __future__ import annotations

import numpy as np
import pytest

from engine.head.components import COMPONENTS, LABEL
from engine.prompting import NothingToEdit, refine, refine_with
from engine.prompting.context import AvatarContext, check_plan, context_from_labels, gaussians_context
from engine.prompting.oklab import to_oklab
from engine.prompting.plan import sanitize_plan
from engine.prompting.rules import RulesConfig, RulesRefiner


def test_context_from_labels_counts_and_colours() -> None:
    labels = np.array([LABEL["hair"]] * 3 + [LABEL["left_brow"]] * 2 + [-1])
    rgb = np.array([[0.2, 0.1, 0.0], [0.4, 0.2, 0.1], [0.3, 0.2, 0.1], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0],
                    [0.5, 0.5, 0.5]])
    ctx = context_from_labels(labels, rgb)
    assert ctx.components == frozenset({"hair", "left_brow"})
    median = (round(0.3 * 255), round(0.2 * 255), round(0.1 * 255))  # per channel
    assert ctx.colours["hair"] == median and ctx.colour_of(["hair", "accessory"]) == median
    with pytest.raises(AssertionError, match="rgb must be"):
        context_from_labels(labels, rgb[:2])
    with pytest.raises(ValueError, match="unknown components"):
        AvatarContext(frozenset({"tail"}))


def test_demo_avatar_context_refuses_glasses_and_darkens_its_own_brows() -> None:
    from engine.avatar.demo import load_demo_avatar

    ctx = gaussians_context(load_demo_avatar().gaussians)
    assert "accessory" not in ctx.components and {"hair", "left_brow", "mouth_interior"} <= ctx.components
    refiner = RulesRefiner(RulesConfig(use_embeddings=False))
    with pytest.raises(NothingToEdit, match="nothing to remove: this avatar has no glasses"):
        refiner.refine("remove her glasses", ctx)
    plan, _ = refiner.refine("make her eyebrows darker", ctx)
    brows = ctx.colour_of(["left_brow", "right_brow"])
    assert plan.colour is not None and to_oklab(plan.colour)[0] < to_oklab(brows)[0] - 0.1


class StubRefiner:
    """A backend that answers one fixed plan (as a language model would), to check the context check."""

    name = "stub"

    def __init__(self, data: dict) -> None:
        self.data = data

    def refine(self, prompt: str, context: AvatarContext | None = None):
        return sanitize_plan(self.data, prompt=prompt)


def test_every_backend_is_checked_against_the_context() -> None:
    no_accessory = AvatarContext(frozenset(c for c in COMPONENTS if c != "accessory"))
    removal = {"refined_prompt": "remove the glasses", "components": ["eyes", "nose", "accessory"],
               "kinds": ["accessory"], "accessory": "glasses", "action": "remove"}
    with pytest.raises(NothingToEdit, match="no glasses"):
        refine_with(StubRefiner(removal), "remove her glasses", context=no_accessory)
    assert refine_with(StubRefiner(removal), "remove her glasses").plan.action == "remove"
    with pytest.raises(NothingToEdit, match="no glasses"):
        refine("remove her glasses", "rules", context=no_accessory)
    plan, _ = sanitize_plan({**removal, "action": "add", "refined_prompt": "add glasses"})
    assert check_plan(plan, no_accessory) == []  # adding needs no accessory Gaussians
