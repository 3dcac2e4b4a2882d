"""The FLAME-format parametric head: identity, expression and joint poses -> mesh vertices.

One code path serves the user's licensed FLAME model and the embedded demo head: the model file is
read by engine.head.flame_file and posed by smplx's linear blend skinning (smplx.lbs.lbs).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from smplx.lbs import lbs
from torch import Tensor

from engine.head.components import LABEL
from engine.head.flame_file import FlameFileError, read_flame_arrays
from engine.head.params import FlameParams

DEMO_HEAD_DIR = Path(__file__).resolve().parents[2] / "resources" / "demo_head"
"""The embedded demo head, in the same layout smplx.FLAME reads."""

FLAME_ENV = "DYNAMICAVATARS_FLAME"
"""Environment variable naming the user's FLAME model file or folder."""

SHAPE_SPACE = 300
"""FLAME's identity coefficients come first in shapedirs, expression coefficients after them."""


class HeadModel(torch.nn.Module):
    """A FLAME-format head: forward(params) -> vertices [T, V, 3]."""

    def __init__(self, arrays: dict[str, np.ndarray], name: str, source: str) -> None:
        super().__init__()
        self.name = name
        self.source = source  # "demo" or the model file's path
        f32 = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
        dirs = np.asarray(arrays["shapedirs"], dtype=np.float32)
        split = SHAPE_SPACE if dirs.shape[2] > SHAPE_SPACE else min(10, dirs.shape[2] // 2)
        self.n_shape = split
        self.n_expr = dirs.shape[2] - split
        # Only the columns up to the last non-zero one take part in the forward pass (exact: the rest are 0).
        used_shape = _used_columns(dirs[:, :, :split])
        used_expr = _used_columns(dirs[:, :, split:])
        self.register_buffer("v_template", f32(arrays["v_template"]))
        self.register_buffer("shapedirs", f32(dirs[:, :, :used_shape]))
        self.register_buffer("exprdirs", f32(dirs[:, :, split : split + used_expr]))
        posedirs = np.asarray(arrays["posedirs"], dtype=np.float32)
        self.register_buffer("posedirs", f32(posedirs.reshape(-1, posedirs.shape[-1]).T))
        self.register_buffer("J_regressor", f32(arrays["J_regressor"]))
        parents = torch.as_tensor(np.asarray(arrays["kintree_table"][0]).astype(np.int64))
        parents[0] = -1
        self.register_buffer("parents", parents)
        self.register_buffer("lbs_weights", f32(arrays["weights"]))
        self.register_buffer("faces", torch.as_tensor(np.asarray(arrays["f"]).astype(np.int64)))
        labels = arrays.get("face_labels")
        if labels is None:
            labels = np.full(len(arrays["f"]), LABEL["skin"])
        self.register_buffer("face_labels", torch.as_tensor(np.asarray(labels).astype(np.int64)))
        names = arrays.get("expression_names")
        self.expression_names: tuple[str, ...] = tuple(str(n) for n in names) if names is not None else ()

    @property
    def n_verts(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def n_faces(self) -> int:
        return int(self.faces.shape[0])

    def neutral_params(self, frames: int = 1) -> FlameParams:
        """Zero parameters sized for this head."""
        return FlameParams.neutral(frames, self.n_shape, self.n_expr)

    def expr_vector(self, **named: float) -> Tensor:
        """[E] expression coefficients from names (demo blendshape names, or expr_<index>)."""
        out = torch.zeros(self.n_expr)
        for name, value in named.items():
            out[self.expression_index(name)] = float(value)
        return out

    def expression_index(self, name: str) -> int:
        """Index of a named expression ('smile', or 'expr_12' for any model)."""
        if name in self.expression_names:
            return self.expression_names.index(name)
        if name.startswith("expr_") and name[5:].isdigit() and int(name[5:]) < self.n_expr:
            return int(name[5:])
        known = ", ".join(self.expression_names) or f"expr_0..expr_{self.n_expr - 1}"
        raise ValueError(f"unknown expression {name!r} for head {self.name!r}; known: {known}")

    def fit_params(self, params: FlameParams, origin: str = "parameters") -> FlameParams:
        """Params with shape/expr widths matched to this head.

        Missing coefficients are zero-padded; extra ones are dropped, with a warning when any is non-zero.
        """
        changes: dict[str, Tensor] = {}
        for key, width in (("shape", self.n_shape), ("expr", self.n_expr)):
            value = getattr(params, key)
            have = value.shape[-1]
            if have > width:
                extra = value[..., width:]
                if bool((extra != 0).any()):
                    warnings.warn(
                        f"{origin}: {key} has {have} coefficients, head {self.name!r} takes {width}; "
                        f"dropped non-zero extras (max |value| {float(extra.abs().max()):.3g})",
                        stacklevel=2,
                    )
                changes[key] = value[..., :width]
            elif have < width:
                changes[key] = torch.nn.functional.pad(value, (0, width - have))
        if params.static_offset is not None and params.static_offset.shape[0] != self.n_verts:
            raise ValueError(f"{origin}: static_offset has {params.static_offset.shape[0]} vertices, head has {self.n_verts}")
        return params.with_values(**changes) if changes else params

    def forward(self, params: FlameParams) -> Tensor:
        """Posed vertices [T, V, 3] for T frames (differentiable w.r.t. every parameter)."""
        p = self.fit_params(params)
        t = p.frames
        dtype = self.v_template.dtype
        shape = p.shape[: self.shapedirs.shape[2]].to(dtype).expand(t, -1)
        expr = p.expr[:, : self.exprdirs.shape[2]].to(dtype)
        betas = torch.cat([shape, expr], dim=1)
        dirs = torch.cat([self.shapedirs, self.exprdirs], dim=2)
        pose = torch.cat([p.rotation, p.neck_pose, p.jaw_pose, p.eyes_pose], dim=1).to(dtype)
        template = self.v_template if p.static_offset is None else self.v_template + p.static_offset.to(dtype)
        verts, _ = lbs(betas, pose, template, dirs, self.posedirs, self.J_regressor, self.parents, self.lbs_weights)
        if p.dynamic_offset is not None:
            verts = verts + p.dynamic_offset.to(dtype)
        return verts + p.translation.to(dtype)[:, None, :]


def _used_columns(dirs: np.ndarray) -> int:
    """1 + index of the last column of [V, 3, C] that is not all zero (0 if none)."""
    nonzero = np.flatnonzero(np.abs(dirs).reshape(-1, dirs.shape[-1]).max(axis=0) > 0)
    return int(nonzero[-1]) + 1 if nonzero.size else 0


_CACHE: dict[str, HeadModel] = {}


def load_head(path: str | os.PathLike | None = None) -> HeadModel:
    """The head model at path; None or 'demo' is the embedded demo head.

    'flame' (or an empty path with DYNAMICAVATARS_FLAME set) reads the user's FLAME model from the
    environment variable. Raises FlameFileError naming the file and the problem.
    """
    key = "demo" if path in (None, "demo") else str(path)
    if key == "flame":
        env = os.environ.get(FLAME_ENV)
        if not env:
            raise FlameFileError(f"no FLAME model given: set {FLAME_ENV} to your FLAME model file or folder")
        key = env
    if key not in _CACHE:
        if key == "demo":
            _CACHE[key] = HeadModel(read_flame_arrays(DEMO_HEAD_DIR), "demo head", "demo")
        else:
            _CACHE[key] = HeadModel(read_flame_arrays(key), Path(key).stem, str(Path(key).resolve()))
    return _CACHE[key]
