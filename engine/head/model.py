"""The FLAME-format parametric head: identity, expression and joint poses -> mesh vertices.

One code path serves the user's licensed FLAME model and the embedded demo head: the model file is
read by engine.head.flame_file and posed by smplx's linear blend skinning (smplx.lbs.lbs).

A real FLAME model (5023 vertices) gets, when its files are there: component labels from
FLAME_masks.pkl (engine.head.flame_masks), the 51-landmark embedding (engine.head.landmarks) and,
through it, the demo head's named expressions ("smile", "blink_left", ...) re-expressed in its own
expression coefficients (engine.head.expression_transfer). `with_teeth()` adds GaussianAvatars'
120 teeth vertices and 168 triangles (engine.head.teeth).
"""

from __future__ import annotations

import os
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from smplx.lbs import lbs
from torch import Tensor

from engine.head.components import LABEL
from engine.head.expression_transfer import derive_named_expressions
from engine.head.flame_file import FlameFileError, find_model_file, read_flame_arrays
from engine.head.flame_masks import MASKS_FILE, MISSING_MASKS_NOTE, face_labels_from_flame_masks, read_flame_masks
from engine.head.landmarks import BROWS, EMBEDDING_FILE, Landmarks, find_beside, read_landmark_embedding
from engine.head.match import offset_mismatch
from engine.head.params import FlameParams
from engine.head.teeth import FLAME_VERTS, TEETH_VERTS, add_teeth, has_teeth_topology, is_flame_topology

DEMO_HEAD_DIR = Path(__file__).resolve().parents[2] / "resources" / "demo_head"
"""The embedded demo head, in the same layout smplx.FLAME reads."""

FLAME_ENV = "DYNAMICAVATARS_FLAME"
"""Environment variable naming the user's FLAME model file or folder."""

SHAPE_SPACE = 300
"""FLAME's identity coefficients come first in shapedirs, expression coefficients after them."""

POSE_EXPRESSIONS: dict[str, str] = {"jaw_open": "jaw"}
"""Expression words that are joint rotations, not expression coefficients, on every head (the Pose field)."""


