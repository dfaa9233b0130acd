"""Which candidate boxes become proposals: overlap with existing annotations, class-wise NMS, scores.

IoU and NMS are torchvision's (`box_iou`, `nms`); these functions take and return numpy
arrays of x0, y0, x1, y1, so the rules are testable on hand-made boxes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchvision.ops import box_iou
from torchvision.ops import nms as torchvision_nms


def xywh_to_xyxy(boxes: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """COCO x, y, width, height -> x0, y0, x1, y1."""
    array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([array[:, :2], array[:, :2] + array[:, 2:]], axis=1)


def _tensor(boxes: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of x0, y0, x1, y1 boxes; 0 where both boxes have no area."""
    return np.nan_to_num(box_iou(_tensor(a), _tensor(b)).numpy(), nan=0.0)


def classwise_nms(boxes: np.ndarray, scores: np.ndarray, labels: Sequence[str], iou_threshold: float) -> list[int]:
    """Greedy NMS within each class (boxes of different classes never suppress each other): indices kept, best
    score first, ties: lower index first. A box goes when its IoU with a kept, better box is above the threshold.
    torchvision's `nms` class by class, on exact coordinates (`batched_nms` may offset them per class)."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    rank = torch.empty(len(order), dtype=torch.float64)  # distinct scores that keep the tie order
    rank[order] = -torch.arange(len(order), dtype=torch.float64)
    corners = _tensor(boxes)
    kept: list[int] = []
    for label in dict.fromkeys(labels):
        members = torch.tensor([i for i, other in enumerate(labels) if other == label], dtype=torch.int64)
        kept += members[torchvision_nms(corners[members], rank[members], iou_threshold)].tolist()
    return sorted(kept, key=lambda i: -float(rank[i]))


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
    existing_iou: float,
    nms_iou: float,
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
