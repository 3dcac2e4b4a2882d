"""Real-time OpenGL (moderngl) splat renderer for the viewport, headless through EGL.

Per frame, on the CPU in single-threaded numpy float32: EWA projection of every Gaussian with the
same maths as engine/render/projection.py (J W Σ Wᵀ Jᵀ + 0.3 px², Jacobian point clamped to 1.3×
the frustum), culling (near/far, off-screen, opacity < 1/255), colours from SH degree 0..3
(rgb = 0.5 + Σ c_k Y_k(dir), clamped at 0) and a back-to-front sort by camera z. On the GPU: one
instanced quad per Gaussian aligned with the eigenvectors of its 2D covariance, half-extent
r = min(max_sigmas, sqrt(2 ln(255·opacity))) standard deviations per axis (beyond r the Gaussian's
alpha is below 1/255), Gaussian falloff in the fragment shader, alpha = min(0.99, o·exp(-½dᵀΣ⁻¹d)),
discard below 1/255, premultiplied "over" blending into an RGBA32F framebuffer cleared to the
background with alpha 0, so the read-back rgb is already composited and alpha = 1 − Π(1 − αᵢ).
The same footprint can be drawn as point sprites (axis-aligned squares, one vertex each): llvmpipe
spends ~0.85 µs per quad instance but ~0.4 µs per point, and ~4.5 ns per covered pixel for
both, so "auto" picks per frame whichever the cost model says is cheaper.

The pixel (u, v) has its centre at (u + 0.5, v + 0.5) and images come back top-row-first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import moderngl
import numpy as np
import torch
from threadpoolctl import threadpool_limits

from engine.render import gl_shaders
from engine.render.camera import Camera
from engine.render.constants import LOWPASS_EPS
from engine.render.splats import SH_C0, Splats

INSTANCE_FLOATS = 11  # center 2, axis_u 2, axis_v 2, extent 1, rgb 3, opacity 1
MARGIN = 128  # framebuffer border in pixels: a point sprite (≤ 255 px) with its centre off-image still draws
MAX_POINT_SIZE = 255.0  # llvmpipe's largest point sprite
# llvmpipe cost model (ms, 2 cores, measured): per quad instance, per point, per covered pixel
_COST_QUAD, _COST_POINT, _COST_PIXEL = 0.85e-3, 0.4e-3, 4.5e-6


@dataclass(frozen=True)
class GLSplatConfig:
    """Quality knobs of the OpenGL splat renderer."""

    max_sigmas: float = 3.0  # cap of the quad half-extent in standard deviations (fill cost ∝ its square)
    alpha_min: float = 1.0 / 255.0  # fragments (and whole Gaussians) below this alpha are skipped
    alpha_max: float = 0.99  # per-Gaussian alpha cap (3DGS)
    primitive: str = "auto"  # "quads" (eigen-aligned, tightest), "points" (sprites, cheaper each) or "auto"

    def __post_init__(self) -> None:
        if self.primitive not in ("auto", "quads", "points"):
            raise ValueError(f"GLSplatConfig.primitive must be auto, quads or points, got {self.primitive!r}")


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy()


def covariance_3d_np(quats: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """[N, 6] world covariances (xx, xy, xz, yy, yz, zz) = R S² Rᵀ of quats [N, 4] (w, x, y, z), scales [N, 3]."""
    q = quats / np.linalg.norm(quats, axis=1, keepdims=True)
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    sx, sy, sz = scales[:, 0], scales[:, 1], scales[:, 2]
    # M = R diag(s): columns of R scaled
    m = [
        [(1 - 2 * (y * y + z * z)) * sx, 2 * (x * y - w * z) * sy, 2 * (x * z + w * y) * sz],
        [2 * (x * y + w * z) * sx, (1 - 2 * (x * x + z * z)) * sy, 2 * (y * z - w * x) * sz],
        [2 * (x * z - w * y) * sx, 2 * (y * z + w * x) * sy, (1 - 2 * (x * x + y * y)) * sz],
    ]

    def dot(i: int, j: int) -> np.ndarray:
        return m[i][0] * m[j][0] + m[i][1] * m[j][1] + m[i][2] * m[j][2]

    return np.stack([dot(0, 0), dot(0, 1), dot(0, 2), dot(1, 1), dot(1, 2), dot(2, 2)], axis=1)


def sh_basis_np(dirs: np.ndarray, degree: int) -> np.ndarray:
    """[N, (degree+1)^2] real SH basis (3DGS sign convention) at unit directions dirs [N, 3]."""
    x, y, z = dirs[:, 0], dirs[:, 1], dirs[:, 2]
    out = [np.full_like(x, SH_C0)]
    if degree >= 1:
        out += [-0.4886025119029199 * y, 0.4886025119029199 * z, -0.4886025119029199 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        out += [1.0925484305920792 * x * y, -1.0925484305920792 * y * z, 0.31539156525252005 * (2 * zz - xx - yy),
                -1.0925484305920792 * x * z, 0.5462742152960396 * (xx - yy)]
    if degree >= 3:
        out += [-0.5900435899266435 * y * (3 * xx - yy), 2.890611442640554 * x * y * z,
                -0.4570457994644658 * y * (4 * zz - xx - yy), 0.3731763325901154 * z * (2 * zz - 3 * xx - 3 * yy),
                -0.4570457994644658 * x * (4 * zz - xx - yy), 1.445305721320277 * z * (xx - yy),
                -0.5900435899266435 * x * (xx - 3 * yy)]
    return np.stack(out, axis=1)


def sh_to_rgb_np(sh: np.ndarray, means: np.ndarray, cam_pos: np.ndarray) -> np.ndarray:
    """[N, 3] colours 0.5 + Σ c_k Y_k(dir) clamped at 0, of sh [N, K, 3] at means [N, 3] seen from cam_pos [3]."""
    k = sh.shape[1]
    if k == 1:
        return np.maximum(SH_C0 * sh[:, 0, :] + 0.5, 0.0)
    dirs = means - cam_pos
    dirs /= np.maximum(np.linalg.norm(dirs, axis=1, keepdims=True), 1e-12)
    basis = sh_basis_np(dirs, {4: 1, 9: 2, 16: 3}[k])
    return np.maximum(np.einsum("nk,nkc->nc", basis, sh) + 0.5, 0.0)


@dataclass
class _SplatArrays:
    """numpy float32 copies of one Splats' fields plus its world covariances (reused while unchanged)."""

    key: tuple[tuple[int, int], ...]
    source: Splats  # held so the ids in key stay unique
    means: np.ndarray  # [N, 3]
    cov: np.ndarray  # [N, 6]
    opacities: np.ndarray  # [N]
    sh: np.ndarray  # [N, K, 3]


