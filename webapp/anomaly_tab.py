"""Anomaly tab: images + object name -> WinCLIP image scores and heat maps, as a job."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from tasks import client
from tasks.client import Job, Status
from webapp.views import follow, status_markdown, submit

ACCEPTED = [".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"]
METRIC_HEADERS = ["set", "image AUROC", "pixel AUROC", "PRO@30%", "F1-max", "images"]
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
    job = submit("anomaly", {"object_name": object_name, "preset": preset},
                 {"images": files, "references": references or []})
    for job in follow(job, progress):  # noqa: B020 - the last record is the final one
        yield job.id, status_markdown(job), *(result_views(job) if job.status.final else ([], [], []))


def metric_rows(job: Job) -> list[list[Any]]:
    """Overall and per-defect-type metrics of a finished evaluation job."""
    if job.status is not Status.SUCCEEDED:
        return []
    metrics = job.result["metrics"]
    rows = [("all", metrics), *metrics["per_defect_type"].items()]
    keys = ("image_auroc", "pixel_auroc", "pro", "image_f1_max")
    return [[name, *(None if m.get(k) is None else round(m[k], 4) for k in keys), m.get("num_images")]
            for name, m in rows]


def evaluation_views(job: Job) -> tuple[list[tuple[str, str]], list[list[Any]], list[str]]:
    """(ROC plot, metric rows, downloadable files) of a finished evaluation job."""
    if job.status is not Status.SUCCEEDED:
        return [], [], []
    plot = str(client.artifact_path(job.id, "roc.png"))
    return [(plot, "ROC, image level")], metric_rows(job), [str(client.artifact_path(job.id, n)) for n in job.outputs]


def run_evaluation(archive: str | None, object_name: str, shots: float, preset: str,
                   progress: gr.Progress = gr.Progress()) -> Iterator:
    """Evaluate on a labelled zip; streams status, then metrics, the ROC plot and the report files."""
    if not archive:
        raise gr.Error("Upload a .zip of a labelled set in the MVTec AD layout.")
    job = submit("anomaly_evaluate", {"object_name": object_name, "preset": preset, "shots": int(shots or 0)},
                 {"dataset": [archive]})
    for job in follow(job, progress):  # noqa: B020
        warnings = "".join(f"\n\n⚠️ {w}" for w in job.result.get("warnings", [])) if job.status.final else ""
        yield status_markdown(job) + warnings, *(evaluation_views(job) if job.status.final else ([], [], []))


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

    with gr.Accordion("Evaluate on a labelled set", open=False):
        gr.Markdown(
            "Upload a **.zip** in the MVTec AD layout (`test/good/`, `test/<defect>/`, "
            "`ground_truth/<defect>/<name>_mask.png`, optional `train/good/`). Reports image AUROC, pixel AUROC, "
            "PRO (area under the per-region overlap curve up to 30% false positive rate) and F1-max, overall and "
            "per defect type (each against all good images). With shots > 0, that many `train/good` images are "
            "the WinCLIP+ references. Defect images without a mask count for image metrics only."
        )
        with gr.Row():
            archive = gr.File(label="Labelled set (.zip)", file_types=[".zip"], elem_id="eval-zip")
            with gr.Column():
                eval_object = gr.Textbox(label="Object name", elem_id="eval-object")
                shots = gr.Number(label="Good reference shots (0 = zero-shot)", value=0, minimum=0, maximum=64,
                                  precision=0, elem_id="eval-shots")
                eval_preset = gr.Dropdown(label="Model", choices=[(p["label"], p["name"]) for p in presets],
                                          value=presets[0]["name"], elem_id="eval-preset")
                eval_button = gr.Button("Evaluate", variant="primary", elem_id="eval-run")
        eval_status = gr.Markdown(elem_id="eval-status")
        with gr.Row():
            roc = gr.Gallery(label="ROC", columns=1, height=380, object_fit="contain", elem_id="eval-roc")
            metrics = gr.Dataframe(headers=METRIC_HEADERS, label="Metrics", interactive=False, elem_id="eval-metrics")
        report_files = gr.File(label="Report (metrics.json, scores.csv, roc.png)", file_count="multiple",
                               interactive=False)
    eval_button.click(run_evaluation, [archive, eval_object, shots, eval_preset],
                      [eval_status, roc, metrics, report_files], api_name="evaluate_anomaly", concurrency_limit=None)
