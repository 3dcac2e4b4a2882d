"""2D edits of the keyframes, gated by the discriminator, so that a rejection never ends an edit.

Each keyframe is edited and judged; a rejected edit is regenerated with new seeds (generative editors
only: a deterministic editor would return the same image), then the keyframe is replaced by the next
best view of the same part of the region that is not in use yet. A keyframe none of whose tries passes
is dropped (reason recorded) as long as some other keyframe passed. If the gate rejects every keyframe,
the edit goes on with the best-judged try of each keyframe and a warning: the gate is a safeguard
against broken images, not a reason to refuse a plan the editor can do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from engine.edit.discriminator import EditDiscriminator
from engine.edit.editors.base import ImageEditor, composite
from engine.edit.keyframes import View
from engine.edit.optimise import EditTarget
from engine.prompting.plan import EditPlan


@dataclass(frozen=True)
class KeyframeShot:
    """One keyframe as a person sees it in the Edit panel: the crop before and after its 2D edit, and the
    gate's verdict. Tensors are on the CPU, sRGB in [0, 1], at the keyframe size (EditConfig.size)."""

    slot: int  # keyframe number, 0..K-1 (a replaced keyframe keeps its slot)
    timestep: int  # the frame it shows (dataset timestep, or index in the FLAME sequence)
    camera_index: int  # the dataset's camera, or the orbit camera's index
    before: Tensor  # [H, W, 3] the unedited render of the crop
    after: Tensor  # [H, W, 3] the 2D edit, composited through the mask (what the optimisation aims at)
    mask: Tensor  # [H, W] the rendered selection mask in [0, 1]
    score: float  # the discriminator's realness of `after` (1.0 when no discriminator judged it)
    threshold: float  # the gate's threshold (0.0 when no discriminator judged it); accepted = score >= threshold
    accepted: bool  # the gate passed it
    used: bool  # the optimisation fitted it (accepted, or among the best-judged when the gate rejected all)
    note: str  # "ok", or why it was rejected / replaced

    def as_dict(self) -> dict[str, object]:
        """The figures without the images (for logs and layer info)."""
        return {"slot": self.slot, "timestep": self.timestep, "camera_index": self.camera_index,
                "score": round(self.score, 3), "threshold": round(self.threshold, 3), "accepted": self.accepted,
                "used": self.used, "note": self.note}


