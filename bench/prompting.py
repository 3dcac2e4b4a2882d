"""Rules-backend accuracy on tests/data/prompts.jsonl and milliseconds per prompt.

Usage: python bench/prompting.py [--quick]. Last stdout line: one JSON object of figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.head.components import expand  # noqa: E402
from engine.prompting.rules import RulesConfig, RulesRefiner  # noqa: E402


def _correct(plan, case: dict) -> bool:
    if plan.components != expand(case["components"]) or [k.value for k in plan.kinds] != case["kinds"]:
        return False
    if (plan.colour is None) != (case["colour"] is None):
        return False
    if plan.colour is not None and max(abs(a - b) for a, b in zip(plan.colour, case["colour"])) > 60:
        return False
    if set(plan.expression) != set(case["expression"]):
        return False
    return all(abs(plan.expression[k] - v) <= 0.051 for k, v in case["expression"].items()) and \
        abs(plan.intensity - case["intensity"]) <= 0.051


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one pass over the table (default: 5 passes)")
    args = parser.parse_args()
    cases = [json.loads(l) for l in (ROOT / "tests/data/prompts.jsonl").read_text().splitlines() if l.strip()]
    refiner = RulesRefiner(RulesConfig(use_embeddings=False))
    passes = 1 if args.quick else 5
    correct, start = 0, time.perf_counter()
    for _ in range(passes):
        for case in cases:
            plan, _ = refiner.refine(case["prompt"])
            correct += _correct(plan, case)
    elapsed = time.perf_counter() - start
    n = passes * len(cases)
    print(json.dumps({"bench": "prompting", "backend": "rules", "prompts": len(cases), "passes": passes,
                      "accuracy": round(correct / n, 4), "ms_per_prompt": round(1000 * elapsed / n, 3)}))


if __name__ == "__main__":
    main()
