"""Fine-tuning tab, three sub-tabs, one journey each: train a few-shot classifier, train a few-shot detector (live
curves with the pace, metrics beside the zero-shot or pre-fine-tuning baseline), and use a saved model
(thumbnails with their classes or boxes, a CSV) or download, upload, share or delete it."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from gradio.components import Component

from engine.anomaly.common import score_text
from engine.filetypes import (
    ANNOTATION_SUFFIXES,
    ARCHIVE_SUFFIXES,
    IMAGE_SUFFIXES,
    IMAGES_OR_ZIP,
    VIDEO_SUFFIXES,
)
from tasks import finetune_models
from tasks.client import Job, Status
from tasks.registry import contract
from webapp import controls, reattach, samples
from webapp.controls import changed_settings, one_job_per_click, told_when_refused
from webapp.model_choice import preset_dropdown, weights_notice
from webapp.saved_items import SavedControls, share_checkbox
from webapp.serving import hand_out, job_file, job_inputs, scratch_dir
from webapp.views import (
    fixed_decimals,
    follow,
    notes_markdown,
    owner_of,
    run_buttons,
    skipped_markdown,
    status_markdown,
    submit,
    text,
    wire_cancel,
)

CLASS_ROWS = 3
CLASSIFY, DETECT, PREDICT, KSHOT = "finetune_classify", "finetune_detect", "finetune_predict", "finetune_kshot"
METRIC_HEADERS = ["class", "zero-shot accuracy", "fine-tuned accuracy", "held-out images"]
PREDICTION_HEADERS = ["file or frame", "class", "probability", "all classes"]
DETECT_METRIC_HEADERS = ["class", "baseline AP@0.5", "fine-tuned AP@0.5", "baseline AP@[.5:.95]",
                         "fine-tuned AP@[.5:.95]", "held-out boxes"]
# Fixed widths that hold a class name and a 4-decimal AP on one line (shares of a phone's width broke "0.1796" and
# "washer" in two); every column in view at desktop width, the later ones scroll sideways on a phone.
DETECT_METRIC_COLUMN_WIDTHS = ["100px", *["90px"] * 5]
BOX_HEADERS = ["file", "class", "score", "box x, y, width, height"]
# The file wraps within its share and class, probability or score keep a fixed width, so on a phone (390 px) the
# file and what was found are in view side by side (the file alone filled it, cut off); the rest scrolls sideways.
PREDICTION_COLUMN_WIDTHS = ["38%", "90px", "110px", "220px"]
BOX_COLUMN_WIDTHS = ["40%", "90px", "80px", "200px"]
MATRIX_CORNER = "true \\ predicted"
CURVE_COLUMNS = ["step", "value", "series"]
PICK_MODEL = "Pick a saved model: train one in the Classifier or Detector tab, or upload a model file below."


def curves(job: Job, series: dict[str, str]) -> pd.DataFrame:
    """History columns as series of one line plot: {column: series name}, each where it has values."""
    history = job.result.get("history") or job.live.get("history") or []
    rows = [(r["step"], r[column], name) for column, name in series.items() for r in history if r[column] is not None]
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


CLASSIFY_CURVES = {"loss": "training loss", "held_out_accuracy": "held-out accuracy"}
DETECT_LOSS = {"loss": "training loss", "held_out_loss": "held-out loss"}
DETECT_MAP = {"held_out_map_50": "held-out mAP@0.5", "held_out_map": "held-out mAP@[.5:.95]"}


def metric_rows(job: Job) -> list[list[Any]] | dict[str, Any]:
    """Overall and per-class accuracy, zero-shot beside fine-tuned."""
    metrics = job.result.get("metrics", {}) if job.status is Status.SUCCEEDED else {}
    zero, tuned = metrics.get("zero_shot"), metrics.get("fine_tuned")
    if not zero or not tuned:
        return []
    rows = [["all", zero["accuracy"], tuned["accuracy"], tuned["images"]]]
    matrix = tuned["confusion_matrix"]
    for index, name in enumerate(job.result["classes"]):
        rows.append([name, zero["per_class_accuracy"][name], tuned["per_class_accuracy"][name], sum(matrix[index])])
    return fixed_decimals(rows)


def confusion(job: Job) -> gr.Dataframe:
    """The fine-tuned model's confusion matrix, shown only once a run has one (never an empty grid)."""
    classes = job.result.get("classes", [])
    tuned = (job.result.get("metrics") or {}).get("fine_tuned")
    if job.status is not Status.SUCCEEDED or not tuned or not tuned.get("confusion_matrix"):
        return gr.Dataframe(value=[], headers=[MATRIX_CORNER], visible=False)
    rows = [[name, *counts] for name, counts in zip(classes, tuned["confusion_matrix"], strict=True)]
    return gr.Dataframe(value=rows, headers=[MATRIX_CORNER, *classes], visible=True)


def summary_line(job: Job) -> str:
    if job.status is not Status.SUCCEEDED or "stopped" not in job.result:
        return ""
    result = job.result
    notes = notes_markdown(result)
    skipped = skipped_markdown(result.get("skipped", []))
    weights = " · base has **random weights**" if result.get("random_weights") else ""
    forgetting = ""
    if result.get("retention"):
        retention = result["retention"]
        forgetting = (f"\n\nRetention (zero-shot on {retention['images']} images of other classes, "
                      f"{text(retention['source'])}): **{score_text(retention['zero_shot'])}** before → "
                      f"**{score_text(retention['fine_tuned'])}** after")
    if result.get("blocks"):
        blocks = result["blocks"]
        forgetting += (f" · active blocks **{len(blocks['active'])} of {len(blocks['candidates'])}** "
                       f"({blocks['active_share']:.0%})" + (f": {', '.join(map(str, blocks['active']))}"
                                                     if blocks["active"] else ""))
    if result.get("trainable_parameters"):
        forgetting += f" · {result['trainable_parameters']:,} trainable parameters kept"
    return (f"\n\nModel **{text(result['name'])}** saved · classes {text(', '.join(result['classes']))} · "
            f"{result['train_images']} training / {result['held_out_images']} held-out images · "
            f"stopped: {result['stopped']} after {result['steps_run']} steps (best step {result['best_step']}){weights}"
            f" · try it in **Use a model**{forgetting}{notes}{skipped}")


