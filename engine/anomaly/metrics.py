"""Anomaly-detection metrics that quality-inspection users expect: AUROC, F1-max, pixel AUROC, AUPRO.

Image-level curves are scikit-learn's (every distinct score is a threshold, ties handled its way),
connected regions scipy's, so the numbers match the ones users get from scikit-learn, anomalib and
the MVTec AD evaluation code. The per-region overlap (PRO) curve, which neither library offers, is
computed here on top of them; inputs are checked first, so a bad one gets a message, not a trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage
from sklearn import metrics as sk

from engine.errors import UserInputError

__all__ = [
    "aupro",
    "auroc",
    "connected_components",
    "evaluate",
    "f1_max",
    "pixel_auroc",
    "pro_curve",
    "roc_curve",
]

EIGHT_NEIGHBOURS = np.ones((3, 3), dtype=bool)  # MVTec's PRO counts diagonal neighbours as touching


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------


def _as_labels(labels: ArrayLike, what: str = "labels") -> np.ndarray:
    """Labels as a 1-D bool array (True = defective); 0/1 and booleans are accepted."""
    array = np.asarray(labels)
    if array.ndim != 1:
        array = array.ravel()
    if array.dtype != bool:
        if array.size and not np.isin(array, (0, 1)).all():
            raise UserInputError(f"{what} must be 0 (good) or 1 (defective); got values {np.unique(array)[:5]}")
        array = array.astype(bool)
    return array


def _as_scores(scores: ArrayLike, what: str = "scores") -> np.ndarray:
    """Scores as a 1-D float64 array; NaN or infinite scores are refused (they cannot be ranked)."""
    array = np.asarray(scores, dtype=np.float64).ravel()
    if not np.isfinite(array).all():
        raise UserInputError(f"{what} contain NaN or infinite values; every score must be a finite number")
    return array


def _check_binary(labels: np.ndarray, scores: np.ndarray, what: str = "labels") -> None:
    """A ranking metric needs both classes: without good (or defective) samples it is undefined."""
    if labels.shape != scores.shape:
        raise UserInputError(f"{what} and scores differ in length: {labels.size} labels, {scores.size} scores")
    positives = int(labels.sum())
    if positives == 0 or positives == labels.size:
        present = "defective" if positives else "good"
        raise UserInputError(
            f"{what} contain only {present} samples ({labels.size}); this metric needs both good and defective samples"
        )


# ---------------------------------------------------------------------------------------------
# Image-level curves (scikit-learn)
# ---------------------------------------------------------------------------------------------


def _checked(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y, s = _as_labels(labels), _as_scores(scores)
    _check_binary(y, s)
    return y, s


def roc_curve(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve over every distinct score: `(fpr, tpr, thresholds)`, thresholds descending.

    `sklearn.metrics.roc_curve(..., drop_intermediate=False)`: the first point is (0, 0) at
    threshold +inf; a sample is predicted defective when its score is >= the threshold.
    """
    y, s = _checked(labels, scores)
    return sk.roc_curve(y, s, drop_intermediate=False)


def auroc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve: the chance that a defective sample outscores a good one (ties count 1/2)."""
    y, s = _checked(labels, scores)
    return float(sk.roc_auc_score(y, s))


def f1_max(labels: ArrayLike, scores: ArrayLike) -> tuple[float, float]:
    """Best F1 over all thresholds, and the threshold that reaches it: `(f1, threshold)`.

    Predicting `score >= threshold` as defective gives that F1. The threshold is one of the scores;
    when several thresholds reach the same F1, the lowest is returned (argmax over scikit-learn's
    ascending thresholds, as anomalib does). F1-max is optimistic: the threshold is tuned on the test set.
    """
    y, s = _checked(labels, scores)
    precision, recall, thresholds = sk.precision_recall_curve(y, s, drop_intermediate=False)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)[:-1]
    best = int(np.argmax(f1))
    return float(f1[best]), float(thresholds[best])


# ---------------------------------------------------------------------------------------------
# Pixel level: ground-truth regions
# ---------------------------------------------------------------------------------------------


def connected_components(mask: ArrayLike) -> tuple[np.ndarray, int]:
    """Label the 8-connected regions of a 2-D boolean mask: `(labels, count)`, background 0, regions 1..count
    numbered in raster order of their first pixel (`scipy.ndimage.label` with a 3 x 3 structure)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise UserInputError(f"a mask must be a 2-D (H, W) array; got shape {mask.shape}")
    labels, count = ndimage.label(mask, structure=EIGHT_NEIGHBOURS)
    return labels, int(count)


