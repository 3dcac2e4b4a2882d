"""The edit job the CLI and the GUI call: avatar + selection + plan -> EditResult (or None if cancelled).

Steps: the plan's expression deltas become an expression-offset layer (alone for expression-only plans,
beside the appearance layer for mixed ones, whose candidate views then wear the new expression). A
plan's `part` narrows the selection to that part's Gaussians (engine.edit.parts: the iris of the
eyes). The selection is split into spatial groups (each eye, each ear: engine.edit.regions); candidate
views (dataset frames, or the FLAME sequence × an orbit) × groups are rendered small: the region's
visible pixels give each candidate's visibility, and the renders give the region's colour statistics
over all views, which calibrate the editor (one colour mapping for every view) -> K keyframes by
visibility-weighted farthest-point sampling -> per keyframe a camera cropped around what the view shows
of its group, the original render and the rendered selection mask -> a discriminator trained on the
avatar's renders and photos, its gate calibrated on clean procedural edits of those keyframes -> 2D
edits (engine.edit.keyframe_edits: a rejected edit is regenerated with another seed, then replaced by
another view; if the gate rejects everything the best edits are kept with a warning) -> the edit
optimisation (views weighted by their visible mask area). An editor whose edit is a colour mapping
(the procedural one) gives every selected Gaussian its own colour through that mapping (every view
direction of its SH), and that is the result (EditConfig.mapped_steps = 0), so no Gaussian the keyframes
miss keeps its old colour and the colour stays even in views no keyframe showed; for generative editors,
Gaussians no keyframe reached take the change of their nearest reached neighbour. The avatar passed in
is never modified. The result carries the keyframes as the user sees them (EditResult.shots).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.edit.discriminator import DiscriminatorConfig, EditDiscriminator, GateCalibration, train_discriminator
from engine.edit.editors.base import ImageEditor
from engine.edit.keyframe_edits import KeyframeEditor, KeyframeShot
from engine.edit.keyframes import (
    KeyframeChoice,
    View,
    all_visible,
    dataset_views,
    farthest_point_keyframes,
    orbit_cameras,
    orbit_views,
    per_group,
    spread_subset,
    view_features,
)
from engine.edit.layers import EditLayer, PoseOffset, expression_layer_of, pose_offset
from engine.edit.optimise import EditOptimiser, EditTarget, OptimConfig
from engine.edit.parts import narrow_to_part, rest_means
from engine.edit.regions import spatial_groups
from engine.edit.views import crop_camera, crop_photo, dilate, render_view
from engine.edit.visibility import VisibilityReport, measure_visibility
from engine.errors import EditError
from engine.prompting.plan import EditKind, EditPlan
from engine.render.projection import sh_basis
from engine.render.splats import dc_to_rgb, rgb_to_dc

log = logging.getLogger(__name__)
ProgressFn = Callable[[float, str], None]
CancelFn = Callable[[], bool]
PreviewFn = Callable[[int, Tensor, Tensor], None]
DEFAULT_KEYFRAMES = 8
REVEAL_JAW = 0.35  # jaw opening (rad) of the extra candidates for a region no frame of the avatar shows


@dataclass(frozen=True)
class EditConfig:
    """How an edit runs (the plan says what to change; this says how hard to work)."""

    size: int = 160  # keyframe side in pixels (cropped around the selection)
    keyframes: int | None = None  # K; None: the plan's keyframes (DEFAULT_KEYFRAMES when the plan says 0)
    all_frames: bool = False  # edit every candidate view the region is visible in instead of K keyframes
    passes: int = 25  # optimisation steps per edited view (steps = passes × views, within the limits below)
    min_steps: int = 60  # fewest optimisation steps
    max_steps: int | None = None  # most optimisation steps (None: the plan's iterations)
    mapped_steps: int = 0  # optimisation steps when the editor's edit is a colour mapping: every selected
    # Gaussian then has its exact target colour already; fitting it to keyframe images only folds the blending
    # with neighbouring parts back into the colours (uneven in views the keyframes did not show)
    orbit_cameras: int = 8  # cameras on the orbit when the avatar has no dataset
    max_timesteps: int = 24  # FLAME frames considered when the avatar has no dataset
    max_candidates: int = 64  # most candidate views (spread over expression, pose and direction when there are more)
    dilate: int = 2  # pixels the selection mask is dilated by before "outside" starts
    visibility_size: int = 48  # side of the small per-candidate renders measuring visibility and colour statistics
    min_visibility: float = 0.05  # candidates showing less of their group than this share of its best view are never edited
    min_pixels: float = 12.0  # candidates showing fewer region pixels (at the candidates' resolution) are never edited
    crop_min_fraction: float = 0.08  # a keyframe crop spans at least this share of its view's shorter side
    weight_by_area: bool = True  # weight each view's loss by its visible mask area (grazing views count less)
    gate_retries: int = 2  # new seeds (generative editors), then other views, tried for an edit the gate rejects
    discriminator: bool = True  # train and use the edit discriminator
    disc: DiscriminatorConfig = field(default_factory=lambda: DiscriminatorConfig())  # its training
    extra_reals: int = 8  # extra candidate views rendered as real images for the discriminator
    optim: OptimConfig = field(default_factory=OptimConfig)  # optimisation hyper-parameters (steps is overridden)
    seed: int = 0  # seeds editors, keyframe order, discriminator
    preview_every: int = 10  # optimisation steps between previews


@dataclass(frozen=True)
class EditResult:
    """What an edit produced.

    For the GUI: `appearance` is the layer that changes Gaussians (None for an expression-only plan) and
    `expression` the plan's expression as an expression-offset layer (None when the plan has none); add
    both to the project (`layers` holds them in that order). `shots` are the chosen keyframes, one per
    slot in slot order (plus any that were dropped): `before`/`after` crops for thumbnails and the gate's
    `score`/`threshold`/`accepted`. `warnings` are what the user should check (the edit still succeeded).
    """

    layers: tuple[EditLayer, ...]  # the appearance layer (if the plan has one), then the expression layer (if any)
    keyframes: KeyframeChoice | None  # the chosen views (None for expression-only plans)
    editor: ImageEditor | None  # the editor as used (calibrated on every candidate view), None for expression plans
    views: tuple[View, ...]  # the edited views (after gating)
    dropped: tuple[str, ...]  # one reason per dropped or replaced keyframe
    log: tuple[str, ...]  # what happened, for the user
    seconds: float  # wall time
    warnings: tuple[str, ...] = ()  # what the user should check (e.g. the gate rejected every keyframe edit)
    gate: GateCalibration | None = None  # how the discriminator's gate was calibrated, when one was used
    discriminator: EditDiscriminator | None = None  # the trained discriminator (judges more views of this edit)
    shots: tuple[KeyframeShot, ...] = ()  # every keyframe tried: crops before/after and the gate's scores

    @property
    def appearance(self) -> EditLayer | None:
        """The appearance layer (Gaussians changed), or None for an expression-only plan."""
        return next((layer for layer in self.layers if layer.kind != "expression"), None)

    @property
    def layer(self) -> EditLayer:
        """The main layer: the appearance edit, or the expression layer of an expression-only plan."""
        return self.layers[0]

    @property
    def expression(self) -> EditLayer | None:
        """The expression layer, when the plan changes the expression."""
        return next((layer for layer in self.layers if layer.kind == "expression"), None)


def expression_layer(avatar: Avatar, plan: EditPlan) -> EditLayer:
    """A persistent expression-offset layer from the plan's expression deltas."""
    weights = ", ".join(f"{name} {value:+.2f}" for name, value in plan.expression.items())
    return expression_layer_of(avatar.head, plan.expression, f"expression: {weights}"[:80],
                               {"plan": plan.model_dump(mode="json"), "expression": dict(plan.expression)})


