"""A reload with a job in the address shows the form that job was submitted with: its input files (copies served
to its owner only, under the names the user gave them) and every setting, so one change runs it again."""

from __future__ import annotations

import uuid
from pathlib import Path

import gradio as gr

from tasks.jobs import Job
from tasks.registry import contract
from tasks.store import get_store
from webapp import anomaly_tab, serving


def stored_job(tmp_path: Path, tool: str, params: dict, roles: dict[str, list[str]], owner: str) -> Job:
    files = {}
    for role, names in roles.items():
        files[role] = []
        for name in names:
            path = tmp_path / uuid.uuid4().hex / name
            path.parent.mkdir()
            path.write_bytes(name.encode() * 50)
            files[role].append((name, path))
    return get_store().create(tool, contract(tool).Params.from_dict(params).to_dict(), files, owner=owner)


def test_a_video_inspection_restores_its_files_and_every_setting(tmp_path):
    owner = f"alice-{uuid.uuid4().hex[:6]}"
    params = {"object_name": "metal plate", "preset": "musc-tiny", "threshold": 0.42, "fps": 2.5,
              "mask_background": True}
    job = stored_job(tmp_path, "anomaly_video", params, {"video": ["line 1.mp4"], "references": ["good ü.png"]},
                     owner)
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
    job = stored_job(tmp_path, "anomaly", {"object_name": "screw", "threshold": "calibrate"},
                     {"images": ["a.png", "b.zip"]}, owner)
    form = anomaly_tab.submitted_form(job)
    assert [Path(p).name for p in form[0]] == ["a.png", "b.zip"]
    assert isinstance(form[1], type(gr.skip())) and form[2] is None  # no good parts: an empty box
    assert form[4:7] == ["screw", "winclip-vit-b-16-plus-240", "Calibrate from the good parts"]
    assert all(serving.may_read(p, owner) and not serving.may_read(p, "bob") for p in form[0])
