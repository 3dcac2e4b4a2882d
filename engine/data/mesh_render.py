"""OpenGL (moderngl, headless EGL) renderer of a labelled triangle mesh: synthetic ground truth.

One draw writes two 8-bit targets: RGBA colour (premultiplied, alpha 1 where covered) and a label
buffer holding (face label + 1) / 255 (0 = background; exact for labels below 255). The scene is
drawn at `supersample` times the camera resolution and reduced: rgb and alpha by area averaging,
labels by majority per block; the rgb is then composited over the background colour.

Camera maths (OpenCV camera, pixel centres at +0.5): a camera point (x, y, z) goes to clip space
with rows [2fx/W, 0, 2cx/W − 1, 0], [0, 2fy/H, 2cy/H − 1, 0], [0, 0, (f+n)/(f−n), −2fn/(f−n)],
[0, 0, 1, 0]. Image row v = 0 thus lands on window row 0, which glReadPixels returns first, so the
read-back is top-row-first with no flip (the mirrored winding is harmless: culling is off).

Albedo is procedural, evaluated per fragment from the rest-pose (canonical) position and normal
and the face label, so the texture sticks to the skin while the mesh deforms: skin with pores,
blotches and a blush below and outside each eye; lips with fine vertical lines; eyes with sclera,
iris and pupil (centred on each eye's rest-pose bounding box, facing +z, FLAME's forward axis);
brows as strands filling each brow's labelled faces (the colour edge is the label edge); hair
strands; a dark mouth interior. The albedo is invariant to translating the rest pose. Lighting:
ambient + a Lambert key light (camera-relative direction) + a little Blinn specular. Face labels
must be below 255.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.data.frames import resize_labels
from engine.head.components import LABEL
from engine.head.triangles import face_normals
from engine.render.camera import Camera

VERTEX_SHADER = """
#version 330
uniform mat4 u_mvp;
in vec3 in_pos;
in vec3 in_rest;
in vec3 in_normal;
in vec3 in_rest_normal;
in int in_label;
out vec3 v_world;
out vec3 v_rest;
out vec3 v_normal;
out vec3 v_rest_normal;
flat out int v_label;
void main() {
    v_world = in_pos;
    v_rest = in_rest;
    v_normal = in_normal;
    v_rest_normal = in_rest_normal;
    v_label = in_label;
    gl_Position = u_mvp * vec4(in_pos, 1.0);
}
"""

# L_<NAME> label constants are #defined from engine/head/components.py LABEL at program build.
FRAGMENT_SHADER = """
#version 330
uniform vec3 u_cam_pos;
uniform vec3 u_light_dir;
uniform vec3 u_centre;
uniform vec3 u_extent;
uniform vec3 u_eye_c[2];
uniform float u_eye_r[2];
uniform vec3 u_brow_c[2];
uniform vec3 u_brow_h[2];
uniform vec3 u_cheek_c[2];
uniform float u_cheek_r;
uniform vec4 u_light;  // ambient, key, specular scale, seed
in vec3 v_world;
in vec3 v_rest;
in vec3 v_normal;
in vec3 v_rest_normal;
flat in int v_label;
layout(location = 0) out vec4 f_colour;
layout(location = 1) out float f_label;

