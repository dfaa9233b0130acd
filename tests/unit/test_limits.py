"""Bounds checked while reading (engine/limits.py): hostile annotation files are answered fast, in little
memory, with a message naming the file, the limit and its FEWSHOT_* setting; bad parameters by name."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

import pytest
from PIL import Image

from engine.annotations.dataset import read_annotation_bytes
from engine.annotations.read import read_dataset
from engine.errors import UserInputError
from tests import hostile_corpus

SECONDS, PEAK_BYTES = 10.0, 2**30  # the targets for each hostile file


def image(folder: Path, name: str = "part.png", size: tuple[int, int] = (96, 72)) -> tuple[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (20, 30, 40)).save(folder / name)
    return name, folder / name


def write(folder: Path, name: str, data: str | bytes) -> tuple[str, Path]:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return name, path


def bounded(read):
    """Run a parse; return (its result or the UserInputError it raised, seconds, peak traced bytes)."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        outcome = read()
    except UserInputError as exc:
        outcome = exc
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"{elapsed:.2f} s, peak {peak / 2**20:.1f} MiB")
    return outcome, elapsed, peak


def test_yaml_aliases_are_refused_before_anything_expands(tmp_path):
    data = hostile_corpus.ALIAS_YAML  # a few hundred bytes, like the 353-byte file of the issue
    assert len(data) < 400
    files = [image(tmp_path), write(tmp_path, "data.yaml", data), write(tmp_path, "part.txt", "0 0.5 0.5 0.2 0.2\n")]
    outcome, elapsed, peak = bounded(lambda: read_dataset(files))
    assert isinstance(outcome, UserInputError) and "data.yaml: YAML anchors and aliases" in str(outcome)
    assert elapsed < SECONDS and peak < PEAK_BYTES


def test_a_yolo_label_of_a_million_lines_is_skipped_at_the_per_image_limit(tmp_path):
    label = "0 0.5 0.5 0.1 0.1\n" * 1_000_000
    files = [image(tmp_path), write(tmp_path, "classes.txt", "hole\n"), write(tmp_path, "labels/part.txt", label)]
    dataset, elapsed, peak = bounded(lambda: read_dataset(files))
    assert dataset.box_count == 0
    assert [item["error"] for item in dataset.skipped] == [
        "labels/part.txt: more than 1,000 boxes in one image; at most 1,000 are accepted "
        "(FEWSHOT_MAX_BOXES_PER_IMAGE); its boxes were skipped."]
    assert elapsed < SECONDS and peak < PEAK_BYTES


def test_a_coco_file_of_a_million_boxes_is_refused_while_parsing(tmp_path):
    box = '{"image_id":1,"category_id":1,"bbox":[1,1,2,2]}'  # 47 bytes: 10^6 of them stay under 50 MB
    text = ('{"images":[{"id":1,"file_name":"part.png"}],"categories":[{"id":1,"name":"hole"}],"annotations":['
            + ",".join([box] * 1_000_000) + "]}")
    files = [image(tmp_path), write(tmp_path, "instances.json", text)]
    outcome, elapsed, peak = bounded(lambda: read_dataset(files))
    assert str(outcome) == ("instances.json: more than 100,000 boxes in one annotation file; at most 100,000 are "
                            "accepted (FEWSHOT_MAX_BOXES).")
    assert elapsed < SECONDS and peak < PEAK_BYTES


def test_an_annotation_file_over_the_size_limit_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setenv("FEWSHOT_MAX_ANNOTATION_MB", "1")
    files = [image(tmp_path), write(tmp_path, "instances.json", b" " * (2 * 2**20))]
    with pytest.raises(UserInputError, match=r"instances.json: 2.1 MB is more than the 1.0 MB .*_ANNOTATION_MB"):
        read_dataset(files)
    voc = [image(tmp_path), write(tmp_path, "part.xml", b"<annotation>" + b" " * (2 * 2**20) + b"</annotation>")]
    assert "FEWSHOT_MAX_ANNOTATION_MB" in read_dataset(voc).skipped[0]["error"]


def test_an_annotation_files_size_reads_as_every_size_the_app_writes(tmp_path):
    """The annotation reader wrote base-1024 "KB"/"MB" beside the app's base-1000 "kB"/"MB" (engine.weights)."""
    with pytest.raises(UserInputError, match=r"^labels.txt: 1.5 kB is more than the 999 B accepted for this "
                                             r"annotation file \(FEWSHOT_MAX_ANNOTATION_MB\)\.$"):
        read_annotation_bytes("labels.txt", write(tmp_path, "labels.txt", b"0" * 1500)[1], limit=999)


