"""Fixtures the tracking tests share: the demo head and its shipped MediaPipe landmark embedding."""

from __future__ import annotations

import pytest

from engine.head.model import load_head
from engine.track.embedding import SHIPPED_DIR, embedding_file_name, head_fingerprint, load_embedding


@pytest.fixture(scope="module")
def head():
    return load_head("demo")


@pytest.fixture(scope="module")
def embedding(head):
    return load_embedding(SHIPPED_DIR / embedding_file_name("mediapipe-facemesh-478", head_fingerprint(head)),
                          head.n_faces)
