"""The method choice: parameters (method from the preset, preset from the method), and every method through the
same inspection, video and evaluation code, with its threshold rule."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine.anomaly import evaluate, inspect_images, inspect_video
from engine.anomaly.methods import METHODS
from engine.errors import UserInputError
from engine.presets import PRESETS
from engine.video import VideoWriter, iter_frames
from tests.helpers import mvtec_subset
from tests.unit.anomaly.test_evaluation import make_mvtec


def test_each_method_has_a_real_and_a_tiny_preset():
    for method in METHODS.values():
        real, tiny = PRESETS[method.default_preset], PRESETS[f"{method.name}-tiny"]
        assert (real.method, real.random_weights, tiny.method, tiny.random_weights) == (
            method.name, False, method.name, True)


@pytest.mark.parametrize(("given", "method", "preset"), [
    ({}, "winclip", "winclip-vit-b-16-plus-240"),
    ({"preset": "musc-tiny"}, "musc", "musc-tiny"),
    ({"method": "anomalydino"}, "anomalydino", METHODS["anomalydino"].default_preset),
    ({"method": "musc", "preset": "musc-tiny"}, "musc", "musc-tiny"),
])
def test_the_method_follows_the_preset_and_the_preset_the_method(given, method, preset):
    params = inspect_images.Params.from_dict(given)
    assert (params.method, params.preset) == (method, preset)


@pytest.mark.parametrize(("given", "named"), [
    ({"method": "winclip", "preset": "musc-tiny"}, "preset: 'musc-tiny' is a MuSc model; method winclip takes"),
    ({"method": "patchcore"}, "method: "),
    ({"preset": "completion-tiny"}, "preset: 'completion-tiny' is not an anomaly model"),
])
def test_a_method_and_preset_that_do_not_match_are_refused(given, named):
    with pytest.raises(UserInputError, match=named):
        inspect_images.Params.from_dict(given)


def test_evaluation_runs_and_anomalydino_needs_shots():
    params = evaluate.Params.from_dict({"methods": "winclip-tiny, musc-tiny,winclip-tiny", "shots": 1})
    assert [(run.method, run.preset) for run in params.runs()] == [("winclip", "winclip-tiny"), ("musc", "musc-tiny")]
    assert [run.preset for run in evaluate.Params(preset="musc-tiny").runs()] == ["musc-tiny"]
    with pytest.raises(UserInputError, match="shots: AnomalyDINO compares with good parts"):
        evaluate.Params.from_dict({"methods": "winclip-tiny,anomalydino-tiny"})
    with pytest.raises(UserInputError, match=r"methods: each one of winclip, musc, anomalydino, .*musc-tiny.*, not "
                                             "'completion-tiny'"):
        evaluate.Params.from_dict({"methods": "musc,completion-tiny"})


def _plates(metal_plate_images, count):
    return [(p.name, p) for p in metal_plate_images[:count]]


def test_musc_scores_a_batch_against_itself_with_a_set_threshold(metal_plate_images, tmp_path):
    result = inspect_images.run(inspect_images.Inputs(_plates(metal_plate_images, 5), []),
                                inspect_images.Params(preset="musc-tiny"), tmp_path)
    assert result.method == "musc" and result.mode == "MuSc (zero-shot over the set)"
    assert result.threshold.source == "set" and "median + 3 robust" in result.threshold.rule
    scores = sorted(r["score"] for r in result.images)
    median = scores[2]
    assert result.threshold.image == pytest.approx(
        min(1.0, median + 3 * 1.4826 * float(np.median([abs(s - median) for s in scores]))), abs=1e-5)
    assert all(0 <= r["map_min"] <= r["map_max"] <= 1 for r in result.images)
    assert json.loads((tmp_path / "scores.json").read_text())["method"] == "musc"


def test_musc_good_parts_join_the_set_and_calibrate(metal_plate_images, tmp_path):
    images, goods = _plates(metal_plate_images, 3), _plates(metal_plate_images[3:], 2)
    result = inspect_images.run(inspect_images.Inputs(images, goods), inspect_images.Params(preset="musc-tiny"),
                                tmp_path)
    assert len(result.images) == 3 and result.threshold.source == "calibrated"
    assert "within the set" in result.threshold.rule and len(result.threshold.good_scores) == 2
    assert result.mode == "MuSc (zero-shot over the set; 2 good parts joined it)"


def test_musc_refuses_a_set_too_small_and_suggests_winclip(metal_plate_images, tmp_path):
    with pytest.raises(UserInputError, match=r"at least 5 images or frames \(3 given\), or use WinCLIP"):
        inspect_images.run(inspect_images.Inputs(_plates(metal_plate_images, 2), _plates(metal_plate_images[2:], 1)),
                           inspect_images.Params(preset="musc-tiny"), tmp_path)


def test_anomalydino_needs_good_parts_and_calibrates_from_two(metal_plate_images, tmp_path):
    params = inspect_images.Params(preset="anomalydino-tiny")

    def inspect(images: int, goods: int, folder: str) -> inspect_images.Result:
        inputs = inspect_images.Inputs(_plates(metal_plate_images, images), _plates(metal_plate_images[4:], goods))
        return inspect_images.run(inputs, params, tmp_path / folder)

    with pytest.raises(UserInputError, match="AnomalyDINO compares with good parts"):
        inspect(1, 0, "none")
    one_good = inspect(4, 1, "one")
    assert one_good.threshold.source == "set" and one_good.mode == "AnomalyDINO (1 good references)"
    with pytest.raises(UserInputError, match="AnomalyDINO scores have no fixed threshold: give 2 or more good parts"):
        inspect(1, 1, "small")
    two_good = inspect(1, 2, "two")
    assert two_good.threshold.source == "calibrated" and len(two_good.threshold.good_scores) == 2


@pytest.mark.parametrize(("tool", "role"), [("anomaly", "images"), ("anomaly_video", "video")])
def test_anomalydino_without_good_parts_is_refused_at_submit_with_nothing_stored(metal_plate_images, tool, role):
    from tasks import client

    before = len(client.list_jobs(limit=10_000))
    for params in ({"method": "anomalydino"}, {"preset": "anomalydino-tiny"}):
        with pytest.raises(UserInputError, match="AnomalyDINO compares with good parts: add at least one image"):
            client.submit(tool, {"object_name": "plate", **params}, {role: [metal_plate_images[0]], "references": []})
    assert len(client.list_jobs(limit=10_000)) == before


def test_a_video_is_musc_s_set_scored_then_overlaid(tmp_path):
    rng = np.random.default_rng(3)
    with VideoWriter(tmp_path / "line.mp4", 10) as writer:
        for index in range(12):
            frame = np.full((60, 80, 3), 120, np.uint8) + rng.integers(0, 20, (60, 80, 3), dtype=np.uint8)
            if index == 6:
                frame[20:35, 30:50] = 250  # one frame with a bright patch
            writer.write(Image.fromarray(frame))
    result = inspect_video.run(inspect_video.Inputs([("line.mp4", tmp_path / "line.mp4")], []),
                               inspect_video.Params(preset="musc-tiny", stride=2), tmp_path / "out")
    assert result.threshold.source == "set" and result.counts["frames"] == 6
    assert [r["frame"] for r in result.frames] == [0, 2, 4, 6, 8, 10]
    overlay = list(iter_frames(tmp_path / "out" / "overlay.mp4"))
    assert len(overlay) == 6 and overlay[0].image.size == (80, 60)


def test_evaluation_compares_methods_in_one_table(tmp_path):
    root = make_mvtec(tmp_path / "set")
    params = evaluate.Params.from_dict({"methods": "winclip-tiny,musc-tiny,anomalydino-tiny", "shots": 1,
                                        "object_name": "part"})
    result = evaluate.run(evaluate.Inputs([("set", root)]), params, tmp_path / "out")
    assert [run["method"] for run in result.comparison] == ["winclip", "musc", "anomalydino"]
    assert [run["run"] for run in result.comparison] == [
        "WinCLIP+ 1-shot · winclip-tiny", "MuSc 1-shot · musc-tiny", "AnomalyDINO 1-shot · anomalydino-tiny"]
    for run in result.comparison:
        assert 0 <= run["metrics"]["image_auroc"] <= 1 and run["seconds_per_image"] > 0
        assert len(run["roc"]) == 2 and run["roc"][0][0] == 0.0
    assert result.method == "winclip" and result.metrics == json.loads(
        (tmp_path / "out" / "metrics.json").read_text())["metrics"]
    assert Image.open(tmp_path / "out" / "roc.png").size == (420, 420)


def test_a_set_whose_features_exceed_the_memory_allowed_is_refused_before_encoding(metal_plate_images, tmp_path,
                                                                                   monkeypatch):
    from engine.anomaly.musc import MuscPipeline
    from engine.loading import get_pipeline

    pipeline = get_pipeline(MuscPipeline, "musc-tiny")
    # 224 px in 16 px patches: 196 patches x 64 channels x 4 bytes x (4 layers + 1) = 250,880 bytes per image
    assert pipeline.set_memory(1) == 196 * 64 * 4 * 5
    monkeypatch.setenv("FEWSHOT_MUSC_MEMORY_MB", "1")
    monkeypatch.setattr(MuscPipeline, "encode", lambda *a: pytest.fail("encoded before the check"))
    with pytest.raises(UserInputError, match=r"5 images need about 1.3 MB, more than the 1.0 MB allowed "
                                             r"\(FEWSHOT_MUSC_MEMORY_MB\). Give at most 4 images"):
        pipeline([Image.new("RGB", (32, 32))] * 5)


def test_anomalydino_options_reach_its_pipeline(metal_plate_images, tmp_path, monkeypatch):
    from engine.anomaly.anomalydino import AnomalyDinoPipeline

    seen = []
    scoring, memory = AnomalyDinoPipeline.__call__, AnomalyDinoPipeline.reference_memory
    monkeypatch.setattr(AnomalyDinoPipeline, "reference_memory", lambda self, refs, **kw: seen.append(kw) or
                        memory(self, refs, **kw))
    monkeypatch.setattr(AnomalyDinoPipeline, "__call__", lambda self, images, **kw: seen.append(
        {"mask_background": kw["mask_background"], "views": kw["references"].views}) or scoring(self, images, **kw))
    params = inspect_images.Params(preset="anomalydino-tiny", mask_background=True, rotate_references=True,
                                   threshold=0.2)
    inspect_images.run(inspect_images.Inputs(_plates(metal_plate_images, 1), _plates(metal_plate_images[4:], 1)),
                       params, tmp_path)
    assert seen == [{"rotate": True}, {"mask_background": True, "views": 8}]


def test_cli_runs_each_method_on_the_shared_data_and_compares_them(shared_data, tmp_path, capsys):
    from engine.__main__ import main

    root = mvtec_subset(shared_data / "anomaly" / "magnetic_tile", tmp_path / "tiles", per_folder=3)
    images = [str(root / "test" / "good"), str(root / "test" / "crack")]
    for method, refs in (("musc", []), ("anomalydino", ["--refs", str(root / "train" / "good")])):
        assert main(["anomaly", "--method", method, "--preset", f"{method}-tiny", "--images", *images, *refs,
                     "--out", str(tmp_path / method)]) == 0
        scores = json.loads((tmp_path / method / "scores.json").read_text())
        assert scores["method"] == method and len(scores["images"]) > 5
        assert scores["threshold"]["source"] == ("set" if method == "musc" else "calibrated")
    assert main(["evaluate", "--data", str(root), "--object", "magnetic tile", "--shots", "1",
                 "--methods", "winclip-tiny,musc-tiny,anomalydino-tiny", "--out", str(tmp_path / "report")]) == 0
    printed = capsys.readouterr().out
    assert "method" in printed and "s/image" in printed
    for run in ("WinCLIP+ 1-shot · winclip-tiny", "MuSc 1-shot · musc-tiny", "AnomalyDINO 1-shot · anomalydino-tiny"):
        assert run in printed
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert [run["method"] for run in metrics["comparison"]] == ["winclip", "musc", "anomalydino"]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_bf16_the_default_on_cpus_that_have_it_stays_within_the_rule_of_float32(method):
    """On a CPU with native bf16 (AMX, AVX512-BF16) the methods run in bfloat16 by default (bf16_safe): the maps
    come back as float32 arrays within the rule's 1e-2 of float32's (elsewhere torch emulates it: slower, same)."""
    import torch

    from engine.anomaly.common import AnomalyParams
    from engine.anomaly.scorers import SCORERS, pipeline_class

    assert METHODS[method].bf16_safe
    images = [Image.effect_noise((96, 72), 60 + i).convert("RGB") for i in range(METHODS["musc"].min_images + 1)]
    references = [] if METHODS[method].references == "join the set" else [Image.effect_noise((96, 72), 40)
                                                                           .convert("RGB")]
    found = {}
    for dtype in (torch.float32, torch.bfloat16):
        pipeline = pipeline_class(SCORERS[method].method).from_pretrained(f"{method}-tiny", device="cpu", dtype=dtype)
        scorer = SCORERS[method](pipeline)
        scorer.prepare(AnomalyParams(method=method, object_name="metal plate"), references)
        results = scorer.score(images)
        found[dtype] = (np.stack([r.anomaly_map for r in results]), np.array([r.score for r in results]))
    (maps, scores), (low_maps, low_scores) = found[torch.float32], found[torch.bfloat16]
    assert low_maps.dtype == np.float32 and low_maps.shape == maps.shape
    assert np.abs(low_maps - maps).max() < 1e-2 and np.abs(low_scores - scores).max() < 1e-2
