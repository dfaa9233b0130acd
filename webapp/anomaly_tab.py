"""Anomaly tab: images + object name -> WinCLIP image scores and heat maps, as a job."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import gradio as gr

from tasks import client
from tasks.client import Job, Status
from webapp.views import status_markdown

ACCEPTED = [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"]
POLL_S = 0.3
SCORE_HEADERS = ["file", "score", "size", "map min", "map max"]


def result_views(job: Job) -> tuple[list[tuple[str, str]], list[list[Any]], list[str]]:
    """(gallery of overlays with captions, score table rows, downloadable files) of a finished job."""
    if job.status is not Status.SUCCEEDED:
        return [], [], []
    gallery, rows = [], []
    for item in job.result.get("images", []):
        overlay = str(client.artifact_path(job.id, item["overlay"]))
        gallery.append((overlay, f"{item['file']} · score {item['score']:.3f}"))
        rows.append([item["file"], round(item["score"], 4), f"{item['width']} x {item['height']}",
                     round(item["map_min"], 4), round(item["map_max"], 4)])
    for item in job.result.get("skipped", []):
        rows.append([item["file"], None, "skipped", None, item["error"]])
    files = [str(client.artifact_path(job.id, name)) for name in job.outputs if not name.endswith("_overlay.png")]
    return gallery, rows, files


def run(files: list[str] | None, references: list[str] | None, object_name: str, preset: str,
        progress: gr.Progress = gr.Progress()) -> Iterator:
    """Submit a job, then follow it until it ends, streaming its status to the page."""
    if not files:
        raise gr.Error("Upload at least one image (PNG, JPEG, WebP, BMP or TIFF).")
    try:
        job = client.submit("anomaly", {"object_name": object_name, "preset": preset},
                            {"images": files, "references": references or []})
    except (client.QueueUnavailable, ValueError) as exc:
        raise gr.Error(str(exc)) from None
    while not job.status.final:
        progress(job.progress, desc=job.message)
        yield job.id, status_markdown(job), [], [], []
        time.sleep(POLL_S)
        job = client.get(job.id)
    if job.status is Status.FAILED:
        gr.Warning(job.error or "The job failed.")
    yield job.id, status_markdown(job), *result_views(job)


def cancel(job_id: str | None) -> str:
    if not job_id:
        return "Nothing to cancel: no job was started from this tab."
    return status_markdown(client.cancel(job_id))


def build() -> None:
    presets = client.presets("anomaly")
    gr.Markdown(
        "### Zero-shot anomaly segmentation (WinCLIP)\n"
        "Upload images of one kind of part, name the object, and get an anomaly score per image and a heat map. "
        "Adding a few images of good parts switches from zero-shot WinCLIP to WinCLIP+, which also compares "
        "every patch with the nearest patch of the good parts. "
        "Scores are probabilities of the *anomalous* prompts (0 to 1); heat-map colours use the same absolute "
        "scale for every image: blue = 0, green = 0.5, red = 1. Downloads: a 16-bit PNG map per image "
        "(value = score x 65535) and `scores.json`."
    )
    job_id = gr.State(None)
    with gr.Row():
        with gr.Column(scale=1):
            files = gr.File(label="Images to inspect", file_count="multiple", file_types=ACCEPTED,
                            elem_id="anomaly-files")
            references = gr.File(label="Good parts (optional): images of defect-free parts switch on WinCLIP+",
                                 file_count="multiple", file_types=ACCEPTED, elem_id="anomaly-references")
            object_name = gr.Textbox(label="Object name", placeholder="e.g. metal plate, bottle, PCB",
                                     elem_id="anomaly-object")
            preset = gr.Dropdown(label="Model", choices=[(p["label"], p["name"]) for p in presets],
                                 value=presets[0]["name"], elem_id="anomaly-preset")
            with gr.Row():
                run_button = gr.Button("Run", variant="primary", elem_id="anomaly-run")
                cancel_button = gr.Button("Cancel", variant="stop", elem_id="anomaly-cancel")
        with gr.Column(scale=2):
            status = gr.Markdown("Upload images and press Run.", elem_id="anomaly-status")
            gallery = gr.Gallery(label="Heat maps", columns=3, height="auto", object_fit="contain",
                                 elem_id="anomaly-gallery")
            table = gr.Dataframe(headers=SCORE_HEADERS, label="Scores",
                                 interactive=False, elem_id="anomaly-scores")
            downloads = gr.File(label="Downloads (maps and scores.json)", file_count="multiple",
                                interactive=False, elem_id="anomaly-downloads")
    run_button.click(run, [files, references, object_name, preset], [job_id, status, gallery, table, downloads],
                     api_name="anomaly", concurrency_limit=None)
    cancel_button.click(cancel, [job_id], [status], api_name="cancel_anomaly")
