"""Decision thresholds: a value, one calibrated from good parts or from a set's own scores; OK / NG verdicts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from engine.anomaly.common import DEFAULT_THRESHOLD, THRESHOLD_RANGE
from engine.anomaly.methods import SET_RULE_MIN_IMAGES, Method
from engine.errors import UserInputError

CALIBRATION_RULE = (
    "Calibrated on the good images: each one is scored with the other good images as references "
    "(leave one out). Image threshold = the higher of the largest such score and their mean + 3 standard "
    "deviations, so every good image passes. The outline marks pixels scoring above the highest pixel "
    "score of any good image."
)
IN_SET_RULE = (
    "Calibrated on the good images scored within the set (each against all the other images). Image threshold = "
    "the higher of the largest such score and their mean + 3 standard deviations, so every good image passes. "
    "The outline marks pixels scoring above the highest pixel score of any good image."
)
SET_RULE = (
    "From this set's own scores, assuming most parts are good: image threshold = median + 3 robust standard "
    "deviations (1.4826 x the median absolute deviation); the outline marks pixels above the same value. Add 2 or "
    "more good parts to calibrate instead."
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
    source: Literal["user", "calibrated", "set", "default"]
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


def default_threshold(method: Method) -> Threshold:
    """The method's fixed threshold, for when nothing calibrates one; methods without one say what to add."""
    if method.default_threshold is None:
        raise UserInputError(
            f"{method.label} scores have no fixed threshold: give 2 or more good parts (calibrated), a set of at "
            f"least {SET_RULE_MIN_IMAGES} images (the set's own spread), or set the threshold yourself.")
    return Threshold(method.default_threshold, method.default_threshold, "default", DEFAULT_RULE)


def calibrated_threshold(scores: Sequence[float], pixel_maxima: Sequence[float], rule: str = CALIBRATION_RULE
                         ) -> Threshold:
    """Threshold from the good parts' own scores, each scored without itself among the good parts (see
    CALIBRATION_RULE): every good part passes."""
    if len(scores) < 2:
        raise UserInputError(NEEDS_TWO_GOOD)
    values = torch.tensor(list(scores), dtype=torch.float64)
    image = max(max(scores), float(values.mean() + 3 * values.std()))
    return Threshold(min(image, 1.0), min(max(pixel_maxima), 1.0), "calibrated", rule,
                     tuple(round(s, 6) for s in scores))


def set_threshold(scores: Sequence[float]) -> Threshold:
    """Threshold from a set's own image scores (see SET_RULE): robust to the few defective parts among them."""
    values = torch.tensor(list(scores), dtype=torch.float64)
    median = values.median()
    spread = 1.4826 * (values - median).abs().median()
    image = min(float(median + 3 * spread), 1.0)
    return Threshold(image, image, "set", SET_RULE)
