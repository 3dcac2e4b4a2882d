"""Splat export: a standard world-space 3DGS ply read back by plyfile, and the GaussianAvatars layout."""

from __future__ import annotations

import numpy as np
import torch
from plyfile import PlyData

from engine.avatar.files import load_avatar
from engine.edit.layers import PoseOffset
from engine.export.splat_export import export_gaussianavatars, export_standard_ply
from tests.test_export_video import talking, tiny_avatar


def test_standard_ply_is_world_space_with_all_sh_bands(tmp_path):
    avatar = tiny_avatar(n=120)
    current = talking(avatar.head, 5).frame(4)  # the current expression: not the neutral one
    offset = torch.zeros(avatar.head.n_expr)
    offset[1] = 0.7
    export_standard_ply(avatar, tmp_path / "out.ply", current, PoseOffset(expr=offset))
    ply = PlyData.read(str(tmp_path / "out.ply"))
    vertex = ply["vertex"]
    names = [p.name for p in vertex.properties]
    expected_names = (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
                      + [f"f_rest_{i}" for i in range(45)]
                      + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])
    assert names == expected_names
    assert all(vertex.data.dtype[name] == np.dtype("<f4") for name in names)
    assert vertex.count == 120
    expr = current.expr.clone()
    expr[0, 1] += 0.7
    splats = avatar.splats(current.with_values(expr=expr))
    neutral = avatar.splats(avatar.frame_params(0))
    xyz = np.stack([vertex[a] for a in "xyz"], axis=1)
    np.testing.assert_allclose(xyz, splats.means.detach().numpy(), rtol=0, atol=1e-6)
    assert np.abs(xyz - neutral.means.detach().numpy()).max() > 1e-4, "the export should be posed"
    sh = splats.sh.detach().numpy()
    np.testing.assert_array_equal(vertex["f_dc_1"], sh[:, 0, 1])
    np.testing.assert_array_equal(vertex["f_rest_0"], sh[:, 1, 0])  # channel-major: 15 red, 15 green, 15 blue
    np.testing.assert_array_equal(vertex["f_rest_15"], sh[:, 1, 1])
    np.testing.assert_array_equal(vertex["f_rest_44"], sh[:, 15, 2])
    np.testing.assert_allclose(np.exp(np.stack([vertex[f"scale_{i}"] for i in range(3)], 1)),
                               splats.scales.detach().numpy(), rtol=1e-5)
    opacity = 1 / (1 + np.exp(-vertex["opacity"]))
    np.testing.assert_allclose(opacity, splats.opacities.detach().numpy(), rtol=1e-5)
    quats = np.stack([vertex[f"rot_{i}"] for i in range(4)], 1)
    np.testing.assert_allclose(np.linalg.norm(quats, axis=1), 1.0, rtol=1e-5)


def test_gaussianavatars_layout_reloads_and_carries_the_sequence(tmp_path):
    avatar = tiny_avatar(n=80)
    seq = talking(avatar.head, 6)
    offset = torch.zeros(avatar.head.n_expr)
    offset[2] = -0.4
    export_gaussianavatars(avatar, tmp_path / "ga", seq, PoseOffset(offset, torch.tensor([0.2, 0.0, 0.0])))
    ply = PlyData.read(str(tmp_path / "ga" / "point_cloud.ply"))
    binding = np.asarray(ply["vertex"]["binding_0"])
    np.testing.assert_array_equal(binding, avatar.gaussians.binding.numpy().astype(np.float32))
    with np.load(tmp_path / "ga" / "flame_param.npz") as npz:
        assert npz["expr"].shape == (6, avatar.head.n_expr)
        np.testing.assert_allclose(npz["expr"][:, 2], seq.expr[:, 2].numpy() - 0.4, rtol=0, atol=1e-6)
        np.testing.assert_allclose(npz["jaw_pose"][:, 0], seq.jaw_pose[:, 0].numpy() + 0.2, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(npz["jaw_pose"][:, 1:], seq.jaw_pose[:, 1:].numpy())
    back = load_avatar(tmp_path / "ga", head=avatar.head)
    assert back.gaussians.equal(avatar.gaussians)
    assert back.params.frames == 6


def test_standard_ply_matches_what_gsplat_writes(tmp_path):
    """gsplat has no ply reader, but its exporter writes the standard 3DGS ply: ours must hold the same columns
    (log scales, opacity logits, SH rest channel-major) with the same values, read back by plyfile."""
    from gsplat.exporter import export_splats

    avatar = tiny_avatar(n=90, seed=3)
    export_standard_ply(avatar, tmp_path / "ours.ply")
    splats = avatar.splats(avatar.frame_params(0))
    opac = splats.opacities.detach().clamp(1e-6, 1 - 1e-6)
    sh = splats.sh.detach()  # [N, 16, 3]
    export_splats(splats.means.detach(), splats.scales.detach().log(),
                  torch.nn.functional.normalize(splats.quats.detach(), dim=-1), torch.log(opac / (1 - opac)),
                  sh[:, :1], sh[:, 1:], format="ply", save_to=str(tmp_path / "gsplat.ply"))
    ours, theirs = PlyData.read(str(tmp_path / "ours.ply"))["vertex"], PlyData.read(str(tmp_path / "gsplat.ply"))["vertex"]
    their_names = [p.name for p in theirs.properties]
    assert set(their_names) <= {p.name for p in ours.properties} and len(their_names) == 3 + 3 + 45 + 1 + 3 + 4
    assert ours.count == theirs.count == 90
    for name in their_names:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-5, atol=1e-6, err_msg=name)