def result_views(job: Job) -> tuple[list[tuple[str, str]], list[list[Any]] | dict[str, Any], list[str]]:
    """(gallery, table rows, downloads) of a finished training or prediction job, for the Jobs tab."""
    if job.status is not Status.SUCCEEDED:
        return [], [], []
    if job.tool == PREDICT:
        if is_detection(job):
            return box_gallery(job), box_rows(job), [job_file(job, name) for name in job.outputs]
        thumbnails = {p.get("image") for p in job.result.get("predictions", [])}  # previews, not results
        return (prediction_gallery(job), prediction_rows(job),
                [job_file(job, name) for name in job.outputs if name not in thumbnails])
    files = [job_file(job, name) for name in job.outputs]
    if job.tool == DETECT:
        return [], detect_metric_rows(job), files
    return [], metric_rows(job), files


def is_detection(job: Job) -> bool:
    """A prediction job of a detector (its typed result says which kind of model made it)."""
    return job.tool == PREDICT and job.result.get("task") == "detect"


def prediction_headers(job: Job) -> list[str]:
    """Headers of a prediction job's table: boxes for a detector, classes for a classifier."""
    return BOX_HEADERS if is_detection(job) else PREDICTION_HEADERS


def detect_metric_rows(job: Job) -> list[list[Any]] | dict[str, Any]:
    """Overall and per-class AP, the pre-fine-tuning baseline beside the fine-tuned detector."""
    metrics = job.result.get("metrics", {}) if job.status is Status.SUCCEEDED else {}
    base, tuned = metrics.get("baseline"), metrics.get("fine_tuned")
    if not base or not tuned:
        return []
    rows = [["all (mAP)", base["map_50"], tuned["map_50"], base["map"], tuned["map"], tuned["boxes"]]]
    rows += [[name, base["per_class"][name]["ap_50"], c["ap_50"], base["per_class"][name]["ap"], c["ap"], c["boxes"]]
             for name, c in tuned["per_class"].items()]
    return fixed_decimals(rows)


def box_gallery(job: Job) -> list[tuple[str, str]]:
    return [(job_file(job, p["image"]), f"{p['file']} · {len(p['boxes'])} boxes")
            for p in job.result.get("predictions", [])]


def box_rows(job: Job) -> dict[str, Any]:
    rows = [[p["file"], b["category"], b["score"], ", ".join(f"{v:g}" for v in b["box"])]
            for p in job.result.get("predictions", []) for b in p["boxes"]]
    return fixed_decimals(rows + [[s["file"], "skipped", None, s["error"]] for s in job.result.get("skipped", [])])


def prediction_gallery(job: Job) -> list[tuple[str, str]]:
    """Each classified image's thumbnail, captioned with its class and probability (and the file or frame)."""
    return [(job_file(job, p["image"]), f"{p['class']} · {score_text(p['probability'])} · {p['file']}")
            for p in job.result.get("predictions", []) if p.get("image")]


def prediction_rows(job: Job) -> dict[str, Any]:
    rows = [[p["file"], p["class"], p["probability"],
             ", ".join(f"{k} {score_text(v)}" for k, v in p["probabilities"].items())]
            for p in job.result.get("predictions", [])]
    return fixed_decimals(rows + [[s["file"], "skipped", None, s["error"]] for s in job.result.get("skipped", [])])


def by_name(controls: dict[str, Component], handler: Callable[..., Iterator]) -> Callable[..., Iterator]:
    """An event function for `set(controls.values())` as inputs, calling `handler({name: value}, request,
    progress)`: values are read by name, not by their place in a long argument list."""

    def event(values: dict[Component, Any], request: gr.Request, progress: gr.Progress = gr.Progress()) -> Iterator:
        yield from handler({name: values[control] for name, control in controls.items()}, request, progress)

    return event


def classifier_inputs(values: dict[str, Any]) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """(files by role, training parameters) of the Classifier sub-tab's form.

    `values`: "dataset", "unlabeled" (not in the K-shot form), "class_N_name" and "class_N_images" for each row,
    and the job's parameters."""
    archives = values.pop("dataset")
    files: dict[str, list[str]] = {"dataset": archives or [], "unlabeled": values.pop("unlabeled", None) or [],
                                   "retention": values.pop("retention", None) or []}
    class_names = []
    for index in range(CLASS_ROWS):
        class_name, images = values.pop(f"class_{index}_name"), values.pop(f"class_{index}_images")
        if (class_name or "").strip() or images:
            files[f"class_{len(class_names):03d}"] = images or []
            class_names.append((class_name or "").strip())
    if not archives and not class_names:
        raise gr.Error("Upload a .zip with a folder per class, or name classes and upload their images.")
    return files, {**values, "class_names": class_names}


def training(kind: str, form_inputs: Callable[[dict[str, Any]], tuple[dict[str, list[str]], dict[str, Any]]],
             follower: Callable[[Job, gr.Progress], Iterator]) -> Callable[..., Iterator]:
    """A sub-tab's Train event: submit a `kind` job from the form (read by `form_inputs`) and stream it with
    `follower`, then the saved-model list, which now holds the new model."""

    def event(values: dict[str, Any], request: gr.Request, progress: gr.Progress = gr.Progress()) -> Iterator:
        files, params = form_inputs(values)
        job = submit(kind, params, files, request)
        for views in follower(job, progress):
            yield *views, gr.Dropdown(choices=model_choices(owner_of(request)))

    return event


def training_line(job: Job) -> str:
    """A training sub-tab's status: where the job stands, its pace while it trains, the model it saved."""
    return status_markdown(job) + summary_line(job)


def kshot_status(job: Job) -> str:
    """A K-shot section's status: where the evaluation stands, then what it evaluated and how."""
    return status_markdown(job) + kshot_line(job)


def follow_classifier(job: Job, progress: gr.Progress) -> Iterator:
    """A classifier training's stream into its sub-tab (after a submit, or re-attached after a reload): job id,
    status, curves, metrics, confusion matrix, block scores, the methods' trade-off, downloads."""
    for job in follow(job, progress):  # noqa: B020 - the last record is the final one
        files_out = result_views(job)[2] if job.status.final else []
        yield (job.id, training_line(job), curves(job, CLASSIFY_CURVES), metric_rows(job),
               confusion(job), block_scores(job), *trade_off(job), files_out)


