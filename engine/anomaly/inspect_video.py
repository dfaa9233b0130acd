"""Job kind `anomaly_video`: one video scored frame by frame, with an overlay video and a score timeline.

Torch-free at import: the web process checks a job's parameters with `Params` before storing it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.anomaly.common import InspectionParams, InspectionResult, load_scorer
from engine.errors import UserInputError
from engine.params import Inputs as BaseInputs
from engine.params import NamedFile, check_one, param
from engine.progress import ProgressCallback, ignore_progress

ONE_VIDEO = "Upload exactly one video (mp4, webm, mov, avi or mkv) per job."

@dataclass(frozen=True)
class Params(InspectionParams):
    stride: int | None = param(None, "video: score every Nth frame", ge=1, label="Every Nth frame")
    fps: float | None = param(None, "video: score about this many frames per second", ge=0.01,
                              label="Frames per second")

    def check(self) -> None:
        super().check()
        if self.stride is not None and self.fps is not None:
            raise UserInputError("stride, fps: give either a frame stride or frames per second, not both.")

    def check_inputs(self, files: Mapping[str, Sequence[NamedFile]]) -> None:
        super().check_inputs(files)
        check_one(files.get("video", ()), ONE_VIDEO)


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


def check_set_size(inputs: Inputs, params: Params) -> None:
    """Refuse a video too short for a set method (MuSc scores frames against each other) before its model loads,
    from the metadata's frame count: the job would otherwise fail only after loading it. Good parts join the set,
    so with any given the scorer checks the whole set itself."""
    from engine.anomaly.methods import get_method
    from engine.video import probe_video, sampled_frame_count

    method = get_method(params.method)
    if method.min_images <= 1 or inputs.references:
        return
    name, path = inputs.video[0]
    sampled = sampled_frame_count(probe_video(path, name), params.stride, params.fps)
    if sampled < method.min_images:
        raise UserInputError(f"{name}: {sampled} frame(s) sampled; {method.label} scores frames against each other "
                             f"and needs at least {method.min_images}. Sample more frames (a smaller step or more "
                             "frames per second), add good parts, or use WinCLIP.")


def run(inputs: Inputs, params: Params, out_dir: Path, progress: ProgressCallback = ignore_progress,
        device: str | None = None) -> Result:
    from engine.anomaly import inspection

    check_one(inputs.video, ONE_VIDEO)
    check_set_size(inputs, params)
    scorer = load_scorer(params.preset, progress, device)
    return inspection.inspect_video(scorer, inputs, params, out_dir, progress)
