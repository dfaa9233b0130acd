"""Object insertion tab (InVi): an object into an image, or into a short video, from a text prompt, as a job."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from engine.filetypes import IMAGE_SUFFIXES
from tasks import client
from tasks.client import Job, Status
from webapp import controls
from webapp.controls import one_job_per_click
from webapp.serving import job_file
from webapp.views import cancel_started_job, follow, preset_dropdown, status_markdown, submit, text, weights_notice

TOOL = "insertion"
RESULT_HEADERS = ["input", "seed", "output", "size"]
MODE_LABELS = {"insert": "Insert a new object", "replace": "Replace the object under the mask"}
REGION_MODE_LABELS = {"same": "Same region on every frame", "interpolate": "Boxes interpolated between keyframes",
                      "masks": "One uploaded mask per frame"}
PROMPT_HINT = {"insert": "the object to add, e.g. 'a red vintage car, photo'",
               "replace": "the new object that takes the old one's place"}
ANCHOR_WAIT_S = 120  # a quick job: waits only behind other quick jobs


def result_views(job: Job) -> tuple[list[tuple[str, str]], list[list[Any]], list[str]]:
    """(gallery of results with captions, table rows, downloadable files) of a finished insertion job."""
    if job.status is not Status.SUCCEEDED:
        return [], [], []
    result, size = job.result, f"{job.result['width']} x {job.result['height']}"
    if result["kind"] == "image":
        gallery = [(job_file(job, item["file"]), f"seed {item['seed']}")
                   for item in result["images"]]
        rows = [[result["file"], item["seed"], item["file"], size] for item in result["images"]]
    else:
        gallery = [(job_file(job, "anchor.png"), f"anchor frame {result['anchor_frame']}")]
        rows = [[result["file"], result["seed"], "result.mp4", f"{size}, {result['frames']} frames at "
                 f"{result['fps']:g} fps"]]
    return gallery, rows, [job_file(job, name) for name in job.outputs]


def notes_markdown(job: Job) -> str:
    return "".join(f"\n\n⚠️ {text(note)}" for note in job.result.get("notes", [])) if job.status.final else ""


def editor_files(value: dict[str, Any] | None) -> tuple[str | None, list[str]]:
    """(background image, drawn layers) of an image editor's value."""
    if not value:
        return None, []
    return value.get("background"), [layer for layer in value.get("layers") or [] if layer]


def _settings(prompt: str, negative: str, mode: str, preset: str, seed: float, steps: float, guidance: float,
              strength: float) -> dict[str, Any]:
    return {"prompt": prompt, "negative_prompt": negative, "mode": mode, "preset": preset, "seed": seed,
            "steps": steps, "guidance": guidance, "strength": strength}


def run_image(editor: dict | None, box: str, prompt: str, negative: str, mode: str, preset: str, seed: float,
              variants: float, steps: float, guidance: float, strength: float,
              request: gr.Request = None, progress: gr.Progress = gr.Progress()) -> Iterator:
    """Submit an image job, then follow it: status, then the results of every seed and the downloads."""
    image, layers = editor_files(editor)
    if not image:
        raise gr.Error("Upload an image, then paint over the region (or give a box x0,y0,x1,y1).")
    params = {**_settings(prompt, negative, mode, preset, seed, steps, guidance, strength), "box": box,
              "variants": variants}
    job = submit(TOOL, params, {"image": [image], "mask": layers}, request)
    for job in follow(job, progress):  # noqa: B020 - the last record is the final one
        gallery, _, files = result_views(job)
        yield job.id, status_markdown(job) + notes_markdown(job), gallery, files


