"""The tiny classifier preset trained a few seeded steps gives the curves, metrics and logits recorded from the
code before the contract refactoring (golden_classifier.json), to 1e-5: float32 kernels differ between CPUs
(AVX2, AVX-512) by about 1e-6 after these steps; a change in the method moves them far more."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.finetune.classify import Params
from engine.finetune.classify.data import gather_sources, load_labelled_set
from engine.finetune.classify.model import load_classifier
from engine.finetune.classify.runs import train_and_save
from engine.finetune.classify.train import predict_logits, to_tensor
from tests.helpers import colour_classes

torch.set_num_threads(1)
GOLDEN = Path(__file__).with_name("golden_classifier.json")


def close(actual, expected) -> bool:
    if isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(close(actual[k], expected[k]) for k in expected)
    if isinstance(expected, list):
        return len(actual) == len(expected) and all(close(a, e) for a, e in zip(actual, expected, strict=True))
    if isinstance(expected, float):
        return actual == pytest.approx(expected, abs=1e-5)
    return actual == expected


def test_the_tiny_classifier_trains_as_before(tmp_path):
    data = load_labelled_set(*gather_sources([("colours", colour_classes(tmp_path / "colours"))]))
    params = Params(model_name="golden", preset="finetune-clip-tiny", steps=8, eval_every=4)
    result = train_and_save(data, params, tmp_path / "out")
    classifier, preprocess, _ = load_classifier(tmp_path / "out" / "model", torch.device("cpu"))
    logits = predict_logits(classifier, to_tensor(data.images, preprocess)).tolist()
    golden = json.loads(GOLDEN.read_text())
    assert result.best_step == golden["best_step"]
    assert close(result.history, golden["history"])
    assert close(result.metrics, golden["metrics"])
    assert close(logits, golden["logits"])
