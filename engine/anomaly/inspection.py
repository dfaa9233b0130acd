"""A whole inspection run, the same for the UI's jobs, the Python API and the CLI.

Images (files, or zips of them) or one video, an object name, optional good references and a
threshold rule in; maps, overlays with outlines, verdicts and score tables out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from engine.anomaly import inspect_images as images_job
from engine.anomaly import inspect_video as video_job
from engine.anomaly import outputs
from engine.anomaly.pipeline import ReferenceMemory, WinClipPipeline
from engine.anomaly.thresholds import Threshold, calibrate_threshold, default_threshold, user_threshold
from engine.archives import expand_archives
from engine.errors import UserInputError
from engine.filetypes import IMAGE_SUFFIXES
from engine.media import load_images
from engine.params import NamedFile, scratch
from engine.presets import get_preset
from engine.progress import ProgressCallback, ignore_progress, sub_progress
from engine.video import VideoWriter, batched, iter_frames, probe_video, sampled_frame_count, sampling_step
from engine.visualize import fitted_range, inspection_overlay, line_chart

MAX_FLAGGED_FRAMES = 60  # frames above threshold kept as images for the gallery


@dataclass
class Setup:
    """What every image or frame of a run is scored with, prepared once."""

    references: list[Image.Image] | None
    memory: ReferenceMemory | None
    threshold: Threshold
    skipped: list[dict[str, str]]


def resolve_threshold(pipeline: WinClipPipeline, object_name: str, memory: ReferenceMemory | None,
                      rule: str | float) -> Threshold:
    """"auto": calibrated when there are 2 or more good references, else the default;
    "calibrate": calibrated or an error; a number: that value."""
    if rule == "auto":
        if memory is not None and memory.count >= 2:
            return calibrate_threshold(pipeline, object_name, memory)
        return default_threshold()
    if rule == "calibrate":
        if memory is None:
            raise UserInputError("Calibrating a threshold needs images of good parts: add at least 2, "
                                 "or set the threshold yourself.")
        return calibrate_threshold(pipeline, object_name, memory)
    return user_threshold(rule)


def prepare(pipeline: WinClipPipeline, object_name: str, reference_files: Sequence[NamedFile], threshold: str | float,
            work_dir: Path, progress: ProgressCallback = ignore_progress) -> Setup:
    """Decode the good references (zips expanded), build their memory, and settle the threshold."""
    skipped: list[dict[str, str]] = []
    references = memory = None
    progress(0.0, f"Encoding prompts for '{object_name.strip()}'")
    pipeline.text_embeddings(object_name)
    if reference_files:
        files, skipped_archives = expand_archives(reference_files, work_dir / "references", IMAGE_SUFFIXES)
        _, references, skipped_images = load_images(files, what="reference images of good parts")
        skipped = [{**item, "role": "reference"} for item in skipped_archives + skipped_images]
        progress(0.5, f"Encoding {len(references)} good reference images")
        memory = pipeline.reference_memory(references)
    progress(0.9, "Settling the threshold")
    return Setup(references, memory, resolve_threshold(pipeline, object_name, memory, threshold), skipped)


def inspect_images(pipeline: WinClipPipeline, inputs: images_job.Inputs, params: images_job.Params, out_dir: Path,
                   progress: ProgressCallback = ignore_progress) -> images_job.Result:
    """Score a batch of images (zips expanded); files that cannot be read are listed, the rest scored.

    Writes a 16-bit map and an overlay per image, scores.json (the result) and scores.csv.
    """
    with scratch(out_dir) as work:
        expanded, skipped = expand_archives(inputs.images, work / "images", IMAGE_SUFFIXES)
        if not expanded:
            reasons = " ".join(item["error"] for item in skipped)
            raise UserInputError(f"No images to inspect. {reasons}".strip())
        names, images, skipped_images = load_images(expanded)
        setup = prepare(pipeline, params.object_name, inputs.references, params.threshold, work,
                        sub_progress(progress, 0.0, 0.1))
    results = pipeline(images, params.object_name, references=setup.memory, batch_size=params.batch_size,
                       progress=sub_progress(progress, 0.1, 0.95))
    progress(0.96, "Writing maps")
    summary = outputs.run_summary(params.object_name, get_preset(params.preset), setup.references,
                          skipped + skipped_images + setup.skipped, setup.threshold, params.reference_set)
    summary["warnings"] += outputs.size_warnings({image.size for image in images}, setup.references)
    records, files = outputs.write_maps(out_dir, names, images, results, setup.threshold)
    verdicts = [r["verdict"] for r in records]
    result = images_job.Result(**summary, map_encoding=outputs.MAP_ENCODING, images=records,
                               counts={"OK": verdicts.count("OK"), "NG": verdicts.count("NG"),
                                       "skipped": len(summary["skipped"])},
                               outputs=[*files, "scores.json", "scores.csv"])
    outputs.write_summary(out_dir / "scores.json", result)
    outputs.write_score_table(out_dir / "scores.csv", records, result.skipped)
    return result


def inspect_video(pipeline: WinClipPipeline, inputs: video_job.Inputs, params: video_job.Params, out_dir: Path,
                  progress: ProgressCallback = ignore_progress) -> video_job.Result:
    """Score sampled frames of a video in batches, never holding more than one batch of frames.

    Writes overlay.mp4 (heat map and outline on every sampled frame), the frames above the image
    threshold as JPEGs (the first MAX_FLAGGED_FRAMES), timeline.png (score over time with the
    threshold), scores.csv and scores.json.
    """
    name, path = inputs.video[0]
    stride, fps = params.stride, params.fps
    info = probe_video(path, name)
    step = sampling_step(info, stride, fps)
    total = sampled_frame_count(info, stride, fps)
    with scratch(out_dir) as work:
        setup = prepare(pipeline, params.object_name, inputs.references, params.threshold, work,
                        sub_progress(progress, 0.0, 0.05))
    batch_size = params.batch_size or (8 if pipeline.device.type == "cuda" else 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    flagged_files: list[str] = []
    with VideoWriter(out_dir / "overlay.mp4", info.fps / step) as writer:
        for batch in batched(iter_frames(path, stride=stride, fps=fps, display_name=name, info=info), batch_size):
            images = [frame.image for frame in batch]
            results = pipeline(images, params.object_name, references=setup.memory, batch_size=batch_size)
            for frame, result in zip(batch, results, strict=True):
                overlay = inspection_overlay(frame.image, result.anomaly_map, setup.threshold.pixel)
                writer.write(overlay)
                record = {"frame": frame.index, "time_s": round(frame.time_s, 3), "score": round(result.score, 6),
                          "verdict": setup.threshold.verdict(result.score), "map_max":
                          round(float(result.anomaly_map.max()), 6), "file": frame.label}
                if record["verdict"] == "NG" and len(flagged_files) < MAX_FLAGGED_FRAMES:
                    record["overlay"] = f"frame_{frame.index:06d}_overlay.jpg"
                    overlay.save(out_dir / record["overlay"], quality=90)
                    flagged_files.append(record["overlay"])
                records.append(record)
            done = len(records)
            progress(0.05 + 0.9 * min(done / total, 1.0), f"Scored frame {done} of about {total}")
    progress(0.96, "Writing the timeline")
    ng = [r for r in records if r["verdict"] == "NG"]
    summary = outputs.run_summary(params.object_name, get_preset(params.preset), setup.references, setup.skipped,
                          setup.threshold, params.reference_set)
    summary["warnings"] += outputs.size_warnings({(info.width, info.height)}, setup.references)
    if len(ng) > len(flagged_files):
        summary["warnings"].append(f"{len(ng)} frames are above the threshold; the gallery keeps the first "
                                   f"{len(flagged_files)}. scores.csv lists all of them.")
    result = video_job.Result(
        **summary,
        video={"file": name, "width": info.width, "height": info.height, "fps": round(info.fps, 3),
               "duration_s": round(info.duration_s, 3), "frames": info.frame_count,
               "sampled_every": round(step, 3), "sampled_fps": round(info.fps / step, 3)},
        frames=records,
        counts={"frames": len(records), "OK": len(records) - len(ng), "NG": len(ng),
                "flagged_images_kept": len(flagged_files)},
        max_score=max((r["score"] for r in records), default=None),
        outputs=["overlay.mp4", "timeline.png", "scores.json", "scores.csv", *flagged_files],
    )
    timeline_plot(records, setup.threshold, info.duration_s, name).save(out_dir / "timeline.png")
    outputs.write_summary(out_dir / "scores.json", result)
    outputs.write_score_table(out_dir / "scores.csv", records, columns=outputs.FRAME_COLUMNS)
    return result


def timeline_plot(records: Sequence[dict[str, Any]], threshold: Threshold, duration_s: float,
                  title: str) -> Image.Image:
    """Score of each sampled frame over time (blue) and the image threshold (red), the score axis fitted to both."""
    end = max(duration_s, records[-1]["time_s"] if records else 0.0, 1e-3)
    times = [r["time_s"] for r in records]
    scores = [r["score"] for r in records]
    return line_chart([(times, scores, (30, 80, 200)), ([0, end], [threshold.image] * 2, (200, 30, 30))],
                      (0, end), fitted_range([*scores, threshold.image]),
                      f"{title}: score per frame, threshold {threshold.image:.3f}", "time (s)", "score",
                      size=(720, 300))