def run_video(video: str | None, editor: dict | None, anchor: float, region_mode: str, box: str, keyframes: str,
              frame_masks: list[str] | None, prompt: str, negative: str, mode: str, preset: str, seed: float,
              steps: float, guidance: float, strength: float, request: gr.Request = None,
              progress: gr.Progress = gr.Progress()) -> Iterator:
    """Submit a video job, then follow it: status, then the result video, the anchor frame and the downloads."""
    if not video:
        raise gr.Error("Upload a video (mp4, webm, mov, avi or mkv).")
    _, layers = editor_files(editor)
    params = {**_settings(prompt, negative, mode, preset, seed, steps, guidance, strength), "box": box,
              "anchor_frame": anchor, "region_mode": region_mode, "keyframes": keyframes}
    job = submit(TOOL, params, {"video": [video], "mask": layers, "masks": frame_masks or []}, request)
    for job in follow(job, progress):  # noqa: B020
        gallery, _, files = result_views(job)
        played = job_file(job, "result.mp4") if gallery else None
        yield job.id, status_markdown(job) + notes_markdown(job), played, gallery[0][0] if gallery else None, files


def anchor_frame(video: str | None, anchor: float, request: gr.Request = None) -> dict[str, Any] | None:
    """The anchor frame as the drawing canvas of the video section, decoded by a quick job in a worker."""
    if not video:
        return None
    job = client.wait(submit("insertion_anchor", {"anchor_frame": anchor}, {"video": [video]}, request).id,
                      timeout=ANCHOR_WAIT_S)
    if job.status is not Status.SUCCEEDED:
        raise gr.Error(job.error or f"The anchor frame was not decoded within {ANCHOR_WAIT_S} s; try again.")
    served = job_file(job, "anchor.png")
    return {"background": served, "layers": [], "composite": served}


def settings_controls(prefix: str, variants: bool) -> list[gr.components.Component]:
    """Prompt, mode, model and sampling controls of one section, in the order the run functions take them."""
    prompt = controls.textbox(TOOL, "prompt", placeholder=PROMPT_HINT["insert"], elem_id=f"{prefix}-prompt")
    negative = controls.textbox(TOOL, "negative_prompt", placeholder="e.g. blurry, distorted",
                                elem_id=f"{prefix}-negative")
    mode = controls.radio(TOOL, "mode", choices=[(MODE_LABELS[m], m) for m in controls.spec(TOOL, "mode").choices],
                          elem_id=f"{prefix}-mode")
    mode.change(lambda m: gr.Textbox(placeholder=PROMPT_HINT[m]), mode, prompt, api_visibility="private")
    preset = preset_dropdown(TOOL, f"{prefix}-preset")
    weights_notice(TOOL, preset)
    with gr.Accordion("Sampling", open=False, elem_id=f"{prefix}-sampling"):
        seed = controls.number(TOOL, "seed", precision=0, elem_id=f"{prefix}-seed")
        count = controls.slider(TOOL, "variants", value=2, step=1, visible=variants, elem_id=f"{prefix}-variants")
        steps = controls.slider(TOOL, "steps", step=1, elem_id=f"{prefix}-steps")
        guidance = controls.slider(TOOL, "guidance", step=0.5, elem_id=f"{prefix}-guidance")
        strength = controls.slider(TOOL, "strength", step=0.05, elem_id=f"{prefix}-strength")
    return [prompt, negative, mode, preset, seed, *([count] if variants else []), steps, guidance, strength]


def _editor(label: str, elem_id: str) -> gr.ImageEditor:
    return gr.ImageEditor(label=label, type="filepath", format="png", sources=["upload"], layers=False,
                          brush=gr.Brush(colors=["#ff00ff"], color_mode="fixed"), transforms=(), elem_id=elem_id)


def build() -> None:
    gr.Markdown(
        "### Object insertion (InVi)\n"
        "Insert an object described by a prompt, or replace one, in a photo or a short video. Mark the region by "
        "painting over it or by a box `x0,y0,x1,y1` in pixels. The region is cropped with some context, inpainted "
        "with Stable Diffusion 1.5 and the inpainting ControlNet, and pasted back: pixels outside the mask keep "
        "their exact values; the edge is feathered inside the mask only. In a video the anchor frame is done "
        "first; every other frame attends to the anchor's attention keys and values, so the object keeps its look."
    )
    with gr.Tabs(elem_id="insertion-tabs"):
        with gr.Tab("Image", id="insertion-image"):
            image_section()
        with gr.Tab("Video", id="insertion-video"):
            video_section()


