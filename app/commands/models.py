"""List, download, choose and remove the learned models (image editor, prompt refiner, face parser, embedder).

    dynamicavatars models list [--json]
    dynamicavatars models get ID [--use ROLE] [--fp16|--no-fp16] [--json]
    dynamicavatars models use ROLE ID|URL|none [--server-model NAME] [--project FILE.dap] [--json]
    dynamicavatars models remove ID [--json]

Downloads go to huggingface_hub's cache (HF_HOME / HF_HUB_CACHE); choices to the user's settings file, or
into a project with --project. API keys of endpoints come from DYNAMICAVATARS_IMAGE_API_KEY /
DYNAMICAVATARS_LLM_API_KEY or the system keyring (Edit → Models… stores them there); never from here.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.cli import CommandError
from engine.models.catalog import ROLES


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    ls = sub.add_parser("list", help="every known, chosen or downloaded model with its role, size, licence, status")
    get = sub.add_parser("get", help="download a model by hub id (only the files it needs)")
    get.add_argument("id", metavar="ID", help="hub id, e.g. timbrooks/instruct-pix2pix")
    get.add_argument("--use", choices=ROLES, default=None, metavar="ROLE", help="then use it for ROLE")
    get.add_argument("--fp16", action=argparse.BooleanOptionalAction, default=None,
                     help="the fp16 weight variant (default: on with CUDA)")
    use = sub.add_parser("use", help="choose the model of a role (a hub id, a folder, an endpoint URL, or none)")
    use.add_argument("role", choices=ROLES)
    use.add_argument("id", metavar="ID", help="hub id, model folder, http(s) endpoint URL (editor, refiner), or none")
    use.add_argument("--server-model", default=None, help="endpoints: the model name to ask the server for")
    use.add_argument("--project", default=None, metavar="DAP", help="pin the choice in this project instead")
    rm = sub.add_parser("remove", help="delete a downloaded model from the cache")
    rm.add_argument("id", metavar="ID")
    for q in (ls, get, use, rm):
        q.add_argument("--json", action="store_true", help="print one JSON object")


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, indent=1) if args.json else text)


def _list(args: argparse.Namespace) -> int:
    from app.model_choices import current_settings
    from engine.models import ROLE_INFO, describe, list_models
    from engine.models.hub import cache_dir, format_bytes, is_offline
    from engine.models.settings import settings_path

    settings = current_settings()
    entries = list_models(settings)
    roles = {role: describe(role, settings).reason for role in ROLES}
    data = {"models": [e.as_dict() for e in entries], "roles": roles, "cache": str(cache_dir()),
            "settings": str(settings_path()), "offline": is_offline(settings)}
    lines = [f"{ROLE_INFO[r].title:18} {reason}" for r, reason in roles.items()] + [""]
    for e in entries:
        size = f"{e.size_gb:.2f} GB" if e.size_gb else "?"
        disk = f", {format_bytes(e.disk_bytes)} on disk" if e.disk_bytes else ""
        used = f"  [used for: {', '.join(e.used_for)}]" if e.used_for else ""
        lines.append(f"{e.role or '-':9} {e.id:52} {e.status:13} {size:>8} {e.licence or '':22}{disk}{used}")
    _emit(args, data, "\n".join(lines))
    return 0


def _get(args: argparse.Namespace) -> int:
    import torch

    from app.model_choices import current_settings
    from app.progress import progress_bar
    from engine.models import Choice, ModelError, download_model, save_settings
    from engine.models.hub import format_bytes

    settings = current_settings()
    fp16 = args.fp16 if args.fp16 is not None else (settings.device or ("cuda" if torch.cuda.is_available()
                                                                          else "cpu")).startswith("cuda")
    try:
        with progress_bar(f"get {args.id}") as progress:
            result = download_model(args.id, settings, progress, fp16=fp16)
        if args.use:
            save_settings(settings.with_choice(args.use, Choice(args.id)))
    except (ModelError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    data = {**result.as_dict(), "used_for": args.use}
    _emit(args, data, f"{args.id}: {len(result.plan.files)} files, {format_bytes(result.plan.total_bytes)} in "
                      f"{result.path} ({format_bytes(result.fetched_bytes)} fetched)"
                      + (f"; used for the {args.use}" if args.use else ""))
    return 0


def _use(args: argparse.Namespace) -> int:
    from engine.models import Choice, ModelError, describe, installed, load_settings, save_settings
    from engine.models.settings import pins_from_json, pins_to_json

    choice = None if args.id.lower() in ("none", "default", "off") else Choice(args.id, args.server_model)
    try:
        if args.project:
            from engine.project.project_file import read_model_pins, write_model_pins

            pins = pins_from_json(read_model_pins(args.project), args.project)
            pins = {k: v for k, v in pins.items() if k != args.role} | ({args.role: choice} if choice else {})
            write_model_pins(args.project, pins_to_json(pins))
            settings = load_settings().merged(pins)
        else:
            settings = load_settings().with_choice(args.role, choice)
            save_settings(settings)
    except (ModelError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    now = describe(args.role, settings)
    note = ""
    if choice is not None and not choice.is_url and now.path is None:
        state = installed(choice.source)
        note = f"not downloaded yet: run `dynamicavatars models get {choice.source}`" if state is None else now.reason
    where = f"project {args.project}" if args.project else "your settings"
    _emit(args, {"role": args.role, "choice": choice.to_json() if choice else None, "saved_in": where,
                 "uses": now.reason, "note": note},
          f"{args.role}: {now.reason} (saved in {where})" + (f"\nnote: {note}" if note else ""))
    return 0


def _remove(args: argparse.Namespace) -> int:
    from engine.models import load_settings, remove_model
    from engine.models.hub import format_bytes

    freed = remove_model(args.id)
    if not freed:
        raise CommandError(f"{args.id} is not in the model cache")
    still = [role for role, c in load_settings().choices.items() if c.source == args.id]
    note = f"; still chosen for: {', '.join(still)} (the app uses its offline default until you get it again)" \
        if still else ""
    _emit(args, {"id": args.id, "freed_bytes": freed, "still_chosen_for": still},
          f"removed {args.id} ({format_bytes(freed)} freed){note}")
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return {"list": _list, "get": _get, "use": _use, "remove": _remove}[args.action](args)
    except KeyboardInterrupt:
        print(f"models {args.action}: cancelled; files finished so far stay and the next get resumes", file=sys.stderr)
        return 130
