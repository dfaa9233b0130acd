"""Anomaly tab: images, zips or a video + object name -> scores, OK/NG verdicts and heat maps, as jobs."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from engine.anomaly.common import DEFAULT_THRESHOLD, THRESHOLD_RANGE, score_text
from engine.anomaly.methods import METHODS, SET_RULE_MIN_IMAGES
from engine.filetypes import ARCHIVE_SUFFIXES, IMAGES_OR_ZIP, VIDEO_SUFFIXES
from engine.visualize import fitted_range
from tasks import client, reference_sets
from tasks.client import Job, Status
from webapp import reattach, samples
from webapp.controls import checkbox, number, one_job_per_click, textbox, told_when_refused
from webapp.model_choice import preset_dropdown, weights_notice
from webapp.saved_items import SavedControls, share_checkbox
from webapp.serving import job_file, job_inputs
from webapp.views import (
    fixed_decimals,
    follow,
    owner_of,
    preset_choices,
    status_markdown,
    submit,
    text,
    wire_cancel,
)

METRIC_HEADERS = ["set", "image AUROC", "pixel AUROC", "PRO@30%", "F1-max", "images"]
COMPARISON_HEADERS = ["method", "image AUROC", "pixel AUROC", "PRO@30%", "F1-max", "s / image"]
METHOD_CHOICES = [(m.label, m.name) for m in METHODS.values()]
METHOD_HELP = "**Which method?** " + " · ".join(f"*{m.label}*: {m.when}." for m in METHODS.values())
SCORE_HEADERS = ["file or frame", "score", "verdict", "details"]
# Score and verdict get fixed widths that hold "0.2926" and "skipped" on one line (a share of a phone's width gave
# them a letter per line); the file name wraps within its share, and the details (a skip's reason) scroll into view
# sideways on a narrow screen.
SCORE_COLUMN_WIDTHS = ["35%", "80px", "90px", "40%"]
THRESHOLD_MODES = {
    "Automatic": "auto",
    "Calibrate from the good parts": "calibrate",
    "Set it myself": "value",
}
THRESHOLD_HELP = (
    "**Threshold rules.** *Automatic*: calibrated when 2 or more good parts are given; otherwise, for WinCLIP, "
    f"{DEFAULT_THRESHOLD} (the anomalous prompts outweigh the normal ones), and for MuSc and AnomalyDINO, whose "
    f"scores have no fixed meaning, the set's own spread (median + 3 robust deviations, {SET_RULE_MIN_IMAGES}+ "
    "images or frames). *Calibrate*: each good part is scored "
    "without itself (with the other good parts as references; MuSc: within the set); the image threshold is the "
    "higher of the largest such score and "
    "their mean + 3 standard deviations, so every good part passes; the outline marks pixels above the "
    "highest pixel score of any good part. *Set it myself*: the value below, for scores and for the outline. "
    "A score **above** the threshold is **NG**, otherwise **OK**."
)
TIMELINE_COLOURS = {"score": "#1e50c8", "threshold": "#c81e1e"}
# Galleries of class "whole-images" show each picture whole at its own aspect (result cards are about 2.5 times
# as wide as high; the ROC plot is square) instead of cropped into Gradio's square tiles of a fixed-height box.
CSS = """
.whole-images .grid-wrap.fixed-height { max-height: 90vh; min-height: 0; }
.whole-images .thumbnail-item { aspect-ratio: auto; height: auto; }
.whole-images .thumbnail-lg > img { height: auto; }
"""


# the kinds of file an inspection writes, by how their names end, as the downloads' label names them
DOWNLOAD_KINDS = (("scores.csv", "scores.csv"), ("scores.json", "scores.json"), ("_map.png", "16-bit maps"),
                  (".mp4", "overlay video"))
# where a threshold came from, as the status line says it where its name misleads ("set" read as "Set it myself")
THRESHOLD_SOURCES = {"set": "from the set's own spread"}


def threshold_slider(mode: str) -> gr.Slider:
    """The threshold value can be moved only with "Set it myself": the other rules compute it."""
    return gr.Slider(interactive=THRESHOLD_MODES.get(mode) == "value")


def _threshold_line(result: dict[str, Any]) -> str:
    threshold = result.get("threshold")
    if not threshold:
        return ""
    counts = result.get("counts", {})
    tally = f"{counts.get('NG', 0)} NG, {counts.get('OK', 0)} OK"
    source = THRESHOLD_SOURCES.get(threshold["source"], threshold["source"])
    return (f"\n\nThreshold **{score_text(threshold['image'])}** ({source}; outline above "
            f"{score_text(threshold['pixel'])}) · {tally} · {text(result.get('mode', ''))}")


def result_views(job: Job) -> tuple[list[tuple[str, str]], list[list[Any]] | dict[str, Any], list[str]]:
    """(gallery with captions, score table rows, downloadable files) of a finished image or video job.

    Images: every result card (image | heat map | region above the threshold, with the OK / NG badge; jobs
    from before cards existed show their overlay). Video: the frames above the threshold (the overlay video
    is a download).
    """
    if job.status is not Status.SUCCEEDED:
        return [], [], []
    result = job.result
    gallery, rows = [], []
    for item in result.get("images", []):
        picture = item.get("card", item["overlay"])
        gallery.append((job_file(job, picture), f"{item['file']} · {score_text(item['score'])} · {item['verdict']}"))
        rows.append([item["file"], item["score"], item["verdict"], f"{item['width']} x {item['height']}"])
    for item in result.get("frames", []):
        if "overlay" in item:
            gallery.append((job_file(job, item["overlay"]), f"{item['file']} · {score_text(item['score'])} · NG"))
        rows.append([item["file"], item["score"], item["verdict"], f"t = {item['time_s']:.2f} s"])
    for item in result.get("skipped", []):
        role = " (good part)" if item.get("role") == "reference" else ""
        rows.append([item["file"] + role, None, "skipped", item["error"]])
    shown = ("_overlay.png", "_overlay.jpg", "_card.png")  # in the gallery, which downloads them one by one
    files = [job_file(job, name) for name in job.outputs if not name.endswith(shown)]
    return gallery, fixed_decimals(rows), files


def timeline(job: Job) -> gr.LinePlot:
    """Score per sampled frame and the threshold as a line across it, the score axis fitted to both so that
    small differences show; hidden for image jobs."""
    frames = job.result.get("frames", []) if job.status is Status.SUCCEEDED else []
    if not frames:
        return gr.LinePlot(value=pd.DataFrame({"time (s)": [], "score": [], "series": []}), visible=False)
    threshold = job.result["threshold"]["image"]
    times, scores = [f["time_s"] for f in frames], [f["score"] for f in frames]
    data = pd.DataFrame({
        "time (s)": [*times, times[0], times[-1]],
        "score": [*scores, threshold, threshold],
        "series": ["score"] * len(frames) + ["threshold"] * 2,
    })
    return gr.LinePlot(value=data, y_lim=list(fitted_range([*scores, threshold])), visible=True)


def preset_for_method(method: str, current: str | None) -> gr.Dropdown:
    """The chosen method's model: its real one, or its tiny one while a tiny model is chosen (a demo stays one)."""
    presets = client.presets("anomaly")
    chosen = next((p for p in presets if p["name"] == current), None)
    tiny = bool(chosen and chosen["random_weights"])
    own = [p for p in presets if p["method"] == method]
    return gr.Dropdown(value=next((p for p in own if p["random_weights"] == tiny), own[0])["name"])