def image_section() -> None:
    """Upload and paint (or box), prompt, Insert: one result per seed to choose from."""
    image_job = gr.State(None)
    with gr.Row():
        with gr.Column(scale=1):
            editor = _editor("Image: upload, then paint over the region", "insertion-editor")
            box = controls.textbox(TOOL, "box", label="Or a box x0,y0,x1,y1 (pixels)",
                                   placeholder="e.g. 120,80,260,220", elem_id="insertion-box")
            image_controls = settings_controls("insertion", variants=True)
            with gr.Row():
                run_button = gr.Button("Insert", variant="primary", elem_id="insertion-run")
                cancel_button = gr.Button("Cancel", variant="stop", elem_id="insertion-cancel")
        with gr.Column(scale=1):
            status = gr.Markdown("Upload an image, mark the region, describe the object and press Insert.",
                                 elem_id="insertion-status")
            gallery = gr.Gallery(label="Results (one per seed)", columns=2, height="auto", object_fit="contain",
                                 elem_id="insertion-gallery")
            downloads = gr.File(label="Downloads (PNG per seed, mask.png, summary.json)", file_count="multiple",
                                interactive=False, elem_id="insertion-downloads")
    one_job_per_click(run_button, run_image, [editor, box, *image_controls], [image_job, status, gallery, downloads],
                     api_name="insert_image", concurrency_limit=None)
    cancel_button.click(cancel_started_job, [image_job], [status], api_name="cancel_insert_image")


def video_section() -> None:
    """Upload, mark the region on the anchor frame, choose how it moves, Insert: an mp4 to watch and download."""
    video_job = gr.State(None)
    with gr.Row():
        with gr.Column(scale=1):
            video = gr.Video(label="Video", sources=["upload"], elem_id="insertion-video-file")
            anchor = controls.number(TOOL, "anchor_frame", precision=0, elem_id="insertion-anchor")
            video_editor = _editor("Anchor frame: paint over the region", "insertion-video-editor")
            region_mode = controls.radio(TOOL, "region_mode", choices=[
                (REGION_MODE_LABELS[m], m) for m in controls.spec(TOOL, "region_mode").choices],
                elem_id="insertion-region-mode")
            video_box = controls.textbox(TOOL, "box", label="Box on the anchor frame x0,y0,x1,y1 (instead of painting)",
                                         elem_id="insertion-video-box")
            keyframes = controls.textbox(TOOL, "keyframes", lines=3, elem_id="insertion-keyframes",
                                         placeholder="0: 40,60,140,160\n48: 200,60,300,160")
            frame_masks = gr.File(label="Per-frame masks (white = region), sorted by file name",
                                  file_count="multiple", file_types=list(IMAGE_SUFFIXES), elem_id="insertion-masks")
            video_controls = settings_controls("insertion-video", variants=False)
            with gr.Row():
                video_button = gr.Button("Insert into video", variant="primary", elem_id="insertion-video-run")
                video_cancel = gr.Button("Cancel", variant="stop", elem_id="insertion-video-cancel")
        with gr.Column(scale=1):
            video_status = gr.Markdown("Upload a video, mark the region on the anchor frame and press Insert.",
                                       elem_id="insertion-video-status")
            result_video = gr.Video(label="Result", interactive=False, elem_id="insertion-result-video")
            anchor_result = gr.Image(label="Anchor frame result", interactive=False,
                                     elem_id="insertion-anchor-result")
            video_downloads = gr.File(label="Downloads (mp4, lossless mkv, anchor, summary.json)",
                                      file_count="multiple", interactive=False, elem_id="insertion-video-downloads")
    for trigger in (video.change, anchor.change):
        trigger(anchor_frame, [video, anchor], video_editor, api_visibility="private")
    one_job_per_click(video_button, run_video,
                      [video, video_editor, anchor, region_mode, video_box, keyframes, frame_masks, *video_controls],
                       [video_job, video_status, result_video, anchor_result, video_downloads],
                       api_name="insert_video", concurrency_limit=None)
    video_cancel.click(cancel_started_job, [video_job], [video_status], api_name="cancel_insert_video")
