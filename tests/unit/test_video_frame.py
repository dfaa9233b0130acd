"""The video-frame job: the frame a page draws on (insertion's anchor, completion's first frame)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine import video_frame
from engine.errors import UserInputError
from engine.video import iter_frames
from tests.helpers import moving_square_video


def test_the_frame_job_writes_the_frame_to_draw_on(tmp_path):
    moving_square_video(tmp_path / "clip.mkv", frames=3, size=(96, 72), lossless=True)
    video = [("clip.mkv", tmp_path / "clip.mkv")]
    result = video_frame.run(video_frame.Inputs(video=video), video_frame.Params(frame=2), tmp_path / "out")
    assert result.to_json() == {"frame": 2} and result.outputs == ["frame.png"]
    expected = [f.image for f in iter_frames(tmp_path / "clip.mkv")][2]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "frame.png")), np.asarray(expected))
    with pytest.raises(UserInputError, match=r"clip\.mkv: frame 5 could not be decoded; choose an earlier frame"):
        video_frame.run(video_frame.Inputs(video=video), video_frame.Params(frame=5), tmp_path / "again")


def test_a_negative_frame_is_refused_by_name():
    with pytest.raises(UserInputError, match="frame"):
        video_frame.Params.from_dict({"frame": -1})
