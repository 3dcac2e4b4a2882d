"""The editing stage: edit layers over the base Gaussians (layers.py), direct adjustments (adjust.py), image
editors (editors/), keyframes, views and the edit optimisation (keyframes.py, views.py, optimise.py, run.py)."""

from engine.edit.layers import EditLayer, compose, expression_offset

__all__ = ["EditLayer", "compose", "expression_offset"]
