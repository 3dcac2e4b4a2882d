"""Exports: videos and PNG frames along camera paths (video.py, camera_paths.py), and splat files: a standard
world-space 3DGS ply or the animatable GaussianAvatars layout (splat_export.py)."""

from engine.export.camera_paths import CameraPath
from engine.export.splat_export import export_gaussianavatars, export_standard_ply
from engine.export.video import VideoJob, VideoSettings, export_frames, export_video

__all__ = ["CameraPath", "VideoJob", "VideoSettings", "export_frames", "export_gaussianavatars",
           "export_standard_ply", "export_video"]
