"""Fine-tuning jobs: train a few-shot classifier (curves streamed into the job record), and use a saved one.

Cancel rule: a cancel during training stops it at the next step; the best checkpoint so far is
evaluated and saved as the model, and the job ends *succeeded* with `stopped: "cancelled"` in its
result (the curves and metrics stay visible). A cancel before training starts cancels the job.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from tasks.celery_app import app
from tasks.jobs import Job
from tasks.runner import JobContext, run_job

LIVE_INTERVAL_S = 0.5


@app.task(name="fewshot.finetune_classify", bind=True, ignore_result=True)
def finetune_classify(self, job_id: str) -> None:
    """Celery entry point: the message carries the job id only; inputs are in the artifact store."""
    run_job(job_id, train_classifier, worker=self.request.hostname)


def _settings(params: dict[str, Any]):
    from engine.errors import UserInputError
    from engine.finetune.train import TrainSettings

    known = TrainSettings.__dataclass_fields__
    values = {k: v for k, v in params.items() if k in known and v not in (None, "")}
    try:
        typed = {k: type(getattr(TrainSettings(), k))(v) for k, v in values.items()}
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"Training settings: {exc}.") from None
    return TrainSettings(**typed).check()


def _uploads(ctx: JobContext) -> list[tuple[str, list[tuple[str, Path]]]]:
    names = list(ctx.params.get("class_names") or [])
    return [(name, ctx.input_files(f"class_{index:03d}")) for index, name in enumerate(names)]


def _live_writer(ctx: JobContext):
    """Copies the training history into the job record (at most twice a second) for the live plot."""
    last = [0.0]

    def write(history: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        if now - last[0] < LIVE_INTERVAL_S:
            return
        last[0] = now
        snapshot = [dict(row) for row in history]

        def change(job: Job) -> None:
            job.live = {"history": snapshot}

        ctx.store.update(ctx.job.id, change)

    return write


def train_classifier(ctx: JobContext) -> tuple[dict[str, Any], list[str]]:
    """Gather the classes, train, evaluate against zero-shot, register the model under its name."""
    from engine.finetune.data import gather_sources, load_labelled_set
    from engine.finetune.runs import MODEL_DIR, train_and_save
    from engine.presets import get_preset
    from tasks import finetune_models

    name = str(ctx.params.get("model_name", "")).strip()
    finetune_models.check_free(name)
    preset = get_preset(str(ctx.params.get("preset", "")))
    settings = _settings(ctx.params)
    ctx.progress(0.01, "Reading the examples")
    try:
        by_class = gather_sources(archives=ctx.input_files("dataset"), uploads=_uploads(ctx), work_dir=ctx.work_dir)
        data = load_labelled_set(by_class)
        ctx.progress(0.02, f"Loading model {preset.label}")
        summary, outputs = train_and_save(data, preset.name, settings, ctx.output_dir, name,
                                          ctx.input_files("unlabeled"), progress=ctx.progress,
                                          on_history=_live_writer(ctx))
    finally:
        shutil.rmtree(ctx.work_dir, ignore_errors=True)
    finetune_models.save(name, ctx.output_dir / MODEL_DIR)
    shutil.rmtree(ctx.output_dir / MODEL_DIR)  # registered under models/; model.zip is the download
    return summary, outputs


@app.task(name="fewshot.finetune_predict", bind=True, ignore_result=True)
def finetune_predict(self, job_id: str) -> None:
    """Celery entry point for classifying images or a video's frames with a saved model."""
    run_job(job_id, predict, worker=self.request.hostname)


def predict(ctx: JobContext) -> tuple[dict[str, Any], list[str]]:
    import json

    from engine.archives import expand_archives
    from engine.errors import UserInputError
    from engine.finetune.runs import predict_files, predict_video
    from engine.media import ACCEPTED_IMAGE_SUFFIXES
    from tasks import finetune_models

    name = str(ctx.params.get("model", ""))
    model_dir = finetune_models.path(name)
    try:
        alpha = float(ctx.params.get("alpha", 1.0))
    except (TypeError, ValueError):
        raise UserInputError(f"alpha must be a number between 0 and 1, not {ctx.params.get('alpha')!r}.") from None
    ctx.progress(0.05, f"Loading model {name}")
    videos = ctx.input_files("video")
    try:
        if videos:
            stride, fps = ctx.params.get("stride"), ctx.params.get("fps")
            result = predict_video(model_dir, videos[0], alpha, stride=int(stride) if stride else None,
                                   fps=float(fps) if fps else None)
        else:
            files, skipped = expand_archives(ctx.input_files("images"), ctx.work_dir, ACCEPTED_IMAGE_SUFFIXES)
            result = predict_files(model_dir, files, alpha)
            result["skipped"] = skipped + result["skipped"]
    finally:
        shutil.rmtree(ctx.work_dir, ignore_errors=True)
    result |= {"model": name, "alpha": alpha, "classes": finetune_models.get(name)["classes"]}
    (ctx.output_dir / "predictions.json").write_text(json.dumps(result, indent=1))
    return result, ["predictions.json"]
