"""What the three anomaly job kinds share, declared once and torch-free: the object name, the model preset,
the threshold rule, and the summary every inspection records beside its scores."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.anomaly.methods import METHODS, NO_REFERENCES, WINCLIP, get_method
from engine.errors import UserInputError
from engine.params import NamedFile, Params, Result, param
from engine.presets import PRESETS, get_preset, presets_for
from engine.progress import ProgressCallback

if TYPE_CHECKING:
    from engine.anomaly.scorers import Scorer
    from engine.anomaly.thresholds import Threshold

DEFAULT_PRESET = WINCLIP.default_preset
DEFAULT_THRESHOLD = 0.5
THRESHOLD_RANGE = (0.0, 1.0)  # scores are probabilities
THRESHOLD_RULES = ("auto", "calibrate")
SCORE_DECIMALS = 4  # every score and threshold shown; scores.csv and scores.json keep 6


def score_text(value: float) -> str:
    """A score or threshold as every view shows it (status line, table, gallery, result card, timeline, CLI), so one
    value never reads 0.2926 in one place and 0.293 in another."""
    return f"{value:.{SCORE_DECIMALS}f}"


MAX_OBJECT_NAME_CHARS = 60


def normalize_object_name(object_name: str) -> str:
    """Collapse whitespace and check the name; the message says what is accepted."""
    name = re.sub(r"\s+", " ", object_name or "").strip()
    if not name:
        raise UserInputError("The object name is empty: name what the image shows, e.g. 'bottle' or 'metal plate'.")
    if len(name) > MAX_OBJECT_NAME_CHARS:
        raise UserInputError(
            f"The object name has {len(name):,} characters; at most {MAX_OBJECT_NAME_CHARS} are accepted "
            "(a short noun phrase such as 'metal plate')."
        )
    return name


@dataclass(frozen=True)
class AnomalyParams(Params):
    """What every anomaly job names: the method, its model and the object (checked when WinCLIP builds its
    prompts; a label only for the other methods). Without a method, the preset's; without a preset, the method's
    default model."""

    method: str | None = param(None, f"{', '.join(METHODS)} (default: the preset's method, else winclip)",
                               choices=tuple(METHODS), label="Method")
    object_name: str = param("", "object name, e.g. 'metal plate' (WinCLIP reads it; a label for the others)",
                             label="Object name")
    preset: str = param("", "model preset (default: the method's real model; <method>-tiny: random weights, "
                            "for tests)", label="Model")
    mask_background: bool = param(False, "AnomalyDINO: score the object only, its plain background masked out (the "
                                         "paper's PCA masking); not for textures or parts that fill the picture",
                                  label="Mask a plain background (AnomalyDINO)")
    rotate_references: bool = param(False, "AnomalyDINO: add rotated copies of the good parts (8 angles, as the "
                                           "paper's few-shot runs), for parts that come in any orientation",
                                    label="Rotated good parts (AnomalyDINO)")

    def check(self) -> None:
        if self.object_name:  # its length now (a job record holds it); empty is WinCLIP's to refuse
            normalize_object_name(self.object_name)
        preset = PRESETS.get(self.preset) if self.preset else None
        if self.preset and (preset is None or preset.tool != "anomaly"):
            accepted = ", ".join(p.name for p in presets_for("anomaly"))
            raise UserInputError(f"preset: {self.preset!r} is not an anomaly model; accepted: {accepted}.")
        method = get_method(self.method or (preset.method if preset else WINCLIP.name))
        if preset is not None and preset.method != method.name:
            raise UserInputError(f"preset: {self.preset!r} is a {get_method(preset.method).label} model; method "
                                 f"{method.name} takes {method.default_preset} or {method.name}-tiny.")
        object.__setattr__(self, "method", method.name)  # frozen: both settled once, while checking
        object.__setattr__(self, "preset", self.preset or method.default_preset)


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
        super().check()
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

    def presets(self) -> tuple[str, ...]:
        return (self.preset,)

    def check_inputs(self, files: Mapping[str, Sequence[NamedFile]]) -> None:
        """AnomalyDINO without a good part is refused at submit, not by a job that fails."""
        if get_method(self.method).references == "required" and not files.get("references"):
            raise UserInputError(NO_REFERENCES)


@dataclass
class InspectionResult(Result):
    """What an inspection was asked to do, recorded beside its scores (scores.json and the job's result)."""

    object_name: str
    preset: str
    method: str
    random_weights: bool
    mode: str  # e.g. "WinCLIP (zero-shot)", "WinCLIP+ (3 good references)", "MuSc (zero-shot over the set)"
    threshold: Threshold
    skipped: list[dict[str, str]]  # {"file", "error"[, "role"]}: inputs that could not be used
    warnings: list[str]


def load_scorer(preset_name: str, progress: ProgressCallback, device: str | None = None) -> Scorer:
    """The method behind a preset, on the worker's pipeline of it (loaded once per process)."""
    from engine.anomaly.scorers import scorer_for

    preset = get_preset(preset_name)
    progress(0.01, f"Loading model {preset.label}")
    return scorer_for(preset, device)
