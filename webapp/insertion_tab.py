"""Object insertion tab (InVi): an object into an image, or into a short video, from a text prompt, as a job."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image, ImageDraw

from engine.errors import UserInputError
from engine.filetypes import IMAGE_SUFFIXES
from engine.insertion.regions import load_image_with_alpha, mask_from_image, parse_box
from engine.media import load_image
from tasks.client import Job, Status
from webapp import controls, reattach, samples
from webapp.bounded_pictures import checked_picture
from webapp.controls import one_job_per_click
from webapp.model_choice import preset_dropdown, weights_notice
from webapp.serving import job_file, job_inputs
from webapp.views import follow, run_buttons, status_markdown, submit, text, video_frame, wire_cancel

TOOL = "insertion"
RESULT_HEADERS = ["input", "seed", "output", "size"]
RESULT_COLUMN_WIDTHS = ["27%", "56px", "35%", "21%"]  # every column in view on a phone (390 px), names wrapped
MODE_LABELS = {"insert": "Insert a new object", "replace": "Replace the object under the mask"}
REGION_MODE_LABELS = {"same": "Same region on every frame", "interpolate": "Boxes interpolated between keyframes",
                      "masks": "One uploaded mask per frame"}
PROMPT_HINT = {"insert": "the object to add, e.g. 'a red vintage car, photo'",
               "replace": "the new object that takes the old one's place"}
MAX_LAYERS = 8  # painted layers a run takes: the page sends one (a single-layer editor), the API a few
BOX_COLOUR = (0, 190, 255)  # cyan: apart from the magenta brush and most photos
REGION_MODE_FIELDS = {"same": ("editor", "box"), "interpolate": ("box", "keyframes"), "masks": ("masks",)}
VIDEO_BOX_LABELS = {"same": "Box on the anchor frame x0,y0,x1,y1 (instead of painting)",
                    "interpolate": "Box on the anchor frame x0,y0,x1,y1 (a keyframe at the anchor; optional)"}


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


def status_line(job: Job) -> str:
    """A section's status: where the job stands, then the notes of a finished one."""
    notes = "".join(f"\n\n⚠️ {text(note)}" for note in job.result.get("notes", [])) if job.status.final else ""
    return status_markdown(job) + notes


def painted(layers: list[str] | None) -> list[str]:
    """The drawn layers that mark a pixel: the editor sends its layer even when nothing was drawn, which as the
    region's only mark made a job that failed at once ("The mask is empty"); without it, a run with nothing drawn
    and no box is refused at submit ("Mark the region"). More than MAX_LAYERS are refused before any is read."""
    if len(layers or []) > MAX_LAYERS:
        raise gr.Error(f"{len(layers or [])} painted layers were sent: at most {MAX_LAYERS} are taken (the page sends "
                       f"one; for a mask per frame of a video, use the per-frame masks).")
    return [layer for layer in layers or [] if layer and marks_a_pixel(layer)]


def marks_a_pixel(layer: str) -> bool:
    """Whether a drawn layer marks a pixel, as the job reads it; one that is no sound image is kept, for the
    submit to name what is wrong with it."""
    try:
        picture = load_image_with_alpha(Path(layer), Path(layer).name)
    except UserInputError:
        return True
    return bool(mask_from_image(picture, picture.size).any())


def box_message(box: str, size: tuple[int, int]) -> str:
    """What was wrong with a typed box and what a box is, with an example that fits the image."""
    width, height = size
    example = f"{width // 4},{height // 4},{3 * width // 4},{3 * height // 4}"
    return (f"{box.strip()[:60]} is not a box. A box is four numbers x0,y0,x1,y1 in pixels, two opposite corners of "
            f"a region inside the {width}×{height} image (x0 < x1, y0 < y1), e.g. {example}.")


def typed_region(picture: Image.Image, box: str) -> tuple[int, int, int, int]:
    """The region of a typed box on the picture, read as the job reads it (clipped to the picture); a bad box
    raises UserInputError with what the page says under it."""
    try:
        return parse_box(box, picture.size)
    except UserInputError:
        raise UserInputError(box_message(box, picture.size)) from None


def refuse_a_flagged_box(picture: str | None, box: str) -> None:
    """Refuse at the click, with the words shown under the box, a typed box that the page flags on the editor's
    picture (the image, or a video's anchor frame): its job would fail at once."""
    if picture and box.strip():
        try:
            typed_region(load_image(picture), box)
        except UserInputError as exc:
            raise gr.Error(str(exc)) from None


