"""Semantic tracking: component labels (fci.py), selections (selection.py), masks lifted onto the Gaussians
and rendered anywhere (lift.py, mask_render.py, region_fit.py), and the paper's mask-mapping network
(mapping_net.py, mapping_data.py)."""

from engine.semantics.lift import fit_to_view, lift_filled, lift_mask, rest_points
from engine.semantics.mask_render import iou, render_mask
from engine.semantics.selection import Selection, load_selection, save_selection

__all__ = ["Selection", "fit_to_view", "iou", "lift_filled", "lift_mask", "load_selection", "render_mask",
           "rest_points", "save_selection"]
