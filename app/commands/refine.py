"""Refine an edit prompt into a validated edit plan and print it as JSON."""

from __future__ import annotations

import argparse
import json
import sys

from app.cli import CommandError
from engine.prompting import BACKENDS, PlanError, RefineSettings, refine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help='the edit request, e.g. "give her bright red lipstick"')
    parser.add_argument("--backend", choices=BACKENDS, default="rules",
                        help="refiner: offline rules (default), a local language model, or an HTTP endpoint")
    parser.add_argument("--model", default=None,
                        help="local: model folder or cached id; http: model name on the server")
    parser.add_argument("--base-url", default=None, help="http: server root, e.g. http://127.0.0.1:8080/v1")
    parser.add_argument("--timeout", type=float, default=None, help="http: seconds per request")
    parser.add_argument("--no-embeddings", action="store_true",
                        help="rules: do not read unknown words with the sentence-embedding model")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object with the plan, backend, notes and fallback reason")


def run(args: argparse.Namespace) -> int:
    settings = RefineSettings(
        local_model=args.model if args.backend == "local" else None,
        http_model=args.model if args.backend == "http" else None,
        base_url=args.base_url, timeout=args.timeout,
        use_embeddings=False if args.no_embeddings else None,
    )
    try:
        result = refine(args.prompt, args.backend, settings)
    except PlanError as exc:
        raise CommandError(str(exc)) from exc
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.plan.to_json())
        for line in result.messages():
            print(f"note: {line}", file=sys.stderr)
    return 0