def box_picture(image: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """The picture with the box over it: a translucent cyan fill inside a solid edge, both inside the box."""
    drawing = Image.new("RGBA", image.size, (0, 0, 0, 0))
    edge = max(1, round(max(image.size) / 160))
    ImageDraw.Draw(drawing).rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=(*BOX_COLOUR, 60),
                                      outline=(*BOX_COLOUR, 255), width=edge)
    return Image.alpha_composite(image.convert("RGBA"), drawing).convert("RGB")


def show_box(image: str | None, box: str) -> tuple[Any, str]:
    """(the region picture: the editor's picture `image` with the typed box drawn on it; a message).

    The box is read as the job reads it (clipped to the image), so the rectangle shown is the region the job
    uses. A bad box keeps the picture as it is and says what a box is; an empty one hides the picture. Drawn
    beside the editor, not in it: Gradio 6.31's ImageEditor takes a layer set by an event into its value but
    does not paint it.
    """
    if not box.strip():
        return gr.Image(value=None, visible=False), ""
    if not image:
        return gr.skip(), "⚠️ Upload the picture first: the box is drawn on it."
    try:  # decoded as the job decodes it: accepted formats, at most FEWSHOT_MAX_IMAGE_PIXELS
        picture = load_image(image)
    except UserInputError as exc:
        return gr.skip(), f"⚠️ {text(str(exc))}"
    try:
        region = typed_region(picture, box)
    except UserInputError as exc:
        return gr.skip(), f"⚠️ Box not drawn: {text(str(exc))}"
    return gr.Image(value=box_picture(picture, region), visible=True), ""


def before_after(before: str | None, gallery: list[tuple[str, str | None]] | None, index: int = 0) -> gr.ImageSlider:
    """The input beside one result of the gallery (the first after a run), as a before/after slider."""
    if not before or not gallery:
        return gr.ImageSlider(value=None, visible=False)
    path, caption = gallery[min(index, len(gallery) - 1)]
    return gr.ImageSlider(value=(before, path), visible=True, label=f"Before / after: {caption or 'result'}")


def chosen_before_after(before: str | None, gallery: list[tuple[str, str | None]] | None,
                        evt: gr.SelectData) -> gr.ImageSlider:
    """The slider for the result clicked in the gallery."""
    return before_after(before, gallery, evt.index if isinstance(evt.index, int) else 0)


# The anchor painting, shown for the region modes that use it; in the page, as everything about an editor (`Canvas`).
EDITOR_SHOWN_JS = (f"(mode) => ({{__type__: 'update', visible: "
                   f"{json.dumps([mode for mode, fields in REGION_MODE_FIELDS.items() if 'editor' in fields])}"
                   f".includes(mode)}})")


def region_fields(region_mode: str, region_picture: str | None) -> tuple[Any, ...]:
    """The video section's box (its message and region picture), keyframes and per-frame masks: only those the
    region mode uses (the anchor painting: `EDITOR_SHOWN_JS`)."""
    shown = REGION_MODE_FIELDS[region_mode]
    box_label = {"label": VIDEO_BOX_LABELS[region_mode]} if region_mode in VIDEO_BOX_LABELS else {}
    return (gr.Textbox(visible="box" in shown, **box_label),
            gr.Markdown(visible="box" in shown), gr.Image(visible="box" in shown and bool(region_picture)),
            gr.Textbox(visible="keyframes" in shown), gr.File(visible="masks" in shown))


def _settings(prompt: str, negative: str, mode: str, preset: str, seed: float, steps: float, guidance: float,
              strength: float) -> dict[str, Any]:
    return {"prompt": prompt, "negative_prompt": negative, "mode": mode, "preset": preset, "seed": seed,
            "steps": steps, "guidance": guidance, "strength": strength}


def run_image(image: str | None, layers: list[str] | None, box: str, prompt: str, negative: str, mode: str,
              preset: str, seed: float, variants: float, steps: float, guidance: float, strength: float,
              request: gr.Request = None, progress: gr.Progress = gr.Progress()) -> Iterator:
    """Submit an image job (the picture, the layers painted on it, a box), then follow it: the input (for the
    before/after slider), status, then the results of every seed and the downloads."""
    if not image:
        raise gr.Error("Upload an image, then paint over the region (or give a box x0,y0,x1,y1).")
    checked_picture(image)  # one a job would refuse, refused at the click with the job's words
    refuse_a_flagged_box(image, box)
    params = {**_settings(prompt, negative, mode, preset, seed, steps, guidance, strength), "box": box,
              "variants": variants}
    yield from follow_image(submit(TOOL, params, {"image": [image], "mask": painted(layers)}, request), progress,
                            image)


