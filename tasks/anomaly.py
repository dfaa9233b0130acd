"""Anomaly segmentation jobs: decode the uploads, run WinCLIP, write maps, overlays and scores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tasks.celery_app import app
from tasks.runner import JobContext, run_job

TOOL = "anomaly"


@app.task(name="fewshot.anomaly", ignore_result=True)
def anomaly(job_id: str) -> None:
    """Celery entry point: the message carries the job id only; inputs are in the artifact store."""
    run_job(job_id, segment_anomalies)


def segment_anomalies(ctx: JobContext) -> tuple[dict[str, Any], list[str]]:
    from engine.anomaly import get_pipeline
    from engine.errors import UserInputError
    from engine.media import load_image
    from engine.presets import get_preset
    from engine.progress import sub_progress
    from engine.visualize import heatmap_overlay, map_to_png16

    object_name = str(ctx.params.get("object_name", ""))
    preset = get_preset(str(ctx.params.get("preset", "")))
    images, names, skipped = [], [], []
    for name, path in ctx.input_files():
        try:
            images.append(load_image(path, display_name=name))
            names.append(name)
        except UserInputError as exc:
            skipped.append({"file": name, "error": str(exc)})
    if not images:
        reasons = " ".join(item["error"] for item in skipped) or "No images were uploaded."
        raise UserInputError(reasons)

    ctx.progress(0.02, f"Loading model {preset.label}")
    pipeline = get_pipeline(preset.name)
    results = pipeline(images, object_name, progress=sub_progress(ctx.progress, 0.05, 0.95))

    ctx.progress(0.96, "Writing maps")
    records, outputs = [], []
    for index, (name, image, result) in enumerate(zip(names, images, results, strict=True)):
        stem = f"{index:03d}_{Path(name).stem}"
        map_name, overlay_name = f"{stem}_map.png", f"{stem}_overlay.png"
        map_to_png16(result.anomaly_map).save(ctx.output_path(map_name))
        heatmap_overlay(image, result.anomaly_map).save(ctx.output_path(overlay_name))
        outputs += [map_name, overlay_name]
        records.append({
            "file": name,
            "score": round(result.score, 6),
            "width": image.width,
            "height": image.height,
            "map_min": round(float(result.anomaly_map.min()), 6),
            "map_max": round(float(result.anomaly_map.max()), 6),
            "map": map_name,
            "overlay": overlay_name,
        })
    summary = {
        "object_name": object_name.strip(),
        "preset": preset.name,
        "random_weights": preset.random_weights,
        "map_encoding": "16-bit grayscale PNG, value = score x 65535",
        "images": records,
        "skipped": skipped,
    }
    ctx.output_path("scores.json").write_text(json.dumps(summary, indent=2))
    return summary, [*outputs, "scores.json"]
