"""run_edit end to end with a real (tiny, randomly initialised) diffusers InstructPix2Pix pipeline, and the
discriminator dropping keyframes: a broken view is rejected with its reason while the good one is kept, and when
every view is rejected the edit still finishes, with every keyframe scored below the gate and a warning."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from engine.avatar.demo import load_demo_avatar
from engine.edit.editors import EditedImage, EditorSettings, ImageEditor, composite, make_editor
from engine.edit.layers import compose
from engine.prompting import EditPlan, refine
from tests.test_edit_pipeline import _lips, _small_config
from tests.tiny_models import tiny_diffusers


@pytest.fixture(scope="module")
def avatar():
    return load_demo_avatar(count=8000)


@pytest.fixture(scope="module")
def tiny_pix2pix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_diffusers(tmp_path_factory.mktemp("ip2p") / "model", "instruct-pix2pix")


def test_run_edit_with_a_tiny_diffusion_editor_changes_only_the_selection(avatar, tiny_pix2pix: Path) -> None:
    from engine.edit.run import run_edit

    base = avatar.gaussians.detach_clone()
    lips = _lips(avatar)
    plan = refine("make the lips blue").plan.model_copy(update={"steps": 2})
    editor = make_editor(EditorSettings("instruct-pix2pix", model=str(tiny_pix2pix), size=32))
    result = run_edit(avatar, lips, plan, editor, _small_config())
    assert result is not None and result.views and not result.dropped  # no discriminator: every keyframe is kept
    edited = compose(avatar.gaussians, [result.layer])
    assert bool(lips[result.layer.indices].all()) and result.layer.indices.numel() > 0
    assert not edited.subset(lips).equal(base.subset(lips)), "the diffusion edit changed nothing"
    assert edited.subset(~lips).equal(base.subset(~lips))
    assert avatar.gaussians.equal(base)


class BrokenViews(ImageEditor):
    """The procedural editor, except that its first `broken` answers are noise inside the mask: a generation
    that failed. Everything else (keyframes, discriminator, optimisation) is the real engine."""

    name = "broken-views"
    deterministic = True

    def __init__(self, broken: int) -> None:
        self.inner: ImageEditor = make_editor(EditorSettings())
        self.broken, self.calls = broken, 0

    def calibrated(self, images: list[torch.Tensor], masks: list[torch.Tensor]) -> ImageEditor:
        self.inner = self.inner.calibrated(images, masks)
        return self

    def edit(self, image: torch.Tensor, mask: torch.Tensor, plan: EditPlan, seed: int = 0) -> EditedImage:
        out = self.inner.edit(image, mask, plan, seed)
        self.calls += 1
        if self.calls > self.broken:
            return out
        noise = torch.rand(image.shape, generator=torch.Generator().manual_seed(seed + self.calls))
        return replace(out, image=composite(image, noise, mask), raw=noise)


@pytest.mark.slow
def test_discriminator_drops_a_broken_view_and_keeps_the_good_one(avatar) -> None:
    from engine.edit.run import run_edit

    lips = _lips(avatar)
    plan = refine("make the lips blue").plan
    config = _small_config(discriminator=True, gate_retries=0)
    result = run_edit(avatar, lips, plan, BrokenViews(broken=1), config)
    assert result is not None and len(result.views) == config.keyframes - 1
    assert len(result.dropped) == 1 and result.dropped[0].startswith("keyframe 0:")
    assert "discriminator" in result.dropped[0]
    assert result.layer.indices.numel() > 0 and bool(lips[result.layer.indices].all())
    # every view broken: the edit still finishes (never "edit failed" for a plan the editor can do), but
    # says so: every keyframe was scored below the gate, and the result carries a warning naming the gate
    result = run_edit(avatar, lips, plan, BrokenViews(broken=10**6), config)
    slots = [shot for shot in result.shots if shot.used]
    assert slots and all(not shot.accepted and shot.score < shot.threshold for shot in result.shots)
    assert any("reject" in warning for warning in result.warnings), result.warnings
    assert result.layer.indices.numel() > 0 and bool(lips[result.layer.indices].all())
