"""Decision thresholds: a user-set value, or one calibrated from images of good parts; OK / NG verdicts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from PIL import Image

from engine.anomaly.common import DEFAULT_THRESHOLD, THRESHOLD_RANGE
from engine.anomaly.pipeline import ReferenceMemory, WinClipPipeline
from engine.errors import UserInputError

CALIBRATION_RULE = (
    "Calibrated on the good images: each one is scored with the other good images as references "
    "(leave one out). Image threshold = the higher of the largest such score and their mean + 3 standard "
    "deviations, so every good image passes. The outline marks pixels scoring above the highest pixel "
    "score of any good image."
)
NEEDS_TWO_GOOD = ("Calibrating a threshold needs at least 2 images of good parts (each is scored against the "
                  "others); add more, or set the threshold yourself.")
USER_RULE = "Set by the user; the same value applies to image scores (verdict) and to pixels (outline)."
DEFAULT_RULE = (f"Default {DEFAULT_THRESHOLD}: the anomalous prompts outweigh the normal ones. Add 2 or more "
                "good images to calibrate a threshold, or set one.")


@dataclass(frozen=True)
class Threshold:
    """Image threshold (verdict), pixel threshold (outline), where they came from and the rule used."""

    image: float
    pixel: float
    source: Literal["user", "calibrated", "default"]
    rule: str
    good_scores: tuple[float, ...] = ()

    def verdict(self, score: float) -> str:
        """'NG' when the score is above the image threshold, else 'OK'."""
        return "NG" if score > self.image else "OK"


def user_threshold(value: float) -> Threshold:
    """A threshold the user typed; scores are probabilities, so it must lie in THRESHOLD_RANGE."""
    low, high = THRESHOLD_RANGE
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise UserInputError(f"The threshold must be a number between {low:g} and {high:g}, not {value!r}.") from None
    if not (low <= value <= high) or math.isnan(value):
        raise UserInputError(f"The threshold must be between {low:g} and {high:g} (scores are probabilities), "
                             f"not {value}.")
    return Threshold(value, value, "user", USER_RULE)


def default_threshold() -> Threshold:
    return Threshold(DEFAULT_THRESHOLD, DEFAULT_THRESHOLD, "default", DEFAULT_RULE)


def calibrate_threshold(
    pipeline: WinClipPipeline, object_name: str, references: Sequence[Image.Image] | ReferenceMemory,
) -> Threshold:
    """Threshold from the good references by leave-one-out scoring (see CALIBRATION_RULE).

    Uses the embeddings already in the reference memory: no image is encoded twice.
    """
    memory = references if isinstance(references, ReferenceMemory) else pipeline.reference_memory(references)
    if memory.count < 2:
        raise UserInputError(NEEDS_TWO_GOOD)
    text = pipeline.text_embeddings(object_name)
    scores, pixel_max = [], []
    for index in range(memory.count):
        score, grid = pipeline.score_embeddings(memory.embeddings_of(index), text, memory.without(index))
        scores.append(float(score[0]))
        pixel_max.append(float(grid.max()))  # bilinear upsampling never exceeds the grid's maximum
    return threshold_from_good(scores, pixel_max)


def threshold_from_good(scores: Sequence[float], pixel_max: Sequence[float]) -> Threshold:
    """CALIBRATION_RULE applied to the leave-one-out image scores and map maxima of the good images (any
    method's: WinCLIP+ here, `AnomalyDinoPipeline.leave_one_out` for AnomalyDINO)."""
    values = torch.tensor(scores, dtype=torch.float64)
    image = max(max(scores), float(values.mean() + 3 * values.std()))
    return Threshold(min(image, 1.0), min(max(pixel_max), 1.0), "calibrated", CALIBRATION_RULE,
                     tuple(round(s, 6) for s in scores))
