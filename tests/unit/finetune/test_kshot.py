"""K-shot evaluation (the finetune_kshot job): its parameters, the K-shot samples of classes and of annotated
images, mean and spread over seeds, a classifier and a detector evaluated on generated sets, cancel and the CLI."""

from __future__ import annotations

import csv
import json
import statistics

import pytest
import torch

from engine.errors import UserInputError
from engine.finetune import classify, detect, kshot
from engine.finetune.classify.data import gather_sources, load_labelled_set
from engine.finetune.classify.data import sample_shots as sample_classes
from engine.finetune.detect.data import load_detection_set
from engine.finetune.detect.data import sample_shots as sample_images
from engine.progress import Cancelled
from tests.helpers import FIRST_PAGE_NOTE, colour_classes, several_pages, shape_detection_set, with_a_scan

torch.set_num_threads(1)  # tiny matrices: extra threads only contend on a shared CPU
CLASSIFY = {"preset": "finetune-clip-tiny", "method": "linear", "steps": 6, "learning_rate": 3e-3, "eval_every": 2,
            "patience": 100}  # short enough that the samples score differently


def files_of(root):
    return [(str(p.relative_to(root)), p) for p in sorted(root.rglob("*")) if p.is_file()]


@pytest.fixture(scope="module")
def colours_root(tmp_path_factory):
    return colour_classes(tmp_path_factory.mktemp("colours"))


@pytest.fixture(scope="module")
def shapes_root(tmp_path_factory):
    return shape_detection_set(tmp_path_factory.mktemp("shapes"), count=14)


def test_training_settings_are_the_training_jobs_own_and_checked():
    assert kshot.Params().training == classify.Params().to_dict()  # declared once, in the training job
    assert kshot.Params(task="detect").training == detect.Params().to_dict()
    chosen = kshot.Params(task="detect", training={"steps": 7}, seeds="4, 9")
    assert chosen.seeds == (4, 9) and chosen.training_params(seed=9) == detect.Params(steps=7, seed=9)
    assert kshot.Params.from_dict(chosen.to_dict()) == chosen
    assert kshot.Params.spec("shots").default == 5 and kshot.Params.spec("seeds").default == (0, 1, 2)


@pytest.mark.parametrize(("values", "message"), [
    ({"shots": 0}, "shots: a whole number from 1 to 1000, not 0"),
    ({"seeds": []}, "seeds: a list of whole numbers from 1 to 10 items"),
    ({"seeds": list(range(11))}, "from 1 to 10 items"),
    ({"seeds": [1, 1]}, "each seed once"),
    ({"seeds": [-1]}, "each seed must be a whole number from 0"),
    ({"task": "segment"}, "task: one of classify, detect"),
    ({"training": {"steps": 0}}, "Training settings: steps: a whole number from 1"),
    ({"training": {"rank": 4}}, "Unknown parameter rank"),
    ({"training": "fast"}, "training: the training job's parameters by name"),
])
def test_bad_parameters_are_refused_naming_the_field(values, message):
    with pytest.raises(UserInputError, match=message.replace("[", r"\[").replace("(", r"\(")):
        kshot.Params.from_dict(values)


def test_mean_and_sample_std_over_the_seeds_that_have_a_value():
    assert kshot.spread([0.5, 0.7, 0.9]) == pytest.approx({"mean": 0.7, "std": 0.2})
    assert kshot.spread([0.4, None]) == {"mean": 0.4, "std": 0.0}
    assert kshot.spread([None, None]) == {"mean": None, "std": None}


def test_detection_samples_k_images_per_class_and_tests_the_rest(shapes_root, tmp_path):
    shapes = load_detection_set(files_of(shapes_root), tmp_path)
    samples = [sample_images(shapes, 3, seed) for seed in (0, 1, 2)]
    for train, test in samples:
        assert not set(train) & set(test) and len(train) + len(test) == len(shapes.images)
        for name in shapes.categories:
            holding = [i for i in train if any(b.category == name for b in shapes.images[i].boxes)]
            assert len(holding) >= 3
        assert len(train) <= 3 * len(shapes.categories)
    assert len({tuple(train) for train, _ in samples}) > 1  # the seed draws the sample
    assert sample_images(shapes, 3, 1) == samples[1]
    with pytest.raises(UserInputError, match=r"Class '(square|circle)' is in \d+ images; 20-shot evaluation needs"):
        sample_images(shapes, 20, 0)


