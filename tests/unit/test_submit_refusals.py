"""Runs that cannot succeed are refused at submit, before anything is stored (tasks.client.submit, as the page, the
API and `python -m tasks` reach it): a model whose weights are missing on a machine that downloads none, in every
tool with a model choice and under a saved model, and a box that marks no pixel of the image or of any frame."""

from __future__ import annotations

import fcntl
import json
import uuid
from pathlib import Path

import pytest
from PIL import Image

from engine.errors import UserInputError
from engine.presets import PRESETS, demo_for, get_preset
from engine.weights import check_runnable, models_dir
from tasks import client, finetune_models
from tasks.registry import contract
from tasks.store import get_store
from webapp.model_choice import weights_notice_html

REAL = [preset for preset in PRESETS.values() if not preset.random_weights]  # not installed where the tests run


@pytest.fixture
def picture(tmp_path) -> Path:
    Image.new("RGB", (64, 48), (90, 90, 90)).save(tmp_path / "part.png")
    return tmp_path / "part.png"


def stored_jobs() -> int:
    return len(list(get_store().jobs_dir.iterdir()))


def refusal(tool: str, params: dict, files: dict, owner: str | None = None) -> str:
    """The message of a refused submit, checked to have stored nothing."""
    before = stored_jobs()
    with pytest.raises(UserInputError) as refused:
        client.submit(tool, params, files, owner=owner)
    assert stored_jobs() == before
    return str(refused.value)


def assert_names_the_fix(message: str, preset: str) -> None:
    real, demo = get_preset(preset), demo_for(get_preset(preset))
    assert f"The weights of the model “{real.label}” ({real.name}) are not installed on this machine" in message
    assert f"pick the demo model “{demo.label}” ({demo.name})" in message and "make weights" in message
    assert str(models_dir()) not in message and "Traceback" not in message


@pytest.mark.parametrize(("tool", "params", "roles", "preset"), [
    ("anomaly", {"object_name": "plate"}, ("images",), "winclip-vit-b-16-plus-240"),
    ("anomaly", {"object_name": "plate", "method": "musc"}, ("images",), "musc-vit-l-14-336"),
    ("anomaly_video", {"object_name": "plate", "preset": "anomalydino-dinov2-small"}, ("video", "references"),
     "anomalydino-dinov2-small"),
    ("anomaly_evaluate", {"object_name": "plate", "methods": "winclip-tiny,musc"}, ("dataset",), "musc-vit-l-14-336"),
    ("completion", {}, ("images",), "completion-owlv2-base"),
    ("completion_evaluate", {"preset": "completion-owlv2-base"}, ("images",), "completion-owlv2-base"),
    ("insertion", {"prompt": "a red ball", "box": "1,1,20,20"}, ("image",), "insertion-sd15-controlnet-inpaint"),
    ("finetune_classify", {"model_name": "parts"}, ("dataset",), "finetune-clip-vit-b-32"),
    ("finetune_detect", {"model_name": "trays", "preset": "detection-rtdetr-r18"}, ("dataset",),
     "detection-rtdetr-r18"),
    ("finetune_kshot", {"task": "detect", "training": {"preset": "detection-rtdetr-r18"}}, ("dataset",),
     "detection-rtdetr-r18"),
])
def test_a_model_whose_weights_are_missing_offline_is_refused_with_the_fix(picture, tool, params, roles, preset):
    message = refusal(tool, params, {role: [picture] for role in roles})
    assert_names_the_fix(message, preset)