def block_scores(job: Job) -> gr.BarPlot:
    """Selective LoRA's learned score per image-tower block, active ones marked; hidden for other methods."""
    blocks = job.result.get("blocks") if job.status is Status.SUCCEEDED else None
    if not blocks:
        return gr.BarPlot(value=pd.DataFrame({"block": [], "score": [], "state": []}), visible=False)
    active = set(blocks["active"])
    data = pd.DataFrame({"block": [str(b) for b in blocks["candidates"]], "score": blocks["scores"],
                         "state": ["on" if b in active else "off" for b in blocks["candidates"]]})
    return gr.BarPlot(value=data, visible=True)


def trade_off(job: Job) -> tuple[gr.Dataframe, gr.Image]:
    """The methods compared on the same split (new-task accuracy, retention, active blocks, trainable parameters)
    and their plot; hidden unless the run compared them."""
    rows = job.result.get("comparison") if job.status is Status.SUCCEEDED else None
    if not rows:
        return gr.Dataframe(value=[], visible=False), gr.Image(value=None, visible=False)
    table = [[r["method"], r["new_task_accuracy"], r["retention_accuracy"],
              f"{r['active_blocks']} of {r['blocks']}", r["trainable_parameters"]] for r in rows]
    plot = gr.Image(value=job_file(job, "methods.png"), visible=True)
    return gr.Dataframe(value=fixed_decimals(table), visible=True), plot


def detector_inputs(values: dict[str, Any]) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """(files by role, training parameters) of the Detector sub-tab's form: "dataset" and the job's parameters;
    a learning rate of 0 (or none) is the base model's own."""
    data = values.pop("dataset")
    if not data:
        raise gr.Error("Upload annotated images: a .zip with the images and their annotations (COCO JSON, YOLO txt + "
                       "classes.txt, or Pascal VOC XML), or the image and annotation files.")
    return {"dataset": data}, {**values, "learning_rate": values["learning_rate"] or None}


def follow_detector(job: Job, progress: gr.Progress) -> Iterator:
    """A detector training's stream into its sub-tab (after a submit, or re-attached after a reload): job id,
    status, loss and mAP curves, metrics, downloads."""
    for job in follow(job, progress):  # noqa: B020 - the last record is the final one
        files_out = result_views(job)[2] if job.status.final else []
        yield (job.id, training_line(job), curves(job, DETECT_LOSS), curves(job, DETECT_MAP),
               detect_metric_rows(job), files_out)


def kshot_headers(task: str) -> list[str]:
    """The K-shot table's headers: seed, image counts and the task's metrics as the job names them."""
    return ["seed", "training images", "test images", *contract(KSHOT).METRICS[task].values()]


def kshot_rows(job: Job) -> list[list[str]]:
    """A row per seed, then the mean ± std row, of a finished K-shot evaluation."""
    result = job.result if job.status is Status.SUCCEEDED else {}
    if not result.get("runs"):
        return []

    def shown(value: float | None) -> str:
        return "–" if value is None else score_text(value)

    rows = [[str(run["seed"]), str(run["train_images"]), str(run["test_images"]),
             *(shown(run[key]) for key in result["metrics"])] for run in result["runs"]]
    spread = [f"{shown(result['summary'][key]['mean'])} ± {shown(result['summary'][key]['std'])}"
              for key in result["metrics"]]
    return [*rows, ["mean ± std", "", "", *spread]]


def kshot_views(job: Job) -> tuple[list[tuple[str, str]], list[list[str]], list[str]]:
    """(gallery, table rows, downloads) of a finished K-shot evaluation, for the Jobs tab."""
    if job.status is not Status.SUCCEEDED:
        return [], [], []
    return [], kshot_rows(job), [job_file(job, name) for name in job.outputs]


def kshot_line(job: Job) -> str:
    """What a finished K-shot evaluation was (K, classes, seeds, base model) and how it drew its samples."""
    if job.status is not Status.SUCCEEDED or "runs" not in job.result:
        return ""
    result = job.result
    weights = " · base has **random weights**" if result.get("random_weights") else ""
    skipped = skipped_markdown(result.get("skipped", []))
    return (f"\n\n**{result['shots']}-shot** evaluation of {KINDS[result['task']]}s on "
            f"{text(', '.join(result['classes']))} over seeds {', '.join(map(str, result['seeds']))} · base "
            f"{text(result['base_preset'])}{weights} · no model is saved\n\nSampling: {text(result['sampling'])}"
            f"{notes_markdown(result)}{skipped}")


def follow_kshot(job: Job, progress: gr.Progress) -> Iterator:
    """A K-shot evaluation's stream into its sub-tab's section (after a submit, or re-attached after a reload): job
    id, the section opened once (a reload folds it; closing it while the job runs keeps it closed), status, the
    table (per seed and mean ± std), downloads."""
    for update, job in enumerate(follow(job, progress)):  # noqa: B020 - the last record is the final one
        table = gr.Dataframe(value=kshot_rows(job), headers=kshot_headers(job.params.get("task", "classify")))
        section = gr.Accordion(open=True) if update == 0 else gr.skip()
        yield job.id, section, kshot_status(job), table, kshot_views(job)[2]


def kshot_event(task: str, form_inputs: Callable[[dict[str, Any]], tuple[dict[str, list[str]], dict[str, Any]]]
                ) -> Callable[..., Iterator]:
    """The K-shot button of a training sub-tab: its form's files and settings, K and the seeds, as one job."""

    def evaluate(values: dict[str, Any], request: gr.Request, progress: gr.Progress = gr.Progress()) -> Iterator:
        chosen = {name: values.pop(name) for name in ("shots", "seeds")}
        files, settings = form_inputs(values)
        job = submit(KSHOT, {**chosen, "task": task, "training": settings}, files, request)
        yield from follow_kshot(job, progress)

    return evaluate


KINDS = {"classify": "classifier", "detect": "detector"}
TRAINING_TOOLS = {"classify": CLASSIFY, "detect": DETECT}  # a K-shot job's task -> the job whose settings it uses
KSHOT_UNUSED = ("model_name", "seed", "held_out_fraction", "eval_every", "patience")  # no model is saved, each
# sample has its own seed, nothing is held out