class KeyframeEditor:
    """Edits keyframe targets with one editor and gate; collects what was dropped and what to warn about."""

    def __init__(self, editor: ImageEditor, plan: EditPlan, disc: EditDiscriminator | None, seed: int,
                 retries: int, note: Callable[[str], None]) -> None:
        self.editor, self.plan, self.disc, self.seed, self.retries, self.note = editor, plan, disc, seed, retries, note
        self.dropped: list[str] = []  # one line per dropped or replaced keyframe
        self.warnings: list[str] = []  # what the user should check
        self.refreshes = 0  # keyframe refreshes so far (each gets its own seed)
        self.shots: list[KeyframeShot] = []  # every keyframe tried, in slot order (see `shot`)

    def _judge(self, target: EditTarget, image: Tensor, seed: int) -> tuple[Tensor, bool, float, str]:
        """(edited target [H, W, 3], accepted, realness, reason) of one editor call on image [H, W, 3]."""
        result = self.editor.edit(image, target.mask, self.plan, seed)
        # the editor's own output through the mask once, over the unedited render: a refresh edits the
        # current render, and result.image is already blended (compositing it again would square the mask)
        edited = composite(target.original, result.raw, target.mask)
        if self.disc is None:
            return edited, True, 1.0, "ok"
        ok, score, reason = self.disc.gate(edited, target.mask, target.original)
        return edited, ok, score, reason

    def _seeds(self, target: EditTarget, slot: int) -> tuple[Tensor, bool, float, list[str]]:
        """The first accepted edit of target over its seeds, else the best-judged one: (image, accepted, score, reasons)."""
        attempts = 1 if self.editor.deterministic else 1 + self.retries
        best: tuple[Tensor, float] | None = None
        reasons = []
        for attempt in range(attempts):
            edited, ok, score, reason = self._judge(target, target.original, self.seed + 7919 * slot + 104729 * attempt)
            if ok:
                return edited, True, score, reasons
            reasons.append(reason)
            if attempt + 1 < attempts:
                self.note(f"keyframe {slot} (t={target.view.timestep}, camera {target.view.camera_index}): edit "
                          f"rejected, {reason}; regenerating with another seed")
            if best is None or score > best[1]:
                best = (edited, score)
        assert best is not None
        return best[0], False, best[1], reasons

    def edit_all(self, targets: list[EditTarget], indices: list[int], spare: list[int],
                 prepare: Callable[[int], EditTarget], views: list[View], cancel: Callable[[], bool],
                 progress: Callable[[float, str], None],
                 preview: Callable[[int, Tensor, Tensor], None] | None) -> list[EditTarget] | None:
        """The accepted keyframe targets (their `edited` set), never empty; None when cancelled.

        targets: prepared keyframes of candidates `indices`; spare: other candidates, best first, that may
        replace a rejected keyframe (of the same spatial group); prepare(candidate) -> EditTarget."""
        kept: list[EditTarget] = []
        fallback: list[tuple[float, int, EditTarget]] = []
        spare = list(spare)
        for n, target in enumerate(targets):
            if cancel():
                return None
            cand, tries, log = indices[n], 0, []
            while True:
                edited, ok, score, reasons = self._seeds(target, n)
                log += reasons
                if ok:
                    break
                fallback.append((score, n, target))
                target.edited = edited
                group = views[cand].group
                nxt = next((c for c in spare if views[c].group == group), None)
                if nxt is None or tries >= self.retries:
                    break
                spare.remove(nxt)
                self.note(f"keyframe {n} (t={target.view.timestep}, camera {target.view.camera_index}) rejected: "
                          f"{'; '.join(reasons)}; trying t={views[nxt].timestep}, camera {views[nxt].camera_index}")
                cand, tries, target = nxt, tries + 1, prepare(nxt)
            if ok:
                target.edited = edited
                kept.append(target)
                if tries:
                    self.dropped.append(f"keyframe {n}: replaced after {'; '.join(log)}")
                if preview is not None:
                    preview(n, target.original, edited)
                self._shot(n, target, score, True, True, f"replaced after {'; '.join(log)}" if tries else "ok")
            else:
                self.dropped.append(f"keyframe {n}: {'; '.join(log)}")
                self.note(f"keyframe {n}: every try rejected ({'; '.join(log)})")
                self._shot(n, target, score, False, False, "; ".join(log))
            progress((n + 1) / len(targets), f"editing keyframe {n + 1}/{len(targets)}")
        if kept:
            return kept
        best = _best_per_slot(fallback, len(targets))
        self.shots = [self._make_shot(slot, t, score, False, True, "the gate rejected every keyframe; kept as one "
                                      "of the best-judged edits") for score, slot, t in best]
        self.warnings.append(
            f"the discriminator rejected every keyframe edit (best realness {max(f[0] for f in fallback):.2f}); "
            f"the edit went on with the {len(best)} best-judged edits: check the result")
        return [t for _, _, t in best]

    def _make_shot(self, slot: int, target: EditTarget, score: float, accepted: bool, used: bool,
                   note: str) -> KeyframeShot:
        threshold = self.disc.threshold if self.disc is not None else 0.0
        return KeyframeShot(slot, target.view.timestep, target.view.camera_index, target.original.detach().cpu().clone(),
                            target.edited.detach().cpu().clone(), target.mask.detach().cpu().clone(), float(score), float(threshold),
                            accepted, used, note)

    def _shot(self, slot: int, target: EditTarget, score: float, accepted: bool, used: bool, note: str) -> None:
        self.shots.append(self._make_shot(slot, target, score, accepted, used, note))

    def refresh(self, target: EditTarget, current: Tensor) -> Tensor | None:
        """A new edit of a keyframe from its current render [H, W, 3] (iterative dataset update), or None
        when the gate rejects it (the keyframe keeps its target)."""
        self.refreshes += 1
        edited, ok, _, reason = self._judge(target, current, self.seed + 15485863 * self.refreshes)
        if not ok:
            self.note(f"keyframe refresh (t={target.view.timestep}, camera {target.view.camera_index}) rejected: {reason}")
            return None
        return edited


def _best_per_slot(fallback: list[tuple[float, int, EditTarget]], slots: int) -> list[tuple[float, int, EditTarget]]:
    """The `slots` best-judged tries (score, slot, target), each a different view with its best edit set, best first."""
    return sorted(fallback, key=lambda st: -st[0])[: max(1, slots)]
