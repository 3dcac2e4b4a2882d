"""FLAME-format parametric heads: the model and its loading (model.py, flame_file.py), FLAME parameters
(params.py), facial components (components.py), and the embedded demo head's sculpt (sculpt/).

The component names load nothing heavy (the prompt refiner uses them without torch); HeadModel, load_head
and FlameParams import torch, so they are imported on first use.
"""

from typing import Any

from engine.head.components import COMPONENTS, GROUPS, LABEL, expand, labels_of

__all__ = ["COMPONENTS", "FlameParams", "GROUPS", "HeadModel", "LABEL", "expand", "labels_of", "load_head"]


def __getattr__(name: str) -> Any:
    if name in ("HeadModel", "load_head"):
        from engine.head import model

        return getattr(model, name)
    if name == "FlameParams":
        from engine.head.params import FlameParams

        return FlameParams
    raise AttributeError(f"module 'engine.head' has no attribute {name!r}")
