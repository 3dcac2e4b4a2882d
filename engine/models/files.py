"""Which files of a model repository the app needs: configs and tokenizers, and per weight folder the
safetensors weights (the fp16 variant when it is wanted and present), falling back to PyTorch .bin
files only where a folder has no safetensors. Never ONNX, TensorFlow, Flax, OpenVINO or Core ML
exports, safety checkers, GGUF, or the single-file checkpoints diffusers repos carry at their root.
"""

from __future__ import annotations

import posixpath

from engine.models.catalog import DIFFUSERS_KINDS

CONFIG_SUFFIXES: tuple[str, ...] = (".json", ".txt", ".model", ".tiktoken", ".jinja")
"""Small files a loader may read (configs, vocabularies, merges, sentencepiece models, chat templates)."""
WEIGHT_SUFFIXES: tuple[str, ...] = (".safetensors", ".bin")
SKIP_FOLDERS: frozenset[str] = frozenset({"onnx", "openvino", "flax", "tf", "coreml", "safety_checker",
                                          "mlx", "gguf", "runs", "logs", "checkpoints", ".git"})
SKIP_NAMES: frozenset[str] = frozenset({"training_args.bin", "optimizer.bin", "scheduler.bin", "rng_state.bin"})


def _skipped(path: str) -> bool:
    parts = path.split("/")
    return (any(p.lower() in SKIP_FOLDERS or p.lower().startswith(("onnx", "openvino")) for p in parts[:-1])
            or parts[-1] in SKIP_NAMES or parts[-1].startswith("."))


def is_fp16_variant(name: str) -> bool:
    """diffusion_pytorch_model.fp16.safetensors, model.fp16-00001-of-00002.safetensors…"""
    return ".fp16." in name or ".fp16-" in name


def _pick_weights(names: list[str], fp16: bool) -> list[str]:
    for suffix in WEIGHT_SUFFIXES:
        found = [n for n in names if n.endswith(suffix)]
        if not found:
            continue
        variant = [n for n in found if is_fp16_variant(n)]
        plain = [n for n in found if not is_fp16_variant(n)]
        return variant if (fp16 and variant) or not plain else plain
    return []


def select_files(files: list[str], kind: str, fp16: bool) -> list[str]:
    """The repository paths (from `files`) a loader of `kind` needs, sorted."""
    keep: list[str] = []
    weights: dict[str, list[str]] = {}
    for path in files:
        if _skipped(path):
            continue
        folder, name = posixpath.split(path)
        if name.endswith(CONFIG_SUFFIXES) and name.lower() not in ("readme.md",):
            keep.append(path)
        elif name.endswith(WEIGHT_SUFFIXES):
            if kind in DIFFUSERS_KINDS and not folder:
                continue  # single-file checkpoints beside the diffusers folders duplicate them
            weights.setdefault(folder, []).append(path)
    # the fp16 variant only when every weight folder has it: a loader takes one variant for all parts
    use_variant = fp16 and bool(weights) and all(any(is_fp16_variant(p) for p in ps) for ps in weights.values())
    for paths in weights.values():
        keep.extend(_pick_weights(paths, use_variant))
    return sorted(keep)


def has_fp16_variant(files: list[str]) -> bool:
    return any(is_fp16_variant(posixpath.basename(p)) and p.endswith(WEIGHT_SUFFIXES) for p in files)
