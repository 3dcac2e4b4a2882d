"""Local causal language model backend (transformers): prompt -> JSON answer -> validated EditPlan.

The model is a local folder or a cached hub id, loaded with local files only (nothing is
downloaded). The answer is constrained toward JSON: the instruction asks for JSON, a logits
processor keeps decoding to printable JSON-ish tokens, decoding stops at the end of the first
JSON object, and only that object is read. Invalid answers raise PlanError (the front door then
falls back to the rules backend and shows why).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from engine.prompting.context import AvatarContext
from engine.prompting.llm_json import BackendError, build_messages, extract_first_json_object, plain_prompt
from engine.prompting.plan import EditPlan, PlanError, sanitize_plan

JSON_CHARS: frozenset[str] = frozenset(chr(c) for c in range(32, 127)) | {"\n", "\t"}
"""Characters a token may decode to under the JSON constraint."""


@dataclass(frozen=True)
class LocalLLMConfig:
    """Settings of the local language-model backend."""

    model: str  # local model folder, or a hub id already in the local cache
    max_new_tokens: int = 320  # longest answer generated
    device: str = "cpu"  # torch device for the model
    json_tokens_only: bool = True  # restrict decoding to tokens of printable JSON-ish characters
    local_files_only: bool = True  # never reach a model hub


def _json_processor_class() -> type:
    from transformers import LogitsProcessor

    class JsonTokensLogitsProcessor(LogitsProcessor):
        """Masks every token whose text has characters outside JSON_CHARS (end-of-text stays allowed)."""

        def __init__(self, tokenizer: Any) -> None:
            self.tokenizer = tokenizer
            self._mask: Any = None  # [V] bool, built on first call for the model's vocabulary size

        def _build(self, vocab: int, device: Any) -> Any:
            import torch

            allowed = torch.zeros(vocab, dtype=torch.bool)
            special = set(self.tokenizer.all_special_ids)
            for tid in range(min(vocab, len(self.tokenizer))):
                if tid in special:
                    continue
                text = self.tokenizer.decode([tid])
                allowed[tid] = bool(text) and all(ch in JSON_CHARS for ch in text)
            if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id < vocab:
                allowed[self.tokenizer.eos_token_id] = True
            return allowed.to(device)

        def __call__(self, input_ids: Any, scores: Any) -> Any:  # scores: [B, V]
            if self._mask is None or self._mask.shape[0] != scores.shape[-1]:
                self._mask = self._build(scores.shape[-1], scores.device)
            return scores.masked_fill(~self._mask, float("-inf"))

    return JsonTokensLogitsProcessor


def _stop_class() -> type:
    from transformers import StoppingCriteria

    class FirstJsonObjectStop(StoppingCriteria):
        """Stops generation once the new text holds a complete JSON object."""

        def __init__(self, tokenizer: Any, prompt_len: int) -> None:
            self.tokenizer = tokenizer
            self.prompt_len = prompt_len

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            import torch

            text = self.tokenizer.decode(input_ids[0, self.prompt_len:], skip_special_tokens=True)
            done = False
            if "}" in text:
                try:
                    extract_first_json_object(text)
                    done = True
                except PlanError:
                    done = False
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

    return FirstJsonObjectStop


class LocalLLMRefiner:
    """Refines prompts with a local causal LM; loads once, on first use."""

    name = "local"

    def __init__(self, config: LocalLLMConfig, logits_processors: Sequence[Any] = ()) -> None:
        self.config = config
        self.extra_processors = list(logits_processors)  # applied after the JSON constraint
        self._tokenizer: Any = None
        self._model: Any = None

    def load(self) -> None:
        """Load tokenizer and model (BackendError naming the model when that fails).

        The model is a local folder or a hub id in huggingface_hub's cache (engine.models.resolve_local);
        fp16 on CUDA, float32 on a CPU.
        """
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from engine.models import ModelError, resolve_local

        try:
            folder = str(resolve_local(self.config.model)) if self.config.local_files_only else self.config.model
        except ModelError as exc:
            raise BackendError(f"cannot load language model {self.config.model!r}: {exc}") from exc
        dtype = torch.float16 if str(self.config.device).startswith("cuda") else torch.float32
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=self.config.local_files_only)
            model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=self.config.local_files_only,
                                                         dtype=dtype)
        except (OSError, ValueError, KeyError) as exc:
            raise BackendError(f"cannot load language model {self.config.model!r}: {exc}") from exc
        self._model = model.to(self.config.device).eval()

    def _encode(self, prompt: str) -> Any:
        tok = self._tokenizer
        if getattr(tok, "chat_template", None):
            text = tok.apply_chat_template(build_messages(prompt), add_generation_prompt=True, tokenize=False)
            ids = tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        else:
            ids = tok(plain_prompt(prompt), return_tensors="pt")["input_ids"]
        return ids.to(self.config.device)  # [1, L]

    def generate_text(self, prompt: str) -> str:
        """The model's raw answer (new text only) to the plan instruction for `prompt`."""
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList

        self.load()
        ids = self._encode(prompt)  # [1, L]
        cfg = self._model.config
        limit = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None) or 1 << 30
        new_tokens = min(self.config.max_new_tokens, limit - ids.shape[1])
        if new_tokens < 16:
            raise BackendError(f"the instruction ({ids.shape[1]} tokens) does not fit the model's context ({limit})")
        processors = [_json_processor_class()(self._tokenizer)] if self.config.json_tokens_only else []
        processors += self.extra_processors
        tok = self._tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        with torch.no_grad():
            out = self._model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, do_sample=False,
                logits_processor=LogitsProcessorList(processors), pad_token_id=pad,
                stopping_criteria=StoppingCriteriaList([_stop_class()(tok, ids.shape[1])]),
            )
        return tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)

    def refine(self, prompt: str, context: AvatarContext | None = None) -> tuple[EditPlan, list[str]]:
        """A validated plan from the model's answer; PlanError (with the reason) when it is not one.
        The context is not given to the model: refine_with checks the plan against it."""
        answer = self.generate_text(prompt)
        try:
            data = extract_first_json_object(answer)
        except PlanError as exc:
            raise PlanError(f"the local model's answer is not a plan: {exc}") from exc
        try:
            return sanitize_plan(data, prompt=prompt)
        except PlanError as exc:
            raise PlanError(f"the local model's plan was rejected: {exc}") from exc
