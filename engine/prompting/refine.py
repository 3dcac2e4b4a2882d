"""Front door of prompt refinement: one interface over the rules, local-LM and HTTP backends,
with fallback to the rules backend (and the reason) whenever a language model fails.

An optional AvatarContext (context.py) describes the avatar: every backend's plan is checked against
it (NothingToEdit for what the avatar lacks), and the rules backend reads "darker"/"lighter" from it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Protocol

from engine.prompting.context import AvatarContext, check_plan
from engine.prompting.llm_json import BackendError
from engine.prompting.plan import EditPlan, PlanError

BACKENDS: tuple[str, ...] = ("rules", "local", "http")
"""Backend names, default first."""
ENV_LOCAL_MODEL = "DYNAMICAVATARS_LLM_LOCAL_MODEL"


class Refiner(Protocol):
    """A refiner backend: `refine` returns (plan, notes) or raises PlanError / BackendError."""

    name: str

    def refine(self, prompt: str, context: AvatarContext | None = None) -> tuple[EditPlan, list[str]]: ...


@dataclass(frozen=True)
class RefineSettings:
    """Settings for every backend (None: environment variable or the backend's default)."""

    local_model: str | None = None  # local LM folder or cached id (env DYNAMICAVATARS_LLM_LOCAL_MODEL)
    base_url: str | None = None  # HTTP server root, e.g. http://127.0.0.1:8080/v1 (env ..._LLM_BASE_URL)
    http_model: str | None = None  # model name on the server (env DYNAMICAVATARS_LLM_MODEL)
    api_key: str | None = field(default=None, repr=False)  # (env DYNAMICAVATARS_LLM_API_KEY)
    timeout: float | None = None  # HTTP seconds per request
    retries: int | None = None  # HTTP retries
    use_embeddings: bool | None = None  # rules: meaning-match unknown words (None: when installed)
    max_new_tokens: int = 320  # local LM answer length
    device: str = "cpu"  # local LM device


@dataclass(frozen=True)
class RefineResult:
    """What refinement produced, and how."""

    plan: EditPlan  # the validated plan
    backend: str  # backend that produced it ("rules" after a fallback)
    requested_backend: str  # backend that was asked for
    notes: tuple[str, ...] = ()  # clamping/repair messages and meaning matches
    fallback_reason: str | None = None  # why the requested backend's answer was not used

    def messages(self) -> list[str]:
        """Lines to show a person: the fallback reason first, then the notes."""
        head = [f"{self.requested_backend} backend not used: {self.fallback_reason}"] if self.fallback_reason else []
        return head + list(self.notes)

    def to_dict(self) -> dict[str, object]:
        return {"plan": self.plan.model_dump(mode="json"), "backend": self.backend,
                "requested_backend": self.requested_backend, "notes": list(self.notes),
                "fallback_reason": self.fallback_reason}


def make_refiner(backend: str = "rules", settings: RefineSettings | None = None) -> Refiner:
    """A backend by name (BackendError when it cannot be configured, ValueError for unknown names)."""
    s = settings or RefineSettings()
    if backend == "rules":
        from engine.prompting.rules import RulesConfig, RulesRefiner

        return RulesRefiner(RulesConfig(use_embeddings=s.use_embeddings))
    if backend == "local":
        from engine.prompting.llm_local import LocalLLMConfig, LocalLLMRefiner

        model = s.local_model or os.environ.get(ENV_LOCAL_MODEL)
        if not model:
            raise BackendError(f"no local language model given (--model PATH or {ENV_LOCAL_MODEL})")
        return LocalLLMRefiner(LocalLLMConfig(model=model, max_new_tokens=s.max_new_tokens, device=s.device))
    if backend == "http":
        from engine.prompting.llm_http import HttpLLMConfig, HttpLLMRefiner

        return HttpLLMRefiner(HttpLLMConfig.from_env(base_url=s.base_url, model=s.http_model, api_key=s.api_key,
                                                     timeout=s.timeout, retries=s.retries))
    raise ValueError(f"unknown refiner backend {backend!r}; known: {', '.join(BACKENDS)}")


def refine_with(refiner: Refiner, prompt: str, fallback: Refiner | None = None,
                context: AvatarContext | None = None) -> RefineResult:
    """Run `refiner`; if it is not the rules backend and fails, run `fallback` (rules) and say why.

    Errors of the rules backend itself propagate: PlanError (empty prompt), UnclearPrompt (with
    suggestions), NothingToEdit (the context shows the avatar lacks what is to be changed).
    """
    if refiner.name == "rules":
        plan, notes = refiner.refine(prompt, context)
        return RefineResult(plan, "rules", "rules", tuple(notes))
    try:
        plan, notes = refiner.refine(prompt, context)
    except (PlanError, BackendError) as exc:
        reason = str(exc)
    else:
        notes = notes + check_plan(plan, context)
        return RefineResult(plan, refiner.name, refiner.name, tuple(notes))
    rules = fallback or make_refiner("rules")
    plan, notes = rules.refine(prompt, context)
    return RefineResult(plan, "rules", refiner.name, tuple(notes), fallback_reason=reason)


def refine(prompt: str, backend: str = "rules", settings: RefineSettings | None = None,
           context: AvatarContext | None = None) -> RefineResult:
    """Refine `prompt` with the named backend, falling back to rules with the reason on failure."""
    try:
        refiner = make_refiner(backend, settings)
    except BackendError as exc:
        plan, notes = make_refiner("rules", settings).refine(prompt, context)
        return RefineResult(plan, "rules", backend, tuple(notes), fallback_reason=str(exc))
    return refine_with(refiner, prompt, context=context)