def selection_weights(avatar: Avatar, selection: Tensor) -> Tensor:
    """[N] float weights in [0, 1] of a bool/float selection [N]."""
    n = avatar.gaussians.count
    if selection.shape != (n,):
        raise ValueError(f"selection must have one value per Gaussian ({n}), got shape {tuple(selection.shape)}")
    return selection.float().clamp(0, 1).cpu()


def _steps(config: EditConfig, plan: EditPlan, views: int, mapped: bool) -> int:
    cap = config.max_steps if config.max_steps is not None else plan.iterations
    if mapped:
        return max(0, min(cap, config.mapped_steps))
    return max(1, min(cap, max(config.min_steps, config.passes * views)))


def _candidates(avatar: Avatar, config: EditConfig, dataset: object | None, offset: PoseOffset | None) -> list[View]:
    if dataset is not None:
        views = dataset_views(avatar, dataset, 512)
    else:
        cams = orbit_cameras(avatar, config.orbit_cameras, 512)
        views = orbit_views(avatar, avatar.params, cams, config.max_timesteps)
    views = spread_subset(avatar, views, config.max_candidates)
    return [replace(v, params=offset.apply(v.params)) for v in views] if offset is not None else views


def _revealing(avatar: Avatar, config: EditConfig, offset: PoseOffset | None) -> list[View]:
    """Candidates showing what closed lips hide: the avatar's first frame with the jaw open, on the orbit."""
    params = avatar.frame_params(0) if offset is None else offset.apply(avatar.frame_params(0))
    jaw = params.jaw_pose.clone()
    jaw[:, 0] = REVEAL_JAW
    return orbit_views(avatar, params.with_values(jaw_pose=jaw), orbit_cameras(avatar, config.orbit_cameras, 512))