def method_of_preset(preset: str | None) -> Any:
    """The method radio follows the model chosen (from the list, a sample or a re-attached job)."""
    method = next((p["method"] for p in client.presets("anomaly") if p["name"] == preset), None)
    return gr.Radio(value=method) if method else gr.skip()


def method_note(preset: str, method: str | None) -> str:
    """Say so when a call names a method its model does not run: the model named decides the method (the page's
    Method radio follows the model), so the call learns which ran and which models run the method it named; ""
    when they agree, and for the radio's default, which an API call that names only a model is given."""
    presets = client.presets("anomaly")
    ran = next((METHODS[p["method"]] for p in presets if p["name"] == preset), None)
    if ran is None or method not in METHODS or method in (ran.name, METHOD_CHOICES[0][1]):
        return ""
    named = METHODS[method]
    models = " or ".join(p["name"] for p in presets if p["method"] == method)
    return (f"\n\n⚠️ {text(preset)} is a {ran.label} model, so {ran.label} ran: the model decides the method, and "
            f"method {method} ({named.label}) was not used. To run {named.label}, choose {models}.")


def _params(object_name: str, preset: str, threshold_mode: str, threshold_value: float,
            reference_set: str | None, method: str | None, mask_background: bool, rotate_references: bool
            ) -> dict[str, Any]:
    """The job's parameters. The chosen model decides the method (the Method radio only narrows the model list, and
    an API call that names a model needs no method); the method picks its own model only when none is named."""
    mode = THRESHOLD_MODES.get(threshold_mode, "auto")
    params: dict[str, Any] = {"method": None if preset else method or None, "object_name": object_name,
                              "preset": preset,
                              "threshold": float(threshold_value) if mode == "value" else mode,
                              "mask_background": bool(mask_background), "rotate_references": bool(rotate_references)}
    if reference_set:
        params["reference_set"] = reference_set
    return params


