"""The prompt -> plan -> edit flow on the demo avatar, judged on real renders: green irises with light
sclera, every component editable, nothing outside the region changes, a mixed plan brings its expression
layer, and a discriminator that rejects edits leads to retries or a warning, never a failed edit."""

from __future__ import annotations

import pytest
import torch

from engine.avatar.avatar import Avatar
from engine.avatar.demo import load_demo_avatar
from engine.edit.colour_space import srgb_to_oklab
from engine.edit.discriminator import DiscriminatorConfig
from engine.edit.editors import EditorSettings, make_editor
from engine.edit.editors.base import EditedImage, ImageEditor
from engine.edit.keyframes import orbit_cameras
from engine.edit.layers import compose
from engine.edit.parts import part_mask
from engine.edit.quality import region_colour_within
from engine.edit.run import EditConfig, EditResult, mapped_sh, run_edit
from engine.edit.views import crop_camera, dilate, render_view
from engine.head.components import expand, labels_of
from engine.prompting import refine
from engine.prompting.plan import EditKind, EditPlan, build_plan
from engine.render.splats import dc_to_rgb

SMALL = EditConfig(size=80, keyframes=4, orbit_cameras=4, max_timesteps=1, min_steps=4,
                   disc=DiscriminatorConfig(steps=30))


@pytest.fixture(scope="module")
def avatar() -> Avatar:
    return load_demo_avatar()


def colour_plan(prompt: str, components: list[str], colour: tuple[int, int, int], part: str | None = None,
                expression: dict[str, float] | None = None) -> EditPlan:
    kinds = ["colour"] + (["expression"] if expression else [])
    return build_plan({"prompt": prompt, "refined_prompt": prompt, "components": expand(components), "kinds": kinds,
                       "colour": colour, "part": part, "expression": expression or {}})


def _selection(avatar: Avatar, components: list[str]) -> torch.Tensor:
    return torch.isin(avatar.gaussians.labels, torch.tensor(labels_of(components)))


def _edited(avatar: Avatar, result: EditResult) -> Avatar:
    return Avatar(avatar.head, compose(avatar.gaussians, [result.layer]), avatar.params, avatar.name)


def _held_out(avatar: Avatar) -> list[tuple]:
    """Views the edit never saw: cameras between the orbit's, a smile and an open jaw."""
    smile = avatar.params_with(0, smile=0.7)
    jaw = smile.jaw_pose.clone()
    jaw[:, 0] = 0.25
    cams = orbit_cameras(avatar, 3, 256, yaw_range=40.0, offset=0.5)
    return [(avatar.params_with(0), cams[1]), (smile, cams[0]), (smile.with_values(jaw_pose=jaw), cams[2])]


def _crops(avatar: Avatar, edited: Avatar, region: torch.Tensor, held: list[tuple], size: int = 96) -> tuple[list, list]:
    """Edited crops around the region (one per eye for the eyes) and their rendered region masks."""
    images, masks = [], []
    for params, cam in held:
        verts = avatar.posed_vertices(params).float()
        for side in (-1.0, 1.0):
            means = avatar.gaussians.subset(region).deform(verts, avatar.head.faces).means
            means = means[means[:, 0] * side > 0] if region.sum() > 0 else means
            if means.shape[0] < 3:
                continue
            crop = crop_camera(cam, means, size, min_fraction=0.05)
            rgb, mask = render_view(edited, verts, crop, region.float())
            images.append(rgb)
            masks.append(mask)
    return images, masks


def test_green_eyes_turn_the_irises_green_and_keep_the_sclera_light(avatar) -> None:
    plan = colour_plan("make her eyes green", ["eyes"], (40, 160, 60), part="iris")
    result = run_edit(avatar, _selection(avatar, ["eyes"]), plan, make_editor(EditorSettings()), SMALL)
    assert result is not None and not result.warnings
    iris, sclera = part_mask(avatar, "iris"), part_mask(avatar, "sclera")
    assert bool(iris[result.layer.indices].all())  # only the irises change
    edited, held = _edited(avatar, result), _held_out(avatar)
    images, masks = _crops(avatar, edited, iris, held)
    green = region_colour_within(images, masks, core=0.8)
    lab = green.median
    assert float(lab[1]) < -0.05 and float(lab[2]) > 0.0  # Oklab a < 0 (green), b > 0 (not blue)
    assert green.share >= 0.85  # one even green over the iris pixels of held-out views
    before, _ = _crops(avatar, avatar, sclera, held)
    after, smasks = _crops(avatar, edited, sclera, held)
    white = region_colour_within(after, smasks, core=0.8)
    assert float(white.median[0]) > 0.7 and float(white.median[1:].norm()) < 0.05  # still light and grey
    old = region_colour_within(before, smasks, core=0.8)
    assert float((white.median - old.median).norm()) < 0.02


