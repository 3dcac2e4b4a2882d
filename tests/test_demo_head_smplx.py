"""The embedded demo head goes through the same loader as a real FLAME model, and smplx agrees with it."""

from __future__ import annotations

import smplx
import torch

from engine.head.model import DEMO_HEAD_DIR, load_head


def test_demo_head_forward_matches_smplx_flame():
    head = load_head("demo")
    e = len(head.expression_names)
    flame = smplx.FLAME(model_path=str(DEMO_HEAD_DIR), ext="npz", num_betas=10, num_expression_coeffs=e,
                        use_face_contour=False, batch_size=1)
    gen = torch.Generator().manual_seed(0)
    betas = torch.randn(1, 10, generator=gen) * 0.5
    expr = torch.rand(1, e, generator=gen)
    pose = torch.randn(1, 15, generator=gen) * 0.15
    ours = head.neutral_params().with_values(
        shape=torch.nn.functional.pad(betas[0], (0, head.n_shape - 10)),
        expr=torch.nn.functional.pad(expr, (0, head.n_expr - e)),
        rotation=pose[:, 0:3], neck_pose=pose[:, 3:6], jaw_pose=pose[:, 6:9], eyes_pose=pose[:, 9:15],
    )
    theirs = flame(betas=betas, expression=expr, global_orient=pose[:, 0:3], neck_pose=pose[:, 3:6],
                   jaw_pose=pose[:, 6:9], leye_pose=pose[:, 9:12], reye_pose=pose[:, 12:15])
    torch.testing.assert_close(head(ours), theirs.vertices, rtol=1e-4, atol=1e-6)
