"""IoU, dedup against annotations, class-wise NMS and the evaluation metrics, on hand-made boxes."""

from __future__ import annotations

import numpy as np
import pytest

from engine.annotations.dataset import Box, Dataset, ImageRecord
from engine.completion.evaluation import drop_boxes, match_proposals
from engine.completion.logic import already_annotated, classwise_nms, iou_matrix, select_proposals, xywh_to_xyxy
from engine.errors import UserInputError


def test_iou_by_hand():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [10, 10, 20, 20], [2, 2, 4, 4], [3, 3, 3, 9]])
    np.testing.assert_allclose(iou_matrix(a, b)[0], [1.0, 50 / 150, 0.0, 4 / 100, 0.0])
    np.testing.assert_array_equal(xywh_to_xyxy([[1, 2, 3, 4]]), [[1, 2, 4, 6]])


def test_nms_keeps_the_best_of_overlapping_boxes_per_class():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10], [2, 0, 12, 10]], float)
    scores = np.array([0.8, 0.9, 0.7, 0.95, 0.3])
    assert classwise_nms(boxes[:3], scores[:3], ["a"] * 3, 0.5) == [1, 2]  # IoU(0, 1) = 81 / 119 = 0.68 > 0.5
    assert classwise_nms(boxes[:3], scores[:3], ["a"] * 3, 0.7) == [1, 0, 2]  # below the threshold, both stay
    labels = ["a", "a", "a", "b", "b"]
    # box 3 (class b) sits on box 0 but does not suppress it; box 4 is suppressed by box 3 (IoU 0.67)
    assert classwise_nms(boxes, scores, labels, 0.5) == [3, 1, 2]


def test_proposals_overlapping_an_annotation_are_dropped_before_nms():
    existing = np.array([[0, 0, 10, 10]], float)
    candidates = np.array([[0, 0, 10, 10], [4, 0, 14, 10], [30, 30, 40, 40], [1, 0, 11, 10]], float)
    scores = np.array([0.9, 0.8, 0.1, 0.85])
    np.testing.assert_array_equal(already_annotated(candidates, existing, 0.5), [True, False, False, True])
    # box 0 is the annotated object: had it gone through NMS, it would have suppressed box 1 (IoU 0.43 > 0.3)
    assert select_proposals(candidates, scores, ["a"] * 4, existing, existing_iou=0.5, nms_iou=0.3) == [1, 2]
    assert select_proposals(candidates, scores, ["a"] * 4, existing, 0.5, 0.3, min_score=0.2) == [1]
    assert select_proposals(candidates, scores, ["a"] * 4, np.zeros((0, 4)), 0.5, 0.3, max_count=1) == [0]


def square(x: float, y: float, category: str, score: float | None = None) -> Box:
    return Box(x, y, 10, 10, category, score)


def test_metrics_on_a_hand_computed_case():
    hidden = {"a.png": [square(0, 0, "x"), square(20, 0, "x"), square(0, 20, "y")], "b.png": [square(0, 0, "x")]}
    proposals = {
        "a.png": [square(1, 0, "x", 0.9),  # IoU 90/110 with the first x: found
                  square(0, 0, "x", 0.8),  # same object again: a false positive (matched once only)
                  square(0, 25, "y", 0.7),  # IoU 50/150 < 0.5: false positive
                  square(20, 0, "x", 0.2)],  # found, but only below a 0.3 threshold
        "b.png": [square(0, 0, "y", 0.6)],  # right place, wrong class: false positive; b's x stays missed
    }
    report = match_proposals(proposals, hidden)
    assert report["per_class"]["x"] == {"hidden": 3, "proposals": 3, "found": 2, "recall": round(2 / 3, 6),
                                        "precision": round(2 / 3, 6)}
    assert report["per_class"]["y"] == {"hidden": 1, "proposals": 2, "found": 0, "recall": 0.0, "precision": 0.0}
    assert report["overall"] == {"hidden": 4, "proposals": 5, "found": 2, "recall": 0.5, "precision": 0.4}
    strict = match_proposals(proposals, hidden, score_threshold=0.3)
    assert strict["per_class"]["x"]["recall"] == round(1 / 3, 6) and strict["per_class"]["x"]["precision"] == 0.5
    assert strict["overall"] == {"hidden": 4, "proposals": 4, "found": 1, "recall": 0.25, "precision": 0.25}
    assert match_proposals({}, hidden)["overall"]["precision"] is None


def test_dropping_is_seeded_and_keeps_an_exemplar_per_class():
    images = [ImageRecord(f"{i}.png", 100, 100, [square(10 * j, 0, "x") for j in range(5)]) for i in range(4)]
    images[0].boxes.append(square(0, 50, "rare"))
    dataset = Dataset(images, ["x", "rare"])
    partial, hidden = drop_boxes(dataset, 0.5, seed=3)
    assert sum(len(b) for b in hidden.values()) == round(0.5 * 21)
    assert partial.box_count + 10 == dataset.box_count == 21
    assert any(b.category == "rare" for b in partial.images[0].boxes)  # the only one of its class stays
    assert drop_boxes(dataset, 0.5, seed=3)[1] == hidden and drop_boxes(dataset, 0.5, seed=4)[1] != hidden
    assert dataset.images[0].boxes[0] == square(0, 0, "x") and len(dataset.images[0].boxes) == 6  # input unchanged
    with pytest.raises(UserInputError, match="between 0 and 1"):
        drop_boxes(dataset, 1.0)
