"""A whole inspection run, the same for the UI's jobs, the Python API and the CLI.

Images (files, or zips of them) or one video, an object name, optional good references and a
threshold rule in; maps, overlays with outlines, verdicts and score tables out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from engine.anomaly import inspect_images as images_job
from engine.anomaly import inspect_video as video_job
from engine.anomaly import outputs
from engine.anomaly.common import score_text
from engine.anomaly.methods import SET_RULE_MIN_IMAGES
from engine.anomaly.pipeline import AnomalyResult, default_batch_size
from engine.anomaly.scorers import Scorer
from engine.anomaly.thresholds import (
    NEEDS_TWO_GOOD,
    Threshold,
    calibrated_threshold,
    default_threshold,
    set_threshold,
    user_threshold,
)
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
# A video scored as one set: each sampled frame is scored at most SET_FRAME_SIDE pixels long (MuSc's input side)
# and its map kept at most STORED_MAP_SIDE long in float16 until the second pass overlays it.
SET_FRAME_SIDE = 518
STORED_MAP_SIDE = 256


def resolve_threshold(scorer: Scorer, rule: str | float, set_scores: Sequence[float] = ()) -> Threshold:
    """"auto": calibrated when 2 or more good parts are given, else from the set's own scores for methods
    without a fixed threshold (a set of SET_RULE_MIN_IMAGES or more), else the method's default;
    "calibrate": calibrated or an error; a number: that value."""
    if not isinstance(rule, str):
        return user_threshold(rule)
    good = scorer.good_part_scores()
    if good is not None:
        return calibrated_threshold(*good, rule=scorer.calibration_rule)
    if rule == "calibrate":
        raise UserInputError(NEEDS_TWO_GOOD)
    if scorer.method.default_threshold is None and len(set_scores) >= SET_RULE_MIN_IMAGES:
        return set_threshold(set_scores)
    return default_threshold(scorer.method)


def can_settle_before_scoring(scorer: Scorer, rule: str | float) -> bool:
    """Whether the threshold is known before the set is scored (a video then streams in one pass)."""
    if not isinstance(rule, str):
        return True
    if scorer.method.references == "join the set":
        return False
    return len(scorer.references) >= 2 or scorer.method.default_threshold is not None


def prepare(scorer: Scorer, params: images_job.Params | video_job.Params, reference_files: Sequence[NamedFile],
            work_dir: Path, progress: ProgressCallback = ignore_progress,
            notes: list[str] | None = None) -> list[dict[str, str]]:
    """Decode the good references (zips expanded) and prepare the scorer with them; returns what was skipped
    (notes on references used only in part join `notes`). A rule that cannot be met is refused here, before any
    image is scored; so are references of which none can be used, each one's reason given."""
    skipped: list[dict[str, str]] = []
    references: list[Image.Image] = []
    if reference_files:
        files, skipped_archives = expand_archives(reference_files, work_dir / "references", IMAGE_SUFFIXES)
        _, references, skipped = load_images(files, what="reference images of good parts", skipped=skipped_archives,
                                             notes=notes)
        skipped = [{**item, "role": "reference"} for item in skipped]
    if params.threshold == "calibrate" and len(references) < 2:
        raise UserInputError(NEEDS_TWO_GOOD)
    progress(0.5, f"Encoding {len(references)} good reference images" if references else "Preparing the model")
    scorer.prepare(params, references)
    return skipped


def _summary(scorer: Scorer, params: images_job.Params | video_job.Params, skipped: list[dict[str, str]],
             threshold: Threshold, sizes: set[tuple[int, int]], notes: Sequence[str] = ()) -> dict[str, Any]:
    summary = outputs.run_summary(params.object_name, get_preset(params.preset), scorer.method, scorer.references,
                                  skipped, threshold, params.reference_set)
    summary["warnings"] += [*notes, *outputs.size_warnings(sizes, scorer.references, scorer.method)]
    return summary


def inspect_images(scorer: Scorer, inputs: images_job.Inputs, params: images_job.Params, out_dir: Path,
                   progress: ProgressCallback = ignore_progress) -> images_job.Result:
    """Score a batch of images (zips expanded); files that cannot be read are listed, the rest scored.

    Writes a 16-bit map and an overlay per image, scores.json (the result) and scores.csv.
    """
    with scratch(out_dir) as work:
        expanded, skipped = expand_archives(inputs.images, work / "images", IMAGE_SUFFIXES)
        if not expanded:
            reasons = " ".join(item["error"] for item in skipped)
            raise UserInputError(f"No images to inspect. {reasons}".strip())
        notes: list[str] = []
        names, images, skipped = load_images(expanded, skipped=skipped, notes=notes)
        skipped_references = prepare(scorer, params, inputs.references, work, sub_progress(progress, 0.0, 0.1),
                                     notes)
    results = scorer.score(images, batch_size=params.batch_size, progress=sub_progress(progress, 0.1, 0.95))
    progress(0.96, "Settling the threshold and writing maps")
    threshold = resolve_threshold(scorer, params.threshold, [r.score for r in results])
    summary = _summary(scorer, params, skipped + skipped_references, threshold, {image.size for image in images},
                       notes)
    records, files = outputs.write_maps(out_dir, names, images, results, threshold)
    verdicts = [r["verdict"] for r in records]
    result = images_job.Result(**summary, map_encoding=outputs.MAP_ENCODING, images=records,
                               counts={"OK": verdicts.count("OK"), "NG": verdicts.count("NG"),
                                       "skipped": len(summary["skipped"])},
                               outputs=[*files, "scores.json", "scores.csv"])
    outputs.write_summary(out_dir / "scores.json", result)
    outputs.write_score_table(out_dir / "scores.csv", records, result.skipped)
    return result


