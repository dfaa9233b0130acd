"""Which candidate boxes become proposals: overlap with existing annotations, class-wise NMS, scores.

Plain numpy on (N, 4) arrays of x0, y0, x1, y1, so the rules are testable on hand-made boxes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def xywh_to_xyxy(boxes: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """COCO x, y, width, height -> x0, y0, x1, y1."""
    array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([array[:, :2], array[:, :2] + array[:, 2:]], axis=1)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of x0, y0, x1, y1 boxes; 0 where a box has no area."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    intersection = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy non-maximum suppression: indices kept, best score first (ties: lower index first).

    A box is suppressed when its IoU with a kept, higher-scoring box is above `iou_threshold`.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    suppressed = np.zeros(len(boxes), dtype=bool)
    kept: list[int] = []
    for index in order:
        if not suppressed[index]:
            kept.append(index)
            suppressed |= iou_matrix(boxes[index], boxes)[0] > iou_threshold
    return kept


def classwise_nms(boxes: np.ndarray, scores: np.ndarray, labels: Sequence[str], iou_threshold: float) -> list[int]:
    """NMS within each class (boxes of different classes never suppress each other); best score first."""
    kept: list[int] = []
    for label in dict.fromkeys(labels):
        members = [i for i, other in enumerate(labels) if other == label]
        kept += [members[j] for j in nms(np.asarray(boxes)[members], np.asarray(scores)[members], iou_threshold)]
    return sorted(kept, key=lambda i: (-float(scores[i]), i))


def already_annotated(boxes: np.ndarray, existing: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Mask of candidates whose IoU with any existing annotation (of any class) is above the threshold.

    Any class: an object that is boxed already is not missing, whatever it was labelled.
    """
    if len(existing) == 0 or len(boxes) == 0:
        return np.zeros(len(boxes), dtype=bool)
    return iou_matrix(boxes, existing).max(axis=1) > iou_threshold


def select_proposals(
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: Sequence[str],
    existing: np.ndarray,
    existing_iou: float = 0.5,
    nms_iou: float = 0.3,
    min_score: float = 0.0,
    max_count: int | None = None,
) -> list[int]:
    """Candidates that become proposals, best first.

    In this order: scores below `min_score` go; candidates overlapping an existing annotation above
    `existing_iou` go (before NMS, so an already-annotated object cannot suppress a missing neighbour);
    class-wise NMS at `nms_iou`; at most `max_count` are kept.
    """
    scores = np.asarray(scores, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    candidates = np.flatnonzero((scores >= min_score) & ~already_annotated(boxes, existing, existing_iou))
    kept = classwise_nms(boxes[candidates], scores[candidates], [labels[i] for i in candidates], nms_iou)
    return [int(candidates[i]) for i in kept][:max_count]
