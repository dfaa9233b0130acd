"""Annotation completion tab: import a partly annotated set, get proposals for the missing boxes, review, export.

The review (accepted / rejected proposal ids) lives in the session and, on export, in the job's
review.json; the score slider filters the proposals already computed, without a new job.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw

from engine.completion import review as reviews
from engine.completion.outputs import PROPOSALS_FILE
from engine.filetypes import (
    ANNOTATIONS_OR_ZIP,
    IMAGES_OR_ZIP,
    VIDEO_SUFFIXES,
)
from tasks import client, finetune_models
from tasks.client import Job, JobNotFound, Status
from webapp import controls, reattach, samples
from webapp.controls import one_job_per_click
from webapp.saved_items import label, refresh_on_load
from webapp.serving import hand_out, job_file
from webapp.views import (
    cancel_started_job,
    code,
    follow,
    owner_of,
    preset_choices,
    preset_dropdown,
    status_markdown,
    submit,
    text,
    weights_notice,
)

PROPOSAL_HEADERS = ["id", "class", "score", "status", "exemplar"]
IMAGE_HEADERS = ["file", "existing boxes", "proposals ≥ threshold", "best score"]
METRIC_HEADERS = ["class", "hidden", "found", "proposals", "recall", "precision"]
CURVE_HEADERS = ["score threshold", "recall", "precision", "proposals"]
COLORS = {"existing": "#22aa44", "pending": "#ff8800", "accepted": "#2266ff", "rejected": "#999999"}
DETECTOR = "detector:"  # model choices naming a saved fine-tuned detector instead of an OWLv2 preset


def detector_choices(owner: str | None = None) -> list[tuple[str, str]]:
    """Saved fine-tuned detectors `owner` may use (their own and shared ones), offered as completion engines."""
    return [(f"Fine-tuned detector · {label(m, ', '.join(m['classes']))}", f"{DETECTOR}{m['ref']}")
            for m in finetune_models.list_models("detect", owner=owner)]


def refresh_engines(request: gr.Request = None) -> Any:
    """The OWLv2 presets and the signed-in user's detectors (one may have been trained since the page was built);
    on page load and a button, not on the dropdown's focus, so a late update never undoes the user's pick."""
    return gr.Dropdown(choices=preset_choices("completion") + detector_choices(owner_of(request)))


def engine_params(choice: str) -> dict[str, Any]:
    """A model choice as job parameters: {"preset": name} or {"detector_model": name}."""
    return {"detector_model": choice.removeprefix(DETECTOR)} if choice.startswith(DETECTOR) else {"preset": choice}


# -- review state: {"job": id, "doc": proposals.json, "accepted": [...], "rejected": [...]} -----------------
def _proposals(job_id: str) -> dict[str, Any]:
    return reviews.read_proposals(client.artifact_path(job_id, PROPOSALS_FILE))


def _review(job_id: str) -> dict[str, Any]:
    try:
        saved = reviews.read_review(client.artifact_path(job_id, reviews.REVIEW_FILE)) or {}
    except JobNotFound:  # not reviewed yet
        saved = {}
    return {"job": job_id, "doc": _proposals(job_id), "accepted": saved.get("accepted", []),
            "rejected": saved.get("rejected", [])}


def _status_of(review: dict[str, Any], proposal_id: int) -> str:
    if proposal_id in review["accepted"]:
        return "accepted"
    return "rejected" if proposal_id in review["rejected"] else "pending"


def _visible(item: dict[str, Any], review: dict[str, Any], threshold: float) -> list[dict[str, Any]]:
    """Proposals of one image shown at this threshold (decided ones stay visible)."""
    return [p for p in item["proposals"] if p["score"] >= threshold or _status_of(review, p["id"]) != "pending"]


def render(review: dict[str, Any] | None, threshold: float, page: int) -> tuple[Any, Any, str, str, int]:
    """(overlay image, proposal rows, page line, counts line, page) for one image of the review.

    Existing boxes are drawn solid green; proposals orange (pending), blue and thicker (accepted) or
    thin grey (rejected), each with its id; one image per view, so large sets page through.
    """
    if not review:
        return None, [], "No proposals yet: run a completion or load a job.", "", 0
    images = review["doc"]["images"]
    page = min(max(int(page or 0), 0), len(images) - 1)
    item = images[page]
    scale = item["preview_scale"]
    picture = Image.open(client.artifact_path(review["job"], item["preview"])).convert("RGB")
    draw = ImageDraw.Draw(picture)
    for existing in item["existing"]:
        draw.rectangle(_scaled(existing["box"], scale), outline=COLORS["existing"], width=3)
    rows = []
    for p in reversed(_visible(item, review, threshold)):  # best drawn last, on top
        state = _status_of(review, p["id"])
        corners = _scaled(p["box"], scale)
        draw.rectangle(corners, outline=COLORS[state], width={"accepted": 3, "rejected": 1}.get(state, 2))
        draw.text((corners[0] + 2, corners[1] + 1), f"#{p['id']}", fill=COLORS[state])
        rows.insert(0, [p["id"], p["category"], round(p["score"], 4), state, p["exemplar"]])
    all_proposals = [p for i in images for p in i["proposals"]]
    above = sum(1 for p in all_proposals if p["score"] >= threshold)
    counts = (f"**{above}** of {len(all_proposals)} proposals score ≥ {threshold:.2f} · accepted "
              f"**{len(review['accepted'])}** · rejected {len(review['rejected'])}")
    line = (f"Image {page + 1} of {len(images)}: {code(item['file'])} · {len(item['existing'])} existing, "
            f"{len(rows)} shown")
    return picture, rows, line, counts, page


def _scaled(box: list[float], scale: float) -> list[float]:
    x, y, w, h = (v * scale for v in box)
    return [x, y, x + w, y + h]


def _outputs(review: dict[str, Any] | None, threshold: float, page: int) -> tuple:
    view, rows, line, counts, page = render(review, threshold, page)
    return review, view, rows, line, counts, page


def accept_above(review: dict[str, Any] | None, threshold: float, page: int) -> tuple:
    """Accept every pending proposal at or above the threshold, in all images."""
    if review:
        ids = {p["id"] for i in review["doc"]["images"] for p in i["proposals"] if p["score"] >= threshold}
        review = {**review, "accepted": sorted(set(review["accepted"]) | (ids - set(review["rejected"])))}
    return _outputs(review, threshold, page)


def decide(review: dict[str, Any] | None, proposal_id: float | None, decision: str, threshold: float,
           page: int) -> tuple:
    """Accept or reject one proposal by id."""
    if not review:
        raise gr.Error("Run a completion (or load a job) first.")
    known = {p["id"] for i in review["doc"]["images"] for p in i["proposals"]}
    if proposal_id is None or int(proposal_id) not in known:
        raise gr.Error(f"No proposal #{proposal_id}: pick one in the table or click a box.")
    pid = int(proposal_id)
    accepted, rejected = set(review["accepted"]) - {pid}, set(review["rejected"]) - {pid}
    (accepted if decision == "accept" else rejected).add(pid)
    return _outputs({**review, "accepted": sorted(accepted), "rejected": sorted(rejected)}, threshold, page)


def clear_decisions(review: dict[str, Any] | None, threshold: float, page: int) -> tuple:
    return _outputs({**review, "accepted": [], "rejected": []} if review else None, threshold, page)


def export(review: dict[str, Any] | None, request: gr.Request = None) -> list[str]:
    """Existing boxes plus the accepted proposals, as COCO JSON, a YOLO zip and a VOC zip."""
    if not review:
        raise gr.Error("Nothing to export yet: run a completion first.")
    owner = owner_of(request)
    paths = client.add_outputs(review["job"], lambda out_dir: reviews.save_review(
        out_dir, _proposals(review["job"]), review["accepted"], review["rejected"]), owner)
    return [hand_out(p, owner, job_id=review["job"]) for p in paths if p.name != reviews.REVIEW_FILE]


def pick_box(review: dict[str, Any] | None, page: int, event: gr.SelectData) -> float | None:
    """Clicking inside a proposal's box on the image selects it (the smallest box under the click)."""
    if not review or not isinstance(event.index, list | tuple) or len(event.index) != 2:
        return None
    item = review["doc"]["images"][page]
    x, y = (v / item["preview_scale"] for v in event.index)
    hits = [p for p in item["proposals"]
            if p["box"][0] <= x <= p["box"][0] + p["box"][2] and p["box"][1] <= y <= p["box"][1] + p["box"][3]]
    return min(hits, key=lambda p: p["box"][2] * p["box"][3])["id"] if hits else None


