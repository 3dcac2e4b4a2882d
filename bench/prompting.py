"""The offline rules refiner against its contract: the share of suite prompts (tests/data/prompt_suite.jsonl)
whose plan matches, overall and per category, and milliseconds per prompt.

Usage: python bench/prompting.py [--quick] [--failures]. Last stdout line: one JSON object with
plan_match_share, per_category (share per category), category_counts, prompts, ms_per_prompt, and
(without --quick, when the optional sentence-embedding model is installed) plan_match_share_embeddings:
the same suite with unknown words read by meaning, as the GUI and CLI do by default.
--quick times one pass over the suite (default: 3 passes); the shares are the same either way.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.prompting.contract import judge, load_suite, summarise  # noqa: E402
from engine.prompting.rules import RulesConfig, RulesRefiner  # noqa: E402

SUITE = ROOT / "tests" / "data" / "prompt_suite.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="one timed pass over the suite, no embedding pass (default: 3 passes + embeddings)")
    parser.add_argument("--failures", action="store_true", help="print every prompt whose plan does not match")
    args = parser.parse_args()
    cases = load_suite(SUITE)
    refiner = RulesRefiner(RulesConfig(use_embeddings=False))
    passes = 1 if args.quick else 3
    start = time.perf_counter()
    for _ in range(passes):
        results = [judge(case, refiner.refine) for case in cases]
    elapsed = time.perf_counter() - start
    if args.failures:
        for r in results:
            if not r.ok:
                print(f"FAIL {r.prompt!r}: {'; '.join(r.problems)}")
    figures = {"bench": "prompting", "backend": "rules", "prompts": len(cases), **summarise(results),
               "ms_per_prompt": round(1000 * elapsed / (passes * len(cases)), 3)}
    if not args.quick:
        figures["plan_match_share_embeddings"] = _with_embeddings(cases, args.failures)
    print(json.dumps(figures))


def _with_embeddings(cases: list[dict], show_failures: bool) -> float | None:
    """plan_match_share with meaning matches of unknown words (None when no embedding model is installed)."""
    from engine.prompting.embed_match import EmbeddingMatcher, embedding_model_path

    path = embedding_model_path()
    if path is None:
        return None
    refiner = RulesRefiner(RulesConfig(use_embeddings=True), matcher=EmbeddingMatcher(path))
    results = [judge(case, refiner.refine) for case in cases]
    if show_failures:
        for r in results:
            if not r.ok:
                print(f"FAIL (embeddings) {r.prompt!r}: {'; '.join(r.problems)}")
    return summarise(results)["plan_match_share"]


if __name__ == "__main__":
    main()
