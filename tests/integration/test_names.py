"""Real file names end to end: spaces, accents, other scripts, 255-byte names and same-named uploads, as
direct uploads and inside a zip, through an anomaly and a completion job on the embedded worker. Every
output is resolved the way the tabs, Jobs → Open and downloads do (`client.artifact_path`)."""

from __future__ import annotations

import csv
import json
import shutil
import warnings
import zipfile

import pytest

from tasks import client, embedded, finetune_models, reference_sets
from tasks.client import Status
from tests.helpers import colour_classes, noise_images, zip_tree

LONG = "a" * 251 + ".png"  # 255 bytes, the most a file name may have
LONG_ACCENTED = "é" * 125 + ".png"  # 254 bytes in 129 characters
DIRECT = ["my part 1.png", "café.png", "部品 1.png", LONG, "000.png", "000.png"]
IN_ZIP = ["my part 1.png", "部品/部品 1.png", LONG_ACCENTED, "000.png", "000.png", "a.png"]
ZIP = "set ü 1.zip"


@pytest.fixture(scope="module", autouse=True)
def worker():
    embedded.ensure_started()
    yield


@pytest.fixture(scope="module")
def uploads(tmp_path_factory):
    """(direct uploads as (name, path), the zip as (name, path)): every file different pixels."""
    folder = tmp_path_factory.mktemp("names")
    pictures = noise_images(folder / "pixels", len(DIRECT) + len(IN_ZIP), size=(64, 64))
    archive = folder / "upload.zip"
    with warnings.catch_warnings(), zipfile.ZipFile(archive, "w") as bundle:
        warnings.simplefilter("ignore")  # the duplicate entry name is the point
        for name, picture in zip(IN_ZIP, pictures[len(DIRECT):], strict=True):
            bundle.write(picture, name)
        bundle.writestr("a.png/b.png", pictures[0].read_bytes())  # a file where its folder should be
    return list(zip(DIRECT, pictures[:len(DIRECT)], strict=True)), (ZIP, archive)


def all_outputs_resolve(job) -> None:
    assert job.outputs
    for key in job.outputs:
        assert client.artifact_path(job.id, key).is_file(), key


def test_anomaly_job_shows_every_name_as_given_and_finds_every_output(uploads):
    direct, archive = uploads
    job = client.wait(client.submit("anomaly", {"object_name": "part", "preset": "winclip-tiny"},
                                    [*direct, archive]).id, timeout=300)
    assert job.status is Status.SUCCEEDED, job.error
    all_outputs_resolve(job)
    rows = job.result["images"]
    shown = [row["file"] for row in rows]
    assert shown[:6] == ["my part 1.png", "café.png", "部品 1.png", LONG, "000.png", "000 (2).png"]
    assert sorted(shown[6:]) == sorted(f"{ZIP}/{name}" for name in [
        "my part 1.png", "部品/部品 1.png", LONG_ACCENTED, "000.png", "000 (2).png", "a.png"])
    assert len(set(shown)) == len(shown) == 12
    assert [item["file"] for item in job.result["skipped"]] == [f"{ZIP}/a.png/b.png"]
    for row in rows:
        assert row["map"] in job.outputs and row["overlay"] in job.outputs
        assert client.artifact_path(job.id, row["overlay"]).stat().st_size > 0
    with open(client.artifact_path(job.id, "scores.csv"), newline="") as handle:
        assert [line["file"] for line in csv.DictReader(handle)][:12] == shown


def test_completion_job_shows_every_name_as_given_and_finds_every_output(uploads, tmp_path):
    direct, archive = uploads
    images = [item for item in direct if item[0] != "café.png"]
    zipped = tmp_path / "completion.zip"
    shutil.copyfile(archive[1], zipped)
    params = {"preset": "completion-tiny", "score_threshold": 0.0, "max_per_image": 3,
              "drawn_boxes": [{"image": "my part 1.png", "box": [4, 4, 24, 24], "category": "part"}]}
    job = client.wait(client.submit("completion", params, {"images": [*images, (ZIP, zipped)]}).id, timeout=300)
    assert job.status is Status.SUCCEEDED, job.error
    all_outputs_resolve(job)
    document = json.loads(client.artifact_path(job.id, "proposals.json").read_text())
    shown = [item["file"] for item in document["images"]]
    assert len(set(shown)) == len(shown) == 5 + 6
    assert {"my part 1.png", "部品 1.png", LONG, "000.png", LONG_ACCENTED, "部品/部品 1.png", "a.png"} <= set(shown)
    assert sum(name.startswith("000") for name in shown) == 4  # two uploads and two zip entries, told apart
    assert [item["file"] for item in document["skipped"]] == [f"{ZIP}/a.png/b.png"]
    assert all(item["preview"] in job.outputs for item in document["images"])
    assert document["images"][0]["existing"]  # the drawn box found its image by the name given


def test_classifier_training_lists_zip_entries_the_disk_cannot_hold_and_trains_on_the_rest(tmp_path):
    root = colour_classes(tmp_path / "classes", per_class=3, size=32)
    (root / "red" / "red_0.png").rename(root / "red" / LONG_ACCENTED)
    archive = zip_tree(root, tmp_path / "classes.zip")
    too_long = "r" * 252 + ".png"  # 256 bytes
    with zipfile.ZipFile(archive, "a") as bundle:
        bundle.writestr(f"red/{too_long}", (root / "red" / "red_1.png").read_bytes())
        bundle.writestr("green/green_0.png/inner.png", b"a file where this entry's folder should be")
    params = {"model_name": "names classifier", "preset": "finetune-clip-tiny", "steps": 2, "held_out_fraction": 0.4}
    job = client.wait(client.submit("finetune_classify", params, {"dataset": [(ZIP, archive)]}).id, timeout=300)
    assert job.status is Status.SUCCEEDED, job.error
    assert [item["file"] for item in job.result["skipped"]] == [f"{ZIP}/red/{too_long}",
                                                                 f"{ZIP}/green/green_0.png/inner.png"]
    assert job.result["train_images"] + job.result["held_out_images"] == 9
    finetune_models.delete("names classifier")


def test_an_anomaly_job_shows_a_saved_sets_images_by_the_names_they_were_saved_with(uploads):
    direct, _ = uploads
    reference_sets.save("names set", direct)
    try:
        job = client.wait(client.submit("anomaly", {"object_name": "part", "preset": "winclip-tiny",
                                                    "reference_set": "names set"},
                                    [("inspected.png", direct[0][1])]).id, timeout=300)
    finally:
        reference_sets.delete("names set")
    assert job.status is Status.SUCCEEDED, job.error
    shown = [job.input_names[key] for key in job.inputs if key.startswith("references/")]
    assert shown == ["my part 1.png", "café.png", "部品 1.png", LONG, "000.png", "000 (2).png"]
