"""Object insertion tab (InVi): an object into an image, or into a short video, from a text prompt, as a job."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr

from engine.errors import UserInputError
from engine.filetypes import IMAGE_SUFFIXES
from tasks.client import Job, Status
from webapp.serving import hand_out, job_file, scratch_dir
from webapp.views import cancel_started_job, follow, owner_of, preset_dropdown, status_markdown, submit, text

RESULT_HEADERS = ["input", "seed", "output", "size"]
REGION_MODES = [("Same region on every frame", "same"),
                ("Boxes interpolated between keyframes", "interpolate"),
                ("One uploaded mask per frame", "masks")]
PROMPT_HINT = {"insert": "the object to add, e.g. 'a red vintage car, photo'",
               "replace": "the new object that takes the old one's place"}


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
    return {"prompt": prompt, "negative_prompt": negative, "mode": mode, "preset": preset, "seed": int(seed or 0),
            "steps": int(steps), "guidance": guidance, "strength": strength}


def run_image(editor: dict | None, box: str, prompt: str, negative: str, mode: str, preset: str, seed: float,
              variants: float, steps: float, guidance: float, strength: float,
              request: gr.Request = None, progress: gr.Progress = gr.Progress()) -> Iterator:
    """Submit an image job, then follow it: status, then the results of every seed and the downloads."""
    image, layers = editor_files(editor)
    if not image:
        raise gr.Error("Upload an image, then paint over the region (or give a box x0,y0,x1,y1).")
    params = {**_settings(prompt, negative, mode, preset, seed, steps, guidance, strength),
              "box": box or None, "variants": int(variants or 1)}
    job = submit("insertion", params, {"image": [image], "mask": layers}, request)
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
    params = {**_settings(prompt, negative, mode, preset, seed, steps, guidance, strength), "box": box or None,
              "anchor_frame": int(anchor or 0), "region_mode": region_mode, "keyframes": keyframes or None}
    job = submit("insertion", params, {"video": [video], "mask": layers, "masks": frame_masks or []}, request)
    for job in follow(job, progress):  # noqa: B020
        gallery, _, files = result_views(job)
        played = job_file(job, "result.mp4") if gallery else None
        yield job.id, status_markdown(job) + notes_markdown(job), played, gallery[0][0] if gallery else None, files


def anchor_frame(video: str | None, anchor: float, request: gr.Request = None) -> dict[str, Any] | None:
    """The anchor frame as the drawing canvas of the video section."""
    if not video:
        return None
    from engine.video import iter_frames

    wanted = int(anchor or 0)
    try:
        frame = next((f for f in iter_frames(video) if f.index >= wanted), None)
    except UserInputError as exc:
        raise gr.Error(str(exc)) from None
    if frame is None:
        raise gr.Error(f"The video has no frame {wanted}; choose an earlier anchor frame.")
    path = scratch_dir("anchor-") / f"anchor_{frame.index:06d}.png"
    frame.image.save(path)
    served = hand_out(path, owner_of(request))
    return {"background": served, "layers": [], "composite": served}


def settings_controls(prefix: str, variants: bool) -> list[gr.components.Component]:
    """Prompt, mode, model and sampling controls of one section, in the order the run functions take them."""
    prompt = gr.Textbox(label="Prompt", placeholder=PROMPT_HINT["insert"], elem_id=f"{prefix}-prompt")
    negative = gr.Textbox(label="Negative prompt", placeholder="e.g. blurry, distorted", elem_id=f"{prefix}-negative")
    mode = gr.Radio([("Insert a new object", "insert"), ("Replace the object under the mask", "replace")],
                    value="insert", label="Mode", elem_id=f"{prefix}-mode")
    mode.change(lambda m: gr.Textbox(placeholder=PROMPT_HINT[m]), mode, prompt, api_visibility="private")
    preset = preset_dropdown("insertion", f"{prefix}-preset")
    with gr.Accordion("Sampling", open=False, elem_id=f"{prefix}-sampling"):
        seed = gr.Number(label="Seed", value=0, minimum=0, precision=0, elem_id=f"{prefix}-seed")
        count = gr.Slider(1, 8, value=2, step=1, label="Results to choose from (seeds seed, seed+1, …)",
                          visible=variants, elem_id=f"{prefix}-variants")
        steps = gr.Slider(1, 100, value=20, step=1, label="Denoising steps", elem_id=f"{prefix}-steps")
        guidance = gr.Slider(0, 20, value=7.5, step=0.5, label="Guidance scale", elem_id=f"{prefix}-guidance")
        strength = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Strength (1 = repaint the region fully)",
                             elem_id=f"{prefix}-strength")
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
            box = gr.Textbox(label="Or a box x0,y0,x1,y1 (pixels)", placeholder="e.g. 120,80,260,220",
                             elem_id="insertion-box")
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
    run_button.click(run_image, [editor, box, *image_controls], [image_job, status, gallery, downloads],
                     api_name="insert_image", concurrency_limit=None)
    cancel_button.click(cancel_started_job, [image_job], [status], api_name="cancel_insert_image")


def video_section() -> None:
    """Upload, mark the region on the anchor frame, choose how it moves, Insert: an mp4 to watch and download."""
    video_job = gr.State(None)
    with gr.Row():
        with gr.Column(scale=1):
            video = gr.Video(label="Video", sources=["upload"], elem_id="insertion-video-file")
            anchor = gr.Number(label="Anchor frame", value=0, minimum=0, precision=0, elem_id="insertion-anchor")
            video_editor = _editor("Anchor frame: paint over the region", "insertion-video-editor")
            region_mode = gr.Radio(REGION_MODES, value="same", label="Region on the other frames",
                                   elem_id="insertion-region-mode")
            video_box = gr.Textbox(label="Box on the anchor frame x0,y0,x1,y1 (instead of painting)",
                                   elem_id="insertion-video-box")
            keyframes = gr.Textbox(label="Keyframe boxes, one per line: frame: x0,y0,x1,y1", lines=3,
                                   placeholder="0: 40,60,140,160\n48: 200,60,300,160", elem_id="insertion-keyframes")
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
    video_button.click(run_video, [video, video_editor, anchor, region_mode, video_box, keyframes, frame_masks,
                                   *video_controls],
                       [video_job, video_status, result_video, anchor_result, video_downloads],
                       api_name="insert_video", concurrency_limit=None)
    video_cancel.click(cancel_started_job, [video_job], [video_status], api_name="cancel_insert_video")
