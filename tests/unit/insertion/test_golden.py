"""Golden outputs of the tiny insertion preset: a refactor must leave the generated pixels as they were.

The values were recorded from the code before the tool contract (issue 13) on a fixed noise image,
box, prompt and seed; the tiny preset's random weights are seeded, so the pixels are reproducible up to
the order of CPU float sums, which follows torch's thread count (seen: 2.4e-4 on the mean of 0..255 pixels
within a full test run); hence a 1e-3 tolerance on 8-bit statistics.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.insertion.insert import Params
from engine.insertion.runs import run_image, run_video
from engine.video import iter_frames
from tests.helpers import moving_square_video


def test_image_pixels_are_the_recorded_ones(pipeline, tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (72, 96, 3), dtype=np.uint8)).save(photo)
    params = Params(prompt="a red ball", steps=2, seed=3, box="30,20,70,50", preset="insertion-tiny")
    summary = run_image(pipeline, ("photo.png", photo), params, tmp_path / "out").to_json()
    result = np.asarray(Image.open(tmp_path / "out" / "result_seed3.png")).astype(np.float64)
    assert summary["crop_box"] == [20, 5, 80, 65]
    assert result.mean() == pytest.approx(128.05632716049382, abs=1e-3)
    assert result.std() == pytest.approx(71.89812235759211, abs=1e-3)
    assert [result[35, 50].tolist(), result[25, 40].tolist(), result[45, 65].tolist()] == [
        [67, 180, 106], [230, 207, 79], [192, 119, 186]]


def test_video_frames_are_the_recorded_ones(pipeline, tmp_path):
    moving_square_video(tmp_path / "clip.mkv", frames=2, size=(96, 72), lossless=True)
    params = Params(prompt="a red ball", steps=2, seed=3, box="20,10,60,50", preset="insertion-tiny")
    run_video(pipeline, ("clip.mkv", tmp_path / "clip.mkv"), params, tmp_path / "out")
    frames = [np.asarray(f.image).astype(np.float64) for f in iter_frames(tmp_path / "out" / "result_lossless.mkv")]
    expected = [(99.5534336419753, 31.22025806544632, [91, 166, 123], [94, 137, 130]),
                (99.55555555555556, 31.225301968510912, [91, 166, 123], [94, 137, 131])]
    assert len(frames) == 2
    for frame, (mean, std, centre, corner) in zip(frames, expected, strict=True):
        assert frame.mean() == pytest.approx(mean, abs=1e-3) and frame.std() == pytest.approx(std, abs=1e-3)
        assert frame[30, 40].tolist() == centre and frame[15, 25].tolist() == corner
