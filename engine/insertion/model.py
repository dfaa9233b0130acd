"""The insertion model family: Stable Diffusion 1.5 with the inpainting ControlNet.

A models-directory folder holds the pipeline as diffusers' `save_pretrained` writes it: `model_index.json`
and `unet/ vae/ text_encoder/ tokenizer/ scheduler/ controlnet/`. The hub keeps SD 1.5 and the ControlNet
in two repositories; from the hub cache, each is read in its own snapshot folder. Either way diffusers'
own `from_pretrained` reads the folders as they are: loading writes nothing. The tiny preset is built from
small configs with random weights (its byte-level tokenizer included, no hub) and saved in that layout,
so it loads through exactly the code path of the real checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from engine.loading import ModelFamily, not_a_model_dir, register_family, resolve_model_dir, resolve_repo_dirs
from engine.presets import Preset, get_preset

COMPONENT_CONFIGS = {
    "unet": "config.json",
    "vae": "config.json",
    "controlnet": "config.json",
    "text_encoder": "config.json",
    "tokenizer": "tokenizer_config.json",
    "scheduler": "scheduler_config.json",
}


def is_complete(directory: Path) -> bool:
    """The pipeline's index and every component folder with its config."""
    return (directory / "model_index.json").is_file() and all(
        (directory / name / config).is_file() for name, config in COMPONENT_CONFIGS.items())


def build_tokenizer(max_length: int = 77) -> Any:
    """A CLIP tokenizer over the 256 byte-level symbols (no merges): any text tokenizes, no download."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    alphabet = sorted(ByteLevel.alphabet())
    vocab = {symbol: index for index, symbol in enumerate([*alphabet, *(s + "</w>" for s in alphabet)])}
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def build_random(preset: Preset, directory: Path, seed: int = 0) -> None:
    """Build every component of a small-config preset with seeded random weights and save the pipeline."""
    from diffusers import (
        AutoencoderKL,
        ControlNetModel,
        DDIMScheduler,
        StableDiffusionControlNetInpaintPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    config = preset.config
    tokenizer = build_tokenizer(config["text_encoder"]["max_position_embeddings"])
    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**config["unet"])
        controlnet = ControlNetModel(**config["controlnet"])
        vae = AutoencoderKL(**config["vae"])
        text_encoder = CLIPTextModel(CLIPTextConfig(**config["text_encoder"], **special))
    # SD 1.5's noise schedule; DDIM with eta = 0 is deterministic for a given seed.
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    StableDiffusionControlNetInpaintPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, controlnet=controlnet,
        scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    ).save_pretrained(directory)


register_family(ModelFamily(
    name="sd-controlnet-inpaint",
    is_complete=is_complete,
    build_random=build_random,
    describe=lambda preset: f"Stable Diffusion {preset.pretrained} with ControlNet {preset.config['controlnet']}",
))


def model_directories(source: str | Path) -> tuple[Path, Path]:
    """(pipeline folder, ControlNet folder) of a model directory, a random-weight preset (built once) or a real
    preset (the models directory, or the two repositories' snapshots in the hub cache)."""
    path = Path(source).expanduser()
    if path.is_dir() or get_preset(str(source)).random_weights:
        directory = path if path.is_dir() else resolve_model_dir(get_preset(str(source)))
        if not is_complete(directory):
            needed = ", ".join(["model_index.json", *(f"{name}/{file}" for name, file in COMPONENT_CONFIGS.items())])
            raise not_a_model_dir(directory, "an insertion model directory", needed)
        return directory, directory / "controlnet"
    preset = get_preset(str(source))
    folders = resolve_repo_dirs(preset)
    return folders[str(preset.pretrained)], folders[preset.config["controlnet"]]


def load_pipeline(source: str | Path, dtype: torch.dtype) -> Any:
    """diffusers' ControlNet inpaint pipeline, each part read by diffusers' own `from_pretrained`; DDIM steps
    (deterministic for a seed), no safety checker."""
    from diffusers import ControlNetModel, DDIMScheduler, StableDiffusionControlNetInpaintPipeline
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    base, controlnet = model_directories(source)
    diffusers_logging.disable_progress_bar()  # a worker's log is no terminal
    transformers_logging.disable_progress_bar()
    return StableDiffusionControlNetInpaintPipeline.from_pretrained(
        base, controlnet=ControlNetModel.from_pretrained(controlnet, dtype=dtype),
        scheduler=DDIMScheduler.from_pretrained(base, subfolder="scheduler"),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False, dtype=dtype,
    )
