"""WinCLIP zero-shot anomaly segmentation: images + object name -> image scores and anomaly maps."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from engine.anomaly.prompts import prompt_ensemble
from engine.anomaly.scoring import class_scores, harmonic_aggregation, harmonic_mean
from engine.anomaly.winclip import WinClipModel
from engine.device import select_device, select_dtype
from engine.errors import UserInputError
from engine.loading import MODEL_CACHE, load_open_clip
from engine.progress import ProgressCallback, ignore_progress

MAX_OBJECT_NAME_CHARS = 60


@dataclass
class AnomalyResult:
    """One image's result: `score` in [0, 1] and `anomaly_map` (H, W) float32 in [0, 1] at the input's size."""

    score: float
    anomaly_map: np.ndarray


def normalize_object_name(object_name: str) -> str:
    """Collapse whitespace and check the name; the message says what is accepted."""
    name = re.sub(r"\s+", " ", object_name or "").strip()
    if not name:
        raise UserInputError("The object name is empty: name what the image shows, e.g. 'bottle' or 'metal plate'.")
    if len(name) > MAX_OBJECT_NAME_CHARS:
        raise UserInputError(
            f"The object name has {len(name)} characters; at most {MAX_OBJECT_NAME_CHARS} are accepted "
            "(a short noun phrase such as 'metal plate')."
        )
    return name


class WinClipPipeline:
    """Zero-shot WinCLIP on one device. Load once (`from_pretrained` / `get_pipeline`), call many times."""

    def __init__(self, model: WinClipModel, mean: Sequence[float], std: Sequence[float], name: str) -> None:
        self.model = model
        self.name = name
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self._mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)
        self._text_cache: dict[str, torch.Tensor] = {}
        self._text_lock = threading.Lock()

    @classmethod
    def from_pretrained(
        cls,
        source: str | Path = "winclip-vit-b-16-plus-240",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> WinClipPipeline:
        """Load from a preset name, a model directory, or 'hf-hub:org/repo'."""
        device = select_device(str(device) if device is not None else None)
        dtype = dtype or select_dtype(device)
        clip, tokenizer, preprocess = load_open_clip(source, device, dtype)
        return cls(WinClipModel(clip, tokenizer), preprocess["mean"], preprocess["std"], name=str(source))

    # -- text ---------------------------------------------------------------------------------
    def text_embeddings(self, object_name: str) -> torch.Tensor:
        """(2, D) class embeddings (normal, anomalous) for an object; computed once per name."""
        name = normalize_object_name(object_name)
        with self._text_lock:
            cached = self._text_cache.get(name)
            if cached is None:
                cached = self._encode_classes(name)
                self._text_cache[name] = cached
            return cached

    @torch.inference_mode()
    def _encode_classes(self, object_name: str) -> torch.Tensor:
        normal, anomalous = prompt_ensemble(object_name)
        embeddings = F.normalize(self.model.encode_text(normal + anomalous).float(), dim=-1)
        return torch.stack([embeddings[: len(normal)].mean(0), embeddings[len(normal) :].mean(0)])

    # -- images -------------------------------------------------------------------------------
    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Resize each whole image to the model's input (no crop: every pixel is scored) and normalise."""
        height, width = self.model.image_size
        arrays = [np.asarray(img.convert("RGB").resize((width, height), Image.BICUBIC)) for img in images]
        pixels = torch.from_numpy(np.stack(arrays)).to(self.device).permute(0, 3, 1, 2).float() / 255.0
        return ((pixels - self._mean) / self._std).to(self.dtype)

    @torch.inference_mode()
    def score_batch(self, pixels: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Image scores (B,) and patch-grid maps (B, rows, cols) for a preprocessed batch."""
        model = self.model
        embeddings = model.encode_image(pixels)
        image_scores = class_scores(embeddings.image, text, model.temperature)
        per_scale = [image_scores.view(-1, 1, 1).expand(-1, *model.grid)]
        for scale, window_embeddings in zip(model.scales, embeddings.windows, strict=True):
            window_scores = class_scores(window_embeddings, text, model.temperature)
            per_scale.append(harmonic_aggregation(window_scores, model.windows(scale), model.grid))
        return image_scores, harmonic_mean(torch.stack(per_scale), dim=0)

    def __call__(
        self,
        images: Sequence[Image.Image],
        object_name: str,
        batch_size: int | None = None,
        progress: ProgressCallback = ignore_progress,
    ) -> list[AnomalyResult]:
        """Score images of one object. Maps come back at each image's own size.

        `progress` is called after each batch (and may raise to cancel).
        """
        if not images:
            raise UserInputError("No images given: upload at least one image.")
        batch_size = batch_size or (8 if self.device.type == "cuda" else 1)
        progress(0.0, f"Encoding prompts for '{normalize_object_name(object_name)}'")
        text = self.text_embeddings(object_name)
        results: list[AnomalyResult] = []
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            scores, grids = self.score_batch(self.preprocess(batch), text)
            for image, score, grid in zip(batch, scores, grids, strict=True):
                full = F.interpolate(grid[None, None], size=(image.height, image.width), mode="bilinear")
                results.append(AnomalyResult(float(score), full[0, 0].clamp(0, 1).cpu().numpy().astype(np.float32)))
            progress(len(results) / len(images), f"Scored {len(results)} of {len(images)} images")
        return results


def get_pipeline(source: str | Path, device: str | None = None) -> WinClipPipeline:
    """The process-wide pipeline for a source and device: loaded on first use, then reused."""
    resolved = select_device(device)
    return MODEL_CACHE.get(
        ("winclip", str(source), str(resolved)), lambda: WinClipPipeline.from_pretrained(source, resolved)
    )
