"""Detection accuracy as COCO reports it: mAP@0.5 and mAP@[.5:.95], overall and per class (pycocotools).

COCOeval is the reference implementation (101-point interpolated precision, at most 100 detections
per image, area range "all"); its console output is kept out of the logs. A class with no box in
the evaluated images has no AP (None) and does not count in the mean, as in COCO.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.annotations.dataset import Box


def _coco_eval(truth: Sequence[Sequence[Box]], predicted: Sequence[Sequence[Box]], classes: Sequence[str]):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ids = {name: number + 1 for number, name in enumerate(classes)}
    images = [{"id": index + 1} for index in range(len(truth))]
    flat = [(index + 1, box) for index, boxes in enumerate(truth) for box in boxes]
    annotations = [{"id": number, "image_id": image_id, "category_id": ids[b.category],
                    "bbox": [b.x, b.y, b.width, b.height], "area": b.width * b.height, "iscrowd": 0}
                   for number, (image_id, b) in enumerate(flat, start=1)]
    detections = [{"image_id": index + 1, "category_id": ids[b.category], "bbox": [b.x, b.y, b.width, b.height],
                   "score": float(b.score if b.score is not None else 1.0)}
                  for index, boxes in enumerate(predicted) for b in boxes if b.category in ids]
    with contextlib.redirect_stdout(io.StringIO()):
        ground = COCO()
        ground.dataset = {"images": images, "annotations": annotations,
                          "categories": [{"id": i, "name": n} for n, i in ids.items()]}
        ground.createIndex()
        if not detections:
            return None
        evaluation = COCOeval(ground, ground.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
    return evaluation.eval["precision"]  # [IoU threshold, recall, class, area range, max detections]


def _mean(values: np.ndarray) -> float | None:
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else None


def detection_map(truth: Sequence[Sequence[Box]], predicted: Sequence[Sequence[Box]],
                  classes: Sequence[str]) -> dict[str, Any]:
    """mAP@0.5 ("map_50") and mAP@[.5:.95] ("map") of `predicted` against `truth`, one list of boxes per image."""
    if len(truth) != len(predicted):
        raise ValueError("truth and predicted need one list of boxes per image each")
    counts = {name: sum(b.category == name for boxes in truth for b in boxes) for name in classes}
    precision = _coco_eval(truth, predicted, classes) if sum(counts.values()) else None
    per_class = {}
    for k, name in enumerate(classes):
        if not counts[name]:
            per_class[name] = {"ap_50": None, "ap": None, "boxes": 0}
        elif precision is None:  # boxes to find, no detection at all
            per_class[name] = {"ap_50": 0.0, "ap": 0.0, "boxes": counts[name]}
        else:
            per_class[name] = {"ap_50": _mean(precision[0, :, k, 0, -1]), "ap": _mean(precision[:, :, k, 0, -1]),
                               "boxes": counts[name]}
    found = [c for c in per_class.values() if c["boxes"]]
    return {"map_50": float(np.mean([c["ap_50"] for c in found])) if found else None,
            "map": float(np.mean([c["ap"] for c in found])) if found else None,
            "per_class": per_class, "images": len(truth), "boxes": sum(counts.values())}