def _measure(job: _Job, groups: Tensor, config: EditConfig) -> Tensor:
    """[M] visibility of every candidate of job.views (0 where it shows fewer than min_pixels); sets job.report."""
    job.report = report = measure_visibility(job.avatar, job.views, job.weights, config.visibility_size,
                                             config.optim.render_backend, groups=groups)
    return torch.where(report.pixels >= config.min_pixels, report.visibility, torch.zeros_like(report.visibility))


class _Job:
    """State of one edit run (split so each stage stays short)."""

    def __init__(self, avatar: Avatar, weights: Tensor, plan: EditPlan, editor: ImageEditor, config: EditConfig,
                 progress: ProgressFn, cancel: CancelFn, preview: PreviewFn | None) -> None:
        self.avatar, self.weights, self.plan, self.editor, self.config = avatar, weights, plan, editor, config
        self.progress, self.cancel, self.preview = progress, cancel, preview
        self.selected = weights >= 0.5
        self.picked = torch.nonzero(weights > 0).squeeze(1)  # [P] the Gaussians visibility reports on
        self.messages: list[str] = []
        self.warnings: list[str] = []
        self.report: VisibilityReport | None = None
        self.views: list[View] = []  # candidate views, one per (view, spatial group)

    def note(self, text: str) -> None:
        log.info("edit: %s", text)
        self.messages.append(text)

    def warn(self, text: str) -> None:
        log.warning("edit: %s", text)
        self.messages.append("warning: " + text)
        self.warnings.append(text)

    def framed(self, candidate: int) -> Tensor:
        """[F] indices of the Gaussians a candidate's crop frames: what it shows of its group (all of it when
        it shows fewer than three)."""
        report = self.report
        assert report is not None
        shown = self.picked[report.seen[candidate]]
        if shown.numel() >= 3:
            return shown
        return self.picked[report.groups == self.views[candidate].group]

    def prepare(self, candidate: int) -> EditTarget:
        view = self.views[candidate]
        with torch.no_grad():
            verts = self.avatar.posed_vertices(view.params).float()
            means = self.avatar.gaussians.subset(self.framed(candidate)).deform(verts, self.avatar.head.faces).means
        cam = crop_camera(view.camera, means, self.config.size, min_fraction=self.config.crop_min_fraction)
        cropped = replace(view, camera=cam)
        rgb, mask = render_view(self.avatar, verts, cam, self.weights, self.config.optim.background,
                                self.config.optim.render_backend)
        outside = 1.0 - dilate((mask > 0.02).float(), self.config.dilate)
        return EditTarget(cropped, rgb, mask, outside, rgb.clone(), verts)

    def train_disc(self, targets: list[EditTarget], extra: list[int]) -> EditDiscriminator | None:
        from engine.data.frames import load_image

        reals = [t.original for t in targets]
        masks: list[Tensor | None] = [t.mask for t in targets]
        for c in extra:
            target = self.prepare(c)
            reals.append(target.original)
            masks.append(target.mask)
            view = self.views[c]
            if view.image_path is not None and view.image_path.is_file():
                reals.append(crop_photo(load_image(view.image_path), view.camera, target.view.camera))
                masks.append(None)
        sub = lambda f, m: self.progress(0.15 + 0.15 * f, m)
        return train_discriminator(reals, self.config.disc, self.cancel, sub, masks)


