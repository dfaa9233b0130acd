"""Video in and out with PyAV: probe before decoding, sample frames lazily, write browser or lossless video.

Frames are decoded one at a time and handed on, so a long video never sits in memory. Limits
(duration, frame size, frames sampled and decoded) are checked from the container's metadata before
any frame is decoded, and again while decoding, since metadata can lie.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import numpy as np
from PIL import Image

from engine.errors import UserInputError
from engine.filetypes import VIDEO_SUFFIXES

T = TypeVar("T")


def max_video_seconds() -> float:
    """Longest accepted video (FEWSHOT_MAX_VIDEO_SECONDS, default 600 s)."""
    return float(os.environ.get("FEWSHOT_MAX_VIDEO_SECONDS", 600))


def max_video_pixels() -> int:
    """Largest accepted frame (FEWSHOT_MAX_VIDEO_PIXELS, default 3840 x 2160)."""
    return int(os.environ.get("FEWSHOT_MAX_VIDEO_PIXELS", 3840 * 2160))


def max_video_frames() -> int:
    """Most frames sampled from one video (FEWSHOT_MAX_VIDEO_FRAMES, default 3000): the work a video makes.

    Seconds alone do not bound it: timestamps can be 1/90000 s apart. Decoding stops as well after
    RAW_FRAMES_PER_SAMPLED times as many source frames, whatever the sampling.
    """
    return int(os.environ.get("FEWSHOT_MAX_VIDEO_FRAMES", 3000))


RAW_FRAMES_PER_SAMPLED = 50  # source frames decoded at most per allowed sampled frame (600 s at 250 fps by default)


def _too_many_frames(name: str, what: str) -> UserInputError:
    limit = max_video_frames()
    return UserInputError(f"{name}: {what}; at most {limit:,} sampled frames and {limit * RAW_FRAMES_PER_SAMPLED:,} "
                          "decoded frames are accepted per video (FEWSHOT_MAX_VIDEO_FRAMES). Sample fewer frames "
                          "(a larger frame stride or fewer frames per second), cut the video, or raise the limit.")


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frame_count: int  # from the container, or estimated from duration x fps
    duration_s: float
    codec: str


@dataclass(frozen=True)
class VideoFrame:
    index: int  # position in the source video, counting every decoded frame
    time_s: float
    image: Image.Image

    @property
    def label(self) -> str:
        """A name that says where the frame came from, e.g. 'frame 000120 (4.00 s)'."""
        return f"frame {self.index:06d} ({self.time_s:.2f} s)"


def _open(path: Path, name: str):
    import av

    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise UserInputError(f"{name}: not an accepted video type; accepted: {', '.join(VIDEO_SUFFIXES)}.")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.EOFError:
        raise UserInputError(f"{name}: the video has no frames.") from None
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise UserInputError(f"{name}: cannot be read as a video ({exc.__class__.__name__}); "
                             f"the file may be damaged or not a video.") from None
    if not container.streams.video:
        container.close()
        raise UserInputError(f"{name}: the file has no video stream.")
    return container


# A display matrix's rotation (degrees counter-clockwise, as PyAV gives it) to the turn that stands the frame up.
_UPRIGHT = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}


def _quarter_turns(frame) -> int:
    """The frame's display rotation in degrees (0, 90, 180 or 270 counter-clockwise): phones record upright
    video sideways and flag it so; players, browsers and the page turn it, so every tool must too."""
    try:
        angle = frame.rotation
    except (AttributeError, ValueError):
        return 0
    return round(angle / 90) % 4 * 90 if angle and math.isfinite(angle) else 0


def _upright(frame) -> Image.Image:
    """The decoded frame as it is shown: turned by its rotation flag, like a player does."""
    image = frame.to_image()
    turn = _quarter_turns(frame)
    return image.transpose(_UPRIGHT[turn]) if turn else image


def probe_video(path: str | Path, display_name: str | None = None) -> VideoInfo:
    """Read a video's size, rate and length from its metadata, and decode its first frame.

    The size is the frame's as shown: a video flagged as turned by a quarter has width and height swapped.

    Raises UserInputError for an undecodable file, a video without frames, or one over the limits.
    """
    import av

    path = Path(path)
    name = display_name or path.name
    container = _open(path, name)
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        if stream.duration is not None and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = (container.duration or 0) / 1_000_000
        frames = stream.frames or (round(duration * fps) if fps and duration else 0)
        codec = stream.codec_context.name
        try:
            first = next(container.decode(stream), None)
        except (av.FFmpegError, ValueError):
            first = None
        if first is None:
            raise UserInputError(f"{name}: no frame could be decoded (the video is empty or damaged).")
        width, height = first.width, first.height
        if _quarter_turns(first) in (90, 270):
            width, height = height, width
    finally:
        container.close()
    if not fps or fps <= 0 or not math.isfinite(fps):
        fps = 25.0  # no rate in the container: a common default, used only for timestamps
    frames = max(frames, 1)
    duration = duration or frames / fps
    _check_limits(name, width, height, duration)
    return VideoInfo(width, height, fps, frames, duration, codec)


def _check_limits(name: str, width: int, height: int, duration: float) -> None:
    if duration > max_video_seconds():
        raise UserInputError(f"{name}: the video lasts {duration:.0f} s; at most {max_video_seconds():.0f} s are "
                             "accepted (FEWSHOT_MAX_VIDEO_SECONDS). Cut it or raise the limit.")
    if width * height > max_video_pixels():
        raise UserInputError(f"{name}: frames of {width}x{height} pixels are larger than the limit of "
                             f"{max_video_pixels():,} pixels (FEWSHOT_MAX_VIDEO_PIXELS). Downscale the video.")


def sampling_step(info: VideoInfo, stride: int | None = None, fps: float | None = None) -> float:
    """Source frames between two sampled frames: `stride` frames, or the source rate / `fps`."""
    if stride is not None and fps is not None:
        raise UserInputError("Give either a frame stride or frames per second, not both.")
    if fps is not None:
        if not fps > 0:
            raise UserInputError(f"Frames per second must be above 0, not {fps}.")
        return max(info.fps / fps, 1.0)
    stride = 1 if stride is None else stride
    if int(stride) != stride or stride < 1:
        raise UserInputError(f"The frame stride must be a whole number of at least 1, not {stride}.")
    return float(stride)


def sampled_frame_count(info: VideoInfo, stride: int | None = None, fps: float | None = None) -> int:
    """How many frames `iter_frames` will yield with these settings (from the metadata's frame count)."""
    return max(1, math.ceil(info.frame_count / sampling_step(info, stride, fps)))


def iter_frames(
    path: str | Path, stride: int | None = None, fps: float | None = None, display_name: str | None = None,
    info: VideoInfo | None = None,
) -> Iterator[VideoFrame]:
    """Decode a video lazily and yield every `stride`-th frame, or frames at about `fps` per second.

    Frame 0 is always yielded; with `fps`, a frame is kept each time the sampling clock passes the
    next multiple of the step, so the output rate holds for any source rate. `info` is the file's
    `probe_video` result when the caller has it already (the file is not probed twice). The frame
    limits (`max_video_frames`) are checked from the metadata first and again while decoding, so a
    video that lies about its frames stops after at most that many sampled frames.
    """
    import av

    path = Path(path)
    name = display_name or path.name
    info = info or probe_video(path, name)
    step = sampling_step(info, stride, fps)
    limit = max_video_frames()
    if sampled_frame_count(info, stride, fps) > limit or info.frame_count > limit * RAW_FRAMES_PER_SAMPLED:
        raise _too_many_frames(name, f"{info.frame_count:,} frames sampled every {step:g} give "
                                     f"{sampled_frame_count(info, stride, fps):,}")
    sampled = 0
    container = _open(path, name)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        next_pick = 0.0
        index = -1
        try:
            for frame in container.decode(stream):
                index += 1
                if index >= limit * RAW_FRAMES_PER_SAMPLED:
                    raise _too_many_frames(name, f"it holds more than {index:,} frames (more than its metadata says)")
                time_s = float(frame.time) if frame.time is not None else index / info.fps
                if time_s > max_video_seconds():
                    raise UserInputError(f"{name}: the video runs past {max_video_seconds():.0f} s "
                                         "(FEWSHOT_MAX_VIDEO_SECONDS); its metadata understated its length.")
                if index + 1e-9 < next_pick:
                    continue
                next_pick += step
                sampled += 1
                if sampled > limit:
                    raise _too_many_frames(name, f"more than {limit:,} frames are sampled (more than its metadata "
                                                 "says)")
                _check_limits(name, frame.width, frame.height, 0)
                yield VideoFrame(index, time_s, _upright(frame))
        except av.FFmpegError as exc:
            raise UserInputError(f"{name}: decoding failed after frame {index} ({exc.__class__.__name__}); "
                                 "the file is damaged from there on.") from None
    finally:
        container.close()


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last may be shorter), pulling lazily from `items`."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def yuv420(rgb: np.ndarray) -> np.ndarray:
    """An RGB frame (even sides) as planar YUV 4:2:0, BT.601 limited range as swscale's default, in integers:
    the same on every CPU. Returns the (height * 3 / 2, width) layout PyAV takes."""
    r, g, b = (rgb[..., channel].astype(np.int32) for channel in range(3))
    height, width = r.shape
    luma = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16
    blue = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128
    red = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128

    def halved(plane: np.ndarray) -> np.ndarray:  # the mean of each 2x2 block, rounded
        return (plane.reshape(height // 2, 2, width // 2, 2).sum(axis=(1, 3)) + 2) >> 2

    planes = (luma.ravel(), halved(blue).ravel(), halved(red).ravel())
    return np.concatenate(planes).astype(np.uint8).reshape(height * 3 // 2, width)


_CODECS = {".webm": ("libvpx-vp9", "yuv420p"), ".avi": ("mpeg4", "yuv420p")}


class VideoWriter:
    """Write frames to a video file as they come.

    The codec follows the suffix: H.264 for .mp4/.mov/.mkv (plays in browsers), VP9 for .webm,
    MPEG-4 part 2 for .avi; 4:2:0 video pads odd sizes by one edge pixel. `lossless=True` (.mkv):
    FFV1 with RGB kept exactly, for checks and archives. `reproducible=True`: one encoder thread, no version
    tags, x264's CPU-independent algorithms and the RGB to YUV conversion done here (swscale's and x264's SIMD
    differ between CPUs: an AVX-512 machine rebuilt a committed sample differently), so the same frames give the
    same bytes on any machine with the same PyAV (committed samples).
    """

    def __init__(self, path: str | Path, fps: float, lossless: bool = False, quality: int = 18,
                 reproducible: bool = False) -> None:
        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.lossless = lossless
        self.quality = quality
        self.reproducible = reproducible
        self.frames = 0
        self._container = None
        self._stream = None
        self._size: tuple[int, int] | None = None

    def __enter__(self) -> VideoWriter:
        return self

    def _start(self, width: int, height: int) -> None:
        import av

        suffix = self.path.suffix.lower()
        codec, pix_fmt = ("ffv1", "bgr0") if self.lossless else _CODECS.get(suffix, ("libx264", "yuv420p"))
        options = {"movflags": "+faststart"} if suffix in (".mp4", ".mov") else {}  # play while loading
        if self.reproducible:
            options["fflags"] = "+bitexact"
        self._container = av.open(str(self.path), mode="w", options=options)
        self._stream = self._container.add_stream(codec, rate=self.fps)
        self._stream.pix_fmt = pix_fmt
        if codec == "libx264":
            self._stream.options = {"crf": str(self.quality), "preset": "veryfast", **(
                {"threads": "1", "x264-params": "cpu-independent=1"} if self.reproducible else {})}
        even = pix_fmt == "yuv420p"  # 4:2:0 chroma needs even sizes
        self._stream.width = width + (width % 2 if even else 0)
        self._stream.height = height + (height % 2 if even else 0)

    def write(self, image: Image.Image | np.ndarray) -> None:
        """Append one RGB frame; every frame must have the size of the first."""
        import av

        array = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.uint8)
        height, width = array.shape[:2]
        if self._stream is None:
            self._start(width, height)
            self._size = (width, height)
        elif (width, height) != self._size:
            raise ValueError(f"frame {self.frames} is {width}x{height}, the video is {self._size[0]}x{self._size[1]}")
        pad_h, pad_w = self._stream.height - height, self._stream.width - width
        if pad_h or pad_w:
            array = np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        if self.reproducible and self._stream.pix_fmt == "yuv420p":
            frame = av.VideoFrame.from_ndarray(yuv420(array), format="yuv420p")
        else:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        if self._container is None:
            return
        if self._stream is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
        self._container.close()
        self._container = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
