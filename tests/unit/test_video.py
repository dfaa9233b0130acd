"""Video probing, lazy frame sampling, limits and writing."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from engine.errors import UserInputError
from engine.video import (
    VideoWriter,
    batched,
    iter_frames,
    probe_video,
    sampled_frame_count,
    yuv420,
)
from tests.helpers import moving_square_video


def test_lossless_round_trip_keeps_every_pixel(tmp_path: Path) -> None:
    written = moving_square_video(tmp_path / "v.mkv", frames=6, size=(51, 37), lossless=True)
    frames = list(iter_frames(tmp_path / "v.mkv"))
    assert [f.index for f in frames] == list(range(6))
    for frame in frames:
        assert np.array_equal(np.asarray(frame.image), written[frame.index])


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".mov", ".avi"])
def test_probe_reads_size_rate_and_length(tmp_path: Path, suffix: str) -> None:
    moving_square_video(tmp_path / f"v{suffix}", frames=20, size=(64, 48), fps=10)
    info = probe_video(tmp_path / f"v{suffix}")
    assert (info.width, info.height, info.fps, info.frame_count) == (64, 48, 10.0, 20)
    assert info.duration_s == pytest.approx(2.0, abs=0.15)


def test_stride_and_fps_sampling(tmp_path: Path) -> None:
    moving_square_video(tmp_path / "v.mp4", frames=20, fps=10)
    info = probe_video(tmp_path / "v.mp4")
    by_stride = list(iter_frames(tmp_path / "v.mp4", stride=3))
    assert [f.index for f in by_stride] == [0, 3, 6, 9, 12, 15, 18]
    assert len(by_stride) == sampled_frame_count(info, stride=3)
    by_rate = list(iter_frames(tmp_path / "v.mp4", fps=2.5))  # every 4th frame of a 10 fps video
    assert [f.index for f in by_rate] == [0, 4, 8, 12, 16]
    assert [round(f.time_s, 2) for f in by_rate] == [0.0, 0.4, 0.8, 1.2, 1.6]
    assert by_rate[1].label == "frame 000004 (0.40 s)"
    assert len(by_rate) == sampled_frame_count(info, fps=2.5)
    # A rate above the source's keeps every frame.
    assert len(list(iter_frames(tmp_path / "v.mp4", fps=100))) == 20


def test_frames_are_decoded_lazily_in_batches(tmp_path: Path) -> None:
    moving_square_video(tmp_path / "v.mp4", frames=30)
    pulled = []

    def counting():
        for frame in iter_frames(tmp_path / "v.mp4"):
            pulled.append(frame.index)
            yield frame

    batches = batched(counting(), 4)
    first = next(batches)
    assert [f.index for f in first] == [0, 1, 2, 3]
    assert pulled == [0, 1, 2, 3]  # nothing decoded beyond the batch being used
    rest = list(batches)
    assert [len(b) for b in rest] == [4] * 6 + [2]


@pytest.mark.parametrize("bad", [
    {"stride": 0}, {"stride": 1.5}, {"fps": 0}, {"fps": -1.0}, {"stride": 2, "fps": 5.0},
])
def test_bad_sampling_settings_are_refused(tmp_path: Path, bad: dict) -> None:
    moving_square_video(tmp_path / "v.mp4", frames=3)
    with pytest.raises(UserInputError):
        next(iter_frames(tmp_path / "v.mp4", **bad))


def test_undecodable_empty_and_wrong_type(tmp_path: Path) -> None:
    (tmp_path / "junk.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 200)
    with pytest.raises(UserInputError, match=r"junk\.mp4"):
        probe_video(tmp_path / "junk.mp4")
    container = av.open(str(tmp_path / "empty.mkv"), "w")  # a header and a stream, zero frames
    stream = container.add_stream("ffv1", rate=10)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "bgr0"
    container.start_encoding()  # writes the header
    container.close()
    with pytest.raises(UserInputError, match=r"empty\.mkv: the video has no frames"):
        probe_video(tmp_path / "empty.mkv")
    (tmp_path / "clip.gif").write_bytes(b"GIF89a")
    with pytest.raises(UserInputError, match=r"accepted: \.mp4, \.webm"):
        probe_video(tmp_path / "clip.gif")
    truncated = tmp_path / "cut.mp4"
    moving_square_video(tmp_path / "whole.mp4", frames=10)
    truncated.write_bytes((tmp_path / "whole.mp4").read_bytes()[:300])
    with pytest.raises(UserInputError, match=r"cut\.mp4"):
        list(iter_frames(truncated))


def test_limits_on_length_and_frame_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    moving_square_video(tmp_path / "v.mp4", frames=20, fps=10)
    monkeypatch.setenv("FEWSHOT_MAX_VIDEO_SECONDS", "1")
    with pytest.raises(UserInputError, match=r"lasts 2 s; at most 1 s"):
        probe_video(tmp_path / "v.mp4")
    monkeypatch.setenv("FEWSHOT_MAX_VIDEO_SECONDS", "600")
    monkeypatch.setenv("FEWSHOT_MAX_VIDEO_PIXELS", "1000")
    with pytest.raises(UserInputError, match="64x48"):
        list(iter_frames(tmp_path / "v.mp4"))


def test_writer_refuses_a_frame_of_another_size(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "v.mp4", 5) as writer:
        writer.write(np.zeros((10, 10, 3), np.uint8))
        with pytest.raises(ValueError, match="10x10"):
            writer.write(np.zeros((12, 10, 3), np.uint8))


def test_a_reproducible_video_has_the_same_bytes_whatever_simd_the_cpu_has(tmp_path: Path, monkeypatch) -> None:
    """Committed samples are rebuilt byte for byte on CI, whatever its CPU: an AVX-512 machine encoded one
    differently. x264 without its assembly (as on a CPU with other SIMD) must give the same bytes."""
    rng = np.random.default_rng(3)
    frames = [np.clip(np.cumsum(rng.integers(0, 12, (40, 64, 3)), axis=1), 0, 255).astype(np.uint8)
              for _ in range(6)]

    def encode(path: Path) -> bytes:
        with VideoWriter(path, 8, quality=27, reproducible=True) as writer:
            for frame in frames:
                writer.write(frame)
        return path.read_bytes()

    native = encode(tmp_path / "native.mp4")
    start = VideoWriter._start

    def without_assembly(self, width: int, height: int) -> None:
        start(self, width, height)
        self._stream.options = {**self._stream.options,
                                "x264-params": ":".join(filter(None, [self._stream.options.get("x264-params"),
                                                                      "asm=0"]))}

    monkeypatch.setattr(VideoWriter, "_start", without_assembly)
    assert encode(tmp_path / "plain.mp4") == native


def test_the_reproducible_colour_conversion_is_swscales_own() -> None:
    """The same colours as FFmpeg's conversion (its chroma siting differs on noise, not on smooth pictures)."""
    rows, columns = np.mgrid[0:32, 0:48]
    rgb = np.stack([rows * 8, columns * 5, 255 - rows * 4 - columns * 2], axis=-1).astype(np.uint8)
    theirs = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray()
    assert theirs.shape == yuv420(rgb).shape
    assert np.abs(theirs.astype(int) - yuv420(rgb).astype(int)).max() <= 2


