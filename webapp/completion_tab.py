"""Annotation completion tab: import a partly annotated set, get proposals for the missing boxes, review, export.

The review (accepted and rejected proposal ids, edited and added boxes) is saved to the job's review.json as each
decision is made, so a reload shows it; the score slider filters the proposals already computed, without a new job.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from gradio_image_annotation import image_annotator
from PIL import Image, ImageDraw

from engine.completion import review as reviews
from engine.completion.outputs import PROPOSALS_FILE
from engine.filetypes import (
    ANNOTATIONS_OR_ZIP,
    IMAGES_OR_ZIP,
    VIDEO_SUFFIXES,
)
from engine.media import load_image
from tasks import client, finetune_models
from tasks.client import Job, JobNotFound, Status
from tasks.registry import contract
from webapp import controls, reattach, samples
from webapp.controls import one_job_per_click
from webapp.model_choice import preset_dropdown, weights_notice
from webapp.saved_items import label
from webapp.serving import hand_out, job_file, job_inputs
from webapp.views import (
    code,
    fixed_decimals,
    follow,
    notes_markdown,
    owner_of,
    preset_choices,
    run_buttons,
    skipped_markdown,
    status_markdown,
    submit,
    text,
    video_frame,
    wire_cancel,
)

PROPOSAL_HEADERS = ["id", "class", "score", "status", "exemplar"]
IMAGE_HEADERS = ["file", "existing boxes", "proposals ≥ threshold", "best score"]
METRIC_HEADERS = ["class", "hidden", "found", "proposals", "recall", "precision"]
CURVE_HEADERS = ["score threshold", "recall", "precision", "proposals"]
COLORS = {"existing": "#22aa44"}  # drawn into the picture: the given boxes are not edited here
RGB = {"pending": (255, 136, 0), "accepted": (34, 102, 255), "rejected": (150, 150, 150)}  # editable boxes
# the review picture is fitted into the panel (screen pixels on a desktop), and a phone (390 px) draws it 320 wide;
# the annotator's labels are 12 px Arial (bold 14 px when selected) in a box 20 px high, at most about 8 px a
# character plus 10, in screen pixels whatever the picture's size
PANEL = (1200, 640)
NARROWEST = 320
LABEL_HEIGHT, LABEL_CHARACTER, LABEL_PADDING = 20, 8, 10
ROOM_RIGHT = 0.25  # the most white on the right of the picture, as a part of its width
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


# -- review state: {"job": id, "doc": proposals.json, **engine.completion.review.decisions(...)} -------------
# Each decision (accept, reject, an edit in the annotator) is written to the job's review.json at once.
SHORTCUTS = ("Keys (outside text fields): **a** accept · **r** reject · **n** next proposal · **→** or "
             "**PageDown** next image · **←** or **PageUp** previous image · on the picture: **d** then drag a box "
             "to move it or its corners to resize, double-click or **e** relabel (keep the id: #3 resistor), "
             "**Delete** remove, **c** then drag to draw a new box")
SHORTCUTS_JS = """
document.addEventListener("keydown", (event) => {
    const review = document.getElementById("completion-review");
    const target = event.target;
    if (!review || review.offsetParent === null || event.ctrlKey || event.metaKey || event.altKey) return;
    if (target.closest("input, textarea, select, [contenteditable=true], dialog, .modal")) return;
    const button = {a: "completion-accept", r: "completion-reject", n: "completion-next-proposal",
                    ArrowRight: "completion-next", PageDown: "completion-next",
                    ArrowLeft: "completion-prev", PageUp: "completion-prev"}[event.key];
    if (!button || (event.key.length > 1 && target.closest("table"))) return;  // arrows move in a table
    event.preventDefault();
    document.getElementById(button).click();
});
"""
# the page's address holds the image under review (1-based, as the page line counts; none for the first)
SET_IMAGE_JS = """(shown) => {
    const url = new URL(window.location.href);
    if (shown > 1) url.searchParams.set(IMAGE_PARAM, shown); else url.searchParams.delete(IMAGE_PARAM);
    window.history.replaceState(window.history.state, "", url);
    return shown;
}""".replace("IMAGE_PARAM", json.dumps(reattach.IMAGE_PARAM))
LABEL = re.compile(r"^\s*([#+])(\d+)\b\s*(.*?)(?:\s+\d+\.\d+)?(?:\s*◀)?\s*$")  # "#3 capacitor 0.82 ◀", "+2 nut"
SCORE = re.compile(r"\d+\.\d+")
PAGE_LINE = re.compile(r"Image (\d+) of \d+:")
DECISIONS = ("accepted", "rejected", "edited", "added")


def _proposals(job_id: str) -> dict[str, Any]:
    return reviews.read_proposals(client.artifact_path(job_id, PROPOSALS_FILE))


def _review(job_id: str) -> dict[str, Any]:
    try:
        saved = reviews.read_review(client.artifact_path(job_id, reviews.REVIEW_FILE)) or {}
    except JobNotFound:  # not reviewed yet
        saved = {}
    return {"job": job_id, "doc": _proposals(job_id),
            **reviews.decisions(*(saved.get(key) or () for key in ("accepted", "rejected")), saved.get("edited"),
                                saved.get("added"))}


def _persist(review: dict[str, Any], request: gr.Request | None) -> dict[str, Any]:
    """The review with its decisions normalised, after writing them to the job's review.json."""
    review = {**review, **reviews.decisions(*(review[key] for key in DECISIONS))}
    client.add_outputs(review["job"], lambda out_dir: reviews.save_decisions(
        out_dir, {key: review[key] for key in DECISIONS}), owner_of(request))
    return review


