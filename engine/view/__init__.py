"""The Qt-free "session state → frame" path: what the GUI's viewport, the exports, the CLI and the benchmarks
all call to turn a posed, edited avatar and a camera into pixels.

- state: SessionState, everything shown, as plain Python with change events; request() snapshots it.
- camera: CameraState (the orbit camera) and the one framing rule (framing_camera, frame_points).
- posing: posed_params and with_layer_offset, the one rule for a frame's FLAME parameters with edit layers.
- request: ViewRequest (one picture's inputs), Frame (its pixels), ViewOptions.
- pipeline: FramePipeline, ViewRequest -> Frame with its caches; backends: the renderers and their choice.
- progressive: RenderLoop (a render thread: reduced while input moves, full resolution once it rests).
- overlays: component tints, per-Gaussian overlays, the mesh wireframe.
"""

from engine.view.camera import CameraState, frame_points, framing_camera
from engine.view.pipeline import FramePipeline
from engine.view.posing import posed_params, with_layer_offset
from engine.view.progressive import FrameBudget, RenderLoop
from engine.view.request import Frame, ViewOptions, ViewRequest
from engine.view.state import SessionState

__all__ = ["CameraState", "Frame", "FrameBudget", "FramePipeline", "RenderLoop", "SessionState", "ViewOptions",
           "ViewRequest", "frame_points", "framing_camera", "posed_params", "with_layer_offset"]
