"""The rules refiner's word tools: typo correction by edit distance, Oklab colour families and lightness
shifts, and the prompt-suite loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.prompting.colours import NAMED_COLOURS
from engine.prompting.contract import judge, load_suite
from engine.prompting.lexicon import speller
from engine.prompting.oklab import delta_e, family_of, from_oklab, shift_lightness, to_oklab
from engine.prompting.spelling import Speller, edit_distance


@pytest.mark.parametrize("a, b, d", [("lips", "lips", 0), ("lipps", "lips", 1), ("eyebrwos", "eyebrows", 1),
                                     ("smiel", "smile", 1), ("purpel", "purple", 1), ("kitten", "sitting", 3),
                                     ("", "abc", 3), ("ilps", "lips", 1)])
def test_edit_distance(a: str, b: str, d: int) -> None:
    assert edit_distance(a, b, limit=5) == d
    assert edit_distance(b, a, limit=5) == d


def test_edit_distance_stops_at_the_limit() -> None:
    assert edit_distance("abcdefgh", "zyxwvuts", limit=2) == 3


@pytest.mark.parametrize("typo, word", [("lipps", "lips"), ("eyebrwos", "eyebrows"), ("smiel", "smile"),
                                        ("hiar", "hair"), ("glases", "glasses"), ("turqoise", "turquoise"),
                                        ("darkr", "darker"), ("eyse", "eyes"), ("remvoe", "remove")])
def test_typos_of_known_words_are_corrected(typo: str, word: str) -> None:
    assert speller().correct(typo) == word


@pytest.mark.parametrize("word", ["tresses", "chuckle", "bald", "ocean", "sunset", "zesty", "red", "lips", "hat",
                                  "clown", "glossier", "rosy"])
def test_known_or_unrelated_words_are_left_alone(word: str) -> None:
    assert speller().correct(word) is None


def test_a_tie_between_equally_long_words_is_left_alone() -> None:
    assert Speller(["cart", "card"]).correct("carx") is None
    assert Speller(["cart", "car"]).correct("carx") == "cart"  # the one at least as long wins


def test_oklab_round_trip_and_lightness_shift() -> None:
    for rgb in ((0, 0, 0), (255, 255, 255), (210, 25, 35), (35, 80, 210), (120, 70, 35)):
        assert max(abs(a - b) for a, b in zip(from_oklab(to_oklab(rgb)), rgb)) <= 1
    assert to_oklab((255, 255, 255))[0] == pytest.approx(1.0, abs=1e-3)
    brown = NAMED_COLOURS["brown"]
    darker, lighter = shift_lightness(brown, -0.15), shift_lightness(brown, 0.15)
    assert to_oklab(darker)[0] == pytest.approx(to_oklab(brown)[0] - 0.15, abs=0.01)
    assert family_of(darker) == family_of(brown) == "brown" and to_oklab(lighter)[0] > to_oklab(brown)[0]
    assert delta_e(brown, brown) == 0.0 and delta_e(brown, darker) > 10


@pytest.mark.parametrize("name, family", [("red", "red"), ("burgundy", "red"), ("teal", "teal"),
                                          ("lavender", "purple"), ("mint", "green"), ("charcoal", "grey"),
                                          ("auburn", "brown"), ("navy", "blue"), ("blonde", "blonde"),
                                          ("black", "black"), ("ivory", "white"), ("coral", "orange")])
def test_colour_families(name: str, family: str) -> None:
    assert family_of(NAMED_COLOURS[name]) == family


def test_suite_loader_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "suite.jsonl"
    path.write_text(json.dumps({"prompt": "x", "categories": ["colour"], "components": [], "kinds": []}) + "\n"
                    + json.dumps({"prompt": "y", "categories": ["colour"], "components": ["hair"], "kinds": ["colour"],
                                  "colour": "blurple"}) + "\n")
    with pytest.raises(ValueError, match=r"suite.jsonl:2: unknown colour family"):
        load_suite(path)
    path.write_text("{oops\n")
    with pytest.raises(ValueError, match=r"suite.jsonl:1: not JSON"):
        load_suite(path)


def test_judge_reports_each_difference() -> None:
    from engine.prompting.rules import RulesConfig, RulesRefiner

    refine = RulesRefiner(RulesConfig(use_embeddings=False)).refine
    case = {"prompt": "make her lips red", "categories": ["colour"], "components": ["hair"], "kinds": ["shape"],
            "colour": "blue", "part": "iris", "expression": {"smile": "+large"}}
    problems = judge(case, refine).problems
    assert len(problems) == 5, problems
    ok = {"prompt": "make her lips red", "categories": ["colour"], "components": ["lips"], "kinds": ["colour"],
          "colour": "red"}
    assert judge(ok, refine).ok
    assert not judge({"prompt": "make her lips red", "categories": ["x"], "error": "unclear"}, refine).ok


def test_real_words_are_not_typos() -> None:
    assert Speller(["crown"]).correct("clown") == "crown"  # by distance alone it would be
    assert Speller(["crown"], real_words={"clown"}).correct("clown") is None
    assert speller().correct("clown") is None and speller().correct("qwerty") is None