def follow_image(job: Job, progress: gr.Progress, image: str | None = None) -> Iterator:
    """An image job's stream into the image section (after a submit, or re-attached after a reload: then without
    the input for the before/after slider)."""
    for job in follow(job, progress):  # noqa: B020 - the last record is the final one
        gallery, _, files = result_views(job)
        yield job.id, image, status_line(job), gallery, files


def is_video_job(job: Job) -> bool:
    return any(stored.startswith("video/") for stored in job.inputs)


def run_video(video: str | None, anchor_picture: str | None, layers: list[str] | None, anchor: float,
              region_mode: str, box: str, keyframes: str, frame_masks: list[str] | None, prompt: str, negative: str,
              mode: str, preset: str, seed: float, steps: float, guidance: float, strength: float,
              request: gr.Request = None, progress: gr.Progress = gr.Progress()) -> Iterator:
    """Submit a video job (the layers painted on the anchor frame, whose picture checks a typed box), then follow
    it: status, then the result video, the anchor frame and the downloads."""
    if not video:
        raise gr.Error("Upload a video (mp4, webm, mov, avi or mkv).")
    if "box" in REGION_MODE_FIELDS[region_mode]:
        refuse_a_flagged_box(anchor_picture, box)  # on the anchor frame the editor shows
    params = {**_settings(prompt, negative, mode, preset, seed, steps, guidance, strength), "box": box,
              "anchor_frame": anchor, "region_mode": region_mode, "keyframes": keyframes}
    yield from follow_video(submit(TOOL, params, {"video": [video], "mask": painted(layers),
                                                  "masks": frame_masks or []}, request), progress)


def follow_video(job: Job, progress: gr.Progress) -> Iterator:
    """A video job's stream into the video section (after a submit, or re-attached after a reload)."""
    for job in follow(job, progress):  # noqa: B020 - the last record is the final one
        gallery, _, files = result_views(job)
        played = job_file(job, "result.mp4") if gallery else None
        yield job.id, status_line(job), played, gallery[0][0] if gallery else None, files


def box_text(box: list[float] | None) -> str:
    """A job's box as the box field shows it: x0,y0,x1,y1 (whole pixels without decimals)."""
    return ",".join(f"{v:g}" for v in box) if box else ""


def submitted_settings(job: Job, variants: bool, region: tuple[str, ...]) -> list[Any]:
    """The prompt, mode, model and sampling `job` was submitted with, as `settings_controls` take them (restored
    on a reload), `region` naming the region's fields the section shows. A painted region is not put back: Gradio
    6.31's ImageEditor does not paint a layer an event gives it, so the picture would hide a region the next run
    uses; the warning of what is not restored asks for it again instead (the job says whether it had one, once it
    ran: a queued job's is unknown)."""
    names = ("prompt", "negative_prompt", "mode", "preset", "seed", *(("variants",) if variants else ()), "steps",
             "guidance", "strength")
    where = "anchor frame" if is_video_job(job) else "picture"
    painted = [f"the region painted on the {where} (paint it again, or type a box)"] if job.result.get("painted") \
        else []
    reattach.warn_unrestored(TOOL, job.params, {*names, *region, *(() if variants else ("variants",))}, painted)
    return [job.params[name] for name in names]


def submitted_image(job: Job) -> list[Any]:
    """An image job's form (restored on a reload): the image, its box (drawn on it) and the settings."""
    image, box = job_inputs(job, "image")[0], box_text(job.params["box"])
    return [image, box, *show_box(image, box), *submitted_settings(job, variants=True, region=("box",))]


def submitted_video(job: Job) -> list[Any]:
    """A video job's form (restored on a reload): the video, anchor frame (its picture is decoded again as after
    an upload), region mode, box, keyframes, per-frame masks and the settings."""
    params = job.params
    return [job_inputs(job, "video")[0], params["anchor_frame"], params["region_mode"], box_text(params["box"]),
            params["keyframes"] or "", job_inputs(job, "masks") or None,
            *submitted_settings(job, variants=False, region=("box", "anchor_frame", "region_mode", "keyframes"))]


