"""Anomaly segmentation jobs: decode the uploads, run WinCLIP, write maps, overlays and scores."""

from __future__ import annotations

from typing import Any

from tasks.celery_app import app
from tasks.runner import JobContext, run_job


@app.task(name="fewshot.anomaly", bind=True, ignore_result=True)
def anomaly(self, job_id: str) -> None:
    """Celery entry point: the message carries the job id only; inputs are in the artifact store."""
    run_job(job_id, segment_anomalies, worker=self.request.hostname)


def segment_anomalies(ctx: JobContext) -> tuple[dict[str, Any], list[str]]:
    from engine.anomaly import get_pipeline
    from engine.anomaly.outputs import run_summary, write_outputs
    from engine.media import load_images
    from engine.presets import get_preset
    from engine.progress import sub_progress

    object_name = str(ctx.params.get("object_name", ""))
    preset = get_preset(str(ctx.params.get("preset", "")))
    names, images, skipped = load_images(ctx.input_files("images"))
    reference_files = ctx.input_files("references")
    references = None
    if reference_files:
        _, references, skipped_references = load_images(reference_files, what="reference images of good parts")
        skipped += [{**item, "role": "reference"} for item in skipped_references]
    ctx.progress(0.02, f"Loading model {preset.label}")
    pipeline = get_pipeline(preset.name)
    results = pipeline(images, object_name, references=references, progress=sub_progress(ctx.progress, 0.05, 0.95))
    ctx.progress(0.96, "Writing maps")
    return write_outputs(ctx.output_dir, names, images, results, run_summary(object_name, preset, references, skipped))
