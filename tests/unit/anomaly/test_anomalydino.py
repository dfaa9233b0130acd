"""AnomalyDINO: the nearest-patch distance, the top-1 % image score, the background mask, leave-one-out, the maps,
and the whole pipeline on the tiny random-weight DINOv2 loaded through the model family's loader."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter

from engine.anomaly.anomalydino import (
    NO_REFERENCES,
    ROTATIONS,
    AnomalyDinoPipeline,
    DinoMemory,
    anomaly_map,
    background_mask,
    gaussian_smooth,
    input_size,
    patch_scores,
    rotated,
    top_fraction_mean,
)
from engine.anomaly.scoring import association_scores
from engine.anomaly.thresholds import NEEDS_TWO_GOOD, calibrated_threshold
from engine.errors import UserInputError, WeightsNotFoundError
from engine.loading import family_of, models_dir
from engine.models.dinov2 import build_random_dinov2, load_dinov2, save_dinov2
from engine.presets import get_preset
from engine.progress import Cancelled
from engine.weights import manifest


@pytest.fixture(scope="module")
def pipeline() -> AnomalyDinoPipeline:
    return AnomalyDinoPipeline.from_pretrained("anomalydino-tiny", device="cpu")


def part(seed: int, size: tuple[int, int] = (90, 70), scratch: bool = False) -> Image.Image:
    """A smooth random 'part'; with a scratch, a bright bar across it."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
    if scratch:
        ImageDraw.Draw(image).rectangle([size[0] // 3, size[1] // 2, size[0] // 3 + 25, size[1] // 2 + 6],
                                        fill=(255, 255, 255))
    return image


# -- the arithmetic, by hand ---------------------------------------------------------------------------------


def test_a_patch_scores_half_the_cosine_distance_to_its_nearest_bank_patch():
    bank = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    patches = torch.tensor([[3.0, 0.0], [0.0, 2.0], [1.0, 1.0], [-1.0, 0.1]])
    expected = torch.tensor([0.0, 0.5, (1 - math.sqrt(0.5)) / 2, (1 - 1 / math.sqrt(1.01)) / 2])
    torch.testing.assert_close(association_scores(patches, bank), expected)


def test_the_nearest_neighbour_search_in_chunks_equals_the_whole_search():
    generator = torch.Generator().manual_seed(0)
    patches, bank = torch.randn(3, 50, 8, generator=generator), torch.randn(37, 8, generator=generator)
    whole = association_scores(patches, bank, max_similarities=10**9)
    for bound in (1, 36, 37, 100, 37 * 149):  # one row at a time (the bound under the bank size), 2 rows, ...
        torch.testing.assert_close(association_scores(patches, bank, max_similarities=bound), whole,
                                   rtol=0, atol=1e-6)
    assert whole.shape == (3, 50) and whole.min() >= 0 and whole.max() <= 1


def test_the_image_score_is_the_mean_of_the_top_one_percent_of_patch_scores():
    scores = torch.zeros(250)
    scores[[3, 70, 200]] = torch.tensor([0.9, 0.7, 0.5])
    assert top_fraction_mean(scores).item() == pytest.approx((0.9 + 0.7) / 2)  # int(250 * 1 %) = 2 patches
    assert top_fraction_mean(scores[:99]).item() == pytest.approx(0.9)  # fewer than 100 patches: the maximum


def test_input_keeps_the_aspect_and_crops_to_whole_patches():
    assert input_size(900, 700, 448, 14) == (576, 448, 574, 448)  # 448 * 900 / 700 = 576.0
    assert input_size(700, 900, 448, 14) == (448, 576, 448, 574)
    assert input_size(448, 448, 448, 14) == (448, 448, 448, 448)  # the paper's 32 x 32 grid
    assert input_size(5000, 100, 448, 14) == (1792, 35, 1792, 28)  # the longer edge capped at 4 x 448


def object_features(object_is_large: bool) -> torch.Tensor:
    """A 10 x 10 grid of 8-d features: a 4 x 4 object in the middle apart from the background along one axis."""
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(10, 10, 8, generator=generator) * 0.1
    strong = features[3:7, 3:7] if object_is_large else features
    strong[..., 0] += 30.0
    if not object_is_large:
        features[3:7, 3:7, 0] -= 30.0
    return features.reshape(100, 8)


@pytest.mark.parametrize("object_is_large", [True, False], ids=["object-on-the-first-component",
                                                                "background-on-it-sign-flipped"])
def test_the_mask_keeps_the_object_dilated_by_one_patch_whichever_side_the_first_component_puts_it(
        object_is_large):
    expected = torch.zeros(10, 10, dtype=torch.bool)
    expected[2:8, 2:8] = True  # the 4 x 4 object and its 3 x 3 dilation; the closing adds nothing
    assert torch.equal(background_mask(object_features(object_is_large), (10, 10)), expected)


def test_masked_patches_score_zero_and_a_mask_that_keeps_nothing_keeps_all():
    features = object_features(True)
    bank = features[:1]  # a background patch
    scores = patch_scores(features, (10, 10), bank, mask_background=True)
    assert (scores[:2] == 0).all() and (scores[3:7, 3:7] > 0.1).all()
    flat = torch.randn(100, 8, generator=torch.Generator().manual_seed(2)) * 0.1  # nothing passes the threshold
    assert background_mask(flat, (10, 10)).all()


def test_smoothing_is_scipys_gaussian_filter_with_sigma_4_at_any_size():
    generator = np.random.default_rng(3)
    for shape in [(40, 60), (5, 7)]:  # the second is smaller than the kernel's radius (16)
        image = generator.random(shape).astype(np.float32)
        smoothed = gaussian_smooth(torch.from_numpy(image)).numpy()
        np.testing.assert_allclose(smoothed, gaussian_filter(image, sigma=4), atol=1e-6)


def test_the_map_is_the_grid_resized_bilinearly_then_smoothed_at_the_images_size():
    grid = torch.tensor([[0.0, 0.2], [0.4, 1.0]])
    result = anomaly_map(grid, width=30, height=20)
    resized = torch.nn.functional.interpolate(grid[None, None], size=(20, 30), mode="bilinear")[0, 0].numpy()
    assert result.shape == (20, 30) and result.dtype == np.float32
    np.testing.assert_allclose(result, gaussian_filter(resized, sigma=4), atol=1e-6)


def test_leave_one_out_scores_each_good_part_against_the_others(pipeline):
    same = torch.tensor([[1.0, 0.0]] * 4)
    odd = torch.tensor([[0.0, 1.0], [0.0, 2.0], [-1.0, 0.0]])  # orthogonal, orthogonal, opposite
    memory = DinoMemory(torch.cat([same, same, odd]), ((2, 2), (2, 2), (1, 3)), ((28, 28), (28, 28), (42, 14)))
    scores, maxima = pipeline.leave_one_out(memory)
    assert scores == pytest.approx([0.0, 0.0, 1.0])  # twins find each other; the odd one's worst patch is opposite
    expected_max = anomaly_map(torch.tensor([[0.5, 0.5, 1.0]]), 42, 14).max()
    assert maxima == pytest.approx([0.0, 0.0, float(expected_max)]) and 0.5 < maxima[2] < 1.0
    threshold = calibrated_threshold(scores, maxima)
    assert threshold.source == "calibrated" and threshold.image == 1.0 and threshold.pixel == pytest.approx(maxima[2])
    with pytest.raises(UserInputError, match=re.escape(NEEDS_TWO_GOOD)):
        pipeline.leave_one_out(memory.without(0).without(0))


# -- the pipeline on the tiny model --------------------------------------------------------------------------


def test_maps_come_at_each_images_size_in_zero_one_and_a_good_part_scores_zero_against_itself(pipeline):
    good, other = part(0), part(1, size=(60, 100))
    results = pipeline([good, other, part(0, scratch=True)], [good])
    assert [r.anomaly_map.shape for r in results] == [(70, 90), (100, 60), (70, 90)]
    for result in results:
        assert result.anomaly_map.dtype == np.float32
        assert result.anomaly_map.min() >= 0.0 and result.anomaly_map.max() <= 1.0 and 0.0 <= result.score <= 1.0
    assert results[0].score < 1e-5 and results[0].anomaly_map.max() < 1e-5
    assert results[2].score > 1e-3  # the scratched copy of the good part


def test_results_are_deterministic_and_the_same_through_a_saved_directory(pipeline, tmp_path):
    images, references = [part(2, scratch=True), part(3)], [part(4), part(5, size=(70, 90))]
    first = pipeline(images, references)
    save_dinov2(build_random_dinov2(get_preset("anomalydino-tiny").config["model"]), tmp_path / "dino")
    from_directory = AnomalyDinoPipeline.from_pretrained(tmp_path / "dino", device="cpu")
    assert from_directory.resolution == 448  # a directory runs at the paper's size, the tiny preset at 224
    from_directory.resolution = pipeline.resolution
    for again in (pipeline(images, references), from_directory(images, references)):
        for a, b in zip(first, again, strict=True):
            assert a.score == b.score
            np.testing.assert_array_equal(a.anomaly_map, b.anomaly_map)


def test_masking_scores_only_the_patches_the_mask_keeps(pipeline, monkeypatch):
    import engine.anomaly.anomalydino as anomalydino

    image, references = part(6, scratch=True), [part(7)]
    features, grid = pipeline.features([image])[0]
    top_row = torch.zeros(grid, dtype=torch.bool)
    top_row[0] = True
    monkeypatch.setattr(anomalydino, "background_mask", lambda f, g: top_row)
    masked = pipeline([image], references, mask_background=True)[0]
    scores = torch.zeros(grid)
    scores[0] = association_scores(features[: grid[1]], pipeline.reference_memory(references).patches)
    assert masked.score == pytest.approx(float(top_fraction_mean(scores.flatten())))
    assert masked.score != pytest.approx(pipeline([image], references)[0].score)


def test_reference_memory_holds_every_patch_once_per_set_of_pixels(pipeline, monkeypatch):
    references = [part(8), part(9, size=(60, 120))]
    memory = pipeline.reference_memory(references)
    assert memory.count == 2 and memory.grids == ((16, 20), (32, 16))  # 224 px on the shorter side, 14 px patches
    assert memory.patches.shape == (16 * 20 + 32 * 16, 32) and memory.sizes == ((90, 70), (60, 120))
    monkeypatch.setattr(pipeline, "_build_memory", lambda *a: pytest.fail("memory rebuilt"))
    assert pipeline.reference_memory([image.copy() for image in references]) is memory
    torch.testing.assert_close(memory.without(0).patches, memory.features_of(1))


def test_rotation_turns_the_image_on_its_own_canvas():
    pixels = np.random.default_rng(4).integers(0, 256, (30, 30, 3), dtype=np.uint8)
    for quarter in (1, 2, 3):  # multiples of 90 degrees move pixel centres onto pixel centres: exact
        np.testing.assert_array_equal(np.asarray(rotated(Image.fromarray(pixels), 90 * quarter)),
                                      np.rot90(pixels, quarter))
    turned = rotated(Image.fromarray(pixels[:, :20]), 45)
    assert turned.size == (20, 30)


def test_rotated_references_let_a_turned_good_part_match(pipeline):
    good = part(14, size=(70, 70))
    memory = pipeline.reference_memory([good, part(15)], rotate=True)
    assert memory.views == len(ROTATIONS) == 8 and memory.count == 2
    assert memory.patches.shape[0] == 8 * (16 * 16 + 16 * 20)
    plain = pipeline.reference_memory([good, part(15)])  # the same pixels, not rotated: a memory of its own
    assert plain.views == 1 and plain.patches.shape[0] == 16 * 16 + 16 * 20
    torch.testing.assert_close(memory.features_of(0), plain.features_of(0))
    assert memory.without(0).patches.shape[0] == 8 * 16 * 20 and memory.without(0).views == 8
    turned = [rotated(good, 90), rotated(good, 45)]
    assert all(r.score < 1e-5 for r in pipeline(turned, [good, part(15)], rotate_references=True))
    assert all(r.score > 1e-3 for r in pipeline(turned, [good, part(15)]))


def test_progress_is_reported_after_each_batch_and_may_cancel(pipeline):
    seen = []
    pipeline([part(10), part(11), part(12)], [part(13)], batch_size=2, progress=lambda f, m: seen.append(f))
    assert seen == [0.0, pytest.approx(2 / 3), 1.0]

    def cancel(fraction: float, message: str) -> None:
        if fraction > 0:
            raise Cancelled

    with pytest.raises(Cancelled):
        pipeline([part(10), part(11)], [part(13)], batch_size=1, progress=cancel)


def test_without_good_parts_or_images_the_message_says_what_to_add(pipeline):
    with pytest.raises(UserInputError) as caught:
        pipeline([part(0)], [])
    assert str(caught.value) == NO_REFERENCES and "use WinCLIP or MuSc" in NO_REFERENCES
    with pytest.raises(UserInputError, match="upload at least one image"):
        pipeline([], [part(0)])


# -- the model family ----------------------------------------------------------------------------------------


def test_the_tiny_preset_is_built_once_into_the_models_dir_in_the_hubs_layout():
    preset = get_preset("anomalydino-tiny")
    assert family_of(preset).name == "dinov2" and preset.method == "anomalydino" and preset.tool == "anomaly"
    load_dinov2("anomalydino-tiny", torch.device("cpu"), torch.float32)
    assert sorted(p.name for p in (models_dir() / "anomalydino-tiny").iterdir()) == ["config.json",
                                                                                    "model.safetensors"]


def test_a_checkpoint_with_the_hubs_key_names_loads_the_same_model(tmp_path):
    """facebook/dinov2-small predates transformers 5's names (attention.attention.query, ...)."""
    from safetensors.torch import save_file

    model = build_random_dinov2(get_preset("anomalydino-tiny").config["model"])
    save_dinov2(model, tmp_path)
    renames = {"attention.q_proj": "attention.attention.query", "attention.k_proj": "attention.attention.key",
               "attention.v_proj": "attention.attention.value", "attention.o_proj": "attention.output.dense"}
    state = {}
    for key, value in model.state_dict().items():
        for new, old in renames.items():
            key = key.replace(new, old)
        state[key] = value.contiguous()
    save_file(state, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    loaded = load_dinov2(tmp_path, torch.device("cpu"), torch.float32)
    pixels = torch.randn(1, 3, 56, 84, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(loaded(pixel_values=pixels).last_hidden_state,
                               model(pixel_values=pixels).last_hidden_state)


def test_the_real_preset_names_its_files_and_offline_says_where_to_get_them(tmp_path):
    preset = get_preset("anomalydino-dinov2-small")
    assert [(f.repo, f.names) for f in manifest(preset)] == [("facebook/dinov2-small", ("config.json",)),
                                                              ("facebook/dinov2-small", ("model.safetensors",))]
    with pytest.raises(WeightsNotFoundError, match=r"anomalydino-dinov2-small.*facebook/dinov2-small"):
        AnomalyDinoPipeline.from_pretrained(preset.name, device="cpu")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(UserInputError, match="not a DINOv2 model directory"):
        load_dinov2(tmp_path, torch.device("cpu"), torch.float32)
    with pytest.raises(UserInputError, match="not a DINOv2 model; accepted: anomalydino-dinov2-small"):
        load_dinov2("winclip-tiny", torch.device("cpu"), torch.float32)