def training_summary(job: Job) -> str:
    """A K-shot job's training settings in a line for the Jobs tab, labelled as its training job labels them: only
    the ones changed from their defaults and used by the evaluation (the whole nested record is unreadable)."""
    task = job.params.get("task", "classify")
    changed = changed_settings(TRAINING_TOOLS[task], job.params.get("training") or {}, KSHOT_UNUSED)
    return f"the {KINDS[task]}'s defaults" + (f" but {', '.join(changed)}" if changed else "")


def submitted_form(job: Job, task: str, names: list[str]) -> list[Any]:
    """The values of a training sub-tab's controls (`names`: its form's, then its K-shot section's "shots" and
    "seeds") as `job` was submitted, restored on a reload. A training of `task` fills the form, its model name one
    the user has not taken (pressing Train again trains again); a K-shot evaluation of `task` fills the inputs it
    used, K and the seeds; the other controls, and all of them for another job, keep what they have. What the form
    cannot hold (more classes one by one than it has rows, settings only the API sets) is left out, and a warning
    says so: a rerun must not differ unseen from the job."""
    kshot = job.tool == KSHOT
    if job.tool not in (KSHOT, TRAINING_TOOLS[task]) or (kshot and job.params["task"] != task):
        return [gr.skip()] * len(names)
    tool, params = TRAINING_TOOLS[task], job.params["training"] if kshot else job.params
    classes = params.get("class_names", ())
    pending = () if kshot or job.status.final else (params["model_name"],)  # it saves under its name
    values = {**params, "preset": contract(tool).Params.from_dict(params).base_preset(),
              "model_name": samples.free_name(params["model_name"], job.owner, pending),
              "shots": job.params.get("shots"), "seeds": ", ".join(map(str, job.params.get("seeds", ()))),
              **{f"class_{index}_name": classes[index] if index < len(classes) else "" for index in range(CLASS_ROWS)}}
    left_out = {*(NOT_IN_KSHOT if kshot else ("shots", "seeds"))}
    notes = []
    if len(classes) > CLASS_ROWS:
        left_out |= {name for name in names if name == "dataset" or name.startswith("class_")}
        notes.append(f"the files ({len(classes)} classes were given one by one; the form has {CLASS_ROWS} rows: "
                     "upload them again, or as a .zip with a folder per class)")
    reattach.warn_unrestored(tool, params, {*names, "class_names", *(KSHOT_UNUSED if kshot else ())}, notes)

    def value(name: str) -> Any:
        if name in left_out:
            return gr.skip()
        if name in values:
            return values[name]
        role = f"class_{int(name.split('_')[1]):03d}" if name.startswith("class_") else name  # class_N_images
        return job_inputs(job, role) or None

    return [value(name) for name in names]


def classes_shown(job: Job) -> Any:
    """The folded "classes one by one" rows opened when a restored classifier job has classes there (else they
    come back unseen)."""
    params = job.params["training"] if job.tool == KSHOT else job.params
    return gr.Accordion(open=True) if 0 < len(params.get("class_names", ())) <= CLASS_ROWS else gr.skip()


def restore_section(task: str, form: dict[str, Component], kshot: dict[str, Component],
                    one_by_one: gr.Accordion | None = None) -> None:
    """A reload with a training or K-shot evaluation of `task` in the address shows the inputs it was submitted
    with in the sub-tab's form and K-shot section (`submitted_form`), and its classes `one_by_one` if it has them."""
    inputs = {**form, "shots": kshot["shots"], "seeds": kshot["seeds"]}
    opened = [one_by_one] if one_by_one else []
    reattach.restore_on_load((TRAINING_TOOLS[task], KSHOT), lambda job: [
        *submitted_form(job, task, list(inputs)), *([classes_shown(job)] if one_by_one else [])],
        [*inputs.values(), *opened])


SAVED_MODELS = SavedControls(finetune_models.MODELS, lambda m: f"{KINDS[m.get('task', 'classify')]}: "
                             f"{', '.join(m['classes'])} · {m['base_preset']}")


def model_choices(owner: str | None = None) -> list[tuple[str, str]]:
    """The models the user may use: their own, then the ones others shared."""
    return SAVED_MODELS.choices(owner)


def _check_use(model: str | None, task: str, images: list[str] | None, video: str | None = None,
               owner: str | None = None) -> None:
    if not model:
        raise gr.Error("Pick a saved model first (train one in the Classifier or Detector tab, or upload a model "
                       "file below).")
    try:
        kind = finetune_models.get(model, owner=owner).get("task", "classify")
    except ValueError as exc:
        raise gr.Error(str(exc)) from None
    if kind != task:
        button = "Detect boxes" if kind == "detect" else "Classify"
        raise gr.Error(f"'{model}' is a {KINDS[kind]}: press {button}.")
    if not images and not video:
        raise gr.Error("Upload images (or a .zip of images)" + (" or a video" if task == "classify" else "") +
                       f" to {'classify' if task == 'classify' else 'detect boxes on'}.")


def use(model: str | None, images: list[str] | None, video: str | None, stride: float, alpha: float,
        request: gr.Request = None, progress: gr.Progress = gr.Progress()) -> Iterator:
    """Classify images or a video's frames with a saved classifier at the chosen WiSE-FT mix."""
    _check_use(model, "classify", images, video, owner_of(request))
    params = {"model": model, "alpha": alpha, "stride": stride or 1}
    job = submit(PREDICT, params, {"video": [video]} if video else {"images": images}, request)
    for job in follow(job, progress):  # noqa: B020
        yield (job.id, status_markdown(job), *result_views(job))


def prediction_line(job: Job) -> str:
    """A prediction's status: where the job stands, then for a detector how many boxes it kept, and what to change
    when it kept none (a page of pictures without boxes said nothing); then its notes."""
    line = status_markdown(job)
    if job.status is not Status.SUCCEEDED:
        return line
    if is_detection(job):
        predictions, threshold = job.result.get("predictions", []), job.result.get("score_threshold")
        boxes = sum(len(p["boxes"]) for p in predictions)
        line += (f"\n\n**{boxes}** box{'es' if boxes != 1 else ''} on {len(predictions)} image(s) at score ≥ "
                 f"{threshold:g}" + (": lower *Lowest box score* to see weaker ones." if boxes == 0 else ""))
    return line + notes_markdown(job.result)