def _status_of(review: dict[str, Any], proposal_id: int) -> str:
    if proposal_id in review["accepted"]:
        return "accepted"
    return "rejected" if proposal_id in review["rejected"] else "pending"


def _visible(item: dict[str, Any], review: dict[str, Any], threshold: float) -> list[dict[str, Any]]:
    """Proposals of one image shown at this threshold (decided ones stay visible), best first."""
    return [p for p in item["proposals"] if p["score"] >= threshold or _status_of(review, p["id"]) != "pending"]


def _current(review: dict[str, Any], proposal: dict[str, Any]) -> tuple[list[float], str]:
    """A proposal's box [x, y, w, h] and class as the reviewer left them."""
    change = review["edited"].get(str(proposal["id"]), {})
    return change.get("box", proposal["box"]), change.get("category", proposal["category"])


def _selected(review: dict[str, Any], item: dict[str, Any], threshold: float, selected: float | None) -> int | None:
    """The selected proposal if it is shown on this image, else the image's best pending one shown."""
    shown = _visible(item, review, threshold)
    if selected in {p["id"] for p in shown}:  # 2.5 is none of them (int() took it for #2)
        return int(selected)
    return next((p["id"] for p in shown if _status_of(review, p["id"]) == "pending"), None)


def annotator_value(review: dict[str, Any], item: dict[str, Any], threshold: float,
                    selected: int | None) -> dict[str, Any]:
    """The image fitted to the panel with its existing boxes drawn in (green, not editable) and, as editable
    rectangles, the proposals shown (orange pending, blue accepted, grey rejected) and the boxes the reviewer added
    (blue). A proposal's label is its id alone ("#3"; class and score are in the table), short enough that
    neighbours' labels do not hide it; decided ones are drawn over pending ones, the selected one (marked ◀) over
    all. A label typed as "#3 resistor" relabels #3."""
    scale, top = _fit(item), _margin(item)
    width, height = round(item["width"] * scale), round(item["height"] * scale)
    fitted = Image.open(client.artifact_path(review["job"], item["preview"])).convert("RGB").resize(
        (width, height), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(fitted)
    for existing in item["existing"]:
        draw.rectangle(_corners(existing["box"], scale), outline=COLORS["existing"], width=3)
    # the annotator draws its first box on top: the selected one, then the decided and added ones, then the
    # pending ones best first
    ranked = [((p["id"] != selected, _status_of(review, p["id"]) == "pending", -p["score"]),
               {**_xyxy(_current(review, p)[0], scale, top), "color": RGB[_status_of(review, p["id"])],
                "label": f"#{p['id']}" + (" ◀" if p["id"] == selected else "")})
              for p in _visible(item, review, threshold)]
    ranked += [((True, False, 0.0), {**_xyxy(a["box"], scale, top), "label": f"+{n + 1} {a['category']}",
                                     "color": RGB["accepted"]})
               for n, a in enumerate(review["added"]) if a["image"] == item["file"]]
    boxes = _labels_apart([box for _, box in sorted(ranked, key=lambda pair: pair[0])])
    picture = Image.new("RGB", (width + _room_right(boxes, width), height + top), "white")
    picture.paste(fitted, (0, top))
    return {"image": picture, "boxes": boxes}


def _labels_apart(boxes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The annotator writes a box's label at its top-left corner, the first box's on top: boxes sharing a corner
    (two proposals with the same box) would show one id. Each box below another at its corner gets its label padded
    with spaces past the labels above it (about 3 spaces a character), so every id is in sight."""
    padding: dict[tuple[int, int], int] = {}
    for box in boxes:
        corner = (round(box["xmin"]), round(box["ymin"]))
        spaces = padding.get(corner, 0)
        padding[corner] = spaces + 3 * len(box["label"]) + 4
        box["label"] = " " * spaces + box["label"]
    return boxes


def render(review: dict[str, Any] | None, threshold: float, page: int,
           selected: float | None = None) -> tuple[Any, Any, str, str, int, int | None]:
    """(annotator value, proposal rows, page line, counts line, page, selected proposal) for one image."""
    if not review:
        return None, [], "No proposals yet: run a completion or load a job.", "", 0, None
    images = review["doc"]["images"]
    page = min(max(int(page or 0), 0), len(images) - 1)
    item = images[page]
    selected = _selected(review, item, threshold, selected)
    rows = [[p["id"], _current(review, p)[1], p["score"], _status_of(review, p["id"]), p["exemplar"]]
            for p in _visible(item, review, threshold)]
    added_here = [a["category"] for a in review["added"] if a["image"] == item["file"]]
    line = (f"Image {page + 1} of {len(images)}: {code(item['file'])} · {len(item['existing'])} existing boxes · "
            f"{len(rows)} proposals shown (score ≥ {threshold:.2f}, or decided)"
            + (f" · {len(added_here)} added ({text(', '.join(added_here))})" if added_here else ""))
    return annotator_value(review, item, threshold, selected), fixed_decimals(rows), line, \
        counts_line(review, threshold), page, selected


def counts_line(review: dict[str, Any], threshold: float) -> str:
    """One line, one threshold: how many of all proposals score at or above it, and the decisions so far."""
    scores = [p["score"] for i in review["doc"]["images"] for p in i["proposals"]]
    above = sum(1 for score in scores if score >= threshold)
    line = (f"**{above}** of {len(scores)} proposals score ≥ {threshold:.2f} · **{len(review['accepted'])}** "
            f"accepted · {len(review['rejected'])} rejected")
    added = len(review["added"])
    return line + (f" · {added} box{'es' if added != 1 else ''} added" if added else "")


def _corners(box: list[float], scale: float) -> list[float]:
    x, y, w, h = (v * scale for v in box)
    return [x, y, x + w, y + h]


def _xyxy(box: list[float], scale: float, top: int = 0) -> dict[str, float]:
    """A box [x, y, w, h] in image pixels as the annotator's corners, on a picture `top` pixels lower."""
    x0, y0, x1, y1 = _corners(box, scale)
    return {"xmin": x0, "ymin": y0 + top, "xmax": x1, "ymax": y1 + top}


def _fit(item: dict[str, Any]) -> float:
    """Picture pixels per image pixel: the image fitted into the review panel, keeping its aspect ratio (a 320×240
    image drawn at its own size was covered by its labels, whose size is fixed in screen pixels)."""
    return min(PANEL[0] / item["width"], PANEL[1] / item["height"])


def _margin(item: dict[str, Any]) -> int:
    """White rows above the review picture: the annotator writes a box's label above it, so a box at the top edge
    keeps its id in sight, also on a phone, where the picture (with its room on the right) is drawn NARROWEST
    pixels wide."""
    widest = round(item["width"] * _fit(item)) * (1 + ROOM_RIGHT)
    return math.ceil(LABEL_HEIGHT * widest / NARROWEST)


def _room_right(boxes: list[dict[str, Any]], width: int) -> int:
    """White columns right of the review picture, so that the label the annotator writes rightwards from a box's
    top-left corner ends inside the picture even on a phone (there the whole picture is NARROWEST screen pixels
    wide: a label of L screen pixels at x fits when x + L × total / NARROWEST ≤ total); at most ROOM_RIGHT of the
    width."""
    total = float(width)
    for box in boxes:
        label = min(LABEL_CHARACTER * len(box["label"]) + LABEL_PADDING, NARROWEST // 2)
        total = max(total, box["xmin"] / (1 - label / NARROWEST))
    return min(math.ceil(total - width), math.ceil(width * ROOM_RIGHT))


def _outputs(review: dict[str, Any] | None, threshold: float, page: int, selected: float | None = None) -> tuple:
    view, rows, line, counts, page, selected = render(review, threshold, page, selected)
    return review, view, rows, line, counts, page, selected


def accept_above(review: dict[str, Any] | None, threshold: float, page: int, request: gr.Request = None) -> tuple:
    """Accept every pending proposal at or above the threshold, in all images."""
    if review:
        ids = {p["id"] for i in review["doc"]["images"] for p in i["proposals"] if p["score"] >= threshold}
        review = _persist({**review, "accepted": sorted(set(review["accepted"]) | (ids - set(review["rejected"])))},
                          request)
    return _outputs(review, threshold, page)


def decide(review: dict[str, Any] | None, proposal_id: float | None, decision: str, threshold: float,
           page: int, request: gr.Request = None) -> tuple:
    """Accept or reject one proposal by id, then select the next pending one on the image. A missing or unknown id
    is refused with the ids there are (a warning reached no API client, and int() took 2.5 for #2)."""
    if not review:
        gr.Warning("Run a completion (or load a job) first.")
        return (gr.skip(),) * 7
    known = {p["id"] for i in review["doc"]["images"] for p in i["proposals"]}
    if proposal_id is None or proposal_id not in known:
        given = "No proposal selected" if proposal_id is None else f"No proposal #{proposal_id}"
        numbered = f"the proposals are numbered {min(known)} to {max(known)}" if known else "there are no proposals"
        raise gr.Error(f"{given}: {numbered}; pick one in the table, or press n for the next one.")
    pid = int(proposal_id)
    accepted, rejected = set(review["accepted"]) - {pid}, set(review["rejected"]) - {pid}
    (accepted if decision == "accept" else rejected).add(pid)
    review = _persist({**review, "accepted": sorted(accepted), "rejected": sorted(rejected)}, request)
    return _outputs(review, threshold, page, _next_pending(review, threshold, page, pid, same_image=True))


def accept(review: dict[str, Any] | None, proposal_id: float | None, threshold: float, page: int,
           request: gr.Request = None) -> tuple:
    return decide(review, proposal_id, "accept", threshold, page, request)


def reject(review: dict[str, Any] | None, proposal_id: float | None, threshold: float, page: int,
           request: gr.Request = None) -> tuple:
    return decide(review, proposal_id, "reject", threshold, page, request)


def _next_pending(review: dict[str, Any], threshold: float, page: int, after: float | None,
                  same_image: bool = False) -> int | None:
    """The next pending proposal shown after `after` (in the table's order), on this image or the ones after it."""
    images = review["doc"]["images"]
    pages = [page] if same_image else range(page, len(images))
    order = [(n, p["id"]) for n in pages for p in _visible(images[n], review, threshold)
             if _status_of(review, p["id"]) == "pending" or p["id"] == after]
    ids = [pid for _, pid in order]
    start = ids.index(after) + 1 if after in ids else 0
    return next((pid for _, pid in order[start:] if pid != after), None)


def next_proposal(review: dict[str, Any] | None, threshold: float, page: int, selected: float | None) -> tuple:
    """Select the next pending proposal, moving to the next image that has one."""
    if not review:
        return _outputs(review, threshold, page)
    images = review["doc"]["images"]
    pid = _next_pending(review, threshold, page, selected)
    if pid is None:
        gr.Info("No pending proposal after this one at this threshold.")
        return _outputs(review, threshold, page, selected)
    page = next(n for n, item in enumerate(images) if pid in {p["id"] for p in item["proposals"]})
    return _outputs(review, threshold, page, pid)


def apply_edits(review: dict[str, Any] | None, value: dict[str, Any] | None, threshold: float, page: int,
                selected: float | None, line: str | None = None, request: gr.Request = None) -> tuple:
    """What the reviewer did in the annotator, saved: a moved, resized or relabelled proposal is accepted as
    edited; a deleted one is rejected; a box with no id is an added box (class: its label, else the proposal
    class of the image, else the set's first class). Nothing changed: nothing is sent back. The page `line` shown
    with the picture names its image: a picture of another image than the current `page` is a change that
    arrived after the page moved on (two quick renders: a reload's return to its image, a second Next), and is
    not this image's edit (its boxes would have become added boxes, and this image's proposals rejected)."""
    # nothing here may re-render the annotator: it would close the label box the reviewer is typing in
    if not review or not value or not 0 <= page < len(review["doc"]["images"]) or (
            line is not None and _image_of_line(line) != page):
        return (gr.skip(),) * 7
    item = review["doc"]["images"][page]
    scale, top = _fit(item), _margin(item)
    shown = {p["id"]: p for p in _visible(item, review, threshold)}
    here = {n for n, a in enumerate(review["added"]) if a["image"] == item["file"]}
    accepted, rejected, edited = set(review["accepted"]), set(review["rejected"]), dict(review["edited"])
    kept, new, seen = {}, [], set()
    fallback = next(iter(p["category"] for p in item["proposals"]), (review["doc"]["categories"] or ["object"])[0])
    for box in value.get("boxes") or []:
        xywh = [round(box["xmin"] / scale, 1), round((box["ymin"] - top) / scale, 1),
                round((box["xmax"] - box["xmin"]) / scale, 1), round((box["ymax"] - box["ymin"]) / scale, 1)]
        match = LABEL.match(box.get("label") or "")
        typed = (match.group(3) if match else (box.get("label") or "")).strip()
        typed = "" if SCORE.fullmatch(typed) else typed
        if match and match.group(1) == "#" and int(match.group(2)) in shown:
            pid = int(match.group(2))
            seen.add(pid)
            before, category = _current(review, shown[pid])
            moved = max(abs(a - b) * scale for a, b in zip(xywh, before, strict=True)) > 1.5  # picture pixels
            if moved or (typed and typed != category):
                edited[str(pid)] = {"box": xywh, "category": typed or category}
                accepted.add(pid)
                rejected.discard(pid)
        elif match and match.group(1) == "+" and int(match.group(2)) - 1 in here:
            kept[int(match.group(2)) - 1] = {"image": item["file"], "box": xywh, "category": typed or fallback}
        else:
            new.append({"image": item["file"], "box": xywh, "category": typed or fallback})
    for pid in shown.keys() - seen:
        accepted.discard(pid)
        rejected.add(pid)
    added = [kept.get(n, a) for n, a in enumerate(review["added"]) if n not in here or n in kept] + new
    changed = {**review, "accepted": sorted(accepted), "rejected": sorted(rejected), "edited": edited,
               "added": added}
    if {k: changed[k] for k in DECISIONS} == {k: review[k] for k in DECISIONS}:
        return (gr.skip(),) * 7
    review, _, rows, line, counts, page, selected = _outputs(_persist(changed, request), threshold, page, selected)
    return review, gr.skip(), rows, line, counts, page, selected  # the picture as the reviewer left it (a label
    # being typed in the annotator stays open); its colours follow at the next image, decision or threshold


def _image_of_line(line: str) -> int | None:
    """The page of the image a page line (`render`'s "Image 2 of 5: …") names."""
    match = PAGE_LINE.match(line)
    return int(match.group(1)) - 1 if match else None


def refilter(review: dict[str, Any] | None, threshold: float, page: int, selected: float | None) -> tuple:
    """The proposals already computed, at a new threshold. With none yet nothing changes: a threshold restored
    on a reload must not blank the review its job's stream brings a moment later."""
    return _outputs(review, threshold, page, selected) if review else (gr.skip(),) * 7


def clear_decisions(review: dict[str, Any] | None, threshold: float, page: int, request: gr.Request = None) -> tuple:
    if review:
        review = _persist({**review, **reviews.decisions(())}, request)
    return _outputs(review, threshold, page)


def export(review: dict[str, Any] | None, request: gr.Request = None) -> list[str]:
    """Existing boxes plus the accepted (as edited) and added ones, as COCO JSON, a YOLO zip and a VOC zip."""
    if not review:
        raise gr.Error("Nothing to export yet: run a completion first.")
    owner = owner_of(request)
    paths = client.add_outputs(review["job"], lambda out_dir: reviews.save_review(
        out_dir, _proposals(review["job"]), *(review[key] for key in DECISIONS)), owner)
    return [hand_out(p, owner, job_id=review["job"]) for p in paths if p.name != reviews.REVIEW_FILE]


def pick_row(rows: Any, event: gr.SelectData) -> float | None:
    """Clicking a row of the proposal table selects its id."""
    row = event.index[0]
    return float(rows.iloc[row, 0]) if hasattr(rows, "iloc") else float(rows[row][0])


def load_job(job_id: str, threshold: float, request: gr.Request = None) -> tuple:
    """Review a finished completion job by id (e.g. one opened from the Jobs tab), with the decisions saved so far."""
    try:
        job = client.get((job_id or "").strip(), owner_of(request))
    except JobNotFound as exc:
        raise gr.Error(str(exc)) from None
    if job.tool not in ("completion", "completion_evaluate") or job.status is not Status.SUCCEEDED:
        raise gr.Error(f"Job {job.id[:8]} is a {job.status.value} {job.tool} job; only finished completion jobs "
                       "can be reviewed.")
    return (status_markdown(job), *_outputs(_review(job.id), threshold, 0))


def image_in_address(value: str | None, count: int) -> int:
    """The page of the image the address names (`?image=3`: the third of `count`); 0 (the first) for anything but
    a whole number from 1 to `count`."""
    value = (value or "").strip()
    if not re.fullmatch(r"[0-9]{1,6}", value) or not 1 <= int(value) <= count:
        return 0
    return int(value) - 1


def open_image_in_address(review: dict[str, Any] | None, threshold: float, selected: float | None,
                          request: gr.Request = None) -> tuple:
    """After a reload has brought the review back (at its first image), show the image the address names: the one
    the reviewer was at."""
    params = getattr(request, "query_params", None) or {}
    page = image_in_address(params.get(reattach.IMAGE_PARAM), len(review["doc"]["images"])) if review else 0
    return _outputs(review, threshold, page) if page else (gr.skip(),) * 7


def shown_image(page: int) -> int:
    """The image under review as the address counts it (from 1)."""
    return page + 1


# -- drawn boxes ----------------------------------------------------------------------------------
def drawing_choices(files: list[str] | None, video: str | None) -> Any:
    names = [Path(f).name for f in files or [] if Path(f).suffix.lower() != ".zip"]
    if video:
        names.append("frame_000000_0.00s.png")
    return gr.Dropdown(choices=names, value=names[0] if names else None)


def drawing_background(name: str | None, files: list[str] | None, video: str | None,
                       drawn: list[dict[str, Any]], request: gr.Request = None) -> Any:
    """The chosen image (or the video's first frame, decoded by a worker) to draw on, with the boxes already
    drawn on it."""
    if not name:
        return None
    if video and name.startswith("frame_000000"):
        return {"image": video_frame(video, 0, request), "boxes": _drawn_boxes(name, drawn)}
    path = next((f for f in files or [] if Path(f).name == name), None)
    if path is None:
        return None
    try:  # decoded as the job decodes it: accepted formats, at most FEWSHOT_MAX_IMAGE_PIXELS, upright
        picture = load_image(path, display_name=name)
    except ValueError as exc:  # UserInputError: not a readable image
        raise gr.Error(str(exc)) from None
    return {"image": picture, "boxes": _drawn_boxes(name, drawn)}


def _drawn_boxes(name: str, drawn: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**_xyxy(d["box"], 1.0), "label": d["category"], "color": RGB["accepted"]} for d in drawn
            if d["image"] == name]


def add_drawn_box(value: dict[str, Any] | None, image_name: str | None, category: str,
                  drawn: list[dict[str, Any]]) -> tuple[Any, str, Any, str]:
    """The rectangles on the image become its drawn boxes (a box keeps the class typed on it, else the Class
    field's). A problem is a message beside the button: the picture and its rectangles stay as they are."""
    boxes = (value or {}).get("boxes") or []
    problem = ("Choose an image to draw on first." if not value or not image_name else
               "Nothing is drawn: drag a rectangle around one object, then press Add box." if not boxes else
               "Name the class of the drawn object (e.g. 'capacitor')." if not category.strip() and
               any(not (b.get("label") or "").strip() for b in boxes) else "")
    if problem:
        return gr.skip(), gr.skip(), gr.skip(), f"⚠️ {text(problem)}"
    mine = [{"image": image_name, "category": (b.get("label") or "").strip() or category.strip(),
             "box": [b["xmin"], b["ymin"], b["xmax"] - b["xmin"], b["ymax"] - b["ymin"]]} for b in boxes]
    drawn = [d for d in drawn if d["image"] != image_name] + mine
    return (drawn, _drawn_markdown(drawn), {"image": value["image"], "boxes": _drawn_boxes(image_name, drawn)},
            f"{len(mine)} box{'es' if len(mine) != 1 else ''} on {code(image_name)}.")


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
        params["video_stride"] = stride  # as given: the contract refuses 2.5, which int() made 2
    job = submit("completion", params, {"images": images or [], "annotations": annotations or [],
                                        "video": [video] if video else []}, request)
    yield from follow_completion(job, progress, threshold)


def follow_completion(job: Job, progress: gr.Progress, threshold: float | None = None) -> Iterator:
    """Follow a completion job; when it ends, open its proposals, with the decisions saved so far, for review
    (at `threshold`, else the job's own)."""
    empty = (None, None, [], "", "", 0, None)
    for job in follow(job, progress):  # noqa: B020 - the last record is the final one
        if job.status is Status.SUCCEEDED:
            at = job.result["score_threshold"] if threshold is None else threshold
            yield job.id, status_line(job), *_outputs(_review(job.id), at, 0)
        else:
            yield job.id, status_line(job), *empty


def status_line(job: Job) -> str:
    """The tab's status: where the job stands; for a finished one, what it found."""
    return _done_markdown(job) if job.status is Status.SUCCEEDED else status_markdown(job)


def submitted_form(job: Job) -> list[Any]:
    """What the form held when `job` was submitted (restored on a reload): images, annotations, video and its
    stride, the boxes drawn (and their list), the model (an OWLv2 preset or a saved detector), threshold and the
    text query option."""
    params = contract("completion").Params.from_dict(job.params)
    drawn = params.drawn()
    reattach.warn_unrestored("completion", job.params, ("video_stride", "drawn_boxes", "preset", "detector_model",
                                                        "score_threshold", "text_queries"))
    return [job_inputs(job, "images") or None, job_inputs(job, "annotations") or None,
            next(iter(job_inputs(job, "video")), None), params.video_stride, drawn, _drawn_markdown(drawn),
            f"{DETECTOR}{params.detector_model}" if params.detector_model else params.preset,
            params.score_threshold, params.text_queries]


def _done_markdown(job: Job) -> str:
    result = job.result
    line = (f"{status_markdown(job)}\n\n{result['images']} images · {result['existing_boxes']} existing boxes "
            f"({result['exemplars']} exemplars) · {result['proposals']} proposals, "
            f"{result['proposals_above_threshold']} of them score ≥ {result['score_threshold']:.2f} "
            "(the job's threshold)")
    if result.get("detector"):
        line += f" · fine-tuned detector **{text(result['detector'])}**"
    if result.get("random_weights"):
        line += " · ⚠️ random weights: the proposals only test the plumbing"
    line += notes_markdown(result)
    return line + skipped_markdown(result.get("skipped") or [], rest_in="all in proposals.json")


def result_views(job: Job) -> tuple[list[tuple[str, str]], list[list[Any]] | dict[str, Any], list[str]]:
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
    return gallery, fixed_decimals(rows), files


def metric_rows(job: Job) -> list[list[Any]] | dict[str, Any]:
    if job.status is not Status.SUCCEEDED:
        return []
    metrics = job.result["metrics"]
    rows = [*metrics["per_class"].items(), ("all", metrics["overall"])]
    return fixed_decimals([[name, m["hidden"], m["found"], m["proposals"], m["recall"], m["precision"]]
                           for name, m in rows])


def evaluation_views(job: Job) -> tuple[list[tuple[str, str]], list[list[Any]] | dict[str, Any], list[str]]:
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
                    f"{report['seed']}); IoU 0.5; proposals scoring ≥ {threshold:.2f}.{notes_markdown(report)}")
            curve = fixed_decimals([[c["score_threshold"], c["recall"], c["precision"], c["proposals"]]
                                    for c in report["curve"]])
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
                stride = controls.number("completion", "video_stride", elem_id="completion-stride")
            with gr.Row():
                preset = preset_dropdown("completion", "completion-preset", refresh=refresh_engines,
                                         allow_custom_value=True, scale=4)  # + the user's detectors (added on load)
                refresh_button = gr.Button("↻ Models", size="sm", scale=1, elem_id="completion-refresh-models")
            weights_notice("completion", preset)
            threshold = controls.slider("completion", "score_threshold", step=0.01, elem_id="completion-threshold")
            text_queries = controls.checkbox("completion", "text_queries")
            samples.completion(images, annotations, preset)
            run_button, cancel_button = run_buttons("Complete", "completion-run", "completion-cancel")
        with gr.Column(scale=1), gr.Accordion("Draw boxes (when there are no annotations, or to add some)",
                                              open=False):
                draw_on = gr.Dropdown(label="Image to draw on", choices=[], elem_id="completion-draw-on")
                editor = image_annotator(label="Drag a rectangle around each object (c: draw, d: move), then Add box",
                                         image_type="filepath", sources=[], height=420, box_thickness=3,
                                         handle_size=10, boxes_alpha=0.12, show_clear_button=False,
                                         show_remove_button=True, show_download_button=False,
                                         elem_id="completion-editor")
                with gr.Row():
                    draw_class = gr.Textbox(label="Class", placeholder="e.g. capacitor", elem_id="completion-class")
                    add_button = gr.Button("Add box", elem_id="completion-add-box")
                draw_message = gr.Markdown(elem_id="completion-draw-message")
                drawn_list = gr.Markdown("No drawn boxes.", elem_id="completion-drawn")
    status = gr.Markdown("Upload a set and press Complete.", elem_id="completion-status")
    with gr.Column(elem_id="completion-review"):
        gr.Markdown("#### Review")
        counts = gr.Markdown(elem_id="completion-counts")
        with gr.Row():
            previous_button = gr.Button("◀ Previous image", elem_id="completion-prev")
            page_line = gr.Markdown(elem_id="completion-page")
            next_button = gr.Button("Next image ▶", elem_id="completion-next")
        gr.Markdown(SHORTCUTS, elem_id="completion-shortcuts")
        with gr.Row(equal_height=True):
            proposal = gr.Number(label="Proposal #", min_width=100, elem_id="completion-proposal")
            accept_button = gr.Button("Accept (a)", elem_id="completion-accept")
            reject_button = gr.Button("Reject (r)", elem_id="completion-reject")
            next_proposal_button = gr.Button("Next proposal (n)", elem_id="completion-next-proposal")
            accept_all = gr.Button("Accept all ≥ threshold", variant="primary", elem_id="completion-accept-all")
            clear_button = gr.Button("Clear decisions")
        gr.Markdown("Boxes: <span style='color:#ff8800'>■ proposed</span> · <span style='color:#2266ff'>■ accepted "
                    "or added</span> · <span style='color:#969696'>■ rejected</span> · <span style='color:#22aa44'>"
                    "■ existing</span> (fixed)", elem_id="completion-legend")
        view = image_annotator(
            label="Review", show_label=False, image_type="filepath", sources=[], interactive=True, height=640,
            box_thickness=3, box_selected_thickness=5, handle_size=5, boxes_alpha=0.12, show_clear_button=False,
            show_remove_button=True, show_download_button=False, elem_id="completion-view")
        with gr.Row():
            table = gr.Dataframe(headers=PROPOSAL_HEADERS, label="Proposals on this image (click a row)",
                                 interactive=False, max_height=300, scale=3, elem_id="completion-proposals")
            with gr.Column(scale=2):
                export_button = gr.Button("Export accepted (COCO, YOLO, VOC)", variant="primary",
                                          elem_id="completion-export")
                downloads = gr.File(label="Exports", file_count="multiple", interactive=False,
                                    elem_id="completion-exports")
                with gr.Row():
                    load_id = gr.Textbox(label="Review an earlier job (id)", scale=3, elem_id="completion-load-id")
                    load_button = gr.Button("Load", scale=1, elem_id="completion-load")

    review_out = [review, view, table, page_line, counts, page, proposal]
    # a run's progress and refusal show on its status line: an "Error" badge would cover the review on screen
    reattached = reattach.follow_on_load(job_id, ("completion",), follow_completion, [job_id, status, *review_out],
                                         buttons=[run_button], show_progress_on=[status])
    reattached.then(open_image_in_address, [review, threshold, proposal], review_out, api_visibility="private",
                    show_progress="hidden")
    image_box = gr.Number(visible=False)  # each image shown goes in the page's address, for a reload
    page.change(shown_image, page, image_box, api_visibility="private", show_progress="hidden")
    image_box.change(None, image_box, None, js=SET_IMAGE_JS, api_visibility="private", show_progress="hidden")
    reattach.restore_on_load(("completion",), submitted_form, [images, annotations, video, stride, drawn, drawn_list,
                                                               preset, threshold, text_queries])
    refresh_button.click(refresh_engines, None, preset, api_visibility="private")
    images.change(drawing_choices, [images, video], draw_on, api_visibility="private")
    video.change(drawing_choices, [images, video], draw_on, api_visibility="private")
    draw_on.change(drawing_background, [draw_on, images, video, drawn], editor, api_visibility="private")
    add_button.click(add_drawn_box, [editor, draw_on, draw_class, drawn], [drawn, drawn_list, editor, draw_message],
                     api_visibility="private")
    one_job_per_click(run_button, run, [images, annotations, video, stride, drawn, preset, threshold, text_queries],
                      [job_id, status, *review_out], api_name="completion", concurrency_limit=None,
                      show_progress_on=[status])
    wire_cancel(cancel_button, job_id, status, "cancel_completion", status_line)
    threshold.change(refilter, [review, threshold, page, proposal], review_out, api_name="completion_filter",
                     show_progress="hidden")
    previous_button.click(lambda r, t, p: _outputs(r, t, p - 1), [review, threshold, page], review_out,
                          api_name="completion_previous")
    next_button.click(lambda r, t, p: _outputs(r, t, p + 1), [review, threshold, page], review_out,
                      api_name="completion_next")
    next_proposal_button.click(next_proposal, [review, threshold, page, proposal], review_out,
                               api_name="completion_next_proposal")
    view.change(apply_edits, [review, view, threshold, page, proposal, page_line], review_out, api_visibility="private",
                show_progress="hidden", trigger_mode="always_last")
    table.select(pick_row, [table], proposal, api_visibility="private").then(  # mark it on the picture
        _outputs, [review, threshold, page, proposal], review_out, api_visibility="private", show_progress="hidden")
    proposal.input(_outputs, [review, threshold, page, proposal], review_out, api_visibility="private",
                   show_progress="hidden")
    accept_button.click(accept, [review, proposal, threshold, page], review_out, api_name="completion_accept")
    reject_button.click(reject, [review, proposal, threshold, page], review_out, api_name="completion_reject")
    accept_all.click(accept_above, [review, threshold, page], review_out, api_name="completion_accept_above")
    clear_button.click(clear_decisions, [review, threshold, page], review_out, api_name="completion_clear")
    export_button.click(export, [review], downloads, api_name="completion_export")
    load_button.click(load_job, [load_id, threshold], [status, *review_out], api_name="completion_load",
                      show_progress_on=status)  # a refused id leaves the review on screen usable

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
                seed = controls.number("completion_evaluate", "seed")
                eval_threshold = controls.slider("completion_evaluate", "score_threshold", step=0.01)
                eval_preset = preset_dropdown("completion", "completion-eval-preset", refresh=refresh_engines,
                                              allow_custom_value=True)
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
    one_job_per_click(eval_button, run_evaluation,
                      [eval_images, eval_annotations, fraction, seed, eval_threshold, eval_preset],
                      [eval_status, metrics, curve, report_files], api_name="evaluate_completion",
                      concurrency_limit=None)
