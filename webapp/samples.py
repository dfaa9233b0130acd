""""Try a sample" buttons: one click fills a tab's main journey from assets/ (files, object name, prompt, box,
model), so a newcomer sees a tool work before finding files of their own; one more click runs it.

The model is the real one when its weights are on this machine, otherwise the tool's demo (tiny) preset, so the
sample runs on a fresh clone too. Each tab makes one call next to its run button.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Collection
from typing import Any

import gradio as gr

import assets
from tasks import client, finetune_models
from webapp import controls
from webapp.serving import hand_out
from webapp.views import owner_of

# Steps of a sample run with a demo model: few, as its results only show the flow (insertion: noise whatever the
# steps; the demo detector learns the sample's shapes in these), so the sample runs in seconds to a minute.
DEMO_STEPS = {"insertion": 2, "finetune_detect": 40}
Serve = Callable[..., list[str]]  # serve(tool, *names): served copies of sample files


def sample_preset(tool: str, method: str | None = None) -> str:
    """The tool's first real preset whose weights are installed, else its demo preset (random weights); with
    `method`, one of that method's (the sample shows the method the user chose)."""
    every = client.presets(tool)
    presets = [p for p in every if method is None or p["method"] == method] or every
    real = [p for p in presets if p["installed"] and not p["random_weights"]]
    demo = [p for p in presets if p["random_weights"]]
    return (real or demo or presets)[0]["name"]


def preset_label(tool: str, name: str) -> str:
    return next((p["label"] for p in client.presets(tool) if p["name"] == name), name)


def server(owner: str | None) -> Serve:
    """serve(tool, *names): copies of sample files the page may hand to this user's browser."""
    return lambda tool, *names: [hand_out(assets.path(tool, name), owner) for name in names]


def free_name(name: str, owner: str | None, pending: Collection[str] = ()) -> str:
    """`name`, or the next free "name 2", "name 3"… when the user has a model of that name (or one of `pending`: a
    training not ended yet saves under its name): a second training would fail on a name that is taken. A name
    that ends in a number counts on from it ("parts 2" -> "parts 3", not "parts 2 2")."""
    taken = {meta["name"] for meta in finetune_models.list_models(owner=owner) if meta["mine"]} | set(pending)
    if name not in taken:
        return name
    base, number = re.fullmatch(r"(.*?)(?: (\d+))?", name).groups()
    return next(candidate for count in itertools.count(int(number or 1) + 1)
                if (candidate := f"{base} {count}") not in taken)


def button(label: str, elem_id: str, outputs: list[gr.components.Component], fill: Callable[..., list[Any]],
           run_label: str, tool: str, preset_index: int, name_index: int | None = None,
           inputs: list[gr.components.Component] | None = None) -> Any:
    """A "Try a sample" button that fills `outputs` with `fill(serve, *values of inputs)`'s values and says what to
    press next; `preset_index` is where the model choice is among them, `name_index` where the name of the model to
    save is (one the user has not taken). Returns the click event, for a tab to chain on."""
    sample = gr.Button(f"Try a sample: {label}", size="sm", variant="secondary", elem_id=elem_id)

    def filled(request: gr.Request, *chosen: Any) -> list[Any]:  # Gradio passes a request only to a positional
        owner = owner_of(request)
        values = fill(server(owner), *chosen)
        if name_index is not None:
            values[name_index] = free_name(values[name_index], owner)
        model = preset_label(tool, values[preset_index])
        gr.Info(f"Sample loaded ({label}, model: {model}). Press “{run_label}” to run it.")
        return values

    return sample.click(filled, inputs, outputs, api_visibility="private", show_progress="hidden")


def anomaly(files: gr.File, references: gr.File, object_name: gr.Textbox, preset: gr.Dropdown,
            method: gr.Radio) -> Any:
    """Four plates to inspect (one good, a scratch, a dent, a stain) and three good parts, for the chosen method
    (7 images: enough for MuSc's set; good parts: AnomalyDINO's references)."""

    def fill(serve: Serve, chosen: str | None) -> list[Any]:
        return [serve("anomaly", *assets.ANOMALY_INSPECT), serve("anomaly", *assets.ANOMALY_GOOD),
                assets.ANOMALY_OBJECT, sample_preset("anomaly", chosen)]

    return button("metal plates", "anomaly-sample", [files, references, object_name, preset], fill, "Inspect images",
                  "anomaly", 3, inputs=[method])


def anomaly_video(video: gr.File, references: gr.File, object_name: gr.Textbox, preset: gr.Dropdown,
                  method: gr.Radio) -> Any:
    """Plates on a conveyor, one stained, and good parts framed as in the video (references framed otherwise
    would look anomalous), for the chosen method."""

    def fill(serve: Serve, chosen: str | None) -> list[Any]:
        return [serve("anomaly", assets.ANOMALY_VIDEO)[0], serve("anomaly", *assets.ANOMALY_VIDEO_GOOD),
                assets.ANOMALY_OBJECT, sample_preset("anomaly", chosen)]

    return button("conveyor video", "anomaly-video-sample", [video, references, object_name, preset], fill,
                  "Inspect video", "anomaly", 3, inputs=[method])