def submitted_form(job: Job) -> list[Any]:
    """What the form held when `job` was submitted (restored on a reload): files to inspect, good parts (a saved
    set's images among them), object name, model, threshold rule and value, options, and a video's sampling."""
    params, video_job = job.params, job.tool == "anomaly_video"
    reattach.warn_unrestored(job.tool, params, ("method", "object_name", "preset", "threshold", "reference_set",
                                                "mask_background", "rotate_references", "stride", "fps"))
    threshold = params["threshold"]
    mode = next(label for label, rule in THRESHOLD_MODES.items()
                if rule == ("value" if isinstance(threshold, float) else threshold))
    per_second = bool(params.get("fps"))
    every = params.get("fps") if per_second else params.get("stride")
    return [gr.skip() if video_job else job_inputs(job, "images"),
            job_inputs(job, "video")[0] if video_job else gr.skip(),
            job_inputs(job, "references") or None, None, params["object_name"],
            params["preset"],
            mode, threshold if isinstance(threshold, float) else gr.skip(),
            params["mask_background"], params["rotate_references"],
            "Frames per second" if per_second else "Every Nth frame", every or gr.skip()]


def warnings_markdown(job: Job) -> str:
    """An ended job's warnings, one paragraph each."""
    return "".join(f"\n\n⚠️ {text(w)}" for w in job.result.get("warnings", [])) if job.status.final else ""


def summary_markdown(job: Job) -> str:
    """What an ended inspection decided with (method, threshold and where it came from) and its warnings."""
    return (_threshold_line(job.result) if job.status is Status.SUCCEEDED else "") + warnings_markdown(job)


def status_line(job: Job) -> str:
    """The tab's status: where the job stands, then what a finished one found."""
    return status_markdown(job) + summary_markdown(job)


def evaluation_line(job: Job) -> str:
    """The evaluation's status: where the job stands, then its warnings."""
    return status_markdown(job) + warnings_markdown(job)


def _follow(job: Job, progress: gr.Progress, note: str = "") -> Iterator:
    """A job's stream into the section; `note` (method_note) follows its status line."""
    for job in follow(job, progress):  # noqa: B020 - the last record is the final one
        done = job.status.final
        gallery, rows, files = result_views(job) if done else ([], [], [])
        video = job_file(job, "overlay.mp4") if done and "overlay.mp4" in job.outputs else None
        yield job.id, status_line(job) + note, gallery, rows, video, timeline(job), files