def pick_row(rows: Any, event: gr.SelectData) -> float | None:
    """Clicking a row of the proposal table selects its id."""
    row = event.index[0]
    return float(rows.iloc[row, 0]) if hasattr(rows, "iloc") else float(rows[row][0])


def load_job(job_id: str, threshold: float, request: gr.Request = None) -> tuple:
    """Review a finished completion job by id (e.g. one opened from the Jobs tab)."""
    try:
        job = client.get((job_id or "").strip(), owner_of(request))
    except JobNotFound as exc:
        raise gr.Error(str(exc)) from None
    if job.tool not in ("completion", "completion_evaluate") or job.status is not Status.SUCCEEDED:
        raise gr.Error(f"Job {job.id[:8]} is a {job.status.value} {job.tool} job; only finished completion jobs "
                       "can be reviewed.")
    return (status_markdown(job), *_outputs(_review(job.id), threshold, 0))


# -- drawn boxes ----------------------------------------------------------------------------------
def drawing_choices(files: list[str] | None, video: str | None) -> Any:
    names = [Path(f).name for f in files or [] if Path(f).suffix.lower() != ".zip"]
    if video:
        names.append("frame_000000_0.00s.png")
    return gr.Dropdown(choices=names, value=names[0] if names else None)


def drawing_background(name: str | None, files: list[str] | None, video: str | None) -> Any:
    """The chosen image (or the video's first frame) as the drawing canvas."""
    if not name:
        return None
    if video and name.startswith("frame_000000"):
        try:
            return first_frame(video)
        except ValueError as exc:  # UserInputError: not a readable video
            raise gr.Error(str(exc)) from None
    path = next((f for f in files or [] if Path(f).name == name), None)
    return Image.open(path).convert("RGB") if path else None


