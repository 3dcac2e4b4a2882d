"""The edit job the CLI and the GUI call: avatar + selection + plan -> EditLayer (or None if cancelled).

Steps: expression-only plans become an expression-offset layer at once. Otherwise candidate views
(dataset frames, or the FLAME sequence × an orbit) -> small renders of every candidate give the
selection's real (occlusion-aware) visibility and its colour statistics over all views, which
calibrate the editor (one colour mapping for every view) -> K keyframes by visibility-weighted
farthest-point sampling -> per keyframe a camera cropped around the selection, the original render
and the rendered selection mask -> a discriminator trained on the avatar's renders and photos -> 2D
edits, each gated by the discriminator (regenerated with another seed, or dropped with the reason
logged) -> the edit optimisation (views weighted by their visible mask area) with iterative keyframe
refresh for generative editors -> an EditLayer. The avatar passed in is never modified.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.edit.discriminator import DiscriminatorConfig, EditDiscriminator, train_discriminator
from engine.edit.editors.base import EditorError, ImageEditor, composite
from engine.edit.keyframes import (
    KeyframeChoice, View, all_visible, dataset_views, farthest_point_keyframes, orbit_cameras, orbit_views,
    view_features,
)
from engine.edit.layers import EditLayer
from engine.edit.optimise import EditOptimiser, EditTarget, OptimConfig
from engine.edit.views import crop_camera, crop_photo, dilate, render_view
from engine.edit.visibility import measure_visibility
from engine.prompting.plan import EditKind, EditPlan

log = logging.getLogger(__name__)
ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]
PreviewFn = Callable[[int, Tensor, Tensor], None]
DEFAULT_KEYFRAMES = 8


@dataclass(frozen=True)
class EditConfig:
    """How an edit runs (the plan says what to change; this says how hard to work)."""

    size: int = 160  # keyframe side in pixels (cropped around the selection)
    keyframes: int | None = None  # K; None: the plan's keyframes (DEFAULT_KEYFRAMES when the plan says 0)
    all_frames: bool = False  # edit every candidate view the region is visible in instead of K keyframes
    passes: int = 25  # optimisation steps per edited view (steps = passes × views, within the limits below)
    min_steps: int = 60  # fewest optimisation steps
    max_steps: int | None = None  # most optimisation steps (None: the plan's iterations)
    orbit_cameras: int = 8  # cameras on the orbit when the avatar has no dataset
    max_timesteps: int = 24  # FLAME frames considered when the avatar has no dataset
    dilate: int = 2  # pixels the selection mask is dilated by before "outside" starts
    visibility_size: int = 48  # side of the small per-candidate renders measuring visibility and colour statistics
    min_visibility: float = 0.05  # candidates showing less of the selection are never edited
    weight_by_area: bool = True  # weight each view's loss by its visible mask area (grazing views count less)
    gate_retries: int = 2  # new seeds tried for an edit the discriminator rejects before dropping it
    discriminator: bool = True  # train and use the edit discriminator
    disc: DiscriminatorConfig = field(default_factory=lambda: DiscriminatorConfig())  # its training
    extra_reals: int = 8  # extra candidate views rendered as real images for the discriminator
    optim: OptimConfig = field(default_factory=OptimConfig)  # optimisation hyper-parameters (steps is overridden)
    seed: int = 0  # seeds editors, keyframe order, discriminator
    preview_every: int = 10  # optimisation steps between previews


@dataclass(frozen=True)
class EditResult:
    """What an edit produced."""

    layer: EditLayer  # the edit, to append to the avatar's layers
    keyframes: KeyframeChoice | None  # the chosen views (None for expression-only plans)
    editor: ImageEditor | None  # the editor as used (calibrated on every candidate view), None for expression plans
    views: tuple[View, ...]  # the edited views (after gating)
    dropped: tuple[str, ...]  # one reason per dropped keyframe
    log: tuple[str, ...]  # what happened, for the user
    seconds: float  # wall time


def expression_layer(avatar: Avatar, plan: EditPlan) -> EditLayer:
    """A persistent expression-offset layer from the plan's expression deltas."""
    offset = avatar.head.expr_vector(**plan.expression)
    return EditLayer(name=f"expression: {plan.prompt or plan.refined_prompt}"[:80], kind="expression",
                     expr_offset=offset, info={"plan": plan.model_dump(mode="json")})


def selection_weights(avatar: Avatar, selection: Tensor) -> Tensor:
    """[N] float weights in [0, 1] of a bool/float selection [N]."""
    n = avatar.gaussians.count
    if selection.shape != (n,):
        raise ValueError(f"selection must have one value per Gaussian ({n}), got shape {tuple(selection.shape)}")
    return selection.float().clamp(0, 1).cpu()


def _steps(config: EditConfig, plan: EditPlan, views: int) -> int:
    cap = config.max_steps if config.max_steps is not None else plan.iterations
    return max(1, min(cap, max(config.min_steps, config.passes * views)))