@pytest.mark.parametrize("components,part,colour", [
    (["lips"], None, (35, 80, 210)), (["hair"], None, (235, 205, 130)), (["brows"], None, (70, 45, 30)),
    (["nose"], None, (210, 25, 35)), (["ears"], None, (40, 160, 60)), (["mouth_interior"], "teeth", (245, 220, 40)),
    (["neck"], None, (60, 90, 200)), (["skin"], None, (140, 90, 60)),
])
@pytest.mark.slow
def test_every_component_is_editable_and_nothing_outside_changes(avatar, components, part, colour) -> None:
    plan = colour_plan(f"make the {components[0]} another colour", components, colour, part=part)
    sel = _selection(avatar, components)
    region = sel & part_mask(avatar, part) if part else sel
    result = run_edit(avatar, sel, plan, make_editor(EditorSettings()), SMALL)
    assert result is not None and result.layer.indices.numel() > 0
    assert bool(region[result.layer.indices].all())
    edited = _edited(avatar, result)
    assert edited.gaussians.subset(~region).equal(avatar.gaussians.subset(~region))
    goal = srgb_to_oklab(torch.tensor(colour, dtype=torch.float32)[None] / 255)[0]
    held = _held_out(avatar)
    moved = 0
    for params, cam in held:
        verts = avatar.posed_vertices(params).float()
        before, mask = render_view(avatar, verts, cam, region.float())
        after, _ = render_view(edited, verts, cam, region.float())
        outside = dilate((mask > 0.005).float(), 2) == 0  # pixels the region gives less than 0.5% of, and their neighbours
        assert float((after - before)[outside].abs().max()) < 2 / 255  # pixels outside the region are unchanged
        inside = mask >= 0.8
        if int(inside.sum()) >= 4:
            b, a = srgb_to_oklab(before[inside]).median(0).values, srgb_to_oklab(after[inside]).median(0).values
            moved += int(float((a - goal).norm()) < float((b - goal).norm()))
    assert moved >= 1  # the region shows and its colour moved toward the target


class _BreaksFirstTries(ImageEditor):
    """The procedural edit, except that the first try of every keyframe (or every try, with always=True)
    comes back as noise inside the mask: what a broken generative editor returns."""

    name = "breaks-first"
    deterministic = False

    def __init__(self, always: bool = False, deterministic: bool = False) -> None:
        self.inner, self.always, self.deterministic = make_editor(EditorSettings()), always, deterministic

    def calibrated(self, images: list[torch.Tensor], masks: list[torch.Tensor]) -> ImageEditor:
        out = _BreaksFirstTries(self.always, self.deterministic)
        out.inner = self.inner.calibrated(images, masks)
        return out

    def edit(self, image: torch.Tensor, mask: torch.Tensor, plan: EditPlan, seed: int = 0) -> EditedImage:
        good = self.inner.edit(image, mask, plan, seed)
        if not self.always and seed >= 104729:  # run_edit's second and later tries of a keyframe
            return good
        noise = torch.rand(image.shape, generator=torch.Generator().manual_seed(seed))
        raw = image * (1 - mask[..., None]) + noise * mask[..., None]
        return EditedImage(raw, raw, {"backend": self.name, "broken": True})


@pytest.mark.slow
def test_a_rejected_keyframe_is_retried_not_fatal(avatar) -> None:
    plan = colour_plan("make the lips blue", ["lips"], (35, 80, 210))
    config = EditConfig(size=80, keyframes=2, orbit_cameras=4, max_timesteps=1, min_steps=4, max_steps=6,
                        disc=DiscriminatorConfig(steps=60))
    result = run_edit(avatar, _selection(avatar, ["lips"]), plan, _BreaksFirstTries(), config)
    assert result is not None and not result.warnings
    assert any("rejected" in line for line in result.log)  # the noisy first tries were caught...
    assert len(result.views) == 2  # ...and each keyframe was edited again
    dc = compose(avatar.gaussians, [result.layer]).sh[_selection(avatar, ["lips"]), 0].mean(0)
    assert float(dc[2]) > float(avatar.gaussians.sh[_selection(avatar, ["lips"]), 0].mean(0)[2])  # bluer

    # a deterministic editor cannot be asked again with another seed: another view of the region is tried
    broken = run_edit(avatar, _selection(avatar, ["lips"]), plan, _BreaksFirstTries(always=True, deterministic=True),
                      config)
    assert any("trying t=" in line for line in broken.log)
    assert broken is not None and broken.warnings  # every try rejected: a warning, not "edit failed"
    assert "rejected every keyframe" in broken.warnings[0] and broken.layer.indices.numel() > 0
    # the Edit panel's thumbnails: the kept edits are marked used, every one below the gate's threshold
    assert broken.shots and all(s.used and not s.accepted and s.score < s.threshold for s in broken.shots)
    assert len(broken.shots) == len(broken.views)