def save_model(owner: str, name: str, meta: dict, tmp_path: Path) -> None:
    """A saved model as a training or an upload leaves it (model.json is all a submit reads)."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps({"format_version": 1, "name": name, "classes": ["nut", "bolt"],
                                                   "created_at": 0, **meta}))
    finetune_models.save(name, folder, owner=owner)


def test_a_saved_model_built_on_missing_weights_is_refused_for_prediction_and_completion(picture, tmp_path):
    owner = f"ann-{uuid.uuid4().hex[:6]}"
    save_model(owner, "imported", {"task": "classify", "base_preset": "finetune-clip-vit-b-32", "logit_scale": 100.0},
               tmp_path)
    save_model(owner, "trays", {"task": "detect", "base_preset": "detection-rtdetr-r18", "input": {}}, tmp_path)
    assert_names_the_fix(refusal("finetune_predict", {"model": "imported"}, {"images": [picture]}, owner),
                         "finetune-clip-vit-b-32")
    assert_names_the_fix(refusal("completion", {"detector_model": "trays"}, {"images": [picture]}, owner),
                         "detection-rtdetr-r18")


@pytest.mark.parametrize("preset", REAL, ids=lambda preset: preset.name)
def test_the_refusal_advises_the_demo_model_the_notice_advises(preset):
    with pytest.raises(UserInputError) as refused:
        check_runnable(preset)
    demo = demo_for(preset)
    assert demo is not None and demo.random_weights and demo.tool == preset.tool
    assert f"pick the demo model “{demo.label}”" in weights_notice_html(preset.tool, preset.name)
    assert f"pick the demo model “{demo.label}”" in str(refused.value)


def test_missing_weights_are_no_refusal_where_a_job_may_download_them(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    check_runnable(get_preset("winclip-vit-b-16-plus-240"))  # the job downloads them first
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    check_runnable(get_preset("winclip-tiny"))  # random weights: built here


INSERT = {"prompt": "a red ball", "preset": "insertion-tiny"}


@pytest.mark.parametrize(("params", "expected"), [
    ({"box": "500,500,600,600"}, "The box (500.0, 500.0, 600.0, 600.0) covers no pixel of the 64 x 48 image."),
    ({"box": "-40,-40,-5,-5"}, "covers no pixel of the 64 x 48 image"),
    ({"box": "10,10,10,40"}, "covers no pixel of the 64 x 48 image"),
])
def test_a_box_that_marks_no_pixel_of_the_image_is_refused(picture, params, expected):
    assert expected in refusal("insertion", {**INSERT, **params}, {"image": [picture]})


@pytest.mark.parametrize(("params", "expected"), [
    ({"box": "10,10,10,40"}, "The box (10.0, 10.0, 10.0, 40.0) covers no pixel of the image."),
    ({"box": "-40,-40,-5,-5"}, "covers no pixel of the image"),
    ({"region_mode": "interpolate", "keyframes": "0 10,10,40,40"}, "Keyframe line '0 10,10,40,40': write"),
    ({"region_mode": "interpolate", "keyframes": "0: 10,10,10,40"}, "box of keyframe 0"),
    ({"region_mode": "interpolate", "box": "1,1,20,20"}, "Interpolated boxes need at least one keyframe"),
])
def test_a_video_region_that_marks_no_pixel_of_any_frame_is_refused_before_a_frame_is_read(tmp_path, params,
                                                                                              expected):
    video = tmp_path / "clip.mkv"
    video.write_bytes(b"not read at submit")  # its frames are decoded by the job only
    assert expected in refusal("insertion", {**INSERT, **params}, {"video": [video]})


@pytest.mark.parametrize(("files", "params", "expected"), [
    ({"image": 1}, {}, "Mark the region in the image: draw over it, upload a mask, or give a box x0,y0,x1,y1."),
    ({"video": 1}, {}, "Mark the region in the anchor frame 0: draw over it, upload a mask, or give a box"),
    ({"video": 1}, {"region_mode": "masks"}, "Per-frame masks: upload one mask image per frame"),
    ({"image": 3}, {"box": "1,1,20,20"}, "Upload one image or one video to insert the object into (given: 3 images)"),
    ({"image": 1, "video": 1}, {"box": "1,1,20,20"}, "(given: 1 image and 1 video); insert into each of several"),
    ({}, {"box": "1,1,20,20"}, "Upload one image or one video to insert the object into (given: none)"),
])
def test_an_insertion_without_one_picture_or_a_marked_region_is_refused(picture, tmp_path, files, params, expected):
    """Each was submitted and its job failed at once, leaving a failed record."""
    video = tmp_path / "clip.mkv"
    video.write_bytes(b"not read at submit")
    given = {role: [picture if role == "image" else video] * count for role, count in files.items()}
    assert expected in refusal("insertion", {**INSERT, **params}, given)


@pytest.mark.parametrize(("params", "files"), [({}, {"mask": 1}), ({"box": "1,1,20,20"}, {}),
                                               ({"region_mode": "masks"}, {"masks": 2}),
                                               ({"region_mode": "interpolate", "keyframes": "0: 1,1,9,9"}, {})])
def test_a_drawn_mask_a_box_per_frame_masks_or_keyframes_mark_the_region(picture, params, files):
    source = {"video" if params.get("region_mode") else "image": [("part.png", picture)]}
    contract("insertion").Params.from_dict({**INSERT, **params}).check_inputs(
        {**source, **{role: [("part.png", picture)] * count for role, count in files.items()}})


def test_a_saved_model_the_user_cannot_use_is_refused_as_one_that_does_not_exist(picture, tmp_path):
    """Prediction and completion with it were submitted and failed at once; another user's private model must read
    exactly like a missing one."""
    tag = uuid.uuid4().hex[:6]
    alice, bob = f"alice-{tag}", f"bob-{tag}"
    save_model(alice, "trays", {"task": "detect", "base_preset": "detection-tiny", "input": {}}, tmp_path)
    for tool, field in (("finetune_predict", "model"), ("completion", "detector_model"),
                        ("completion_evaluate", "detector_model")):
        private = refusal(tool, {field: f"{alice}/trays"}, {"images": [picture]}, bob)
        missing = refusal(tool, {field: f"{alice}/never-saved"}, {"images": [picture]}, bob)
        named, usable = private.split(" (models you can use: ")  # shared models of other tests may be listed
        assert named == f"No model named '{alice}/trays'" and f"{alice}/trays" not in usable
        assert missing.replace("never-saved", "trays") == private
    assert refusal("finetune_predict", {"model": "trays"}, {"images": [picture]}, bob).startswith(
        "No model named 'trays'")
    assert refusal("finetune_predict", {}, {"images": [picture]}, alice).startswith(
        "Model name '' is not accepted: use 1 to 60 letters")  # none named (the page asks for one first)


def test_a_saved_model_of_the_wrong_kind_for_the_run_is_refused(picture, tmp_path):
    owner = f"ann-{uuid.uuid4().hex[:6]}"
    save_model(owner, "parts", {"task": "classify", "base_preset": "finetune-clip-tiny", "logit_scale": 100.0},
               tmp_path)
    save_model(owner, "trays", {"task": "detect", "base_preset": "detection-tiny", "input": {}}, tmp_path)
    assert refusal("completion", {"detector_model": "parts"}, {"images": [picture]}, owner) == (
        "'parts' is a classifier, not a detector: pick a detector.")
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not read at submit")
    assert refusal("finetune_predict", {"model": "trays"}, {"images": [], "video": [video]}, owner) == (
        "'trays' is a detector: give it images (or a zip of images), not a video.")


@pytest.mark.parametrize("tool", ["completion", "completion_evaluate"])
def test_a_detector_folder_on_the_server_is_refused_in_a_job(picture, tmp_path, tool):
    """The CLI's option: a job naming one (another user's files, perhaps) failed at once in the worker."""
    message = refusal(tool, {"detector": str(tmp_path)}, {"images": [picture]})
    assert message.startswith("detector: a folder on the server is not accepted in a job")
    assert "detector_model" in message


@pytest.mark.parametrize(("tool", "params", "files", "expected"), [
    ("anomaly_video", {"object_name": "plate", "preset": "winclip-tiny"}, {"video": 2},
     "Upload exactly one video (mp4, webm, mov, avi or mkv) per job; 2 given."),
    ("anomaly_video", {"object_name": "plate", "preset": "winclip-tiny"}, {}, "per job; none given."),
    ("anomaly_evaluate", {"object_name": "plate", "preset": "winclip-tiny"}, {"dataset": 2},
     "Upload one .zip of a labelled set in the MVTec AD layout (test/good, test/<defect>, "),
    ("completion", {"preset": "completion-tiny"}, {"images": 1, "video": 2},
     "Upload one video at a time (its sampled frames become the images); 2 given."),
    ("video_frame", {}, {"video": 3}, "Upload one video to take the frame from; 3 given."),
])
def test_a_role_that_takes_one_file_given_several_or_none_is_refused(picture, tool, params, files, expected):
    """Each was submitted and its job failed at once, leaving a failed record."""
    assert expected in refusal(tool, params, {role: [picture] * count for role, count in files.items()})


def test_text_queries_with_a_fine_tuned_detector_are_refused(picture, tmp_path):
    """Its job failed at once (the detector looks for its own classes)."""
    owner = f"ann-{uuid.uuid4().hex[:6]}"
    save_model(owner, "trays", {"task": "detect", "base_preset": "detection-tiny", "input": {}}, tmp_path)
    assert refusal("completion", {"detector_model": "trays", "text_queries": True}, {"images": [picture]},
                   owner).startswith("Text queries are OWLv2's; a fine-tuned detector looks for its own classes.")


def submission_lock_held() -> bool:
    """Whether someone holds the store-wide submission lock now (a second open file cannot take it)."""
    with open(get_store().root / ".submit.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def test_the_models_check_runs_outside_the_lock_every_submission_waits_for(picture, monkeypatch):
    """Its look-ups (saved models, the weights folder) can be slow: under the store-wide lock they held up every
    other user's submission. A run it refuses still stores nothing."""
    held_during_check = []

    def slow_check(params: object, files: object, owner: str | None) -> None:
        held_during_check.append(submission_lock_held())
        raise UserInputError("Refused by the models check.")

    monkeypatch.setattr(client, "_check_models", slow_check)
    message = refusal("anomaly", {"object_name": "plate", "preset": "winclip-tiny"}, {"images": [picture]}, "ann")
    assert message == "Refused by the models check." and held_during_check == [False]