def anchor_frame(video: str | None, anchor: float, request: gr.Request = None) -> str | None:
    """The anchor frame, the picture of the video section's canvas."""
    return video_frame(video, anchor, request) if video else None


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
        seed = controls.number(TOOL, "seed", elem_id=f"{prefix}-seed")
        count = controls.slider(TOOL, "variants", value=2, step=1, visible=variants, elem_id=f"{prefix}-variants")
        steps = controls.slider(TOOL, "steps", step=1, elem_id=f"{prefix}-steps")
        guidance = controls.slider(TOOL, "guidance", step=0.5, elem_id=f"{prefix}-guidance")
        strength = controls.slider(TOOL, "strength", step=0.05, elem_id=f"{prefix}-strength")
    return [prompt, negative, mode, preset, seed, *([count] if variants else []), steps, guidance, strength]


# The canvas's picture as the page reads it: the name of a file it cannot decode, once per file ('' otherwise).
UNREADABLE_JS = """async () => {
  const file = document.querySelector('#%s input[type=file]')?.files?.[0];
  const checked = (window.fewshotCheckedPictures ??= new WeakSet());
  if (!file || checked.has(file)) return '';
  checked.add(file);
  try { (await createImageBitmap(file)).close(); return ''; } catch { return file.name; }
}"""
# In the page's head: a file chosen in a canvas presses the canvas's hidden check button (UNREADABLE_JS runs).
CHOSEN_PICTURE_JS = """document.addEventListener("change", (event) => {
  const canvas = event.target instanceof HTMLInputElement && event.target.type === "file"
    && event.target.closest(".fewshot-canvas");
  if (canvas) document.getElementById(`${canvas.id}-check`)?.click();
}, true);"""
# Gradio 6.31 keeps each component that an event run on the server sets (and, once it has run, each it read) and
# asks every one of them for its value at each status message of any job stream (several a second); an image editor
# answers by fetching its picture and uploading it again, so a page following a running insertion sent hundreds of
# requests a second. No event run on the server reads or sets an editor: the page copies its picture and layers to
# hidden file fields first, and shows in it a picture the server put in the picture field.
COPY_FROM_EDITOR_JS = "(value) => [value?.background ?? null, (value?.layers ?? []).filter(Boolean)]"
SHOW_IN_EDITOR_JS = "(picture) => picture ? {background: picture, layers: [], composite: picture} : %s"


def refuse_unreadable(name: str) -> None:
    """Tell the user the page could not show their picture `name` ('' when it could), and what it shows."""
    if name:
        raise gr.Error(f"{name[:120]} cannot be shown in the editor: the file is damaged or cut short, or in a format "
                       f"this browser does not display (TIFF). Upload it as PNG, JPEG, WEBP or BMP.")


@dataclass(frozen=True)
class Canvas:
    """A painting canvas (`editor`) and the hidden fields that events run on the server use in its place: its
    `picture` and the `layers` painted on it (see COPY_FROM_EDITOR_JS)."""

    editor: gr.ImageEditor
    picture: gr.File
    layers: gr.File

    def read_on(self, listener: Callable[..., Any]) -> Any:
        """On `listener` (an event's trigger, or an event's `then`), copy the editor's picture and layers to the
        fields in the page; the events that use them are chained on the returned one."""
        return listener(None, self.editor, [self.picture, self.layers], js=COPY_FROM_EDITOR_JS,
                        api_visibility="private", show_progress="hidden")

    def show_on(self, listener: Callable[..., Any], empty_clears: bool = True) -> Any:
        """On `listener`, show the picture field in the editor (no layers), in the page; an empty field empties the
        editor, or (`empty_clears` False) leaves it as it is."""
        empty = "null" if empty_clears else "undefined"  # undefined: the page leaves the editor as it is
        return listener(None, self.picture, self.editor, js=SHOW_IN_EDITOR_JS % empty, api_visibility="private",
                        show_progress="hidden")


