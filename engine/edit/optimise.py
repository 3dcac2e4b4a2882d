"""The edit optimisation: only the selected Gaussians change, toward edited keyframes inside the mask
and the original renders outside it, one step at a time (a worker drives `step()`).

Loss per step (one keyframe): L1 to the edited image, weighted by the rendered selection mask (and
the view by its visible mask area, so a grazing view with a sliver of mask does not pull as hard as
a frontal one);
L1 to the original render where the dilated mask is 0; an anchor keeping parameters near their
start; a small adversarial term from the edit discriminator. Colour (SH) is optimised first;
opacity, position, scale and rotation join when the plan's edit kind needs geometry, and then new
Gaussians may be cloned inside the selection (bound to their parents' triangles). Every
`refresh_every` steps one keyframe is re-edited from the current render (iterative dataset update,
as in Instruct-NeRF2NeRF), so the targets converge instead of averaging inconsistent edits.

Gaussians the keyframes miss: with `prior_sh` (the editor's colour mapping applied to every selected
Gaussian's own colour) the selected Gaussians start from and are anchored to their own targets, so one
no keyframe shows still changes colour; without it, `fill_untouched` gives the ones the keyframes did not
reach the colour change of their nearest reached neighbour of the same component.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.avatar.gaussians import BoundGaussians
from engine.edit.discriminator import EditDiscriminator
from engine.edit.keyframes import View
from engine.edit.layers import EditLayer
from engine.edit.views import on_screen
from engine.render.rasterize import render, resolve_device
from engine.render.splats import Splats

GEOMETRY_FIELDS: tuple[str, ...] = ("xyz", "log_scale", "rotation", "opacity_logit")


@dataclass(frozen=True)
class OptimConfig:
    """Hyper-parameters of the edit optimisation."""

    steps: int = 200  # optimisation steps (one keyframe render each)
    lr_dc: float = 0.15  # learning rate of the SH DC (base colour) coefficients
    lr_rest: float = 0.005  # learning rate of the higher SH coefficients (texture/material edits only)
    lr_xyz: float = 0.003  # learning rate of local positions (triangle units)
    lr_scale: float = 0.01  # learning rate of log scales
    lr_rotation: float = 0.003  # learning rate of rotation quaternions
    lr_opacity: float = 0.03  # learning rate of opacity logits
    lr_final: float = 0.1  # every learning rate decays exponentially to this fraction of itself by the last step
    geometry: bool = False  # also optimise opacity, position, scale, rotation (shape/accessory edits)
    view_dependent: bool = False  # also optimise SH rest coefficients (material edits)
    colour_first: float = 0.4  # share of the steps that optimise colour alone before geometry joins
    weight_inside: float = 1.0  # weight of the L1 to the edited image inside the mask
    weight_outside: float = 1.0  # weight of the L1 to the original render outside the dilated mask
    weight_anchor: float = 0.05  # weight of the anchor (squared distance to the start values)
    weight_adversarial: float = 0.005  # weight of the discriminator's generator loss (0: off)
    adversarial_every: int = 4  # apply the adversarial term every this many steps, scaled by it (same mean pull)
    refresh_every: int = 10  # re-edit one keyframe from the current render every this many steps (0: never)
    densify_every: int = 50  # clone high-gradient selected Gaussians every this many steps (geometry only; 0: never)
    densify_quantile: float = 0.95  # Gaussians above this quantile of accumulated screen gradient are cloned
    max_added: int = 4000  # most new Gaussians an edit may add
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)  # render background (datasets are on white)
    render_backend: str = "auto"  # rasterizer backend
    cache_views: int = 256  # keyframes whose on-screen unselected Gaussians stay cached
    seed: int = 0  # keyframe order and densification jitter
    device: str = "cpu"  # torch device the optimisation runs on ("cuda": gsplat; refused without CUDA)


@dataclass
class EditTarget:
    """One keyframe being fitted."""

    view: View  # time and camera
    original: Tensor  # [H, W, 3] render of the unedited avatar
    mask: Tensor  # [H, W] rendered selection mask in [0, 1]
    outside: Tensor  # [H, W] 1 where the original must be kept (the dilated mask's complement)
    edited: Tensor  # [H, W, 3] current target: the edit composited through the mask
    verts: Tensor  # [V, 3] posed mesh vertices of the view's frame
    weight: float = 1.0  # weight of this view's inside term (its visible mask area over the mean of all views)


@dataclass(frozen=True)
class StepInfo:
    """What one step did."""

    step: int  # steps taken so far
    target: int  # keyframe index fitted in this step
    loss: float  # total loss
    terms: dict[str, float]  # loss terms by name
    render: Tensor  # [H, W, 3] the render of this step (detached)


def masked_l1(a: Tensor, b: Tensor, weight: Tensor) -> Tensor:
    """Mean |a − b| over pixels weighted by weight [H, W] (a, b [H, W, 3])."""
    return ((a - b).abs() * weight[..., None]).sum() / (3.0 * weight.sum()).clamp_min(1e-6)


class EditOptimiser:
    """Optimises the selected Gaussians of an avatar toward edited keyframes; drive it with `step()`."""

    def __init__(self, avatar: Avatar, selected: Tensor, targets: list[EditTarget], config: OptimConfig,
                 discriminator: EditDiscriminator | None = None,
                 refresh: Callable[[int, Tensor], Tensor | None] | None = None, prior_sh: Tensor | None = None) -> None:
        """prior_sh: [M, K, 3] SH the M selected Gaussians start from and are anchored to (their own colours
        through the editor's colour mapping, so a Gaussian no keyframe shows still gets its target); None: their own."""
        n = avatar.gaussians.count
        assert selected.shape == (n,) and selected.dtype == torch.bool, f"selected must be bool [N={n}]"
        if not targets:
            raise ValueError("the edit optimisation needs at least one keyframe")
        self.device = resolve_device(config.device)
        if self.device.type != "cpu":
            avatar = avatar.to(self.device)
            for t in targets:
                t.original, t.mask, t.outside, t.edited, t.verts = (
                    x.to(self.device) for x in (t.original, t.mask, t.outside, t.edited, t.verts))
        self.avatar, self.config, self.targets = avatar, config, targets
        self.discriminator, self.refresh = discriminator, refresh
        self.indices = torch.nonzero(selected.cpu()).squeeze(1)  # [M] base indices being optimised
        self.fixed = avatar.gaussians.subset(~selected)  # never changes
        self._fixed_splats: dict[int, Splats] = {}
        self._faces: tuple[Tensor, Tensor, Tensor] | None = None  # (binding it was made for, faces, local binding)
        start = avatar.gaussians.subset(self.indices)
        self.start = start.detach_clone()  # [M] starting values (anchor and deltas)
        self.labels, self.binding = start.labels, start.binding
        self.params = {k: torch.nn.Parameter(getattr(start, k).detach().clone()) for k in ("sh", *GEOMETRY_FIELDS)}
        if prior_sh is not None:
            assert prior_sh.shape == start.sh.shape, f"prior_sh must be {tuple(start.sh.shape)}, got {tuple(prior_sh.shape)}"
            self.params["sh"] = torch.nn.Parameter(prior_sh.detach().clone().to(start.sh))
        self.anchor = {k: v.detach().clone() for k, v in self.params.items()}
        self.reach = torch.zeros(len(self.indices))  # [M] accumulated |colour gradient| of each selected Gaussian
        self.grad_accum = torch.zeros(len(self.indices))
        self.n_added = 0
        self.gen = torch.Generator().manual_seed(config.seed)
        self.order: list[int] = []
        self.steps_done = 0
        self._make_optimizer()

    # ---- parameters ---------------------------------------------------------------------------
    def _geometry_on(self) -> bool:
        return self.config.geometry and self.steps_done >= int(self.config.colour_first * self.config.steps)

    def _make_optimizer(self) -> None:
        c = self.config
        groups = [{"params": [self.params["sh"]], "lr": c.lr_dc}]
        if c.geometry:
            groups += [{"params": [self.params["xyz"]], "lr": c.lr_xyz},
                       {"params": [self.params["log_scale"]], "lr": c.lr_scale},
                       {"params": [self.params["rotation"]], "lr": c.lr_rotation},
                       {"params": [self.params["opacity_logit"]], "lr": c.lr_opacity}]
        for group in groups:
            group["base_lr"] = group["lr"]
        self.optimizer = torch.optim.Adam(groups, eps=1e-12)

    def current(self) -> BoundGaussians:
        """The optimised Gaussians (selected base ones first, then the added ones), attached to autograd."""
        return BoundGaussians(binding=self.binding, labels=self.labels, **self.params)

    # ---- one step -----------------------------------------------------------------------------
    def _fixed_for(self, i: int) -> Splats:
        """The unselected Gaussians of keyframe i that may touch its image (engine.edit.views.on_screen).

        Gaussians off screen contribute nothing, so leaving them out gives the same image while the
        per-step render and its backward pass only touch what is on screen (a crop around the selection
        shows a small part of the head)."""
        if i not in self._fixed_splats:
            if len(self._fixed_splats) >= self.config.cache_views:
                self._fixed_splats.pop(next(iter(self._fixed_splats)))
            camera = self.targets[i].view.camera
            with torch.no_grad():
                splats = self.fixed.deform(self.targets[i].verts, self.avatar.head.faces)
                self._fixed_splats[i] = splats.subset(on_screen(splats, camera))
        return self._fixed_splats[i]

    def _moving_faces(self) -> tuple[Tensor, Tensor]:
        """(faces [U, 3] the optimised Gaussians are bound to, their binding [M'] into those faces): their
        triangle frames are all a step needs, not the whole mesh's."""
        if self._faces is None or self._faces[0] is not self.binding:
            used, local = torch.unique(self.binding, return_inverse=True)
            self._faces = (self.binding, self.avatar.head.faces[used], local)
        return self._faces[1], self._faces[2]

    def render_target(self, i: int) -> tuple[Tensor, Tensor]:
        """(rgb [H, W, 3], means2d of the optimised Gaussians [M', 2]) of keyframe i with the current parameters."""
        t = self.targets[i]
        faces, local = self._moving_faces()
        moving = BoundGaussians(binding=local, labels=self.labels, **self.params).deform(t.verts, faces)
        fixed = self._fixed_for(i)
        result = render(Splats.concat([fixed, moving]), t.view.camera, self.config.background,
                        backend=self.config.render_backend)
        return result.rgb, result.means2d

    def _next_target(self) -> int:
        if not self.order:
            self.order = torch.randperm(len(self.targets), generator=self.gen).tolist()
        return self.order.pop()

    def _loss(self, i: int, rgb: Tensor) -> tuple[Tensor, dict[str, float]]:
        c, t = self.config, self.targets[i]
        inside = masked_l1(rgb, t.edited, t.mask) * c.weight_inside * t.weight
        outside = masked_l1(rgb, t.original, t.outside) * c.weight_outside
        anchor = sum(((self.params[k] - self.anchor[k]) ** 2).mean() for k in self.params) * c.weight_anchor
        total = inside + outside + anchor
        terms = {"inside": inside.item(), "outside": outside.item(), "anchor": float(anchor.detach())}
        every = max(1, c.adversarial_every)
        if self.discriminator is not None and c.weight_adversarial > 0 and self.steps_done % every == 0:
            on = next(self.discriminator.net.parameters()).device
            adv = self.discriminator.adversarial_loss(rgb.to(on), t.mask.to(on), t.original.to(on)).to(rgb.device) * (
                c.weight_adversarial * every)
            total = total + adv
            terms["adversarial"] = adv.item()
        return total, terms

    def step(self) -> StepInfo:
        """One optimisation step on one keyframe (plus a keyframe refresh / densification when due)."""
        i = self._next_target()
        geometry = self._geometry_on()
        for k in GEOMETRY_FIELDS:  # while only colours change, nothing geometric needs a gradient (much cheaper)
            self.params[k].requires_grad_(geometry)
        rgb, means2d = self.render_target(i)
        loss, terms = self._loss(i, rgb)
        self.optimizer.zero_grad()
        loss.backward()
        if not geometry:
            for k in GEOMETRY_FIELDS:
                self.params[k].grad = None
        if not self.config.view_dependent and self.params["sh"].grad is not None:
            self.params["sh"].grad[:, 1:] = 0
        if self.params["sh"].grad is not None:
            m = self.reach.shape[0]
            self.reach += self.params["sh"].grad[:m, 0].detach().abs().sum(1).cpu()
        self._accumulate(means2d)
        decay = self.config.lr_final ** (self.steps_done / max(1, self.config.steps - 1))
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * decay
        self.optimizer.step()
        self.steps_done += 1
        c = self.config
        if c.refresh_every and self.refresh is not None and self.steps_done % c.refresh_every == 0:
            self._refresh_one()
        if self._geometry_on() and c.densify_every and self.steps_done % c.densify_every == 0 \
                and self.steps_done < 0.8 * c.steps:
            self.densify()
        return StepInfo(self.steps_done, i, loss.item(), terms, rgb.detach().cpu())

    @property
    def finished(self) -> bool:
        return self.steps_done >= self.config.steps

    # ---- iterative dataset update ------------------------------------------------------------
    def _refresh_one(self) -> None:
        k = (self.steps_done // self.config.refresh_every - 1) % len(self.targets)
        with torch.no_grad():
            rgb, _ = self.render_target(k)
        new = self.refresh(k, rgb.detach().cpu()) if self.refresh is not None else None
        if new is not None:
            self.targets[k].edited = new.to(self.device)

    # ---- densification ----------------------------------------------------------------------
    def _accumulate(self, means2d: Tensor) -> None:
        if means2d.grad is None or not self.config.geometry:
            return
        g = means2d.grad[-self.params["sh"].shape[0]:].norm(dim=1)
        if g.shape[0] == self.grad_accum.shape[0]:
            self.grad_accum += g.detach().cpu()

    def densify(self) -> int:
        """Clone the selected Gaussians with the largest screen gradient (children share the parent's
        triangle, a little jitter, 0.8× scale); returns how many were added."""
        room = self.config.max_added - self.n_added
        if room <= 0 or float(self.grad_accum.max()) <= 0:
            return 0
        cut = torch.quantile(self.grad_accum, self.config.densify_quantile)
        pick = torch.nonzero(self.grad_accum > cut).squeeze(1)[:room]
        if pick.numel() == 0:
            return 0
        with torch.no_grad():
            new = {k: v.detach()[pick].clone() for k, v in self.params.items()}
            new["xyz"] += 0.1 * torch.randn(new["xyz"].shape, generator=self.gen).to(new["xyz"])
            new["log_scale"] += torch.log(torch.tensor(0.8))
            merged = {k: torch.cat([self.params[k].detach(), new[k]]) for k in self.params}
            self.anchor = {k: torch.cat([self.anchor[k], new[k]]) for k in self.anchor}
        self.params = {k: torch.nn.Parameter(v) for k, v in merged.items()}
        self.binding = torch.cat([self.binding, self.binding[pick]])
        self.labels = torch.cat([self.labels, self.labels[pick]])
        self.n_added += int(pick.numel())
        self.grad_accum = torch.zeros(self.params["sh"].shape[0])
        self._make_optimizer()
        return int(pick.numel())

    # ---- Gaussians no keyframe reached -------------------------------------------------------------
    @property
    def touched(self) -> Tensor:
        """[M] bool: selected Gaussians the keyframes really pulled (accumulated colour gradient at least 5%
        of the median of those that got any: a sliver at the edge of one view does not count)."""
        some = self.reach > 0
        if not bool(some.any()):
            return some
        return self.reach >= 0.05 * self.reach[some].median()

    def fill_untouched(self, points: Tensor) -> int:
        """Give every selected Gaussian the keyframes did not reach the colour change of its nearest reached
        neighbour of the same component (points: [M, 3] rest positions of the selected Gaussians); returns how many."""
        from engine.avatar.fill import fill_unseen

        m = self.indices.shape[0]
        assert points.shape == (m, 3), f"points must be [M={m}, 3], got {tuple(points.shape)}"
        touched = self.touched
        todo = ~touched
        if not bool(touched.any()) or not bool(todo.any()):
            return 0
        with torch.no_grad():
            sh = self.params["sh"].detach()
            delta = (sh[:m] - self.start.sh).reshape(m, -1)
            filled = fill_unseen(delta, touched, points, labels=self.labels[:m])
            sh[:m] = self.start.sh + filled.reshape(self.start.sh.shape)
        return int(todo.sum())

    # ---- result -------------------------------------------------------------------------------
    def layer(self, name: str, info: dict | None = None) -> EditLayer:
        """The edit as a layer (on the CPU): deltas on the selected base Gaussians that changed, plus added ones."""
        m = self.indices.shape[0]
        deltas = {k: (self.params[k].detach()[:m] - getattr(self.start, k)).cpu() for k in ("sh", *GEOMETRY_FIELDS)}
        changed = torch.zeros(m, dtype=torch.bool)
        for d in deltas.values():
            changed |= (d != 0).reshape(m, -1).any(dim=1)
        deltas = {k: v[changed] for k, v in deltas.items() if bool((v != 0).any())}
        added = None
        if self.n_added:
            rows = slice(m, None)
            added = BoundGaussians(binding=self.binding[rows].clone(), labels=self.labels[rows].clone(),
                                   **{k: v.detach()[rows].clone() for k, v in self.params.items()}).to("cpu")
        return EditLayer(name=name, kind="edit", indices=self.indices[changed], deltas=deltas, added=added,
                         info=info or {})
