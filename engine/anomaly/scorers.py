"""One shape for every anomaly method inside an inspection or an evaluation: prepare once per job (prompts, good
parts), score images, and report how the good parts score without themselves (for a calibrated threshold).

The app's threshold rules, outputs and video handling are written once against `Scorer`; each method's
pipeline stays its own small class (`WinClipPipeline`, `MuscPipeline`, `AnomalyDinoPipeline`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from engine.anomaly.common import AnomalyParams
from engine.anomaly.methods import ANOMALYDINO, MUSC, NO_REFERENCES, WINCLIP, Method, get_method
from engine.anomaly.pipeline import AnomalyResult, ReferenceMemory, WinClipPipeline
from engine.anomaly.thresholds import CALIBRATION_RULE, IN_SET_RULE
from engine.errors import UserInputError
from engine.presets import Preset
from engine.progress import ProgressCallback, ignore_progress


class Scorer(ABC):
    """A method on its loaded pipeline. `prepare` then `score`, any number of times."""

    method: Method
    calibration_rule = CALIBRATION_RULE

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.references: list[Image.Image] = []

    @property
    def device(self) -> torch.device:
        return self.pipeline.device

    def prepare(self, params: AnomalyParams, references: Sequence[Image.Image]) -> None:
        """Remember the job's parameters and good parts (and encode what can be encoded once)."""
        self.params, self.references = params, list(references)

    @abstractmethod
    def score(self, images: Sequence[Image.Image], batch_size: int | None = None,
              progress: ProgressCallback = ignore_progress) -> list[AnomalyResult]:
        """Scores in [0, 1] and maps at each image's size."""

    @abstractmethod
    def good_part_scores(self) -> tuple[list[float], list[float]] | None:
        """(image score, map maximum) of each good part scored without itself; None with fewer than 2."""


class WinClipScorer(Scorer):
    method = WINCLIP

    def prepare(self, params: AnomalyParams, references: Sequence[Image.Image]) -> None:
        super().prepare(params, references)
        self.pipeline.text_embeddings(params.object_name)
        self.memory: ReferenceMemory | None = self.pipeline.reference_memory(references) if references else None

    def score(self, images: Sequence[Image.Image], batch_size: int | None = None,
              progress: ProgressCallback = ignore_progress) -> list[AnomalyResult]:
        return self.pipeline(images, self.params.object_name, references=self.memory, batch_size=batch_size,
                             progress=progress)

    def good_part_scores(self) -> tuple[list[float], list[float]] | None:
        """Leave one out on the reference memory's embeddings: no image is encoded twice."""
        if self.memory is None or self.memory.count < 2:
            return None
        text = self.pipeline.text_embeddings(self.params.object_name)
        scores, pixel_max = [], []
        for index in range(self.memory.count):
            score, grid = self.pipeline.score_embeddings(self.memory.embeddings_of(index), text,
                                                         self.memory.without(index))
            scores.append(float(score[0]))
            pixel_max.append(float(grid.max()))  # bilinear upsampling never exceeds the grid's maximum
        return scores, pixel_max


class AnomalyDinoScorer(Scorer):
    method = ANOMALYDINO

    def prepare(self, params: AnomalyParams, references: Sequence[Image.Image]) -> None:
        if not references:
            raise UserInputError(NO_REFERENCES)
        super().prepare(params, references)
        self.memory = self.pipeline.reference_memory(references, rotate=params.rotate_references)

    def score(self, images: Sequence[Image.Image], batch_size: int | None = None,
              progress: ProgressCallback = ignore_progress) -> list[AnomalyResult]:
        return self.pipeline(images, references=self.memory, batch_size=batch_size, progress=progress,
                             mask_background=self.params.mask_background)

    def good_part_scores(self) -> tuple[list[float], list[float]] | None:
        if self.memory.count < 2:
            return None
        return self.pipeline.leave_one_out(self.memory, mask_background=self.params.mask_background)


class MuscScorer(Scorer):
    """MuSc scores a set against itself: good parts join the set (more others to compare with) and their scores
    in it calibrate the threshold."""

    method = MUSC
    calibration_rule = IN_SET_RULE

    def __init__(self, pipeline: Any) -> None:
        super().__init__(pipeline)
        self._good: tuple[list[float], list[float]] | None = None

    def score(self, images: Sequence[Image.Image], batch_size: int | None = None,
              progress: ProgressCallback = ignore_progress) -> list[AnomalyResult]:
        results = self.pipeline([*images, *self.references], batch_size=batch_size, progress=progress)
        good = results[len(images):]
        self._good = ([r.score for r in good], [float(r.anomaly_map.max()) for r in good]) if len(good) >= 2 else None
        return results[: len(images)]

    def good_part_scores(self) -> tuple[list[float], list[float]] | None:
        return self._good


SCORERS: dict[str, type[Scorer]] = {s.method.name: s for s in (WinClipScorer, AnomalyDinoScorer, MuscScorer)}


def pipeline_class(method: Method) -> type:
    if method is MUSC:
        from engine.anomaly.musc import MuscPipeline

        return MuscPipeline
    if method is ANOMALYDINO:
        from engine.anomaly.anomalydino import AnomalyDinoPipeline

        return AnomalyDinoPipeline
    return WinClipPipeline


def scorer_for(preset: Preset, device: str | None = None) -> Scorer:
    """A fresh scorer on the process-wide pipeline of a preset (each model loads once per worker)."""
    from engine.loading import get_pipeline

    method = get_method(preset.method)
    return SCORERS[method.name](get_pipeline(pipeline_class(method), preset.name, device))
