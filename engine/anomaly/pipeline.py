"""WinCLIP zero-shot anomaly segmentation: images + object name -> image scores and anomaly maps."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from engine.anomaly.common import DEFAULT_PRESET, normalize_object_name
from engine.anomaly.methods import WINCLIP
from engine.anomaly.prompts import NORMAL_STATES, TEMPLATES, prompt_ensemble
from engine.anomaly.scoring import association_scores, class_scores, harmonic_aggregation, harmonic_mean
from engine.anomaly.winclip import ImageEmbeddings, WinClipModel
from engine.device import select_device, select_dtype
from engine.errors import UserInputError
from engine.files import write_atomically
from engine.loading import load_open_clip
from engine.progress import ProgressCallback, ignore_progress

M = TypeVar("M")


def cache_dir() -> Path:
    """Disk cache of computed embeddings (FEWSHOT_CACHE_DIR, default ~/.cache/fewshot-studio/cache)."""
    default = Path.home() / ".cache" / "fewshot-studio" / "cache"
    return Path(os.environ.get("FEWSHOT_CACHE_DIR") or default).expanduser()


@dataclass
class AnomalyResult:
    """One image's result: `score` in [0, 1] and `anomaly_map` (H, W) float32 in [0, 1] at the input's size."""

    score: float
    anomaly_map: np.ndarray


@dataclass
class ReferenceMemory:
    """WinCLIP+ memory of normal reference images: their patch tokens and window embeddings per scale.

    Rows are grouped by reference (all of reference 0's rows, then reference 1's, ...), so one
    reference can be taken out (`without`) or read back as a test image (`embeddings_of`).
    """

    patches: torch.Tensor  # (references x patches, W)
    windows: list[torch.Tensor]  # per scale: (references x windows, D)
    count: int
    images: torch.Tensor  # (references, D) whole-image embeddings, for the zero-shot part of a reference's score

    def _rows(self, tensor: torch.Tensor, index: int) -> slice:
        per_reference = tensor.shape[0] // self.count
        return slice(index * per_reference, (index + 1) * per_reference)

    def without(self, index: int) -> ReferenceMemory:
        """The memory of every reference but one (leave-one-out calibration)."""

        def drop(tensor: torch.Tensor) -> torch.Tensor:
            rows = self._rows(tensor, index)
            return torch.cat([tensor[: rows.start], tensor[rows.stop :]])

        return ReferenceMemory(drop(self.patches), [drop(w) for w in self.windows], self.count - 1, drop(self.images))

    def embeddings_of(self, index: int) -> ImageEmbeddings:
        """Reference `index` as a batch of one test image."""
        return ImageEmbeddings(
            image=self.images[index : index + 1],
            windows=[w[self._rows(w, index)][None] for w in self.windows],
            patches=self.patches[self._rows(self.patches, index)][None],
        )


def default_batch_size(device: torch.device) -> int:
    """Images per forward pass when the caller names none: a GPU takes several, a CPU gains nothing from it."""
    return 8 if device.type == "cuda" else 1


def pixel_key(images: Sequence[Image.Image]) -> str:
    """A digest of the images' sizes and RGB pixels: equal for copies of the same images, in the same order."""
    digest = hashlib.sha256()
    for image in images:
        rgb = image.convert("RGB")
        digest.update(f"{rgb.size}".encode())
        digest.update(rgb.tobytes())
    return digest.hexdigest()


class PixelKeyedCache(Generic[M]):
    """The memories of the last `size` reference sets, keyed by their pixels: a set used again (the same
    uploads in a new job) is not encoded twice. Safe to share between threads."""

    def __init__(self, size: int = 8) -> None:
        self._items: OrderedDict[str, M] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, images: Sequence[Image.Image], build: Callable[[], M], variant: str = "") -> M:
        """The memory of these pixels (and `variant`: options that change what is built), built on first use."""
        key = f"{variant}|{pixel_key(images)}"
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = build()  # outside the lock: encoding takes seconds, other sets need not wait
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value


class OnDevice:
    """Where a loaded model lives (device, dtype) and its input normalisation there: what every anomaly pipeline
    keeps of its model."""

    def __init__(self, model: torch.nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self._mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)