def downloads_label(names: Iterable[str] | None) -> Any:
    """The downloads' label naming the kinds of file shown (the run's: it named an overlay video for images too);
    set after the files, the label alone, so that API clients still get the files as a list."""
    names = list(names or [])
    kinds = [kind for ending, kind in DOWNLOAD_KINDS if any(name.endswith(ending) for name in names)]
    return gr.File(label=f"Downloads ({', '.join(kinds)})" if kinds else "Downloads")


def run(files: list[str] | None, references: list[str] | None, object_name: str, preset: str,
        threshold_mode: str = "Automatic", threshold_value: float = DEFAULT_THRESHOLD, reference_set: str | None = None,
        method: str | None = None, mask_background: bool = False, rotate_references: bool = False,
        request: gr.Request = None, progress: gr.Progress = gr.Progress()) -> Iterator:
    """Inspect a batch of images (zips accepted); streams status, then overlays, verdicts and downloads."""
    if not files:
        raise gr.Error("Upload at least one image (PNG, JPEG, WebP, BMP or TIFF) or a .zip of images.")
    job = submit("anomaly", _params(object_name, preset, threshold_mode, threshold_value, reference_set, method,
                                    mask_background, rotate_references),
                 {"images": files, "references": references or []}, request)
    yield from _follow(job, progress, method_note(preset, method))


def run_video(video: str | None, references: list[str] | None, object_name: str, preset: str,
              sampling: str = "Every Nth frame", sampling_value: float = 1, threshold_mode: str = "Automatic",
              threshold_value: float = DEFAULT_THRESHOLD, reference_set: str | None = None, method: str | None = None,
              mask_background: bool = False, rotate_references: bool = False, request: gr.Request = None,
              progress: gr.Progress = gr.Progress()) -> Iterator:
    """Inspect one video frame by frame (MuSc: the sampled frames are its set); streams status, then the overlay
    video, timeline and flagged frames."""
    if not video:
        raise gr.Error("Upload a video (mp4, webm, mov, avi or mkv).")
    params = _params(object_name, preset, threshold_mode, threshold_value, reference_set, method, mask_background,
                     rotate_references)
    # as given: the contract refuses a stride of 0.5 or 1.99 by its value (int() ran them as 0 and 1)
    params["fps" if sampling == "Frames per second" else "stride"] = sampling_value
    job = submit("anomaly_video", params, {"video": [video], "references": references or []}, request)
    yield from _follow(job, progress, method_note(preset, method))


SAVED_SETS = SavedControls(reference_sets.SETS, lambda s: f"{len(s['files'])} images"
                           + (f", {s['object_name']}" if s.get("object_name") else ""))


def save_reference_set(name: str, references: list[str] | None, object_name: str,
                       request: gr.Request = None) -> tuple[str, Any]:
    """Store the uploaded good parts as the signed-in user's set (private until shared), for later jobs."""
    if not references:
        raise gr.Error("Upload the images of good parts first, then save them as a set.", duration=None)
    owner = owner_of(request)
    try:
        meta = reference_sets.save(name, [(Path(f).name, Path(f)) for f in references], object_name, owner=owner)
    except ValueError as exc:
        raise gr.Error(str(exc), duration=None) from None
    return (f"Saved reference set **{text(meta['name'])}** ({len(meta['files'])} images).",
            gr.Dropdown(choices=SAVED_SETS.choices(owner), value=meta["name"]))


def metric_rows(job: Job) -> list[list[Any]] | dict[str, Any]:
    """Overall and per-defect-type metrics of a finished evaluation job."""
    if job.status is not Status.SUCCEEDED:
        return []
    metrics = job.result["metrics"]
    rows = [("all", metrics), *metrics["per_defect_type"].items()]
    keys = ("image_auroc", "pixel_auroc", "pro", "image_f1_max")
    return fixed_decimals([[name, *(m.get(k) for k in keys), m.get("num_images")] for name, m in rows])


def comparison_rows(job: Job) -> gr.Dataframe:
    """One row per compared method (overall metrics and seconds per image); hidden for a single method."""
    runs = job.result.get("comparison", []) if job.status is Status.SUCCEEDED else []
    keys = ("image_auroc", "pixel_auroc", "pro", "image_f1_max")
    rows = [[run["run"], *(run["metrics"].get(k) for k in keys), run["seconds_per_image"]] for run in runs]
    return gr.Dataframe(value=fixed_decimals(rows), visible=bool(rows))


