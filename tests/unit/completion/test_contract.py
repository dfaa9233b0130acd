"""The completion job kinds' contracts: parameters declared once, read by the jobs, the CLI and the review."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

from engine.cli.completion import add_commands
from engine.completion import complete, evaluate, review
from engine.errors import UserInputError
from engine.params import from_args
from tasks.registry import contract


def test_both_kinds_declare_their_contract_and_share_the_completion_parameters():
    assert contract("completion") is complete and contract("completion_evaluate") is evaluate
    assert complete.Params.spec("score_threshold").default == 0.3
    assert evaluate.Params().score_threshold == complete.Params().score_threshold
    assert evaluate.Params.from_dict({"drop_fraction": "0.5", "seed": "1"}).to_dict()["seed"] == 1
    with pytest.raises(UserInputError, match="drawn_boxes is not valid JSON"):
        complete.Params.from_dict({"drawn_boxes": "[{"})
    with pytest.raises(UserInputError, match="seed: a whole number from 0"):
        evaluate.Params.from_dict({"seed": -1})
    drawn = [{"image": "a.png", "box": [1, 2, 3, 4], "category": "bolt"}]
    assert complete.Params(drawn_boxes=json.dumps(drawn)).drawn() == drawn


def test_the_contracts_import_no_torch():
    code = "import sys, engine.completion.complete, engine.completion.evaluate, engine.completion.review; " \
           "print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_the_command_line_keeps_its_option_names_and_reads_the_same_parameters():
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["complete", "evaluate", "--threshold", "0.4", "--min-score", "0.1", "--drop", "0.5",
                              "--seed", "2", "--stride", "5", "--text-queries", "--out", "x"])
    assert from_args(evaluate.Params, args) == evaluate.Params(score_threshold=0.4, min_score=0.1, drop_fraction=0.5,
                                                               seed=2, video_stride=5, text_queries=True)
    assert from_args(complete.Params, parser.parse_args(["complete", "run", "--out", "x"])) == complete.Params()


def test_a_review_is_saved_beside_the_proposals_and_exported(tmp_path):
    document = {"categories": ["bolt"], "category_ids": {"bolt": 1}, "images": [
        {"file": "a.png", "id": 1, "width": 20, "height": 10, "existing": [{"box": [0, 0, 5, 5], "category": "bolt"}],
         "proposals": [{"id": 0, "box": [10, 2, 4, 4], "category": "bolt", "score": 0.9, "exemplar": 0},
                       {"id": 1, "box": [1, 1, 2, 2], "category": "bolt", "score": 0.2, "exemplar": 0}]}]}
    names = review.save_review(tmp_path, document, accepted=[0], rejected=[0, 1])
    assert names == ["review.json", "accepted_coco.json", "accepted_yolo.zip", "accepted_voc.zip"]
    assert review.read_review(tmp_path / "review.json") == {"accepted": [0], "rejected": [1], "edited": {},
                                                            "added": []}
    assert len(json.loads((tmp_path / "accepted_coco.json").read_text())["annotations"]) == 2
    assert review.read_review(tmp_path / "missing.json") is None


def test_each_decision_replaces_the_saved_review_whole(tmp_path, monkeypatch):
    """A reload reading review.json while a decision is written sees the last decisions, not an empty file."""
    review.save_decisions(tmp_path, {"accepted": [0]})
    seen_meanwhile, rename = [], os.replace

    def replace(source, target):
        seen_meanwhile.append(review.read_review(tmp_path / "review.json"))  # the new one is whole, not yet there
        rename(source, target)

    monkeypatch.setattr(os, "replace", replace)
    assert review.save_decisions(tmp_path, {"accepted": [0, 2], "rejected": [1]}) == ["review.json"]
    assert seen_meanwhile == [{"accepted": [0], "rejected": [], "edited": {}, "added": []}]
    assert review.read_review(tmp_path / "review.json")["accepted"] == [0, 2]
    assert [path.name for path in tmp_path.iterdir()] == ["review.json"]  # nothing left beside it


def test_edited_and_added_boxes_are_exported_as_the_reviewer_left_them(tmp_path):
    document = {"categories": ["bolt"], "category_ids": {"bolt": 1}, "images": [
        {"file": "a.png", "id": 1, "width": 20, "height": 10, "existing": [],
         "proposals": [{"id": 0, "box": [10, 2, 4, 4], "category": "bolt", "score": 0.9, "exemplar": 0},
                       {"id": 1, "box": [1, 1, 2, 2], "category": "bolt", "score": 0.8, "exemplar": 0}]}]}
    review.save_review(tmp_path, document, accepted=[0], rejected=[1],
                       edited={"0": {"box": [11, 3, 5, 5], "category": "nut"}, "1": {"box": [0, 0, 1, 1],
                                                                                    "category": "bolt"}},
                       added=[{"image": "a.png", "box": [2, 2, 3, 3], "category": "bolt"}])
    saved = review.read_review(tmp_path / "review.json")
    assert saved["edited"] == {"0": {"box": [11, 3, 5, 5], "category": "nut"}}  # a rejected one's edit is dropped
    coco = json.loads((tmp_path / "accepted_coco.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    assert sorted((names[a["category_id"]], a["bbox"]) for a in coco["annotations"]) == [
        ("bolt", [2, 2, 3, 3]), ("nut", [11, 3, 5, 5])]