def shape_split(columns: int) -> int:
    """How many of a model's shapedirs columns are identity directions (the rest are expressions)."""
    return SHAPE_SPACE if columns > SHAPE_SPACE else min(10, columns // 2)


@dataclass(frozen=True)
class HeadNotes:
    """Where a head's extras came from, in words for the user."""

    components: str = ""  # source of the component labels (or what is missing and what to do)
    expressions: str = ""  # source of the named expressions (or what is missing and what to do)


class HeadModel(torch.nn.Module):
    """A FLAME-format head: forward(params) -> vertices [T, V, 3].

    arrays: FLAME-format arrays (engine.head.flame_file), optionally with face_labels [F],
    expression_names [K] and expression_directions [K, E] (each name's expression coefficients;
    without them name k is coefficient k, as in the demo head).
    """

    def __init__(self, arrays: dict[str, np.ndarray], name: str, source: str, notes: HeadNotes = HeadNotes(),
                 landmarks: Landmarks | None = None) -> None:
        super().__init__()
        self.name = name
        self.source = source  # "demo" or the model file's path
        self.arrays = arrays  # the arrays it was built from (with_teeth builds from them)
        self.notes = notes
        self.landmarks = landmarks  # the 51-landmark embedding, when its file was found
        f32 = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
        dirs = np.asarray(arrays["shapedirs"], dtype=np.float32)
        split = shape_split(dirs.shape[2])
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
        directions = arrays.get("expression_directions")
        if directions is None:
            directions = np.eye(len(self.expression_names), self.n_expr)
        assert np.shape(directions) == (len(self.expression_names), self.n_expr), (
            f"expression_directions must be [{len(self.expression_names)}, {self.n_expr}], got {np.shape(directions)}")
        self.register_buffer("named_dirs", f32(directions))  # [K, E] coefficients of each named expression

    @property
    def n_verts(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def n_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def is_flame(self) -> bool:
        """FLAME's topology, with or without GaussianAvatars' teeth (a user's FLAME model, not the demo)."""
        return is_flame_topology(self.n_verts, self.n_faces) or self.has_teeth

    @property
    def has_teeth(self) -> bool:
        """FLAME with GaussianAvatars' teeth: 5143 vertices, 10,144 triangles."""
        return has_teeth_topology(self.n_verts, self.n_faces)

    def with_teeth(self) -> "HeadModel":
        """This FLAME head with GaussianAvatars' 120 teeth vertices and 168 triangles (the same head when
        it has them). Raises ValueError for a head that is not FLAME's 5023-vertex mesh."""
        if self.has_teeth:
            return self
        if self not in _TEETH:
            _TEETH[self] = HeadModel(add_teeth(self.arrays, self.n_shape), self.name, self.source, self.notes,
                                     self.landmarks)
        return _TEETH[self]

    def neutral_params(self, frames: int = 1) -> FlameParams:
        """Zero parameters sized for this head."""
        return FlameParams.neutral(frames, self.n_shape, self.n_expr)

    def expr_vector(self, **named: float) -> Tensor:
        """[E] expression coefficients of named expressions with weights ('smile', 'expr_12'), summed."""
        out = torch.zeros(self.n_expr)
        for name, value in named.items():
            out += float(value) * self.expression_direction(name)
        return out

    def expression_direction(self, name: str) -> Tensor:
        """[E] expression coefficients of one unit of a named expression ('smile'), or one-hot for 'expr_12'.

        Raises ValueError for an unknown name, and for a pose word (jaw_open: see POSE_EXPRESSIONS).
        """
        if name in self.expression_names:
            return self.named_dirs[self.expression_names.index(name)].detach().cpu().clone()
        if name.startswith("expr_") and name[5:].isdigit() and int(name[5:]) < self.n_expr:
            out = torch.zeros(self.n_expr)
            out[int(name[5:])] = 1.0
            return out
        if name in POSE_EXPRESSIONS:
            raise ValueError(f"{name!r} is a {POSE_EXPRESSIONS[name]} rotation, not an expression coefficient, "
                             f"on head {self.name!r}: set it as a pose (the {POSE_EXPRESSIONS[name]} slider, --jaw)")
        known = ", ".join(self.expression_names + (f"expr_0..expr_{self.n_expr - 1}",))
        raise ValueError(f"unknown expression {name!r} for head {self.name!r}; known: {known}")

    def check_expression(self, name: str) -> None:
        """Raise ValueError (naming the known ones) unless name is a named expression, expr_<i> or a pose word."""
        if name not in POSE_EXPRESSIONS:
            self.expression_direction(name)

    def coefficient_name(self, index: int) -> str:
        """The named expression that is exactly expression coefficient `index` (demo head), else expr_<index>."""
        hits = torch.nonzero(self.named_dirs[:, index] == 1.0).flatten().tolist()
        for k in hits:
            if int(torch.count_nonzero(self.named_dirs[k])) == 1:
                return self.expression_names[k]
        return f"expr_{index}"

    def expression_index(self, name: str) -> int:
        """The one coefficient a name moves ('expr_12', or a demo blendshape name).

        Raises ValueError for a named expression that mixes several coefficients on this head.
        """
        direction = self.expression_direction(name)
        nonzero = torch.nonzero(direction).flatten()
        if len(nonzero) != 1 or float(direction[nonzero[0]]) != 1.0:
            raise ValueError(f"{name!r} mixes {len(nonzero)} expression coefficients on head {self.name!r}; "
                             "use expr_vector / expression_direction")
        return int(nonzero[0])

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
        for key in ("static_offset", "dynamic_offset"):
            value = getattr(params, key)
            if value is None or value.shape[-2] == self.n_verts:
                continue
            if self.has_teeth and value.shape[-2] == FLAME_VERTS:  # GaussianAvatars pads the teeth rows with 0
                changes[key] = torch.nn.functional.pad(value, (0, 0, 0, TEETH_VERTS))
            else:
                raise ValueError(offset_mismatch(self, int(value.shape[-2]), origin, key))
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


_CACHE: dict[tuple[str, str | None], HeadModel] = {}
_TEETH: weakref.WeakKeyDictionary[HeadModel, HeadModel] = weakref.WeakKeyDictionary()
"""Each head's version with teeth (kept outside the module: not a submodule that .to() or deepcopy drags)."""


def load_head(path: str | os.PathLike | None = None, teeth: bool = False,
              masks: str | os.PathLike | None = None) -> HeadModel:
    """The head model at path; None or 'demo' is the embedded demo head.

    'flame' (or an empty path with DYNAMICAVATARS_FLAME set) reads the user's FLAME model from the
    environment variable. teeth=True adds GaussianAvatars' teeth (FLAME models only). masks: a
    FLAME_masks.pkl to label components with (default: the one beside the model, if any).
    Raises FlameFileError naming the file and the problem.
    """
    key = "demo" if path in (None, "demo") else str(path)
    if key == "flame":
        env = os.environ.get(FLAME_ENV)
        if not env:
            raise FlameFileError(f"no FLAME model given: pass --flame FILE, or set {FLAME_ENV} to your FLAME model file or folder")
        key = env
    cache_key = (key, None if masks is None else str(Path(masks).resolve()))
    if cache_key not in _CACHE:
        if key == "demo":
            _CACHE[cache_key] = HeadModel(read_flame_arrays(DEMO_HEAD_DIR), "demo head", "demo",
                                          HeadNotes("the demo head's own labels", "the demo head's blendshapes"),
                                          read_landmark_embedding(DEMO_HEAD_DIR / EMBEDDING_FILE))
        else:
            _CACHE[cache_key] = _read_user_head(key, masks)
    head = _CACHE[cache_key]
    if teeth and not head.is_flame:
        raise FlameFileError(f"{head.source}: teeth are added to FLAME's {FLAME_VERTS}-vertex mesh; "
                             f"this model has {head.n_verts} vertices")
    return head.with_teeth() if teeth else head


def _read_user_head(path: str, masks: str | os.PathLike | None) -> HeadModel:
    """A user's model file with its FLAME extras (masks, landmarks, named expressions) when it is FLAME."""
    file = find_model_file(path)
    arrays = read_flame_arrays(file)
    name, source = Path(file).stem, str(Path(file).resolve())
    if not is_flame_topology(len(arrays["v_template"]), len(arrays["f"])):
        return HeadModel(arrays, name, source, HeadNotes("every triangle is skin (not a FLAME mesh)",
                                                         "expression coefficients only (not a FLAME mesh)"))
    plain = HeadModel(arrays, name, source)
    embedding = find_beside(file, (EMBEDDING_FILE,))
    landmarks = read_landmark_embedding(embedding, plain.n_faces) if embedding is not None else None
    masks_file = Path(masks) if masks is not None else find_beside(file, (MASKS_FILE,))
    if masks_file is not None:
        brows = landmarks.points(plain.v_template, plain.faces)[BROWS] if landmarks is not None else None
        labels = face_labels_from_flame_masks(read_flame_masks(masks_file), plain.faces, plain.v_template, brows)
        arrays = {**arrays, "face_labels": labels.numpy()}
        components = f"FLAME masks ({masks_file})" + ("" if brows is not None else "; no brows without the landmark "
                                                        f"embedding ({EMBEDDING_FILE})")
    else:
        components = MISSING_MASKS_NOTE
    if landmarks is None:
        notes = HeadNotes(components, f"expression coefficients only: named expressions need {EMBEDDING_FILE} "
                                      "beside the model")
        return HeadModel(arrays, name, source, notes, None)
    labelled = HeadModel(arrays, name, source, landmarks=landmarks)
    demo = load_head("demo")
    named = derive_named_expressions(demo, labelled)
    arrays = {**arrays, "expression_names": np.array(named.names), "expression_directions": named.directions}
    worst = max(named.residual.items(), key=lambda kv: kv[1])
    expressions = (f"named expressions derived from the demo head's through {len(landmarks.face_idx)} landmarks "
                   f"(least-squares residual up to {worst[1]:.0%}, {worst[0]})")
    return HeadModel(arrays, name, source, HeadNotes(components, expressions), landmarks)