def test_sets_over_the_box_limit_are_refused_and_images_over_theirs_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("FEWSHOT_MAX_BOXES", "3")
    monkeypatch.setenv("FEWSHOT_MAX_BOXES_PER_IMAGE", "2")
    files = [image(tmp_path, "a.png"), image(tmp_path, "b.png"), write(tmp_path, "classes.txt", "hole\n"),
             write(tmp_path, "a.txt", "0 0.5 0.5 0.1 0.1\n" * 2), write(tmp_path, "b.txt", "0 0.5 0.5 0.1 0.1\n" * 2)]
    with pytest.raises(UserInputError, match=r"b.txt: more than 3 boxes in one set; .*\(FEWSHOT_MAX_BOXES\)"):
        read_dataset(files)
    objects = "".join("<object><name>hole</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax>"
                      "</bndbox></object>" for _ in range(3))
    voc = [image(tmp_path, "a.png"), write(tmp_path, "a.xml", f"<annotation>{objects}</annotation>")]
    assert "a.xml: more than 2 boxes in one image" in read_dataset(voc).skipped[0]["error"]
    coco = {"images": [{"id": 1, "file_name": "a.png"}], "categories": [{"id": 1, "name": "hole"}],
            "annotations": [{"id": n, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]} for n in range(3)]}
    dataset = read_dataset([image(tmp_path, "a.png"), write(tmp_path, "c.json", json.dumps(coco))])
    assert dataset.box_count == 0 and "more than 2 boxes in one image" in dataset.skipped[0]["error"]


@pytest.mark.parametrize(("names_file", "text", "message"), [
    ("data.yaml", "names: {0: a, x: b}", r"data.yaml: names: the keys must be the class indices 0, 1, 2"),
    ("data.yaml", "names: {0: a, 2: b}", r"data.yaml: names: the keys must be the class indices"),
    ("data.yaml", "names: [a, [b, c]]", r"data.yaml class 1: a class name must be text"),
    ("data.yaml", "names: [" * 5000, r"data.yaml: (not valid YAML|nested too deeply)"),
    ("data.yaml", "names: [" + "x" * 101 + "]", r"data.yaml class 0: a class name of 101 characters; at most 100 "
                                                r"are accepted \(FEWSHOT_MAX_CLASS_NAME_CHARS\)"),
    ("classes.txt", "".join(f"c{n}\n" for n in range(1001)),
     r"classes.txt: more than 1,000 classes; at most 1,000 are accepted \(FEWSHOT_MAX_CLASSES\)"),
])
def test_bad_class_name_files_are_refused_by_name(tmp_path, names_file, text, message):
    files = [image(tmp_path), write(tmp_path, names_file, text), write(tmp_path, "part.txt", "0 0.5 0.5 0.2 0.2\n")]
    with pytest.raises(UserInputError, match=message):
        read_dataset(files)


def test_hostile_coco_values_are_skipped_by_annotation_id(tmp_path):
    text = ('{"images":[{"id":1,"file_name":"part.png"},{"id":[2],"file_name":"x.png"}],'
            '"categories":[{"id":1,"name":"hole"},{"id":2,"name":"' + "n" * 500 + '"}],"annotations":['
            '{"id":1,"image_id":1,"category_id":1,"bbox":[1e400,1,2,2]},'
            '{"id":2,"image_id":[1],"category_id":1,"bbox":[1,1,2,2]},'
            '{"id":3,"image_id":1,"category_id":{"a":1},"bbox":[1,1,2,2]},'
            '{"id":4,"image_id":1,"category_id":1,"bbox":[' + "9" * 400 + ',1,2,2]},'
            '{"id":5,"image_id":1,"category_id":1,"bbox":[1,1,2,2]}]}')
    dataset = read_dataset([image(tmp_path), write(tmp_path, "c.json", text)])
    errors = [item["error"] for item in dataset.skipped]
    assert dataset.box_count == 1 and dataset.categories == ["hole"]
    for fragment in ("c.json images[1]: needs an \"id\" (a whole number)", "category id 2: a class name of 500",
                     "annotation id 1: the box [inf, 1, 2, 2] has a value that is not a finite number",
                     "annotation id 2: image_id [1] is not in", "annotation id 3: category_id {'a': 1} is not in",
                     "annotation id 4: the box [9999"):
        assert any(fragment in error for error in errors), (fragment, errors)
    digits = write(tmp_path, "d.json", '{"images":[],"categories":[],"annotations":[' + "1" * 5000 + "]}")
    with pytest.raises(UserInputError, match=r"d.json: not a COCO file"):
        read_dataset([image(tmp_path), digits])