def dense_timestamp_video(path: Path, frames: int) -> Path:
    """An mp4 whose frames are stamped 1/90000 s apart: thousands of frames in well under a second."""
    from fractions import Fraction

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=90000)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        stream.time_base = Fraction(1, 90000)
        stream.codec_context.time_base = Fraction(1, 90000)
        for pts in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), pts % 256, dtype=np.uint8), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 90000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_frames_are_counted_not_seconds(tmp_path: Path, monkeypatch) -> None:
    import dataclasses
    import time

    monkeypatch.setenv("FEWSHOT_MAX_VIDEO_FRAMES", "100")
    video = dense_timestamp_video(tmp_path / "dense.mp4", 400)
    info = probe_video(video)  # 400 frames in 4.4 ms pass the seconds limit
    assert info.duration_s < 1 and info.frame_count == 400
    with pytest.raises(UserInputError, match=r"dense\.mp4: 400 frames .*at most 100 sampled frames.*"
                                             r"FEWSHOT_MAX_VIDEO_FRAMES.*larger frame stride"):
        next(iter_frames(video))  # refused from the metadata, before decoding
    assert len(list(iter_frames(video, stride=4))) == 100  # sampling fewer is the way out

    lying = dataclasses.replace(info, frame_count=1)  # metadata that understates: counted while decoding
    pulled, started = [], time.monotonic()
    with pytest.raises(UserInputError, match=r"more than 100 frames are sampled.*FEWSHOT_MAX_VIDEO_FRAMES"):
        for frame in iter_frames(video, info=lying):
            pulled.append(frame.index)
    assert len(pulled) == 100 and time.monotonic() - started < 10

    monkeypatch.setenv("FEWSHOT_MAX_VIDEO_FRAMES", "4")  # decoding itself is bounded too: 4 x 50 source frames
    pulled = []
    with pytest.raises(UserInputError, match=r"more than 200 frames"):
        for frame in iter_frames(video, fps=1, info=lying):  # one frame a second: only frame 0 is sampled
            pulled.append(frame.index)
    assert pulled == [0]


def _flag_turned(path: Path, matrix: tuple[int, ...]) -> None:
    """Write a display matrix into the mp4's track header, as a phone does for a video held upright."""
    import struct

    data = bytearray(path.read_bytes())
    identity = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    at = data.find(identity, data.find(b"tkhd"))
    assert at > 0
    data[at:at + 36] = struct.pack(">9I", *matrix)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("matrix", "bright_rows", "bright_cols"), [
    ((0, 0x10000, 0, 0xFFFF0000, 0, 0, 0, 0, 0x40000000), slice(0, 16), slice(None)),  # 'rotate 90': top
    ((0, 0xFFFF0000, 0, 0x10000, 0, 0, 0, 0, 0x40000000), slice(48, 64), slice(None)),  # 'rotate 270': bottom
    ((0xFFFF0000, 0, 0, 0, 0xFFFF0000, 0, 0, 0, 0x40000000), slice(None), slice(48, 64)),  # 'rotate 180': right
])
def test_a_video_flagged_as_turned_is_read_upright(tmp_path: Path, matrix: tuple[int, ...], bright_rows: slice,
                                                   bright_cols: slice) -> None:
    """Frames and the probed size are as a player shows them, so boxes drawn on the page fit the frames."""
    path = tmp_path / "phone.mp4"
    with VideoWriter(path, 10) as writer:
        for _ in range(3):
            frame = np.full((32, 64, 3), 20, np.uint8)
            frame[:, :16] = 240  # the stored frame's left quarter is bright
            writer.write(frame)
    _flag_turned(path, matrix)
    info = probe_video(path)
    frames = list(iter_frames(path))
    size = (32, 64) if bright_cols == slice(None) else (64, 32)
    assert (info.width, info.height) == size
    assert all(frame.image.size == size for frame in frames)
    pixels = np.asarray(frames[0].image).mean(axis=2)
    assert pixels[bright_rows, bright_cols].mean() > 200
    assert pixels.mean() < 100
