"""Direct adjustments (engine/edit/adjust.py) on the demo avatar: what changes, what stays bit-identical."""

from __future__ import annotations

import math

import pytest
import torch

from engine.avatar.avatar import Avatar
from engine.avatar.binding import quat_to_matrix
from engine.avatar.demo import load_demo_avatar
from engine.edit import colour_space as cs
from engine.edit.adjust import (
    HIDDEN_LOGIT,
    AdjustParams,
    AdjustPreview,
    adjust_layer,
    apply_deltas,
    grade_colours,
    reference_frames,
    selection_from_components,
)
from engine.edit.layers import DELTA_FIELDS, compose

BLUE = AdjustParams(tint=(0.1, 0.3, 0.9), strength=0.6)


@pytest.fixture(scope="module")
def avatar() -> Avatar:
    return load_demo_avatar(count=12_000)


def _rgb(g) -> torch.Tensor:
    return cs.dc_to_rgb(g.sh[:, 0])


def test_tint_changes_only_the_lips_dc(avatar: Avatar) -> None:
    base = avatar.gaussians
    lips = selection_from_components(base, ["lips"])
    assert 0 < int(lips.sum()) < base.count // 10
    out = compose(base, [adjust_layer(base, lips, BLUE)])
    assert out.subset(~lips).equal(base.subset(~lips))  # every parameter of every other Gaussian
    for name in ("binding", "xyz", "rotation", "log_scale", "opacity_logit", "labels"):
        assert torch.equal(getattr(out, name), getattr(base, name)), name
    assert torch.equal(out.sh[:, 1:], base.sh[:, 1:])
    moved = (_rgb(out)[lips] - _rgb(base)[lips]).abs().amax(dim=1)
    assert bool((moved > 0.05).all())
    # bluer than before: blue minus red grows on every lip Gaussian
    before, after = _rgb(base)[lips], _rgb(out)[lips]
    assert bool(((after[:, 2] - after[:, 0]) > (before[:, 2] - before[:, 0]) + 0.1).all())


def test_undo_toggle_and_region_revert_restore_exactly(avatar: Avatar) -> None:
    base = avatar.gaussians
    lips = selection_from_components(base, ["lips"])
    hair = selection_from_components(base, ["hair"])
    earlier = adjust_layer(base, hair, AdjustParams(brightness=-0.4, opacity=0.7))
    tint = adjust_layer(apply_deltas(base, [earlier]), lips, BLUE)
    both = compose(base, [earlier, tint])
    assert not both.equal(compose(base, [earlier]))
    assert compose(base, [earlier]).equal(compose(base, [earlier, tint.toggled(False)]))
    assert compose(base, []).equal(base)
    assert compose(base, [earlier, tint.without(lips)]).equal(compose(base, [earlier]))
    assert compose(base, [earlier.without(hair), tint.without(lips)]).equal(base)


def test_identity_and_unselected_give_empty_layers(avatar: Avatar) -> None:
    base = avatar.gaussians
    lips = selection_from_components(base, ["lips"])
    layer = adjust_layer(base, lips, AdjustParams())
    assert layer.indices.numel() == 0 and not layer.deltas and layer.hidden.numel() == 0
    none = adjust_layer(base, torch.zeros(base.count, dtype=torch.bool), BLUE)
    assert none.indices.numel() == 0 and compose(base, [none]).equal(base)


def test_soft_selection_scales_the_change(avatar: Avatar) -> None:
    base = avatar.gaussians
    lips = selection_from_components(base, ["lips"])
    full = compose(base, [adjust_layer(base, lips, BLUE)])
    half = compose(base, [adjust_layer(base, lips.float() * 0.5, BLUE)])
    d_full = _rgb(full)[lips] - _rgb(base)[lips]
    d_half = _rgb(half)[lips] - _rgb(base)[lips]
    torch.testing.assert_close(d_half, 0.5 * d_full, atol=1e-5, rtol=1e-4)


def test_grading_operations_move_colours_the_right_way() -> None:
    gen = torch.Generator().manual_seed(1)
    rgb = 0.2 + 0.6 * torch.rand(200, 3, generator=gen)
    w = torch.ones(200)
    assert bool((cs.luma(grade_colours(rgb, w, AdjustParams(brightness=0.5))) > cs.luma(rgb)).all())
    assert bool((cs.luma(grade_colours(rgb, w, AdjustParams(brightness=-0.5))) < cs.luma(rgb)).all())
    grey = grade_colours(rgb, w, AdjustParams(saturation=-1.0))
    assert float((grey.amax(1) - grey.amin(1)).max()) < 2e-3
    warm = grade_colours(rgb, w, AdjustParams(temperature=0.8))
    assert bool((warm[:, 0] / warm[:, 2] > rgb[:, 0] / rgb[:, 2]).all())
    punchy = grade_colours(rgb, w, AdjustParams(contrast=0.5))
    assert float(cs.luma(punchy).std()) > 1.3 * float(cs.luma(rgb).std())
    lv = grade_colours(torch.tensor([[0.2, 0.5, 0.8]]), torch.ones(1), AdjustParams(black_point=0.2, white_point=0.8))
    torch.testing.assert_close(lv, torch.tensor([[0.0, 0.5, 1.0]]))
    assert grade_colours(rgb, w, AdjustParams()) is rgb


