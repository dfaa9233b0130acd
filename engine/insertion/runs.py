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
from typing import Any

import numpy as np
from PIL import Image

from engine.errors import UserInputError
from engine.insertion.pipeline import FrameRegion, InsertionPipeline, InsertionSettings
from engine.insertion.regions import interpolate_boxes, mask_from_box, mask_from_image, parse_box, parse_keyframes
from engine.media import load_image
from engine.presets import Preset
from engine.progress import ProgressCallback, ignore_progress
from engine.video import VideoWriter, iter_frames, probe_video

NamedFile = tuple[str, Path]
REGION_MODES = ("same", "interpolate", "masks")
AUDIO_COPY_CODECS = ("aac", "mp3", "alac")  # kept as they are in an mp4; anything else becomes AAC


def region_from(size: tuple[int, int], mask_files: Sequence[NamedFile] = (), box: Any = None,
                what: str = "the image") -> np.ndarray:
    """The union of the marked pixels of mask files (drawn layers) and a box; at least one is needed."""
    if not mask_files and box in (None, "", []):
        raise UserInputError(f"Mark the region in {what}: draw over it, upload a mask, or give a box x0,y0,x1,y1.")
    mask = np.zeros((size[1], size[0]), dtype=bool)
    for name, path in mask_files:
        mask |= mask_from_image(load_image_with_alpha(path, name), size, name)
    if box not in (None, "", []):
        mask |= mask_from_box(parse_box(box, size), size)
    return mask


def load_image_with_alpha(path: Path, name: str) -> Image.Image:
    """A mask file through the same checks as any image, keeping a drawn layer's transparency."""
    load_image(path, display_name=name)  # format, size and integrity checks
    with Image.open(path) as image:
        return image.copy()


def _summary(settings: InsertionSettings, preset: Preset | None, notes: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "prompt": settings.prompt, "negative_prompt": settings.negative_prompt, "mode": settings.mode,
        "seed": settings.seed, "steps": settings.steps, "guidance": settings.guidance, "strength": settings.strength,
        "preset": preset.name if preset else None, "random_weights": preset.random_weights if preset else None,
        "notes": notes, **extra,
    }


def _save_mask(mask: np.ndarray, path: Path) -> None:
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)


def _write_summary(out_dir: Path, summary: dict[str, Any], files: list[str]) -> tuple[dict[str, Any], list[str]]:
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary, [*files, "summary.json"]