def run_edit(avatar: Avatar, selection: Tensor, plan: EditPlan, editor: ImageEditor,
             config: EditConfig | None = None, dataset: object | None = None,
             progress: ProgressFn | None = None, cancel: CancelFn | None = None,
             preview: PreviewFn | None = None) -> EditResult | None:
    """Edit the selected region of avatar (selection: bool/float [N]) by plan; None when cancelled.

    dataset: an engine.data.vhap_format.AvatarDataset the avatar was trained on, or None (orbit).
    progress(fraction, message), cancel() -> bool, preview(keyframe index, before [H, W, 3], after [H, W, 3]).
    Raises EditError (nothing selected, a region no view shows), PartError (a part the selection lacks) and
    EditorError (the editor cannot do the plan; a model that does not load, before any rendering), all UserErrors
    (and ValueError or RuntimeError as before); a discriminator that rejects edits only warns.
    """
    start = time.perf_counter()
    config = config or EditConfig()
    progress = progress or (lambda f, m: None)
    cancel = cancel or (lambda: False)
    expr = expression_layer(avatar, plan) if plan.expression and EditKind.EXPRESSION in plan.kinds else None
    if plan.is_expression_only:
        assert expr is not None
        return EditResult((expr,), None, None, (), (), ("expression offset layer",), time.perf_counter() - start)
    weights = selection_weights(avatar, selection)
    if not bool((weights >= 0.5).any()):
        raise EditError("nothing is selected: choose components or paint a mask before editing")
    weights = narrow_to_part(avatar, weights, plan.part)
    progress(0.0, f"loading the {editor.name} editor")
    editor.load()  # a missing model fails now, not after the keyframes are rendered
    job = _Job(avatar, weights, plan, editor, config, progress, cancel, preview)
    if plan.part is not None:
        job.note(f"the {plan.part}: {int(job.selected.sum())} of the selected Gaussians")
    progress(0.0, "measuring where the selection is visible")
    rest = rest_means(avatar)
    extent = float((rest.max(0).values - rest.min(0).values).max())
    groups = spatial_groups(rest[job.picked], extent)
    n_groups = int(groups.max()) + 1 if groups.numel() else 1
    offset = pose_offset([expr], avatar.head.n_expr) if expr is not None else None  # candidates wear the new expression
    job.views = per_group(_candidates(avatar, config, dataset, offset), n_groups)
    vis = _measure(job, groups, config)
    if not bool((vis >= config.min_visibility).any()):  # e.g. teeth behind closed lips in every frame
        job.views = per_group(_revealing(avatar, config, offset), n_groups)
        job.note(f"the region shows in none of the avatar's frames: editing it with the mouth open "
                 f"(jaw {REVEAL_JAW} rad)")
        vis = _measure(job, groups, config)
    if cancel():
        return None
    report = job.report
    assert report is not None
    feats = view_features(avatar, job.views)
    shown = [i for i in range(len(job.views)) if float(vis[i]) >= config.min_visibility]
    job.editor = editor.calibrated([report.images[i] for i in shown], [report.masks[i] for i in shown])
    k = config.keyframes if config.keyframes is not None else (plan.keyframes or DEFAULT_KEYFRAMES)
    k = max(k, n_groups)  # at least one keyframe per piece of the region
    choice = (all_visible(vis, feats, config.min_visibility, report.seen, report.weights) if config.all_frames
              else farthest_point_keyframes(feats, vis, k, min_visibility=config.min_visibility, seen=report.seen,
                                            seen_weights=report.weights))
    job.note(f"{len(job.views) // n_groups} candidate views × {n_groups} part(s) of the region, {len(shown)} show it; "
             + choice.describe())
    return _run_stages(job, choice, vis, start, expr)