float hash(vec3 p) {
    p = fract(p * 0.3183099 + vec3(0.71, 0.113, 0.419));
    p *= 17.0;
    return fract(p.x * p.y * p.z * (p.x + p.y + p.z));
}
float vnoise(vec3 x) {
    vec3 i = floor(x);
    vec3 f = fract(x);
    f = f * f * (3.0 - 2.0 * f);
    return mix(mix(mix(hash(i), hash(i + vec3(1, 0, 0)), f.x),
                   mix(hash(i + vec3(0, 1, 0)), hash(i + vec3(1, 1, 0)), f.x), f.y),
               mix(mix(hash(i + vec3(0, 0, 1)), hash(i + vec3(1, 0, 1)), f.x),
                   mix(hash(i + vec3(0, 1, 1)), hash(i + vec3(1, 1, 1)), f.x), f.y), f.z);
}
float fbm(vec3 p) {
    float s = 0.0, a = 0.5;
    for (int i = 0; i < 4; i++) { s += a * vnoise(p); p = p * 2.03 + 1.7; a *= 0.5; }
    return s;
}
vec3 skin(vec3 p, vec3 nr, vec3 u) {
    vec3 c = vec3(0.86, 0.66, 0.55);
    c *= 0.90 + 0.16 * fbm(u * 5.0);                  // large blotches
    c *= 0.95 + 0.07 * vnoise(u * 140.0);             // pores
    c *= 1.0 - 0.05 * smoothstep(0.72, 0.9, vnoise(u * 60.0));  // a few darker pores
    float cheek = 0.0;
    for (int k = 0; k < 2; k++) {
        vec2 d = (p.xy - u_cheek_c[k].xy) / max(u_cheek_r, 1e-9);
        cheek += exp(-dot(d, d));
    }
    cheek *= smoothstep(0.0, 0.5, nr.z) * (0.8 + 0.4 * fbm(u * 12.0));
    return mix(c, vec3(0.86, 0.46, 0.44), 0.45 * min(cheek, 1.0));
}
vec3 hair(vec3 q, vec3 u) {
    float az = atan(q.x, q.z);
    float strands = vnoise(vec3(az * 70.0, u.y * 3.0, 0.5)) * 0.6 + vnoise(vec3(az * 260.0, u.y * 9.0, 2.5)) * 0.4;
    float clumps = fbm(vec3(az * 6.0, u.y * 2.0, 4.0));
    return vec3(0.25, 0.15, 0.08) * (0.45 + 0.7 * strands) * (0.8 + 0.4 * clumps);
}
vec3 eye(int k, vec3 p, vec3 nr, vec3 u) {
    vec2 d = (p.xy - u_eye_c[k].xy) / max(u_eye_r[k], 1e-9);
    float r = length(d);
    vec3 sclera = vec3(0.94, 0.92, 0.89) - vec3(0.02, 0.10, 0.10) * smoothstep(0.65, 1.0, r);
    if (u_eye_r[k] <= 0.0 || nr.z <= 0.0) return sclera;
    float ang = atan(d.y, d.x);
    float fibres = vnoise(vec3(ang * 9.0, r * 7.0, float(k) * 5.0 + u.z));
    vec3 iris = mix(vec3(0.16, 0.30, 0.42), vec3(0.42, 0.55, 0.62), fibres);
    iris *= 1.0 - 0.55 * smoothstep(0.34, 0.46, r);   // dark limbal ring
    vec3 c = mix(iris, sclera, smoothstep(0.45, 0.49, r));
    return mix(vec3(0.03, 0.03, 0.035), c, smoothstep(0.17, 0.2, r));
}
vec3 brow(int k, vec3 p, vec3 nr, vec3 u) {
    vec3 h = max(u_brow_h[k], vec3(1e-9));
    vec2 d = (p.xy - u_brow_c[k].xy) / h.xy;
    float slant = (p.x - u_brow_c[k].x) * (k == 0 ? 1.0 : -1.0) / h.x;  // hairs point outward and up
    float hairs = vnoise(vec3(d.x * 9.0, d.y * 14.0 + slant * 6.0, 1.5)) * 0.5
                + vnoise(vec3(d.x * 22.0, d.y * 40.0 + slant * 16.0, 3.5)) * 0.5;
    float cover = 0.55 + 0.45 * smoothstep(0.3, 0.6, hairs);  // fills the brow label: its outline is the label's
    return mix(skin(p, nr, u), vec3(0.16, 0.10, 0.06), clamp(cover, 0.0, 0.92));
}
vec3 lips(vec3 u, bool upper) {
    vec3 c = upper ? vec3(0.70, 0.34, 0.35) : vec3(0.76, 0.40, 0.40);
    return c * (0.9 + 0.12 * vnoise(vec3(u.x * 220.0, u.y * 12.0, u.z * 12.0))) * (0.95 + 0.1 * fbm(u * 8.0));
}
vec3 albedo(int label, vec3 p, vec3 nr) {
    vec3 q = (p - u_centre) / u_extent;
    vec3 u = (p - u_centre) / max(max(u_extent.x, u_extent.y), u_extent.z) + vec3(u_light.w * 7.31);
    if (label == L_HAIR) return hair(q, u);
    if (label == L_LEFT_EYE) return eye(0, p, nr, u);
    if (label == L_RIGHT_EYE) return eye(1, p, nr, u);
    if (label == L_LEFT_BROW) return brow(0, p, nr, u);
    if (label == L_RIGHT_BROW) return brow(1, p, nr, u);
    if (label == L_UPPER_LIP) return lips(u, true);
    if (label == L_LOWER_LIP) return lips(u, false);
    if (label == L_MOUTH_INTERIOR) return vec3(0.24, 0.06, 0.07) * (0.8 + 0.3 * fbm(u * 10.0));
    if (label == L_ACCESSORY) return vec3(0.62, 0.62, 0.65);
    return skin(p, nr, u);
}
void main() {
    vec3 n = normalize(v_normal);
    vec3 view = normalize(u_cam_pos - v_world);
    if (dot(n, view) < 0.0) n = -n;
    vec3 a = albedo(v_label, v_rest, normalize(v_rest_normal));
    float spec_strength = 0.05, shininess = 24.0;
    if (v_label == L_UPPER_LIP || v_label == L_LOWER_LIP) { spec_strength = 0.12; shininess = 40.0; }
    if (v_label == L_LEFT_EYE || v_label == L_RIGHT_EYE) { spec_strength = 0.6; shininess = 120.0; }
    if (v_label == L_HAIR) { spec_strength = 0.04; shininess = 16.0; }
    float diffuse = max(dot(n, u_light_dir), 0.0);
    float spec = pow(max(dot(n, normalize(u_light_dir + view)), 0.0), shininess) * spec_strength * u_light.z;
    vec3 c = a * (u_light.x + u_light.y * diffuse) + vec3(spec);
    f_colour = vec4(clamp(c, 0.0, 1.0), 1.0);
    f_label = float(v_label + 1) / 255.0;
}
"""


@dataclass(frozen=True)
class MeshRenderConfig:
    """How the mesh is shaded and sampled."""

    supersample: int = 4  # render at this many times the resolution per axis, then reduce
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)  # colour behind the mesh (white, as VHAP)
    ambient: float = 0.38  # ambient light
    key: float = 0.72  # key light strength (Lambert)
    specular: float = 1.0  # scale on the per-material specular strength
    key_direction: tuple[float, float, float] = (-0.45, 0.55, 0.75)  # toward the light: camera right, up, back
    cheek_centre: tuple[float, float] = (0.5, 0.1)  # |x|, y of the blush in rest bbox units when there are no eyes
    seed: float = 0.0  # shifts the noise pattern (different "skin" per seed)


@dataclass(frozen=True)
class MeshImage:
    """A rendered view."""

    rgb: Tensor  # [H, W, 3] float32 in [0, 1], composited over the background
    alpha: Tensor  # [H, W] float32 coverage in [0, 1]
    labels: Tensor  # [H, W] int64 label of the visible face (majority per pixel), -1 = background


def opencv_projection(camera: Camera) -> np.ndarray:
    """[4, 4] float64 clip matrix of an OpenCV camera (see module docstring); window row 0 = image row 0."""
    w, h, n, f = camera.width, camera.height, camera.near, camera.far
    return np.array(
        [
            [2 * camera.fx / w, 0.0, 2 * camera.cx / w - 1, 0.0],
            [0.0, 2 * camera.fy / h, 2 * camera.cy / h - 1, 0.0],
            [0.0, 0.0, (f + n) / (f - n), -2 * f * n / (f - n)],
            [0.0, 0.0, 1.0, 0.0],
        ]
    )


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """[V, 3] area-weighted unit vertex normals of verts [V, 3] and faces [F, 3]."""
    fn = face_normals(verts[faces])
    vn = np.zeros_like(verts)
    for k in range(3):
        np.add.at(vn, faces[:, k], fn)
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)


def _region_boxes(
    rest: np.ndarray, faces: np.ndarray, labels: np.ndarray, names: tuple[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    """Rest-pose bounding-box centres [2, 3] and half sizes [2, 3] of two labelled regions (0: absent)."""
    centres, half = np.zeros((2, 3)), np.zeros((2, 3))
    for i, name in enumerate(names):
        idx = np.unique(faces[labels == LABEL[name]])
        if idx.size:
            lo, hi = rest[idx].min(0), rest[idx].max(0)
            centres[i], half[i] = (lo + hi) / 2, (hi - lo) / 2
    return centres, half


def _cheeks(eye_c: np.ndarray, eye_h: np.ndarray, lo: np.ndarray, hi: np.ndarray, fallback: tuple[float, float]):
    """Blush centres [2, 3] and radius: below and outside each eye, else at `fallback` in bbox units."""
    if (eye_h[:, 0] > 0).all():
        gap = abs(float(eye_c[0, 0] - eye_c[1, 0]))
        mid = (eye_c[0, 0] + eye_c[1, 0]) / 2
        out = np.sign(eye_c[:, 0] - mid)
        return eye_c + np.stack([0.12 * gap * out, np.full(2, -0.6 * gap), np.zeros(2)], axis=1), 0.3 * gap
    centre, extent = (lo + hi) / 2, (hi - lo) / 2
    xs = centre[0] + np.array([fallback[0], -fallback[0]]) * extent[0]
    ys = np.full(2, centre[1] + fallback[1] * extent[1])
    return np.stack([xs, ys, np.full(2, hi[2])], axis=1), 0.2 * extent[0]


def _with_label_defines(source: str) -> str:
    """source with `#define L_<NAME> <index>` for every component inserted after #version."""
    head, rest = source.split("\n", 2)[1], source.split("\n", 2)[2]
    defines = "".join(f"#define L_{name.upper()} {index}\n" for name, index in LABEL.items())
    return f"{head}\n{defines}{rest}"


