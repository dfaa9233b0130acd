"""Job kind `anomaly_video`: one video scored frame by frame, with an overlay video and a score timeline.

Torch-free at import: the web process checks a job's parameters with `Params` before storing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.anomaly.common import InspectionParams, InspectionResult, load_scorer
from engine.errors import UserInputError
from engine.params import Inputs as BaseInputs
from engine.params import NamedFile, param
from engine.progress import ProgressCallback, ignore_progress


@dataclass(frozen=True)
class Params(InspectionParams):
    stride: int | None = param(None, "video: score every Nth frame", ge=1, label="Every Nth frame")
    fps: float | None = param(None, "video: score about this many frames per second", ge=0.01,
                              label="Frames per second")

    def check(self) -> None:
        super().check()
        if self.stride is not None and self.fps is not None:
            raise UserInputError("stride, fps: give either a frame stride or frames per second, not both.")


@dataclass(frozen=True)
class Inputs(BaseInputs):
    video: list[NamedFile]  # exactly one
    references: list[NamedFile]  # optional images of good parts (switch on WinCLIP+)


@dataclass
class Result(InspectionResult):
    video: dict[str, Any]  # file, size, rate, duration and how it was sampled
    frames: list[dict[str, Any]]  # per sampled frame: frame, time_s, score, verdict, map_max, file[, overlay]
    counts: dict[str, int]  # frames, OK, NG, flagged_images_kept
    max_score: float | None


def run(inputs: Inputs, params: Params, out_dir: Path, progress: ProgressCallback = ignore_progress,
        device: str | None = None) -> Result:
    from engine.anomaly import inspection

    if len(inputs.video) != 1:
        raise UserInputError("Upload exactly one video (mp4, webm, mov, avi or mkv) per job.")
    scorer = load_scorer(params.preset, progress, device)
    return inspection.inspect_video(scorer, inputs, params, out_dir, progress)