def completion(images: gr.File, annotations: gr.File, preset: gr.Dropdown) -> Any:
    """Two trays of nuts and washers, three of their objects boxed in COCO."""
    return button("trays of nuts and washers", "completion-sample", [images, annotations, preset], lambda serve: [
        serve("completion", *assets.COMPLETION_IMAGES), serve("completion", assets.COMPLETION_ANNOTATIONS),
        sample_preset("completion")], "Complete", "completion", 2)


def is_demo(tool: str, preset: str) -> bool:
    return any(p["name"] == preset and p["random_weights"] for p in client.presets(tool))


def sample_steps(tool: str, contract: str, preset: str) -> int:
    """Training or denoising steps for a sample: a few with a demo model, the declared default otherwise."""
    return DEMO_STEPS[contract] if is_demo(tool, preset) else controls.spec(contract, "steps").default


def insertion_fill(serve: Serve, picture: str) -> list[Any]:
    """The insertion sample's values: the picture or clip, box, prompt, model and denoising steps (a few with the
    demo model, whose pixels are noise whatever the steps, so its sample runs in seconds)."""
    preset = sample_preset("insertion")
    return [serve("insertion", picture)[0], ",".join(map(str, assets.INSERTION_BOX)), assets.INSERTION_PROMPT,
            preset, sample_steps("insertion", "insertion", preset)]


def insertion_image(picture: gr.File, box: gr.Textbox, prompt: gr.Textbox, preset: gr.Dropdown,
                    steps: gr.Slider) -> Any:
    """A desk (for the canvas's picture field: the tab shows it in the canvas), a box on its free part and an
    object to put there."""
    return button("an apple on a desk", "insertion-sample", [picture, box, prompt, preset, steps],
                  lambda serve: insertion_fill(serve, assets.INSERTION_IMAGE), "Insert", "insertion", 3)


def insertion_video(video: gr.Video, box: gr.Textbox, prompt: gr.Textbox, preset: gr.Dropdown,
                    steps: gr.Slider) -> Any:
    """A short pan over the desk, the same box and object on every frame."""
    return button("an apple on a desk, video", "insertion-video-sample", [video, box, prompt, preset, steps],
                  lambda serve: insertion_fill(serve, assets.INSERTION_VIDEO), "Insert into video", "insertion", 3)


def classifier(dataset: gr.File, model_name: gr.Textbox, preset: gr.Dropdown) -> Any:
    """Eight pictures each of hex nuts, washers and screws, a folder per class in a zip."""
    return button("nuts, washers, screws", "finetune-sample", [dataset, model_name, preset], lambda serve: [
        serve("finetune", assets.CLASSIFIER_ZIP), "sample parts", sample_preset("finetune")], "Train",
        "finetune", 2, name_index=1)


def detector(dataset: gr.File, model_name: gr.Textbox, preset: gr.Dropdown, steps: gr.Number) -> Any:
    """Twelve small trays of nuts and washers, every object boxed (COCO JSON in the zip)."""
    def fill(serve: Serve) -> list[Any]:
        model = sample_preset("finetune-detect")
        return [serve("finetune", assets.DETECTOR_ZIP), "sample nuts and washers", model,
                sample_steps("finetune-detect", "finetune_detect", model)]

    return button("boxed nuts and washers", "detect-sample", [dataset, model_name, preset, steps], fill,
                  "Train detector", "finetune-detect", 2, name_index=1)


NO_MODEL = ("No saved model yet: in the Classifier tab press “Try a sample”, then “Train” (a minute with the demo "
            "model); then come back here and try the sample again.")


def saved_model(model: gr.Dropdown, images: gr.File) -> Any:
    """The picked saved model (else the newest one) and pictures of the samples' parts for it: the classifier
    sample's nuts, washers and screws for a classifier, the trays of nuts and washers for a detector. With no saved
    model it says how to make one."""
    sample = gr.Button("Try a sample: parts for the chosen model", size="sm", variant="secondary",
                       elem_id="finetune-use-sample")

    def filled(chosen: str | None, request: gr.Request = None) -> list[Any]:
        owner = owner_of(request)
        models = finetune_models.list_models(owner=owner)
        meta = next((m for m in models if m["ref"] == chosen), models[0] if models else None)
        if meta is None:
            gr.Warning(NO_MODEL)
            return [gr.skip(), gr.skip()]
        detector = meta.get("task", "classify") == "detect"
        pictures = (server(owner)("completion", *assets.COMPLETION_IMAGES) if detector else
                    server(owner)("finetune", assets.CLASSIFIER_ZIP))
        gr.Info(f"Sample loaded ({'trays of nuts and washers' if detector else 'nuts, washers, screws'}, model: "
                f"{meta['name']}). Press “{'Detect boxes' if detector else 'Classify'}” to run it.")
        return [meta["ref"], pictures]

    return sample.click(filled, model, [model, images], api_visibility="private", show_progress="hidden")
