"""Insertion runs on files: what they write for images and videos, and the messages for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine.errors import UserInputError
from engine.insertion.regions import interpolate_boxes, mask_from_box, parse_keyframes
from engine.insertion.runs import run_image, run_video
from engine.video import iter_frames
from tests.helpers import moving_square_video
from tests.unit.insertion.common import SIZE, noise_image, settings


def test_video_frames_keep_outside_pixels_and_follow_the_anchor(pipeline, tmp_path):
    source = tmp_path / "clip.mkv"
    moving_square_video(source, frames=4, size=SIZE, lossless=True)
    result = run_video(pipeline, ("clip.mkv", source), settings(region_mode="interpolate", anchor_frame=1, chunk_size=2,
                                                                keyframes="0: 20,10,60,50\n3: 40,20,80,60"),
                       tmp_path / "out")
    summary, files = result.to_json(), result.outputs
    assert files == ["result.mp4", "result_lossless.mkv", "anchor.png", "anchor_mask.png", "summary.json"]
    assert summary["frames"] == 4 and summary["anchor_frame"] == 1 and summary["audio"] is None
    inputs = [np.asarray(f.image) for f in iter_frames(source)]
    outputs = [np.asarray(f.image) for f in iter_frames(tmp_path / "out" / "result_lossless.mkv")]
    assert len(outputs) == 4
    boxes = parse_keyframes("0: 20,10,60,50\n3: 40,20,80,60", (96, 72))
    for index, (before, after) in enumerate(zip(inputs, outputs, strict=True)):
        mask = mask_from_box(interpolate_boxes(boxes, index), (96, 72))
        assert np.array_equal(after[~mask], before[~mask]), f"frame {index} changed outside its mask"
        assert (after[mask] != before[mask]).any()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "anchor.png")), outputs[1])
    browser = list(iter_frames(tmp_path / "out" / "result.mp4"))
    assert len(browser) == 4 and browser[0].image.size == (96, 72)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["extended_attention"] is True


def test_the_same_seed_gives_the_same_video_twice(pipeline, tmp_path):
    source = tmp_path / "clip.mkv"
    moving_square_video(source, frames=2, size=SIZE, lossless=True)
    outputs = []
    for name in ("first", "second"):
        run_video(pipeline, ("clip.mkv", source), settings(box="20,10,60,50"), tmp_path / name)
        outputs.append([np.asarray(f.image) for f in iter_frames(tmp_path / name / "result_lossless.mkv")])
    assert all(np.array_equal(a, b) for a, b in zip(*outputs, strict=True))


def test_progress_counts_frames_and_steps_and_can_cancel(pipeline, tmp_path):
    source = tmp_path / "clip.mkv"
    moving_square_video(source, frames=3, size=SIZE, lossless=True)
    messages = []

    def progress(fraction: float, message: str) -> None:
        messages.append(message)
        if message.startswith("Frame 2 of 3"):
            raise KeyboardInterrupt  # what a cancelled job's progress call does (JobCancelled)

    with pytest.raises(KeyboardInterrupt):
        run_video(pipeline, ("clip.mkv", source), settings(box="20,10,60,50"), tmp_path / "out", progress=progress)
    assert messages[:2] == ["Anchor frame 0 · step 1 of 2", "Anchor frame 0 · step 2 of 2"]
    assert "Frame 1 of 3 · step 1 of 2" in messages and messages[-1] == "Frame 2 of 3 · step 1 of 2"


def test_a_prompt_over_the_tokenizer_length_is_cut_and_the_result_says_so(pipeline, tmp_path):
    image_path = tmp_path / "photo.png"
    noise_image().save(image_path)
    long_prompt = "a small red wooden toy car " * 6  # the tiny tokenizer reads one token per character
    result = run_image(pipeline, ("photo.png", image_path), settings(prompt=long_prompt, box=[10, 10, 40, 40]),
                       tmp_path / "out")
    summary, files = result.to_json(), result.outputs
    assert files == ["result_seed3.png", "mask.png", "summary.json"]
    assert len(summary["notes"]) == 1 and "tokens long and the text encoder reads 75" in summary["notes"][0]


def test_the_result_says_whether_a_painted_region_went_beyond_the_box(pipeline, tmp_path):
    """What a reloaded form cannot show (the editor does not paint a layer given back) is recorded by the run: a
    stroke outside the box, or a stroke without a box, is a region the box alone would not give."""
    image_path = tmp_path / "photo.png"
    noise_image().save(image_path)
    blank, stroke = tmp_path / "blank.png", tmp_path / "stroke.png"
    Image.new("RGBA", SIZE, (0, 0, 0, 0)).save(blank)
    layer = Image.new("RGBA", SIZE, (0, 0, 0, 0))
    layer.paste((255, 0, 255, 255), (50, 40, 70, 60))
    layer.save(stroke)

    def painted(box: str | None, *layers) -> bool:
        out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
        return run_image(pipeline, ("photo.png", image_path), settings(box=box), out,
                         [(p.name, p) for p in layers]).painted

    assert not painted("10,10,40,40", blank)  # the editor's blank layer beside a typed box
    assert painted("10,10,40,40", blank, stroke) and painted(None, stroke)
    assert not painted("45,35,75,65", stroke)  # a stroke inside the box adds nothing to it


def test_no_region_and_a_mask_of_another_size_are_refused(pipeline, tmp_path):
    image_path, mask_path = tmp_path / "photo.png", tmp_path / "mask.png"
    noise_image().save(image_path)
    Image.new("L", (50, 50), 255).save(mask_path)
    with pytest.raises(UserInputError, match="Mark the region"):
        run_image(pipeline, ("photo.png", image_path), settings(), tmp_path / "out")
    with pytest.raises(UserInputError, match=r"mask\.png: the mask is 50 x 50 pixels but the image is 96 x 72"):
        run_image(pipeline, ("photo.png", image_path), settings(), tmp_path / "out", [("mask.png", mask_path)])


def test_bad_videos_are_refused_with_a_message(pipeline, tmp_path, monkeypatch):
    one = tmp_path / "one.mkv"
    moving_square_video(one, frames=1, size=SIZE, lossless=True)
    with pytest.raises(UserInputError, match="single frame; use image insertion"):
        run_video(pipeline, ("one.mkv", one), settings(box="1,1,20,20"), tmp_path / "out")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    with pytest.raises(UserInputError, match=r"broken\.mp4"):
        run_video(pipeline, ("broken.mp4", broken), settings(box="1,1,20,20"), tmp_path / "out")
    clip = tmp_path / "clip.mkv"
    moving_square_video(clip, frames=3, size=SIZE, lossless=True)
    monkeypatch.setenv("FEWSHOT_MAX_VIDEO_SECONDS", "0.1")
    with pytest.raises(UserInputError, match="FEWSHOT_MAX_VIDEO_SECONDS"):
        run_video(pipeline, ("clip.mkv", clip), settings(box="1,1,20,20"), tmp_path / "out")
    monkeypatch.setenv("FEWSHOT_MAX_VIDEO_SECONDS", "600")
    monkeypatch.setenv("FEWSHOT_MAX_VIDEO_PIXELS", "1000")
    with pytest.raises(UserInputError, match="FEWSHOT_MAX_VIDEO_PIXELS"):
        run_video(pipeline, ("clip.mkv", clip), settings(box="1,1,20,20"), tmp_path / "out")
    monkeypatch.delenv("FEWSHOT_MAX_VIDEO_PIXELS")
    with pytest.raises(UserInputError, match="2 masks were uploaded, but the video has a frame 2"):
        masks = []
        for index in range(2):
            masks.append((f"m{index}.png", tmp_path / f"m{index}.png"))
            Image.fromarray(mask_from_box((5, 5, 30, 30), (96, 72)).astype(np.uint8) * 255).save(masks[-1][1])
        run_video(pipeline, ("clip.mkv", clip), settings(region_mode="masks"), tmp_path / "out",
                  frame_mask_files=masks)
