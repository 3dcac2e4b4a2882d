"""Edit stage: keyframes, discriminator (AUC, gate), cancel, undo, expression layers, nothing outside changes."""

from __future__ import annotations

import pytest
import torch

from engine.avatar.demo import load_demo_avatar
from engine.edit.discriminator import DiscriminatorConfig, auc, gate_samples, train_discriminator
from engine.edit.editors import EditorSettings, make_editor
from engine.edit.keyframes import (
    farthest_point_keyframes,
    orbit_cameras,
    orbit_views,
    view_features,
    view_visibility,
)
from engine.edit.layers import compose
from engine.edit.optimise import OptimConfig
from engine.edit.run import EditConfig, run_edit
from engine.edit.views import crop_camera, render_view
from engine.head.components import labels_of
from engine.prompting import refine


@pytest.fixture(scope="module")
def avatar():
    return load_demo_avatar(count=8000)


def _lips(avatar) -> torch.Tensor:
    return torch.isin(avatar.gaussians.labels, torch.tensor(labels_of(["lips"])))


def _small_config(**kw) -> EditConfig:
    base = dict(size=64, keyframes=2, min_steps=4, passes=2, max_steps=6, orbit_cameras=4, discriminator=False,
                optim=OptimConfig(refresh_every=2))
    base.update(kw)
    return EditConfig(**base)


def test_keyframes_spread_over_views_and_skip_invisible(avatar) -> None:
    cams = orbit_cameras(avatar, 9, 64, yaw_range=170.0)
    views = orbit_views(avatar, avatar.params, cams)
    vis = view_visibility(avatar, views, _lips(avatar).float())
    assert float(vis[4]) > 0.9 and float(vis[0]) < 0.1 and float(vis[-1]) < 0.1  # front sees the lips, back hardly
    choice = farthest_point_keyframes(view_features(avatar, views), vis, 3)
    assert len(choice.indices) == 3 and all(float(vis[i]) >= 0.05 for i in choice.indices)
    yaws = sorted(float(views[i].camera.position[0]) for i in choice.indices)
    assert yaws[-1] - yaws[0] > 0.3  # spread, not three neighbours
    full = farthest_point_keyframes(view_features(avatar, views), vis, 9)
    assert full.coverage == pytest.approx(1.0) and full.covering_radius == pytest.approx(0.0, abs=1e-6)


def _crops(avatar, count: int, offset: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    sel = _lips(avatar)
    out = []
    for cam in orbit_cameras(avatar, count, 256, offset=offset):
        verts = avatar.posed_vertices().float()
        pts = avatar.gaussians.subset(sel).deform(verts, avatar.head.faces).means
        out.append(render_view(avatar, verts, crop_camera(cam, pts, 96, min_fraction=0.08), sel.float()))
    return out


@pytest.mark.slow
def test_discriminator_separates_clean_edits_from_corruptions_and_gates(avatar) -> None:
    train = _crops(avatar, 8, 0.0)
    held = _crops(avatar, 6, 0.5)
    disc = train_discriminator([rgb for rgb, _ in train], DiscriminatorConfig(steps=100, seed=0),
                               masks=[m for _, m in train])
    assert disc.calibration is not None and disc.calibration.clean_pass_share >= 0.9
    cond, clean, broken, masks = gate_samples([r for r, _ in held], [m for _, m in held], 24,
                                              torch.Generator().manual_seed(123))
    assert auc(disc.score(cond, clean, masks), disc.score(cond, broken, masks)) > 0.9
    rgb, mask = held[2]
    plan = refine("make the lips blue").plan
    good = make_editor(EditorSettings()).edit(rgb, mask, plan).image
    ok, _, _ = disc.gate(good, mask, rgb)
    assert ok
    noise = torch.rand(rgb.shape, generator=torch.Generator().manual_seed(5))
    broken = rgb * (1 - mask[..., None]) + noise * mask[..., None]
    ok, _, reason = disc.gate(broken, mask, rgb)
    assert not ok and "broken" in reason


def test_cancelled_edit_returns_nothing_and_changes_nothing(avatar) -> None:
    before = avatar.gaussians.detach_clone()
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    result = run_edit(avatar, _lips(avatar), refine("make the lips blue").plan, make_editor(EditorSettings()),
                      _small_config(), cancel=cancel)
    assert result is None
    assert avatar.gaussians.equal(before)


def test_edit_changes_only_the_selection_and_undo_restores_exactly(avatar) -> None:
    base = avatar.gaussians.detach_clone()
    sel = _lips(avatar)
    previews = []
    result = run_edit(avatar, sel, refine("make the lips blue").plan, make_editor(EditorSettings()),
                      _small_config(), preview=lambda i, b, a: previews.append((i, b.shape, a.shape)))
    layer = result.layer
    assert layer.kind == "edit" and layer.indices.numel() > 0 and previews
    assert bool(sel[layer.indices].all())  # nothing outside the selection is touched
    edited = compose(avatar.gaussians, [layer])
    assert not edited.equal(base)
    outside = ~sel
    assert edited.subset(outside).equal(base.subset(outside))
    dc = edited.sh[sel, 0].mean(0) - base.sh[sel, 0].mean(0)
    assert float(dc[2]) > 0 and float(dc[0]) < 0  # bluer, less red
    assert compose(avatar.gaussians, []).equal(base)  # undo: the layer list without it
    assert compose(avatar.gaussians, [layer.toggled(False)]).equal(base)
    assert avatar.gaussians.equal(base)


def test_expression_plan_becomes_expression_layer(avatar) -> None:
    plan = refine("smile more").plan
    result = run_edit(avatar, _lips(avatar), plan, make_editor(EditorSettings()))
    layer = result.layer
    assert layer.kind == "expression" and layer.indices.numel() == 0
    assert float(layer.expr_offset[avatar.head.expression_index("smile")]) == pytest.approx(plan.expression["smile"])


def test_empty_selection_is_a_clear_error(avatar) -> None:
    with pytest.raises(ValueError, match="nothing is selected"):
        run_edit(avatar, torch.zeros(avatar.gaussians.count, dtype=torch.bool), refine("make the lips blue").plan,
                 make_editor(EditorSettings()), _small_config())
