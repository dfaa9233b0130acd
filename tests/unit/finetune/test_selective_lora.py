"""Selective LoRA and forgetting on the tiny preset: the gate's straight-through gradient, the sparsity weight's two
extremes, retention by hand, the saved model's active adapters only, the CLI's lines and the methods' trade-off."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from engine.errors import UserInputError
from engine.finetune import classify
from engine.finetune.classify import Params
from engine.finetune.classify.data import gather_sources, load_labelled_set, load_retention_set
from engine.finetune.classify.forgetting import (
    RETENTION_SHAPES,
    generated_retention_set,
    measure_retention,
    retention_accuracy,
)
from engine.finetune.classify.model import LoraSettings, build_classifier, load_classifier, save_classifier
from engine.finetune.classify.runs import train_and_save
from engine.finetune.classify.selective import THRESHOLD, BlockGates, HardThreshold, active_blocks_line
from engine.finetune.classify.train import predict_logits, to_tensor, train
from tests.helpers import colour_classes

torch.set_num_threads(1)
TINY = "finetune-clip-tiny"
FAST = Params(preset=TINY, method="selective-lora", steps=40, eval_every=5, patience=100)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return colour_classes(tmp_path_factory.mktemp("colours"))


@pytest.fixture(scope="module")
def colours(folder):
    return load_labelled_set(*gather_sources([("colours", folder)]))


@pytest.fixture(scope="module")
def all_on(colours, tmp_path_factory):
    """A Selective LoRA run without penalty: (summary, output folder)."""
    out = tmp_path_factory.mktemp("all_on")
    return train_and_save(colours, FAST.replace(model_name="all", sparsity=0.0), out).to_json(), out


def test_the_gate_is_a_hard_threshold_forward_and_the_identity_backward():
    scores = torch.tensor([THRESHOLD - 0.05, THRESHOLD, 0.5, -1.0], requires_grad=True)
    gates = HardThreshold.apply(scores)
    assert gates.tolist() == [0.0, 1.0, 1.0, 0.0]
    (gates * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert scores.grad.tolist() == [1.0, 2.0, 3.0, 4.0]  # straight through, also where the gate is off
    block_gates = BlockGates([3, 7])
    with torch.no_grad():
        block_gates.scores.copy_(torch.tensor([0.5, -0.25]))
    block_gates.penalty().backward()  # mean |s|: d/ds = sign(s) / 2
    assert block_gates.scores.grad.tolist() == [0.5, -0.5]
    assert block_gates.active() == [3] and block_gates.report()["active_share"] == 0.5


def test_the_active_blocks_line_names_count_share_and_blocks():
    assert active_blocks_line({"candidates": list(range(12)), "active": [4, 9, 11]}) == "3 of 12 (25 %): 4, 9, 11"
    assert active_blocks_line({"candidates": [0, 1], "active": []}) == "0 of 2 (0 %): none"


class FlippingTower(nn.Module):
    """A stand-in classifier: its features are the pixels at WiSE-FT mix 0, the pixels reversed once tuned."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))
        self.wise_alpha = 1.0

    def set_wise_alpha(self, alpha: float) -> None:
        self.wise_alpha = alpha

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels if self.wise_alpha == 0 else pixels.flip(-1)


def test_retention_is_the_share_of_images_nearest_their_own_class_text_before_and_after():
    head = torch.eye(2)  # class 0 is feature 0, class 1 is feature 1
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.2, 0.8]])
    labels = [0, 1, 0, 0]
    assert retention_accuracy(features, head, labels) == 0.75
    from engine.finetune.classify.forgetting import Retention

    tower = FlippingTower()
    report = measure_retention(tower, Retention(["a", "b"], "given", head, features, labels))
    assert report["zero_shot"] == 0.75 and report["fine_tuned"] == 0.25  # flipped: only [0.2, 0.8] is right
    assert report["images"] == 4 and report["source"] == "given" and tower.wise_alpha == 1.0


def test_the_generated_retention_set_is_the_same_every_time_and_user_sets_are_checked(tmp_path):
    first, second = generated_retention_set(per_class=2), generated_retention_set(per_class=2)
    assert first.classes == list(RETENTION_SHAPES) and len(first.images) == 2 * len(RETENTION_SHAPES)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(first.images, second.images, strict=True))
    assert load_retention_set([]) is None
    (tmp_path / "only" / "circle").mkdir(parents=True)
    first.images[0].save(tmp_path / "only" / "circle" / "one.png")
    with pytest.raises(UserInputError, match=r"^Retention images: A classifier needs at least two classes"):
        load_retention_set([("only", tmp_path / "only")])


def test_no_penalty_leaves_every_block_on(all_on):
    summary, _ = all_on
    blocks = summary["blocks"]
    assert blocks["active"] == [0, 1] and blocks["active_share"] == 1.0
    assert all(score > 1.0 for score in blocks["scores"])  # the adapters helped: the scores rose from 1