def painting_canvas(label: str, elem_id: str) -> Canvas:
    """The painting canvas. A picture the page cannot decode (a truncated PNG) leaves Gradio 6.31's editor empty
    without a word and sends no upload event, so the page tries the file itself when one is chosen (not on an
    event of the editor: one listened to makes it send its pictures at each stroke)."""
    editor = gr.ImageEditor(label=label, type="filepath", format="png", sources=["upload"], layers=False,
                            brush=gr.Brush(colors=["#ff00ff"], color_mode="fixed"), transforms=(), elem_id=elem_id,
                            elem_classes=["fewshot-canvas"])
    check, unreadable = gr.Button(visible="hidden", elem_id=f"{elem_id}-check"), gr.Textbox(visible=False)
    check.click(refuse_unreadable, unreadable, None, js=UNREADABLE_JS % elem_id, concurrency_limit=None,
                show_progress="hidden", api_visibility="private")
    return Canvas(editor, gr.File(visible=False), gr.File(file_count="multiple", visible=False))


def build() -> None:
    gr.Markdown(
        "### Object insertion (InVi)\n"
        "Insert an object described by a prompt, or replace one, in a photo or a short video. Mark the region by "
        "painting over it or by a box `x0,y0,x1,y1` in pixels. The region is cropped with some context, inpainted "
        "with Stable Diffusion 1.5 and the inpainting ControlNet, and pasted back: pixels outside the mask keep "
        "their exact values; the edge is feathered inside the mask only. In a video the anchor frame is done "
        "first; every other frame attends to the anchor's attention keys and values, so the object keeps its look."
    )
    with gr.Tabs(elem_id="insertion-tabs") as sections:
        with gr.Tab("Image", id="insertion-image"):
            image_section()
        with gr.Tab("Video", id="insertion-video"):
            video_section()
    reattach.select_section_on_load(sections, lambda job: "insertion-video" if is_video_job(job) else "insertion-image")


def image_section() -> None:
    """Upload and paint (or box), prompt, Insert: one result per seed to choose from, each against the input."""
    image_job, image_input = gr.State(None), gr.State(None)
    with gr.Row():
        with gr.Column(scale=1):
            canvas = painting_canvas("Image: upload, then paint over the region", "insertion-editor")
            box = controls.textbox(TOOL, "box", label="Or a box x0,y0,x1,y1 (pixels): Enter shows it on the picture",
                                   placeholder="e.g. 120,80,260,220", elem_id="insertion-box")
            box_note = gr.Markdown(elem_id="insertion-box-message")
            box_shown = region_picture("insertion-box-picture")
            image_controls = settings_controls("insertion", variants=True)
            sample = samples.insertion_image(canvas.picture, box, image_controls[0], image_controls[3],
                                             image_controls[-3])
            canvas.show_on(sample.then).then(show_box, [canvas.picture, box], [box_shown, box_note],
                                             api_visibility="private")
            run_button, cancel_button = run_buttons("Insert", "insertion-run", "insertion-cancel")
        with gr.Column(scale=1):
            status = gr.Markdown("Upload an image, mark the region, describe the object and press Insert.",
                                 elem_id="insertion-status")
            slider = gr.ImageSlider(label="Before / after", type="filepath", interactive=False, visible=False,
                                    elem_id="insertion-slider")
            gallery = gr.Gallery(label="Results (one per seed): click one to compare it", columns=2, interactive=False,
                                 height="auto", object_fit="contain", elem_id="insertion-gallery")  # no upload box
            downloads = gr.File(label="Downloads (PNG per seed, mask.png, summary.json)", file_count="multiple",
                                interactive=False, elem_id="insertion-downloads")
    draw_box_events(canvas, box, box_shown, box_note)
    outputs = [image_job, image_input, status, gallery, downloads]
    reattach.follow_on_load(image_job, (TOOL,), follow_image, outputs, accepts=lambda job: not is_video_job(job),
                            buttons=[run_button])
    restored = reattach.restore_on_load((TOOL,), submitted_image, [canvas.picture, box, box_shown, box_note,
                                                                   *image_controls],
                                        accepts=lambda job: not is_video_job(job))
    canvas.show_on(restored.then, empty_clears=False)
    ran = one_job_per_click(run_button, run_image, [canvas.picture, canvas.layers, box, *image_controls], outputs,
                            prepare=canvas.read_on, api_name="insert_image", concurrency_limit=None)
    ran.then(before_after, [image_input, gallery], slider, api_visibility="private")
    gallery.select(chosen_before_after, [image_input, gallery], slider, api_visibility="private")
    wire_cancel(cancel_button, image_job, status, "cancel_insert_image", status_line)


