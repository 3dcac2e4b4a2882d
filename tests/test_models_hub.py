"""The model registry against a stand-in hub on 127.0.0.1 serving tiny random models: list -> get with
progress -> cancel -> resume -> the editor, refiner and parser load from the cache and run; only the
needed files are fetched; disk-space refusal; an unreachable hub gives a clear error and models on this
machine keep working offline."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from hub_stub import StubHub
from models_env import go_offline

from engine.models import (
    Choice,
    DiskSpaceError,
    DownloadCancelled,
    HubUnreachableError,
    ModelSettings,
    NotInstalledError,
    OfflineError,
    describe,
    download_model,
    installed,
    list_models,
    resolve,
    resolve_local,
)
from tests.helpers_net import closed_port

JUNK = ("onnx/", "safety_checker/", "single_file.safetensors", "README.md", "pytorch_model.bin", "flax_model")


def _settings(hub: StubHub, **kw: object) -> ModelSettings:
    return ModelSettings(**{"hub_endpoint": hub.url, "keep_free_gb": 0.0, **kw})  # type: ignore[arg-type]


def test_list_get_progress_cancel_resume(private_hub: Path, tiny_repos: dict[str, Path]) -> None:
    repo = "tiny/instruct-pix2pix"
    with StubHub({repo: tiny_repos[repo]}, delay=0.15) as hub:
        settings = _settings(hub)
        row = next(e for e in list_models(settings) if e.id == "timbrooks/instruct-pix2pix")
        assert row.status == "not installed" and row.licence == "mit" and row.size_gb == pytest.approx(4.3)
        assert all(e.status == "not installed" for e in list_models(settings))

        cancel = threading.Event()
        seen: list[tuple[float, str]] = []

        def progress(fraction: float, text: str) -> None:
            seen.append((fraction, text))
            if "file 2/" in text:
                cancel.set()

        with pytest.raises(DownloadCancelled, match="get it again"):
            download_model(repo, settings, progress, cancel.is_set, workers=1)
        state = installed(repo)
        assert state is not None and not state.complete and state.disk_bytes > 0
        assert next(e for e in list_models(settings) if e.id == repo).status == "partial"
        with pytest.raises(NotInstalledError, match="partly downloaded"):
            resolve_local(repo)
        kept = {f"{repo}/{p.relative_to(state.path).as_posix()}" for p in state.path.rglob("*") if p.is_file()}
        assert 2 <= len(kept) < 10 and kept <= set(hub.gets)

        seen.clear()
        result = download_model(repo, settings, lambda f, t: seen.append((f, t)), workers=2)
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert "B/s" in seen[-1][1] and "of" in seen[-1][1]
    assert result.plan.missing_bytes < result.plan.total_bytes  # resumed: the finished files were not planned again
    assert all(hub.gets[name] == 1 for name in kept)  # ... nor fetched again
    assert len(hub.gets) == len(result.plan.files) == 10
    assert not any(j in name for name in hub.gets for j in JUNK)  # only what the pipeline needs
    assert {p for p, _ in result.plan.files} >= {"model_index.json", "unet/diffusion_pytorch_model.safetensors"}
    assert not any(".fp16." in p for p, _ in result.plan.files)  # CPU: full-precision files
    state = installed(repo)
    assert state is not None and state.complete and resolve_local(repo) == result.path


def test_fp16_variant_for_cuda(private_hub: Path, tiny_repos: dict[str, Path]) -> None:
    from engine.models.runtime import folder_has_fp16, plan_diffusion

    repo = "tiny/instruct-pix2pix"
    with StubHub({repo: tiny_repos[repo]}) as hub:
        result = download_model(repo, _settings(hub), fp16=True)
    weights = [p for p, _ in result.plan.files if p.endswith(".safetensors")]
    assert weights and all(".fp16." in p for p in weights)
    assert folder_has_fp16(result.path) and installed(repo).fp16
    run = plan_diffusion(result.path, torch.device("cpu"))
    assert run.dtype == torch.float32 and run.variant is None and run.max_steps == 20 and run.steps_for(50) == 20


def test_editor_refiner_and_parser_load_from_the_cache_and_run(private_hub: Path, tiny_repos: dict[str, Path],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.edit.editors import EditorSettings, make_editor
    from engine.prompting import refine
    from engine.prompting.llm_local import LocalLLMConfig, LocalLLMRefiner
    from engine.semantics.face_parser import FaceParser

    with StubHub(tiny_repos) as hub:
        for repo in tiny_repos:
            download_model(repo, _settings(hub))
    go_offline(monkeypatch)  # everything below runs from the cache alone
    settings = ModelSettings(choices={"editor": Choice("tiny/instruct-pix2pix"), "refiner": Choice("tiny/chat-lm"),
                                      "parser": Choice("tiny/face-parsing")})
    assert resolve("editor", settings).backend == "instruct-pix2pix"
    assert resolve("refiner", settings).backend == "local"
    assert resolve("parser", settings).path == resolve_local("tiny/face-parsing")

    image = torch.linspace(0.2, 0.8, 48 * 40 * 3).reshape(48, 40, 3)
    mask = torch.zeros(48, 40)
    mask[10:30, 8:30] = 1.0
    plan = refine("give him freckles").plan.model_copy(update={"steps": 2})
    for repo, backend in (("tiny/instruct-pix2pix", "instruct-pix2pix"), ("tiny/turbo", "img2img")):
        editor = make_editor(EditorSettings(backend, model=repo, size=32))
        out = editor.edit(image, mask, plan, seed=1)
        assert torch.equal(out.image[mask == 0], image[mask == 0])
        assert not torch.allclose(out.image[mask > 0], image[mask > 0], atol=1e-3)
        assert out.info["steps"] == 2 and editor.seconds_per_step(plan) > 0

    text = LocalLLMRefiner(LocalLLMConfig(model="tiny/chat-lm", max_new_tokens=24)).generate_text("make the hair blue")
    assert isinstance(text, str) and text  # a random model answers something (the JSON constraint keeps it printable)

    parser = FaceParser.from_path("tiny/face-parsing", input_size=64)
    labels = parser.parse(image)
    assert labels.shape == (48, 40) and set(labels.unique().tolist()) <= set(parser.table.tolist())


def test_disk_space_refusal_fetches_nothing(private_hub: Path, tiny_repos: dict[str, Path]) -> None:
    from engine.models.hub import free_bytes

    repo = "tiny/chat-lm"
    with StubHub({repo: tiny_repos[repo]}) as hub:
        keep = (free_bytes(private_hub) - 1000) / 1e9  # leaves less room than the model needs
        with pytest.raises(DiskSpaceError, match=r"tiny/chat-lm needs .* free"):
            download_model(repo, _settings(hub, keep_free_gb=keep))
        assert not hub.gets and installed(repo) is None


def test_unreachable_hub_and_offline_mode_keep_the_app_working(private_hub: Path, tiny_repos: dict[str, Path],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.semantics.face_parser import FaceParser

    repo = "tiny/face-parsing"
    with StubHub({repo: tiny_repos[repo]}) as hub:
        download_model(repo, _settings(hub))
        with pytest.raises(Exception, match="no such model"):
            download_model("nobody/nothing", _settings(hub))
    dead = ModelSettings(hub_endpoint=f"http://127.0.0.1:{closed_port()}", keep_free_gb=0.0)
    with pytest.raises(HubUnreachableError, match=r"cannot reach the model hub at http://127\.0\.0\.1:\d+"):
        download_model("tiny/chat-lm", dead)
    settings = dead.with_choice("parser", Choice(repo)).with_choice("editor", Choice("tiny/instruct-pix2pix"))
    assert resolve("parser", settings).path is not None  # what is on this machine keeps working
    FaceParser.from_path(repo, input_size=32).parse(torch.rand(16, 16, 3))
    editor = describe("editor", settings)  # chosen but never downloaded: the offline default, with the reason
    assert editor.backend == "procedural" and "not on this machine" in editor.reason
    with pytest.raises(OfflineError, match="offline mode is on"):
        download_model("tiny/chat-lm", ModelSettings(hub_endpoint=dead.hub_endpoint, offline=True))
    go_offline(monkeypatch)
    with pytest.raises(OfflineError, match="HF_HUB_OFFLINE"):
        download_model("tiny/chat-lm", dead)
