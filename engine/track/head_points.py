"""Posing only some vertices of a head: what landmark fitting needs, many times faster than the whole mesh.

FLAME's linear blend skinning is per vertex once the joints are known, and the joints are linear in
the shape/expression coefficients (J = J_regressor · (template + dirs · β)), so the joints' part of
every blendshape is precomputed and only the chosen vertices are shaped, pose-corrected and skinned.
The result equals `HeadModel.forward` at those vertices (tests/test_track_fit.py checks it).
"""

from __future__ import annotations

import torch
from smplx.lbs import batch_rigid_transform, batch_rodrigues
from torch import Tensor

from engine.head.model import HeadModel
from engine.head.params import FlameParams


class HeadPoints(torch.nn.Module):
    """forward(params) -> posed positions [T, K, 3] of K chosen vertices of a head."""

    def __init__(self, head: HeadModel, vertex_ids: Tensor) -> None:
        super().__init__()
        assert vertex_ids.ndim == 1, f"vertex_ids must be [K], got {tuple(vertex_ids.shape)}"
        ids = vertex_ids.long()
        self._fit_params = head.fit_params  # a bound method, not a submodule: .double() leaves the head alone
        dirs = torch.cat([head.shapedirs, head.exprdirs], dim=2)  # [V, 3, B]
        self.n_shape_used = int(head.shapedirs.shape[2])
        self.n_expr_used = int(head.exprdirs.shape[2])
        self.register_buffer("ids", ids)
        k = len(ids)
        # stored channel-major ([.., 3, K]) so every product below is one plain matrix multiply
        self.register_buffer("template", head.v_template[ids].T.contiguous())  # [3, K]
        self.register_buffer("dirs", dirs[ids].permute(2, 1, 0).reshape(-1, 3 * k).contiguous())  # [B, 3K]
        self.register_buffer("joint_template", head.J_regressor @ head.v_template)  # [J, 3]
        self.register_buffer("joint_dirs", torch.einsum("jv,vcb->jcb", head.J_regressor, dirs))  # [J, 3, B]
        posedirs = head.posedirs.T.reshape(head.n_verts, 3, -1)  # [V, 3, P]
        self.register_buffer("posedirs", posedirs[ids].permute(2, 1, 0).reshape(-1, 3 * k).contiguous())  # [P, 3K]
        self.register_buffer("weights_t", head.lbs_weights[ids].T.contiguous())  # [J, K]
        self.register_buffer("J_regressor", head.J_regressor.clone())  # [J, V]
        self.register_buffer("parents", head.parents.clone())

    def forward(self, params: FlameParams) -> Tensor:
        p = self._fit_params(params)
        t, k = p.frames, self.ids.shape[0]
        shape = p.shape[: self.n_shape_used].expand(t, -1)
        betas = torch.cat([shape, p.expr[:, : self.n_expr_used]], dim=1)  # [T, B]
        v = self.template + (betas @ self.dirs).reshape(t, 3, k)  # [T, 3, K]
        joints = self.joint_template + torch.einsum("jcb,tb->tjc", self.joint_dirs, betas)  # [T, J, 3]
        if p.static_offset is not None:
            v = v + p.static_offset[self.ids].T
            joints = joints + self.J_regressor @ p.static_offset
        pose = torch.cat([p.rotation, p.neck_pose, p.jaw_pose, p.eyes_pose], dim=1)  # [T, 3J]
        rots = batch_rodrigues(pose.reshape(-1, 3)).reshape(t, -1, 3, 3)
        feature = (rots[:, 1:] - torch.eye(3, dtype=rots.dtype)).reshape(t, -1)  # [T, P]
        v = v + (feature @ self.posedirs).reshape(t, 3, k)
        _, rel = batch_rigid_transform(rots, joints, self.parents, dtype=rots.dtype)  # [T, J, 4, 4]
        skin = rel[:, :, :3].reshape(t, -1, 12).transpose(1, 2) @ self.weights_t  # [T, 12, K]: rows a·4 + b
        skin = skin.reshape(t, 3, 4, k)
        posed = (skin[:, :, :3] * v[:, None]).sum(2) + skin[:, :, 3]  # [T, 3, K]
        posed = posed.transpose(1, 2)  # [T, K, 3]
        if p.dynamic_offset is not None:
            posed = posed + p.dynamic_offset[:, self.ids]
        return posed + p.translation[:, None, :]