def _candidates(avatar: Avatar, config: EditConfig, dataset: object | None) -> list[View]:
    if dataset is not None:
        return dataset_views(avatar, dataset, 512)
    cams = orbit_cameras(avatar, config.orbit_cameras, 512)
    return orbit_views(avatar, avatar.params, cams, config.max_timesteps)


class _Job:
    """State of one edit run (split so each stage stays short)."""

    def __init__(self, avatar: Avatar, weights: Tensor, plan: EditPlan, editor: ImageEditor, config: EditConfig,
                 progress: ProgressFn, cancel: CancelFn, preview: PreviewFn | None) -> None:
        self.avatar, self.weights, self.plan, self.editor, self.config = avatar, weights, plan, editor, config
        self.progress, self.cancel, self.preview = progress, cancel, preview
        self.selected = weights >= 0.5
        self.messages: list[str] = []
        self.dropped: list[str] = []

    def note(self, text: str) -> None:
        log.info("edit: %s", text)
        self.messages.append(text)

    def prepare(self, view: View) -> tuple[View, EditTarget]:
        with torch.no_grad():
            verts = self.avatar.posed_vertices(view.params).float()
            sel = self.avatar.gaussians.subset(self.selected).deform(verts, self.avatar.head.faces).means
        cam = crop_camera(view.camera, sel, self.config.size)
        cropped = View(view.params, cam, view.timestep, view.camera_index, view.image_path)
        rgb, mask = render_view(self.avatar, verts, cam, self.weights, self.config.optim.background,
                                self.config.optim.render_backend)
        outside = 1.0 - dilate((mask > 0.02).float(), self.config.dilate)
        return cropped, EditTarget(cropped, rgb, mask, outside, rgb.clone(), verts)

    def train_disc(self, targets: list[EditTarget], extra: list[View]) -> EditDiscriminator | None:
        from engine.data.frames import load_image

        reals = [t.original for t in targets]
        for view in extra:
            cropped, target = self.prepare(view)
            reals.append(target.original)
            if view.image_path is not None and view.image_path.is_file():
                reals.append(crop_photo(load_image(view.image_path), view.camera, cropped.camera))
        sub = lambda f, m: self.progress(0.15 + 0.15 * f, m)
        return train_discriminator(reals, self.config.disc, self.cancel, sub)

    def edit_one(self, i: int, target: EditTarget, image: Tensor, disc: EditDiscriminator | None,
                 attempts: int, refreshing: bool = False) -> Tensor | None:
        """The edited target for keyframe i from image [H, W, 3], or None (reason recorded) when every attempt fails."""
        reasons = []
        for attempt in range(attempts):
            seed = self.config.seed + 7919 * i + 104729 * attempt
            result = self.editor.edit(image, target.mask, self.plan, seed)
            # the editor's own output through the mask once, over the unedited render: a refresh edits the
            # current render, and result.image is already blended (compositing it again would square the mask)
            edited = composite(target.original, result.raw, target.mask)
            ok, _, reason = disc.gate(edited, target.mask) if disc is not None else (True, 1.0, "ok")
            if ok:
                return edited
            reasons.append(reason)
            what = "refresh" if refreshing else "edit"
            self.note(f"keyframe {i} (t={target.view.timestep}, camera {target.view.camera_index}): {what} rejected, "
                      f"{reason}" + ("; regenerating" if attempt + 1 < attempts else ""))
        if not refreshing:
            self.dropped.append(f"keyframe {i}: {'; '.join(reasons)}")
        return None


def run_edit(avatar: Avatar, selection: Tensor, plan: EditPlan, editor: ImageEditor,
             config: EditConfig | None = None, dataset: object | None = None,
             progress: ProgressFn | None = None, cancel: CancelFn | None = None,
             preview: PreviewFn | None = None) -> EditResult | None:
    """Edit the selected region of avatar (selection: bool/float [N]) by plan; None when cancelled.

    dataset: an engine.data.vhap_format.AvatarDataset the avatar was trained on, or None (orbit).
    progress(fraction, message), cancel() -> bool, preview(keyframe index, before [H, W, 3], after [H, W, 3]).
    """
    start = time.perf_counter()
    config = config or EditConfig()
    progress = progress or (lambda f, m: None)
    cancel = cancel or (lambda: False)
    if plan.is_expression_only:
        layer = expression_layer(avatar, plan)
        return EditResult(layer, None, None, (), (), ("expression offset layer",), time.perf_counter() - start)
    job = _Job(avatar, selection_weights(avatar, selection), plan, editor, config, progress, cancel, preview)
    if not bool(job.selected.any()):
        raise ValueError("nothing is selected: choose components or paint a mask before editing")
    progress(0.0, "measuring where the selection is visible")
    views = _candidates(avatar, config, dataset)
    feats = view_features(avatar, views)
    seen = measure_visibility(avatar, views, job.weights, config.visibility_size, config.optim.render_backend)
    if cancel():
        return None
    vis = seen.visibility
    shown = [i for i in range(len(views)) if float(vis[i]) >= config.min_visibility]
    job.editor = editor.calibrated([seen.images[i] for i in shown], [seen.masks[i] for i in shown])
    k = config.keyframes if config.keyframes is not None else (plan.keyframes or DEFAULT_KEYFRAMES)
    choice = (all_visible(vis, feats, config.min_visibility, seen.seen, seen.weights) if config.all_frames
              else farthest_point_keyframes(feats, vis, k, min_visibility=config.min_visibility, seen=seen.seen,
                                            seen_weights=seen.weights))
    job.note(f"{len(views)} candidate views, {len(shown)} show the selection; " + choice.describe())
    return _run_stages(job, views, choice, start)


