"""MuSc zero-shot anomaly classification and segmentation: the images of a set score each other.

Li et al., ICLR 2024, "Zero-Shot Industrial Anomaly Classification and Segmentation with Mutual Scoring of the
Unlabeled Images"; authors' code github.com/xrli-U/MuSc (MIT): configs/musc.yaml, models/musc.py and
models/modules/_MSM.py at commit b1847817, models/modules/_LNAMD.py and _RsCIN.py at e5457a61. What they do, and
what is done here:

- Backbone (configs/musc.yaml): open_clip ViT-L-14-336 "openai", images resized to 518 px (a 37 x 37 grid of
  14 px patches; the positional embedding resized bicubically, as their open_clip copy's `resize_pos_embed`
  does at load), patch tokens of blocks 5, 11, 17, 23 (0-based: `feature_layers`, +1 in models/musc.py
  `features_list`, read after each residual block, before `ln_post`), r_list (1, 3, 5). Here: the same
  (`SETTINGS`; OpenAI's weights need QuickGELU, which `engine.loading` takes from the tag); the positional
  embedding is resized at run time for the grid of the input, so the loaded model stays the one the loader
  returns. Images are resized whole (no centre crop: every pixel is scored, as WinCLIP here); the authors
  resize the short side and crop, the same on square images.
- LNAMD (models/modules/_LNAMD.py `LNAMD._embed`): the class token is dropped, each layer's patch map of one
  image is standardised over all of (C, H, W) (a fresh `nn.LayerNorm`, no affine), then every patch becomes the
  mean of its r x r neighbourhood (patchcore's `Unfold` with zero padding (r - 1) / 2, then an adaptive average
  pool of each channel's r*r values: zeros outside the grid count in the mean). models/musc.py then divides each
  feature by its L2 norm. Here: `standardize`, `lnamd` (an `avg_pool2d` that counts the padding, the same
  arithmetic) and `F.normalize`.
- MSM (models/modules/_MSM.py `compute_scores_fast`, called with topmin_min=0, topmin_max=0.3 from
  models/musc.py): for each patch of image i and each other image j, the L2 distance (`torch.cdist`) to j's
  nearest patch; over the N - 1 other images, the mean of the values ranked [int(0 (N-1)), int(0.3 (N-1))) from
  the smallest (the interval average: other anomalous images, far from everything, do not vote). Maps are the
  mean over layers, then over r. Here: the same, with the distance divided by 2: features are unit vectors, so
  the L2 distance is in [0, 2] and distance / 2 = sqrt((1 - cos) / 2) is in [0, 1], in the same order as the
  authors' (a scale, not a reordering; means of it stay in [0, 1]). The authors run one image against all
  others at once (an (N-1) P x P tensor); `mutual_scores` runs a chunk of images against one other image at a
  time (see its memory bound), in float32 like `cdist` under their autocast.
- Image score before RsCIN (models/musc.py): the maximum of the map upsampled to 518 px (bilinear,
  align_corners=True). Here: the maximum of the patch-grid map (bilinear upsampling never exceeds it: the same
  up to interpolation between patch centres); maps come back at each image's own size, bilinear with
  align_corners=True as theirs.
- RsCIN (models/modules/_RsCIN.py, k_list (1, 2, 3) for MVTec AD and BTAD, (1, 8, 9) for VisA): scores
  min-max normalised over the set, similarity W = cls @ cls.T of the L2-normalised image embeddings, per k each
  row keeps its k largest entries, rows normalised to sum 1, new score = W @ score, mean over k. Here: k_list
  (1, 2, 3) (their default for every dataset but VisA); no min-max normalisation: the smoothing is linear with
  rows summing to 1, so normalising before it is an affine map of the result (same order, same AUROC) and
  without it the scores keep the absolute meaning of the maps (distance / 2, in [0, 1]), which a threshold needs.
  Negative similarities are clipped to 0 and each image's similarity with itself is 1, so every row's weights
  are a convex combination (scores stay in [0, 1]); CLIP image embeddings of one product are positively
  similar, so this changes nothing there.

Smallest set (`MIN_SET_SIZE` = 5): int(0.3 (N - 1)) is 0 below 5 images, an empty interval (the authors' mean of
it is NaN); from 5 on, each patch is scored by at least its nearest other image.

Cost: MSM is N^2 P^2 C multiply-adds per layer and r (N images, P patches, C channels), in float32: the set size
matters more than the model. ViT-L at 518 px: about 1.8 PFLOP in all for N = 200 (tens of seconds on a GPU),
1.2 TFLOP for N = 5 (a few minutes with the encoding on a 2-core CPU); it grows with N^2.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from engine.anomaly.methods import MUSC
from engine.anomaly.pipeline import AnomalyResult, OnDevice, default_batch_size, normalized_pixels
from engine.device import select_device, select_dtype
from engine.errors import UserInputError
from engine.limits import max_set_feature_bytes
from engine.loading import load_open_clip
from engine.presets import PRESETS
from engine.progress import ProgressCallback, ignore_progress, sub_progress
from engine.weights import human_size

DEFAULT_PRESET = MUSC.default_preset
INTERVAL = (0.0, 0.3)  # MSM's interval average: topmin_min, topmin_max of models/musc.py
RSCIN_K = (1, 2, 3)  # RsCIN's k_list of models/musc.py for MVTec AD and BTAD
MIN_SET_SIZE = MUSC.min_images  # the smallest set whose interval [0, int(0.3 * (N-1))) holds one other image


@dataclass(frozen=True)
class MuscSettings:
    """What MuSc reads of one backbone: the blocks whose patch tokens it compares (0-based), the input size
    (None: the model's own), and the LNAMD neighbourhood sizes."""

    feature_layers: tuple[int, ...]
    image_size: int | None = None
    r_list: tuple[int, ...] = (1, 3, 5)

    @classmethod
    def for_depth(cls, depth: int) -> MuscSettings:
        """One layer at the end of each quarter of the blocks, at the model's own size: the authors' choice on
        ViT-L (5, 11, 17, 23 of 24) carried to another depth, for a model loaded from a folder."""
        return cls(tuple(sorted({max(0, depth * q // 4 - 1) for q in (1, 2, 3, 4)})))


SETTINGS: dict[str, MuscSettings] = {  # keyed by the preset's architecture
    "ViT-L-14-336": MuscSettings(feature_layers=(5, 11, 17, 23), image_size=518),
    # 224 px on a model built for 240: the positional-embedding resizing runs in the tests
    "musc-tiny": MuscSettings(feature_layers=(0, 1, 2, 3), image_size=224),
}


# -- the method's arithmetic, on tensors ---------------------------------------------------------------------
def standardize(tokens: torch.Tensor) -> torch.Tensor:
    """Each image's patch map (B, P, C) standardised over all its P x C values (LNAMD's LayerNorm), in float32."""
    return F.layer_norm(tokens.float(), tokens.shape[-2:])


def lnamd(tokens: torch.Tensor, grid: tuple[int, int], r: int) -> torch.Tensor:
    """Local neighbourhood aggregation at degree r: each patch of (B, P, C) tokens on a (rows, cols) grid
    becomes the mean of its r x r neighbourhood, zeros outside the grid counting in the mean (the authors'
    zero-padded unfold). r = 1 is the identity; r must be odd (the neighbourhood is centred)."""
    if r % 2 != 1:
        raise ValueError(f"LNAMD's r must be odd, got {r}")
    if r == 1:
        return tokens
    batch, _, channels = tokens.shape
    maps = tokens.transpose(1, 2).reshape(batch, channels, *grid)
    pooled = F.avg_pool2d(maps, r, stride=1, padding=r // 2, count_include_pad=True)
    return pooled.reshape(batch, channels, -1).transpose(1, 2)


def interval_bounds(others: int, interval: tuple[float, float] = INTERVAL) -> tuple[int, int]:
    """Ranks [low, high) of the interval average over `others` images, as the authors round them."""
    low, high = int(others * interval[0]), int(others * interval[1])
    return min(low, high), max(low, high)


def mutual_scores(
    features: torch.Tensor,
    chunk_size: int = 1,
    interval: tuple[float, float] = INTERVAL,
    progress: ProgressCallback = ignore_progress,
) -> torch.Tensor:
    """MSM: (N, P) patch scores in [0, 1] of a set of L2-normalised features (N, P, C), each image against the
    others: per other image, the distance / 2 to its nearest patch; then the mean of the ranks `interval_bounds`.

    Memory: besides `features`, O(chunk_size x P x (P + N)) float32 (one chunk's similarities to one other
    image, and its distances to every image); never N x N x P x P. `progress` is called after each chunk and
    may raise to cancel. Chunking changes no result.
    """
    count, patches, _ = features.shape
    low, high = interval_bounds(count - 1, interval)
    if high <= low:
        raise ValueError(f"Mutual scoring of {count} images leaves no other image in the interval {interval}")
    scores = torch.empty(count, patches, dtype=torch.float32, device=features.device)
    for start in range(0, count, chunk_size):
        queries = features[start : start + chunk_size].float()
        nearest = torch.empty(len(queries), patches, count, dtype=torch.float32, device=features.device)
        for other in range(count):
            nearest[:, :, other] = (queries @ features[other].float().T).amax(dim=-1)
        for offset in range(len(queries)):
            nearest[offset, :, start + offset] = float("-inf")  # an image does not score itself: sorts last
        distances = (2 - 2 * nearest).clamp(min=0).sqrt() / 2
        ranked = distances.sort(dim=-1).values
        scores[start : start + len(queries)] = ranked[:, :, low:high].mean(dim=-1)
        done = start + len(queries)
        progress(done / count, f"Mutual scoring: {done} of {count} images")
    return scores


def rscin(image_scores: torch.Tensor, image_features: torch.Tensor, k_list: Sequence[int] = RSCIN_K) -> torch.Tensor:
    """RsCIN: each image's score (N,) replaced by the mean over k of the similarity-weighted mean score of its k
    most similar images (itself included), from L2-normalised image embeddings (N, D). Scores in [0, 1] stay in
    [0, 1]."""
    count = len(image_scores)
    similarity = (image_features.float() @ image_features.float().T).clamp(min=0).fill_diagonal_(1.0)
    scores = image_scores.float()
    smoothed = torch.zeros_like(scores)
    for k in k_list:
        values, indices = similarity.topk(min(k, count), dim=1)
        weights = torch.zeros_like(similarity).scatter_(1, indices, values)
        smoothed += (weights / weights.sum(dim=1, keepdim=True)) @ scores
    return smoothed / len(k_list)


def set_maps(
    layers: Sequence[torch.Tensor],
    grid: tuple[int, int],
    r_list: Sequence[int],
    chunk_size: int,
    device: torch.device,
    progress: ProgressCallback = ignore_progress,
) -> torch.Tensor:
    """MuSc's maps (N, rows, cols) in [0, 1] of a set, from each layer's standardised patch tokens (N, P, C), kept
    wherever they are (the CPU): per r and layer, LNAMD and L2 normalisation in chunks onto `device` (in the
    tokens' dtype), mutual scoring, and the mean over all of them."""
    count = len(layers[0])
    maps = torch.zeros(count, grid[0] * grid[1], dtype=torch.float32, device=device)
    steps = [(r, tokens) for r in r_list for tokens in layers]
    for step, (r, tokens) in enumerate(steps):
        features = torch.empty(tokens.shape, dtype=tokens.dtype, device=device)
        for start in range(0, count, chunk_size):
            chunk = tokens[start : start + chunk_size].to(device).float()
            features[start : start + chunk_size] = F.normalize(lnamd(chunk, grid, r), dim=-1)
        scoring = sub_progress(progress, step / len(steps), (step + 1) / len(steps))
        maps += mutual_scores(features, chunk_size, progress=_suffixed(scoring, f"(pass {step + 1} of {len(steps)})"))
    return (maps / len(steps)).reshape(count, *grid)


# -- the model -----------------------------------------------------------------------------------------------
class MuscPipeline(OnDevice):
    """MuSc on one device. Load once (`from_pretrained` / `engine.loading.get_pipeline`), call with a set."""

    def __init__(self, clip: nn.Module, mean: Sequence[float], std: Sequence[float], settings: MuscSettings,
                 name: str) -> None:
        visual = getattr(clip, "visual", None)
        needed = ("conv1", "class_embedding", "positional_embedding", "ln_pre", "transformer", "_pool")
        if visual is None or any(not hasattr(visual, attr) for attr in needed):
            raise UserInputError("MuSc needs an open_clip CLIP model with a VisionTransformer visual tower.")
        depth = len(visual.transformer.resblocks)
        if any(not 0 <= layer < depth for layer in settings.feature_layers):
            raise UserInputError(f"MuSc reads blocks {settings.feature_layers}, but the model has {depth}.")
        super().__init__(clip, mean, std)
        self.clip, self.settings, self.name = clip, settings, name
        side = settings.image_size
        self.image_size: tuple[int, int] = (side, side) if side else tuple(visual.image_size)
        self._positions: dict[tuple[int, int], torch.Tensor] = {}
        self._lock = threading.Lock()  # hooks on a shared model: one forward pass at a time reads them

    @classmethod
    def from_pretrained(
        cls,
        source: str | Path = DEFAULT_PRESET,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> MuscPipeline:
        """Load from a preset name (its architecture's `SETTINGS`), a model directory or 'hf-hub:org/repo'
        (`MuscSettings.for_depth`)."""
        device = select_device(str(device) if device is not None else None)
        dtype = dtype or select_dtype(device, bf16_safe=MUSC.bf16_safe)
        clip, _, preprocess = load_open_clip(source, device, dtype)
        preset = PRESETS.get(str(source))
        settings = SETTINGS.get(preset.architecture) if preset else None
        if settings is None:
            settings = MuscSettings.for_depth(len(clip.visual.transformer.resblocks))
        return cls(clip, preprocess["mean"], preprocess["std"], settings, name=str(source))

    def _positional_embedding(self, grid: tuple[int, int]) -> torch.Tensor:
        """The positional embedding resized to a patch grid (bicubic, antialiased, as open_clip's resize at load)."""
        if grid not in self._positions:
            visual = self.clip.visual
            embedding = visual.positional_embedding
            native = tuple(visual.grid_size)
            if grid == native:
                self._positions[grid] = embedding
            else:
                patches = embedding[1:].float().reshape(1, *native, -1).permute(0, 3, 1, 2)
                patches = F.interpolate(patches, size=grid, mode="bicubic", antialias=True, align_corners=False)
                patches = patches.permute(0, 2, 3, 1).reshape(grid[0] * grid[1], -1).to(embedding.dtype)
                self._positions[grid] = torch.cat([embedding[:1], patches])
        return self._positions[grid]

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """The images as the model's normalised input batch at MuSc's input size (`normalized_pixels`)."""
        return normalized_pixels(images, self.image_size, self._mean, self._std, self.dtype)

    @torch.inference_mode()
    def encode(self, pixels: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor, tuple[int, int]]:
        """Patch tokens (B, P, C) of each feature layer (class token dropped), L2-normalised image embeddings
        (B, D), and the patch grid, for a normalised batch (B, 3, H, W).

        The tokens are read by forward hooks on the chosen residual blocks, removed before returning. open_clip's
        transformer runs batch-first from 2.26 on, (L, N, D) before: a block's output is turned batch-first here
        whichever it is (attention across the batch instead of the tokens would go unnoticed otherwise).
        """
        visual = self.clip.visual
        x = visual.conv1(pixels)
        grid = (x.shape[-2], x.shape[-1])
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1), x], dim=1)
        x = visual.ln_pre(visual.patch_dropout(x + self._positional_embedding(grid).to(x.dtype)))
        transformer = visual.transformer
        batch_first = getattr(transformer, "batch_first", True)
        captured: dict[int, torch.Tensor] = {}

        def keep(layer: int):
            def hook(module: nn.Module, args: object, output: torch.Tensor) -> None:
                tokens = output if batch_first else output.transpose(0, 1)
                captured[layer] = tokens[:, 1:]

            return hook

        with self._lock:
            handles = [transformer.resblocks[layer].register_forward_hook(keep(layer))
                       for layer in self.settings.feature_layers]
            try:
                x = transformer(x)
            finally:
                for handle in handles:
                    handle.remove()
        pooled, _ = visual._pool(x)
        embeddings = pooled @ visual.proj if visual.proj is not None else pooled
        tokens = [captured[layer] for layer in self.settings.feature_layers]
        return tokens, F.normalize(embeddings.float(), dim=-1), grid

    def set_memory(self, count: int) -> int:
        """Bytes a set of `count` images keeps: every feature layer's tokens (CPU, model dtype) plus one layer's
        aggregated features on the device while it is scored."""
        visual = self.clip.visual
        patches = (self.image_size[0] // visual.patch_size[0]) * (self.image_size[1] // visual.patch_size[1])
        per_layer = patches * visual.transformer.width * self.dtype.itemsize
        return count * per_layer * (len(self.settings.feature_layers) + 1)

    @torch.inference_mode()
    def __call__(
        self,
        images: Sequence[Image.Image],
        batch_size: int | None = None,
        progress: ProgressCallback = ignore_progress,
    ) -> list[AnomalyResult]:
        """Score a set of images of one product against each other (at least `MIN_SET_SIZE`): scores and maps
        (each at its image's size, float32) in [0, 1], the map's unit being distance / 2 between unit features.

        `batch_size` images go through the model at once, and through mutual scoring as one chunk. The set's
        standardised patch tokens stay on the CPU in the model's dtype: layers x P x C values per image (ViT-L at
        518 px: 4 x 1369 x 1024, 11.2 MB in float16, 22.4 MB in float32); mutual scoring holds one layer's
        aggregated features of the whole set on the device (N x P x C). `progress` is called after each batch
        and chunk, and may raise to cancel.
        """
        if len(images) < MIN_SET_SIZE:
            raise UserInputError(
                f"MuSc scores images against each other: give at least {MIN_SET_SIZE} images or frames "
                f"({len(images)} given), or use WinCLIP for a single image.")
        needed, allowed = self.set_memory(len(images)), max_set_feature_bytes()
        if needed > allowed:
            raise UserInputError(
                f"MuSc keeps the features of the whole set: {len(images)} images need about {human_size(needed)}, "
                f"more than the {human_size(allowed)} allowed (FEWSHOT_MUSC_MEMORY_MB). Give at most "
                f"{allowed * len(images) // needed} images, or sample fewer frames (a larger stride, fewer frames "
                "per second).")
        batch_size = batch_size or default_batch_size(self.device)
        count = len(images)
        stored: list[torch.Tensor] | None = None
        embeddings: list[torch.Tensor] = []
        encoding = sub_progress(progress, 0.0, 0.3)
        for start in range(0, count, batch_size):
            batch = images[start : start + batch_size]
            tokens, pooled, grid = self.encode(self.preprocess(batch))
            if stored is None:
                stored = [torch.empty(count, t.shape[1], t.shape[2], dtype=self.dtype) for t in tokens]
            for memory, layer_tokens in zip(stored, tokens, strict=True):
                memory[start : start + len(batch)] = standardize(layer_tokens).to(self.dtype).cpu()
            embeddings.append(pooled)
            done = min(start + batch_size, count)
            encoding(done / count, f"Encoded {done} of {count} images")
        maps = set_maps(stored, grid, self.settings.r_list, batch_size, self.device, sub_progress(progress, 0.3, 1.0))
        scores = rscin(maps.flatten(1).amax(dim=1), torch.cat(embeddings))
        return [AnomalyResult(float(score), full_size_map(grid_map, image))
                for score, grid_map, image in zip(scores.clamp(0, 1).cpu(), maps, images, strict=True)]


def _suffixed(callback: ProgressCallback, suffix: str) -> ProgressCallback:
    return lambda fraction, message: callback(fraction, f"{message} {suffix}")


def full_size_map(grid_map: torch.Tensor, image: Image.Image) -> np.ndarray:
    """A patch-grid map upsampled to the image's own size (bilinear, align_corners=True as the authors'), float32."""
    full = F.interpolate(grid_map[None, None], size=(image.height, image.width), mode="bilinear", align_corners=True)
    return full[0, 0].clamp(0, 1).cpu().numpy().astype(np.float32)