def region_picture(elem_id: str) -> gr.Image:
    """Where a typed box is shown on the picture; hidden until a box is drawn."""
    return gr.Image(label="The box on the picture (the region the job uses)", type="filepath", format="png",
                    interactive=False, visible=False, buttons=[], elem_id=elem_id)


def draw_box_events(canvas: Canvas, box: gr.Textbox, picture: gr.Image, note: gr.Markdown) -> None:
    """Draw the typed box on the canvas's picture when it is entered (Enter) or left: one event per action, so a
    message never comes from an older box."""
    for trigger in (box.submit, box.blur):
        canvas.read_on(trigger).then(show_box, [canvas.picture, box], [picture, note], api_visibility="private")


def video_section() -> None:
    """Upload, mark the region on the anchor frame, choose how it moves, Insert: an mp4 to watch and download."""
    video_job = gr.State(None)
    with gr.Row():
        with gr.Column(scale=1):
            video = gr.Video(label="Video", sources=["upload"], elem_id="insertion-video-file")
            anchor = controls.number(TOOL, "anchor_frame", elem_id="insertion-anchor")
            video_canvas = painting_canvas("Anchor frame: paint over the region", "insertion-video-editor")
            region_mode = controls.radio(TOOL, "region_mode", choices=[
                (REGION_MODE_LABELS[m], m) for m in controls.spec(TOOL, "region_mode").choices],
                elem_id="insertion-region-mode")
            video_box = controls.textbox(TOOL, "box", label=VIDEO_BOX_LABELS["same"], elem_id="insertion-video-box")
            video_box_note = gr.Markdown(elem_id="insertion-video-box-message")
            video_box_shown = region_picture("insertion-video-box-picture")
            keyframes = controls.textbox(TOOL, "keyframes", lines=3, elem_id="insertion-keyframes", visible=False,
                                         placeholder="0: 40,60,140,160\n48: 200,60,300,160")
            frame_masks = gr.File(label="Per-frame masks (white = region), sorted by file name", visible=False,
                                  file_count="multiple", file_types=list(IMAGE_SUFFIXES), elem_id="insertion-masks")
            video_controls = settings_controls("insertion-video", variants=False)
            samples.insertion_video(video, video_box, video_controls[0], video_controls[3], video_controls[-3])
            video_button, video_cancel = run_buttons("Insert into video", "insertion-video-run",
                                                     "insertion-video-cancel")
        with gr.Column(scale=1):
            video_status = gr.Markdown("Upload a video, mark the region on the anchor frame and press Insert.",
                                       elem_id="insertion-video-status")
            result_video = gr.Video(label="Result", interactive=False, elem_id="insertion-result-video")
            anchor_result = gr.Image(label="Anchor frame result", interactive=False,
                                     elem_id="insertion-anchor-result")
            video_downloads = gr.File(label="Downloads (mp4, lossless mkv, anchor, summary.json)",
                                      file_count="multiple", interactive=False, elem_id="insertion-video-downloads")
    for trigger in (video.change, anchor.change):
        framed = trigger(anchor_frame, [video, anchor], video_canvas.picture, api_visibility="private")
        video_canvas.show_on(framed.then).then(show_box, [video_canvas.picture, video_box],
                                                [video_box_shown, video_box_note], api_visibility="private")
    draw_box_events(video_canvas, video_box, video_box_shown, video_box_note)
    region_mode.change(region_fields, [region_mode, video_box_shown],
                       [video_box, video_box_note, video_box_shown, keyframes, frame_masks], api_visibility="private")
    region_mode.change(None, region_mode, video_canvas.editor, js=EDITOR_SHOWN_JS, api_visibility="private",
                       show_progress="hidden")
    outputs = [video_job, video_status, result_video, anchor_result, video_downloads]
    reattach.follow_on_load(video_job, (TOOL,), follow_video, outputs, accepts=is_video_job, buttons=[video_button])
    reattach.restore_on_load((TOOL,), submitted_video, [video, anchor, region_mode, video_box, keyframes, frame_masks,
                                                        *video_controls], accepts=is_video_job)
    one_job_per_click(video_button, run_video, [video, video_canvas.picture, video_canvas.layers, anchor, region_mode,
                                                video_box, keyframes, frame_masks, *video_controls],
                      outputs, prepare=video_canvas.read_on, api_name="insert_video", concurrency_limit=None)
    wire_cancel(video_cancel, video_job, video_status, "cancel_insert_video", status_line)
