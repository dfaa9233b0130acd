"""Evaluation mode: hide a seeded fraction of the boxes of a fully annotated set, complete, and score.

Recall = share of the hidden boxes that a proposal of the same class finds at IoU >= 0.5; precision =
share of the proposals (at or above the score threshold) that find a hidden box. Matching is greedy
by descending score, one proposal per hidden box, as in COCO/VOC evaluation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from engine.annotations.dataset import Box, Dataset
from engine.completion.evaluate import Params
from engine.completion.logic import iou_matrix
from engine.completion.pipeline import CompletionPipeline, CompletionResult
from engine.errors import UserInputError
from engine.progress import ProgressCallback, ignore_progress

MATCH_IOU = 0.5
CURVE_THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def drop_boxes(dataset: Dataset, fraction: float, seed: int = 0) -> tuple[Dataset, dict[str, list[Box]]]:
    """A copy of the set with about `fraction` of its boxes hidden at random (seeded), and the hidden boxes.

    Each class keeps at least one box, so every class still has an exemplar to be completed from.
    """
    if not 0.0 < fraction < 1.0:
        raise UserInputError(f"The fraction of boxes to drop must be between 0 and 1 (exclusive), not {fraction}.")
    slots = [(i, j) for i, image in enumerate(dataset.images) for j in range(len(image.boxes))]
    if not slots:
        raise UserInputError("Evaluation needs a fully annotated set, but no boxes were imported.")
    remaining = Counter(box.category for image in dataset.images for box in image.boxes)
    target = round(fraction * len(slots))
    dropped_slots: set[tuple[int, int]] = set()
    for position in np.random.default_rng(seed).permutation(len(slots)):
        if len(dropped_slots) == target:
            break
        i, j = slots[position]
        category = dataset.images[i].boxes[j].category
        if remaining[category] > 1:
            remaining[category] -= 1
            dropped_slots.add((i, j))
    images, hidden = [], {}
    for i, image in enumerate(dataset.images):
        keep = [b for j, b in enumerate(image.boxes) if (i, j) not in dropped_slots]
        gone = [b for j, b in enumerate(image.boxes) if (i, j) in dropped_slots]
        images.append(replace(image, boxes=keep))
        if gone:
            hidden[image.file_name] = gone
    return replace(dataset, images=images), hidden


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator else None


def match_proposals(proposals: Mapping[str, Sequence[Box]], hidden: Mapping[str, Sequence[Box]],
                    score_threshold: float = 0.0, iou: float = MATCH_IOU) -> dict[str, Any]:
    """Recall of the hidden boxes and precision of the proposals, per class and overall."""
    counts: dict[str, dict[str, int]] = {}

    def tally(category: str) -> dict[str, int]:
        return counts.setdefault(category, {"hidden": 0, "proposals": 0, "found": 0})

    for boxes in hidden.values():
        for box in boxes:
            tally(box.category)["hidden"] += 1
    for name, boxes in proposals.items():
        truth = list(hidden.get(name, []))
        taken = [False] * len(truth)
        for box in sorted((b for b in boxes if (b.score or 0.0) >= score_threshold), key=lambda b: -(b.score or 0)):
            tally(box.category)["proposals"] += 1
            same = [k for k, t in enumerate(truth) if t.category == box.category and not taken[k]]
            if not same:
                continue
            overlaps = iou_matrix(np.asarray(box.xyxy), np.asarray([truth[k].xyxy for k in same]))[0]
            best = int(np.argmax(overlaps))
            if overlaps[best] >= iou:
                taken[same[best]] = True
                tally(box.category)["found"] += 1
    totals = {key: sum(c[key] for c in counts.values()) for key in ("hidden", "proposals", "found")}

    def summary(c: dict[str, int]) -> dict[str, Any]:
        return {**c, "recall": _ratio(c["found"], c["hidden"]), "precision": _ratio(c["found"], c["proposals"])}

    return {"iou": iou, "score_threshold": score_threshold, "overall": summary(totals),
            "per_class": {name: summary(c) for name, c in sorted(counts.items())}}


def evaluate_completion(pipeline: CompletionPipeline, dataset: Dataset, params: Params,
                        progress: ProgressCallback = ignore_progress) -> tuple[dict[str, Any], CompletionResult]:
    """Hide `params.drop_fraction` of the boxes (seeded), complete the rest, and report metrics at the score
    threshold plus an overall recall/precision curve over thresholds (to choose one); also returns the completion."""
    partial, hidden = drop_boxes(dataset, params.drop_fraction, params.seed)
    result = pipeline(partial, params, progress=progress)
    proposals = {name: [p.box for p in found] for name, found in result.proposals.items()}
    curve = []
    for threshold in CURVE_THRESHOLDS:
        overall = match_proposals(proposals, hidden, threshold)["overall"]
        curve.append({"score_threshold": threshold, "recall": overall["recall"], "precision": overall["precision"],
                      "proposals": overall["proposals"]})
    report = {"fraction": params.drop_fraction, "seed": params.seed, "boxes": dataset.box_count,
              "hidden": sum(len(b) for b in hidden.values()), "images": len(dataset.images),
              "metrics": match_proposals(proposals, hidden, params.score_threshold), "curve": curve,
              "skipped": dataset.skipped, "notes": dataset.notes}
    return report, result
