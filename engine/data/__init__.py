"""Datasets: the GaussianAvatars / VHAP layout (vhap_format.py read, vhap_writer.py write), frames loaded for
training (frames.py), a synthetic dataset of the demo head (synth.py), mesh rendering for it (mesh_render.py)."""

from engine.data.synth import SynthConfig, generate
from engine.data.vhap_format import AvatarDataset, read_dataset

__all__ = ["AvatarDataset", "SynthConfig", "generate", "read_dataset"]
