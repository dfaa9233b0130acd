"""The insertion model family: Stable Diffusion 1.5 with the inpainting ControlNet, stored as one directory.

Real and tiny weights share one layout, each component as its own `save_pretrained` wrote it:
`unet/ vae/ text_encoder/ tokenizer/ scheduler/ controlnet/`. The tiny preset is built from small
configs with random weights (its byte-level tokenizer included, no hub) and saved in that layout,
so it loads through exactly the code path of the real checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from engine.loading import ModelFamily, hub_snapshot, models_dir, not_a_model_dir, register_family, resolve_model_dir
from engine.presets import Preset, get_preset

COMPONENT_CONFIGS = {
    "unet": "config.json",
    "vae": "config.json",
    "controlnet": "config.json",
    "text_encoder": "config.json",
    "tokenizer": "tokenizer_config.json",
    "scheduler": "scheduler_config.json",
}
# Only what the pipeline reads from the SD 1.5 repository (it also holds multi-GB .ckpt files).
SD_FILES = ["model_index.json", "scheduler/*", "tokenizer/*", "*/config.json", "text_encoder/model.safetensors",
            "unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"]
CONTROLNET_FILES = ["config.json", "diffusion_pytorch_model.safetensors"]


def is_complete(directory: Path) -> bool:
    """Every component folder is there with its config."""
    return all((directory / name / config).is_file() for name, config in COMPONENT_CONFIGS.items())


def build_tokenizer(max_length: int = 77) -> Any:
    """A CLIP tokenizer over the 256 byte-level symbols (no merges): any text tokenizes, no download."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    alphabet = sorted(ByteLevel.alphabet())
    vocab = {symbol: index for index, symbol in enumerate([*alphabet, *(s + "</w>" for s in alphabet)])}
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def build_random(preset: Preset, directory: Path, seed: int = 0) -> None:
    """Build every component of a small-config preset with seeded random weights and save the layout."""
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    config = preset.config
    tokenizer = build_tokenizer(config["text_encoder"]["max_position_embeddings"])
    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        UNet2DConditionModel(**config["unet"]).save_pretrained(directory / "unet")
        ControlNetModel(**config["controlnet"]).save_pretrained(directory / "controlnet")
        AutoencoderKL(**config["vae"]).save_pretrained(directory / "vae")
        CLIPTextModel(CLIPTextConfig(**config["text_encoder"], **special)).save_pretrained(directory / "text_encoder")
    tokenizer.save_pretrained(directory / "tokenizer")
    # SD 1.5's noise schedule; DDIM with eta = 0 is deterministic for a given seed.
    DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                  set_alpha_to_one=False, steps_offset=1).save_pretrained(directory / "scheduler")


def fetch(preset: Preset, local_files_only: bool, local_dir: Path | None) -> Path:
    """The SD 1.5 components and the ControlNet from the hub (or its cache), in the family's layout.

    With `local_dir` both are downloaded into it; otherwise the two cached snapshots are joined
    by symbolic links in `<models dir>/.hub-layouts/<preset>`.
    """
    controlnet_repo = preset.config["controlnet"]
    if local_dir is not None:
        hub_snapshot(preset.pretrained, local_files_only, local_dir, allow_patterns=SD_FILES)
        hub_snapshot(controlnet_repo, local_files_only, local_dir / "controlnet", allow_patterns=CONTROLNET_FILES)
        return local_dir
    base = hub_snapshot(preset.pretrained, local_files_only, allow_patterns=SD_FILES)
    controlnet = hub_snapshot(controlnet_repo, local_files_only, allow_patterns=CONTROLNET_FILES)
    layout = models_dir() / ".hub-layouts" / preset.name
    layout.mkdir(parents=True, exist_ok=True)
    targets = {name: base / name for name in COMPONENT_CONFIGS} | {"controlnet": controlnet}
    for name, target in targets.items():
        link = layout / name
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(target, link, target_is_directory=True)
    return layout


register_family(ModelFamily(
    name="sd-controlnet-inpaint",
    is_complete=is_complete,
    build_random=build_random,
    fetch=fetch,
    describe=lambda preset: f"Stable Diffusion {preset.pretrained} with ControlNet {preset.config['controlnet']}",
))


def model_directory(source: str | Path) -> Path:
    """A model directory given as a path or a preset name (built or fetched as the preset says)."""
    path = Path(source).expanduser()
    directory = path if path.is_dir() else resolve_model_dir(get_preset(str(source)))
    if not is_complete(directory):
        needed = ", ".join(f"{name}/{config}" for name, config in COMPONENT_CONFIGS.items())
        raise not_a_model_dir(directory, "an insertion model directory", needed)
    return directory


def load_components(directory: Path, dtype: torch.dtype) -> dict[str, Any]:
    """Fresh modules of every component, as keyword arguments of diffusers' ControlNet inpaint pipeline."""
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    return {
        "vae": AutoencoderKL.from_pretrained(directory / "vae", torch_dtype=dtype),
        "text_encoder": CLIPTextModel.from_pretrained(directory / "text_encoder", dtype=dtype),
        "tokenizer": CLIPTokenizer.from_pretrained(directory / "tokenizer"),
        "unet": UNet2DConditionModel.from_pretrained(directory / "unet", torch_dtype=dtype),
        "controlnet": ControlNetModel.from_pretrained(directory / "controlnet", torch_dtype=dtype),
        "scheduler": DDIMScheduler.from_pretrained(directory / "scheduler"),
        "safety_checker": None,
        "feature_extractor": None,
        "requires_safety_checker": False,
    }
