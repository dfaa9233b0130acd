"""Fine-tuning jobs: train a few-shot classifier or detector (curves streamed into the job record), and use a
saved one (classify images or video frames, or detect boxes on images).

Cancel rule: a cancel during training stops it at the next step; the best checkpoint so far is
evaluated and saved as the model, and the job ends *succeeded* with `stopped: "cancelled"` in its
result (the curves and metrics stay visible). A cancel before training starts cancels the job.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from engine.progress import sub_progress
from tasks.celery_app import app
from tasks.jobs import Job
from tasks.runner import JobContext, run_job

LIVE_INTERVAL_S = 0.5


@app.task(name="fewshot.finetune_classify", bind=True, ignore_result=True)
def finetune_classify(self, job_id: str) -> None:
    """Celery entry point: the message carries the job id only; inputs are in the artifact store."""
    run_job(job_id, train_classifier, worker=self.request.hostname)


def _settings(params: dict[str, Any], kind: type):
    """The job's training settings as `kind` (TrainSettings or DetectSettings); values may arrive as text."""
    from engine.errors import UserInputError

    defaults = kind()
    typed = {}
    for key, value in params.items():
        if key not in kind.__dataclass_fields__ or value in (None, ""):
            continue
        default = getattr(defaults, key)
        try:
            if isinstance(default, bool):  # True, or text from `python -m tasks submit --param key=true`
                typed[key] = str(value).strip().lower() in ("1", "true", "yes", "on")
            else:
                typed[key] = type(0.0 if default is None else default)(value)
        except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: int() of an infinity
            raise UserInputError(f"Training settings: {key}: {exc}.") from None
    return kind(**typed).check()


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


def _train_and_register(ctx: JobContext, name: str, run) -> tuple[dict[str, Any], list[str]]:
    """Run a training body (it writes `model/` into the outputs), then register the model under `name`."""
    from engine.finetune.artifacts import MODEL_DIR
    from tasks import finetune_models

    try:
        summary, outputs = run()
    finally:
        shutil.rmtree(ctx.work_dir, ignore_errors=True)
    finetune_models.save(name, ctx.output_dir / MODEL_DIR, owner=ctx.job.owner)  # private to who trained it
    shutil.rmtree(ctx.output_dir / MODEL_DIR)  # registered under models/; model.zip is the download
    return summary, outputs


def _model_name(ctx: JobContext) -> str:
    from tasks import finetune_models

    name = str(ctx.params.get("model_name", "")).strip()
    finetune_models.check_free(name, owner=ctx.job.owner)
    return name


def train_classifier(ctx: JobContext) -> tuple[dict[str, Any], list[str]]:
    """Gather the classes, train, evaluate against zero-shot, register the model under its name."""
    from engine.finetune.data import gather_sources, load_labelled_set
    from engine.finetune.runs import train_and_save
    from engine.finetune.train import TrainSettings
    from engine.presets import get_preset

    name = _model_name(ctx)
    preset = get_preset(str(ctx.params.get("preset", "")))
    settings = _settings(ctx.params, TrainSettings)

    def run() -> tuple[dict[str, Any], list[str]]:
        ctx.progress(0.01, "Reading the examples")
        unextracted: list[dict[str, str]] = []  # a bad zip entry is listed, not the end of the job
        by_class = gather_sources(archives=ctx.input_files("dataset"), uploads=_uploads(ctx), work_dir=ctx.work_dir,
                                  skipped=unextracted)
        data = load_labelled_set(by_class, unextracted)
        ctx.progress(0.02, f"Loading model {preset.label}")
        return train_and_save(data, preset.name, settings, ctx.output_dir, name, ctx.input_files("unlabeled"),
                              progress=ctx.progress, on_history=_live_writer(ctx))

    return _train_and_register(ctx, name, run)


@app.task(name="fewshot.finetune_detect", bind=True, ignore_result=True)
def finetune_detect(self, job_id: str) -> None:
    """Celery entry point for training a few-shot detector."""
    run_job(job_id, train_detector, worker=self.request.hostname)


