"""A reload with a job in the address shows the form that job was submitted with: its input files (copies served
to its owner only, under the names the user gave them) and every setting, so one change runs it again."""

from __future__ import annotations

import io
import json
import uuid
import warnings
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest
from PIL import Image

from tasks.jobs import Job, Status
from tasks.registry import contract
from tasks.store import finish_job, get_store
from webapp import anomaly_tab, completion_tab, insertion_tab, reattach, serving


def stored_job(tmp_path: Path, tool: str, params: dict, roles: dict[str, list[str]], owner: str,
               contents: dict[str, bytes] | None = None) -> Job:
    files = {}
    for role, names in roles.items():
        files[role] = []
        for name in names:
            path = tmp_path / uuid.uuid4().hex / name
            path.parent.mkdir()
            path.write_bytes((contents or {}).get(name, name.encode() * 50))
            files[role].append((name, path))
    return get_store().create(tool, contract(tool).Params.from_dict(params).to_dict(), files, owner=owner)


def test_a_video_inspection_restores_its_files_and_every_setting(tmp_path):
    owner = f"alice-{uuid.uuid4().hex[:6]}"
    params = {"object_name": "metal plate", "preset": "musc-tiny", "threshold": 0.42, "fps": 2.5,
              "mask_background": True}
    job = stored_job(tmp_path, "anomaly_video", params, {"video": ["line 1.mp4"], "references": ["good ü.png"]},
                     owner)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # everything the page sets comes back: nothing to warn of
        (images, video, references, reference_set, object_name, preset, mode, value, mask, rotate, sampling,
         every) = anomaly_tab.submitted_form(job)
    assert isinstance(images, type(gr.skip()))  # the Images section keeps what it has
    assert Path(video).name == "line 1.mp4" and [Path(p).name for p in references] == ["good ü.png"]
    assert Path(video).read_bytes() == b"line 1.mp4" * 50
    assert reference_set is None  # a saved set's images are among the references, as the job stored them
    assert (object_name, preset, mode, value, mask, rotate) == ("metal plate", "musc-tiny", "Set it myself", 0.42,
                                                               True, False)
    assert (sampling, every) == ("Frames per second", 2.5)
    assert serving.may_read(video, owner) and not serving.may_read(video, "bob")


def test_an_image_inspection_restores_its_rule_and_leaves_the_video_section(tmp_path):
    owner = f"alice-{uuid.uuid4().hex[:6]}"
    job = stored_job(tmp_path, "anomaly", {"object_name": "screw", "threshold": "calibrate", "batch_size": 4},
                     {"images": ["a.png", "b.zip"]}, owner)
    with pytest.warns(UserWarning, match=r"which a new run takes as their defaults: Batch size: 4\.$"):  # API only
        form = anomaly_tab.submitted_form(job)
    assert [Path(p).name for p in form[0]] == ["a.png", "b.zip"]
    assert isinstance(form[1], type(gr.skip())) and form[2] is None  # no good parts: an empty box
    assert form[4:7] == ["screw", "winclip-vit-b-16-plus-240", "Calibrate from the good parts"]
    assert all(serving.may_read(p, owner) and not serving.may_read(p, "bob") for p in form[0])


def picture(name: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 72), "white").save(buffer, format=Path(name).suffix[1:].replace("jpg", "jpeg"))
    return buffer.getvalue()


def test_a_completion_restores_its_set_drawn_boxes_detector_and_settings(tmp_path):
    owner = f"alice-{uuid.uuid4().hex[:6]}"
    drawn = [{"image": "tray ü.png", "box": [4, 5, 20, 30], "category": "hex nut"}]
    params = {"detector_model": "my parts", "score_threshold": 0.55, "text_queries": False, "video_stride": 7,
              "drawn_boxes": json.dumps(drawn)}  # as the API may send them
    job = stored_job(tmp_path, "completion", params, {"images": ["tray ü.png", "more.zip"],
                                                       "annotations": ["boxes.json"]}, owner)
    images, annotations, video, stride, boxes, listed, engine, threshold, text_queries = \
        completion_tab.submitted_form(job)
    assert [Path(p).name for p in images] == ["tray ü.png", "more.zip"]
    assert [Path(p).name for p in annotations] == ["boxes.json"] and video is None
    assert Path(annotations[0]).read_bytes() == b"boxes.json" * 50
    assert (stride, boxes, engine, threshold, text_queries) == (7, drawn, "detector:my parts", 0.55, False)
    assert "hex nut" in listed and "tray ü.png" in listed
    assert all(serving.may_read(p, owner) and not serving.may_read(p, "bob") for p in [*images, *annotations])


