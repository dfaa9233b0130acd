"""Anomaly jobs: inspection of images or a video, and evaluation on a labelled MVTec-layout set."""

from __future__ import annotations

import shutil
from typing import Any

from tasks.celery_app import app
from tasks.runner import JobContext, run_job


@app.task(name="fewshot.anomaly", bind=True, ignore_result=True)
def anomaly(self, job_id: str) -> None:
    """Celery entry point: the message carries the job id only; inputs are in the artifact store."""
    run_job(job_id, segment_anomalies, worker=self.request.hostname)


def _threshold(ctx: JobContext) -> str | float:
    value = ctx.params.get("threshold", "auto")
    return value if isinstance(value, str) else float(value)


def segment_anomalies(ctx: JobContext) -> tuple[dict[str, Any], list[str]]:
    """Images (and zips of images) scored, with verdicts from the job's threshold rule."""
    from engine.anomaly import get_pipeline
    from engine.anomaly.inspection import inspect_images
    from engine.presets import get_preset

    preset = get_preset(str(ctx.params.get("preset", "")))
    ctx.progress(0.01, f"Loading model {preset.label}")
    pipeline = get_pipeline(preset.name)
    try:
        return inspect_images(pipeline, preset, ctx.input_files("images"), str(ctx.params.get("object_name", "")),
                              ctx.output_dir, ctx.input_files("references"), threshold=_threshold(ctx),
                              work_dir=ctx.work_dir, reference_set=ctx.params.get("reference_set"),
                              progress=ctx.progress)
    finally:
        shutil.rmtree(ctx.work_dir, ignore_errors=True)  # extracted zips; the uploads themselves are kept


@app.task(name="fewshot.anomaly_video", bind=True, ignore_result=True)
def anomaly_video(self, job_id: str) -> None:
    """Celery entry point for the inspection of one video, frame by frame."""
    run_job(job_id, inspect_uploaded_video, worker=self.request.hostname)


def inspect_uploaded_video(ctx: JobContext) -> tuple[dict[str, Any], list[str]]:
    from engine.anomaly import get_pipeline
    from engine.anomaly.inspection import inspect_video
    from engine.errors import UserInputError
    from engine.presets import get_preset

    videos = ctx.input_files("video")
    if len(videos) != 1:
        raise UserInputError("Upload exactly one video (mp4, webm, mov, avi or mkv) per job.")
    stride, fps = ctx.params.get("stride"), ctx.params.get("fps")
    preset = get_preset(str(ctx.params.get("preset", "")))
    ctx.progress(0.01, f"Loading model {preset.label}")
    pipeline = get_pipeline(preset.name)
    try:
        return inspect_video(pipeline, preset, videos[0], str(ctx.params.get("object_name", "")), ctx.output_dir,
                             ctx.input_files("references"), threshold=_threshold(ctx),
                             stride=None if stride in (None, "") else int(stride),
                             fps=None if fps in (None, "") else float(fps), work_dir=ctx.work_dir,
                             reference_set=ctx.params.get("reference_set"), progress=ctx.progress)
    finally:
        shutil.rmtree(ctx.work_dir, ignore_errors=True)


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
        root = find_folder_with(extract_zip(archive, ctx.work_dir / "dataset", display_name=name), "test", name)
        ctx.progress(0.03, f"Loading model {preset.label}")
        pipeline = get_pipeline(preset.name)
        report = evaluate_folder(pipeline, root, str(ctx.params.get("object_name", "")), shots=shots,
                                 progress=sub_progress(ctx.progress, 0.05, 0.97))
        report["preset"], report["random_weights"] = preset.name, preset.random_weights
        return report, write_report(report, ctx.output_dir)
    finally:
        shutil.rmtree(ctx.work_dir, ignore_errors=True)  # derived from the kept zip
