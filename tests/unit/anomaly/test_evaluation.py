"""Evaluation on MVTec-layout folders: reading the layout, missing masks, the report files, the CLI."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.anomaly.evaluate import Params
from engine.anomaly.evaluation import evaluate_folder, read_mvtec_folder, write_report
from engine.errors import UserInputError
from tests.conftest import REPO
from tests.helpers import mvtec_subset


def make_mvtec(root: Path, with_scratch_masks: bool = True) -> Path:
    rng = np.random.default_rng(1)
    for split, kind, count in [("train", "good", 2), ("test", "good", 3), ("test", "dent", 2), ("test", "scratch", 2)]:
        folder = root / split / kind
        folder.mkdir(parents=True)
        for index in range(count):
            Image.fromarray(rng.integers(0, 255, (48, 64), dtype=np.uint8)).save(folder / f"{index:03d}.png")
            if kind != "good" and (kind == "dent" or with_scratch_masks):
                mask = np.zeros((48, 64), np.uint8)
                mask[10:20, 20:30] = 255
                (root / "ground_truth" / kind).mkdir(parents=True, exist_ok=True)
                Image.fromarray(mask).save(root / "ground_truth" / kind / f"{index:03d}_mask.png")
    return root


def test_reads_the_shared_magnetic_tile_set(shared_data):
    dataset = read_mvtec_folder(shared_data / "anomaly" / "magnetic_tile")
    good = [item for item in dataset.test if item.defect_type is None]
    defective = [item for item in dataset.test if item.defect_type is not None]
    assert len(good) == 12 and len(defective) == 25 and len(dataset.train_good) == 12
    assert all(item.mask_path and item.mask_path.is_file() for item in defective)
    assert dataset.warnings == []


def test_a_defect_type_without_masks_is_a_warning(tmp_path):
    dataset = read_mvtec_folder(make_mvtec(tmp_path, with_scratch_masks=False))
    assert len(dataset.warnings) == 1 and "'scratch'" in dataset.warnings[0]
    assert [item.mask_path is None for item in dataset.test if item.defect_type == "scratch"] == [True, True]


def test_wrong_layouts_say_what_is_expected(tmp_path):
    with pytest.raises(UserInputError, match="Expected the MVTec AD layout"):
        read_mvtec_folder(tmp_path)
    (tmp_path / "test" / "good").mkdir(parents=True)
    Image.new("L", (8, 8)).save(tmp_path / "test" / "good" / "a.png")
    with pytest.raises(UserInputError, match="needs both good images"):
        read_mvtec_folder(tmp_path)


def test_evaluate_folder_writes_metrics_scores_and_roc(tiny_scorer, tmp_path):
    root = make_mvtec(tmp_path / "set", with_scratch_masks=False)
    result = evaluate_folder(tiny_scorer, root, Params(object_name="part", preset="winclip-tiny", shots=1))
    metrics = result.metrics
    assert 0.0 <= metrics["image_auroc"] <= 1.0 and metrics["pixel_auroc"] is not None
    assert set(metrics["per_defect_type"]) == {"dent", "scratch"}
    assert metrics["per_defect_type"]["scratch"]["pixel_auroc"] is None  # no masks, no pixel metrics
    files = write_report(result, tmp_path / "out")
    assert files == ["metrics.json", "scores.csv", "roc.png"]
    rows = list(csv.DictReader((tmp_path / "out" / "scores.csv").read_text().splitlines()))
    assert len(rows) == 7 and {row["defect_type"] for row in rows} == {"good", "dent", "scratch"}
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["shots"] == 1
    with Image.open(tmp_path / "out" / "roc.png") as plot:
        assert plot.size == (360, 360)



def test_an_image_or_mask_of_several_frames_is_used_by_its_first_and_a_warning_says_so(tiny_scorer, tmp_path):
    """Evaluation decoded a reference, a test image or a mask of several frames by its first one without a word (and
    a mask bypassed the pixel limit every upload is held to)."""
    root = make_mvtec(tmp_path / "set")
    for path in (root / "train" / "good" / "000.png", root / "ground_truth" / "dent" / "000_mask.png"):
        with Image.open(path) as first:
            frames = [first.copy(), Image.new(first.mode, first.size)]
        frames[0].save(path, save_all=True, append_images=frames[1:])
    result = evaluate_folder(tiny_scorer, root, Params(object_name="part", preset="winclip-tiny", shots=1))
    assert [w.split(" Save")[0] for w in result.warnings] == [
        "train/good/000.png: a PNG of 2 frames; only the first was used.",
        "ground_truth/dent/000_mask.png: a PNG of 2 frames; only the first was used."]
    assert result.metrics["per_defect_type"]["dent"]["pixel_auroc"] is not None

def test_too_many_shots_is_refused(tiny_scorer, tmp_path):
    with pytest.raises(UserInputError, match="train/good/ has 2"):
        evaluate_folder(tiny_scorer, make_mvtec(tmp_path), Params(object_name="part", preset="winclip-tiny", shots=5))


def test_evaluate_cli_on_the_shared_magnetic_tile_set(shared_data, tmp_path):
    tiles = mvtec_subset(shared_data / "anomaly" / "magnetic_tile", tmp_path / "tiles", per_folder=2)
    args = [sys.executable, "-m", "engine", "evaluate", "--data", str(tiles), "--object", "magnetic tile",
            "--preset", "winclip-tiny", "--shots", "1", "--out", str(tmp_path / "report")]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["image", "AUROC", "pixel", "AUROC", "PRO@30%", "F1-max"]
    assert [line.split()[0] for line in lines[1:]] == ["all", "blowhole", "break", "crack", "fray", "uneven"]
    assert (tmp_path / "report" / "roc.png").is_file()