def test_non_finite_yolo_and_voc_coordinates_are_skipped_by_line(tmp_path):
    yolo = read_dataset([image(tmp_path), write(tmp_path, "classes.txt", "hole\n"),
                         write(tmp_path, "part.txt", "0 nan 0.5 0.1 0.1\n0 0.5 0.5 inf 0.1\n0 0.5 0.5 0.1 0.1\n")])
    assert yolo.box_count == 1 and [e["error"].split(":")[0] for e in yolo.skipped] == ["part.txt line 1",
                                                                                      "part.txt line 2"]
    voc = read_dataset([image(tmp_path), write(tmp_path, "part.xml", (
        "<annotation><size><width>1e400</width><height>72</height></size><object><name>hole</name><bndbox>"
        "<xmin>nan</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>"))])
    assert voc.box_count == 0 and "part.xml object 1: the box" in voc.skipped[0]["error"]


def test_proposals_per_job_are_bounded_before_any_image_is_encoded(monkeypatch):
    from engine.completion.complete import Params
    from engine.video import max_video_frames

    Params(max_per_image=100).check_budget(max_video_frames())  # the longest sampled video at the defaults fits
    monkeypatch.setenv("FEWSHOT_MAX_PROPOSALS", "1000")
    with pytest.raises(UserInputError, match=r"11 images at max_per_image 100 could give 1,100 proposals; at most "
                                             r"1,000 .*\(FEWSHOT_MAX_PROPOSALS\)"):
        Params(max_per_image=100).check_budget(11)


def test_completion_samples_a_video_under_the_frame_limit_every_tool_shares(tmp_path, monkeypatch):
    from engine.completion.inputs import video_frames
    from tests.helpers import moving_square_video

    moving_square_video(tmp_path / "belt.mp4", frames=12)
    monkeypatch.setenv("FEWSHOT_MAX_VIDEO_FRAMES", "5")
    with pytest.raises(UserInputError, match=r"belt\.mp4: 12 frames sampled every 2 give 6; at most 5 sampled frames "
                                             r".*\(FEWSHOT_MAX_VIDEO_FRAMES\)"):
        video_frames("belt.mp4", tmp_path / "belt.mp4", 2, tmp_path / "work")
    assert len(video_frames("belt.mp4", tmp_path / "belt.mp4", 3, tmp_path / "work")) == 4


@pytest.mark.parametrize("box", ["1e309,0,10,10", "nan,0,10,10", [0, 0, float("inf"), 5], [10**400, 0, 1, 1]])
def test_insertion_boxes_must_be_four_finite_numbers(box):
    from engine.insertion.regions import parse_box

    with pytest.raises(UserInputError, match=r"The box needs four numbers x0,y0,x1,y1: finite, in pixels, inside "
                                             r"the 64 x 48 image"):
        parse_box(box, (64, 48))


@pytest.mark.parametrize("seed", [2**70, -1, 2**32, 1.5, True])
def test_seeds_past_what_the_generators_take_are_refused_by_name(seed):
    from engine.finetune import classify, detect, kshot
    from engine.insertion.insert import Params as InsertionParams

    with pytest.raises(UserInputError, match=r"seeds: (each seed must be a whole number from 0 to 4,294,967,295"
                                             r"|a list of whole numbers)"):
        kshot.Params(seeds=(0, seed))
    with pytest.raises(UserInputError, match=r"seed: a whole number from 0 to 4\.29497e\+09"):
        InsertionParams(prompt="a ball", seed=seed)
    for kind in (classify.Params, detect.Params):
        with pytest.raises(UserInputError, match=r"Training settings: seed: a whole number from 0 to"):
            kind(seed=seed)


def test_job_numbers_that_overflow_are_refused_by_name():
    from engine.completion.complete import Params as CompletionParams
    from engine.insertion.insert import Params as InsertionParams

    for value in (float("inf"), "1e309", 10**400, "nan"):
        with pytest.raises(UserInputError, match="guidance: a number from 0 to 30"):
            InsertionParams.from_dict({"prompt": "a ball", "guidance": value})
    with pytest.raises(UserInputError, match="video_stride: a whole number"):
        CompletionParams.from_dict({"video_stride": float("inf")})
    from engine.finetune.classify import Params

    with pytest.raises(UserInputError, match="time_budget_s: a number"):
        Params(time_budget_s=float("nan"))


def test_an_empty_limit_variable_means_its_default_for_every_limit(monkeypatch):
    """A compose file's `FEWSHOT_MAX_ACTIVE_JOBS=` (empty) is the default, in the job limits as in the engine's."""
    from engine.limits import max_boxes, max_reference_images
    from tasks import client

    for name in ("FEWSHOT_MAX_JOB_UPLOAD_MB", "FEWSHOT_MAX_ACTIVE_JOBS", "FEWSHOT_MAX_ACTIVE_JOBS_PER_USER",
                 "FEWSHOT_MAX_BOXES", "FEWSHOT_MAX_REFERENCE_IMAGES"):
        monkeypatch.setenv(name, "")
    client._check_capacity("someone", {})  # refuses nothing, raises nothing
    assert max_boxes() == 100_000 and max_reference_images() > 0