class _PixelImage:
    """One image's pixels, flattened: scores, which are defective, and (computed once, on demand) PRO's regions."""

    def __init__(self, scores: np.ndarray, mask: np.ndarray | None) -> None:
        self.scores = scores.ravel()
        self._mask = mask
        self.defective = np.zeros(self.scores.size, bool) if mask is None else mask.ravel()

    @cached_property
    def regions(self) -> tuple[np.ndarray, int]:
        """Each defective pixel's weight 1 / (size of its region), in raster order, and the region count."""
        if self._mask is None:
            return np.zeros(0), 0
        labels, count = connected_components(self._mask)
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        weight_of_label = np.zeros(count + 1)
        weight_of_label[1:] = 1.0 / sizes[1:]
        return weight_of_label[labels.ravel()[self.defective]], count


def _pixel_image(mask: ArrayLike | None, anomaly_map: ArrayLike, position: int) -> _PixelImage:
    """Check one (mask, map) pair; a missing mask means an all-normal image."""
    scores = np.asarray(anomaly_map, dtype=np.float64)
    if scores.ndim != 2:
        raise UserInputError(f"anomaly map {position} must be a 2-D (H, W) array; got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise UserInputError(f"anomaly map {position} contains NaN or infinite values")
    if mask is None:
        return _PixelImage(scores, None)
    gt = np.asarray(mask)
    if gt.shape != scores.shape:
        raise UserInputError(
            f"mask {position} has shape {gt.shape} but its anomaly map has shape {scores.shape}; "
            "resize the map to the mask's resolution"
        )
    return _PixelImage(scores, gt.astype(bool, copy=False))


def _pixel_images(masks: Sequence[ArrayLike | None], maps: Sequence[ArrayLike]) -> list[_PixelImage]:
    if len(masks) != len(maps):
        raise UserInputError(f"got {len(masks)} masks but {len(maps)} anomaly maps; give one mask per map")
    if not maps:
        raise UserInputError("no anomaly maps given")
    return [_pixel_image(mask, anomaly_map, i) for i, (mask, anomaly_map) in enumerate(zip(masks, maps, strict=True))]


def _pixel_auroc_of(images: Sequence[_PixelImage]) -> float:
    labels = np.concatenate([image.defective for image in images])
    scores = np.concatenate([image.scores for image in images])
    return auroc(labels, scores)


def pixel_auroc(masks: Sequence[ArrayLike | None], maps: Sequence[ArrayLike]) -> float:
    """AUROC over all pixels of all images: masks (H, W) bool (None = all normal), maps (H, W) float.

    Images may differ in size; each map must match its mask. Memory is a few arrays of 8 bytes per
    pixel (50 images of 512 x 512 need a few hundred MB at most).
    """
    return _pixel_auroc_of(_pixel_images(masks, maps))


def _sum_at_or_above(thresholds: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """For each threshold t, how many samples (or how much weight) score >= t: one sort, then binary search,
    so ties need no care (samples with the same score fall on the same side of every threshold)."""
    order = np.argsort(scores)
    below = np.searchsorted(scores[order], thresholds, side="left")
    in_order = np.ones(scores.size) if weights is None else weights[order]
    top = np.concatenate(([0.0], np.cumsum(in_order[::-1])))  # top[k]: weight of the k highest-scoring samples
    return top[scores.size - below]


def _trapezoid(x: np.ndarray, y: np.ndarray) -> float:
    """Area under a piecewise-linear curve (np.trapz moved between numpy versions)."""
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1])) / 2.0)


