"""Job kind `anomaly`: a batch of images (zips expanded) scored, with OK / NG verdicts and heat maps.

Torch-free at import: the web process checks a job's parameters with `Params` before storing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.anomaly.common import InspectionParams, InspectionResult, load_scorer
from engine.params import Inputs as BaseInputs
from engine.params import NamedFile
from engine.progress import ProgressCallback, ignore_progress


@dataclass(frozen=True)
class Params(InspectionParams):
    """An inspection of images: the shared inspection parameters, nothing more."""


@dataclass(frozen=True)
class Inputs(BaseInputs):
    images: list[NamedFile]  # images or zips of them
    references: list[NamedFile]  # optional images of good parts (switch on WinCLIP+)


@dataclass
class Result(InspectionResult):
    map_encoding: str
    images: list[dict[str, Any]]  # per image: file, score, verdict, width, height, map_min, map_max, map, overlay, card
    counts: dict[str, int]  # OK, NG, skipped


def run(inputs: Inputs, params: Params, out_dir: Path, progress: ProgressCallback = ignore_progress,
        device: str | None = None) -> Result:
    from engine.anomaly import inspection

    scorer = load_scorer(params.preset, progress, device)
    return inspection.inspect_images(scorer, inputs, params, out_dir, progress)
