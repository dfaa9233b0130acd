"""The three anomaly job kinds follow the tool contract: torch-free modules, parameters checked once."""

from __future__ import annotations

import pytest

from engine.anomaly import evaluate, inspect_images, inspect_video
from engine.anomaly.common import DEFAULT_PRESET
from engine.errors import UserInputError
from tasks.registry import contract
from tests.unit.test_architecture import modules_loaded_by


def test_contract_modules_import_no_torch():
    imports = "engine.anomaly.inspect_images, engine.anomaly.inspect_video, engine.anomaly.evaluate"
    assert modules_loaded_by(imports, ("torch", "open_clip", "engine.anomaly.pipeline")) == []


def test_the_registry_names_the_three_kinds():
    assert [contract(kind) for kind in ("anomaly", "anomaly_video", "anomaly_evaluate")] == [
        inspect_images, inspect_video, evaluate]


def test_defaults_and_threshold_rules():
    assert inspect_images.Params().to_dict() == {"method": "winclip", "object_name": "", "preset": DEFAULT_PRESET,
                                                 "mask_background": False, "rotate_references": False,
                                                 "threshold": "auto",
                                                 "reference_set": None, "batch_size": None}
    assert evaluate.Params().shots == 0 and inspect_video.Params().stride is None
    assert inspect_images.Params.from_dict({"threshold": "0.25"}).threshold == 0.25
    assert inspect_images.Params.from_dict({"threshold": " Calibrate"}).threshold == "calibrate"


@pytest.mark.parametrize(("kind", "values", "named"), [
    (inspect_images, {"threshold": "sometimes"}, "threshold: auto, calibrate or a number from 0 to 1"),
    (inspect_images, {"threshold": 1.5}, "threshold: a number from 0 to 1"),
    (inspect_video, {"stride": 2, "fps": 3}, "either a frame stride or frames per second"),
    (inspect_video, {"stride": 0}, "stride: a whole number of at least 1"),
    (evaluate, {"shots": "two"}, "shots: a whole number from 0 to 64"),
    (evaluate, {"threshold": 0.5}, "Unknown parameter threshold"),
])
def test_a_bad_value_is_refused_naming_the_field(kind, values, named):
    with pytest.raises(UserInputError, match=named):
        kind.Params.from_dict(values)


def test_a_video_too_short_for_musc_is_refused_before_its_model_loads(tmp_path, monkeypatch):
    """A 1-frame clip (or a step past its length) gave MuSc one frame: the job loaded the model, then failed."""
    from tests.helpers import moving_square_video

    class Loaded(Exception):
        pass

    def load_scorer(*_args, **_kwargs):
        raise Loaded

    monkeypatch.setattr(inspect_video, "load_scorer", load_scorer)
    moving_square_video(tmp_path / "clip.mp4", frames=6)
    video = inspect_video.Inputs(video=[("my clip.mp4", tmp_path / "clip.mp4")], references=[])
    musc = inspect_video.Params.from_dict({"method": "musc", "stride": 2})
    with pytest.raises(UserInputError, match=r"my clip\.mp4: 3 frame\(s\) sampled; MuSc .* at least 5"):
        inspect_video.run(video, musc, tmp_path / "out")
    with pytest.raises(Loaded):  # every frame: 6, enough
        inspect_video.run(video, inspect_video.Params.from_dict({"method": "musc"}), tmp_path / "out")
    with pytest.raises(Loaded):  # good parts join the set: the scorer counts them
        inspect_video.run(inspect_video.Inputs(video=video.video, references=[("good.png", tmp_path / "g.png")]),
                          musc, tmp_path / "out")
    with pytest.raises(Loaded):  # WinCLIP scores one frame alone
        inspect_video.run(video, inspect_video.Params.from_dict({"stride": 100}), tmp_path / "out")