def detect(model: str | None, images: list[str] | None, threshold: float, request: gr.Request = None,
           progress: gr.Progress = gr.Progress()) -> Iterator:
    """Boxes on images with a saved detector, at or above the score threshold."""
    _check_use(model, "detect", images, owner=owner_of(request))
    job = submit(PREDICT, {"model": model, "score_threshold": threshold}, {"images": images}, request)
    for job in follow(job, progress):  # noqa: B020
        yield (job.id, prediction_line(job), *result_views(job))


def download(model: str | None, request: gr.Request = None) -> str:
    """The model file of one's own model or one shared with everyone."""
    if not model:
        raise gr.Error("Pick a saved model to download.")
    owner = owner_of(request)
    folder = scratch_dir("model-")
    try:
        return hand_out(finetune_models.export_zip(model, folder, owner=owner), owner)
    except ValueError as exc:
        raise gr.Error(str(exc)) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # the copy handed out is the only one kept


def upload(name: str, archive: str | None, request: gr.Request = None) -> tuple[str, Any]:
    """Register a model file as the signed-in user's model (private until shared)."""
    if not archive:
        raise gr.Error("Choose a model .zip (downloaded from this tool) to upload.", duration=None)
    owner = owner_of(request)
    try:
        meta = finetune_models.import_zip(name, Path(archive), owner=owner)
    except ValueError as exc:
        raise gr.Error(str(exc), duration=None) from None
    return (f"Uploaded model **{text(meta['name'])}** ({text(', '.join(meta['classes']))}).",
            gr.Dropdown(choices=model_choices(owner), value=meta["name"]))


def chosen_model(model: str | None, request: gr.Request = None) -> tuple:
    """A new pick in Use a model: what the model is, only the controls and result views of its kind (each twice:
    inputs, results), and the previous model's results cleared (they were not this model's)."""
    try:
        meta = finetune_models.get(model, owner=owner_of(request)) if model else None
    except ValueError as exc:
        meta, hint = None, f"⚠️ {text(exc)}"
    else:
        hint = PICK_MODEL
    kind = meta.get("task", "classify") if meta else None
    if meta:
        hint = (f"**{text(meta['name'])}** is a {KINDS[kind]} of {text(', '.join(meta['classes']))} "
                f"(base {text(meta['base_preset'])}): give images" + (" or a video" if kind == "classify" else "")
                + f", then press **{'Classify' if kind == 'classify' else 'Detect boxes'}**.")
    classifier, detector = gr.update(visible=kind == "classify"), gr.update(visible=kind == "detect")
    return (hint, classifier, classifier, detector, detector, "", [], [], [], [], [], [], None)


def no_curves() -> pd.DataFrame:
    return pd.DataFrame(columns=CURVE_COLUMNS)


def cleared_classifier() -> tuple:
    """A new base model picked in the Classifier tab: a previous run's views (of another base model) go back to
    empty, the confusion matrix hidden."""
    return (CLASSIFY_HINT, no_curves(), [], gr.Dataframe(value=[], headers=[MATRIX_CORNER], visible=False),
            gr.BarPlot(visible=False), gr.Dataframe(value=[], visible=False), gr.Image(value=None, visible=False), [])


def cleared_detector() -> tuple:
    """A new base model picked in the Detector tab: a previous run's views go back to empty."""
    return DETECT_HINT, no_curves(), no_curves(), [], []


def section_of(job: Job) -> str:
    """The sub-tab that streams a job after a reload: a detector's training or K-shot evaluation, else a
    classifier's."""
    detector = job.tool == DETECT or (job.tool == KSHOT and job.params.get("task") == "detect")
    return "finetune-detector" if detector else "finetune-classifier"


def build() -> None:
    with gr.Tabs(elem_id="finetune-tabs") as sections:
        with gr.Tab("Classifier", id="finetune-classifier", elem_id="finetune-classifier-tab"):
            classifier = build_classifier()
        with gr.Tab("Detector", id="finetune-detector", elem_id="finetune-detector-tab"):
            detector = build_detection()
        with gr.Tab("Use a model", id="finetune-use", elem_id="finetune-use-tab") as use_tab:
            use_parts = build_use()
    model = use_parts["model"]

    train_button, form, cancel_button, job_id, results, classifier_kshot = classifier
    train = by_name(form, training(CLASSIFY, classifier_inputs, follow_classifier))
    one_job_per_click(train_button, train, set(form.values()),  # the API takes them in the order created
                      [job_id, *results, model], api_name="finetune_classify", concurrency_limit=None,
                      show_progress="hidden")  # the status line says the step, pace and time left; curves stay seen
    wire_cancel(cancel_button, job_id, results[0], "cancel_finetune", training_line)
    reattach.follow_on_load(job_id, (CLASSIFY,), follow_classifier, [job_id, *results], buttons=[train_button],
                            show_progress="hidden")
    form["preset"].input(cleared_classifier, None, results, api_visibility="private",
                         show_progress="hidden")

    detect_train, detect_form, detect_cancel, detect_job, detect_results, detector_kshot = detector
    train_detector = by_name(detect_form, training(DETECT, detector_inputs, follow_detector))
    one_job_per_click(detect_train, train_detector, set(detect_form.values()),
                      [detect_job, *detect_results, model], api_name="finetune_detect", concurrency_limit=None,
                      show_progress="hidden")
    wire_cancel(detect_cancel, detect_job, detect_results[0], "cancel_finetune_detect", training_line)
    reattach.follow_on_load(detect_job, (DETECT,), follow_detector, [detect_job, *detect_results],
                            buttons=[detect_train], show_progress="hidden")
    wire_kshot("classify", classifier_kshot, form, classifier_inputs, "finetune_kshot")
    wire_kshot("detect", detector_kshot, detect_form, detector_inputs, "finetune_kshot_detect")
    reattach.select_section_on_load(sections, section_of)
    detect_form["preset"].input(cleared_detector, None, detect_results,
                                api_visibility="private", show_progress="hidden")

    u = use_parts
    classified = [u["use_status"], u["prediction_gallery"], u["predictions"], u["prediction_files"]]
    detected = [u["use_status"], u["boxes_gallery"], u["boxes"], u["box_files"]]
    use_job = gr.State()  # the prediction's id, for the page's address (a reload opens it in the Jobs tab)
    reattach.link(use_job)
    one_job_per_click(u["use_button"], use, [model, u["images"], u["video"], u["stride"], u["alpha"]],
                      [use_job, *classified], api_name="finetune_predict", concurrency_limit=None)
    one_job_per_click(u["detect_button"], detect, [model, u["images"], u["threshold"]], [use_job, *detected],
                      api_name="finetune_detect_predict", concurrency_limit=None)
    model.change(chosen_model, model, [u["model_hint"], u["classifier_part"], u["classifier_results"],
                                       u["detector_part"], u["detector_results"], *classified, *detected[1:],
                                       u["model_file"]],
                 api_visibility="private", show_progress="hidden")
    use_tab.select(SAVED_MODELS.refresh, None, model, api_visibility="private", show_progress="hidden")
    u["download_button"].click(download, [model], [u["model_file"]], api_name="finetune_download")
    uploaded = u["upload_button"].click(upload, [u["upload_name"], u["upload_file"]], [u["model_status"], model],
                                        api_name="finetune_upload", show_progress_on=u["model_status"])
    told_when_refused(uploaded, u["model_status"], "Not uploaded")
    SAVED_MODELS.wire(model, u["share_model"], u["delete_button"], u["model_status"], "finetune_models",
                      "finetune_delete")


