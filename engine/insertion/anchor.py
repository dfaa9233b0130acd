"""The contract of anchor-frame jobs: one frame of a video as anchor.png, the canvas the user marks the region on.

A quick job of its own, so the web process never decodes a video (it imports no video decoder): the
insertion tab submits it when a video or the anchor index changes and shows the frame it writes.
Torch-free at import, like every contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import UserInputError
from engine.insertion.insert import anchor_frame_param
from engine.params import Inputs as BaseInputs
from engine.params import NamedFile
from engine.params import Params as BaseParams
from engine.params import Result as BaseResult
from engine.progress import ProgressCallback, ignore_progress

if TYPE_CHECKING:
    from engine.video import VideoFrame


@dataclass(frozen=True)
class Params(BaseParams):
    anchor_frame: int = anchor_frame_param()


@dataclass(frozen=True)
class Inputs(BaseInputs):
    video: list[NamedFile]


@dataclass
class Result(BaseResult):
    anchor_frame: int  # the index decoded: the first frame at or after the one asked for


def decode_anchor(path: Path, name: str, index: int) -> VideoFrame:
    """The first decodable frame at or after `index` (what an insertion job generates first)."""
    from engine.video import iter_frames

    frame = next((f for f in iter_frames(path, display_name=name) if f.index >= index), None)
    if frame is None:
        raise UserInputError(f"{name}: frame {index} could not be decoded; choose an earlier anchor frame.")
    return frame


def run(inputs: Inputs, params: Params, out_dir: Path, progress: ProgressCallback = ignore_progress) -> Result:
    """Decode the anchor frame of the one uploaded video into out_dir/anchor.png."""
    if len(inputs.video) != 1:
        raise UserInputError("Upload one video to take the anchor frame from.")
    frame = decode_anchor(inputs.video[0][1], inputs.video[0][0], params.anchor_frame)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame.image.save(out_dir / "anchor.png")
    return Result(frame.index, outputs=["anchor.png"])
