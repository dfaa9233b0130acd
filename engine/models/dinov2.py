"""DINOv2 (transformers `Dinov2Model`) as a patch-feature backbone: the "dinov2" model family.

A preset is a transformers directory (config.json, model.safetensors): `facebook/dinov2-small` from the
hub cache or the models directory, or the tiny preset built from its config with seeded random weights,
saved and loaded by path the same way. The image processor's config is not read: AnomalyDINO fixes its own
input size and ImageNet normalisation (`engine.anomaly.anomalydino`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from engine.errors import UserInputError
from engine.loading import ModelFamily, not_a_model_dir, register_family, resolve_model_dir
from engine.presets import PRESETS, Preset, get_preset

MODEL_FILES = ("config.json", "model.safetensors")


def is_dinov2_dir(path: Path) -> bool:
    """A transformers DINOv2 directory: its config and weights."""
    return all((path / name).is_file() for name in MODEL_FILES)


def build_random_dinov2(config: dict[str, Any], seed: int = 0) -> torch.nn.Module:
    """A `Dinov2Model` from a config dict with seeded random weights (same weights every time)."""
    from transformers import Dinov2Config, Dinov2Model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Dinov2Model(Dinov2Config(**config))
    return model.eval()


def save_dinov2(model: torch.nn.Module, directory: Path) -> Path:
    """Write a model in the hub's file layout (what `load_dinov2` reads)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model.save_pretrained(directory, safe_serialization=True)
    return directory


register_family(ModelFamily(
    name="dinov2",
    is_complete=is_dinov2_dir,
    build_random=lambda preset, directory: save_dinov2(build_random_dinov2(preset.config["model"]), directory),
    describe=lambda preset: f"transformers DINOv2, hub repository {preset.pretrained}",
))


def load_dinov2(source: str | Path, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """A `Dinov2Model` from a model directory or a preset name, in inference mode on `device`."""
    from transformers import Dinov2Model
    from transformers.utils import logging as hf_logging

    path = Path(source).expanduser()
    directory = path if path.is_dir() else resolve_model_dir(dinov2_preset(str(source)))
    if not is_dinov2_dir(directory):
        raise not_a_model_dir(directory, "a DINOv2 model directory", " and ".join(MODEL_FILES))
    hf_logging.disable_progress_bar()
    model = Dinov2Model.from_pretrained(directory, local_files_only=True)
    return model.to(device=device, dtype=dtype).eval().requires_grad_(False)


def dinov2_preset(name: str) -> Preset:
    """The preset `name`, refused with the accepted names when it is not a DINOv2 one."""
    preset = get_preset(name)
    if preset.family != "dinov2":
        accepted = ", ".join(sorted(p.name for p in PRESETS.values() if p.family == "dinov2"))
        raise UserInputError(f"Preset {name!r} is not a DINOv2 model; accepted: {accepted}.")
    return preset