def _run_stages(job: _Job, choice: KeyframeChoice, vis: Tensor, start: float,
                expr: EditLayer | None) -> EditResult | None:
    config = job.config
    targets: list[EditTarget] = []
    for n, idx in enumerate(choice.indices):
        if job.cancel():
            return None
        targets.append(job.prepare(idx))
        job.progress(0.15 * (n + 1) / len(choice.indices), f"rendering keyframe {n + 1}/{len(choice.indices)}")
    disc = None
    if config.discriminator:
        chosen = set(choice.indices)
        order = torch.randperm(len(job.views), generator=torch.Generator().manual_seed(config.seed)).tolist()
        rest = [i for i in order if i not in chosen and float(vis[i]) > 0.05][: config.extra_reals]
        disc = job.train_disc(targets, rest)
        if disc is None:
            return None
        if disc.calibration is not None:
            job.note(f"discriminator gate: {disc.calibration.as_dict()}")
    spare = [i for i in torch.argsort(vis, descending=True).tolist()
             if float(vis[i]) >= config.min_visibility and i not in set(choice.indices)]
    kf = KeyframeEditor(job.editor, job.plan, disc, config.seed, config.gate_retries, job.note)
    kept = kf.edit_all(targets, list(choice.indices), spare, job.prepare, job.views, job.cancel,
                       lambda f, m: job.progress(0.3 + 0.1 * f, m), job.preview)
    if kept is None:
        return None
    for text in kf.warnings:
        job.warn(text)
    if config.weight_by_area:
        areas = torch.tensor([float(t.mask.sum()) for t in kept])
        for t, a in zip(kept, (areas / areas.mean().clamp_min(1e-9)).tolist()):
            t.weight = a
    return _optimise(job, kept, kf, disc, choice, start, expr)


def _prior(job: _Job) -> Tensor | None:
    """[M, K, 3] SH of the selected Gaussians with their colours through the editor's colour mapping (every
    view direction's colour when they have view-dependent SH: mapped, then refitted), or None when the
    editor's edit is not a colour mapping."""
    mapping = job.editor.colour_map(job.plan)
    if mapping is None:
        return None
    return mapped_sh(job.avatar.gaussians.sh[job.selected].detach(), mapping)


def mapped_sh(sh: Tensor, mapping: Callable[[Tensor], Tensor], directions: int = 64) -> Tensor:
    """[M, K, 3] SH whose colour in every direction is mapping(colour of sh [M, K, 3] in that direction).

    Without view-dependent terms (K = 1 or the rest bands all zero) only the DC term changes; otherwise the
    colours at `directions` Fibonacci-sphere directions are mapped and the SH refitted by least squares."""
    m, k, _ = sh.shape
    assert sh.ndim == 3 and sh.shape[2] == 3 and k in (1, 4, 9, 16), f"sh must be [M, K in 1/4/9/16, 3], got {tuple(sh.shape)}"
    out = sh.clone()
    if k == 1 or not bool(sh[:, 1:].any()):
        out[:, 0] = rgb_to_dc(mapping(dc_to_rgb(sh[:, 0]).clamp(0, 1)).clamp(0, 1))
        return out
    i = torch.arange(directions, dtype=torch.float32) + 0.5
    z = 1 - 2 * i / directions
    phi = i * math.pi * (3 - math.sqrt(5))
    r = (1 - z * z).sqrt()
    dirs = torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], 1)  # [D, 3]
    basis = sh_basis(dirs, {4: 1, 9: 2, 16: 3}[k]).to(sh)  # [D, K]
    colours = torch.einsum("dk,mkc->mdc", basis, sh) + 0.5  # [M, D, 3]
    goal = mapping(colours.reshape(-1, 3).clamp(0, 1)).clamp(0, 1).reshape(m, directions, 3) - 0.5
    return torch.einsum("kd,mdc->mkc", torch.linalg.pinv(basis), goal)