def _score_frames_as_a_set(scorer: Scorer, path: Path, name: str, params: video_job.Params, info: Any,
                           progress: ProgressCallback) -> list[AnomalyResult]:
    """Every sampled frame scored at once (MuSc's set, or a set threshold). Frames are shrunk to SET_FRAME_SIDE
    and maps to STORED_MAP_SIDE (float16): about 0.9 MB per sampled frame besides the method's own features."""
    def shrunk(size: tuple[int, int], side: int) -> tuple[int, int]:
        scale = min(1.0, side / max(size))
        return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))

    frames = [frame.image.resize(shrunk(frame.image.size, SET_FRAME_SIDE), Image.BILINEAR)
              for frame in iter_frames(path, stride=params.stride, fps=params.fps, display_name=name, info=info)]
    results = scorer.score(frames, batch_size=params.batch_size, progress=progress)
    map_size = shrunk((info.width, info.height), STORED_MAP_SIDE)
    return [AnomalyResult(r.score, _resized(r.anomaly_map, map_size).astype(np.float16)) for r in results]


def _resized(anomaly_map: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A map (H, W) at `size` (width, height), bilinear, float32 in [0, 1]."""
    if anomaly_map.shape == (size[1], size[0]):
        return anomaly_map.astype(np.float32)
    resized = Image.fromarray(anomaly_map.astype(np.float32), mode="F").resize(size, Image.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def inspect_video(scorer: Scorer, inputs: video_job.Inputs, params: video_job.Params, out_dir: Path,
                  progress: ProgressCallback = ignore_progress) -> video_job.Result:
    """Score sampled frames of a video and write overlay.mp4 (heat map and outline on every sampled frame), the
    frames above the image threshold as JPEGs (the first MAX_FLAGGED_FRAMES), timeline.png (score over time with
    the threshold), scores.csv and scores.json.

    When the threshold is known before scoring (a value, good parts, a fixed default), frames stream in batches,
    never more than one batch held. Otherwise (MuSc, whose set is the sampled frames; a set threshold) the frames
    are scored as one set first, then decoded again to write the overlays.
    """
    name, path = inputs.video[0]
    info = probe_video(path, name)
    step = sampling_step(info, params.stride, params.fps)
    total = sampled_frame_count(info, params.stride, params.fps)
    notes: list[str] = []
    with scratch(out_dir) as work:
        skipped = prepare(scorer, params, inputs.references, work, sub_progress(progress, 0.0, 0.05), notes)
    batch_size = params.batch_size or default_batch_size(scorer.device)
    frames = iter_frames(path, stride=params.stride, fps=params.fps, display_name=name, info=info)
    if can_settle_before_scoring(scorer, params.threshold):
        threshold = resolve_threshold(scorer, params.threshold)
        scored = (result for batch in batched(frames, batch_size)
                  for result in zip(batch, scorer.score([f.image for f in batch], batch_size=batch_size), strict=True))
        write_progress = sub_progress(progress, 0.05, 0.95)
    else:
        progress(0.05, f"Scoring the {total} sampled frames as one set")
        results = _score_frames_as_a_set(scorer, path, name, params, info, sub_progress(progress, 0.05, 0.8))
        threshold = resolve_threshold(scorer, params.threshold, [r.score for r in results])
        scored = zip(frames, results, strict=False)
        write_progress = sub_progress(progress, 0.8, 0.95)
    out_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    flagged_files: list[str] = []
    with VideoWriter(out_dir / "overlay.mp4", info.fps / step) as writer:
        for frame, result in scored:
            result = AnomalyResult(result.score, _resized(result.anomaly_map, frame.image.size))
            overlay = inspection_overlay(frame.image, result.anomaly_map, threshold.pixel)
            writer.write(overlay)
            record = {"frame": frame.index, "time_s": round(frame.time_s, 3), "score": round(result.score, 6),
                      "verdict": threshold.verdict(result.score), "map_max":
                      round(float(result.anomaly_map.max()), 6), "file": frame.label}
            if record["verdict"] == "NG" and len(flagged_files) < MAX_FLAGGED_FRAMES:
                record["overlay"] = f"frame_{frame.index:06d}_overlay.jpg"
                overlay.save(out_dir / record["overlay"], quality=90)
                flagged_files.append(record["overlay"])
            records.append(record)
            write_progress(min(len(records) / total, 1.0), f"Scored frame {len(records)} of about {total}")
    progress(0.96, "Writing the timeline")
    ng = [r for r in records if r["verdict"] == "NG"]
    summary = _summary(scorer, params, skipped, threshold, {(info.width, info.height)}, notes)
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
    timeline_plot(records, threshold, info.duration_s, name).save(out_dir / "timeline.png")
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
                      f"{title}: score per frame, threshold {score_text(threshold.image)}", "time (s)", "score",
                      size=(720, 300))