def evaluation_views(job: Job) -> tuple[list[str], gr.Dataframe, list[list[Any]] | dict[str, Any], list[str]]:
    """(ROC plot, comparison table, metric rows of the first method, downloadable files) of a finished
    evaluation job."""
    if job.status is not Status.SUCCEEDED:
        return [], gr.Dataframe(visible=False), [], []
    plot = job_file(job, "roc.png")  # no caption: it covers the x axis
    return [plot], comparison_rows(job), metric_rows(job), [job_file(job, n) for n in job.outputs]


def run_evaluation(archive: str | None, object_name: str, shots: float, preset: str,
                   compare_with: list[str] | None = None, request: gr.Request = None,
                   progress: gr.Progress = gr.Progress()) -> Iterator:
    """Evaluate on a labelled zip with one method or several (the model above first, then those ticked);
    streams status, then the comparison, metrics, the ROC plot and the report files."""
    if not archive:
        raise gr.Error("Upload a .zip of a labelled set in the MVTec AD layout.")
    params: dict[str, Any] = {"object_name": object_name, "preset": preset, "shots": shots or 0}
    if compare_with:
        params["methods"] = [preset, *(name for name in compare_with if name != preset)]
    job = submit("anomaly_evaluate", params, {"dataset": [archive]}, request)
    for job in follow(job, progress):  # noqa: B020
        yield evaluation_line(job), *(evaluation_views(job) if job.status.final
                                      else ([], gr.Dataframe(visible=False), [], []))