def _as_numpy(x: Tensor | np.ndarray, dtype: Any) -> np.ndarray:
    return (x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)).astype(dtype)


class MeshRenderer:
    """Owns a headless moderngl context; create once, render many views, `close()` at the end."""

    def __init__(self, config: MeshRenderConfig | None = None) -> None:
        import moderngl  # deferred: importing this module must not need OpenGL

        self.config = config or MeshRenderConfig()
        assert self.config.supersample >= 1, f"supersample must be >= 1, got {self.config.supersample}"
        self._ctx = moderngl.create_standalone_context(backend="egl")
        self._prog = self._ctx.program(
            vertex_shader=VERTEX_SHADER, fragment_shader=_with_label_defines(FRAGMENT_SHADER)
        )
        self._fbo: Any = None
        self._fbo_size: tuple[int, int] = (0, 0)

    def _framebuffer(self, width: int, height: int) -> Any:
        if self._fbo_size != (width, height):
            if self._fbo is not None:
                for a in (*self._fbo.color_attachments, self._fbo.depth_attachment):
                    a.release()
                self._fbo.release()
            colour = self._ctx.texture((width, height), 4, dtype="f1")
            label = self._ctx.texture((width, height), 1, dtype="f1")  # (label + 1) / 255, exact in 8 bits
            depth = self._ctx.depth_renderbuffer((width, height))
            self._fbo = self._ctx.framebuffer(color_attachments=[colour, label], depth_attachment=depth)
            self._fbo_size = (width, height)
        return self._fbo

    def render(
        self,
        verts: Tensor | np.ndarray,  # [V, 3] world positions
        faces: Tensor | np.ndarray,  # [F, 3] vertex indices
        face_labels: Tensor | np.ndarray,  # [F] COMPONENTS index per face
        camera: Camera,  # OpenCV camera (output size = camera size)
        rest_verts: Tensor | np.ndarray | None = None,  # [V, 3] canonical positions for the albedo (default verts)
    ) -> MeshImage:
        """Render the mesh seen by camera; returns rgb, alpha and labels at the camera's size."""
        v = _as_numpy(verts, np.float64)
        f = _as_numpy(faces, np.int64)
        lab = _as_numpy(face_labels, np.int64)
        rest = v if rest_verts is None else _as_numpy(rest_verts, np.float64)
        assert v.ndim == 2 and v.shape[1] == 3, f"verts must be [V, 3], got {v.shape}"
        assert f.ndim == 2 and f.shape[1] == 3, f"faces must be [F, 3], got {f.shape}"
        assert lab.shape == (f.shape[0],), f"face_labels must be [{f.shape[0]}], got {lab.shape}"
        assert rest.shape == v.shape, f"rest_verts must be {v.shape}, got {rest.shape}"
        assert f.size == 0 or (f.min() >= 0 and f.max() < len(v)), "faces index outside verts"
        s = self.config.supersample
        big = camera.resized(camera.width * s, camera.height * s)
        colour, label = self._draw(v, f, lab, rest, big)
        return self._reduce(colour, label, camera, s)

    def _draw(
        self, v: np.ndarray, f: np.ndarray, lab: np.ndarray, rest: np.ndarray, cam: Camera
    ) -> tuple[np.ndarray, np.ndarray]:
        """Hi-res premultiplied colour [H, W, 4] uint8 and label + 1 [H, W] uint8 (top row first)."""
        cfg = self.config
        corners = f.reshape(-1)
        data = np.concatenate(
            [v[corners], rest[corners], vertex_normals(v, f)[corners], vertex_normals(rest, f)[corners]], axis=1
        ).astype(np.float32)
        vbo = self._ctx.buffer(data.tobytes())
        lbo = self._ctx.buffer(np.repeat(lab, 3).astype(np.int32).tobytes())
        vao = self._ctx.vertex_array(
            self._prog,
            [(vbo, "3f 3f 3f 3f", "in_pos", "in_rest", "in_normal", "in_rest_normal"), (lbo, "1i", "in_label")],
        )
        try:
            w2c = cam.world_to_cam.detach().cpu().double().numpy()
            lo, hi = rest.min(0), rest.max(0)
            eye_c, eye_h = _region_boxes(rest, f, lab, ("left_eye", "right_eye"))
            brow_c, brow_h = _region_boxes(rest, f, lab, ("left_brow", "right_brow"))
            cheek_c, cheek_r = _cheeks(eye_c, eye_h, lo, hi, cfg.cheek_centre)
            rot = w2c[:3, :3]  # rows: camera right, down, forward in world coordinates
            kx, ky, kz = cfg.key_direction
            light = kx * rot[0] - ky * rot[1] - kz * rot[2]
            uniforms = {
                "u_mvp": (opencv_projection(cam) @ w2c).T,
                "u_cam_pos": -rot.T @ w2c[:3, 3],
                "u_light_dir": light / np.linalg.norm(light),
                "u_centre": (lo + hi) / 2,
                "u_extent": np.maximum((hi - lo) / 2, 1e-9),
                "u_eye_c": eye_c,
                "u_eye_r": eye_h[:, :2].min(axis=1),
                "u_brow_c": brow_c,
                "u_brow_h": brow_h,
                "u_cheek_c": cheek_c,
                "u_cheek_r": cheek_r,
                "u_light": np.array([cfg.ambient, cfg.key, cfg.specular, cfg.seed]),
            }
            for name, value in uniforms.items():
                if name in self._prog:
                    self._prog[name].write(np.ascontiguousarray(value, dtype=np.float32).tobytes())
            fbo = self._framebuffer(cam.width, cam.height)
            fbo.use()
            fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
            self._ctx.enable(self._ctx.DEPTH_TEST)
            self._ctx.disable(self._ctx.CULL_FACE | self._ctx.BLEND)
            if len(f):
                vao.render()
            h, w = cam.height, cam.width
            colour = np.frombuffer(fbo.read(components=4, dtype="f1", attachment=0), np.uint8).reshape(h, w, 4)
            label = np.frombuffer(fbo.read(components=1, dtype="f1", attachment=1), np.uint8).reshape(h, w)
        finally:
            vao.release()
            vbo.release()
            lbo.release()
        return colour, label

    def _reduce(self, colour: np.ndarray, label: np.ndarray, camera: Camera, s: int) -> MeshImage:
        c = torch.from_numpy(colour.copy()).permute(2, 0, 1)[None].float() / 255.0
        c = F.avg_pool2d(c, s)[0].permute(1, 2, 0) if s > 1 else c[0].permute(1, 2, 0)
        alpha = c[..., 3].clamp(0.0, 1.0)
        bg = torch.tensor(self.config.background, dtype=torch.float32)
        rgb = (c[..., :3] + (1.0 - alpha)[..., None] * bg).clamp(0.0, 1.0)
        labels = torch.from_numpy(label.astype(np.int64)) - 1
        labels = resize_labels(labels, (camera.width, camera.height))
        return MeshImage(rgb=rgb.contiguous(), alpha=alpha.contiguous(), labels=labels)

    def close(self) -> None:
        """Release the OpenGL context."""
        if self._ctx is not None:
            self._ctx.release()
            self._ctx = None
            self._fbo = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