def _pro_curve_of(
    images: Sequence[_PixelImage], num_thresholds: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    normal_scores = np.concatenate([image.scores[~image.defective] for image in images])
    defect_scores = np.concatenate([image.scores[image.defective] for image in images])
    weights = np.concatenate([image.regions[0] for image in images])
    regions = sum(image.regions[1] for image in images)
    normal_pixels = normal_scores.size
    if regions == 0:
        raise UserInputError("PRO needs at least one defect region in the masks; every mask given is empty")
    if normal_pixels == 0:
        raise UserInputError("PRO needs normal pixels to measure false positives; every pixel given is defective")

    if num_thresholds is None:
        # Exact: every distinct score is a threshold (MVTec AD's evaluation code).
        thresholds = np.unique(np.concatenate((normal_scores, defect_scores)))[::-1]
        false_positives = _sum_at_or_above(thresholds, normal_scores)
        overlap = _sum_at_or_above(thresholds, defect_scores, weights)
        defects_found = _sum_at_or_above(thresholds, defect_scores)
    else:
        if num_thresholds < 2:
            raise UserInputError(f"num_thresholds must be at least 2 (or None for exact); got {num_thresholds}")
        # Binned: thresholds evenly spaced between the lowest and highest score (anomalib's binned AUPRO).
        lowest = min(normal_scores.min(), defect_scores.min())
        highest = max(normal_scores.max(), defect_scores.max())
        grid = np.linspace(lowest, highest, num_thresholds)
        # The highest threshold each pixel reaches; counts per bin, summed from the top.
        normal_bins = np.searchsorted(grid, normal_scores, side="right") - 1
        defect_bins = np.searchsorted(grid, defect_scores, side="right") - 1
        false_positives = np.cumsum(np.bincount(normal_bins, minlength=num_thresholds)[::-1])
        overlap = np.cumsum(np.bincount(defect_bins, weights=weights, minlength=num_thresholds)[::-1])
        defects_found = np.cumsum(np.bincount(defect_bins, minlength=num_thresholds)[::-1])
        thresholds = grid[::-1]

    fpr = np.concatenate(([0.0], false_positives / normal_pixels))
    # The running sum of 1 / region size rounds: PRO is exactly 1 once every defect pixel is found
    # (so a perfect map scores exactly 1.0), and never above 1, as a mean of fractions.
    pro = np.where(defects_found == defect_scores.size, 1.0, np.minimum(overlap / regions, 1.0))
    pro = np.concatenate(([0.0], pro))
    return fpr, pro, np.concatenate(([np.inf], thresholds))


def pro_curve(
    masks: Sequence[ArrayLike | None], maps: Sequence[ArrayLike], num_thresholds: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-region overlap curve: `(fpr, pro, thresholds)`, thresholds descending, starting at (0, 0).

    At threshold t, a pixel is predicted defective when its score is >= t. PRO(t) is the fraction of
    each ground-truth region (8-connected component of a mask) predicted defective, averaged over
    all regions of all images, so a small defect weighs as much as a large one; FPR(t) is the
    fraction of all normal pixels (of every image) predicted defective. `num_thresholds=None` uses
    every distinct score (exact); an integer uses that many thresholds evenly spaced between the
    lowest and the highest score (faster on huge sets, approximate, and only invariant to affine
    rescaling of the maps).
    """
    return _pro_curve_of(_pixel_images(masks, maps), num_thresholds)


def _area_up_to(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoid area under y(x) for x in [x[0], x_max], interpolating y linearly at x_max.

    `x` is non-decreasing; vertical steps (equal x) add no area, so where on such a step x_max
    falls does not matter.
    """
    inside = int(np.searchsorted(x, x_max, side="right"))  # points with x <= x_max
    area = _trapezoid(x[:inside], y[:inside])
    if inside < x.size and x[inside - 1] < x_max:
        x0, y0, x1, y1 = x[inside - 1], y[inside - 1], x[inside], y[inside]
        y_at_max = y0 + (y1 - y0) * (x_max - x0) / (x1 - x0)
        area += float((x_max - x0) * (y0 + y_at_max) / 2.0)
    return area


def _aupro_of(images: Sequence[_PixelImage], max_fpr: float, num_thresholds: int | None) -> float:
    if not 0.0 < max_fpr <= 1.0:
        raise UserInputError(f"max_fpr must be in (0, 1]; got {max_fpr}")
    fpr, pro, _ = _pro_curve_of(images, num_thresholds)
    return _area_up_to(fpr, pro, max_fpr) / max_fpr


def aupro(
    masks: Sequence[ArrayLike | None],
    maps: Sequence[ArrayLike],
    max_fpr: float = 0.3,
    num_thresholds: int | None = None,
) -> float:
    """Area under the PRO curve for FPR in [0, max_fpr], divided by max_fpr: 1.0 for a perfect map.

    The MVTec AD segmentation metric (reported as "PRO" or "AUPRO@30%"): unlike pixel AUROC it is
    not dominated by large defects, and capping the FPR ignores thresholds that would flag too much
    good surface to be useful. See `pro_curve` for the curve and `num_thresholds`.
    """
    return _aupro_of(_pixel_images(masks, maps), max_fpr, num_thresholds)


# ---------------------------------------------------------------------------------------------
# A whole evaluation, MVTec-style
# ---------------------------------------------------------------------------------------------


def _report(
    labels: np.ndarray,
    scores: np.ndarray,
    images: Sequence[_PixelImage | None] | None,
    chosen: np.ndarray,
) -> dict[str, float | int | None]:
    """Metrics over the images at indices `chosen`; pixel metrics are None when they are undefined."""
    f1, threshold = f1_max(labels[chosen], scores[chosen])
    report: dict[str, float | int | None] = {
        "image_auroc": auroc(labels[chosen], scores[chosen]),
        "image_f1_max": f1,
        "image_f1_threshold": threshold,
        "pixel_auroc": None,
        "pro": None,
        "num_images": int(chosen.size),
        "num_defective": int(labels[chosen].sum()),
    }
    if images is not None:
        known = [images[i] for i in chosen if images[i] is not None]
        has_defect = any(image.defective.any() for image in known)
        has_normal = not all(image.defective.all() for image in known)
        if known and has_defect and has_normal:
            report["pixel_auroc"] = _pixel_auroc_of(known)
            report["pro"] = _aupro_of(known, 0.3, None)
    return report


def evaluate(
    image_labels: ArrayLike,
    image_scores: ArrayLike,
    masks: Sequence[ArrayLike | None] | None = None,
    maps: Sequence[ArrayLike] | None = None,
    defect_types: Sequence[str | None] | None = None,
) -> dict[str, object]:
    """Image AUROC, F1-max (and its threshold), pixel AUROC and PRO (AUPRO@30%), overall and per defect type.

    `image_labels` are 0 (good) / 1 (defective); `masks[i]` is image i's (H, W) defect mask or None,
    `maps[i]` its anomaly map of the same shape. A good image without a mask is all normal pixels. A
    defective image without a mask has no known pixel ground truth and is left out of the pixel
    metrics (counting its pixels as normal would punish a map for finding its defect). Each defect
    type is scored against all the good images, as MVTec AD reports are; `defect_types[i]` of a
    good image is ignored. Pixel metrics are None where they are undefined (no maps, or no defect
    region among the images scored).
    """
    labels = _as_labels(image_labels, "image labels")
    scores = _as_scores(image_scores, "image scores")
    _check_binary(labels, scores, "image labels")

    images: list[_PixelImage | None] | None = None
    if maps is not None:
        if len(maps) != labels.size:
            raise UserInputError(f"got {len(maps)} anomaly maps for {labels.size} images; give one map per image")
        if masks is None:
            masks = [None] * labels.size
        if len(masks) != labels.size:
            raise UserInputError(f"got {len(masks)} masks for {labels.size} images; give one (or None) per image")
        images = []
        for i, (mask, anomaly_map) in enumerate(zip(masks, maps, strict=True)):
            if mask is None and labels[i]:
                images.append(None)
                continue
            image = _pixel_image(mask, anomaly_map, i)
            if not labels[i] and image.defective.any():
                raise UserInputError(f"image {i} is labelled good but its mask marks defect pixels; fix the label")
            images.append(image)

    everything = np.arange(labels.size)
    result: dict[str, object] = dict(_report(labels, scores, images, everything))
    per_type: dict[str, dict[str, float | int | None]] = {}
    if defect_types is not None:
        if len(defect_types) != labels.size:
            raise UserInputError(f"got {len(defect_types)} defect types for {labels.size} images")
        good = np.flatnonzero(~labels)
        of_kind: dict[str, list[int]] = {}
        for i in np.flatnonzero(labels):
            if defect_types[i] is not None:
                of_kind.setdefault(str(defect_types[i]), []).append(int(i))
        for kind in sorted(of_kind):
            chosen = np.sort(np.concatenate([good, np.asarray(of_kind[kind], dtype=np.int64)]))
            per_type[kind] = _report(labels, scores, images, chosen)
    result["per_defect_type"] = per_type
    return result
