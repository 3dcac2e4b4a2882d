"""Parts inside components (engine.edit.parts): the iris is the eye's dark coloured ring around the
forward axis (pupil and catch light left out), the sclera the light rest, the teeth the light front of the
mouth; spatial groups split a bilateral region into its pieces."""

from __future__ import annotations

import math

import pytest
import torch

from engine.avatar.demo import load_demo_avatar
from engine.edit.parts import (
    PartError,
    base_oklab,
    eye_geometry,
    fit_sphere,
    narrow_to_part,
    part_mask,
    rest_means,
)
from engine.edit.regions import spatial_groups
from engine.head.components import LABEL, labels_of


@pytest.fixture(scope="module")
def avatar():
    return load_demo_avatar()


def test_sphere_fit_recovers_centre_and_radius() -> None:
    gen = torch.Generator().manual_seed(0)
    d = torch.nn.functional.normalize(torch.randn(300, 3, generator=gen), dim=1)
    d = d[d[:, 2] > -0.3]  # a partial sphere, as the visible part of an eyeball
    centre, radius = fit_sphere(torch.tensor([0.03, 0.02, 0.06]) + 0.012 * d)
    assert torch.allclose(centre, torch.tensor([0.03, 0.02, 0.06]), atol=1e-5)
    assert radius == pytest.approx(0.012, rel=1e-4)


def test_iris_rule_finds_ring_edges_from_the_lightness_profile() -> None:
    """A synthetic eyeball: black pupil to 12°, brown iris to 30°, white sclera beyond."""
    gen = torch.Generator().manual_seed(1)
    d = torch.nn.functional.normalize(torch.randn(6000, 3, generator=gen), dim=1)
    theta = torch.acos(d[:, 2].clamp(-1, 1))
    light = torch.where(theta < math.radians(12), 0.1, torch.where(theta < math.radians(30), 0.45, 0.9))
    geo = eye_geometry(0.012 * d, light)
    assert math.degrees(geo.iris_edge) == pytest.approx(30.0, abs=2.5)
    assert math.degrees(geo.pupil_edge) == pytest.approx(12.0, abs=2.5)
    assert float(geo.axis[2]) > 0.99 and geo.ring_lightness == pytest.approx(0.45, abs=0.01)


def test_iris_is_dark_ring_in_front_of_each_eye_and_sclera_the_light_rest(avatar) -> None:
    iris, sclera = part_mask(avatar, "iris"), part_mask(avatar, "sclera")
    eyes = torch.isin(avatar.gaussians.labels, torch.tensor(labels_of(["eyes"])))
    assert bool(eyes[iris].all()) and bool(eyes[sclera].all()) and not bool((iris & sclera).any())
    light = base_oklab(avatar)[:, 0]
    assert float(light[iris].median()) < float(light[sclera].median()) - 0.2  # the iris is the darker ring
    rest = rest_means(avatar)
    for name in ("left_eye", "right_eye"):
        on = avatar.gaussians.labels == LABEL[name]
        assert int((iris & on).sum()) >= 10  # both eyes have an iris
        # the iris faces forward: its Gaussians lie in front of the eyeball's centre
        centre = rest[on].mean(0)
        assert float((rest[iris & on][:, 2] - centre[2]).min()) > 0
    assert int(iris.sum()) < 0.2 * int(eyes.sum())  # a small part, not the eyeball


def test_teeth_are_the_light_front_of_the_mouth(avatar) -> None:
    teeth = part_mask(avatar, "teeth")
    inside = avatar.gaussians.labels == LABEL["mouth_interior"]
    assert bool(inside[teeth].all()) and 0 < int(teeth.sum()) < int(inside.sum())


def test_narrowing_a_selection_to_a_part(avatar) -> None:
    eyes = torch.isin(avatar.gaussians.labels, torch.tensor(labels_of(["eyes"])))
    narrowed = narrow_to_part(avatar, eyes.float(), "iris")
    assert torch.equal(narrowed > 0, part_mask(avatar, "iris"))
    assert torch.equal(narrow_to_part(avatar, eyes.float(), None), eyes.float())  # no part: unchanged
    lips = torch.isin(avatar.gaussians.labels, torch.tensor(labels_of(["lips"])))
    with pytest.raises(PartError, match="holds none of the iris"):
        narrow_to_part(avatar, lips.float(), "iris")
    with pytest.raises(PartError, match="unknown part"):
        part_mask(avatar, "nostril")


def test_spatial_groups_split_bilateral_regions(avatar) -> None:
    rest = rest_means(avatar)
    extent = float((rest.max(0).values - rest.min(0).values).max())
    for names, count in ((["eyes"], 2), (["ears"], 2), (["brows"], 2), (["lips"], 1), (["nose"], 1)):
        sel = torch.isin(avatar.gaussians.labels, torch.tensor(labels_of(names)))
        groups = spatial_groups(rest[sel], extent)
        assert int(groups.max()) + 1 == count, names
    eyes = torch.isin(avatar.gaussians.labels, torch.tensor(labels_of(["eyes"])))
    groups = spatial_groups(rest[eyes], extent)
    left = avatar.gaussians.labels[eyes] == LABEL["left_eye"]
    assert len(set(groups[left].tolist())) == 1 and len(set(groups[~left].tolist())) == 1  # one eye, one group