def test_a_large_sparsity_weight_turns_every_block_off_and_only_the_head_is_kept(folder, tmp_path):
    retention = colour_classes(tmp_path / "retention", per_class=2, seed=1)
    roles = {"dataset": [("colours", folder)], "retention": [("retention", retention)]}
    inputs = classify.Inputs.from_roles(lambda role: roles.get(role, []))
    summary = classify.run(inputs, FAST.replace(model_name="off", sparsity=100.0), tmp_path).to_json()
    assert summary["retention"]["source"] == "given" and summary["retention"]["images"] == 6
    assert summary["blocks"]["active"] == [] and all(s < THRESHOLD for s in summary["blocks"]["scores"])
    weights = load_file(tmp_path / "model/weights.safetensors")
    assert sorted(weights) == ["head.bias", "head.weight", "zero_shot_head"]
    assert summary["trainable_parameters"] == weights["head.weight"].numel() + weights["head.bias"].numel()
    assert json.loads((tmp_path / "model/model.json").read_text())["lora"] is None
    assert summary["metrics"]["fine_tuned"]["accuracy"] >= 0.99  # the head alone separates colours


def test_the_saved_model_keeps_the_active_blocks_only_and_reloads_equal(colours, all_on, tmp_path):
    _, all_out = all_on
    classifier, preprocess = build_classifier(TINY, colours.classes, CPU, LoraSettings(8, "all", selective=True))
    pixels = to_tensor(colours.images, preprocess)
    train(classifier, pixels, colours.labels, pixels[:0], [], FAST.replace(steps=5, sparsity=0.0))
    with torch.no_grad():
        classifier.gates.scores[0] = -1.0  # block 0 off: its adapters must not be saved
    before = predict_logits(classifier, pixels)
    save_classifier(classifier, tmp_path / "model", {"name": "one", "base_preset": TINY})
    loaded, _, meta = load_classifier(tmp_path / "model", CPU)
    assert torch.equal(predict_logits(loaded, pixels), before)
    assert meta["lora"] == {"rank": 8, "blocks": "1", "selective": False}
    kept = [name for name in load_file(tmp_path / "model/weights.safetensors") if "lora_" in name]
    assert kept and all("resblocks.1." in name for name in kept)
    size = (tmp_path / "model/weights.safetensors").stat().st_size
    assert size < 0.8 * (all_out / "model/weights.safetensors").stat().st_size


def test_the_cli_trains_selective_lora_and_prints_its_blocks_retention_and_gain(folder, tmp_path, capsys):
    from engine.__main__ import main

    assert main(["finetune", "classify", "--data", str(folder), "--out", str(tmp_path), "--preset", TINY,
                 "--method", "selective-lora", "--steps", "40", "--patience", "100"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "metrics.json").read_text())
    zero, tuned = summary["metrics"]["zero_shot"]["accuracy"], summary["metrics"]["fine_tuned"]["accuracy"]
    assert tuned >= 0.99 and tuned - zero >= 0.5
    assert summary["settings"]["method"] == "selective-lora" and summary["settings"]["sparsity"] == 5.0
    blocks, retention = summary["blocks"], summary["retention"]
    assert len(blocks["scores"]) == 2 and blocks["candidates"] == [0, 1]
    assert f"active blocks: {active_blocks_line(blocks)}" in printed
    assert retention["source"] == "generated shapes" and retention["images"] == 40
    assert f"retention: zero-shot {retention['zero_shot']:.3f} -> fine-tuned {retention['fine_tuned']:.3f}" in printed
    assert f"trainable parameters: {summary['trainable_parameters']:,}" in printed


def test_comparing_methods_writes_the_trade_off_table_and_plot(folder, tmp_path, capsys):
    from engine.__main__ import main

    retention = colour_classes(tmp_path / "retention", per_class=2, seed=1)  # other images, named classes
    assert main(["finetune", "classify", "--data", str(folder), "--out", str(tmp_path / "out"), "--preset", TINY,
                 "--compare-methods", "--retention", str(retention), "--steps", "20"]) == 0
    rows = {row["method"]: row for row in json.loads((tmp_path / "out/methods.json").read_text())}
    assert list(rows) == ["zero-shot", "selective-lora", "WiSE-FT 0.25 (lora)", "WiSE-FT 0.5 (lora)",
                          "WiSE-FT 0.75 (lora)", "lora", "linear"]
    # a linear probe leaves the tower as it was: nothing forgotten
    assert rows["linear"]["retention_accuracy"] == rows["zero-shot"]["retention_accuracy"]
    assert rows["linear"]["active_blocks"] == 0 and rows["lora"]["active_blocks"] == 2
    assert rows["linear"]["trainable_parameters"] < rows["lora"]["trainable_parameters"]
    assert rows["lora"]["new_task_accuracy"] - rows["zero-shot"]["new_task_accuracy"] >= 0.5
    csv_lines = (tmp_path / "out/methods.csv").read_text().splitlines()
    assert csv_lines[0].startswith("method,new_task_accuracy,retention_accuracy") and len(csv_lines) == 8
    assert (tmp_path / "out/methods.png").read_bytes()[:4] == b"\x89PNG"
    assert "selective-lora" in capsys.readouterr().out
