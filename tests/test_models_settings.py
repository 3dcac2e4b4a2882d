"""Model registry pieces without a hub: which files a download takes, settings and project pins on disk,
the catalog, where API keys come from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.io.atomic import FileFormatError
from engine.models import CATALOG, ROLES, Choice, ModelSettings, card, load_settings, recommended, save_settings
from engine.models.files import select_files
from engine.models.settings import pins_from_json, pins_to_json, settings_path

SD_TURBO_LIKE = [
    ".gitattributes", "LICENSE", "README.md", "model_index.json", "sd_turbo.safetensors", "output_tile.jpg",
    "scheduler/scheduler_config.json", "text_encoder/config.json", "text_encoder/model.safetensors",
    "text_encoder/model.fp16.safetensors", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
    "tokenizer/tokenizer_config.json", "tokenizer/vocab.json", "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
    "unet/diffusion_pytorch_model.bin", "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
    "vae/diffusion_pytorch_model.fp16.safetensors", "safety_checker/config.json", "safety_checker/model.safetensors",
    "feature_extractor/preprocessor_config.json", "onnx/unet/model.onnx", "flax_model.msgpack",
]


def test_select_files_takes_what_the_pipeline_needs() -> None:
    full = select_files(SD_TURBO_LIKE, "img2img", fp16=False)
    assert "unet/diffusion_pytorch_model.safetensors" in full and "model_index.json" in full
    assert "tokenizer/vocab.json" in full and "feature_extractor/preprocessor_config.json" in full
    for unwanted in ("sd_turbo.safetensors", "unet/diffusion_pytorch_model.bin", "safety_checker/model.safetensors",
                     "onnx/unet/model.onnx", "README.md", "output_tile.jpg",
                     "unet/diffusion_pytorch_model.fp16.safetensors"):
        assert unwanted not in full
    half = select_files(SD_TURBO_LIKE, "img2img", fp16=True)
    assert sorted(p for p in half if p.endswith(".safetensors")) == [
        "text_encoder/model.fp16.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
        "vae/diffusion_pytorch_model.fp16.safetensors"]
    # one folder without an fp16 file: full precision everywhere (a loader takes one variant for all parts)
    partial = [p for p in SD_TURBO_LIKE if p != "vae/diffusion_pytorch_model.fp16.safetensors"]
    assert not any(".fp16." in p for p in select_files(partial, "img2img", fp16=True))
    lm = ["config.json", "generation_config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json",
          "onnx/model.onnx", "model.gguf", "training_args.bin"]
    assert select_files(lm, "causal-lm", fp16=False) == ["config.json", "generation_config.json", "model.safetensors",
                                                         "tokenizer.json"]
    only_bin = ["config.json", "pytorch_model.bin"]
    assert select_files(only_bin, "segformer", False) == only_bin


def test_catalog_covers_every_role_with_licence_and_size() -> None:
    assert {c.role for c in CATALOG} == set(ROLES)
    for c in CATALOG:
        assert c.licence and c.size_gb > 0 and c.unlocks
    assert recommended("editor", cuda=False).cpu_friendly and recommended("editor", cuda=True).id == \
        "timbrooks/instruct-pix2pix"
    assert card("STABILITYAI/SD-TURBO").steps == 2 and card("nobody/else") is None


def test_settings_round_trip_and_pins(private_hub: Path) -> None:
    settings = (ModelSettings().with_choice("editor", Choice("timbrooks/instruct-pix2pix"))
                .with_choice("refiner", Choice("http://127.0.0.1:11434/v1", "llama3.2"))
                .with_timing("timbrooks/instruct-pix2pix|cpu|512", 3.21))
    path = save_settings(settings)
    assert path == settings_path() and path.is_relative_to(private_hub.parent.parent / "config")
    assert load_settings() == settings
    pins = pins_from_json({"editor": {"source": "stabilityai/sd-turbo", "server_model": None}}, "project")
    merged = settings.merged(pins)
    assert merged.choice("editor") == Choice("stabilityai/sd-turbo") and merged.choice("refiner").server_model == \
        "llama3.2"
    assert pins_from_json(pins_to_json(pins), "again") == pins
    assert settings.with_choice("editor", None).choice("editor") is None
    with pytest.raises(ValueError, match="parser cannot be an HTTP endpoint"):
        settings.with_choice("parser", Choice("http://127.0.0.1:9/v1"))
    with pytest.raises(ValueError, match="unknown model role 'painter'"):
        pins_from_json({"painter": "x/y"}, "project")
    path.write_text("{not json")
    with pytest.raises(FileFormatError, match="models.json"):
        load_settings()
    path.write_text(json.dumps({"format": "dynamicavatars-models", "version": 99}))
    with pytest.raises(FileFormatError, match="newer"):
        load_settings()


def test_api_keys_come_from_the_environment_or_the_keyring(private_hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.models.secrets import api_key, store_api_key

    assert not api_key("editor").present
    store_api_key("editor", "sk-keyring-123")
    info = api_key("editor")
    assert info.key == "sk-keyring-123" and info.source == "system keyring" and "sk-keyring" not in repr(info)
    monkeypatch.setenv("DYNAMICAVATARS_IMAGE_API_KEY", "sk-env-456")
    assert api_key("editor").key == "sk-env-456" and "DYNAMICAVATARS_IMAGE_API_KEY" in api_key("editor").source
    store_api_key("editor", "")
    monkeypatch.delenv("DYNAMICAVATARS_IMAGE_API_KEY")
    assert not api_key("editor").present
    with pytest.raises(ValueError, match="API keys"):
        api_key("parser")