CLASSIFY_HINT = "Give classes and press Train."
TRADE_OFF_HEADERS = ["method", "new-task accuracy", "retention accuracy", "active blocks", "trainable parameters"]
NOT_IN_KSHOT = ("unlabeled", "retention", "compare_methods")  # a K-shot evaluation measures the new task only
DETECT_HINT = "Give annotated images and press Train detector."


def build_classifier() -> tuple:
    """The classifier training sub-tab: (train button, its inputs by name, cancel button, job id state, result
    outputs: status, curves, metrics, confusion matrix, downloads; its K-shot section's components)."""
    gr.Markdown(
        "### Few-shot classification (CLIP + LoRA, Selective LoRA)\n"
        "Give a few images per class: a **.zip with a folder per class**, or class names with their images. The "
        "head starts from the text of the class names, so step 0 is zero-shot CLIP; training (LoRA on the image "
        "tower, Selective LoRA, which learns which blocks get an adapter, or a linear probe) is compared with it on "
        "held-out images (30 % of each class with 2 or more images). Every run also measures **forgetting**: "
        "zero-shot accuracy on other classes before and after. The best held-out checkpoint is kept; cancel stops "
        "training and keeps the best so far."
    )
    job_id = gr.State(None)
    with gr.Row():
        with gr.Column(scale=1):
            form = {"dataset": gr.File(label="Classes as a .zip (a folder per class)", file_count="multiple",
                                       file_types=list(ARCHIVE_SUFFIXES), elem_id="finetune-zip")}
            with gr.Accordion("…or classes one by one", open=False) as one_by_one:
                for index in range(CLASS_ROWS):  # the name above its images: beside it, their file names were cut
                    with gr.Column(variant="panel"):
                        form[f"class_{index}_name"] = gr.Textbox(label=f"Class {index + 1} name",
                                                                 elem_id=f"finetune-class-{index}")
                        form[f"class_{index}_images"] = gr.File(
                            label=f"Class {index + 1} images", file_count="multiple", file_types=list(IMAGE_SUFFIXES),
                            elem_id=f"finetune-class-{index}-files")
            form["model_name"] = controls.textbox(CLASSIFY, "model_name", info=None,
                                                  placeholder="e.g. scratches v1", elem_id="finetune-name")
            form["preset"] = preset_dropdown("finetune", "finetune-preset", label="Base model")
            weights_notice("finetune", form["preset"])
            with gr.Accordion("Training settings", open=False):
                form["method"] = controls.radio(CLASSIFY, "method", choices=[
                    ("LoRA + head", "lora"), ("Selective LoRA (learns which blocks)", "selective-lora"),
                    ("Linear probe (head only)", "linear")], elem_id="finetune-method")
                with gr.Row():
                    form["lora_rank"] = controls.number(CLASSIFY, "lora_rank")
                    form["lora_blocks"] = controls.textbox(CLASSIFY, "lora_blocks")
                with gr.Row():
                    form["steps"] = controls.number(CLASSIFY, "steps", elem_id="finetune-steps")
                    form["learning_rate"] = controls.number(CLASSIFY, "learning_rate")
                with gr.Row():
                    form["seed"] = controls.number(CLASSIFY, "seed")
                    form["time_budget_s"] = controls.number(CLASSIFY, "time_budget_s")
                form["unlabeled"] = gr.File(label="Unlabeled images of the task (optional, transductive)",
                                            file_count="multiple", file_types=list(IMAGE_SUFFIXES))
                # created after the older inputs: the API takes the form in the order created, new ones last
                form["sparsity"] = controls.number(CLASSIFY, "sparsity", elem_id="finetune-sparsity")
                form["retention"] = gr.File(label="Retention images: other classes, a .zip with a folder per class "
                                                  "(optional; default: generated shapes), to measure forgetting",
                                            file_count="multiple", file_types=list(ARCHIVE_SUFFIXES),
                                            elem_id="finetune-retention")
                form["compare_methods"] = controls.checkbox(CLASSIFY, "compare_methods",
                                                            elem_id="finetune-compare-methods")
            samples.classifier(form["dataset"], form["model_name"], form["preset"])
            train_button, cancel_button = run_buttons("Train", "finetune-train", "finetune-cancel")
        with gr.Column(scale=2):
            status = gr.Markdown(CLASSIFY_HINT, elem_id="finetune-status")
            plot = gr.LinePlot(x="step", y="value", color="series", label="Training loss and held-out accuracy",
                               elem_id="finetune-curves")
            # wrapped: on a phone the headers take two or three lines rather than leave the last column out of view
            # (the confusion matrix is not: its class names would break mid-word; it scrolls sideways)
            metrics = gr.Dataframe(headers=METRIC_HEADERS, label="Accuracy on held-out images", interactive=False,
                                   wrap=True, elem_id="finetune-metrics")
            matrix = gr.Dataframe(label="Confusion matrix (fine-tuned; rows true, columns predicted)",
                                  interactive=False, visible=False, elem_id="finetune-confusion")
            blocks = gr.BarPlot(x="block", y="score", color="state", color_map={"on": "#d62728", "off": "#9e9e9e"},
                                label="Selective LoRA: learned score per image-tower block (on: its adapter is kept)",
                                visible=False, elem_id="finetune-blocks")
            comparison = gr.Dataframe(headers=TRADE_OFF_HEADERS, label="Methods on the same split: new task vs. "
                                      "retention (zero-shot on other classes)", interactive=False, visible=False,
                                      wrap=True, elem_id="finetune-trade-off")
            comparison_plot = gr.Image(label="New-task accuracy against retention", show_label=False, interactive=False,
                                       visible=False, elem_id="finetune-trade-off-plot")
            downloads = gr.File(label="Downloads (model.zip, metrics.json, history.csv)", file_count="multiple",
                                interactive=False, elem_id="finetune-downloads")
    kshot = build_kshot("classify", "finetune")
    restore_section("classify", form, kshot, one_by_one)
    return (train_button, form, cancel_button, job_id,
            [status, plot, metrics, matrix, blocks, comparison, comparison_plot, downloads], kshot)


