"""Runs that cannot succeed are refused at submit, before anything is stored (tasks.client.submit, as the page, the
API and `python -m tasks` reach it): a model whose weights are missing on a machine that downloads none, in every
tool with a model choice and under a saved model, and a box that marks no pixel of the image or of any frame."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from PIL import Image

from engine.errors import UserInputError
from engine.presets import PRESETS, demo_for, get_preset
from engine.weights import check_runnable, models_dir
from tasks import client, finetune_models
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
