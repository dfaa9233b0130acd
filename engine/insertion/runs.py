"""Insertion runs on files, the same for jobs and the CLI: read inputs, mark the region, write the outputs.

Image run: `result_seed<seed>.png` per seed, `mask.png` (the mask as generated) and `summary.json`.
Video run: `result.mp4` (H.264 at the input's rate and size, with its audio), `result_lossless.mkv`
(FFV1, exact pixels), `anchor.png`, `anchor_mask.png` and `summary.json`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from engine.errors import UserInputError
from engine.insertion.insert import NO_FRAME_MASKS, ImageResult, Params, VideoResult
from engine.insertion.pipeline import FrameRegion, InsertionPipeline
from engine.insertion.regions import (
    interpolate_boxes,
    load_image_with_alpha,
    mask_from_box,
    mask_from_image,
    parse_box,
    parse_keyframes,
    unmarked_region,
)
from engine.media import load_image
from engine.params import NamedFile, Result
from engine.presets import get_preset
from engine.progress import ProgressCallback, ignore_progress
from engine.video import VideoWriter, iter_frames, probe_video
from engine.video_frame import decode_frame

ResultT = TypeVar("ResultT", bound=Result)
AUDIO_COPY_CODECS = ("aac", "mp3", "alac")  # kept as they are in an mp4; anything else becomes AAC


def region_from(size: tuple[int, int], mask_files: Sequence[NamedFile] = (), box: Sequence[float] | None = None,
                what: str = "the image") -> np.ndarray:
    """The union of the marked pixels of mask files (drawn layers) and a box; at least one is needed."""
    if not mask_files and box is None:
        raise unmarked_region(what)
    mask = np.zeros((size[1], size[0]), dtype=bool)
    for name, path in mask_files:
        mask |= mask_from_image(load_image_with_alpha(path, name), size, name)
    if box is not None:
        mask |= mask_from_box(parse_box(box, size), size)
    return mask


def painted_beyond_box(mask: np.ndarray, box: Sequence[float] | None, size: tuple[int, int]) -> bool:
    """Whether a region marks pixels its box (if any) does not: what was drawn or uploaded, which a form that can
    show only the box would lose."""
    return bool((mask & ~mask_from_box(parse_box(box, size), size)).any() if box is not None else mask.any())


def _settings(params: Params, notes: list[str]) -> dict[str, Any]:
    """The fields every result repeats from the parameters (what was asked for, and of which model)."""
    preset = get_preset(params.preset)
    return {"prompt": params.prompt, "negative_prompt": params.negative_prompt, "mode": params.mode,
            "seed": params.seed, "steps": params.steps, "guidance": params.guidance, "strength": params.strength,
            "preset": preset.name, "random_weights": preset.random_weights, "notes": notes}


def _save_mask(mask: np.ndarray, path: Path) -> None:
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)


def _with_summary(out_dir: Path, result: ResultT) -> ResultT:
    """The result, also written as summary.json (listed last among the outputs)."""
    (out_dir / "summary.json").write_text(json.dumps(result.to_json(), indent=2))
    result.outputs.append("summary.json")
    return result


def run_image(pipeline: InsertionPipeline, image_file: NamedFile, params: Params, out_dir: Path,
              mask_files: Sequence[NamedFile] = (), progress: ProgressCallback = ignore_progress) -> ImageResult:
    """Insert into one image file, once per seed; writes a PNG per seed, mask.png and summary.json."""
    name, path = image_file
    image = load_image(path, display_name=name)
    mask = region_from(image.size, mask_files, params.box)
    result = pipeline.insert_image(image, mask, params, progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for seed, picture in result.images:
        files.append(f"result_seed{seed}.png")
        picture.save(out_dir / files[-1])
    _save_mask(result.mask, out_dir / "mask.png")
    records = [{"seed": seed, "file": file} for (seed, _), file in zip(result.images, files, strict=True)]
    return _with_summary(out_dir, ImageResult(
        **_settings(params, result.notes), kind="image", file=name, width=image.width, height=image.height,
        painted=painted_beyond_box(mask, params.box, image.size), crop_box=list(result.crop_box), images=records,
        outputs=[*files, "mask.png"]))


def frame_masks(size: tuple[int, int], params: Params, mask_files: Sequence[NamedFile] = (),
                frame_mask_files: Sequence[NamedFile] = ()) -> Callable[[int], np.ndarray]:
    """The region of each frame, by the chosen mode: the anchor's region on every frame, boxes
    interpolated between keyframes, or one uploaded mask per frame (in name order)."""
    if params.region_mode == "same":
        mask = region_from(size, mask_files, params.box, what=f"the anchor frame {params.anchor_frame}")
        return lambda index: mask
    if params.region_mode == "interpolate":
        marks = parse_keyframes(params.keyframes or "", size)
        if params.box is not None:
            marks.append((params.anchor_frame, parse_box(params.box, size)))
        return lambda index: mask_from_box(interpolate_boxes(marks, index), size)
    ordered = sorted(frame_mask_files, key=lambda item: item[0])
    if not ordered:
        raise UserInputError(NO_FRAME_MASKS)

    def per_frame(index: int) -> np.ndarray:
        if index >= len(ordered):
            raise UserInputError(f"Per-frame masks: {len(ordered)} masks were uploaded, but the video has "
                                 f"a frame {index}; upload one mask per frame.")
        return mask_from_image(load_image_with_alpha(ordered[index][1], ordered[index][0]), size, ordered[index][0])

    return per_frame


def run_video(pipeline: InsertionPipeline, video_file: NamedFile, params: Params, out_dir: Path,
              mask_files: Sequence[NamedFile] = (), frame_mask_files: Sequence[NamedFile] = (),
              progress: ProgressCallback = ignore_progress) -> VideoResult:
    """Insert into every frame of a video file (the anchor first); writes the videos, the anchor and summary.json."""
    name, path = video_file
    info = probe_video(path, display_name=name)
    if info.frame_count < 2:
        raise UserInputError(f"{name}: the video has a single frame; use image insertion for a still picture.")
    anchor_index = params.anchor_frame
    if anchor_index >= info.frame_count:
        raise UserInputError(f"The anchor frame must be 0 to {info.frame_count - 1}, not {anchor_index}.")
    size = (info.width, info.height)
    mask_of = frame_masks(size, params, mask_files, frame_mask_files)
    anchor_frame = decode_frame(path, name, anchor_index)
    anchor = FrameRegion(anchor_frame.index, anchor_frame.image, mask_of(anchor_frame.index))

    def frames() -> Iterator[FrameRegion]:
        for frame in iter_frames(path, display_name=name):
            yield FrameRegion(frame.index, frame.image, mask_of(frame.index))

    out_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    with VideoWriter(out_dir / "result.mp4", info.fps) as browser, \
            VideoWriter(out_dir / "result_lossless.mkv", info.fps, lossless=True) as lossless:
        for result in pipeline.insert_video(anchor, frames(), params, total=info.frame_count, progress=progress):
            browser.write(result.image)
            lossless.write(result.image)
            written += 1
            if result.index == anchor.index:
                result.image.save(out_dir / "anchor.png")
                _save_mask(result.mask, out_dir / "anchor_mask.png")
    if written < 2:
        raise UserInputError(f"{name}: only {written} frame could be decoded; use image insertion for a still picture.")
    audio = keep_audio(path, out_dir / "result.mp4")
    return _with_summary(out_dir, VideoResult(
        **_settings(params, pipeline.prompt_notes(params)), kind="video", file=name, width=info.width,
        height=info.height, painted=params.region_mode == "same" and painted_beyond_box(anchor.mask, params.box, size),
        fps=info.fps, frames=written, anchor_frame=anchor.index, region_mode=params.region_mode,
        extended_attention=params.extended_attention, audio=audio,
        outputs=["result.mp4", "result_lossless.mkv", "anchor.png", "anchor_mask.png"]))


def keep_audio(source: Path, video: Path) -> str | None:
    """Mux the source's first audio track into `video` (copied, or as AAC); returns its codec, None if none."""
    import av

    with av.open(str(source)) as original:
        if not original.streams.audio:
            return None
    joined = video.with_name(f".{video.stem}.audio{video.suffix}")
    with av.open(str(source)) as original, av.open(str(video)) as pictures, \
            av.open(str(joined), "w", options={"movflags": "+faststart"}) as out:
        audio_in = original.streams.audio[0]
        video_out = out.add_stream_from_template(pictures.streams.video[0])
        copy = audio_in.codec_context.name in AUDIO_COPY_CODECS
        audio_out = out.add_stream_from_template(audio_in) if copy else out.add_stream("aac", rate=audio_in.rate)
        for packet in pictures.demux(pictures.streams.video[0]):
            if packet.dts is not None:
                packet.stream = video_out
                out.mux(packet)
        for packet in original.demux(audio_in):
            if copy and packet.dts is not None:
                packet.stream = audio_out
                out.mux(packet)
            elif not copy:
                for frame in packet.decode():
                    out.mux(audio_out.encode(frame))
        if not copy:
            out.mux(audio_out.encode(None))
        codec = audio_out.codec_context.name
    os.replace(joined, video)
    return codec