def first_frame(path: str):
    """A video's first frame (PIL), to draw boxes on before the job samples the others."""
    from engine.video import iter_frames

    return next(iter(iter_frames(Path(path), stride=1))).image


def add_drawn_box(editor: dict[str, Any] | None, image_name: str | None, category: str,
                  drawn: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str, Any]:
    """Everything painted on the layers becomes one box (draw one object, add, repeat)."""
    if not editor or not image_name:
        raise gr.Error("Choose an image and paint over one object first.")
    layers = [np.asarray(layer) for layer in editor.get("layers") or [] if layer is not None]
    painted = np.zeros(layers[0].shape[:2], bool) if layers else None
    for layer in layers:
        painted |= layer[..., 3] > 0 if layer.ndim == 3 and layer.shape[2] == 4 else np.asarray(layer).any(-1)
    if painted is None or not painted.any():
        raise gr.Error("Nothing is painted: paint over one object, then press Add box.")
    if not category.strip():
        raise gr.Error("Name the class of the painted object (e.g. 'capacitor').")
    background = np.asarray(editor["background"]) if editor.get("background") is not None else None
    sy, sx = ((background.shape[0] / painted.shape[0], background.shape[1] / painted.shape[1])
              if background is not None else (1.0, 1.0))
    rows, cols = np.flatnonzero(painted.any(1)), np.flatnonzero(painted.any(0))
    box = [round(cols[0] * sx, 1), round(rows[0] * sy, 1), round((cols[-1] + 1 - cols[0]) * sx, 1),
           round((rows[-1] + 1 - rows[0]) * sy, 1)]
    drawn = [*drawn, {"image": image_name, "box": box, "category": category.strip()}]
    return drawn, _drawn_markdown(drawn), gr.ImageEditor(value=editor.get("background"))


def _drawn_markdown(drawn: list[dict[str, Any]]) -> str:
    if not drawn:
        return "No drawn boxes."
    return "\n".join(f"- {code(d['image'])} {text(d['category'])}: x {d['box'][0]}, y {d['box'][1]}, "
                     f"{d['box'][2]} x {d['box'][3]}" for d in drawn)


