"""Whole inspection runs: batches with zips and bad files, videos frame by frame, the CLI."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.__main__ import main
from engine.anomaly import inspect_images as images_job
from engine.anomaly import inspect_video as video_job
from engine.anomaly import inspection
from engine.anomaly.inspection import inspect_images, inspect_video
from engine.errors import UserInputError
from engine.video import iter_frames
from tests.helpers import moving_square_video, mvtec_subset


def image_job(files, references=(), **params):
    return images_job.Inputs(list(files), list(references)), images_job.Params(preset="winclip-tiny", **params)


def video_job_of(video, references=(), **params):
    return video_job.Inputs([video], list(references)), video_job.Params(preset="winclip-tiny", **params)


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data in entries.items():
            bundle.writestr(name, data)
    return path


def test_a_batch_with_zips_keeps_the_good_files_and_lists_the_bad(tiny_scorer, metal_plate_images, tmp_path):
    png = [p.read_bytes() for p in metal_plate_images[:3]]
    good_zip = _zip(tmp_path / "parts.zip", {"a/one.png": png[0], "two.png": png[1], "notes.txt": b"hello",
                                             "inner.zip": b"PK\x03\x04", "broken.png": b"\x89PNG\r\n\x1a\nxx"})
    evil_zip = _zip(tmp_path / "evil.zip", {"../escape.png": png[2]})
    files = [("loose.png", metal_plate_images[2]), ("parts.zip", good_zip), ("evil.zip", evil_zip)]
    inputs, params = image_job(files, object_name="metal plate", threshold=0.3)
    result = inspect_images(tiny_scorer, inputs, params, tmp_path / "out")
    summary, written = result.to_json(), result.outputs
    assert [r["file"] for r in summary["images"]] == ["loose.png", "parts.zip/a/one.png", "parts.zip/two.png"]
    reasons = {item["file"]: item["error"] for item in summary["skipped"]}
    assert set(reasons) == {"parts.zip/notes.txt", "parts.zip/inner.zip", "parts.zip/broken.png", "evil.zip"}
    assert "archives inside archives" in reasons["parts.zip/inner.zip"]
    assert "points outside the archive" in reasons["evil.zip"]
    assert not (tmp_path / "escape.png").exists() and not (tmp_path / "out" / "escape.png").exists()
    for record in summary["images"]:
        assert record["verdict"] == ("NG" if record["score"] > 0.3 else "OK")
    assert summary["counts"] == {"OK": sum(r["verdict"] == "OK" for r in summary["images"]),
                                 "NG": sum(r["verdict"] == "NG" for r in summary["images"]), "skipped": 4}
    with open(tmp_path / "out" / "scores.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["file"], r["verdict"]) for r in rows[:3]] == [(r["file"], r["verdict"]) for r in summary["images"]]
    assert [float(r["score"]) for r in rows[:3]] == [r["score"] for r in summary["images"]]
    assert {r["file"] for r in rows[3:]} == set(reasons) and all(r["verdict"] == "skipped" for r in rows[3:])
    assert json.loads((tmp_path / "out" / "scores.json").read_text())["images"] == summary["images"]
    assert {"scores.csv", "scores.json", "000_loose_overlay.png", "000_loose_map.png"} <= set(written)


def test_a_batch_of_only_bad_files_says_why(tiny_scorer, tmp_path):
    evil = _zip(tmp_path / "evil.zip", {"/etc/passwd.png": b"x"})
    with pytest.raises(UserInputError, match=r"No images to inspect.*points outside"):
        inspect_images(tiny_scorer, *image_job([("evil.zip", evil)], object_name="metal plate"), tmp_path / "out")


def test_refused_reference_zips_say_why(tiny_scorer, metal_plate_images, tmp_path, monkeypatch):
    monkeypatch.setenv("FEWSHOT_MAX_ZIP_BYTES", "1000")
    bomb = _zip(tmp_path / "bomb.zip", {"good.png": metal_plate_images[1].read_bytes()})
    inputs, params = image_job([("part.png", metal_plate_images[0])], [("bomb.zip", bomb)],
                               object_name="metal plate")
    with pytest.raises(UserInputError, match=r"None of the reference images of good parts could be used\. "
                                             r"bomb\.zip: [\d,]+ bytes uncompressed; at most 1,000 are accepted"):
        inspect_images(tiny_scorer, inputs, params, tmp_path / "out")


def test_a_multi_page_tiff_says_only_its_first_page_was_inspected(tiny_scorer, metal_plate_images, tmp_path):
    from PIL import Image

    pages = [Image.open(p).convert("RGB") for p in metal_plate_images[:3]]
    pages[0].save(tmp_path / "multi.tiff", save_all=True, append_images=pages[1:])
    pages[0].save(tmp_path / "good.tiff", save_all=True, append_images=pages[1:])
    files = [("multi.tiff", tmp_path / "multi.tiff"), ("single.png", metal_plate_images[0])]
    inputs, params = image_job(files, [("good.tiff", tmp_path / "good.tiff")], object_name="metal plate")
    summary = inspect_images(tiny_scorer, inputs, params, tmp_path / "out").to_json()
    assert [r["file"] for r in summary["images"]] == ["multi.tiff", "single.png"]
    notes = [w for w in summary["warnings"] if "only the first was used" in w]
    assert notes == ["multi.tiff: a TIFF of 3 pages; only the first was used. Save each of the other pages as an "
                     "image of its own to use it.",
                     "good.tiff: a TIFF of 3 pages; only the first was used. Save each of the other pages as an "
                     "image of its own to use it."]


def test_video_is_scored_frame_by_frame_in_batches(tiny_pipeline, tiny_scorer, metal_plate_images, tmp_path,
                                                   monkeypatch):
    moving_square_video(tmp_path / "line.mp4", frames=20, size=(80, 60), fps=10)
    batches, reports = [], []
    original = tiny_pipeline.__class__.__call__

    def spy(self, images, *args, **kwargs):
        batches.append(len(images))
        return original(self, images, *args, **kwargs)

    monkeypatch.setattr(tiny_pipeline.__class__, "__call__", spy)
    monkeypatch.setattr(inspection, "MAX_FLAGGED_FRAMES", 3)
    result = inspect_video(
        tiny_scorer, *video_job_of(("line.mp4", tmp_path / "line.mp4"), [(p.name, p) for p in metal_plate_images[:2]],
                                     object_name="metal plate", threshold=0.0, stride=2, batch_size=4),
        tmp_path / "out", progress=lambda fraction, message: reports.append((fraction, message)))
    summary, written = result.to_json(), result.outputs
    assert batches == [4, 4, 2]  # 10 sampled frames, never more than a batch at once
    assert [r["frame"] for r in summary["frames"]] == list(range(0, 20, 2))
    assert [r["time_s"] for r in summary["frames"]] == pytest.approx([i / 10 for i in range(0, 20, 2)])
    assert summary["counts"] == {"frames": 10, "OK": 0, "NG": 10, "flagged_images_kept": 3}
    assert any("10 frames are above the threshold" in w for w in summary["warnings"])
    assert summary["video"]["sampled_fps"] == 5.0
    frame_reports = [m for _, m in reports if m.startswith("Scored frame")]
    assert frame_reports[-1] == "Scored frame 10 of about 10"
    assert [f for f, _ in reports] == sorted(f for f, _ in reports)
    overlay_frames = list(iter_frames(tmp_path / "out" / "overlay.mp4"))
    assert len(overlay_frames) == 10 and overlay_frames[0].image.size == (80, 60)
    assert {"overlay.mp4", "timeline.png", "scores.csv", "scores.json", "frame_000000_overlay.jpg"} <= set(written)
    assert len([n for n in written if n.startswith("frame_")]) == 3
    with open(tmp_path / "out" / "scores.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["frame"]) for r in rows] == list(range(0, 20, 2)) and {r["verdict"] for r in rows} == {"NG"}


def test_video_overlay_keeps_the_frame_content(tiny_scorer, tmp_path):
    moving_square_video(tmp_path / "v.mkv", frames=4, size=(64, 48), lossless=True)
    inspect_video(tiny_scorer, *video_job_of(("v.mkv", tmp_path / "v.mkv"), object_name="metal plate", threshold=1.0),
                  tmp_path / "out")
    first = np.asarray(next(iter_frames(tmp_path / "out" / "overlay.mp4")).image).astype(int)
    # The bright square shows through the heat map at the same place.
    assert first[10:20, 0:10].mean() > first[30:40, 30:40].mean() + 40


@pytest.mark.parametrize("problem, match", [
    (b"not a video at all", "cannot be read as a video"),
])
def test_a_bad_video_fails_with_its_name(tiny_scorer, tmp_path, problem, match):
    (tmp_path / "clip.webm").write_bytes(problem)
    with pytest.raises(UserInputError, match=match):
        inspect_video(tiny_scorer, *video_job_of(("clip.webm", tmp_path / "clip.webm"), object_name="metal plate"),
                      tmp_path / "out")


def test_cli_on_the_shared_magnetic_tile_set_zero_and_few_shot(shared_data, tmp_path, capsys):
    root = mvtec_subset(shared_data / "anomaly" / "magnetic_tile", tmp_path / "tiles", per_folder=3)
    images = [str(root / "test" / "good"), str(root / "test" / "crack")]
    assert main(["anomaly", "--images", *images, "--object", "magnetic tile", "--preset", "winclip-tiny",
                 "--out", str(tmp_path / "zero")]) == 0
    zero = json.loads((tmp_path / "zero" / "scores.json").read_text())
    assert zero["mode"] == "WinCLIP (zero-shot)" and zero["threshold"]["source"] == "default"
    assert sorted(p.name for p in (tmp_path / "zero").iterdir() if p.name.startswith(".")) == []  # no scratch left
    assert main(["anomaly", "--images", *images, "--refs", str(root / "train" / "good"), "--object", "magnetic tile",
                 "--preset", "winclip-tiny", "--out", str(tmp_path / "few")]) == 0
    few = json.loads((tmp_path / "few" / "scores.json").read_text())
    assert few["mode"].startswith("WinCLIP+ (3 good references") and few["threshold"]["source"] == "calibrated"
    assert len(few["images"]) == len(zero["images"]) > 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-len(few["images"]) - 1].startswith("threshold ")
    assert all(line.split()[1] in ("OK", "NG") for line in printed[-len(few["images"]):])


def test_cli_video_and_bad_arguments(tiny_pipeline, tmp_path, capsys):
    moving_square_video(tmp_path / "v.mp4", frames=6)
    assert main(["anomaly", "--video", str(tmp_path / "v.mp4"), "--fps", "5", "--object", "gear",
                 "--preset", "winclip-tiny", "--threshold", "0.9", "--out", str(tmp_path / "out")]) == 0
    assert len(json.loads((tmp_path / "out" / "scores.json").read_text())["frames"]) == 3
    assert main(["anomaly", "--video", str(tmp_path / "v.mp4"), "--stride", "2", "--fps", "5", "--object", "gear",
                 "--preset", "winclip-tiny", "--out", str(tmp_path / "bad")]) == 2
    assert "either a frame stride or frames per second" in capsys.readouterr().err
