"""Contact sheet of the embedded demo head under every pose, for checking it by eye.

    .venv/bin/python scripts/demo_head_pictures.py [--model resources/demo_head] [--out out/demo_head.png]

Loads the head through smplx.FLAME, poses it (neutral from three sides, every named expression at
1.0, jaw open, eyes turned, head turned, identity modes) and draws each triangle in its
component colour with simple lighting (moderngl, headless EGL). Writes one PNG.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np
from numpy import ndarray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VERTEX_SHADER = """
#version 330
uniform mat4 mvp;
in vec3 in_pos;
in vec3 in_normal;
in vec3 in_colour;
out vec3 v_normal;
out vec3 v_colour;
void main() {
    gl_Position = mvp * vec4(in_pos, 1.0);
    v_normal = in_normal;
    v_colour = in_colour;
}
"""

FRAGMENT_SHADER = """
#version 330
uniform vec3 light_dir;
uniform vec3 view_dir;
in vec3 v_normal;
in vec3 v_colour;
out vec4 f_colour;
void main() {
    vec3 n = normalize(v_normal);
    if (!gl_FrontFacing) n = -n;
    float diffuse = max(dot(n, normalize(light_dir)), 0.0);
    float fill = max(dot(n, normalize(view_dir)), 0.0);
    vec3 c = v_colour * (0.25 + 0.55 * diffuse + 0.30 * fill);
    f_colour = vec4(pow(c, vec3(1.0 / 1.1)), 1.0);
}
"""


def view_matrix(yaw: float, pitch: float, distance: float, target: ndarray) -> ndarray:
    """World-to-camera (OpenGL axes) for a camera orbiting `target`; yaw 0 looks at the face."""
    eye = target + distance * np.array(
        [math.sin(yaw) * math.cos(pitch), math.sin(pitch), math.cos(yaw) * math.cos(pitch)]
    )
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    m = np.eye(4)
    m[0, :3], m[1, :3], m[2, :3] = right, up, -forward
    m[:3, 3] = -m[:3, :3] @ eye
    return m


def perspective(fov_y: float, aspect: float, near: float, far: float) -> ndarray:
    """OpenGL projection matrix."""
    f = 1.0 / math.tan(fov_y / 2.0)
    return np.array(
        [[f / aspect, 0, 0, 0], [0, f, 0, 0], [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)],
         [0, 0, -1, 0]]
    )


class MeshRenderer:
    """Flat-coloured, lit triangle meshes into numpy images with a headless EGL context."""

    def __init__(self, size: int = 320) -> None:
        import moderngl

        self.size = size
        self.ctx = moderngl.create_standalone_context(backend="egl")
        self.prog = self.ctx.program(vertex_shader=VERTEX_SHADER, fragment_shader=FRAGMENT_SHADER)
        self.fbo = self.ctx.simple_framebuffer((size, size), components=4)

    def render(self, verts: ndarray, faces: ndarray, face_rgb: ndarray, yaw: float = 0.0, pitch: float = 0.0,
               target: ndarray | None = None, distance: float = 0.80) -> ndarray:
        """Image [size, size, 3] uint8 of a mesh (verts [V, 3], faces [F, 3], face_rgb [F, 3] in 0..1)."""
        tri = verts[faces]  # [F, 3, 3]
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)
        data = np.concatenate(
            [tri.reshape(-1, 3), np.repeat(n, 3, axis=0), np.repeat(face_rgb, 3, axis=0)], axis=1
        ).astype("f4")
        vbo = self.ctx.buffer(data.tobytes())
        vao = self.ctx.vertex_array(self.prog, [(vbo, "3f 3f 3f", "in_pos", "in_normal", "in_colour")])
        target = np.array([0.0, -0.025, 0.0]) if target is None else target
        view = view_matrix(yaw, pitch, distance, target)
        mvp = perspective(math.radians(26.0), 1.0, 0.05, 5.0) @ view
        self.prog["mvp"].write(mvp.T.astype("f4").tobytes())
        cam_dir = np.linalg.inv(view)[:3, 2]
        self.prog["light_dir"].value = tuple((cam_dir + np.array([0.5, 0.8, 0.3])).tolist())
        self.prog["view_dir"].value = tuple(cam_dir.tolist())
        self.fbo.use()
        self.ctx.enable(self.ctx.DEPTH_TEST)
        self.fbo.clear(0.95, 0.95, 0.95, 1.0, depth=1.0)
        vao.render()
        img = np.frombuffer(self.fbo.read(components=3), dtype=np.uint8).reshape(self.size, self.size, 3)
        vao.release()
        vbo.release()
        return img[::-1].copy()


def face_colours(labels: ndarray, verts: ndarray, faces: ndarray, eye_centres: list[ndarray]) -> ndarray:
    """Per-face RGB in 0..1 from component labels; eyeballs get a dark iris and pupil disc."""
    from engine.head.components import COLOURS, COMPONENTS

    table = np.array([COLOURS[c] for c in COMPONENTS], dtype=np.float64) / 255.0
    rgb = table[labels].copy()
    centroid = verts[faces].mean(axis=1)
    for label, centre, gaze in eye_centres:
        on = labels == label
        d = centroid[on] - centre
        cos = (d @ gaze) / np.linalg.norm(d, axis=1)
        rgb_eye = np.where((cos > 0.86)[:, None], table[label] * 0.6, np.array([0.96, 0.96, 0.94]))
        rgb_eye = np.where((cos > 0.965)[:, None], np.array([0.05, 0.05, 0.05]), rgb_eye)
        rgb[on] = rgb_eye
    return rgb


def _rotation(axis_angle: ndarray) -> ndarray:
    angle = float(np.linalg.norm(axis_angle))
    if angle < 1e-12:
        return np.eye(3)
    k = axis_angle / angle
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * kx + (1 - math.cos(angle)) * kx @ kx


def poses(expression_names: list[str]) -> list[tuple[str, dict, float, float]]:
    """(caption, smplx forward kwargs as numpy, yaw, pitch) for every picture of the sheet."""
    e = len(expression_names)
    out: list[tuple[str, dict, float, float]] = [
        ("neutral front", {}, 0.0, 0.0),
        ("neutral 3/4", {}, 0.75, 0.1),
        ("neutral side", {}, 1.5708, 0.0),
        ("neutral back 3/4", {}, 2.5, 0.2),
        ("neutral from below", {}, 0.3, -0.5),
    ]
    for i, name in enumerate(expression_names):
        x = np.zeros(e)
        x[i] = 1.0
        out.append((f"{name} 1.0", {"expression": x}, 0.35, 0.05))
    jaw = {"jaw_pose": np.array([0.3, 0.0, 0.0])}
    out += [
        ("jaw 0.3 front", jaw, 0.0, 0.0),
        ("jaw 0.3 3/4", jaw, 0.6, 0.0),
        ("jaw 0.3 close", jaw, 0.2, 0.15),
        ("eyes left 0.4", {"leye_pose": np.array([0.0, 0.4, 0.0]), "reye_pose": np.array([0.0, 0.4, 0.0])}, 0.0, 0.0),
        ("eyes up 0.3", {"leye_pose": np.array([-0.3, 0.0, 0.0]), "reye_pose": np.array([-0.3, 0.0, 0.0])}, 0.0, 0.0),
        ("head turn 0.5 (neck)", {"neck_pose": np.array([0.0, 0.5, 0.0])}, 0.0, 0.0),
        ("global tilt 0.3", {"global_orient": np.array([0.3, 0.0, 0.3])}, 0.0, 0.0),
    ]
    for i, name in enumerate(["shape 0 +2", "shape 1 +2", "shape 2 +2", "shape 3 +2", "shape 4 +2"]):
        b = np.zeros(10)
        b[i] = 2.0
        out.append((name, {"betas": b}, 0.5, 0.0))
    return out


def build_sheet(model_dir: Path, out_path: Path, size: int = 300, columns: int = 6) -> Path:
    """Render every pose of poses() and write a captioned contact sheet PNG; returns its path."""
    import smplx
    import torch
    from PIL import Image, ImageDraw

    data = np.load(model_dir / "FLAME_NEUTRAL.npz")
    names = [str(x) for x in data["expression_names"]]
    labels = data["face_labels"]
    model = smplx.FLAME(model_path=str(model_dir), ext="npz", num_betas=10, num_expression_coeffs=len(names),
                        use_face_contour=False, batch_size=1)
    faces = data["f"]
    renderer = MeshRenderer(size)
    tiles = []
    for caption, kwargs, yaw, pitch in poses(names):
        args = {k: torch.tensor(v, dtype=torch.float32)[None] for k, v in kwargs.items()}
        with torch.no_grad():
            out = model(**args)
        verts = out.vertices[0].numpy().astype(np.float64)
        joints = out.joints[0].numpy()
        eyes = []
        for label, joint, pose_key in ((2, 3, "leye_pose"), (3, 4, "reye_pose")):
            rot = _rotation(kwargs.get(pose_key, np.zeros(3)))
            rot = _rotation(kwargs.get("global_orient", np.zeros(3))) @ _rotation(kwargs.get("neck_pose", np.zeros(3))) @ rot
            eyes.append((label, joints[joint], rot @ np.array([0.0, 0.0, 1.0])))
        rgb = face_colours(labels, verts, faces, eyes)
        close = not caption.startswith(("neutral", "head", "global", "shape"))
        img = renderer.render(verts, faces, rgb, yaw=yaw, pitch=pitch, distance=0.42 if close else 0.80,
                              target=np.array([0.0, -0.015, 0.06]) if close else None)
        tile = Image.fromarray(img)
        ImageDraw.Draw(tile).text((6, 4), caption, fill=(0, 0, 0))
        tiles.append(tile)
    rows = (len(tiles) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * size, rows * size), (255, 255, 255))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * size, (i // columns) * size))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".tmp.png")
    sheet.save(tmp)
    os.replace(tmp, out_path)
    return out_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parents[1]
    parser.add_argument("--model", type=Path, default=root / "resources" / "demo_head", help="FLAME folder")
    parser.add_argument("--out", type=Path, default=root / "out" / "demo_head_sheet.png", help="PNG to write")
    parser.add_argument("--size", type=int, default=300, help="tile size in pixels")
    args = parser.parse_args(argv)
    if not (args.model / "FLAME_NEUTRAL.npz").is_file():
        print(f"error: {args.model / 'FLAME_NEUTRAL.npz'} not found; run python -m engine.head.sculpt", file=sys.stderr)
        return 2
    print(build_sheet(args.model, args.out, size=args.size))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
