"""What the three anomaly job kinds share, declared once and torch-free: the object name, the model preset,
the threshold rule, and the summary every inspection records beside its scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.errors import UserInputError
from engine.params import Params, Result, param
from engine.progress import ProgressCallback

if TYPE_CHECKING:
    from engine.anomaly.pipeline import WinClipPipeline
    from engine.anomaly.thresholds import Threshold

DEFAULT_PRESET = "winclip-vit-b-16-plus-240"
DEFAULT_THRESHOLD = 0.5
THRESHOLD_RANGE = (0.0, 1.0)  # scores are probabilities
THRESHOLD_RULES = ("auto", "calibrate")


@dataclass(frozen=True)
class AnomalyParams(Params):
    """What every anomaly job names: the object (checked when the prompts are built) and the model."""

    object_name: str = param("", "object name, e.g. 'metal plate'", label="Object name")
    preset: str = param(DEFAULT_PRESET, "model preset (winclip-tiny: random weights, for tests)", label="Model")


@dataclass(frozen=True)
class InspectionParams(AnomalyParams):
    """An inspection of images or of a video: the threshold rule, an optional saved set of good parts."""

    threshold: str | float = param(
        "auto", f"auto (calibrated from 2+ good parts, else {DEFAULT_THRESHOLD}), calibrate, or a value in [0, 1]",
        label="Threshold")
    reference_set: str | None = param(None, "a saved set of good parts (its images join the references)",
                                      label="Saved set of good parts")
    batch_size: int | None = param(None, "images per forward pass (default: 8 on GPU, 1 on CPU)", ge=1, le=256)

    def check(self) -> None:
        low, high = THRESHOLD_RANGE
        if isinstance(self.threshold, str):
            rule = self.threshold.strip().lower()
            if rule not in THRESHOLD_RULES:
                raise UserInputError(f"threshold: {', '.join(THRESHOLD_RULES)} or a number from {low:g} to {high:g}, "
                                     f"not {self.threshold!r}.")
            object.__setattr__(self, "threshold", rule)  # frozen: set once, while checking
        elif not low <= self.threshold <= high:
            raise UserInputError(f"threshold: a number from {low:g} to {high:g} (scores are probabilities), "
                                 f"not {self.threshold}.")


@dataclass
class InspectionResult(Result):
    """What an inspection was asked to do, recorded beside its scores (scores.json and the job's result)."""

    object_name: str
    preset: str
    random_weights: bool
    mode: str  # "zero-shot" or "WinCLIP+ (N good references ...)"
    threshold: Threshold
    skipped: list[dict[str, str]]  # {"file", "error"[, "role"]}: inputs that could not be used
    warnings: list[str]


def load_pipeline(preset_name: str, progress: ProgressCallback, device: str | None = None) -> WinClipPipeline:
    """The worker's WinCLIP pipeline of a preset (loaded once per process)."""
    from engine.anomaly.pipeline import WinClipPipeline
    from engine.loading import get_pipeline
    from engine.presets import get_preset

    preset = get_preset(preset_name)
    progress(0.01, f"Loading model {preset.label}")
    return get_pipeline(WinClipPipeline, preset.name, device)
