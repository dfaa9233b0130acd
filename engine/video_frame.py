"""The contract of video-frame jobs: one frame of a video as frame.png, the canvas a page draws on (the insertion
tab's anchor frame, the annotation-completion tab's first frame).

A quick job of its own, so the web process never decodes a video (it imports no video decoder, and a video that
crashes the decoder crashes a worker, which is replaced, not the app). Torch-free at import, like every contract.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import UserInputError
from engine.params import Inputs as BaseInputs
from engine.params import NamedFile, check_one, param
from engine.params import Params as BaseParams
from engine.params import Result as BaseResult
from engine.progress import ProgressCallback, ignore_progress

if TYPE_CHECKING:
    from engine.video import VideoFrame

FRAME_FILE = "frame.png"


ONE_VIDEO = "Upload one video to take the frame from."

@dataclass(frozen=True)
class Params(BaseParams):
    frame: int = param(0, "the frame to show: the first decodable one at or after it", ge=0, label="Frame")

    def check_inputs(self, files: Mapping[str, Sequence[NamedFile]]) -> None:
        check_one(files.get("video", ()), ONE_VIDEO)


@dataclass(frozen=True)
class Inputs(BaseInputs):
    video: list[NamedFile]


@dataclass
class Result(BaseResult):
    frame: int  # the index decoded: the first frame at or after the one asked for


def decode_frame(path: Path, name: str, index: int) -> VideoFrame:
    """The first decodable frame at or after `index` (an insertion job's anchor: what it generates first)."""
    from engine.video import iter_frames

    frame = next((f for f in iter_frames(path, display_name=name) if f.index >= index), None)
    if frame is None:
        raise UserInputError(f"{name}: frame {index} could not be decoded; choose an earlier frame." if index
                             else f"{name}: no frame of it could be decoded.")
    return frame


def run(inputs: Inputs, params: Params, out_dir: Path, progress: ProgressCallback = ignore_progress) -> Result:
    """Decode the frame of the one uploaded video into out_dir/frame.png."""
    check_one(inputs.video, ONE_VIDEO)
    frame = decode_frame(inputs.video[0][1], inputs.video[0][0], params.frame)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame.image.save(out_dir / FRAME_FILE)
    return Result(frame.index, outputs=[FRAME_FILE])