# -- jobs -----------------------------------------------------------------------------------------
def run(images: list[str] | None, annotations: list[str] | None, video: str | None, stride: float,
        drawn: list[dict[str, Any]], preset: str, threshold: float, text_queries: bool,
        request: gr.Request = None, progress: gr.Progress = gr.Progress()) -> Iterator:
    """Submit a completion job and follow it; when it ends, open its proposals for review."""
    if not images and not video:
        raise gr.Error("Upload images (or a zip of them), or a video.")
    params = {**engine_params(preset), "score_threshold": threshold, "text_queries": bool(text_queries),
              "drawn_boxes": drawn or []}
    if stride:
        params["video_stride"] = int(stride)
    job = submit("completion", params, {"images": images or [], "annotations": annotations or [],
                                        "video": [video] if video else []}, request)
    empty = (None, None, [], "", "", 0)
    for job in follow(job, progress):  # noqa: B020 - the last record is the final one
        if job.status is Status.SUCCEEDED:
            yield job.id, _done_markdown(job), *_outputs(_review(job.id), threshold, 0)
        else:
            yield job.id, status_markdown(job), *empty


def _done_markdown(job: Job) -> str:
    result = job.result
    line = (f"{status_markdown(job)}\n\n{result['images']} images · {result['existing_boxes']} existing boxes "
            f"({result['exemplars']} exemplars) · {result['proposals']} proposals")
    if result.get("detector"):
        line += f" · fine-tuned detector **{text(result['detector'])}**"
    if result.get("random_weights"):
        line += " · ⚠️ random weights: the proposals only test the plumbing"
    skipped = result.get("skipped") or []
    if skipped:
        line += f"\n\n**Skipped ({len(skipped)}):**\n" + "\n".join(f"- {text(s['error'])}" for s in skipped[:20])
        if len(skipped) > 20:
            line += f"\n- … and {len(skipped) - 20} more (all in proposals.json)"
    return line


def result_views(job: Job) -> tuple[list[tuple[str, str]], list[list[Any]], list[str]]:
    """(previews with captions, a row per image, downloads) of a finished completion job, for the Jobs tab."""
    if job.status is not Status.SUCCEEDED:
        return [], [], []
    document = _proposals(job.id)
    threshold = job.result["score_threshold"]
    gallery, rows = [], []
    for item in document["images"]:
        above = [p for p in item["proposals"] if p["score"] >= threshold]
        best = max((p["score"] for p in item["proposals"]), default=None)
        gallery.append((job_file(job, item["preview"]),
                        f"{item['file']} · {len(item['existing'])} existing · {len(above)} proposed"))
        rows.append([item["file"], len(item["existing"]), len(above), best])
    files = [job_file(job, n) for n in job.outputs if not n.startswith("preview_")]
    return gallery, rows, files


def metric_rows(job: Job) -> list[list[Any]]:
    if job.status is not Status.SUCCEEDED:
        return []
    metrics = job.result["metrics"]
    rows = [*metrics["per_class"].items(), ("all", metrics["overall"])]
    return [[name, m["hidden"], m["found"], m["proposals"], m["recall"], m["precision"]] for name, m in rows]


def evaluation_views(job: Job) -> tuple[list[tuple[str, str]], list[list[Any]], list[str]]:
    """(no images, metric rows, report and exports) of an evaluation job, for the Jobs tab."""
    files = [job_file(job, n) for n in job.outputs if not n.startswith("preview_")]
    return [], metric_rows(job), files if job.status is Status.SUCCEEDED else []


def run_evaluation(images: list[str] | None, annotations: list[str] | None, fraction: float, seed: float,
                   threshold: float, preset: str, request: gr.Request = None,
                   progress: gr.Progress = gr.Progress()) -> Iterator:
    """Hide a fraction of a fully annotated set's boxes, complete, report recall and precision."""
    if not images:
        raise gr.Error("Upload the images of a fully annotated set (or a zip with images and annotations).")
    params = {**engine_params(preset), "drop_fraction": fraction, "score_threshold": threshold}
    if seed is not None:
        params["seed"] = seed
    job = submit("completion_evaluate", params, {"images": images, "annotations": annotations or []}, request)
    for job in follow(job, progress):  # noqa: B020
        if job.status is Status.SUCCEEDED:
            report = job.result
            line = (f"{status_markdown(job)}\n\n{report['hidden']} of {report['boxes']} boxes hidden (seed "
                    f"{report['seed']}); IoU 0.5; proposals scoring ≥ {threshold:.2f}.")
            curve = [[c["score_threshold"], c["recall"], c["precision"], c["proposals"]] for c in report["curve"]]
            yield line, metric_rows(job), curve, evaluation_views(job)[2]
        else:
            yield status_markdown(job), [], [], []


