"""InVi insertion with the tiny preset: what can be checked without trained weights.

The anchor frame equals diffusers' own ControlNet inpaint pipeline; the extended-attention processor
really reads the anchor's keys and values; pixels outside the mask are exactly the input's, for
images and every video frame; a seed gives the same output twice; bad input gets a clear message.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from engine.errors import UserInputError
from engine.insertion import InsertionSettings, get_pipeline
from engine.insertion.attention import AnchorStore, ExtendedAttnProcessor
from engine.insertion.regions import (
    context_box,
    interpolate_boxes,
    mask_from_box,
    mask_from_image,
    model_size,
    parse_box,
    parse_keyframes,
    paste,
)
from engine.insertion.runs import run_image, run_video
from engine.video import iter_frames
from tests.helpers import moving_square_video

STEPS = 2
SIZE = (96, 72)


@pytest.fixture(scope="module")
def pipeline():
    return get_pipeline("insertion-tiny")


def settings(**overrides) -> InsertionSettings:
    return InsertionSettings(**{"prompt": "a red ball", "steps": STEPS, "seed": 3, **overrides})


def noise_image(width: int = 96, height: int = 72, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8))


# -- the extended-attention processor -----------------------------------------------------------
def test_processor_records_plain_attention_and_extends_over_the_anchor_keys_and_values():
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0

    torch.manual_seed(0)
    attn = Attention(query_dim=16, heads=2, dim_head=8).eval()
    anchor = torch.randn(2, 6, 16)  # (unconditional, conditional) halves of classifier-free guidance
    frames = torch.randn(4, 5, 16)  # two frames per half
    store = AnchorStore()
    processor = ExtendedAttnProcessor(store, "layer")
    with torch.no_grad():
        store.begin("record")
        torch.testing.assert_close(processor(attn, anchor), AttnProcessor2_0()(attn, anchor), rtol=0, atol=0)
        recorded = store.entries
        store.begin("extend", recorded)
        extended = processor(attn, frames)
        plain = AttnProcessor2_0()(attn, frames)

        heads = lambda t: t.view(t.shape[0], t.shape[1], 2, 8).transpose(1, 2)  # noqa: E731
        anchor_k, anchor_v = attn.to_k(anchor).repeat_interleave(2, 0), attn.to_v(anchor).repeat_interleave(2, 0)
        q = heads(attn.to_q(frames))
        k = heads(torch.cat([attn.to_k(frames), anchor_k], dim=1))
        v = heads(torch.cat([attn.to_v(frames), anchor_v], dim=1))
        weights = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, dim=-1)
        expected = attn.to_out[0]((weights @ v).transpose(1, 2).reshape(4, 5, 16))
    assert k.shape[2] == 5 + 6  # own tokens + anchor tokens
    assert not torch.allclose(extended, plain, atol=1e-3)
    torch.testing.assert_close(extended, expected, rtol=1e-5, atol=1e-5)


def test_extending_without_a_recorded_step_says_why():
    store = AnchorStore()
    store.begin("extend", {(0, "other"): (torch.zeros(1), torch.zeros(1))})
    with pytest.raises(RuntimeError, match="same steps and strength"):
        store.get("layer")


# -- regions ------------------------------------------------------------------------------------
def test_boxes_masks_crops_and_keyframes():
    assert parse_box("10, 20, 50, 60", (100, 80)) == (10, 20, 50, 60)
    assert parse_box([50, 60, -5, 20], (100, 80)) == (0, 20, 50, 60)  # any corner order, clipped
    with pytest.raises(UserInputError, match="four numbers"):
        parse_box("10,20", (100, 80))
    with pytest.raises(UserInputError, match="covers no pixel"):
        parse_box([200, 200, 300, 300], (100, 80))
    crop = context_box((40, 30, 60, 50), (100, 80), context=0.25)
    assert crop[2] - crop[0] == crop[3] - crop[1] == 32 and crop[0] <= 40 and crop[2] >= 60
    assert model_size((0, 0, 300, 200), 512, 64) == (512, 320)
    keys = parse_keyframes("0: 0,0,10,10\n10: 10,20,30,40", (100, 80))
    assert interpolate_boxes(keys, 5) == (5, 10, 20, 25)
    assert interpolate_boxes(keys, 99) == (10, 20, 30, 40) and interpolate_boxes(keys, 0) == (0, 0, 10, 10)
    with pytest.raises(UserInputError, match="frame: x0,y0,x1,y1"):
        parse_keyframes("0 0,0,10,10", (100, 80))
    drawn = Image.new("RGBA", (100, 80), (0, 0, 0, 0))
    drawn.paste((0, 0, 0, 255), (10, 10, 20, 30))  # a black brush stroke on a transparent layer
    assert mask_from_image(drawn, (100, 80)).sum() == 10 * 20
    with pytest.raises(UserInputError, match="the mask is 100 x 80 pixels but the image is 90 x 80"):
        mask_from_image(drawn, (90, 80))


def test_paste_keeps_every_pixel_outside_the_mask():
    original = noise_image(seed=1)
    mask = np.zeros((72, 96), dtype=bool)
    mask[10:40, 20:70] = True
    mask[15:20, 25:30] = False  # a hole
    result = np.asarray(paste(original, Image.new("RGB", (64, 64), "red"), (10, 0, 80, 70), mask, feather=6))
    assert np.array_equal(result[~mask], np.asarray(original)[~mask])
    assert (result[mask] != np.asarray(original)[mask]).any()


# -- the pipeline -------------------------------------------------------------------------------
def test_anchor_without_extended_attention_equals_diffusers_controlnet_inpaint(pipeline):
    from diffusers import StableDiffusionControlNetInpaintPipeline

    from engine.insertion.model import load_components, model_directory

    image, options = noise_image(), settings(guidance=5.0, strength=0.9)
    crop = pipeline.crop(image, mask_from_box((30, 20, 70, 50), image.size), options)
    ours, _ = pipeline.inpaint([crop], options, [11], attention="off")
    recording, recorded = pipeline.inpaint([crop], options, [11], attention="record")
    reference = StableDiffusionControlNetInpaintPipeline(**load_components(model_directory("insertion-tiny"),
                                                                           torch.float32))
    reference.set_progress_bar_config(disable=True)
    expected = reference(
        options.prompt, image=crop.image, mask_image=crop.mask,
        control_image=torch.from_numpy(crop.control).permute(2, 0, 1)[None], height=crop.size[1], width=crop.size[0],
        strength=0.9, num_inference_steps=STEPS, guidance_scale=5.0, negative_prompt="",
        controlnet_conditioning_scale=1.0, generator=torch.Generator().manual_seed(11), output_type="np",
    ).images
    np.testing.assert_array_equal(ours, expected)
    np.testing.assert_allclose(recording, expected, rtol=0, atol=1e-6)  # recording does not change the anchor
    assert {step for step, _ in recorded} == set(range(int(STEPS * 0.9)))
    assert len({layer for _, layer in recorded}) == pipeline.extended_layers > 0


def test_image_insertion_keeps_outside_pixels_and_repeats_with_the_same_seed(pipeline):
    image = noise_image()
    mask = mask_from_box((30, 20, 70, 50), image.size)
    first = pipeline.insert_image(image, mask, settings(), variants=2)
    again = pipeline.insert_image(image, mask, settings())
    (seed_a, a), (seed_b, b) = first.images
    assert (seed_a, seed_b) == (3, 4)
    assert np.array_equal(np.asarray(a), np.asarray(again.images[0][1]))
    assert not np.array_equal(np.asarray(a), np.asarray(b))
    for _, result in first.images:
        assert np.array_equal(np.asarray(result)[~mask], np.asarray(image)[~mask])
        assert (np.asarray(result)[mask] != np.asarray(image)[mask]).mean() > 0.5


def test_a_wide_region_at_the_edge_gets_a_non_square_crop(pipeline):
    image = noise_image(96, 40)
    mask = mask_from_box((0, 5, 90, 35), image.size)
    crop = pipeline.crop(image, mask, settings())
    assert crop.box == (0, 0, 96, 40) and crop.size == (32, 16)
    result = np.asarray(pipeline.insert_image(image, mask, settings()).images[0][1])
    assert np.array_equal(result[~mask], np.asarray(image)[~mask])


def test_replace_mode_grows_the_mask_and_keeps_the_rest(pipeline):
    image = noise_image()
    mask = mask_from_box((30, 20, 70, 50), image.size)
    result = pipeline.insert_image(image, mask, settings(mode="replace", replace_grow=3))
    assert result.mask.sum() == (40 + 6) * (30 + 6)
    assert np.array_equal(np.asarray(result.images[0][1])[~result.mask], np.asarray(image)[~result.mask])


def test_video_frames_keep_outside_pixels_and_follow_the_anchor(pipeline, tmp_path):
    source = tmp_path / "clip.mkv"
    moving_square_video(source, frames=4, size=SIZE, lossless=True)
    summary, files = run_video(pipeline, ("clip.mkv", source), settings(), tmp_path / "out", region_mode="interpolate",
                               keyframes="0: 20,10,60,50\n3: 40,20,80,60", anchor_index=1, chunk_size=2)
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


def test_a_following_frame_reads_the_anchor_through_every_self_attention_layer(pipeline):
    options = settings()
    mask = mask_from_box((20, 10, 60, 50), (96, 72))
    anchor_crop, frame_crop = (pipeline.crop(noise_image(seed=s), mask, options) for s in (1, 2))
    _, recorded = pipeline.inpaint([anchor_crop], options, [3], attention="record")
    plain, _ = pipeline.inpaint([frame_crop], options, [3], attention="off")
    extended, _ = pipeline.inpaint([frame_crop], options, [3], attention="extend", anchor=recorded)
    again, _ = pipeline.inpaint([frame_crop], options, [3], attention="extend", anchor=recorded)
    assert not np.array_equal(extended, plain)  # random weights: a small change, but a deterministic one
    np.testing.assert_array_equal(extended, again)
    reads = []
    original_get = pipeline.store.get
    pipeline.store.get = lambda layer: reads.append((pipeline.store.step, layer)) or original_get(layer)
    try:
        pipeline.inpaint([frame_crop], options, [3], attention="extend", anchor=recorded)
    finally:
        del pipeline.store.get
    assert sorted(reads) == sorted(recorded)  # every (step, layer) the anchor recorded, read once


def test_the_same_seed_gives_the_same_video_twice(pipeline, tmp_path):
    source = tmp_path / "clip.mkv"
    moving_square_video(source, frames=2, size=SIZE, lossless=True)
    outputs = []
    for name in ("first", "second"):
        run_video(pipeline, ("clip.mkv", source), settings(), tmp_path / name, box="20,10,60,50")
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
        run_video(pipeline, ("clip.mkv", source), settings(), tmp_path / "out", box="20,10,60,50", progress=progress)
    assert messages[:2] == ["Anchor frame 0 · step 1 of 2", "Anchor frame 0 · step 2 of 2"]
    assert "Frame 1 of 3 · step 1 of 2" in messages and messages[-1] == "Frame 2 of 3 · step 1 of 2"


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        (np.zeros((72, 96), dtype=bool), "The mask is empty"),
        (np.ones((72, 96), dtype=bool), "covers the whole frame"),
        (np.ones((10, 10), dtype=bool), "The mask is 10 x 10 pixels but the image is 96 x 72"),
    ],
)
def test_bad_masks_are_refused_with_a_message(pipeline, mask, expected):
    with pytest.raises(UserInputError, match=expected):
        pipeline.insert_image(noise_image(), mask, settings())


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [({"prompt": "  "}, "The prompt is empty"), ({"steps": 0}, "Steps must be"), ({"strength": 0.1, "steps": 5},
     "leave no denoising step"), ({"mode": "erase"}, "accepted: insert, replace")],
)
def test_bad_settings_are_refused_with_a_message(pipeline, overrides, expected):
    with pytest.raises(UserInputError, match=expected):
        pipeline.insert_image(noise_image(), mask_from_box((10, 10, 30, 30), (96, 72)), settings(**overrides))


def test_a_prompt_over_the_tokenizer_length_is_cut_and_the_result_says_so(pipeline, tmp_path):
    image_path = tmp_path / "photo.png"
    noise_image().save(image_path)
    long_prompt = "a small red wooden toy car " * 6  # the tiny tokenizer reads one token per character
    summary, files = run_image(pipeline, ("photo.png", image_path), settings(prompt=long_prompt), tmp_path / "out",
                               box=[10, 10, 40, 40])
    assert files == ["result_seed3.png", "mask.png", "summary.json"]
    assert len(summary["notes"]) == 1 and "tokens long and the text encoder reads 75" in summary["notes"][0]


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
        run_video(pipeline, ("one.mkv", one), settings(), tmp_path / "out", box="1,1,20,20")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    with pytest.raises(UserInputError, match=r"broken\.mp4"):
        run_video(pipeline, ("broken.mp4", broken), settings(), tmp_path / "out", box="1,1,20,20")
    clip = tmp_path / "clip.mkv"
    moving_square_video(clip, frames=3, size=SIZE, lossless=True)
    monkeypatch.setenv("FEWSHOT_MAX_VIDEO_SECONDS", "0.1")
    with pytest.raises(UserInputError, match="FEWSHOT_MAX_VIDEO_SECONDS"):
        run_video(pipeline, ("clip.mkv", clip), settings(), tmp_path / "out", box="1,1,20,20")
    monkeypatch.setenv("FEWSHOT_MAX_VIDEO_SECONDS", "600")
    monkeypatch.setenv("FEWSHOT_MAX_VIDEO_PIXELS", "1000")
    with pytest.raises(UserInputError, match="FEWSHOT_MAX_VIDEO_PIXELS"):
        run_video(pipeline, ("clip.mkv", clip), settings(), tmp_path / "out", box="1,1,20,20")
    monkeypatch.delenv("FEWSHOT_MAX_VIDEO_PIXELS")
    with pytest.raises(UserInputError, match="2 masks were uploaded, but the video has a frame 2"):
        masks = []
        for index in range(2):
            masks.append((f"m{index}.png", tmp_path / f"m{index}.png"))
            Image.fromarray(mask_from_box((5, 5, 30, 30), (96, 72)).astype(np.uint8) * 255).save(masks[-1][1])
        run_video(pipeline, ("clip.mkv", clip), settings(), tmp_path / "out", region_mode="masks",
                  frame_mask_files=masks)


def test_cli_inserts_into_an_image_and_reports_bad_input(tmp_path, capsys):
    from engine.__main__ import main

    noise_image().save(tmp_path / "photo.png")
    common = ["insert", "--image", str(tmp_path / "photo.png"), "--prompt", "a cat", "--steps", "2",
              "--preset", "insertion-tiny", "--out", str(tmp_path / "out")]
    assert main([*common, "--box", "10,10,50,40", "--variants", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["outputs"][1].endswith("result_seed1.png")
    assert main(common) == 2
    assert "Mark the region" in capsys.readouterr().err