def build_detection() -> tuple:
    """The detector training sub-tab: (train button, its inputs by name, cancel button, job id state, result
    outputs: status, loss and mAP curves, metrics, downloads; its K-shot section's components)."""
    gr.Markdown(
        "### Few-shot detection (RT-DETR)\n"
        "Give a few annotated images: a **.zip with the images and their annotations** (COCO JSON, YOLO txt + "
        "`classes.txt`, or Pascal VOC XML, as the annotation-completion tool reads and exports them), or the files "
        "themselves. The detector gets a new class head for your classes and is trained with its backbone frozen; "
        "30 % of the annotated images are held out, and mAP on them is compared with the detector before training. "
        "The trained detector is also an engine of the annotation-completion tab."
    )
    job_id = gr.State(None)
    with gr.Row():
        with gr.Column(scale=1):
            form = {"dataset": gr.File(label="Annotated images (.zip, or images + annotation files)",
                                       file_count="multiple", elem_id="detect-data",
                                       file_types=[*ARCHIVE_SUFFIXES, *IMAGE_SUFFIXES, *ANNOTATION_SUFFIXES]),
                    "model_name": controls.textbox(DETECT, "model_name", info=None,
                                                   placeholder="e.g. screws v1", elem_id="detect-name"),
                    "preset": preset_dropdown("finetune-detect", "detect-preset", label="Base model")}
            weights_notice("finetune-detect", form["preset"])
            with gr.Accordion("Training settings", open=False, elem_id="detect-settings"):
                with gr.Row():
                    form["steps"] = controls.number(DETECT, "steps", elem_id="detect-steps")
                    form["learning_rate"] = controls.number(DETECT, "learning_rate", elem_id="detect-lr",
                                                            label="Learning rate (empty or 0: the base model's own)")
                with gr.Row():
                    form["batch_size"] = controls.number(DETECT, "batch_size")
                    form["seed"] = controls.number(DETECT, "seed")
                with gr.Row():
                    form["time_budget_s"] = controls.number(DETECT, "time_budget_s")
                    form["train_backbone"] = controls.checkbox(DETECT, "train_backbone", info=None)
            samples.detector(form["dataset"], form["model_name"], form["preset"], form["steps"])
            train_button, cancel_button = run_buttons("Train detector", "detect-train", "detect-cancel")
        with gr.Column(scale=2):
            status = gr.Markdown(DETECT_HINT, elem_id="detect-status")
            with gr.Row():
                loss_plot = gr.LinePlot(x="step", y="value", color="series", label="Loss", elem_id="detect-loss")
                map_plot = gr.LinePlot(x="step", y="value", color="series", label="Held-out mAP",
                                       elem_id="detect-map")
            metrics = gr.Dataframe(headers=DETECT_METRIC_HEADERS, label="AP on held-out images: before and after "
                                   "fine-tuning", interactive=False, elem_id="detect-metrics", wrap=True,
                                   column_widths=DETECT_METRIC_COLUMN_WIDTHS)
            downloads = gr.File(label="Downloads (model.zip, metrics.json, history.csv)", file_count="multiple",
                                interactive=False, elem_id="detect-downloads")
    kshot = build_kshot("detect", "detect")
    restore_section("detect", form, kshot)
    return train_button, form, cancel_button, job_id, [status, loss_plot, map_plot, metrics, downloads], kshot


KSHOT_HINT = "Set K and the seeds, then press Run K-shot evaluation."


def build_kshot(task: str, prefix: str) -> dict[str, Component]:
    """A training sub-tab's folded K-shot section ("section"): K and the seeds (the data and training settings are
    the form's above), run and cancel buttons, the status, a table per seed with mean ± std, downloads. By name."""
    parts: dict[str, Component] = {}
    with gr.Accordion("K-shot evaluation", open=False, elem_id=f"{prefix}-kshot") as parts["section"]:
        gr.Markdown(f"How well does this training do with only **K images per class**, and how much does that depend "
                    f"on which K were drawn? For each seed, K images per class are drawn from the {KINDS[task]}'s "
                    "data above to train on (with the settings above) and the other images are tested, before and "
                    "after fine-tuning. No model is saved.")
        parts["job_id"] = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                parts["shots"] = controls.number(KSHOT, "shots", elem_id=f"{prefix}-kshot-k")
                parts["seeds"] = controls.textbox(KSHOT, "seeds", elem_id=f"{prefix}-kshot-seeds",
                                                  value=", ".join(map(str, controls.spec(KSHOT, "seeds").default)))
                parts["button"], parts["cancel"] = run_buttons("Run K-shot evaluation", f"{prefix}-kshot-run",
                                                               f"{prefix}-kshot-cancel")
            with gr.Column(scale=2):
                parts["status"] = gr.Markdown(KSHOT_HINT, elem_id=f"{prefix}-kshot-status")
                headers = kshot_headers(task)
                widths = ["10%", "14%", "12%", *[f"{64 / (len(headers) - 3):.1f}%"] * (len(headers) - 3)]
                parts["table"] = gr.Dataframe(headers=headers, label="Per seed, then mean ± std", interactive=False,
                                              wrap=True, column_widths=widths, elem_id=f"{prefix}-kshot-table")
                parts["downloads"] = gr.File(label="Downloads (kshot.json, kshot.csv)", file_count="multiple",
                                             interactive=False, elem_id=f"{prefix}-kshot-downloads")
    return parts


