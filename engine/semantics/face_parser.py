"""2D face parsing with a SegFormer checkpoint loaded through transformers from a local path.

For instance jonathandinu/face-parsing (19 CelebAMask-HQ classes: background, skin, nose, eye_g,
l_eye, r_eye, l_brow, r_brow, l_ear, r_ear, mouth, u_lip, l_lip, hair, hat, ear_r, neck_l, neck,
cloth). The checkpoint's id2label names are mapped to COMPONENTS by CELEBAMASK_TO_COMPONENT;
classes that are not part of a head (background, cloth) become -1. Nothing is downloaded: pass a
folder or a hub id already in huggingface_hub's cache (engine.models).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from engine.head.components import LABEL

CELEBAMASK_TO_COMPONENT: dict[str, str | None] = {
    "background": None,
    "skin": "skin",
    "nose": "nose",
    "eye_g": "accessory",
    "l_eye": "left_eye",
    "r_eye": "right_eye",
    "l_brow": "left_brow",
    "r_brow": "right_brow",
    "l_ear": "ears",
    "r_ear": "ears",
    "mouth": "mouth_interior",
    "u_lip": "upper_lip",
    "l_lip": "lower_lip",
    "hair": "hair",
    "hat": "accessory",
    "ear_r": "accessory",
    "neck_l": "accessory",
    "neck": "neck",
    "cloth": None,
}
"""CelebAMask-HQ class names -> COMPONENTS name (None: not a head component)."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def component_table(id2label: dict[int, str]) -> Tensor:
    """[K] long COMPONENTS index (or -1) per parser class id, from the checkpoint's id2label names.

    Raises ValueError naming a class name it does not know.
    """
    k = max(int(i) for i in id2label) + 1
    table = torch.full((k,), -1, dtype=torch.long)
    for i, name in id2label.items():
        key = str(name).strip().lower()
        if key in LABEL:
            table[int(i)] = LABEL[key]
            continue
        if key not in CELEBAMASK_TO_COMPONENT:
            raise ValueError(f"face parser class {name!r} has no component mapping; known: {', '.join(CELEBAMASK_TO_COMPONENT)}")
        target = CELEBAMASK_TO_COMPONENT[key]
        table[int(i)] = -1 if target is None else LABEL[target]
    return table


@dataclass
class FaceParser:
    """A SegFormer semantic-segmentation model plus the class -> component table."""

    model: torch.nn.Module  # transformers SegformerForSemanticSegmentation (eval mode)
    table: Tensor  # [K] long COMPONENTS index per class, -1 = not a head component
    input_size: int = 512  # images are resized to input_size² before the network

    @staticmethod
    def from_path(path: str | os.PathLike, input_size: int = 512) -> FaceParser:
        """Load a checkpoint folder (config.json + weights), or a hub id in the local cache, without network access."""
        from transformers import SegformerForSemanticSegmentation

        from engine.models import ModelError, resolve_local

        try:
            folder = resolve_local(str(path))
            model = SegformerForSemanticSegmentation.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError, ModelError) as exc:
            raise ValueError(f"{path}: cannot load a SegFormer face parser ({exc})") from None
        model.eval()
        return FaceParser(model, component_table(model.config.id2label), input_size)

    def __call__(self, image: Tensor) -> Tensor:
        return self.parse(image)

    def parse(self, image: Tensor) -> Tensor:
        """image [H, W, 3] float in [0, 1] -> labels [H, W] long (COMPONENTS index, -1 = none)."""
        assert image.ndim == 3 and image.shape[2] == 3, f"image must be [H, W, 3], got {tuple(image.shape)}"
        h, w = image.shape[:2]
        param = next(self.model.parameters())
        x = image.permute(2, 0, 1)[None].to(param)
        x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype)[None, :, None, None]
        std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype)[None, :, None, None]
        with torch.no_grad():
            logits = self.model(pixel_values=(x - mean) / std).logits  # [1, K, h/4, w/4]
            logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        classes = logits[0].argmax(0).cpu()
        return self.table[classes.clamp(max=self.table.shape[0] - 1)].to(image.device)
