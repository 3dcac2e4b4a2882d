"""Refine an edit prompt into a validated edit plan and print it as JSON."""

from __future__ import annotations

import argparse
import json
import sys

from engine.prompting import BACKENDS, NothingToEdit, RefineSettings, UnclearPrompt, refine
from engine.prompting.plan import UNCLEAR_PREFIX


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help='the edit request, e.g. "give her bright red lipstick"')
    parser.add_argument("--backend", choices=("auto", *BACKENDS), default="auto",
                        help="refiner: offline rules, a local language model, or an HTTP endpoint "
                             "(auto, the default: the one chosen with `dynamicavatars models use refiner`, else rules)")
    parser.add_argument("--model", default=None,
                        help="local: model folder or cached id; http: model name on the server")
    parser.add_argument("--base-url", default=None, help="http: server root, e.g. http://127.0.0.1:8080/v1")
    parser.add_argument("--timeout", type=float, default=None, help="http: seconds per request")
    parser.add_argument("--no-embeddings", action="store_true",
                        help="rules: do not read unknown words with the sentence-embedding model")
    parser.add_argument("--avatar", default=None,
                        help="refine for this avatar (folder, point_cloud.ply or 'demo'): what it lacks cannot be "
                             "changed or removed, and 'darker'/'lighter' start from its own colours")
    parser.add_argument("--flame", default=None, help="FLAME model file/folder for a GaussianAvatars avatar")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object with the plan, backend, notes and fallback reason (or the "
                             "reason no plan was made)")


def _refusal(exc: UnclearPrompt | NothingToEdit, as_json: bool) -> int:
    """Print why no plan was made (and what would read) as a normal message; exit status 2."""
    if as_json:
        kind = "unclear" if isinstance(exc, UnclearPrompt) else "nothing_to_edit"
        print(json.dumps({"error": kind, "message": str(exc),
                          "suggestions": list(getattr(exc, "suggestions", ()))}, indent=2))
        return 2
    if isinstance(exc, UnclearPrompt):
        print(UNCLEAR_PREFIX + exc.reason, file=sys.stderr)
        for suggestion in exc.suggestions:
            print(f"  try: {suggestion}", file=sys.stderr)
    else:
        print(str(exc), file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    backend = args.backend
    settings = RefineSettings(
        local_model=args.model if args.backend == "local" else None,
        http_model=args.model if args.backend == "http" else None,
        base_url=args.base_url, timeout=args.timeout,
        use_embeddings=False if args.no_embeddings else None,
    )
    if backend == "auto":
        from dataclasses import replace

        from app.model_choices import current_settings, refine_choice

        backend, chosen, _ = refine_choice(current_settings())
        settings = replace(chosen, timeout=args.timeout, use_embeddings=settings.use_embeddings)
    context = None
    if args.avatar:
        from app.commands import load_avatar_arg
        from engine.prompting import gaussians_context

        context = gaussians_context(load_avatar_arg(args).gaussians)
    try:
        result = refine(args.prompt, backend, settings, context)
    except (UnclearPrompt, NothingToEdit) as exc:
        return _refusal(exc, args.json)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.plan.to_json())
        for line in result.messages():
            print(f"note: {line}", file=sys.stderr)
    return 0