def test_classifier_kshot_over_seeds_writes_each_seeds_accuracy_and_their_spread(colours_root, tmp_path):
    params = kshot.Params(shots=2, seeds=(0, 1, 2), training=CLASSIFY)
    reports = []
    result = kshot.run(kshot.Inputs([("colours", colours_root)]), params, tmp_path,
                       lambda fraction, message: reports.append(message))
    assert [r["seed"] for r in result.runs] == [0, 1, 2]
    assert all(r["train_images"] == 6 and r["test_images"] == 12 for r in result.runs)
    data = load_labelled_set(*gather_sources([("colours", colours_root)]))
    assert len({tuple(sample_classes(data, 2, seed)[0]) for seed in (0, 1, 2)}) > 1  # the seed draws the sample
    tuned = [r["fine_tuned_accuracy"] for r in result.runs]
    assert len(set(tuned)) > 1, "6 steps on different samples should not all score the same"
    assert result.summary["fine_tuned_accuracy"] == pytest.approx({"mean": statistics.fmean(tuned),
                                                                   "std": statistics.stdev(tuned)})
    assert result.summary["fine_tuned_accuracy"]["mean"] > result.summary["zero_shot_accuracy"]["mean"]
    assert any(m.startswith("Seed 2 of 3 · Step ") for m in reports)
    assert result.outputs == ["kshot.json", "kshot.csv"]
    assert json.loads((tmp_path / "kshot.json").read_text())["summary"] == result.to_json()["summary"]
    rows = list(csv.reader((tmp_path / "kshot.csv").open()))
    assert rows[0][:5] == ["seed", "train_images", "test_images", "zero_shot_accuracy", "fine_tuned_accuracy"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2", "mean", "std"]
    assert float(rows[4][4]) == pytest.approx(statistics.fmean(tuned))


def test_k_larger_than_a_class_has_is_refused_before_training(colours_root, tmp_path):
    with pytest.raises(UserInputError, match="Class 'blue' has 6 images; 6-shot evaluation needs more than 6"):
        kshot.run(kshot.Inputs([("colours", colours_root)]), kshot.Params(shots=6, training=CLASSIFY), tmp_path)
    assert not (tmp_path / "kshot.json").exists()


def test_a_cancel_during_a_later_seed_ends_the_job(colours_root, tmp_path):
    def progress(fraction, message):
        if message.startswith("Seed 2 of 2 · Step 2/"):
            raise Cancelled

    with pytest.raises(Cancelled):
        kshot.run(kshot.Inputs([("colours", colours_root)]), kshot.Params(shots=2, seeds=(0, 1), training=CLASSIFY),
                  tmp_path, progress)
    assert not (tmp_path / "kshot.json").exists()


def test_detector_kshot_runs_with_metrics_in_range(shapes_root, tmp_path):
    training = {"preset": "detection-tiny", "steps": 6, "eval_every": 3, "batch_size": 4}
    result = kshot.run(kshot.Inputs(files_of(shapes_root)), kshot.Params(task="detect", shots=2, seeds=(0, 1),
                                                                         training=training), tmp_path)
    assert result.classes == ["square", "circle"] and list(result.metrics) == list(kshot.METRICS["detect"])
    for row in result.runs:
        assert row["train_images"] + row["test_images"] == 14 and row["stopped"] == "completed"
        assert all(0.0 <= row[key] <= 1.0 for key in result.metrics)
    assert all(0.0 <= result.summary[key]["mean"] <= 1.0 and result.summary[key]["std"] >= 0.0
               for key in result.metrics)
    assert "K images per class" in result.sampling and (tmp_path / "kshot.csv").is_file()


def test_cli_kshot_goes_through_the_job(colours_root, tmp_path, capsys):
    from engine.__main__ import main

    main(["finetune", "classify", "--data", str(colours_root), "--out", str(tmp_path), "--kshot", "2", "--seeds",
          "3,5", "--preset", "finetune-clip-tiny", "--method", "linear", "--steps", "3"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("seed ")] == ["seed 3", "seed 5"]
    assert any(line.startswith("fine-tuned accuracy: ") and "+-" in line and "(2-shot, seeds 3, 5)" in line
               for line in lines)
    assert json.loads((tmp_path / "kshot.json").read_text())["settings"]["steps"] == 3


def test_a_tiff_of_several_pages_is_used_by_its_first_page_and_the_result_says_so(tmp_path, capsys):
    """K-shot runs of either task read a TIFF's first page without a word; the training jobs said so."""
    from engine.__main__ import main

    colours = colour_classes(tmp_path / "colours", per_class=3)
    several_pages(colours / "red" / "scan.tiff", "red")
    main(["finetune", "classify", "--data", str(colours), "--out", str(tmp_path / "classify"), "--kshot", "2",
          "--seeds", "0", "--preset", "finetune-clip-tiny", "--method", "linear", "--steps", "1"])
    assert f"note: red/scan.tiff: {FIRST_PAGE_NOTE}" in capsys.readouterr().err
    classified = json.loads((tmp_path / "classify" / kshot.RESULT_FILE).read_text())
    shapes = with_a_scan(shape_detection_set(tmp_path / "shapes", count=6))
    training = {"preset": "detection-tiny", "steps": 1, "eval_every": 1, "batch_size": 2}
    detected = kshot.run(kshot.Inputs(files_of(shapes)),
                         kshot.Params(task="detect", shots=1, seeds=(0,), training=training), tmp_path / "detect")
    assert [note.split(" Save")[0] for note in classified["notes"]] == [f"red/scan.tiff: {FIRST_PAGE_NOTE}"]
    assert [note.split(" Save")[0] for note in detected.notes] == [f"images/shapes_000.tiff: {FIRST_PAGE_NOTE}"]
    assert json.loads((tmp_path / "detect" / kshot.RESULT_FILE).read_text())["notes"] == detected.notes