def test_a_video_completion_restores_its_video_and_an_owlv2_model(tmp_path):
    owner = f"alice-{uuid.uuid4().hex[:6]}"
    params = {"preset": "completion-tiny", "text_queries": True}  # text queries are OWLv2's: not with a detector
    job = stored_job(tmp_path, "completion", params, {"video": ["line 2.mp4"]}, owner)
    images, annotations, video, stride, boxes, listed, engine, _, text_queries = completion_tab.submitted_form(job)
    assert images is None and annotations is None and Path(video).name == "line 2.mp4"
    assert (stride, boxes, listed, engine, text_queries) == (30, [], "No drawn boxes.", "completion-tiny", True)
    assert serving.may_read(video, owner) and not serving.may_read(video, "bob")


def test_an_image_insertion_restores_its_picture_box_and_settings(tmp_path):
    owner = f"alice-{uuid.uuid4().hex[:6]}"
    params = {"prompt": "a red ball", "negative_prompt": "blurry", "mode": "replace", "seed": 9, "variants": 3,
              "steps": 4, "guidance": 5.5, "strength": 0.8, "box": "20,10,60.5,50"}
    job = stored_job(tmp_path, "insertion", params, {"image": ["desk ü.png"]}, owner,
                     contents={"desk ü.png": picture("desk ü.png")})
    image, box, shown, note, *settings = insertion_tab.submitted_image(job)  # the page shows `image` in the editor
    assert Path(image).name == "desk ü.png"
    assert serving.may_read(image, owner) and not serving.may_read(image, "bob")
    assert box == "20,10,60.5,50" and note == ""
    assert shown.visible and shown.value is not None  # the box drawn on the picture, as after Enter
    assert settings == ["a red ball", "blurry", "replace", job.params["preset"], 9, 3, 4, 5.5, 0.8]