def _optimise(job: _Job, kept: list[EditTarget], kf: KeyframeEditor, disc: EditDiscriminator | None,
              choice: KeyframeChoice, start: float, expr: EditLayer | None) -> EditResult | None:
    config, plan = job.config, job.plan
    geometry = any(k in (EditKind.SHAPE, EditKind.ACCESSORY) for k in plan.kinds)
    prior = _prior(job)
    if geometry and prior is not None:  # a colour-mapping editor did the colour part; the shape part is left
        kinds = ", ".join(k.value for k in plan.kinds if k in (EditKind.SHAPE, EditKind.ACCESSORY))
        job.warn(f"the {job.editor.name} editor changes colour and material only: the {kinds} part of the plan "
                 "was not done (a diffusion editor can do it)")
        geometry = False
    steps = _steps(config, plan, len(kept), prior is not None)
    oc = replace(config.optim, steps=steps, geometry=geometry or config.optim.geometry,
                 view_dependent=EditKind.TEXTURE in plan.kinds or config.optim.view_dependent, seed=config.seed)

    def refresh(k: int, current: Tensor) -> Tensor | None:
        return kf.refresh(kept[k], current)

    # a deterministic editor would only reproduce (or, re-editing its own output, distort) its targets
    opt = EditOptimiser(job.avatar, job.selected, kept, oc, disc, None if job.editor.deterministic else refresh,
                        prior_sh=prior)
    if steps == 0:
        job.note(f"{int(job.selected.sum())} selected Gaussians took their own colours through the editor's colour "
                 "mapping (the keyframe edits are that mapping; no optimisation needed)")
    else:
        job.note(f"optimising {int(job.selected.sum())} selected Gaussians over {len(kept)} views for {steps} steps"
                 + (" (geometry on)" if geometry else "")
                 + (" from their own colours through the editor's colour mapping" if prior is not None else ""))
    while not opt.finished:
        if job.cancel():
            return None
        info = opt.step()
        if job.preview is not None and (info.step % config.preview_every == 0 or opt.finished):
            job.preview(info.target, kept[info.target].original, info.render)
        job.progress(0.4 + 0.6 * info.step / steps, f"step {info.step}/{steps}, loss {info.loss:.4f}")
    if prior is None:
        filled = opt.fill_untouched(rest_means(job.avatar)[job.selected])
        if filled:
            job.note(f"{filled} selected Gaussians no keyframe reached took their neighbours' change")
    name = f"edit: {plan.prompt or plan.refined_prompt}"[:80]
    info = {"plan": plan.model_dump(mode="json"), "editor": job.editor.name, "keyframes": len(kept),
            "coverage": choice.coverage, "region_coverage": choice.region_coverage, "steps": steps,
            "dropped": list(kf.dropped), "added": opt.n_added, "warnings": list(job.warnings),
            "colour_mapped": prior is not None, "shots": [shot.as_dict() for shot in kf.shots]}
    if disc is not None and disc.calibration is not None:
        info["gate"] = disc.calibration.as_dict()
    reference = getattr(job.editor, "reference", None)
    if reference is not None and hasattr(reference, "as_dict"):
        info["editor_reference"] = reference.as_dict()
    layer = opt.layer(name, info)
    job.note(f"done: {layer.indices.numel()} Gaussians changed, {opt.n_added} added")
    job.progress(1.0, "done")
    layers = (layer,) if expr is None else (layer, expr)
    return EditResult(layers, choice, job.editor, tuple(t.view for t in kept), tuple(kf.dropped),
                      tuple(job.messages), time.perf_counter() - start, tuple(job.warnings),
                      disc.calibration if disc is not None else None, disc, tuple(kf.shots))
