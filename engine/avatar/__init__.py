"""An animatable avatar: a head model, Gaussians bound to its triangles, and a FLAME sequence.

Avatar (avatar.py), BoundGaussians (gaussians.py, the binding maths in binding.py), Pose / apply_pose
(posing.py: the values people type or drag), avatar folders and plys (files.py), the demo avatar (demo.py).
"""

from engine.avatar.avatar import Avatar
from engine.avatar.files import load_avatar, save_avatar
from engine.avatar.gaussians import BoundGaussians
from engine.avatar.posing import Pose, apply_pose

__all__ = ["Avatar", "BoundGaussians", "Pose", "apply_pose", "load_avatar", "save_avatar"]