def test_opacity_scale_and_hide(avatar: Avatar) -> None:
    base = avatar.gaussians
    ears = selection_from_components(base, ["ears"])
    out = compose(base, [adjust_layer(base, ears, AdjustParams(opacity=0.5))])
    torch.testing.assert_close(torch.sigmoid(out.opacity_logit[ears]), 0.5 * torch.sigmoid(base.opacity_logit[ears]))
    assert torch.equal(out.opacity_logit[~ears], base.opacity_logit[~ears])
    hidden = compose(base, [adjust_layer(base, ears, AdjustParams(hide=True))])
    assert hidden.count == base.count - int(ears.sum())
    assert not bool(torch.isin(hidden.labels, torch.unique(base.labels[ears])).any())
    assert hidden.equal(base.subset(~ears))


def test_higher_sh_bands_follow_the_luma_ratio(avatar: Avatar) -> None:
    base = avatar.gaussians
    gen = torch.Generator().manual_seed(2)
    g = base.replace(sh=torch.cat([base.sh[:, :1], 0.05 * torch.randn(base.count, 15, 3, generator=gen)], 1))
    lips = selection_from_components(g, ["lips"])
    out = compose(g, [adjust_layer(g, lips, AdjustParams(brightness=-0.5))])
    ratio = cs.luma(_rgb(out)[lips].clamp_min(0)).clamp_min(1e-3) / cs.luma(_rgb(g)[lips].clamp_min(0)).clamp_min(1e-3)
    torch.testing.assert_close(out.sh[lips, 1:], g.sh[lips, 1:] * ratio[:, None, None], atol=1e-6, rtol=1e-5)
    assert bool((ratio < 0.9).all())
    assert torch.equal(out.sh[~lips], g.sh[~lips])


def _world_rot(splats) -> torch.Tensor:
    return quat_to_matrix(splats.quats)


def test_transform_at_reference_pose_and_follows_the_face(avatar: Avatar) -> None:
    base = avatar.gaussians
    nose = selection_from_components(base, ["nose"])
    frames = reference_frames(avatar)
    offset = (0.002, -0.001, 0.004)
    moved = compose(base, [adjust_layer(base, nose, AdjustParams(offset=offset), frames)])
    before = avatar.splats()
    after = Avatar(avatar.head, moved, avatar.params).splats()
    torch.testing.assert_close(after.means[nose] - before.means[nose], torch.tensor(offset).expand(int(nose.sum()), 3),
                               atol=2e-6, rtol=0)
    assert torch.equal(after.means[~nose], before.means[~nose])
    # at a held-out expression each moved Gaussian keeps its place in its triangle's frame
    smile = avatar.params_with(0, smile=1.0, pucker=0.5)
    assert torch.equal(moved.xyz[~nose], base.xyz[~nose])
    shift = Avatar(avatar.head, moved, avatar.params).splats(smile).means - avatar.splats(smile).means
    assert float(shift[nose].norm(dim=1).min()) > 0.5 * math.dist(offset, (0, 0, 0))
    # rotation + scale about the centroid
    spun = compose(base, [adjust_layer(base, nose, AdjustParams(rotation=(0, 0, 90), scale=1.5), frames)])
    s1 = Avatar(avatar.head, spun, avatar.params).splats()
    c = before.means[nose].mean(0)
    rz = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    torch.testing.assert_close(s1.means[nose] - c, 1.5 * (before.means[nose] - c) @ rz.T, atol=2e-6, rtol=0)
    torch.testing.assert_close(_world_rot(s1)[nose], rz @ _world_rot(before)[nose], atol=1e-5, rtol=0)
    torch.testing.assert_close(s1.scales[nose], 1.5 * before.scales[nose])
    with pytest.raises(ValueError, match="triangle frames"):
        adjust_layer(base, nose, AdjustParams(offset=offset))


def test_preview_matches_the_committed_layer(avatar: Avatar) -> None:
    base = avatar.gaussians
    earlier = adjust_layer(base, selection_from_components(base, ["ears"]), AdjustParams(hide=True))
    hair = selection_from_components(base, ["hair"])
    frames = reference_frames(avatar)
    preview = AdjustPreview(base, [earlier], hair, frames)
    sequence = [AdjustParams(tint=(0.9, 0.8, 0.2), strength=s) for s in (0.1, 0.4, 0.7)]
    sequence += [AdjustParams(brightness=0.3, opacity=0.6), AdjustParams(offset=(0, 0.003, 0), scale=1.1)]
    for params in sequence:
        shown = preview.update(params)
        assert shown.equal(compose(base, [earlier, preview.layer(params)])), params
    assert preview.needs_deform
    shown = preview.update(AdjustParams(hide=True))
    rows = selection_from_components(shown, ["hair"])
    assert bool((shown.opacity_logit[rows] == HIDDEN_LOGIT).all())
    assert bool((shown.opacity_logit[~rows] > HIDDEN_LOGIT).all())
    assert preview.update(AdjustParams()).equal(compose(base, [earlier]))
    for name in DELTA_FIELDS:  # the preview never wrote into the base
        assert getattr(base, name).data_ptr() != getattr(shown, name).data_ptr()


def test_params_validation_and_round_trip() -> None:
    p = AdjustParams(tint=(0.2, 0.4, 0.6), strength=0.3, rotation=(0, 10, 0), hide=True)
    assert AdjustParams.from_dict(p.to_dict()) == p
    for bad in ({"strength": 1.5}, {"black_point": 0.6, "white_point": 0.5}, {"scale": 0.0}, {"brightness": -2.0}):
        with pytest.raises(ValueError):
            AdjustParams(**bad)
    with pytest.raises(ValueError, match="unknown facial component"):
        selection_from_components(load_demo_avatar(count=12_000).gaussians, ["lipz"])