def build() -> None:
    gr.Markdown(
        "### Annotation completion (ComplETR-style)\n"
        "Upload a partly annotated set (images or a zip, plus COCO JSON, YOLO txt with `classes.txt`, or Pascal "
        "VOC XML), or a video whose sampled frames become the images, or draw a few boxes. Every annotated box is "
        "an exemplar: OWLv2 looks for objects like it in every image, and proposes the boxes that are missing. "
        "Review them below and export the accepted set in the three formats. A detector fine-tuned on a reviewed set "
        "(few-shot fine-tuning tab) can be chosen as the model instead: it proposes its classes' boxes."
    )
    job_id = gr.State(None)
    reattach.link(job_id)  # ?job= in the address: a reload opens it in the Jobs tab
    drawn = gr.State([])
    review = gr.State(None)
    page = gr.State(0)
    with gr.Row():
        with gr.Column(scale=1):
            images = gr.File(label="Images (or a zip)", file_count="multiple", file_types=IMAGES_OR_ZIP,
                             elem_id="completion-images")
            annotations = gr.File(label="Annotations: COCO .json, YOLO .txt + classes.txt, VOC .xml (or a zip)",
                                  file_count="multiple", file_types=ANNOTATIONS_OR_ZIP,
                                  elem_id="completion-annotations")
            with gr.Accordion("Video instead of images", open=False):
                video = gr.File(label="Video", file_types=list(VIDEO_SUFFIXES), elem_id="completion-video")
                stride = controls.number("completion", "video_stride", precision=0, elem_id="completion-stride")
            with gr.Row():
                preset = preset_dropdown("completion", "completion-preset", allow_custom_value=True,
                                         scale=4)  # detectors are the user's: added on load; API: any of theirs
                refresh_button = gr.Button("↻ Models", size="sm", scale=1, elem_id="completion-refresh-models")
            weights_notice("completion", preset)
            threshold = controls.slider("completion", "score_threshold", step=0.01, elem_id="completion-threshold")
            text_queries = controls.checkbox("completion", "text_queries")
            samples.completion(images, annotations, preset)
            with gr.Row():
                run_button = gr.Button("Complete", variant="primary", elem_id="completion-run")
                cancel_button = gr.Button("Cancel", variant="stop", elem_id="completion-cancel")
        with gr.Column(scale=1), gr.Accordion("Draw boxes (when there are no annotations, or to add some)",
                                              open=False):
                draw_on = gr.Dropdown(label="Image to draw on", choices=[], elem_id="completion-draw-on")
                editor = gr.ImageEditor(label="Paint over one object, then Add box", type="numpy",
                                        sources=[], elem_id="completion-editor")
                with gr.Row():
                    draw_class = gr.Textbox(label="Class", placeholder="e.g. capacitor", elem_id="completion-class")
                    add_button = gr.Button("Add box", elem_id="completion-add-box")
                drawn_list = gr.Markdown("No drawn boxes.", elem_id="completion-drawn")
    status = gr.Markdown("Upload a set and press Complete.", elem_id="completion-status")
    gr.Markdown("#### Review")
    counts = gr.Markdown(elem_id="completion-counts")
    with gr.Row():
        previous_button = gr.Button("◀ Previous image", elem_id="completion-prev")
        page_line = gr.Markdown(elem_id="completion-page")
        next_button = gr.Button("Next image ▶", elem_id="completion-next")
    with gr.Row():
        view = gr.Image(label="Green: existing · orange: proposed · blue: accepted · grey: rejected (click a box)",
                        type="pil", format="png", interactive=False, height=560, elem_id="completion-view")
        with gr.Column():
            table = gr.Dataframe(headers=PROPOSAL_HEADERS, label="Proposals on this image (click a row)",
                                 interactive=False, elem_id="completion-proposals")
            with gr.Row():
                proposal = gr.Number(label="Proposal #", precision=0, elem_id="completion-proposal")
                accept_button = gr.Button("Accept", elem_id="completion-accept")
                reject_button = gr.Button("Reject", elem_id="completion-reject")
            with gr.Row():
                accept_all = gr.Button("Accept all ≥ threshold", variant="primary", elem_id="completion-accept-all")
                clear_button = gr.Button("Clear decisions")
            export_button = gr.Button("Export accepted (COCO, YOLO, VOC)", elem_id="completion-export")
            downloads = gr.File(label="Exports", file_count="multiple", interactive=False,
                                elem_id="completion-exports")
            with gr.Row():
                load_id = gr.Textbox(label="Review an earlier job (id)", scale=3)
                load_button = gr.Button("Load", scale=1)

    review_out = [review, view, table, page_line, counts, page]
    refresh_button.click(refresh_engines, None, preset, api_visibility="private")
    refresh_on_load(refresh_engines, preset, api_visibility="private")
    images.change(drawing_choices, [images, video], draw_on, api_visibility="private")
    video.change(drawing_choices, [images, video], draw_on, api_visibility="private")
    draw_on.change(drawing_background, [draw_on, images, video], editor, api_visibility="private")
    add_button.click(add_drawn_box, [editor, draw_on, draw_class, drawn], [drawn, drawn_list, editor],
                     api_visibility="private")
    one_job_per_click(run_button, run, [images, annotations, video, stride, drawn, preset, threshold, text_queries],
                     [job_id, status, *review_out], api_name="completion", concurrency_limit=None)
    cancel_button.click(cancel_started_job, [job_id], [status], api_name="cancel_completion")
    threshold.change(_outputs, [review, threshold, page], review_out, api_name="completion_filter",
                     show_progress="hidden")
    previous_button.click(lambda r, t, p: _outputs(r, t, p - 1), [review, threshold, page], review_out,
                          api_name="completion_previous")
    next_button.click(lambda r, t, p: _outputs(r, t, p + 1), [review, threshold, page], review_out,
                      api_name="completion_next")
    view.select(pick_box, [review, page], proposal, api_visibility="private")
    table.select(pick_row, [table], proposal, api_visibility="private")
    accept_button.click(lambda r, i, t, p: decide(r, i, "accept", t, p), [review, proposal, threshold, page],
                        review_out, api_name="completion_accept")
    reject_button.click(lambda r, i, t, p: decide(r, i, "reject", t, p), [review, proposal, threshold, page],
                        review_out, api_name="completion_reject")
    accept_all.click(accept_above, [review, threshold, page], review_out, api_name="completion_accept_above")
    clear_button.click(clear_decisions, [review, threshold, page], review_out, api_name="completion_clear")
    export_button.click(export, [review], downloads, api_name="completion_export")
    load_button.click(load_job, [load_id, threshold], [status, *review_out], api_name="completion_load")

    with gr.Accordion("Evaluate on a fully annotated set", open=False):
        gr.Markdown("A seeded fraction of the boxes is hidden, the rest are the exemplars; reported: recall of the "
                    "hidden boxes and precision of the proposals at IoU 0.5, per class, and both over thresholds.")
        with gr.Row():
            eval_images = gr.File(label="Images (or a zip with images and annotations)", file_count="multiple",
                                  file_types=IMAGES_OR_ZIP, elem_id="completion-eval-images")
            eval_annotations = gr.File(label="Annotations", file_count="multiple", file_types=ANNOTATIONS_OR_ZIP,
                                       elem_id="completion-eval-annotations")
            with gr.Column():
                fraction = controls.slider("completion_evaluate", "drop_fraction", step=0.05)
                seed = controls.number("completion_evaluate", "seed", precision=0)
                eval_threshold = controls.slider("completion_evaluate", "score_threshold", step=0.01)
                eval_preset = preset_dropdown("completion", "completion-eval-preset", allow_custom_value=True)
                weights_notice("completion", eval_preset)
                eval_refresh = gr.Button("↻ Models", size="sm")
                eval_button = gr.Button("Evaluate", variant="primary", elem_id="completion-eval-run")
        eval_status = gr.Markdown(elem_id="completion-eval-status")
        with gr.Row():
            metrics = gr.Dataframe(headers=METRIC_HEADERS, label="Recall and precision", interactive=False,
                                   elem_id="completion-eval-metrics")
            curve = gr.Dataframe(headers=CURVE_HEADERS, label="Over score thresholds", interactive=False)
        report_files = gr.File(label="Report and exports", file_count="multiple", interactive=False)
    eval_refresh.click(refresh_engines, None, eval_preset, api_visibility="private")
    refresh_on_load(refresh_engines, eval_preset, api_visibility="private")
    one_job_per_click(eval_button, run_evaluation,
                      [eval_images, eval_annotations, fraction, seed, eval_threshold, eval_preset],
                      [eval_status, metrics, curve, report_files], api_name="evaluate_completion",
                      concurrency_limit=None)
