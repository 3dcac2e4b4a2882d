"""The modeling stage: optimise Gaussians bound to a FLAME head against dataset frames.

`Trainer` exposes one step at a time (so a worker can drive, pause and cancel it), evaluation on
held-out frames, and a state dict for checkpoints. It optimises on TrainConfig.device: on "cuda"
the head, the FLAME parameters, the Gaussians, their optimiser and every frame's pixels live on the
GPU and render through gsplat; what it hands out (gaussians, avatar, previews) is on the CPU.

A step descends the mean loss of config.frames_per_step frames. Under torchrun each process holds a
Trainer with its Ranks: it renders its share of the step's frames and the gradients and densification
statistics are summed over the processes (engine.train.distributed), so every rank's parameters stay
identical and equal to one process rendering all the frames.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from engine.avatar.avatar import Avatar
from engine.avatar.binding import local_to_world, triangle_frames
from engine.avatar.gaussians import BoundGaussians
from engine.data.frames import FrameLoader, LoadedFrame, fit_size, one_hot_labels
from engine.data.vhap_format import AvatarDataset, FrameRecord
from engine.head.model import HeadModel
from engine.head.params import FlameParams
from engine.io.images import psnr
from engine.render.rasterize import render, resolve_device
from engine.render.splats import Splats, rgb_to_dc
from engine.train import losses
from engine.train.colour_init import colours_from_views
from engine.train.config import TrainConfig
from engine.train.densify import DensifyState, accumulate, densify_and_prune, reset_opacity
from engine.train.distributed import SINGLE, Ranks, RankStep, all_reduce_step, check_in_sync
from engine.train.init import initial_gaussians

PARAM_NAMES: tuple[str, ...] = ("xyz", "rotation", "log_scale", "opacity_logit", "sh_dc", "sh_rest")


@dataclass(frozen=True)
class StepStats:
    """What one optimisation step did (over all its frames, on whichever rank)."""

    iteration: int  # iterations done after this step
    loss: float  # total loss: the mean over the step's frames, plus the regularisers
    l1: float  # L1 term (mean over the frames)
    dssim: float  # 1 − SSIM term (mean over the frames)
    psnr: float  # mean PSNR of this step's training views
    gaussians: int  # Gaussian count after the step
    densified: dict[str, int] | None  # counts when densification ran this step
    frames: int = 1  # frames the step's loss (and the figures above: their mean) is over
    rank: RankStep | None = None  # what this process did of the step (None alone)


class Trainer:
    """Optimises an avatar's Gaussians (and optionally its per-frame FLAME parameters)."""

    def __init__(self, head: HeadModel, dataset: AvatarDataset, config: TrainConfig,
                 gaussians: BoundGaussians | None = None, ranks: Ranks = SINGLE) -> None:
        assert config.frames_per_step >= 0, f"frames_per_step must be 0 (one per process) or more, got {config.frames_per_step}"
        if not config.frames_per_step:
            config = replace(config, frames_per_step=ranks.world)
        self.ranks = ranks
        self.device = resolve_device(config.device)
        self.cpu_head = head  # the head the trained avatar is handed out with
        self.head = head
        self.dataset = dataset
        self.config = config
        self.iteration = 0
        self.generator = torch.Generator().manual_seed(config.seed)
        self.loader = FrameLoader(capacity=512)
        self.train_frames: tuple[FrameRecord, ...] = dataset.frames("train")
        self.timesteps = dataset.timesteps(None)
        self.row = {t: i for i, t in enumerate(self.timesteps)}
        self.flame = head.fit_params(dataset.flame_params(None), str(self.train_frames[0].flame_param_path))
        self._train_rows = torch.tensor(sorted({self.row[f.timestep] for f in self.train_frames}))
        self.extent = _camera_extent(self.train_frames,
                                     self.flame.rotation[[self.row[f.timestep] for f in self.train_frames]])
        g = gaussians if gaussians is not None else self._initial_gaussians()
        if self.device.type != "cpu":  # heads are cached and shared: the trainer moves its own copy
            self.head = copy.deepcopy(head).to(self.device)
            self.flame = self.flame.to(self.device)
            self._train_rows = self._train_rows.to(self.device)
        g = g.to(self.device)
        self.params = {
            "xyz": g.xyz, "rotation": g.rotation, "log_scale": g.log_scale, "opacity_logit": g.opacity_logit,
            "sh_dc": g.sh[:, :1], "sh_rest": _pad_rest(g.sh[:, 1:], config.sh_degree),
        }
        self.params = {k: torch.nn.Parameter(v.detach().clone().contiguous()) for k, v in self.params.items()}
        self.extras = {"binding": g.binding.clone(), "labels": g.labels.clone()}
        self.optimizer = torch.optim.Adam(self._groups(), lr=0.0, eps=1e-15)
        self.flame_params: dict[str, torch.nn.Parameter] = {}
        if config.finetune_flame:
            self._add_flame_groups()
        self.densify_state = DensifyState.empty(self.count, self.device)
        self.ranks.broadcast_(self._shared_tensors())  # rank 0's start on every rank, whatever their hardware
        self.history: list[dict[str, float]] = []  # one row per step: iteration, loss, psnr
        self.evaluations: list[dict[str, float]] = []  # one row per evaluation
        self._vert_cache: dict[int, Tensor] = {}

    def _shared_tensors(self) -> list[Tensor]:
        """Every tensor that must be identical on all ranks (parameters, bindings, labels, FLAME parameters)."""
        return [*self.params.values(), *self.extras.values(), *self.flame_params.values()]

    @property
    def count(self) -> int:
        return int(self.params["xyz"].shape[0])

    def _initial_gaussians(self) -> BoundGaussians:
        """Gaussians on every triangle at the first training timestep, coloured from its views."""
        first = self.train_frames[0].timestep
        verts = self._verts(self.row[first])
        g = initial_gaussians(self.head, verts, self.config.init_per_triangle, self.generator)
        rot, centroid, tri_scale = triangle_frames(verts, self.head.faces)
        means, _, _ = local_to_world(g.binding, g.xyz, g.rotation, torch.exp(g.log_scale), rot, centroid, tri_scale)
        views = [self.loader.load(f, self._size(f)) for f in self.train_frames if f.timestep == first]
        colour = colours_from_views(means, rot[g.binding][:, :, 1], views)
        sh = g.sh.clone()
        sh[:, 0] = rgb_to_dc(colour)
        return g.replace(sh=sh)

    def _groups(self) -> list[dict]:
        c = self.config
        lrs = {"xyz": c.lr_position, "rotation": c.lr_rotation, "log_scale": c.lr_scaling,
               "opacity_logit": c.lr_opacity, "sh_dc": c.lr_feature, "sh_rest": c.lr_feature / 20}
        return [{"params": [self.params[k]], "lr": lrs[k], "name": k} for k in PARAM_NAMES]

    def _add_flame_groups(self) -> None:
        c = self.config
        for key, lr in (("expr", c.lr_flame_expr), ("rotation", c.lr_flame_pose), ("neck_pose", c.lr_flame_pose),
                        ("jaw_pose", c.lr_flame_pose), ("eyes_pose", c.lr_flame_pose), ("translation", c.lr_flame_trans)):
            p = torch.nn.Parameter(getattr(self.flame, key).detach().clone())
            self.flame_params[key] = p
            self.optimizer.add_param_group({"params": [p], "lr": lr, "name": f"flame_{key}"})

    def gaussians(self) -> BoundGaussians:
        """The current Gaussians (detached copies, on the CPU)."""
        sh = torch.cat([self.params["sh_dc"], self.params["sh_rest"]], dim=1).detach()
        return BoundGaussians(self.extras["binding"].clone(), self.params["xyz"].detach().clone(),
                              self.params["rotation"].detach().clone(), self.params["log_scale"].detach().clone(),
                              self.params["opacity_logit"].detach().clone(), sh.clone(),
                              self.extras["labels"].clone()).to("cpu")

    def current_flame(self) -> FlameParams:
        """The (possibly refined) per-timestep FLAME parameters, rows in `self.timesteps` order (on the CPU)."""
        if not self.flame_params:
            return self.flame.to("cpu")
        return self.flame.with_values(**{k: v.detach().clone() for k, v in self.flame_params.items()}).to("cpu")

    def avatar(self, name: str = "trained avatar") -> Avatar:
        return Avatar(self.cpu_head, self.gaussians(), self.current_flame(), name)

    def _frame_params(self, timestep: int) -> FlameParams:
        row = self.row[timestep]
        p = self.flame.frame(row)
        if self.flame_params:
            p = p.with_values(**{k: v[row : row + 1] for k, v in self.flame_params.items()})
        return p

    def _verts(self, timestep_row: int) -> Tensor:
        return self.head(self.flame.frame(timestep_row))[0].detach()

    def verts_for(self, timestep: int) -> Tensor:
        """[V, 3] posed mesh at a timestep (cached while FLAME parameters are fixed)."""
        if self.flame_params:
            return self.head(self._frame_params(timestep))[0]
        if timestep not in self._vert_cache:
            with torch.no_grad():
                self._vert_cache[timestep] = self.head(self._frame_params(timestep))[0]
        return self._vert_cache[timestep]

    def render_frame(self, frame: LoadedFrame, active_sh: int | None = None, features: Tensor | None = None) -> tuple:
        """Render the current Gaussians for a loaded frame (with per-Gaussian features [N, C] composited
        like colour) -> (RenderResult, world scales [N, 3], tri k [N], R [N,3,3])."""
        verts = self.verts_for(frame.record.timestep)
        rot, centroid, tri_scale = triangle_frames(verts, self.head.faces)
        binding = self.extras["binding"]
        scales_local = torch.exp(self.params["log_scale"])
        means, quats, scales = local_to_world(binding, self.params["xyz"], self.params["rotation"], scales_local,
                                              rot, centroid, tri_scale)
        k = (active_sh if active_sh is not None else self.config.sh_degree) + 1
        sh = torch.cat([self.params["sh_dc"], self.params["sh_rest"]], dim=1)[:, : k * k]
        splats = Splats(means, quats, scales, torch.sigmoid(self.params["opacity_logit"]), sh)
        result = render(splats, frame.camera, (1.0, 1.0, 1.0), features, backend=self.config.backend)
        return result, scales, tri_scale[binding], rot[binding]

    def _size(self, record: FrameRecord) -> tuple[int, int]:
        return fit_size(record.camera.width, record.camera.height, self.config.resolution)

    def _load(self, record: FrameRecord) -> LoadedFrame:
        """A frame at the training size, its pixels on the training device."""
        frame = self.loader.load(record, self._size(record))
        if self.device.type == "cpu":
            return frame
        move = lambda t: None if t is None else t.to(self.device)  # noqa: E731
        return replace(frame, image=move(frame.image), mask=move(frame.mask), labels=move(frame.labels))

    def _lr_position(self) -> float:
        c = self.config
        t = min(1.0, self.iteration / max(1, c.iters))
        return math.exp((1 - t) * math.log(c.lr_position) + t * math.log(c.lr_position_final))

    def step(self) -> StepStats:
        """One optimisation step on config.frames_per_step random training frames (this rank's share of them)."""
        for group in self.optimizer.param_groups:
            if group["name"] == "xyz":
                group["lr"] = self._lr_position()
        picks = torch.randint(len(self.train_frames), (self.config.frames_per_step,), generator=self.generator).tolist()
        self.optimizer.zero_grad(set_to_none=True)
        start = time.perf_counter()
        mine = self.ranks.share(picks)
        own, seen = self._backward(mine, len(picks))
        computed = time.perf_counter()
        grad_sum, count, sums = all_reduce_step(self.optimizer, [seen.grad_sum, seen.count, own], self.ranks)
        synced = time.perf_counter()
        if len(picks) > 1:
            for group in self.optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad.div_(len(picks))
        self.densify_state.grad_sum += grad_sum
        self.densify_state.count += count
        due = self._densify_due(self.iteration + 1)
        geometry = self._densify_geometry(self.train_frames[picks[0]].timestep) if due else None
        self.optimizer.step()
        self.iteration += 1
        densified = self._maybe_densify(geometry)
        loss, l1, dssim, step_psnr = (float(v) / len(picks) for v in sums)
        rank = None
        if self.ranks.distributed:
            local = float(own[0]) / len(mine) if mine else float("nan")
            rank = RankStep(self.ranks.rank, len(mine), local, computed - start, synced - computed)
        stats = StepStats(self.iteration, loss, l1, dssim, step_psnr, self.count, densified, len(picks), rank)
        self.history.append({"iteration": self.iteration, "loss": stats.loss, "psnr": stats.psnr})
        return stats

    def _backward(self, indices: list[int], frames: int) -> tuple[Tensor, DensifyState]:
        """Render the frames `indices` (of the step's `frames`), backpropagate each one's loss (the
        regularisers once, weighted so that the ranks' sum counts them `frames` times) and gather their
        view-space gradients. Returns (sums [4] of loss, L1, 1 − SSIM and PSNR over these frames, the
        statistics' increments). Gradients are left summed over the frames, not averaged."""
        c = self.config
        active_sh = min(c.sh_degree, self.iteration // max(1, c.sh_interval))
        sums = torch.zeros(4, device=self.device)
        seen = DensifyState.empty(self.count, self.device)
        regulariser = self._regulariser() * (frames / self.ranks.world)
        if not indices:
            regulariser.backward()
            sums[0] += regulariser.detach()
        for n, index in enumerate(indices):
            frame = self._load(self.train_frames[index])
            with_labels = bool(c.lambda_label) and frame.labels is not None
            channels = one_hot_labels(self.extras["labels"]) if with_labels else None
            result, *_ = self.render_frame(frame, active_sh, channels)
            loss, l1, dssim = losses.photometric_loss(result.rgb, frame.image, c.lambda_dssim)
            if with_labels:
                loss = loss + c.lambda_label * losses.label_loss(result.features, frame.labels)
            if n == 0:
                loss = loss + regulariser
            loss.backward()
            with torch.no_grad():
                if result.means2d.grad is not None:
                    accumulate(seen, result.means2d.grad, result.radii, frame.camera.width, frame.camera.height)
                sums += torch.stack([loss.detach(), l1.detach(), dssim.detach(),
                                     torch.tensor(psnr(result.rgb, frame.image), device=self.device)])
        return sums, seen

    def _regulariser(self) -> Tensor:
        """GaussianAvatars' position and scale regularisers (a scalar; 0 when both are off)."""
        c = self.config
        total = torch.zeros((), device=self.device)
        if c.lambda_xyz:
            total = total + c.lambda_xyz * losses.position_regulariser(self.params["xyz"], c.threshold_xyz)
        if c.lambda_scale:
            total = total + c.lambda_scale * losses.scale_regulariser(self.params["log_scale"], c.threshold_scale)
        if c.lambda_flame_prior and self.flame_params:
            rows = self._train_rows
            total = total + c.lambda_flame_prior * losses.flame_prior(
                {k: p[rows] - getattr(self.flame, k)[rows] for k, p in self.flame_params.items()})
        return total

    def _densify_due(self, it: int) -> bool:
        d = self.config.densify
        return d.start <= it <= d.stop_fraction * self.config.iters and it % d.interval == 0

    @torch.no_grad()
    def _densify_geometry(self, timestep: int) -> tuple[Tensor, Tensor, Tensor]:
        """(world scales [N, 3], triangle scale k [N], triangle rotation [N, 3, 3]) of every Gaussian on the
        mesh at `timestep`, before the step's update (the frame every rank agrees on: the step's first)."""
        verts = self.verts_for(timestep)
        rot, centroid, tri_scale = triangle_frames(verts, self.head.faces)
        binding = self.extras["binding"]
        _, _, scales = local_to_world(binding, self.params["xyz"], self.params["rotation"],
                                      torch.exp(self.params["log_scale"]), rot, centroid, tri_scale)
        return scales, tri_scale[binding], rot[binding]

    def _maybe_densify(self, geometry: tuple[Tensor, Tensor, Tensor] | None) -> dict[str, int] | None:
        d = self.config.densify
        it = self.iteration
        if d.opacity_reset_interval and it % d.opacity_reset_interval == 0 and it < d.stop_fraction * self.config.iters:
            reset_opacity(self.params, self.optimizer)
        if geometry is None:
            return None
        counts = densify_and_prune(self.params, self.optimizer, self.extras, self.densify_state, *geometry,
                                   self.extent, d, self.head.n_faces, self.generator)
        check_in_sync({**self.params, **self.extras}, self.ranks)
        return counts

    @torch.no_grad()
    def evaluate(self, split: str, max_frames: int | None = None) -> dict[str, float]:
        """Mean PSNR and SSIM over (up to max_frames evenly spaced) frames of a split ({} when it has none)."""
        frames = self.dataset.frames(split)
        if max_frames and len(frames) > max_frames:
            step = len(frames) / max_frames
            frames = tuple(frames[int(i * step)] for i in range(max_frames))
        return losses.mean_scores(frames, self._load, lambda frame: self.render_frame(frame)[0].rgb)

    def preview(self, split: str = "val") -> Tensor:
        """[H, W, 3] render of the first frame of a split (train when the split is empty), on the CPU."""
        frames = self.dataset.frames(split) or self.train_frames
        record = frames[0]
        with torch.no_grad():
            result, *_ = self.render_frame(self._load(record))
        return result.rgb.clamp(0, 1).cpu()

    def state_dict(self) -> dict:
        """Everything needed to resume exactly: parameters, Adam moments, statistics, RNG, history."""
        return {
            "iteration": self.iteration,
            "config": self.config.to_dict(),
            "params": {k: v.detach().clone() for k, v in self.params.items()},
            "extras": {k: v.clone() for k, v in self.extras.items()},
            "flame_params": {k: v.detach().clone() for k, v in self.flame_params.items()},
            "optimizer": self.optimizer.state_dict(),
            "densify": {"grad_sum": self.densify_state.grad_sum.clone(), "count": self.densify_state.count.clone()},
            "generator": self.generator.get_state(),
            "history": list(self.history),
            "evaluations": list(self.evaluations),
            "dataset": self.dataset_signature(),
        }

    def dataset_signature(self) -> dict:
        """What a checkpoint must have been trained on to resume here: timesteps and training frame count."""
        return {"timesteps": [int(t) for t in self.timesteps], "train_frames": len(self.train_frames)}

    def load_state_dict(self, state: dict) -> None:
        self.iteration = int(state["iteration"])
        self.params = {k: torch.nn.Parameter(v.to(self.device).clone()) for k, v in state["params"].items()}
        self.extras = {k: v.to(self.device).clone() for k, v in state["extras"].items()}
        self.optimizer = torch.optim.Adam(self._groups(), lr=0.0, eps=1e-15)
        self.flame_params = {}
        if state["flame_params"]:
            for key, value in state["flame_params"].items():
                p = torch.nn.Parameter(value.to(self.device).clone())
                self.flame_params[key] = p
                lr = self.config.lr_flame_expr if key == "expr" else (
                    self.config.lr_flame_trans if key == "translation" else self.config.lr_flame_pose)
                self.optimizer.add_param_group({"params": [p], "lr": lr, "name": f"flame_{key}"})
        self.optimizer.load_state_dict(state["optimizer"])
        self.densify_state = DensifyState(state["densify"]["grad_sum"].to(self.device).clone(),
                                          state["densify"]["count"].to(self.device).clone())
        self.generator.set_state(state["generator"])
        self.history = list(state["history"])
        self.evaluations = list(state["evaluations"])
        self._vert_cache.clear()


def _pad_rest(rest: Tensor, degree: int) -> Tensor:
    """SH rest coefficients [N, (d+1)²−1, 3] for the training degree (zero-padded or cut)."""
    want = (degree + 1) ** 2 - 1
    if rest.shape[1] >= want:
        return rest[:, :want]
    return torch.cat([rest, rest.new_zeros(rest.shape[0], want - rest.shape[1], 3)], dim=1)


def _camera_extent(frames: tuple[FrameRecord, ...], rotations: Tensor | None = None) -> float:
    """1.1 × the largest distance of a training camera from the cameras' mean (3DGS' scene extent).

    A monocular clip has one camera, so its spread is nil: there the views come from the head
    turning, and the cameras are placed in the head's frame first (rotations [N, 3]: each frame's
    global head rotation, axis-angle, in frame order)."""
    centres = torch.stack([f.camera.position.float() for f in frames])
    spread = float((centres - centres.mean(0)).norm(dim=-1).max())
    if rotations is not None and spread < 1e-3:
        from smplx.lbs import batch_rodrigues

        centres = (batch_rodrigues(rotations.float()).transpose(1, 2) @ centres[:, :, None])[:, :, 0]
        spread = float((centres - centres.mean(0)).norm(dim=-1).max())
    return 1.1 * max(spread, 1e-3)
