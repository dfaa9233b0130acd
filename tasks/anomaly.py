"""Anomaly jobs: segmentation of uploaded images, and evaluation on a labelled MVTec-layout set."""

from __future__ import annotations

import shutil
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


@app.task(name="fewshot.anomaly_evaluate", bind=True, ignore_result=True)
def anomaly_evaluate(self, job_id: str) -> None:
    """Celery entry point for the evaluation of a labelled set uploaded as a zip."""
    run_job(job_id, evaluate_labelled_set, worker=self.request.hostname)


def evaluate_labelled_set(ctx: JobContext) -> tuple[dict[str, Any], list[str]]:
    from engine.anomaly import get_pipeline
    from engine.anomaly.evaluation import evaluate_folder, write_report
    from engine.archives import extract_zip, find_folder_with
    from engine.errors import UserInputError
    from engine.presets import get_preset
    from engine.progress import sub_progress

    preset = get_preset(str(ctx.params.get("preset", "")))
    archives = ctx.input_files("dataset")
    if len(archives) != 1:
        raise UserInputError("Upload one .zip of a labelled set in the MVTec AD layout "
                             "(test/good, test/<defect>, ground_truth/<defect>/<name>_mask.png, train/good).")
    try:
        shots = int(ctx.params.get("shots", 0))
    except (TypeError, ValueError):
        raise UserInputError(f"shots must be a whole number, not {ctx.params.get('shots')!r}.") from None
    name, archive = archives[0]
    ctx.progress(0.01, f"Extracting {name}")
    try:
        root = find_folder_with(extract_zip(archive, ctx.work_dir / "dataset", display_name=name), "test")
        ctx.progress(0.03, f"Loading model {preset.label}")
        pipeline = get_pipeline(preset.name)
        report = evaluate_folder(pipeline, root, str(ctx.params.get("object_name", "")), shots=shots,
                                 progress=sub_progress(ctx.progress, 0.05, 0.97))
        report["preset"], report["random_weights"] = preset.name, preset.random_weights
        return report, write_report(report, ctx.output_dir)
    finally:
        shutil.rmtree(ctx.work_dir, ignore_errors=True)  # derived from the kept zip
