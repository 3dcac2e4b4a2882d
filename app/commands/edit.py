"""Edit an avatar's selected components from a prompt (procedural, diffusion or HTTP image editor)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from app.cli import CommandError
from app.commands import add_head_arguments, component_names, load_avatar_arg
from engine.head.components import PARTS

if TYPE_CHECKING:
    from engine.avatar.avatar import Avatar
    from engine.edit.run import EditResult
    from engine.prompting.plan import EditPlan

BACKENDS = ("auto", "procedural", "instruct-pix2pix", "inpaint", "img2img", "http")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("avatar", metavar="AVATAR", help="avatar folder, point_cloud.ply, GaussianAvatars output folder, or 'demo'")
    p.add_argument("--prompt", required=True, help='what to change, e.g. "make the lips blue"')
    p.add_argument("--components", nargs="*", default=None, metavar="NAME",
                   help="components or groups to edit (default: those the refined plan names)")
    p.add_argument("--part", choices=PARTS, default=None,
                   help="edit only this part of the components (default: the plan's part, if any)")
    p.add_argument("--out", required=True, help="folder for the edited avatar and project.dap (base + layer)")
    add_head_arguments(p, device=True)
    p.add_argument("--dataset", default=None, help="the avatar's VHAP dataset folder: keyframes from its training frames (default: the "
                        "dataset the avatar was trained on, when it is still there; else orbit cameras)")
    p.add_argument("--refiner", default="auto",
                   help="prompt refiner backend (rules, local, http; auto: the one chosen in the model settings)")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="image editor (auto: the one chosen with `dynamicavatars models use editor`, else procedural)")
    p.add_argument("--model", default=None, help="diffusers model folder or cached hub id; http: model name")
    p.add_argument("--url", default=None, help="http editor: endpoint base URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--keyframes", type=int, default=None, help="K keyframes (default: the plan's)")
    p.add_argument("--all-frames", action="store_true", help="edit every visible view instead of K keyframes")
    p.add_argument("--steps", type=int, default=None, help="most optimisation steps (default: the plan's)")
    p.add_argument("--size", type=int, default=160, help="keyframe side in pixels")
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    import torch

    from app.progress import progress_bar
    from engine.edit.editors import EditorError
    from engine.edit.optimise import OptimConfig
    from engine.edit.run import EditConfig, run_edit
    from engine.head.components import labels_of
    from engine.prompting import gaussians_context

    avatar = load_avatar_arg(args)
    plan = _plan(args, _refine(args, gaussians_context(avatar.gaussians)).plan)
    part = f"; the {plan.part}" if plan.part else ""
    print(f"plan: {plan.refined_prompt} [{', '.join(k.value for k in plan.kinds)}; {', '.join(plan.components)}{part}]")
    selection = torch.isin(avatar.gaussians.labels, torch.tensor(labels_of(list(plan.components)) or [-1]))
    dataset = _dataset(args, avatar)
    config = EditConfig(size=args.size, keyframes=args.keyframes, all_frames=args.all_frames, max_steps=args.steps,
                        seed=args.seed, optim=OptimConfig(device=args.device))
    try:
        editor = _editor(args, plan)
        with progress_bar("edit") as progress:
            result = run_edit(avatar, selection, plan, editor, config, dataset, progress)
    except (EditorError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    if result is None:
        raise CommandError("edit cancelled")
    for line in result.log:
        print(line)
    for shot in result.shots:
        verdict = "passed" if shot.accepted else "rejected"
        print(f"keyframe {shot.slot} (t={shot.timestep}, camera {shot.camera_index}): realness {shot.score:.2f}, gate "
              f"{shot.threshold:.2f}, {verdict}{'' if shot.used else ', not used'}")
    _save(avatar, result, Path(args.out))
    return 0


def _dataset(args: argparse.Namespace, avatar: Avatar) -> object | None:
    """--dataset, else the dataset the avatar was trained on while it is still there (the source is printed)."""
    from engine.edit.dataset_source import dataset_source

    if args.dataset:
        from engine.data.vhap_format import read_dataset

        return read_dataset(args.dataset)
    source = dataset_source(avatar.dataset)
    print(f"keyframes: {source.text}")
    return source.open()


def _plan(args: argparse.Namespace, plan: EditPlan) -> EditPlan:
    """The refined plan with --components and --part applied (validated: a part must lie in the components)."""
    from engine.head.components import expand
    from engine.prompting.plan import PlanError, build_plan

    update: dict[str, object] = {}
    try:
        names = component_names(args.components)
        if names:
            update["components"] = expand(names)
        if args.part:
            update["part"] = args.part
        elif "components" in update and plan.part and not set(PARTS[plan.part]) <= set(update["components"]):
            update["part"] = None  # the plan's part lies outside the components asked for
        return build_plan({**plan.model_dump(), **update}) if update else plan
    except (ValueError, PlanError) as exc:
        raise CommandError(str(exc)) from None


def _save(avatar: Avatar, result: EditResult, out: Path) -> None:
    """out/avatar (the edit applied: Gaussians, and the expression and jaw offsets in every frame) and out/project.dap
    (the base avatar with the result's layers)."""
    from engine.avatar.avatar import Avatar
    from engine.avatar.files import save_avatar
    from engine.edit.layers import compose, pose_offset
    from engine.project.project_file import Project, save_project
    from engine.view.posing import with_layer_offset

    out.mkdir(parents=True, exist_ok=True)
    layers = list(result.layers)
    params = with_layer_offset(avatar.params, pose_offset(layers, avatar.head.n_expr))
    save_avatar(Avatar(avatar.head, compose(avatar.gaussians, layers), params, avatar.name,
                       dataset=avatar.dataset), out / "avatar")
    save_project(Project(avatar, layers), out / "project.dap")
    changed = sum(layer.indices.numel() for layer in layers)
    names = "; ".join(layer.name for layer in layers)
    print(f"wrote {out / 'avatar'} and {out / 'project.dap'} ({names}: {changed} Gaussians changed; "
          f"{result.seconds:.0f} s)")
    for text in result.warnings:
        print(f"warning: {text}")


def _editor(args: argparse.Namespace, plan: object) -> object:
    """The editor the flags name, or with --backend auto the one the model settings choose (printed, with
    the time a diffusion edit will take, measured on this machine when not known yet)."""
    from app.model_choices import current_settings, edit_estimate, editor_settings
    from engine.edit.editors import EditorSettings, make_editor
    from engine.edit.run import EditConfig

    if args.backend != "auto":
        return make_editor(EditorSettings(args.backend, model=args.model, url=args.url))
    models = current_settings()
    settings, reason = editor_settings(models)
    print(f"editor: {reason}")
    editor = make_editor(settings)
    seconds, text = edit_estimate(editor, plan, EditConfig(keyframes=args.keyframes, max_steps=args.steps), models)
    if seconds is not None:
        print(f"estimate: {text}")
    return editor


def _refine(args: argparse.Namespace, context: object) -> object:
    """The plan of args.prompt for the avatar (context), by --refiner or, with auto, the chosen refiner."""
    from app.model_choices import current_settings, refine_choice
    from engine.prompting import refine

    if args.refiner != "auto":
        return refine(args.prompt, backend=args.refiner, context=context)
    backend, settings, _ = refine_choice(current_settings())
    result = refine(args.prompt, backend, settings, context)
    for line in result.messages():
        print(f"note: {line}")
    return result