def train_detector(ctx: JobContext) -> tuple[dict[str, Any], list[str]]:
    """Read annotated images, train, evaluate against the pre-fine-tuning baseline, register the detector."""
    from engine.errors import UserInputError
    from engine.finetune.detection.data import load_detection_set
    from engine.finetune.detection.runs import train_and_save
    from engine.finetune.detection.train import DetectSettings
    from engine.presets import get_preset

    name = _model_name(ctx)
    preset = get_preset(str(ctx.params.get("preset", "")))
    if preset.tool != "finetune-detect":
        raise UserInputError(f"Preset {preset.name!r} is not a detection preset.")
    settings = _settings(ctx.params, DetectSettings)
    files = [*ctx.input_files("dataset"), *ctx.input_files("images"), *ctx.input_files("annotations")]
    if not files:
        raise UserInputError("Upload annotated images: a zip with the images and their annotations (COCO JSON, YOLO "
                             "txt + classes.txt, or Pascal VOC XML), or the images and annotation files.")

    def run() -> tuple[dict[str, Any], list[str]]:
        ctx.progress(0.005, "Reading the images and annotations")
        dataset = load_detection_set(files, ctx.work_dir, str(ctx.params.get("format") or "auto"))
        return train_and_save(dataset, preset.name, settings, ctx.output_dir, name, progress=ctx.progress,
                              on_history=_live_writer(ctx))

    return _train_and_register(ctx, name, run)


@app.task(name="fewshot.finetune_predict", bind=True, ignore_result=True)
def finetune_predict(self, job_id: str) -> None:
    """Celery entry point for classifying images or a video's frames with a saved model."""
    run_job(job_id, predict, worker=self.request.hostname)


def predict(ctx: JobContext) -> tuple[dict[str, Any], list[str]]:
    """Use a saved model: a classifier on images or a video's frames, a detector on images."""
    import json

    from engine.archives import expand_archives
    from engine.errors import UserInputError
    from engine.filetypes import IMAGE_SUFFIXES
    from engine.finetune.artifacts import task_of
    from engine.finetune.runs import predict_files, predict_video
    from tasks import finetune_models

    name = str(ctx.params.get("model", ""))
    model_dir, meta = finetune_models.resolve(name, owner=ctx.job.owner)  # own, or shared by another user
    videos = ctx.input_files("video")
    if task_of(meta) == "detect":
        if videos:
            raise UserInputError(f"'{name}' is a detector: give it images (or a zip of images), not a video.")
        return _detect(ctx, model_dir)
    try:
        alpha = float(ctx.params.get("alpha", 1.0))
    except (TypeError, ValueError):
        raise UserInputError(f"alpha must be a number between 0 and 1, not {ctx.params.get('alpha')!r}.") from None
    ctx.progress(0.05, f"Loading model {name}")
    try:
        if videos:
            stride, fps = ctx.params.get("stride"), ctx.params.get("fps")
            result = predict_video(model_dir, videos[0], alpha, stride=int(stride) if stride else None,
                                   fps=float(fps) if fps else None)
        else:
            files, skipped = expand_archives(ctx.input_files("images"), ctx.work_dir, IMAGE_SUFFIXES)
            result = predict_files(model_dir, files, alpha)
            result["skipped"] = skipped + result["skipped"]
    finally:
        shutil.rmtree(ctx.work_dir, ignore_errors=True)
    result |= {"model": name, "alpha": alpha, "classes": meta["classes"]}
    (ctx.output_dir / "predictions.json").write_text(json.dumps(result, indent=1))
    return result, ["predictions.json"]


def _detect(ctx: JobContext, model_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """Boxes on images (and the images of zips): a picture with the boxes drawn per image, detections.json."""
    from engine.archives import expand_archives
    from engine.errors import UserInputError
    from engine.filetypes import IMAGE_SUFFIXES
    from engine.finetune.detection.runs import predict_files

    raw = ctx.params.get("score_threshold", 0.5)
    try:
        threshold = float(0.5 if raw in (None, "") else raw)
    except (TypeError, ValueError):
        raise UserInputError(f"score_threshold must be a number between 0 and 1, not {raw!r}.") from None
    ctx.progress(0.05, f"Loading detector {ctx.params.get('model')}")
    try:
        files, skipped = expand_archives(ctx.input_files("images"), ctx.work_dir, IMAGE_SUFFIXES)
        return predict_files(model_dir, files, ctx.output_dir, threshold, skipped=skipped,
                             progress=sub_progress(ctx.progress, 0.1, 0.99))
    finally:
        shutil.rmtree(ctx.work_dir, ignore_errors=True)
