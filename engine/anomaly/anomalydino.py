"""AnomalyDINO few-shot anomaly detection: images of good parts + test images -> image scores and anomaly maps.

Damm et al., WACV 2025, "AnomalyDINO: Boosting Patch-based Few-shot Anomaly Detection with DINOv2"
(authors' code: github dammsi/AnomalyDINO, Apache-2.0). What the authors do, and where this module differs:

- Backbone: DINOv2 ViT-S/14 (`dinov2_vits14` from torch.hub; here transformers' `facebook/dinov2-small`, the same
  weights). Features: the patch tokens of the last layer after the final layer norm (`get_intermediate_layers(x)[0]`,
  norm=True; src/backbones.py `DINOv2Wrapper.extract_features`), the class token dropped.
- Input: the shorter edge resized to 448 px (bicubic, antialiased; aspect kept), ImageNet mean and std, then
  cropped at the right and bottom to a multiple of 14 px (`prepare_image`; `--resolution 448` in
  run_anomalydino.py), so a 448 x 448 input is a 32 x 32 patch grid. Deviation: the longer edge is capped at 4x the
  shorter one's target (1792 px) so a panorama cannot ask for an unbounded number of patches.
- Memory bank: every patch of every reference image (src/detection.py `run_anomaly_detection`; references are not
  masked: its `mask_ref_images` is False in every run script). Optionally (`rotate_references`) also of each
  reference turned by 45, 90, ... 315 degrees on its own canvas, bilinear, reflected border (src/utils.py
  `augment_image`); the run script's default "agnostic" preprocessing rotates for every category, its
  "informed" one for hazelnut and screw only. Off by default here: it costs 8x the reference encoding.
- Patch score: distance to the nearest bank patch, k = 1. The authors search L2-normalised features with faiss
  (squared L2 = 2 - 2 cos) and halve it: 1 - cos, in [0, 2]. Deviation: here (1 - cos) / 2, in [0, 1], the same
  association score as WinCLIP+ (`engine.anomaly.scoring.association_scores`), so scores, maps and thresholds
  share one scale across methods; the ranking of images and pixels is unchanged (a factor of 1/2).
  The search is chunked over test patches: at most `KNN_MAX_SIMILARITIES` = 2^24 similarities (64 MiB in
  float32) exist at once, whatever the bank size.
- Masking (optional, `mask_background`, for objects on a plain background; src/backbones.py
  `compute_background_mask`): the first principal component of the image's patch features (sklearn PCA, sign
  as sklearn gives it), foreground where it exceeds 10; if that keeps at most 35 % of the centre crop (20 %
  border off each side) the sign is flipped (-pc > 10); then a 3 x 3 dilation and a 3 x 3 closing. Masked patches
  score 0 and still count in the image score. The authors choose per category whether to mask by their
  "masking test" (does the mask of the reference keep the object? src/utils.py `get_dataset_info`: on for
  capsule, hazelnut, pill, screw, toothbrush and all of VisA); here the user chooses.
  Deviation: a mask that keeps no patch keeps all (the authors' code would score such an image 0).
- Image score: mean of the top 1 % of the patch scores, at least one patch (src/post_eval.py `mean_top1p`).
- Map: the patch-score grid bilinearly resized to the image's own size, then Gaussian-smoothed with sigma 4 px
  (src/utils.py `dists2map`: cv2.resize INTER_LINEAR, scipy gaussian_filter, reflect border, truncate 4).

anomalib 2.7's `AnomalyDINOModel` (src/anomalib/models/image/anomaly_dino/torch_model.py) computes the same patch
and image scores (1 - cos; bench/anomalydino_reference.py finds them equal to ours x 2 on identical weights), but
differs from the authors where this module follows the authors: it crops the input to a multiple of 14 around the
centre, masks the references too, upsamples the grid with nearest-neighbour and blurs with a whole-sample reflect
border at its fixed input size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from engine.anomaly.methods import ANOMALYDINO, NO_REFERENCES
from engine.anomaly.pipeline import AnomalyResult, OnDevice, PixelKeyedCache, default_batch_size, normalized_pixels
from engine.anomaly.scoring import KNN_MAX_SIMILARITIES, association_scores
from engine.anomaly.thresholds import NEEDS_TWO_GOOD
from engine.device import select_device, select_dtype
from engine.errors import UserInputError
from engine.models.dinov2 import load_dinov2
from engine.presets import ANOMALYDINO_RESOLUTION, get_preset
from engine.progress import ProgressCallback, ignore_progress

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MAX_ASPECT = 4  # the longer edge is at most this many times the shorter edge's target size
TOP_FRACTION = 0.01  # image score: mean of the top 1 % of patch scores
SMOOTHING_SIGMA = 4.0  # px, at the image's own size
MASK_THRESHOLD = 10.0  # on the first principal component of the patch features
MASK_BORDER = 0.2  # the centre crop drops this fraction of the grid on each side
MASK_CENTRE_KEPT = 0.35  # a mask keeping at most this much of the centre crop has the wrong sign
MASK_KERNEL = 3  # dilation and closing
ROTATIONS = (0, 45, 90, 135, 180, 225, 270, 315)  # degrees, the authors' augment_image


@dataclass(frozen=True)
class DinoMemory:
    """The patch features of the good parts (the memory bank), grouped by reference image.

    `patches` are the raw last-layer features (masking reads them; the search normalises them): all of
    reference 0's views first (the image, then its rotations when `views` > 1), then reference 1's, ...;
    `grids` are their patch grids (rows, cols) and `sizes` the images' (width, height), so a reference can be
    scored as a test image (`leave_one_out`).
    """

    patches: torch.Tensor  # (views x sum of rows * cols, D) float32
    grids: tuple[tuple[int, int], ...]
    sizes: tuple[tuple[int, int], ...]
    views: int = 1  # each reference as given, or with its rotations (len(ROTATIONS))

    @property
    def count(self) -> int:
        return len(self.grids)

    def _rows(self, index: int) -> slice:
        """Every view of reference `index`."""
        start = self.views * sum(rows * cols for rows, cols in self.grids[:index])
        rows, cols = self.grids[index]
        return slice(start, start + self.views * rows * cols)

    def features_of(self, index: int) -> torch.Tensor:
        """Reference `index` as given (not rotated)."""
        rows, cols = self.grids[index]
        return self.patches[self._rows(index)][: rows * cols]

    def without(self, index: int) -> DinoMemory:
        """The memory of every reference but one."""
        rows = self._rows(index)
        others = [i for i in range(self.count) if i != index]
        return DinoMemory(torch.cat([self.patches[: rows.start], self.patches[rows.stop:]]),
                          tuple(self.grids[i] for i in others), tuple(self.sizes[i] for i in others), self.views)


def rotated(image: Image.Image, angle: float) -> Image.Image:
    """The image turned counter-clockwise by `angle` degrees about its centre on the same canvas, bilinear, the
    border mirrored (the authors' cv2.warpAffine with its default reflecting border)."""
    pixels = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)[None].float()
    height, width = pixels.shape[-2:]
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    # output -> input sampling in grid_sample's [-1, 1] coordinates, which scale x by width and y by height
    theta = torch.tensor([[[cos, -sin * height / width, 0.0], [sin * width / height, cos, 0.0]]])
    grid = F.affine_grid(theta, [1, 3, height, width], align_corners=False)
    turned = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return Image.fromarray(turned[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy())


def input_size(width: int, height: int, resolution: int, patch: int) -> tuple[int, int, int, int]:
    """(resized width, height, cropped width, height): the shorter edge to `resolution` (torchvision's
    `Resize(int)` arithmetic), the longer capped at MAX_ASPECT x `resolution`, both cropped to a multiple of
    `patch` (at least one patch)."""
    short, long = sorted((width, height))
    new_short, new_long = resolution, int(resolution * long / short)
    if new_long > MAX_ASPECT * resolution:
        new_short, new_long = max(patch, int(MAX_ASPECT * resolution * short / long)), MAX_ASPECT * resolution
    new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
    return new_w, new_h, new_w - new_w % patch, new_h - new_h % patch


def top_fraction_mean(scores: torch.Tensor) -> torch.Tensor:
    """Image score from its patch scores (..., n): the mean of the top 1 % (at least one patch)."""
    count = max(int(scores.shape[-1] * TOP_FRACTION), 1)
    return scores.topk(count, dim=-1).values.mean(dim=-1)


def background_mask(features: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """The paper's zero-shot foreground mask (rows, cols) of one image from its raw patch features (n, D)."""
    centred = features.float() - features.float().mean(dim=0)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    axis = vh[0] * torch.sign(vh[0][vh[0].abs().argmax()])  # sklearn's sign: largest loading positive
    first = (centred @ axis).reshape(grid)
    mask = first > MASK_THRESHOLD
    rows, cols = grid
    centre = mask[int(rows * MASK_BORDER):int(rows * (1 - MASK_BORDER)),
                  int(cols * MASK_BORDER):int(cols * (1 - MASK_BORDER))]
    if centre.sum() <= centre.numel() * MASK_CENTRE_KEPT:
        mask = -first > MASK_THRESHOLD
    mask = _dilate(mask)
    mask = ~_dilate(~_dilate(mask))  # closing: dilation then erosion (outside the grid never erodes)
    return mask if mask.any() else torch.ones_like(mask)


def _dilate(mask: torch.Tensor) -> torch.Tensor:
    pad = MASK_KERNEL // 2
    return F.max_pool2d(mask[None, None].float(), MASK_KERNEL, stride=1, padding=pad)[0, 0] > 0


def gaussian_smooth(image: torch.Tensor, sigma: float = SMOOTHING_SIGMA) -> torch.Tensor:
    """scipy.ndimage.gaussian_filter(image, sigma) for a (H, W) tensor: separable kernel of radius
    int(4 sigma + 0.5), 'reflect' border (the edge pixel repeated: d c b a | a b c d), any image size."""
    radius = int(4 * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32, device=image.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(image.dtype)
    for dim in (0, 1):
        size = image.shape[dim]
        index = torch.arange(-radius, size + radius, device=image.device) % (2 * size)
        index = torch.where(index >= size, 2 * size - 1 - index, index)
        padded = image.index_select(dim, index).movedim(dim, -1)
        smoothed = F.conv1d(padded.reshape(-1, 1, padded.shape[-1]), kernel.view(1, 1, -1))
        image = smoothed.reshape(*padded.shape[:-1], size).movedim(-1, dim)
    return image


def anomaly_map(grid_scores: torch.Tensor, width: int, height: int) -> np.ndarray:
    """The patch-score grid at the image's size: bilinear resize, Gaussian smoothing; float32 in [0, 1]."""
    full = F.interpolate(grid_scores[None, None].float(), size=(height, width), mode="bilinear")[0, 0]
    return gaussian_smooth(full).clamp(0, 1).cpu().numpy().astype(np.float32)


def patch_scores(features: torch.Tensor, grid: tuple[int, int], bank: torch.Tensor, mask_background: bool,
                 max_similarities: int = KNN_MAX_SIMILARITIES) -> torch.Tensor:
    """(rows, cols) nearest-neighbour scores of one image's patches (n, D) against the bank (M, D); masked
    patches score 0."""
    if not mask_background:
        return association_scores(features, bank, max_similarities).reshape(grid)
    keep = background_mask(features, grid).flatten()
    scores = torch.zeros(keep.shape, device=features.device)
    scores[keep] = association_scores(features[keep], bank, max_similarities)
    return scores.reshape(grid)


class AnomalyDinoPipeline(OnDevice):
    """AnomalyDINO on one device. Load once (`from_pretrained` / `engine.loading.get_pipeline`), call many times."""

    def __init__(self, model: torch.nn.Module, resolution: int = ANOMALYDINO_RESOLUTION, name: str = "") -> None:
        super().__init__(model, IMAGENET_MEAN, IMAGENET_STD)
        self.model = model
        self.resolution = resolution
        self.name = name
        self.patch = int(model.config.patch_size)
        self._memories: PixelKeyedCache[DinoMemory] = PixelKeyedCache()

    @classmethod
    def from_pretrained(
        cls,
        source: str | Path = "anomalydino-dinov2-small",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> AnomalyDinoPipeline:
        """Load from a preset name or a model directory (transformers' layout); a preset may set its input
        size (`config["resolution"]`), a directory runs at the paper's 448 px."""
        device = select_device(str(device) if device is not None else None)
        dtype = dtype or select_dtype(device, bf16_safe=ANOMALYDINO.bf16_safe)
        model = load_dinov2(source, device, dtype)
        resolution = ANOMALYDINO_RESOLUTION
        if not Path(source).expanduser().is_dir():
            resolution = get_preset(str(source)).config.get("resolution", ANOMALYDINO_RESOLUTION)
        return cls(model, resolution, name=str(source))

    # -- features -----------------------------------------------------------------------------
    @torch.inference_mode()
    def features(self, images: Sequence[Image.Image]) -> list[tuple[torch.Tensor, tuple[int, int]]]:
        """(patch features (rows * cols, D) float32, grid) of each image (sizes: see the module docstring); images
        of one input size share a forward pass."""
        sizes = [input_size(*image.size, self.resolution, self.patch) for image in images]
        found: dict[int, tuple[torch.Tensor, tuple[int, int]]] = {}
        for size in dict.fromkeys(sizes):
            indices = [i for i, other in enumerate(sizes) if other == size]
            width, height, crop_width, crop_height = size
            pixels = normalized_pixels([images[i] for i in indices], (height, width), self._mean, self._std,
                                       self.dtype)[..., :crop_height, :crop_width]
            tokens = self.model(pixel_values=pixels).last_hidden_state[:, 1:].float()  # the class token dropped
            grid = (crop_height // self.patch, crop_width // self.patch)
            for i, patches in zip(indices, tokens, strict=True):
                found[i] = (patches, grid)
        return [found[i] for i in range(len(images))]

    # -- references -----------------------------------------------------------------------------
    def reference_memory(self, references: Sequence[Image.Image], batch_size: int | None = None,
                         rotate: bool = False) -> DinoMemory:
        """The memory bank of the good parts, with each one's rotations by 45-degree steps when `rotate` (for
        parts that lie in any orientation: 8 times the patches and the encoding time); computed once per set of
        images (keyed by their pixels)."""
        if not references:
            raise UserInputError(NO_REFERENCES)
        return self._memories.get(references, lambda: self._build_memory(
            references, batch_size or default_batch_size(self.device), ROTATIONS if rotate else (0,)),
            variant=f"rotations={rotate}")

    def _build_memory(self, references: Sequence[Image.Image], batch_size: int,
                      angles: Sequence[int]) -> DinoMemory:
        views = [rotated(image, angle) if angle else image for image in references for angle in angles]
        encoded = [item for start in range(0, len(views), batch_size)
                   for item in self.features(views[start:start + batch_size])]
        return DinoMemory(torch.cat([patches for patches, _ in encoded]),
                          tuple(grid for _, grid in encoded[::len(angles)]),
                          tuple(image.size for image in references), len(angles))

    # -- scoring --------------------------------------------------------------------------------
    def _score(self, features: torch.Tensor, grid: tuple[int, int], size: tuple[int, int], bank: torch.Tensor,
               mask_background: bool) -> AnomalyResult:
        scores = patch_scores(features, grid, bank, mask_background)
        return AnomalyResult(float(top_fraction_mean(scores.flatten())), anomaly_map(scores, *size))

    @torch.inference_mode()
    def __call__(
        self,
        images: Sequence[Image.Image],
        references: Sequence[Image.Image] | DinoMemory,
        batch_size: int | None = None,
        progress: ProgressCallback = ignore_progress,
        mask_background: bool = False,
        rotate_references: bool = False,
    ) -> list[AnomalyResult]:
        """Score each image against the good parts; maps come back at each image's own size.

        `mask_background` scores only the object's patches (see the module docstring); `rotate_references`
        builds the memory with the rotated good parts (`reference_memory`; a given memory is used as built).
        `progress` is called after each batch (and may raise to cancel).
        """
        if not images:
            raise UserInputError("No images given: upload at least one image.")
        batch_size = batch_size or default_batch_size(self.device)
        memory = references
        if not isinstance(memory, DinoMemory):
            progress(0.0, f"Encoding {len(memory)} reference images")
            memory = self.reference_memory(memory, batch_size, rotate_references)
        results: list[AnomalyResult] = []
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            for image, (features, grid) in zip(batch, self.features(batch), strict=True):
                results.append(self._score(features, grid, image.size, memory.patches, mask_background))
            progress(len(results) / len(images), f"Scored {len(results)} of {len(images)} images")
        return results

    @torch.inference_mode()
    def leave_one_out(self, memory: DinoMemory, mask_background: bool = False) -> tuple[list[float], list[float]]:
        """(image scores, map maxima) of each good part scored against the others, for
        `engine.anomaly.thresholds.calibrated_threshold`; uses the features already in the memory."""
        if memory.count < 2:
            raise UserInputError(NEEDS_TWO_GOOD)
        scores, maxima = [], []
        for index in range(memory.count):
            result = self._score(memory.features_of(index), memory.grids[index], memory.sizes[index],
                                 memory.without(index).patches, mask_background)
            scores.append(result.score)
            maxima.append(float(result.anomaly_map.max()))
        return scores, maxima
