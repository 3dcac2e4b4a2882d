"""Local language-model backend with a tiny randomly initialised GPT-2 loaded by path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from engine.prompting.llm_json import BackendError, build_messages, extract_first_json_object, system_prompt  # noqa: E402
from engine.prompting.llm_local import JSON_CHARS, LocalLLMConfig, LocalLLMRefiner  # noqa: E402
from engine.prompting.plan import PlanError  # noqa: E402
from engine.prompting.refine import RefineSettings, refine, refine_with  # noqa: E402
from tiny_models import tiny_chat_lm  # noqa: E402

PLAN = {"refined_prompt": "make the hair bright blue", "components": ["hair"], "kinds": ["colour"],
        "colour": [30, 90, 255], "guidance_scale": 9.0, "steps": 25, "expression": {"smile": 0.2}}
CORPUS = [system_prompt(), json.dumps(PLAN), "give her bright red lipstick and make her smile"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_gpt2")
    tiny_chat_lm(folder, CORPUS, chat=False)
    return folder


@pytest.fixture(scope="module")
def chat_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_gpt2_chat")
    tiny_chat_lm(folder, CORPUS, chat=True)
    return folder


class ForceText(transformers.LogitsProcessor):
    """Forces generation to spell a fixed token sequence, then end-of-text."""

    def __init__(self, target: list[int], eos: int) -> None:
        self.target, self.eos, self.start = target, eos, None

    def __call__(self, input_ids, scores):  # [B, L], [B, V]
        if self.start is None:
            self.start = input_ids.shape[1]
        step = input_ids.shape[1] - self.start
        token = self.target[step] if step < len(self.target) else self.eos
        forced = torch.full_like(scores, float("-inf"))
        forced[:, token] = 0.0
        return forced


def test_garbage_answer_falls_back_with_reason(model_dir: Path) -> None:
    """The random model answers printable text that holds no JSON object: refine() says so, naming the local
    model and quoting the answer; refine_with falls back to the rules and shows that reason."""
    refiner = LocalLLMRefiner(LocalLLMConfig(model=str(model_dir), max_new_tokens=40))
    answer = refiner.generate_text("dye her hair blue")
    assert len(answer) >= 10 and all(ch in JSON_CHARS for ch in answer), repr(answer)
    with pytest.raises(PlanError, match="holds no JSON object"):
        extract_first_json_object(answer)
    with pytest.raises(PlanError, match="the local model's answer is not a plan: the answer holds no JSON object"):
        refiner.refine("dye her hair blue")
    result = refine_with(refiner, "dye her hair blue")
    assert result.backend == "rules" and result.requested_backend == "local"
    assert "local model's answer is not a plan" in result.fallback_reason and answer[:20] in result.fallback_reason
    assert result.plan.components == ("hair",) and result.plan.colour is not None  # the rules' own plan
    assert result.messages()[0].startswith("local backend not used")


class Boost(transformers.LogitsProcessor):
    """Adds `bias` to some tokens for `steps` steps, then forces end-of-text. It runs after the JSON constraint,
    so a token the constraint masked (-inf) stays masked."""

    def __init__(self, bias: dict[int, float], steps: int, eos: int) -> None:
        self.bias, self.steps, self.eos, self.start = bias, steps, eos, None

    def __call__(self, input_ids, scores):  # [B, L], [B, V]
        if self.start is None:
            self.start = input_ids.shape[1]
        if input_ids.shape[1] - self.start >= self.steps:
            return torch.where(torch.arange(scores.shape[-1]) == self.eos, 0.0, float("-inf")).expand_as(scores)
        out = scores.clone()
        for token, bias in self.bias.items():
            out[:, token] += bias
        return out


def test_json_constraint_keeps_tokens_printable(model_dir: Path) -> None:
    """A processor pushes a token that decodes to a non-printable character (a lone UTF-8 byte) above all
    others: without the constraint the answer is made of it; with the constraint it is masked and the
    next-boosted printable token is chosen instead, every step."""
    tok = transformers.AutoTokenizer.from_pretrained(str(model_dir))
    printable = lambda text: bool(text) and all(ch in JSON_CHARS for ch in text)
    bad = next(i for i in range(len(tok)) if i not in tok.all_special_ids and not printable(tok.decode([i])))
    (good,) = tok.encode(":")

    def answer(constrained: bool) -> str:
        boost = Boost({bad: 1e4, good: 5e3}, steps=10, eos=tok.eos_token_id)
        refiner = LocalLLMRefiner(LocalLLMConfig(model=str(model_dir), max_new_tokens=40,
                                                 json_tokens_only=constrained), logits_processors=[boost])
        return refiner.generate_text("make her smile")

    assert answer(False) == tok.decode([bad] * 10) and not printable(answer(False)), "the boost picks the bad token"
    assert answer(True) == ":" * 10, "the constraint masks the non-printable token and nothing else that was boosted"
    plain = LocalLLMRefiner(LocalLLMConfig(model=str(model_dir), max_new_tokens=40)).generate_text("make her smile")
    assert printable(plain) and len(plain) >= 10


def test_forced_valid_plan_is_accepted(chat_model_dir: Path) -> None:
    tok = transformers.AutoTokenizer.from_pretrained(str(chat_model_dir))
    target = tok.encode(" Here is the plan: " + json.dumps(PLAN) + " trailing words")
    refiner = LocalLLMRefiner(LocalLLMConfig(model=str(chat_model_dir), max_new_tokens=400),
                              logits_processors=[ForceText(target, tok.eos_token_id)])
    result = refine_with(refiner, "make her hair bright blue and smile a bit")
    assert result.fallback_reason is None and result.backend == "local"
    plan = result.plan
    assert plan.components == ("hair",) and plan.colour == (30, 90, 255)
    assert plan.guidance_scale == 9.0 and plan.steps == 25 and plan.expression == {"smile": 0.2}
    assert plan.prompt == "make her hair bright blue and smile a bit"
    assert plan.version == 2 and plan.action == "change" and plan.lightness == 0.0 and plan.part is None
    # the chat template was used: the encoded instruction starts with the system role marker
    assert refiner._encode("x").shape[1] == tok(tok.apply_chat_template(
        build_messages("x"), add_generation_prompt=True, tokenize=False), add_special_tokens=False,
        return_tensors="pt")["input_ids"].shape[1]


def test_forced_invalid_plan_is_rejected(model_dir: Path) -> None:
    tok = transformers.AutoTokenizer.from_pretrained(str(model_dir))
    bad = {"refined_prompt": "x", "components": ["tail"], "kinds": ["colour"]}
    refiner = LocalLLMRefiner(LocalLLMConfig(model=str(model_dir), max_new_tokens=200),
                              logits_processors=[ForceText(tok.encode(json.dumps(bad)), tok.eos_token_id)])
    result = refine_with(refiner, "paint her hair red")
    assert result.backend == "rules" and "needs target components" in result.fallback_reason
    assert result.plan.components == ("hair",)


def test_missing_model_falls_back(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="cannot load"):
        LocalLLMRefiner(LocalLLMConfig(model=str(tmp_path / "nope"))).load()
    result = refine("make her smile", "local", RefineSettings(local_model=str(tmp_path / "nope")))
    assert result.backend == "rules" and "cannot load" in result.fallback_reason
    assert result.plan.expression == {"smile": 0.6}