def run_image(pipeline: InsertionPipeline, image_file: NamedFile, settings: InsertionSettings, out_dir: Path,
              mask_files: Sequence[NamedFile] = (), box: Any = None, variants: int = 1, preset: Preset | None = None,
              progress: ProgressCallback = ignore_progress) -> tuple[dict[str, Any], list[str]]:
    """Insert into one image file, once per seed; returns the summary and the written file names."""
    name, path = image_file
    image = load_image(path, display_name=name)
    mask = region_from(image.size, mask_files, box)
    result = pipeline.insert_image(image, mask, settings, variants=variants, progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for seed, picture in result.images:
        files.append(f"result_seed{seed}.png")
        picture.save(out_dir / files[-1])
    _save_mask(result.mask, out_dir / "mask.png")
    records = [{"seed": seed, "file": file} for (seed, _), file in zip(result.images, files, strict=True)]
    summary = _summary(settings, preset, result.notes, kind="image", file=name, width=image.width,
                       height=image.height, crop_box=list(result.crop_box), images=records)
    return _write_summary(out_dir, summary, [*files, "mask.png"])


def frame_masks(size: tuple[int, int], region_mode: str, anchor_index: int, mask_files: Sequence[NamedFile] = (),
                box: Any = None, keyframes: Any = None,
                frame_mask_files: Sequence[NamedFile] = ()) -> Callable[[int], np.ndarray]:
    """The region of each frame, by the chosen mode: the anchor's region on every frame, boxes
    interpolated between keyframes, or one uploaded mask per frame (in name order)."""
    if region_mode == "same":
        mask = region_from(size, mask_files, box, what=f"the anchor frame {anchor_index}")
        return lambda index: mask
    if region_mode == "interpolate":
        marks = parse_keyframes(keyframes or "", size)
        if box not in (None, "", []):
            marks.append((anchor_index, parse_box(box, size)))
        return lambda index: mask_from_box(interpolate_boxes(marks, index), size)
    if region_mode == "masks":
        ordered = sorted(frame_mask_files, key=lambda item: item[0])
        if not ordered:
            raise UserInputError("Per-frame masks: upload one mask image per frame (sorted by file name).")

        def per_frame(index: int) -> np.ndarray:
            if index >= len(ordered):
                raise UserInputError(f"Per-frame masks: {len(ordered)} masks were uploaded, but the video has "
                                     f"a frame {index}; upload one mask per frame.")
            return mask_from_image(load_image_with_alpha(ordered[index][1], ordered[index][0]), size, ordered[index][0])

        return per_frame
    raise UserInputError(f"Unknown region mode {region_mode!r}; accepted: {', '.join(REGION_MODES)}.")


def run_video(pipeline: InsertionPipeline, video_file: NamedFile, settings: InsertionSettings, out_dir: Path,
              region_mode: str = "same", anchor_index: int = 0, mask_files: Sequence[NamedFile] = (), box: Any = None,
              keyframes: Any = None, frame_mask_files: Sequence[NamedFile] = (), extended_attention: bool = True,
              chunk_size: int | None = None, preset: Preset | None = None,
              progress: ProgressCallback = ignore_progress) -> tuple[dict[str, Any], list[str]]:
    """Insert into every frame of a video file (the anchor first); returns the summary and the file names."""
    name, path = video_file
    settings.check()
    info = probe_video(path, display_name=name)
    if info.frame_count < 2:
        raise UserInputError(f"{name}: the video has a single frame; use image insertion for a still picture.")
    if not 0 <= anchor_index < info.frame_count:
        raise UserInputError(f"The anchor frame must be 0 to {info.frame_count - 1}, not {anchor_index}.")
    size = (info.width, info.height)
    mask_of = frame_masks(size, region_mode, anchor_index, mask_files, box, keyframes, frame_mask_files)
    anchor_frame = next((f for f in iter_frames(path, display_name=name) if f.index >= anchor_index), None)
    if anchor_frame is None:
        raise UserInputError(f"{name}: frame {anchor_index} could not be decoded; choose an earlier anchor frame.")
    anchor = FrameRegion(anchor_frame.index, anchor_frame.image, mask_of(anchor_frame.index))

    def frames() -> Iterator[FrameRegion]:
        for frame in iter_frames(path, display_name=name):
            yield FrameRegion(frame.index, frame.image, mask_of(frame.index))

    out_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    with VideoWriter(out_dir / "result.mp4", info.fps) as browser, \
            VideoWriter(out_dir / "result_lossless.mkv", info.fps, lossless=True) as lossless:
        for result in pipeline.insert_video(anchor, frames(), settings, total=info.frame_count, chunk_size=chunk_size,
                                            extended_attention=extended_attention, progress=progress):
            browser.write(result.image)
            lossless.write(result.image)
            written += 1
            if result.index == anchor.index:
                result.image.save(out_dir / "anchor.png")
                _save_mask(result.mask, out_dir / "anchor_mask.png")
    if written < 2:
        raise UserInputError(f"{name}: only {written} frame could be decoded; use image insertion for a still picture.")
    audio = keep_audio(path, out_dir / "result.mp4")
    summary = _summary(settings, preset, pipeline.prompt_notes(settings), kind="video", file=name, width=info.width,
                       height=info.height, fps=info.fps, frames=written, anchor_frame=anchor.index,
                       region_mode=region_mode, extended_attention=extended_attention, audio=audio)
    return _write_summary(out_dir, summary, ["result.mp4", "result_lossless.mkv", "anchor.png", "anchor_mask.png"])


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