def _run_stages(job: _Job, views: list[View], choice: KeyframeChoice, start: float) -> EditResult | None:
    config = job.config
    targets: list[EditTarget] = []
    for n, idx in enumerate(choice.indices):
        if job.cancel():
            return None
        targets.append(job.prepare(views[idx])[1])
        job.progress(0.15 * (n + 1) / len(choice.indices), f"rendering keyframe {n + 1}/{len(choice.indices)}")
    disc = None
    if config.discriminator:
        chosen = set(choice.indices)
        rest = [i for i in torch.randperm(len(views), generator=torch.Generator().manual_seed(config.seed)).tolist()
                if i not in chosen and float(choice.visibility[i]) > 0.05][: config.extra_reals]
        disc = job.train_disc(targets, [views[i] for i in rest])
        if disc is None:
            return None
    kept: list[EditTarget] = []
    attempts = 1 if job.editor.deterministic else 1 + config.gate_retries  # new seeds cannot change the result
    for n, t in enumerate(targets):
        if job.cancel():
            return None
        edited = job.edit_one(n, t, t.original, disc, attempts)
        if edited is not None:
            t.edited = edited
            kept.append(t)
            if job.preview is not None:
                job.preview(n, t.original, edited)
        job.progress(0.3 + 0.1 * (n + 1) / len(targets), f"editing keyframe {n + 1}/{len(targets)}")
    if not kept:
        raise EditorError("every keyframe edit was rejected: " + " | ".join(job.dropped))
    if config.weight_by_area:
        areas = torch.tensor([float(t.mask.sum()) for t in kept])
        for t, a in zip(kept, (areas / areas.mean().clamp_min(1e-9)).tolist()):
            t.weight = a
    return _optimise(job, kept, disc, choice, start)


def _optimise(job: _Job, kept: list[EditTarget], disc: EditDiscriminator | None, choice: KeyframeChoice,
              start: float) -> EditResult | None:
    config, plan = job.config, job.plan
    geometry = any(k in (EditKind.SHAPE, EditKind.ACCESSORY) for k in plan.kinds)
    steps = _steps(config, plan, len(kept))
    from dataclasses import replace

    oc = replace(config.optim, steps=steps, geometry=geometry or config.optim.geometry,
                 view_dependent=EditKind.TEXTURE in plan.kinds or config.optim.view_dependent, seed=config.seed)

    def refresh(k: int, current: Tensor) -> Tensor | None:
        return job.edit_one(k, kept[k], current, disc, 1, refreshing=True)

    # a deterministic editor would only reproduce (or, re-editing its own output, distort) its targets
    opt = EditOptimiser(job.avatar, job.selected, kept, oc, disc, None if job.editor.deterministic else refresh)
    job.note(f"optimising {int(job.selected.sum())} selected Gaussians over {len(kept)} views for {steps} steps"
             + (" (geometry on)" if geometry else ""))
    while not opt.finished:
        if job.cancel():
            return None
        info = opt.step()
        if job.preview is not None and (info.step % config.preview_every == 0 or opt.finished):
            job.preview(info.target, kept[info.target].original, info.render)
        job.progress(0.4 + 0.6 * info.step / steps, f"step {info.step}/{steps}, loss {info.loss:.4f}")
    name = f"edit: {plan.prompt or plan.refined_prompt}"[:80]
    info = {"plan": plan.model_dump(mode="json"), "editor": job.editor.name, "keyframes": len(kept),
            "coverage": choice.coverage, "region_coverage": choice.region_coverage, "steps": steps,
            "dropped": list(job.dropped), "added": opt.n_added}
    reference = getattr(job.editor, "reference", None)
    if reference is not None and hasattr(reference, "as_dict"):
        info["editor_reference"] = reference.as_dict()
    layer = opt.layer(name, info)
    job.note(f"done: {layer.indices.numel()} Gaussians changed, {opt.n_added} added")
    return EditResult(layer, choice, job.editor, tuple(t.view for t in kept), tuple(job.dropped),
                      tuple(job.messages), time.perf_counter() - start)