def layer(painted: bool) -> bytes:
    """An editor's layer: transparent, with a stroke or not."""
    image = Image.new("RGBA", (96, 72), (0, 0, 0, 0))
    if painted:
        image.paste((255, 0, 255, 255), (10, 10, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, format="png")
    return buffer.getvalue()


def test_a_painted_region_is_not_put_back_and_a_warning_says_so(tmp_path):
    owner = f"alice-{uuid.uuid4().hex[:6]}"
    job = stored_job(tmp_path, "insertion", {"prompt": "a cup"},
                     {"image": ["desk.png"], "mask": ["blank.png", "stroke.png"]}, owner,
                     contents={"desk.png": picture("desk.png"), "blank.png": layer(False), "stroke.png": layer(True)})
    finish_job(get_store(), job.id, Status.SUCCEEDED, "Done", result={"painted": True})  # as its run found
    job = get_store().read(job.id)
    with pytest.warns(UserWarning, match=r"Not restored: the region painted on the picture \(paint it again, or type "
                                         r"a box\)\.$"):
        image, box, shown, note, *_ = insertion_tab.submitted_image(job)
    # the picture alone (no layer: the page shows it in an empty editor), nothing the run would not use
    assert Path(image).name == "desk.png" and box == note == "" and not shown.visible


def test_a_blank_layer_beside_a_typed_box_is_no_painted_region(tmp_path):
    owner = f"alice-{uuid.uuid4().hex[:6]}"
    job = stored_job(tmp_path, "insertion", {"prompt": "a cup", "box": "1,1,9,9"},
                     {"image": ["desk.png"], "mask": ["blank.png"]}, owner,
                     contents={"desk.png": picture("desk.png"), "blank.png": layer(False)})
    finish_job(get_store(), job.id, Status.SUCCEEDED, "Done", result={"painted": False})
    job = get_store().read(job.id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: the editor sends its blank layer with every image job
        assert insertion_tab.submitted_image(job)[1] == "1,1,9,9"


def test_a_video_insertion_restores_its_video_region_and_masks(tmp_path):
    owner = f"alice-{uuid.uuid4().hex[:6]}"
    params = {"prompt": "a red ball", "anchor_frame": 3, "region_mode": "masks", "steps": 2, "seed": 4}
    job = stored_job(tmp_path, "insertion", params, {"video": ["clip 1.mp4"], "masks": ["m0.png", "m1.png"]}, owner)
    video, anchor, region_mode, box, keyframes, masks, *settings = insertion_tab.submitted_video(job)
    assert Path(video).name == "clip 1.mp4" and [Path(p).name for p in masks] == ["m0.png", "m1.png"]
    assert (anchor, region_mode, box, keyframes) == (3, "masks", "", "")
    assert settings == ["a red ball", "", "insert", job.params["preset"], 4, 2, 7.5, 1.0]  # no variants in a video
    assert all(serving.may_read(p, owner) and not serving.may_read(p, "bob") for p in [video, *masks])


def test_each_insertion_section_restores_only_its_own_kind_of_job(tmp_path):
    owner = f"alice-{uuid.uuid4().hex[:6]}"
    image_job = stored_job(tmp_path, "insertion", {"prompt": "a cup", "box": "1,1,9,9"}, {"image": ["a.png"]},
                           owner)
    video_job = stored_job(tmp_path, "insertion", {"prompt": "a cup", "box": "1,1,9,9"}, {"video": ["b.mp4"]},
                           owner)
    with gr.Blocks() as demo:
        image_box, video_box = gr.Textbox(), gr.Textbox()
        reattach.restore_on_load(("insertion",), lambda job: ["image"], [image_box],
                                 accepts=lambda job: not insertion_tab.is_video_job(job))
        reattach.restore_on_load(("insertion",), lambda job: ["video"], [video_box], accepts=insertion_tab.is_video_job)
    image_fill, video_fill = (block.fn for block in demo.fns.values())

    def opened(job: Job, user: str = owner) -> SimpleNamespace:
        return SimpleNamespace(query_params={"job": job.id}, username=user)

    assert image_fill(opened(image_job)) == ["image"] and video_fill(opened(video_job)) == ["video"]
    assert isinstance(image_fill(opened(video_job))[0], type(gr.skip()))  # the other section keeps what it has
    assert isinstance(video_fill(opened(image_job))[0], type(gr.skip()))
    assert isinstance(image_fill(opened(image_job, "bob"))[0], type(gr.skip()))  # nobody else's job fills a form


def test_settings_only_the_api_sets_are_named_in_a_warning_not_dropped_unseen(tmp_path):
    """A completion or insertion job made through the API with settings the page has no control for: the restored
    form says which (by label and value), since a rerun from the page takes their defaults; a job made in the page
    restores without a word."""
    owner = f"alice-{uuid.uuid4().hex[:6]}"
    completion = stored_job(tmp_path, "completion", {"nms_iou": 0.45, "score_threshold": 0.4}, {"images": ["a.png"]},
                            owner)
    with pytest.warns(UserWarning, match=r"Not restored: settings made outside this form, which a new run takes as "
                                         r"their defaults: Overlap between proposals \(NMS IoU\): 0\.45\.$") as told:
        completion_tab.submitted_form(completion)
    assert "Score threshold" not in str(told[0].message)  # it has its control: restored, not named
    insertion = stored_job(tmp_path, "insertion", {"prompt": "a cup", "box": "1,1,9,9", "feather": 12},
                           {"image": ["desk.png"]}, owner, contents={"desk.png": picture("desk.png")})
    with pytest.warns(UserWarning, match=r"defaults: Soft edge \(pixels\): 12\.$"):
        insertion_tab.submitted_image(insertion)
    plain = stored_job(tmp_path, "insertion", {"prompt": "a cup", "box": "1,1,9,9", "steps": 3, "variants": 2},
                       {"image": ["desk.png"]}, owner, contents={"desk.png": picture("desk.png")})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        insertion_tab.submitted_image(plain)
