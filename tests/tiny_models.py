"""Tiny randomly initialised models built from configs and saved in their hub layouts (loaded by path,
or served from the stand-in hub, tests/hub_stub.py): an InstructPix2Pix / inpainting / img2img
diffusers pipeline, a GPT-2 causal LM with an in-memory tokenizer, a SegFormer face parser.
`add_hub_extras` adds files a real repository also carries and the app must not download (ONNX
export, safety checker, single-file checkpoint, PyTorch and Flax copies of the weights)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

JUNK = {"onnx/model.onnx": b"\0" * 4000, "README.md": b"# tiny\n", ".gitattributes": b"*.bin filter=lfs\n"}
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


HUB_EXTRAS = {"safety_checker/model.safetensors": b"\0" * 3000, "single_file.safetensors": b"\0" * 5000,
              "pytorch_model.bin": b"\0" * 3000, "flax_model.msgpack": b"\0" * 2000}


def add_hub_extras(folder: Path) -> Path:
    """Add the files a real repository carries besides what the app needs (see JUNK and HUB_EXTRAS)."""
    diffusers = (folder / "model_index.json").is_file()
    for name, data in {**JUNK, **HUB_EXTRAS}.items():
        if not diffusers and name.startswith(("safety_checker", "single_file")):
            continue
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def _clip_tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in "abcdefghijklmnopqrstuvwxyz,;.":
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer.from_pretrained(str(folder), model_max_length=77)


def tiny_diffusers(folder: Path, mode: str = "instruct-pix2pix", fp16_variant: bool = False) -> Path:
    """A diffusers pipeline folder: InstructPix2Pix (UNet with 8 input channels), inpainting (9) or a plain
    SD pipeline (4, used for img2img); fp16_variant adds the *.fp16.safetensors weights beside the fp32 ones."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionInpaintPipeline,
        StableDiffusionInstructPix2PixPipeline,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(8, 16), layers_per_block=1, sample_size=8,
                                in_channels={"instruct-pix2pix": 8, "inpaint": 9}.get(mode, 4), out_channels=4,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
                                attention_head_dim=2, norm_num_groups=4)
    vae = AutoencoderKL(block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), norm_num_groups=4)
    text = CLIPTextModel(CLIPTextConfig(bos_token_id=0, eos_token_id=1, hidden_size=16, intermediate_size=32,
                                        num_attention_heads=2, num_hidden_layers=1, vocab_size=100,
                                        max_position_embeddings=77, projection_dim=16))
    tokenizer = _clip_tokenizer(folder.parent / f"{folder.name}-tok")
    cls = {"instruct-pix2pix": StableDiffusionInstructPix2PixPipeline,
           "inpaint": StableDiffusionInpaintPipeline}.get(mode, StableDiffusionPipeline)
    pipe = cls(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, scheduler=DDIMScheduler(),
               safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(str(folder))
    if fp16_variant:
        pipe.to(torch.float16).save_pretrained(str(folder), variant="fp16")
    return folder


def tiny_chat_lm(folder: Path, corpus: list[str], chat: bool = True) -> Path:
    """A GPT-2 causal LM with a byte-level BPE tokenizer trained on corpus (and a chat template when chat)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus * 3, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    if chat:
        fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(fast), n_positions=2048, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=fast.eos_token_id, eos_token_id=fast.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def tiny_segformer(folder: Path, names: list[str]) -> Path:
    """A SegFormer semantic-segmentation model whose classes are `names`."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    cfg = SegformerConfig(num_labels=len(names), id2label=dict(enumerate(names)),
                          label2id={n: i for i, n in enumerate(names)}, hidden_sizes=[8, 8, 16, 16],
                          depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 1, 1], decoder_hidden_size=16)
    torch.manual_seed(0)
    SegformerForSemanticSegmentation(cfg).save_pretrained(folder)
    return folder
