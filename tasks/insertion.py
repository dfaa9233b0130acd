"""Insertion jobs (InVi): an object into one image, or into every frame of a short video.

Roles: "image" (one image) or "video" (one video); "mask" (drawn layers or mask images of the
image or the anchor frame, united) and, for region_mode "masks", "masks" (one mask per frame).
"""

from __future__ import annotations

from typing import Any

from tasks.celery_app import app
from tasks.runner import JobContext, run_job


@app.task(name="fewshot.insertion", bind=True, ignore_result=True)
def insertion(self, job_id: str) -> None:
    """Celery entry point: the message carries the job id only; inputs are in the artifact store."""
    run_job(job_id, insert_object, worker=self.request.hostname)


def _number(params: dict[str, Any], key: str, default: float, whole: bool = False) -> Any:
    """A numeric parameter (API callers send numbers or strings); the message names the parameter."""
    from engine.errors import UserInputError

    value = params.get(key)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer past the float range
        number = float("nan")
    if number != number or abs(number) == float("inf") or (whole and not number.is_integer()):
        raise UserInputError(f"{key} must be a {'whole ' if whole else ''}number, not {value!r}.")
    return int(number) if whole else number


def insert_object(ctx: JobContext) -> tuple[dict[str, Any], list[str]]:
    from engine.errors import UserInputError
    from engine.insertion import InsertionSettings, get_pipeline
    from engine.insertion.runs import run_image, run_video
    from engine.presets import get_preset
    from engine.progress import sub_progress

    params = ctx.params
    preset = get_preset(str(params.get("preset", "")))
    settings = InsertionSettings(
        prompt=str(params.get("prompt", "")), negative_prompt=str(params.get("negative_prompt", "")),
        seed=_number(params, "seed", 0, whole=True), steps=_number(params, "steps", 20, whole=True),
        guidance=_number(params, "guidance", 7.5), strength=_number(params, "strength", 1.0),
        mode=str(params.get("mode", "insert")),
    ).check()
    images, videos = ctx.input_files("image"), ctx.input_files("video")
    if len(images) + len(videos) != 1:
        raise UserInputError("Upload one image or one video to insert the object into.")
    ctx.progress(0.01, f"Loading model {preset.label}")
    pipeline = get_pipeline(preset.name)
    progress = sub_progress(ctx.progress, 0.03, 0.98)
    if images:
        return run_image(pipeline, images[0], settings, ctx.output_dir, ctx.input_files("mask"), params.get("box"),
                         variants=_number(params, "variants", 1, whole=True), preset=preset, progress=progress)
    return run_video(pipeline, videos[0], settings, ctx.output_dir, region_mode=str(params.get("region_mode", "same")),
                     anchor_index=_number(params, "anchor_frame", 0, whole=True), mask_files=ctx.input_files("mask"),
                     box=params.get("box"), keyframes=params.get("keyframes"),
                     frame_mask_files=ctx.input_files("masks"),
                     extended_attention=bool(params.get("extended_attention", True)), preset=preset,
                     progress=progress)