def test_a_mixed_plan_brings_its_expression_layer(avatar) -> None:
    plan = colour_plan("make her eyes green and give her a big smile", ["eyes"], (40, 160, 60), part="iris",
                       expression={"smile": 0.9})
    result = run_edit(avatar, _selection(avatar, ["eyes"]), plan, make_editor(EditorSettings()), SMALL)
    assert result is not None and [layer.kind for layer in result.layers] == ["edit", "expression"]
    assert result.layer.kind == "edit" and result.layer.indices.numel() > 0
    smile = result.expression
    assert smile is not None and float(smile.expr_offset[avatar.head.expression_index("smile")]) == pytest.approx(0.9)
    # the keyframes wore the new expression: their frames carry the smile
    index = avatar.head.expression_index("smile")
    assert all(float(v.params.expr[0, index]) == pytest.approx(0.9) for v in result.views)
    assert result.appearance is result.layer
    # the chosen keyframes, for thumbnails: crops before/after with the gate's verdict
    used = [s for s in result.shots if s.used]
    assert len(used) == len(result.views) and [s.slot for s in used] == sorted(s.slot for s in used)
    for shot, view in zip(used, result.views):
        assert (shot.timestep, shot.camera_index) == (view.timestep, view.camera_index)
        assert shot.before.shape == shot.after.shape == (80, 80, 3) and shot.mask.shape == (80, 80)
        assert shot.accepted and shot.score >= shot.threshold > 0
        inside = shot.mask > 0.8
        greener = srgb_to_oklab(shot.after[inside])[:, 1].mean() < srgb_to_oklab(shot.before[inside])[:, 1].mean()
        assert int(inside.sum()) > 0 and bool(greener)
    assert result.layer.info["shots"][0]["accepted"] is True


def test_darker_brows_shift_their_lightness_and_say_what_was_not_done(avatar) -> None:
    plan = refine("make her eyebrows thicker and darker", backend="rules").plan
    assert plan.lightness < 0 and plan.colour is None and EditKind.SHAPE in plan.kinds
    sel = _selection(avatar, ["brows"])
    result = run_edit(avatar, sel, plan, make_editor(EditorSettings()), SMALL)
    assert result is not None and any("shape part of the plan was not done" in w for w in result.warnings)
    edited = compose(avatar.gaussians, [result.layer])
    assert torch.equal(edited.xyz, avatar.gaussians.xyz)  # no geometry was optimised toward colour-only targets
    before = srgb_to_oklab(dc_to_rgb(avatar.gaussians.sh[sel, 0]).clamp(0, 1)).median(0).values
    after = srgb_to_oklab(dc_to_rgb(edited.sh[sel, 0]).clamp(0, 1)).median(0).values
    assert -0.25 < float(after[0] - before[0]) < -0.07  # darker by about the plan's shift
    assert float((after[1:] - before[1:]).norm()) < 0.03  # the same hue
    held = _held_out(avatar)[0]
    verts = avatar.posed_vertices(held[0]).float()
    old, mask = render_view(avatar, verts, held[1], sel.float())
    new, _ = render_view(Avatar(avatar.head, edited, avatar.params, avatar.name), verts, held[1], sel.float())
    inside = mask >= 0.8
    assert float(srgb_to_oklab(new[inside])[:, 0].median()) < float(srgb_to_oklab(old[inside])[:, 0].median()) - 0.05


def test_view_dependent_colours_go_through_the_mapping_in_every_direction() -> None:
    gen = torch.Generator().manual_seed(3)
    sh = torch.randn(50, 16, 3, generator=gen) * 0.05
    sh[:, 0] = torch.rand(50, 3, generator=gen) * 1.2 - 0.6
    dirs = torch.nn.functional.normalize(torch.randn(200, 3, generator=gen), dim=1)
    from engine.render.projection import sh_basis

    basis = sh_basis(dirs, 3)  # [D, 16]
    colours = lambda s: torch.einsum("dk,mkc->mdc", basis, s) + 0.5  # [M, D, 3]
    assert torch.allclose(colours(mapped_sh(sh, lambda c: c)), colours(sh), atol=1e-3)  # identity stays
    half = mapped_sh(sh, lambda c: 0.5 * c + 0.25)  # a linear mapping is reproduced exactly in every direction
    assert torch.allclose(colours(half), 0.5 * colours(sh).clamp(0, 1) + 0.25, atol=2e-3)
    flat = sh.clone()
    flat[:, 1:] = 0
    out = mapped_sh(flat, lambda c: 1 - c)  # no view-dependent terms: only the DC changes
    assert torch.equal(out[:, 1:], flat[:, 1:]) and torch.allclose(dc_to_rgb(out[:, 0]), 1 - dc_to_rgb(flat[:, 0]).clamp(0, 1))