def _splat_key(splats: Splats) -> tuple[tuple[int, int], ...] | None:
    """Identity + modification counters of the tensors; None when they cannot be tracked (never cached)."""
    fields = (splats.means, splats.quats, splats.scales, splats.opacities, splats.sh)
    key = tuple((id(t), _version(t)) for t in fields)
    return None if any(v < 0 for _, v in key) else key


def _version(t: torch.Tensor) -> int:
    """The tensor's in-place modification counter; inference tensors have none (-1: never cached)."""
    try:
        return t._version
    except RuntimeError:  # "Inference tensors do not track version counter"
        return -1


def _project(arr: _SplatArrays, camera: Camera, cfg: GLSplatConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index [M] of visible Gaussians, camera z [M], geometry [M, 7]: center, axis_u, axis_v, extent)."""
    w2c = camera.world_to_cam.detach().to("cpu", torch.float64).numpy()
    rot, trans = w2c[:3, :3].astype(np.float32), w2c[:3, 3].astype(np.float32)
    mu = arr.means
    tz = mu[:, 0] * rot[2, 0] + mu[:, 1] * rot[2, 1] + mu[:, 2] * rot[2, 2] + trans[2]
    keep = (tz > camera.near) & (tz < camera.far) & (arr.opacities >= cfg.alpha_min)
    idx = np.flatnonzero(keep)
    mu, z, c = mu[idx], tz[idx], arr.cov[idx]
    tx = mu[:, 0] * rot[0, 0] + mu[:, 1] * rot[0, 1] + mu[:, 2] * rot[0, 2] + trans[0]
    ty = mu[:, 0] * rot[1, 0] + mu[:, 1] * rot[1, 1] + mu[:, 2] * rot[1, 2] + trans[1]
    fx, fy, cx, cy, w, h = camera.fx, camera.fy, camera.cx, camera.cy, camera.width, camera.height
    inv_z = 1.0 / z
    tan_x, tan_y = 0.5 * w / fx, 0.5 * h / fy
    jx = np.clip(tx * inv_z, -(cx / fx + 0.3 * tan_x), (w - cx) / fx + 0.3 * tan_x)
    jy = np.clip(ty * inv_z, -(cy / fy + 0.3 * tan_y), (h - cy) / fy + 0.3 * tan_y)
    # T = J W (2x3 per Gaussian), J = [[fx/z, 0, -fx jx/z], [0, fy/z, -fy jy/z]]
    a0, a2 = fx * inv_z, -fx * jx * inv_z
    b1, b2 = fy * inv_z, -fy * jy * inv_z
    t0 = [a0 * rot[0, k] + a2 * rot[2, k] for k in range(3)]
    t1 = [b1 * rot[1, k] + b2 * rot[2, k] for k in range(3)]
    sxx, sxy, sxz, syy, syz, szz = (c[:, k] for k in range(6))
    s = [[sxx, sxy, sxz], [sxy, syy, syz], [sxz, syz, szz]]
    ts0 = [t0[0] * s[0][k] + t0[1] * s[1][k] + t0[2] * s[2][k] for k in range(3)]  # row 0 of T Σ
    ts1 = [t1[0] * s[0][k] + t1[1] * s[1][k] + t1[2] * s[2][k] for k in range(3)]
    ca = ts0[0] * t0[0] + ts0[1] * t0[1] + ts0[2] * t0[2] + LOWPASS_EPS
    cb = ts0[0] * t1[0] + ts0[1] * t1[1] + ts0[2] * t1[2]
    cc = ts1[0] * t1[0] + ts1[1] * t1[1] + ts1[2] * t1[2] + LOWPASS_EPS
    # eigen-decomposition of [[ca, cb], [cb, cc]]
    half_tr, diff = 0.5 * (ca + cc), 0.5 * (ca - cc)
    root = np.sqrt(diff * diff + cb * cb)
    lam1, lam2 = half_tr + root, np.maximum(half_tr - root, 1e-12)
    use_first = diff >= 0  # eigenvector (lam1 - cc, cb) is well conditioned when ca >= cc, else (cb, lam1 - ca)
    ex = np.where(use_first, lam1 - cc, cb)
    ey = np.where(use_first, cb, lam1 - ca)
    norm = np.sqrt(ex * ex + ey * ey)
    flat = norm < 1e-20
    ex, ey = np.where(flat, 1.0, ex / np.where(flat, 1.0, norm)), np.where(flat, 0.0, ey / np.where(flat, 1.0, norm))
    opac = arr.opacities[idx]
    extent = np.minimum(cfg.max_sigmas, np.sqrt(2.0 * np.log(np.maximum(opac / cfg.alpha_min, 1.0))))
    r1, r2 = extent * np.sqrt(lam1), extent * np.sqrt(lam2)
    px, py = fx * tx * inv_z + cx, fy * ty * inv_z + cy
    geo = np.stack([px, py, ex * r1, ey * r1, -ey * r2, ex * r2, extent], axis=1).astype(np.float32)
    bx, by = np.abs(geo[:, 2]) + np.abs(geo[:, 4]), np.abs(geo[:, 3]) + np.abs(geo[:, 5])
    on = (px + bx > 0) & (px - bx < w) & (py + by > 0) & (py - by < h) & (ca * cc - cb * cb > 0) & (extent > 0)
    return idx[on], z[on], geo[on]


SOFTWARE_RENDERERS = ("llvmpipe", "softpipe", "swrast", "software rasterizer")  # GL_RENDERER names of CPU drivers


def is_software_renderer(ctx: moderngl.Context) -> bool:
    """True when the context's OpenGL driver rasterizes on the CPU (Mesa llvmpipe and kin).

    There the numba inference path (engine/render/fast_view.py) draws the demo avatar several times faster.
    """
    name = str(ctx.info.get("GL_RENDERER", "")).lower()
    return any(s in name for s in SOFTWARE_RENDERERS)


def _choose_primitive(inst: np.ndarray, mode: str) -> str:
    """"quads" or "points" for instance rows inst [M, 11] (auto: cheaper by the llvmpipe cost model)."""
    if mode != "auto" or inst.shape[0] == 0:
        return "quads" if mode == "auto" else mode
    half_box = np.maximum(np.abs(inst[:, 2]) + np.abs(inst[:, 4]), np.abs(inst[:, 3]) + np.abs(inst[:, 5]))
    if 2.0 * float(half_box.max()) > MAX_POINT_SIZE:
        return "quads"  # a sprite would be clipped
    quad_px = 4.0 * float(np.sum(np.hypot(inst[:, 2], inst[:, 3]) * np.hypot(inst[:, 4], inst[:, 5])))
    point_px = 4.0 * float(np.sum(half_box * half_box))
    m = inst.shape[0]
    quads = m * _COST_QUAD + quad_px * _COST_PIXEL
    points = m * _COST_POINT + point_px * _COST_PIXEL
    return "points" if points < quads else "quads"


class GLSplatRenderer:
    """Draws Splats for a Camera into an offscreen framebuffer and reads the image back.

    ctx: an existing moderngl context to share (e.g. the app's); by default a headless EGL one is
    created (do not mix EGL and GLX contexts in one process). `last_timings` holds the
    milliseconds of the last render: prepare (numpy conversion, projection, colours), sort
    (argsort + gather), upload, draw (until the GPU finished), readback, total;
    `last_primitive` says whether quads or points were drawn.
    """

    def __init__(self, width: int, height: int, ctx: moderngl.Context | None = None,
                 config: GLSplatConfig | None = None) -> None:
        self.config = config or GLSplatConfig()
        self._own_ctx = ctx is None
        self.ctx = ctx if ctx is not None else moderngl.create_standalone_context(backend="egl")
        self._progs = {
            "quads": self.ctx.program(vertex_shader=gl_shaders.SPLAT_QUAD_VERTEX_SHADER,
                                      fragment_shader=gl_shaders.SPLAT_QUAD_FRAGMENT_SHADER),
            "points": self.ctx.program(vertex_shader=gl_shaders.SPLAT_POINT_VERTEX_SHADER,
                                       fragment_shader=gl_shaders.SPLAT_POINT_FRAGMENT_SHADER),
        }
        for prog in self._progs.values():
            prog["u_alpha_min"].value = self.config.alpha_min
            prog["u_alpha_max"].value = self.config.alpha_max
            prog["u_margin"].value = float(MARGIN)
        self._instances = self.ctx.buffer(reserve=INSTANCE_FLOATS * 4 * 1024, dynamic=True)
        names = ("in_center", "in_axis_u", "in_axis_v", "in_extent", "in_color")
        self._vaos = {
            kind: self.ctx.vertex_array(self._progs[kind], [(self._instances, fmt, *names)])
            for kind, fmt in (("quads", "2f 2f 2f 1f 4f/i"), ("points", "2f 2f 2f 1f 4f"))
        }
        self._fbo: moderngl.Framebuffer | None = None
        self._arrays: _SplatArrays | None = None
        self.last_timings: dict[str, float] = {}
        self.last_primitive = ""
        self.width, self.height = 0, 0
        self.resize(width, height)

    def _release_fbo(self) -> None:
        if self._fbo is not None:
            attachments = self._fbo.color_attachments
            self._fbo.release()
            for attachment in attachments:
                attachment.release()
            self._fbo = None

    def resize(self, width: int, height: int) -> None:
        """Change the image size (cameras passed to render must match it)."""
        if width <= 0 or height <= 0:
            raise ValueError(f"GLSplatRenderer size must be positive, got {width}x{height}")
        if (width, height) == (self.width, self.height):
            return
        self._release_fbo()
        size = (width + 2 * MARGIN, height + 2 * MARGIN)
        self._fbo = self.ctx.framebuffer(color_attachments=[self.ctx.renderbuffer(size, components=4, dtype="f4")])
        self.width, self.height = width, height

    def release(self) -> None:
        """Free the GL objects (and the context if this renderer created it)."""
        self._release_fbo()
        for obj in (*self._vaos.values(), self._instances, *self._progs.values()):
            obj.release()
        self._vaos, self._progs, self._arrays = {}, {}, None
        if self._own_ctx:
            self.ctx.release()

    def render(self, splats: Splats, camera: Camera, background: tuple[float, float, float] = (1.0, 1.0, 1.0),
               colors: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
        """[H, W, 3] uint8 image (top row first) of splats seen by camera over background.

        colors: [N, 3] float rgb that replaces the SH colour of every Gaussian (overlays, masks).
        """
        self._draw(splats, camera, background, colors)
        t = time.perf_counter()
        data = self._fbo.read(viewport=(MARGIN, MARGIN, self.width, self.height), components=3, dtype="f1")
        image = np.frombuffer(data, dtype=np.uint8).reshape(self.height, self.width, 3)
        self._finish_timings(t)
        return image

    def render_float(self, splats: Splats, camera: Camera,
                     background: tuple[float, float, float] = (1.0, 1.0, 1.0),
                     colors: np.ndarray | torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rgb [H, W, 3] float32 composited over background, alpha [H, W] float32), top row first."""
        self._draw(splats, camera, background, colors)
        t = time.perf_counter()
        data = self._fbo.read(viewport=(MARGIN, MARGIN, self.width, self.height), components=4, dtype="f4")
        rgba = np.frombuffer(data, dtype=np.float32).reshape(self.height, self.width, 4)
        rgb, alpha = rgba[..., :3].copy(), rgba[..., 3].copy()
        self._finish_timings(t)
        return rgb, alpha

    def _finish_timings(self, t_read: float) -> None:
        self.last_timings["readback"] = 1000 * (time.perf_counter() - t_read)
        self.last_timings["total"] = sum(v for k, v in self.last_timings.items() if k != "total")

    def _arrays_for(self, splats: Splats) -> _SplatArrays:
        key = _splat_key(splats)
        if key is None or self._arrays is None or self._arrays.key != key:
            self._arrays = _SplatArrays(
                key=key, source=splats, means=_np(splats.means),
                cov=covariance_3d_np(_np(splats.quats), _np(splats.scales)),
                opacities=_np(splats.opacities), sh=_np(splats.sh),
            )
        return self._arrays

    def prepare(self, splats: Splats, camera: Camera,
                colors: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
        """[M, 11] float32 instance rows of the visible Gaussians, sorted back to front."""
        n = splats.count
        if colors is not None:
            colors = _np(colors) if isinstance(colors, torch.Tensor) else np.asarray(colors, np.float32)
            if colors.shape != (n, 3):
                raise ValueError(f"colors must be [N, 3] = [{n}, 3], got {tuple(colors.shape)}")
        t0 = time.perf_counter()
        with threadpool_limits(limits=1):
            arr = self._arrays_for(splats)
            idx, z, geo = _project(arr, camera, self.config)
            if colors is None:
                cam_pos = camera.position.detach().to("cpu", torch.float32).numpy()
                all_visible = idx.shape[0] == n
                sh = arr.sh if all_visible else np.take(arr.sh, idx, axis=0)
                means = arr.means if all_visible else np.take(arr.means, idx, axis=0)
                rgb = sh_to_rgb_np(sh, means, cam_pos)
            else:
                rgb = np.take(colors, idx, axis=0)
            inst = np.empty((idx.shape[0], INSTANCE_FLOATS), np.float32)
            inst[:, :7], inst[:, 7:10], inst[:, 10] = geo, rgb, np.take(arr.opacities, idx)
            t1 = time.perf_counter()
            inst = np.take(inst, np.argsort(-z), axis=0)  # back to front
        t2 = time.perf_counter()
        self.last_timings = {"prepare": 1000 * (t1 - t0), "sort": 1000 * (t2 - t1)}
        return inst

    def _draw(self, splats: Splats, camera: Camera, background: tuple[float, float, float],
              colors: np.ndarray | torch.Tensor | None) -> None:
        if (camera.width, camera.height) != (self.width, self.height):
            raise ValueError(f"camera is {camera.width}x{camera.height} but the renderer is "
                             f"{self.width}x{self.height}; call resize() or camera.resized()")
        inst = self.prepare(splats, camera, colors)
        t0 = time.perf_counter()
        if inst.nbytes > self._instances.size:
            self._instances.orphan(max(inst.nbytes, 2 * self._instances.size))  # same GL buffer, VAOs stay valid
        if inst.shape[0]:
            self._instances.write(inst)
        kind = _choose_primitive(inst, self.config.primitive)
        t1 = time.perf_counter()
        self._fbo.use()
        fb_w, fb_h = self.width + 2 * MARGIN, self.height + 2 * MARGIN
        self.ctx.viewport = (0, 0, fb_w, fb_h)
        bg = tuple(float(c) for c in background)
        self._fbo.clear(bg[0], bg[1], bg[2], 0.0)
        self.ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        self.ctx.enable(moderngl.BLEND | moderngl.PROGRAM_POINT_SIZE)
        self.ctx.blend_func = moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA
        self.ctx.blend_equation = moderngl.FUNC_ADD
        self._progs[kind]["u_size"].value = (float(fb_w), float(fb_h))
        if inst.shape[0] and kind == "quads":
            self._vaos[kind].render(moderngl.TRIANGLE_STRIP, vertices=4, instances=inst.shape[0])
        elif inst.shape[0]:
            self._vaos[kind].render(moderngl.POINTS, vertices=inst.shape[0])
        self.ctx.finish()
        t2 = time.perf_counter()
        self.last_primitive = kind
        self.last_timings.update(upload=1000 * (t1 - t0), draw=1000 * (t2 - t1))
