"""Few-shot classification engine on the tiny preset: learning, LoRA, WiSE-FT, seeds, cancel, save/load, bad input."""

from __future__ import annotations

import warnings
import zipfile

import pytest
import torch

from engine.errors import UserInputError
from engine.finetune.classify import Params
from engine.finetune.classify.data import (
    LabelledSet,
    gather_sources,
    load_labelled_set,
    split_held_out,
)
from engine.finetune.classify.model import LoraSettings, build_classifier, load_classifier
from engine.finetune.classify.runs import Predictor, train_and_save
from engine.finetune.classify.train import classification_metrics, predict_logits, to_tensor, train
from engine.progress import Cancelled
from tests.helpers import colour_classes, several_pages, zip_tree

torch.set_num_threads(1)  # tiny matrices: extra threads only contend on a shared CPU (30x slower under load)
TINY = "finetune-clip-tiny"
FAST = Params(preset=TINY, steps=30, eval_every=5, patience=100)


@pytest.fixture(scope="module")
def colours(tmp_path_factory) -> LabelledSet:
    return load_labelled_set(*gather_sources([("colours", colour_classes(tmp_path_factory.mktemp("colours")))]))


@pytest.fixture(scope="module")
def trained(colours, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = train_and_save(colours, FAST.replace(model_name="colours"), out)
    return result.to_json(), result.outputs, out


def test_fine_tuning_beats_the_zero_shot_baseline_on_held_out_images(trained):
    summary, files, out = trained
    zero, tuned = summary["metrics"]["zero_shot"], summary["metrics"]["fine_tuned"]
    assert summary["held_out_images"] == 6 and zero["images"] == tuned["images"] == 6
    assert tuned["accuracy"] >= 0.99 and tuned["accuracy"] - zero["accuracy"] >= 0.5
    assert summary["history"][0]["step"] == 0 and summary["history"][0]["held_out_accuracy"] == zero["accuracy"]
    assert summary["seconds"] < 30
    assert files == ["metrics.json", "history.csv", "model.zip"] and all((out / f).is_file() for f in files)


def test_lora_leaves_the_base_weights_bit_identical(colours):
    classifier, preprocess = build_classifier(TINY, colours.classes, torch.device("cpu"), LoraSettings(4, "last:1"))
    base = {n: p.detach().clone() for n, p in classifier.visual.named_parameters() if "lora_" not in n}
    adapters = [n for n, p in classifier.visual.named_parameters() if p.requires_grad]
    assert adapters and all("resblocks.1.mlp" in n for n in adapters)  # selective: last block only
    pixels = to_tensor(colours.images, preprocess)
    train(classifier, pixels, colours.labels, pixels[:0], [], Params(steps=5))
    after = dict(classifier.visual.named_parameters())
    assert all(torch.equal(value, after[name]) for name, value in base.items())
    assert any(after[n].abs().sum() > 0 for n in adapters if "lora_B" in n)


def test_wise_ft_at_zero_is_zero_shot_and_at_one_the_fine_tuned_model(colours, trained):
    _, _, out = trained
    fresh, preprocess = build_classifier(TINY, colours.classes, torch.device("cpu"), LoraSettings())
    loaded, _, _ = load_classifier(out / "model", torch.device("cpu"))
    pixels = to_tensor(colours.images, preprocess)
    tuned = predict_logits(loaded, pixels)
    loaded.set_wise_alpha(0.0)
    assert torch.equal(predict_logits(loaded, pixels), predict_logits(fresh, pixels))
    loaded.set_wise_alpha(0.5)
    half = predict_logits(loaded, pixels)
    assert not torch.equal(half, tuned)
    loaded.set_wise_alpha(1.0)
    assert torch.equal(predict_logits(loaded, pixels), tuned)
    with pytest.raises(UserInputError, match="between 0"):
        loaded.set_wise_alpha(1.5)


def test_a_saved_model_reloads_and_predicts_exactly_as_before(colours, trained, tmp_path):
    summary, _, out = trained
    _, _, meta = load_classifier(out / "model", torch.device("cpu"))
    assert meta["classes"] == ["blue", "green", "red"] and meta["base_preset"] == TINY
    assert meta["metrics"] == summary["metrics"]
    with zipfile.ZipFile(out / "model.zip") as bundle:
        assert sorted(bundle.namelist()) == ["model.json", "weights.safetensors"]
        bundle.extractall(tmp_path / "copy")
    again = Predictor(tmp_path / "copy")(colours.names, colours.images)
    assert again == Predictor(out / "model")(colours.names, colours.images)
    assert sum(row["class"] == colours.classes[y] for row, y in zip(again, colours.labels, strict=True)) >= 17


def test_the_same_seed_gives_the_same_result_and_another_seed_differs(colours, tmp_path):
    settings = Params(preset=TINY, steps=8, eval_every=4)
    first = train_and_save(colours, settings.replace(model_name="a"), tmp_path / "a").to_json()
    second = train_and_save(colours, settings.replace(model_name="b"), tmp_path / "b").to_json()
    third = train_and_save(colours, settings.replace(model_name="c", seed=1), tmp_path / "c").to_json()
    assert first["history"] == second["history"]
    weights = [(tmp_path / run / "model/weights.safetensors").read_bytes() for run in "ab"]
    assert weights[0] == weights[1]
    assert third["history"] != first["history"]


def test_a_stop_request_keeps_the_best_checkpoint_so_far(colours):
    classifier, preprocess = build_classifier(TINY, colours.classes, torch.device("cpu"), None)
    train_idx, held_idx = split_held_out(colours, 0.3, 0)
    pixels = to_tensor(colours.images, preprocess)
    held_labels = [colours.labels[i] for i in held_idx]
    calls = []

    def cancel_at_step_12(fraction: float, message: str) -> None:
        calls.append(message)
        if len(calls) == 12:
            raise Cancelled

    result = train(classifier, pixels[train_idx], [colours.labels[i] for i in train_idx], pixels[held_idx],
                   held_labels, Params(steps=50, eval_every=5, patience=100), progress=cancel_at_step_12)
    assert result.stopped == "cancelled" and result.steps_run == 12 and result.best_step in (0, 5, 10)
    best = max((r for r in result.history if r["held_out_accuracy"] is not None),
               key=lambda r: (r["held_out_accuracy"], -r["held_out_loss"]))
    accuracy = classification_metrics(held_labels, predict_logits(classifier, pixels[held_idx]).argmax(1).tolist(),
                                      colours.classes)["accuracy"]
    assert best["step"] == result.best_step and accuracy == best["held_out_accuracy"]

    def store_write_fails(fraction: float, message: str) -> None:
        raise OSError("No space left on device")

    with pytest.raises(OSError):  # a failed report is an error, not a cancel that would end as succeeded
        train(classifier, pixels[train_idx], [colours.labels[i] for i in train_idx], pixels[held_idx],
              held_labels, Params(steps=5, eval_every=5, patience=100), progress=store_write_fails)


def test_a_run_that_used_every_step_says_completed_even_when_patience_ran_out_on_the_last(colours):
    """With evaluations every 5 steps and patience 3, patience ran out exactly at step 15 of 15: the run said
    "early stopping after 15 steps" though it ran them all."""
    classifier, preprocess = build_classifier(TINY, colours.classes, torch.device("cpu"), None)
    train_idx, held_idx = split_held_out(colours, 0.3, 0)
    pixels = to_tensor(colours.images, preprocess)
    result = train(classifier, pixels[train_idx], [colours.labels[i] for i in train_idx], pixels[held_idx],
                   [colours.labels[i] for i in held_idx], Params(steps=15, eval_every=5, patience=3,
                                                                 learning_rate=1e-12))  # never better: stale each time
    assert result.steps_run == 15 and result.stopped == "completed"


def test_divergence_is_a_clear_error():
    classifier, _ = build_classifier(TINY, ["a", "b"], torch.device("cpu"), None)
    pixels = torch.full((2, 3, 64, 64), float("nan"))
    with pytest.raises(UserInputError, match=r"Training diverged.*no model was saved"):
        train(classifier, pixels, [0, 1], pixels[:0], [], Params(steps=3))


def test_metrics_on_a_hand_computed_confusion_matrix():
    truth = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    predicted = [0, 0, 1, 1, 0, 2, 2, 2, 1]
    metrics = classification_metrics(truth, predicted, ["a", "b", "c"])
    assert metrics["confusion_matrix"] == [[2, 1, 0], [1, 1, 0], [0, 1, 3]]
    assert metrics["accuracy"] == pytest.approx(6 / 9)
    assert metrics["per_class_accuracy"] == pytest.approx({"a": 2 / 3, "b": 0.5, "c": 0.75})
    assert classification_metrics([], [], ["a", "b"])["per_class_accuracy"] == {"a": None, "b": None}


def test_a_zip_of_class_folders_and_uploads_with_a_class_name(tmp_path):
    root = colour_classes(tmp_path / "set", per_class=2)
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(root.rglob("*.png")):
            if "blue" not in path.parts:
                bundle.write(path, f"wrapper/{path.relative_to(root)}")
        bundle.writestr("wrapper/red/notes.png", "not an image")
    uploads = [("blue", [(p.name, p) for p in sorted((root / "blue").iterdir())])]
    data = load_labelled_set(*gather_sources([("set.zip", archive)], uploads, tmp_path / "w"))
    assert data.classes == ["green", "red", "blue"] and len(data.images) == 6
    assert data.skipped[0]["file"] == "set.zip/red/notes.png"


def test_an_image_beside_the_class_folders_is_listed_and_does_not_hide_them(tmp_path):
    """'set/cover.png' beside 'set/red/' and 'set/green/' made 'set' the only class (refused: one class found);
    an image at the top of the zip was dropped unsaid. Both are listed now, and the classes are found."""
    root = colour_classes(tmp_path / "set", per_class=2)
    picture = (root / "red" / "red_0.png").read_bytes()
    for top, stray in (("set/", "set/cover.png"), ("", "cover.png")):
        archive = tmp_path / f"wrapped{len(top)}.zip"
        with zipfile.ZipFile(archive, "w") as bundle:
            for path in sorted(root.rglob("*.png")):
                bundle.write(path, f"{top}{path.relative_to(root)}")
            bundle.writestr(stray, picture)
        by_class, left_out = gather_sources([("set.zip", archive)], work_dir=tmp_path / f"w{len(top)}")
        assert sorted(by_class) == ["blue", "green", "red"]
        assert [item["file"] for item in left_out] == [f"set.zip/{stray}"]
        assert "not inside a class folder" in left_out[0]["error"]


def test_zip_entries_the_disk_cannot_hold_are_skipped_and_listed_not_the_end_of_training(tmp_path):
    root = colour_classes(tmp_path / "set", per_class=2)
    archive = zip_tree(root, tmp_path / "set.zip")
    picture = (root / "red" / "red_0.png").read_bytes()
    long_name = "r" * 252 + ".png"  # 256 bytes: one more than a file name may have
    with warnings.catch_warnings(), zipfile.ZipFile(archive, "a") as bundle:
        warnings.simplefilter("ignore")
        bundle.writestr(f"red/{long_name}", picture)
        bundle.writestr("green/green_0.png/inner.png", picture)  # a file where this entry's folder should be
    by_class, unextracted = gather_sources([("set.zip", archive)], work_dir=tmp_path / "w")
    data = load_labelled_set(by_class, unextracted)
    assert data.classes == ["blue", "green", "red"] and len(data.images) == 6
    assert [item["file"] for item in data.skipped] == [f"set.zip/red/{long_name}",
                                                       "set.zip/green/green_0.png/inner.png"]
    assert "longer than a file system allows" in data.skipped[0]["error"]
    assert "has the name of this entry's folder" in data.skipped[1]["error"]


@pytest.mark.parametrize(("layout", "expected"), [
    ({"ok": 2}, "at least two classes with images; found only 'ok'"),
    ({"ok": 2, "ng": 0}, "Class 'ng' has no images"),
    ({"ok": 2, "ng": -1}, "Class 'ng' has no usable images"),
])
def test_bad_class_layouts_say_what_to_fix(tmp_path, layout, expected):
    from tests.helpers import noise_images

    by_class = {}
    for name, count in layout.items():
        if count >= 0:
            by_class[name] = [(p.name, p) for p in noise_images(tmp_path / name, count, (16, 16))]
        else:
            (tmp_path / "broken.png").write_text("text")
            by_class[name] = [("broken.png", tmp_path / "broken.png")]
    with pytest.raises(UserInputError, match=expected):
        load_labelled_set(by_class)


def test_class_names_follow_the_annotation_rules_at_submit_and_in_zips(tmp_path):
    with pytest.raises(UserInputError, match=r"^Training settings: class_names: named class 1: a class name of "
                                             r"1,000 characters; at most 100 are accepted "
                                             r"\(FEWSHOT_MAX_CLASS_NAME_CHARS\)\.$"):
        Params(class_names=("a" * 1000, "b"))
    with pytest.raises(UserInputError, match="class_names: named class 2 has no name: give every class a name"):
        Params(class_names=("a", "  "))
    assert Params(class_names=("a/../b", "b\n")).class_names == ("a/../b", "b")  # labels only, never paths
    root = colour_classes(tmp_path / "set", per_class=1)
    (root / "red").rename(root / ("r" * 101))
    with pytest.raises(UserInputError, match=r"^The folder 'r{59}… of set: a class name of 101 characters; at most "
                                             "100 are accepted"):
        gather_sources([("set", root)])


def test_duplicate_class_names_say_where_each_one_is(tmp_path):
    with pytest.raises(UserInputError, match=r"^Duplicate class name 'Nut' \(named class 1 and named class 2\): "):
        gather_sources(uploads=[("nut", []), ("Nut ", [])])
    root = colour_classes(tmp_path / "set", per_class=1)
    with pytest.raises(UserInputError, match=r"^Duplicate class name 'red' \(the folder 'red' of set and named "
                                             r"class 1\): "):
        gather_sources([("set", root)], uploads=[("red", [])])


def test_duplicate_names_too_many_images_and_bad_settings(tmp_path, monkeypatch):
    root = colour_classes(tmp_path / "set", per_class=2)
    with pytest.raises(UserInputError, match="Duplicate class name 'Red'"):
        gather_sources([("set", root)], uploads=[("Red", [])])
    monkeypatch.setenv("FEWSHOT_FINETUNE_MAX_IMAGES", "5")
    with pytest.raises(UserInputError, match="6 images given; at most 5"):
        load_labelled_set(*gather_sources([("set", root)]))
    with pytest.raises(UserInputError,
                       match=r"Training settings: method: one of lora, selective-lora, linear.*; steps: "):
        Params(method="full", steps=0)
    with pytest.raises(UserInputError, match="does not exist"):
        LoraSettings(blocks="0,7").block_indices(2)


def test_a_tiff_of_several_pages_is_trained_on_and_classified_by_its_first_page_and_says_so(trained, tmp_path):
    """Training and prediction used a TIFF's first page without a word, as the anomaly inspection says it does."""
    from engine.finetune import predict

    root = colour_classes(tmp_path / "set", per_class=2)
    scan = several_pages(root / "red" / "scan.tiff", "red")
    data = load_labelled_set(*gather_sources([("set", root)]))
    note = "red/scan.tiff: a TIFF of 3 pages; only the first was used."
    assert len(data.images) == 7 and [n.split(" Save")[0] for n in data.notes] == [note]
    result = train_and_save(data, Params(preset=TINY, steps=1, eval_every=1, model_name="pages"), tmp_path / "run")
    assert result.notes == data.notes
    _, _, out = trained
    prediction = predict.run(predict.Inputs([("scan.tiff", scan)]), predict.Params(model=str(out / "model")),
                             tmp_path / "predicted")
    assert [n.split(" Save")[0] for n in prediction.notes] == ["scan.tiff: a TIFF of 3 pages; only the first was used."]
