"""Annotation-completion jobs (complete a set; evaluate on a fully annotated one) and the review export.

Roles: "images" (images and/or zips), "annotations" (COCO JSON, YOLO txt + classes.txt, VOC XML, or
a zip of them), "video" (one video whose sampled frames become the images). The engine is an OWLv2
preset (params["preset"]) or a saved fine-tuned detector (params["detector_model"], its name).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Collection
from pathlib import Path
from typing import Any

from tasks.celery_app import app
from tasks.runner import JobContext, run_job
from tasks.store import get_store

REVIEW_FILE = "review.json"


@app.task(name="fewshot.completion", bind=True, ignore_result=True)
def completion(self, job_id: str) -> None:
    """Celery entry point: the message carries the job id only; inputs are in the artifact store."""
    run_job(job_id, complete_set, worker=self.request.hostname)


@app.task(name="fewshot.completion_evaluate", bind=True, ignore_result=True)
def completion_evaluate(self, job_id: str) -> None:
    run_job(job_id, evaluate_set, worker=self.request.hostname)


def _inputs(ctx: JobContext) -> list[tuple[str, Path]]:
    return [*ctx.input_files("images"), *ctx.input_files("annotations")]


def _params(ctx: JobContext) -> dict[str, Any]:
    """The job's parameters; params["detector_model"] (a saved detector's name) becomes the engine's
    params["detector"], that model's folder, looked up as the job's owner (own or shared)."""
    name = ctx.params.get("detector_model")
    if not name:
        return ctx.params
    from tasks import finetune_models

    return {**ctx.params, "detector": str(finetune_models.path(str(name), owner=ctx.job.owner))}


def complete_set(ctx: JobContext) -> tuple[dict[str, Any], list[str]]:
    from engine.completion.runs import run_completion
    from engine.errors import UserInputError

    videos = ctx.input_files("video")
    if len(videos) > 1:
        raise UserInputError("Upload one video at a time.")
    try:
        return run_completion(_inputs(ctx), ctx.work_dir, ctx.output_dir, _params(ctx), videos[0] if videos else None,
                              ctx.progress)
    finally:
        shutil.rmtree(ctx.work_dir, ignore_errors=True)  # extracted archives and frames; uploads are kept


def evaluate_set(ctx: JobContext) -> tuple[dict[str, Any], list[str]]:
    from engine.completion.runs import run_evaluation

    try:
        return run_evaluation(_inputs(ctx), ctx.work_dir, ctx.output_dir, _params(ctx), ctx.progress)
    finally:
        shutil.rmtree(ctx.work_dir, ignore_errors=True)


def read_proposals(job_id: str) -> dict[str, Any]:
    """The proposals.json of a finished completion job."""
    from engine.completion.outputs import PROPOSALS_FILE
    from tasks.client import artifact_path

    return json.loads(artifact_path(job_id, PROPOSALS_FILE).read_text())


def save_review(job_id: str, accepted: Collection[int], rejected: Collection[int] = ()) -> list[Path]:
    """Record a review in the job's outputs (review.json) and export the accepted set in the three formats.

    Runs in the web process: torch-free, it only rewrites files of this job's outputs folder.
    """
    from engine.completion.outputs import accepted_dataset, write_exports

    document = read_proposals(job_id)
    store = get_store()
    out_dir = store.job_dir(job_id) / "outputs"
    review = {"accepted": sorted(set(accepted)), "rejected": sorted(set(rejected) - set(accepted))}
    (out_dir / REVIEW_FILE).write_text(json.dumps(review))
    names = [REVIEW_FILE, *write_exports(accepted_dataset(document, review["accepted"]), out_dir, "accepted")]

    def register(job) -> None:
        job.outputs += [name for name in names if name not in job.outputs]

    store.update(job_id, register)
    return [out_dir / name for name in names]


def first_frame(path: str | Path):
    """A video's first frame (PIL), to draw boxes on before the job samples the others."""
    from engine.video import iter_frames

    return next(iter(iter_frames(Path(path), stride=1))).image


def read_review(job_id: str) -> dict[str, list[int]] | None:
    """The last saved review of a job, if any."""
    from tasks.client import JobNotFound, artifact_path

    try:
        return json.loads(artifact_path(job_id, REVIEW_FILE).read_text())
    except (JobNotFound, OSError, json.JSONDecodeError):
        return None
