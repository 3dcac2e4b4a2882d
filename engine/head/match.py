"""Which head a file was made with, and what to tell the user when the head at hand is another one.

Datasets and avatars say what mesh they need by their sizes: a static offset row per vertex, a
binding per triangle. FLAME files have 5023 vertices; GaussianAvatars and VHAP files have 5143
(FLAME plus teeth) and bind up to triangle 10,143. A FLAME head gets the teeth when a file needs
them; any other mismatch is refused with the file, what it holds, what the head has, and what to do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.head.teeth import FLAME_FACES, FLAME_VERTS, TEETH_FACES, TEETH_VERTS

if TYPE_CHECKING:
    from engine.head.model import HeadModel

PASS_FLAME = ("pass your FLAME model with --flame FILE (or set DYNAMICAVATARS_FLAME; in the app: "
              "File → FLAME model…)")
"""What to do when a file needs the user's FLAME model (the GUI asks for the file instead)."""


def _flame_words(vertices: int) -> str:
    return "FLAME with GaussianAvatars' teeth" if vertices == FLAME_VERTS + TEETH_VERTS else "FLAME"


def offset_mismatch(head: HeadModel, vertices: int, origin: str, key: str = "static_offset") -> str:
    """Why `origin`'s per-vertex offsets (vertices rows) do not fit `head`, and what to do."""
    found = f"{origin}: {key} has {vertices} vertices, head {head.name!r} has {head.n_verts}"
    if made_on_flame(vertices) and not head.is_flame:
        return (f"{found}: this was tracked with {_flame_words(vertices)} ({vertices} vertices), "
                f"not with the {head.name}: {PASS_FLAME}")
    if vertices == FLAME_VERTS + TEETH_VERTS and head.is_flame:
        return f"{found}: it needs FLAME with teeth; load the head with teeth (load_head(..., teeth=True))"
    return f"{found}: pass the head model it was made with (--flame FILE)"


def binding_mismatch(head: HeadModel, max_face: int) -> str:
    """Why Gaussians bound to triangle max_face do not fit `head`, and what to do (the caller names the file)."""
    found = f"Gaussians bound to triangle {max_face}, but head {head.name!r} has {head.n_faces} triangles"
    if max_face < FLAME_FACES + TEETH_FACES and not head.is_flame:
        return (f"{found}: this avatar was made on FLAME (GaussianAvatars' mesh with teeth has "
                f"{FLAME_FACES + TEETH_FACES:,} triangles): {PASS_FLAME}")
    return f"{found}: open it with the head model it was made with (--flame FILE)"


def made_on_flame(offset_vertices: int | None) -> bool:
    """Whether per-vertex offsets of this many rows come from FLAME (with or without teeth)."""
    return offset_vertices in (FLAME_VERTS, FLAME_VERTS + TEETH_VERTS)


def needs_teeth(offset_vertices: int | None, max_face: int | None) -> bool:
    """Whether a FLAME-made file needs GaussianAvatars' teeth: offsets for 5143 vertices or a binding
    past FLAME's triangles say yes, offsets for 5023 vertices say no, and a file that says nothing
    gets them (GaussianAvatars and VHAP always add them)."""
    if offset_vertices == FLAME_VERTS + TEETH_VERTS or (max_face is not None and max_face >= FLAME_FACES):
        return True
    return offset_vertices != FLAME_VERTS


def head_for(head: HeadModel, offset_vertices: int | None = None, max_face: int | None = None) -> HeadModel:
    """`head` with GaussianAvatars' teeth when it is a FLAME head and the file needs them (else itself)."""
    if head.is_flame and not head.has_teeth and needs_teeth(offset_vertices, max_face):
        return head.with_teeth()
    return head