def normalized_pixels(images: Sequence[Image.Image], size: tuple[int, int], mean: torch.Tensor, std: torch.Tensor,
                      dtype: torch.dtype) -> torch.Tensor:
    """Resize each whole image to (height, width) (no crop: every pixel is scored) and normalise with `mean` and
    `std` (shaped (1, 3, 1, 1), on the target device): a (B, 3, H, W) batch in `dtype`."""
    height, width = size
    arrays = [np.asarray(img.convert("RGB").resize((width, height), Image.BICUBIC)) for img in images]
    pixels = torch.from_numpy(np.stack(arrays)).to(mean.device).permute(0, 3, 1, 2).float() / 255.0
    return ((pixels - mean) / std).to(dtype)


class WinClipPipeline(OnDevice):
    """Zero-shot WinCLIP on one device. Load once (`from_pretrained` / `engine.loading.get_pipeline`), call many
    times."""

    def __init__(self, model: WinClipModel, mean: Sequence[float], std: Sequence[float], name: str) -> None:
        super().__init__(model, mean, std)
        self.model = model
        self.name = name
        self._text_cache: dict[str, torch.Tensor] = {}
        self._memories: PixelKeyedCache[ReferenceMemory] = PixelKeyedCache()
        self._text_fingerprint: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(
        cls,
        source: str | Path = DEFAULT_PRESET,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> WinClipPipeline:
        """Load from a preset name, a model directory, or 'hf-hub:org/repo'."""
        device = select_device(str(device) if device is not None else None)
        dtype = dtype or select_dtype(device, bf16_safe=WINCLIP.bf16_safe)
        clip, tokenizer, preprocess = load_open_clip(source, device, dtype)
        return cls(WinClipModel(clip, tokenizer), preprocess["mean"], preprocess["std"], name=str(source))

    # -- text ---------------------------------------------------------------------------------
    def text_embeddings(self, object_name: str) -> torch.Tensor:
        """(2, D) class embeddings (normal, anomalous) for an object.

        Computed once per (model, object name): kept in memory and on disk, so a restarted worker
        does not pay for the prompt ensemble again.
        """
        name = normalize_object_name(object_name)
        with self._lock:
            cached = self._text_cache.get(name)
            if cached is None:
                path = self._text_cache_path(name)
                cached = _read_tensor(path)
                if cached is None:
                    cached = self._encode_classes(name)
                    _write_tensor(path, cached)
                self._text_cache[name] = cached.to(self.device)
            return self._text_cache[name]

    def _text_cache_path(self, name: str) -> Path:
        if self._text_fingerprint is None:
            digest = hashlib.sha256(f"{self.dtype}|{TEMPLATES}|{NORMAL_STATES}".encode())
            for key, tensor in sorted(self.model.clip.state_dict().items()):
                if not key.startswith("visual."):
                    digest.update(key.encode())
                    digest.update(tensor.detach().float().cpu().numpy().tobytes())
            self._text_fingerprint = digest.hexdigest()[:20]
        key = hashlib.sha256(name.encode()).hexdigest()[:24]
        return cache_dir() / "text-embeddings" / self._text_fingerprint / f"{key}.pt"

    @torch.inference_mode()
    def _encode_classes(self, object_name: str) -> torch.Tensor:
        normal, anomalous = prompt_ensemble(object_name)
        embeddings = F.normalize(self.model.encode_text(normal + anomalous).float(), dim=-1)
        return torch.stack([embeddings[: len(normal)].mean(0), embeddings[len(normal) :].mean(0)])

    # -- images -------------------------------------------------------------------------------
    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """The images as the model's normalised input batch (`normalized_pixels`)."""
        return normalized_pixels(images, self.model.image_size, self._mean, self._std, self.dtype)

    # -- few-normal-shot references (WinCLIP+) -------------------------------------------------
    def reference_memory(self, references: Sequence[Image.Image], batch_size: int | None = None) -> ReferenceMemory:
        """Memory of normal reference images; computed once per set of images (keyed by their pixels)."""
        if not references:
            raise UserInputError("No reference images given: add at least one image of a good part.")
        return self._memories.get(references, lambda: self._build_memory(references, batch_size
                                                                          or default_batch_size(self.device)))

    @torch.inference_mode()
    def _build_memory(self, references: Sequence[Image.Image], batch_size: int) -> ReferenceMemory:
        patches: list[torch.Tensor] = []
        windows: list[list[torch.Tensor]] = [[] for _ in self.model.scales]
        pooled: list[torch.Tensor] = []
        for start in range(0, len(references), batch_size):
            embeddings = self.model.encode_image(self.preprocess(references[start : start + batch_size]))
            patches.append(embeddings.patches.flatten(0, 1))
            pooled.append(embeddings.image)
            for per_scale, window_embeddings in zip(windows, embeddings.windows, strict=True):
                per_scale.append(window_embeddings.flatten(0, 1))
        return ReferenceMemory(torch.cat(patches), [torch.cat(w) for w in windows], len(references), torch.cat(pooled))

    # -- scoring ------------------------------------------------------------------------------
    def score_batch(
        self, pixels: torch.Tensor, text: torch.Tensor, memory: ReferenceMemory | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Image scores (B,) and patch-grid maps (B, rows, cols) for a preprocessed batch.

        Zero-shot: harmonic mean of the image-level, 2x2 and 3x3 window scores per patch. With a
        reference memory (WinCLIP+), the few-shot map (mean over patch, 2x2 and 3x3 scales of the
        distance to the nearest reference) is averaged with it, and the image score with its maximum.
        """
        return self.score_embeddings(self.model.encode_image(pixels), text, memory)

    @torch.inference_mode()
    def score_embeddings(
        self, embeddings: ImageEmbeddings, text: torch.Tensor, memory: ReferenceMemory | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`score_batch` from already computed embeddings (a reference scored against the others)."""
        model = self.model
        image_scores = class_scores(embeddings.image, text, model.temperature)
        per_scale = [image_scores.view(-1, 1, 1).expand(-1, *model.grid)]
        for scale, window_embeddings in zip(model.scales, embeddings.windows, strict=True):
            window_scores = class_scores(window_embeddings, text, model.temperature)
            per_scale.append(harmonic_aggregation(window_scores, model.windows(scale), model.grid))
        maps = harmonic_mean(torch.stack(per_scale), dim=0)
        if memory is None:
            return image_scores, maps
        few_shot = [association_scores(embeddings.patches, memory.patches).reshape(-1, *model.grid)]
        for scale, window_embeddings, reference in zip(model.scales, embeddings.windows, memory.windows, strict=True):
            few_shot.append(harmonic_aggregation(association_scores(window_embeddings, reference),
                                                 model.windows(scale), model.grid))
        few_shot_maps = torch.stack(few_shot).mean(dim=0)
        return (image_scores + few_shot_maps.amax(dim=(-2, -1))) / 2, (maps + few_shot_maps) / 2

    def __call__(
        self,
        images: Sequence[Image.Image],
        object_name: str,
        references: Sequence[Image.Image] | ReferenceMemory | None = None,
        batch_size: int | None = None,
        progress: ProgressCallback = ignore_progress,
    ) -> list[AnomalyResult]:
        """Score images of one object; with `references` (images of good parts), WinCLIP+.

        Maps come back at each image's own size. `progress` is called after each batch (and may
        raise to cancel).
        """
        if not images:
            raise UserInputError("No images given: upload at least one image.")
        batch_size = batch_size or default_batch_size(self.device)
        progress(0.0, f"Encoding prompts for '{normalize_object_name(object_name)}'")
        text = self.text_embeddings(object_name)
        memory = references
        if references is not None and not isinstance(references, ReferenceMemory):
            progress(0.0, f"Encoding {len(references)} reference images")
            memory = self.reference_memory(references, batch_size)
        results: list[AnomalyResult] = []
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            scores, grids = self.score_batch(self.preprocess(batch), text, memory)
            for image, score, grid in zip(batch, scores, grids, strict=True):
                full = F.interpolate(grid[None, None], size=(image.height, image.width), mode="bilinear")
                results.append(AnomalyResult(float(score), full[0, 0].clamp(0, 1).cpu().numpy().astype(np.float32)))
            progress(len(results) / len(images), f"Scored {len(results)} of {len(images)} images")
        return results


def _read_tensor(path: Path) -> torch.Tensor | None:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError):
        return None  # missing or unreadable: compute again


def _write_tensor(path: Path, tensor: torch.Tensor) -> None:
    """Atomic write, so concurrent workers never read half a file; a read-only cache is skipped."""
    data = io.BytesIO()
    torch.save(tensor.detach().float().cpu(), data)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data.getvalue())
    except OSError:
        pass