def wire_kshot(task: str, parts: dict[str, Component], form: dict[str, Component],
               form_inputs: Callable[[dict[str, Any]], tuple[dict[str, list[str]], dict[str, Any]]],
               api_name: str) -> None:
    """The K-shot section's events: one job per click from the sub-tab's form (less its unlabeled images) with K and
    the seeds, its cancel, its re-attaching after a reload, and its results cleared when another base model is
    picked (they were the other model's)."""
    inputs = {**{name: c for name, c in form.items() if name not in NOT_IN_KSHOT}, "shots": parts["shots"],
              "seeds": parts["seeds"]}
    outputs = [parts["job_id"], parts["section"], parts["status"], parts["table"], parts["downloads"]]
    one_job_per_click(parts["button"], by_name(inputs, kshot_event(task, form_inputs)), set(inputs.values()), outputs,
                      api_name=api_name, concurrency_limit=None, show_progress="hidden")
    wire_cancel(parts["cancel"], parts["job_id"], parts["status"], f"cancel_{api_name}", kshot_status)
    reattach.follow_on_load(parts["job_id"], (KSHOT,), follow_kshot, outputs, buttons=[parts["button"]],
                            accepts=lambda job: job.params.get("task") == task, show_progress="hidden")
    form["preset"].input(lambda: (KSHOT_HINT, [], []), None, [parts["status"], parts["table"], parts["downloads"]],
                         api_visibility="private", show_progress="hidden")


def build_use() -> dict[str, Component]:
    """The Use a model sub-tab: pick a saved model, then only its kind's inputs and results; below, the model
    file (download, upload), sharing and deletion. Its components by name."""
    parts: dict[str, Component] = {}
    parts["model"] = gr.Dropdown(label="Saved model (yours and shared ones)", choices=[], value=None,
                                 allow_custom_value=True, elem_id="finetune-model")  # API: "user/name"
    parts["model_hint"] = gr.Markdown(PICK_MODEL, elem_id="finetune-model-hint")
    with gr.Row():
        with gr.Column():
            parts["images"] = gr.File(label="Images (or .zip)", file_count="multiple", file_types=IMAGES_OR_ZIP,
                                      elem_id="finetune-use-images")
            samples.saved_model(parts["model"], parts["images"])
        with gr.Column(visible=False, elem_id="finetune-classifier-inputs") as parts["classifier_part"]:
            parts["video"] = gr.File(label="…or a video", file_types=list(VIDEO_SUFFIXES),
                                     elem_id="finetune-use-video")
            with gr.Row():
                parts["alpha"] = controls.slider(PREDICT, "alpha", step=0.05, info=None, elem_id="finetune-alpha")
                parts["stride"] = controls.number(PREDICT, "stride", info=None)
            parts["use_button"] = gr.Button("Classify", variant="primary", elem_id="finetune-classify")
        with gr.Column(visible=False, elem_id="finetune-detector-inputs") as parts["detector_part"]:
            parts["threshold"] = controls.slider(PREDICT, "score_threshold", step=0.01, info=None,
                                                 elem_id="finetune-threshold")
            parts["detect_button"] = gr.Button("Detect boxes", variant="primary", elem_id="finetune-detect-boxes")
    parts["use_status"] = gr.Markdown(elem_id="finetune-use-status")
    with gr.Column(visible=False) as parts["classifier_results"]:
        parts["prediction_gallery"] = gr.Gallery(label="Predictions (class · probability · file)", columns=6,
                                                 height="auto", object_fit="contain",
                                                 elem_id="finetune-prediction-gallery")
        parts["predictions"] = gr.Dataframe(headers=PREDICTION_HEADERS, interactive=False, wrap=True,
                                            column_widths=PREDICTION_COLUMN_WIDTHS, elem_id="finetune-predictions")
        parts["prediction_files"] = gr.File(label="Downloads (predictions.csv, predictions.json)",
                                            file_count="multiple", interactive=False,
                                            elem_id="finetune-prediction-files")
    with gr.Column(visible=False) as parts["detector_results"]:
        parts["boxes_gallery"] = gr.Gallery(label="Detected boxes", columns=4, height="auto", object_fit="contain",
                                            elem_id="finetune-boxes")
        parts["boxes"] = gr.Dataframe(headers=BOX_HEADERS, interactive=False, wrap=True,
                                      column_widths=BOX_COLUMN_WIDTHS, elem_id="finetune-box-table")
        parts["box_files"] = gr.File(label="Downloads (detections.csv, detections.json, drawn images)",
                                     file_count="multiple", interactive=False, elem_id="finetune-box-files")
    gr.Markdown("#### The model file")
    with gr.Row():
        parts["share_model"] = share_checkbox("finetune-share-model")
        parts["download_button"] = gr.Button("Download model file", elem_id="finetune-download")
        parts["delete_button"] = gr.Button("Delete model", variant="stop", elem_id="finetune-delete")
    parts["model_file"] = gr.File(label="Model file", interactive=False, height=110, elem_id="finetune-model-file")
    with gr.Row():
        parts["upload_name"] = gr.Textbox(label="Upload a model file as", placeholder="model name",
                                          elem_id="finetune-upload-name")
        parts["upload_file"] = gr.File(label="Model .zip", file_types=list(ARCHIVE_SUFFIXES), height=110,
                                       elem_id="finetune-upload-file")
        parts["upload_button"] = gr.Button("Upload model", elem_id="finetune-upload")
    parts["model_status"] = gr.Markdown(elem_id="finetune-model-status")
    return parts