def build() -> None:
    gr.Markdown(
        "### Anomaly inspection (WinCLIP, WinCLIP+, MuSc, AnomalyDINO)\n"
        "Inspect a batch of images (or a .zip of them) or a video of one kind of part and get an anomaly score, "
        "an **OK / NG** verdict and a heat map per image or frame. Good parts (optional for WinCLIP and MuSc, "
        "needed by AnomalyDINO) sharpen the maps and let the threshold be calibrated. Scores run from 0 to 1 "
        "(WinCLIP: the probability of the *anomalous* prompts; MuSc and AnomalyDINO: half the feature distance "
        "to the nearest normal patch); heat-map colours use the same absolute scale for every image "
        "(blue = 0, green = 0.5, red = 1); the white outline marks the region above the threshold.\n\n"
        + METHOD_HELP
    )
    job_id = gr.State(None)
    with gr.Row():
        with gr.Column(scale=1):
            method = gr.Radio(METHOD_CHOICES, value=METHOD_CHOICES[0][1], label="Method", elem_id="anomaly-method")
            object_name = textbox("anomaly", "object_name", placeholder="e.g. metal plate, bottle, PCB",
                                  elem_id="anomaly-object")
            preset = preset_dropdown("anomaly", "anomaly-preset")
            weights_notice("anomaly", preset)
            with gr.Accordion("Good parts (WinCLIP+, AnomalyDINO's references, a calibrated threshold)", open=True):
                references = gr.File(label="Images of good parts", file_count="multiple",
                                     file_types=IMAGES_OR_ZIP, elem_id="anomaly-references")
                reference_set = gr.Dropdown(label="…or a saved set of good parts (yours and shared ones)",
                                            choices=[], value=None, allow_custom_value=True,  # API: "user/name"
                                            elem_id="anomaly-reference-set")
                with gr.Row():
                    share_set = share_checkbox("anomaly-share-set")
                    delete_set = gr.Button("Delete set", variant="stop", size="sm", scale=0,
                                           elem_id="anomaly-delete-set")
                with gr.Row():
                    set_name = gr.Textbox(label="Save the uploaded good parts as", placeholder="set name",
                                          scale=3, elem_id="anomaly-set-name")
                    save_button = gr.Button("Save set", scale=1, elem_id="anomaly-save-set")
                set_status = gr.Markdown(elem_id="anomaly-set-status")
                with gr.Row():
                    mask_background = checkbox("anomaly", "mask_background", elem_id="anomaly-mask-background")
                    rotate_references = checkbox("anomaly", "rotate_references", elem_id="anomaly-rotate")
            with gr.Tabs(elem_id="anomaly-tabs") as sections:
                with gr.Tab("Images", id="anomaly-images-tab"):
                    files = gr.File(label="Images to inspect (or .zip of images)", file_count="multiple",
                                    file_types=IMAGES_OR_ZIP, elem_id="anomaly-files")
                    samples.anomaly(files, references, object_name, preset, method)
                    run_button = gr.Button("Inspect images", variant="primary", elem_id="anomaly-run")
                with gr.Tab("Video", id="anomaly-video-tab"):
                    video = gr.File(label="Video to inspect", file_types=list(VIDEO_SUFFIXES), elem_id="anomaly-video")
                    with gr.Row():
                        sampling = gr.Radio(["Every Nth frame", "Frames per second"], value="Every Nth frame",
                                            label="Sampling", elem_id="anomaly-sampling")
                        sampling_value = number("anomaly_video", "fps", value=5, label="N or frames per second",
                                                info=None, elem_id="anomaly-sampling-value")
                    samples.anomaly_video(video, references, object_name, preset, method)
                    video_button = gr.Button("Inspect video", variant="primary", elem_id="anomaly-run-video")
            cancel_button = gr.Button("Cancel", variant="stop", elem_id="anomaly-cancel")
            with gr.Accordion("Threshold (advanced: Automatic unless you change it)", open=False,
                              elem_id="anomaly-threshold-options"):
                threshold_mode = gr.Radio(list(THRESHOLD_MODES), value="Automatic", label="Threshold",
                                          elem_id="anomaly-threshold-mode")
                threshold_value = gr.Slider(*THRESHOLD_RANGE, value=DEFAULT_THRESHOLD, step=0.001, interactive=False,
                                            label="Threshold value (Set it myself)", elem_id="anomaly-threshold-value")
                gr.Markdown(THRESHOLD_HELP)
        with gr.Column(scale=2):
            status = gr.Markdown("Upload images or a video and press Inspect.", elem_id="anomaly-status")
            overlay_video = gr.Video(label="Heat-map video", interactive=False, visible="hidden",  # video jobs only
                                     elem_id="anomaly-overlay-video")
            plot = gr.LinePlot(x="time (s)", y="score", color="series", color_map=TIMELINE_COLOURS,
                               y_lim=[0, 1], label="Score over time (red line: the threshold)", visible=False,
                               elem_id="anomaly-timeline")
            gallery = gr.Gallery(label="Results: image | heat map | region above the threshold, with the verdict "
                                       "(video: frames above the threshold)", show_label=False, columns=1,
                                 height="auto", object_fit="contain", elem_id="anomaly-gallery",
                                 elem_classes="whole-images")
            table = gr.Dataframe(headers=SCORE_HEADERS, label="Scores", interactive=False, elem_id="anomaly-scores",
                                 wrap=True, column_widths=SCORE_COLUMN_WIDTHS)
            downloads = gr.File(label="Downloads",  # then the kinds of file the run produced (downloads_label)
                                file_count="multiple", interactive=False, elem_id="anomaly-downloads")
    outputs = [job_id, status, gallery, table, overlay_video, plot, downloads]
    downloads.change(downloads_label, downloads, downloads, api_visibility="private", show_progress="hidden")
    reattach.follow_on_load(job_id, ("anomaly", "anomaly_video"), _follow, outputs,  # ?job= in the address
                            buttons=[run_button, video_button])
    reattach.select_section_on_load(sections, lambda job: "anomaly-video-tab" if job.tool == "anomaly_video"
                                    else "anomaly-images-tab")  # a video job's reload shows the Video inputs
    reattach.restore_on_load(("anomaly", "anomaly_video"), submitted_form, [
        files, video, references, reference_set, object_name, preset, threshold_mode, threshold_value,
        mask_background, rotate_references, sampling, sampling_value])
    shared = [references, object_name, preset]
    options = [threshold_mode, threshold_value, reference_set, method, mask_background, rotate_references]
    one_job_per_click(run_button, run, [files, *shared, *options], outputs, api_name="anomaly",
                      concurrency_limit=None)
    one_job_per_click(video_button, run_video, [video, *shared, sampling, sampling_value, *options], outputs,
                      api_name="anomaly_video", concurrency_limit=None)
    method.input(preset_for_method, [method, preset], preset, api_visibility="private", show_progress="hidden")
    preset.change(method_of_preset, preset, method, api_visibility="private", show_progress="hidden")
    wire_cancel(cancel_button, job_id, status, "cancel_anomaly", status_line)
    threshold_mode.change(threshold_slider, threshold_mode, threshold_value, api_visibility="private",
                          show_progress="hidden", queue=False)
    # The video box only when there is a video (its own value: the job's outputs stay the same for the API).
    overlay_video.change(lambda path: gr.Video(visible=True if path else "hidden"), overlay_video, overlay_video,
                         api_visibility="private", show_progress="hidden", queue=False)
    saved = save_button.click(save_reference_set, [set_name, references, object_name], [set_status, reference_set],
                              api_name="save_reference_set", show_progress_on=set_status)  # the list stays usable
    told_when_refused(saved, set_status, "Not saved")
    SAVED_SETS.wire(reference_set, share_set, delete_set, set_status, "reference_sets", "delete_reference_set")

    with gr.Accordion("Evaluate on a labelled set", open=False):
        gr.Markdown(
            "Upload a **.zip** in the MVTec AD layout (`test/good/`, `test/<defect>/`, "
            "`ground_truth/<defect>/<name>_mask.png`, optional `train/good/`). Reports image AUROC, pixel AUROC, "
            "PRO (area under the per-region overlap curve up to 30% false positive rate) and F1-max, overall and "
            "per defect type (each against all good images). With shots > 0, that many `train/good` images are "
            "the good parts (WinCLIP+ and AnomalyDINO references; MuSc adds them to its set, which is the whole "
            "test split). Tick other models to compare them on the same set: one table with seconds per image, "
            "and their ROC curves in one plot. Defect images without a mask count for image metrics only."
        )
        with gr.Row():
            archive = gr.File(label="Labelled set (.zip)", file_types=list(ARCHIVE_SUFFIXES), elem_id="eval-zip")
            with gr.Column():
                eval_object = textbox("anomaly_evaluate", "object_name", info=None, elem_id="eval-object")
                shots = number("anomaly_evaluate", "shots", info=None, elem_id="eval-shots")
                eval_preset = preset_dropdown("anomaly", "eval-preset")
                weights_notice("anomaly", eval_preset)
                compare_with = gr.CheckboxGroup(preset_choices("anomaly"), value=[], label="Compare with",
                                                elem_id="eval-compare")
                eval_button = gr.Button("Evaluate", variant="primary", elem_id="eval-run")
        eval_status = gr.Markdown(elem_id="eval-status")
        comparison = gr.Dataframe(headers=COMPARISON_HEADERS, label="Methods compared (overall)", interactive=False,
                                  visible=False, elem_id="eval-comparison")
        with gr.Row():
            roc = gr.Gallery(label="ROC", show_label=False, columns=1, height="auto", object_fit="contain", scale=1,
                             elem_id="eval-roc", elem_classes="whole-images")  # labels would cover the plot's title
            metrics = gr.Dataframe(headers=METRIC_HEADERS, label="Metrics of the model above, per defect type",
                                   interactive=False, scale=2,
                                   elem_id="eval-metrics")
        report_files = gr.File(label="Report (metrics.json, scores.csv, roc.png)", file_count="multiple",
                               interactive=False)
    one_job_per_click(eval_button, run_evaluation, [archive, eval_object, shots, eval_preset, compare_with],
                      [eval_status, roc, comparison, metrics, report_files], api_name="evaluate_anomaly",
                      concurrency_limit=None)
