"""Rasterizing Gaussian splats: cameras, world-space Splats, and render() over its backends.

render (rasterize.py: "torch" reference, "cpu" numba, "gsplat" CUDA; differentiable), the inference-only
viewer renderers (fast_view.py), OpenGL splats (gl_splats.py), the shared rule's numbers (constants.py).
"""

from engine.render.camera import Camera, framing, look_at, orbit_camera
from engine.render.rasterize import BACKENDS, RenderResult, render
from engine.render.splats import Splats

__all__ = ["BACKENDS", "Camera", "RenderResult", "Splats", "framing", "look_at", "orbit_camera", "render"]
