"""FLAME parameters: one named field per FLAME input, batched over T frames.

Key names follow GaussianAvatars' flame_param.npz: shape, expr, rotation, neck_pose, jaw_pose,
eyes_pose, translation, static_offset, dynamic_offset. Rotations are axis-angle (radians).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

FRAME_KEYS: tuple[str, ...] = ("expr", "rotation", "neck_pose", "jaw_pose", "eyes_pose", "translation")
"""Fields that have one row per frame."""


@dataclass(frozen=True)
class FlameParams:
    """FLAME inputs for T frames of one subject."""

    shape: Tensor  # [S] identity coefficients (shared by all frames)
    expr: Tensor  # [T, E] expression coefficients
    rotation: Tensor  # [T, 3] global head rotation, axis-angle
    neck_pose: Tensor  # [T, 3] neck joint, axis-angle
    jaw_pose: Tensor  # [T, 3] jaw joint, axis-angle (x opens the mouth)
    eyes_pose: Tensor  # [T, 6] left eye then right eye, axis-angle
    translation: Tensor  # [T, 3] world translation
    static_offset: Tensor | None = None  # [V, 3] per-vertex offset added to the template, or None
    dynamic_offset: Tensor | None = None  # [T, V, 3] per-frame vertex offsets, or None

    def __post_init__(self) -> None:
        t = self.expr.shape[0]
        assert self.shape.ndim == 1, f"shape must be [S], got {tuple(self.shape.shape)}"
        assert self.expr.ndim == 2, f"expr must be [T, E], got {tuple(self.expr.shape)}"
        for name, width in (("rotation", 3), ("neck_pose", 3), ("jaw_pose", 3), ("eyes_pose", 6), ("translation", 3)):
            value = getattr(self, name)
            assert value.shape == (t, width), f"{name} must be [{t}, {width}], got {tuple(value.shape)}"
        if self.static_offset is not None:
            assert self.static_offset.ndim == 2 and self.static_offset.shape[1] == 3, (
                f"static_offset must be [V, 3], got {tuple(self.static_offset.shape)}"
            )
        if self.dynamic_offset is not None:
            assert self.dynamic_offset.ndim == 3 and self.dynamic_offset.shape[0] == t, (
                f"dynamic_offset must be [{t}, V, 3], got {tuple(self.dynamic_offset.shape)}"
            )

    @property
    def frames(self) -> int:
        return int(self.expr.shape[0])

    @staticmethod
    def neutral(
        frames: int = 1, n_shape: int = 300, n_expr: int = 100, dtype: torch.dtype = torch.float32
    ) -> "FlameParams":
        """All-zero parameters for `frames` frames."""
        z = lambda *s: torch.zeros(*s, dtype=dtype)  # noqa: E731
        return FlameParams(z(n_shape), z(frames, n_expr), z(frames, 3), z(frames, 3), z(frames, 3), z(frames, 6), z(frames, 3))

    def frame(self, index: int | slice | Tensor) -> "FlameParams":
        """The parameters of some frames (an int keeps a frame axis of length 1)."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        changes = {k: getattr(self, k)[index] for k in FRAME_KEYS}
        if self.dynamic_offset is not None:
            changes["dynamic_offset"] = self.dynamic_offset[index]
        return replace(self, **changes)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "FlameParams":
        """The same parameters on another device or dtype."""
        return replace(
            self,
            **{
                f.name: getattr(self, f.name).to(device=device, dtype=dtype)
                for f in fields(self)
                if getattr(self, f.name) is not None
            },
        )

    def with_values(self, **changes: Tensor | None) -> "FlameParams":
        """A copy with some fields replaced."""
        return replace(self, **changes)
