"""MuSc: the method's arithmetic by hand (LNAMD, mutual scoring, RsCIN), chunking, and the pipeline on musc-tiny."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from engine.anomaly.musc import (
    MIN_SET_SIZE,
    SETTINGS,
    MuscPipeline,
    MuscSettings,
    interval_bounds,
    lnamd,
    mutual_scores,
    rscin,
    set_maps,
    standardize,
)
from engine.errors import UserInputError
from engine.loading import get_pipeline, resolve_model_dir
from engine.media import load_image
from engine.presets import get_preset
from engine.progress import Cancelled


@pytest.fixture(scope="module")
def musc():
    return get_pipeline(MuscPipeline, "musc-tiny")


@pytest.fixture(scope="module")
def images(metal_plate_images):
    """Five plates (their own sizes) and a wide synthetic strip: a set of six."""
    plates = [load_image(p) for p in metal_plate_images[:5]]
    return [*plates, Image.new("RGB", (317, 45), (120, 30, 200))]


def grid_tokens(values: list[list[float]]) -> torch.Tensor:
    """A (1, rows * cols, 2) token set from a grid of values: channel 0 the value, channel 1 ten times it."""
    flat = torch.tensor(values, dtype=torch.float32).flatten()
    return torch.stack([flat, 10 * flat], dim=-1)[None]


# -- LNAMD -------------------------------------------------------------------------------------------------
def test_lnamd_at_r1_is_the_identity():
    tokens = torch.randn(2, 6, 5)
    assert torch.equal(lnamd(tokens, (2, 3), 1), tokens)


def test_lnamd_at_r3_averages_each_3x3_neighbourhood_with_zeros_outside_the_grid():
    tokens = grid_tokens([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    expected = torch.tensor([[12, 21, 16], [27, 45, 33], [24, 39, 28]], dtype=torch.float32).flatten() / 9
    out = lnamd(tokens, (3, 3), 3)
    torch.testing.assert_close(out[0, :, 0], expected)
    torch.testing.assert_close(out[0, :, 1], 10 * expected)  # channels are averaged separately


def test_lnamd_reads_tokens_row_major_on_a_non_square_grid():
    tokens = grid_tokens([[1, 2, 3], [4, 5, 6]])  # 2 rows x 3 columns
    expected = torch.tensor([[12, 21, 16], [12, 21, 16]], dtype=torch.float32).flatten() / 9
    torch.testing.assert_close(lnamd(tokens, (2, 3), 3)[0, :, 0], expected)


def test_lnamd_at_r5_on_a_3x3_grid_divides_by_25():
    out = lnamd(grid_tokens([[1, 2, 3], [4, 5, 6], [7, 8, 9]]), (3, 3), 5)
    assert out[0, 4, 0].item() == pytest.approx(45 / 25)  # the centre sees the whole grid
    assert out[0, 0, 0].item() == pytest.approx(45 / 25)  # so does a corner: 5 x 5 around it covers all


def test_lnamd_refuses_an_even_neighbourhood():
    with pytest.raises(ValueError, match="odd"):
        lnamd(torch.zeros(1, 4, 1), (2, 2), 2)


def test_standardize_is_the_authors_layer_norm_over_each_images_whole_map():
    tokens = torch.randn(3, 12, 5) * 4 + 2
    maps = tokens.transpose(1, 2).reshape(3, 5, 3, 4)  # as the authors lay it out: (B, C, H, W)
    theirs = torch.nn.LayerNorm([5, 3, 4])(maps).reshape(3, 5, 12).transpose(1, 2)
    torch.testing.assert_close(standardize(tokens), theirs.detach())


# -- mutual scoring ----------------------------------------------------------------------------------------
def unit(*values: float) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


A, B, X, Y = unit(1, 0, 0, 0), unit(0, 1, 0, 0), unit(0, 0, 1, 0), unit(0, 0, 0, 1)
FAR = math.sqrt(2) / 2  # distance / 2 between orthogonal unit vectors


def test_an_outlier_patch_scores_highest_and_another_anomalous_image_does_not_vote():
    """Images 0-3 are normal (patches A, B); image 4 has a defect X in place of B, image 5 a defect Y in place
    of A. Every normal patch finds itself in the other normal images; the defects find nothing. The interval
    average (the smallest 30 % of the 5 others: one) leaves out the anomalous image where a normal patch has no
    match, so normal patches score 0, where a plain mean over the others would give FAR / 5."""
    features = torch.tensor([[A, B]] * 4 + [[A, X], [Y, B]])
    scores = mutual_scores(features)
    assert interval_bounds(5) == (0, 1)
    expected = torch.zeros(6, 2)
    expected[4, 1] = expected[5, 0] = FAR
    torch.testing.assert_close(scores, expected)
    plain_mean = torch.cdist(features[0], features[5]).amin(dim=1)[0] / 2 / 5
    assert plain_mean.item() == pytest.approx(FAR / 5)  # what a vote of image 5 would have added


def test_the_interval_average_means_the_ranks_it_keeps():
    """One patch per image, on a circle: image 0 at angle 0, the others at 60, 90, 120 and 180 degrees (180 four
    times): distance / 2 at angle t is sin(t / 2). Of 7 others the interval keeps the 2 nearest."""
    angles = [0, 60, 90, 120, 180, 180, 180, 180]
    features = torch.tensor([[[math.cos(math.radians(a)), math.sin(math.radians(a))]] for a in angles])
    assert interval_bounds(7) == (0, 2)
    expected = (math.sin(math.radians(30)) + math.sin(math.radians(45))) / 2
    assert mutual_scores(features)[0, 0].item() == pytest.approx(expected, abs=1e-6)
    assert mutual_scores(features, interval=(0.0, 1.0))[0, 0].item() == pytest.approx(  # every other image
        sum(math.sin(math.radians(a / 2)) for a in angles[1:]) / 7, abs=1e-6)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 6, 20])
def test_chunked_mutual_scoring_equals_unchunked_exactly(chunk_size):
    features = F.normalize(torch.randn(7, 12, 16, generator=torch.Generator().manual_seed(3)), dim=-1)
    reports: list[float] = []
    chunked = mutual_scores(features, chunk_size, progress=lambda fraction, message: reports.append(fraction))
    assert torch.equal(chunked, mutual_scores(features, chunk_size=7))
    assert len(reports) == math.ceil(7 / chunk_size) and reports[-1] == 1.0
    assert reports == sorted(reports)


def test_a_progress_callback_that_raises_cancels_mutual_scoring():
    def cancel(fraction: float, message: str) -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        mutual_scores(F.normalize(torch.randn(6, 4, 3), dim=-1), progress=cancel)


def test_the_smallest_set_is_the_smallest_whose_interval_holds_another_image():
    low, high = interval_bounds(MIN_SET_SIZE - 1)
    assert high - low == 1
    assert interval_bounds(MIN_SET_SIZE - 2) == (0, 0)
    with pytest.raises(ValueError, match="no other image"):
        mutual_scores(F.normalize(torch.randn(MIN_SET_SIZE - 1, 4, 3), dim=-1))


def test_an_injected_outlier_patch_is_where_the_set_map_peaks():
    """The whole feature path (standardise, LNAMD at r 1, 3, 5, mutual scoring) on a synthetic set: six
    'textures' mixing three prototypes with noise, two layers; image 2 gets one foreign patch at row 3, col 4."""
    generator = torch.Generator().manual_seed(0)
    grid, count, channels = (6, 7), 6, 8
    prototypes = torch.randn(3, channels, generator=generator)
    layers = []
    for _ in range(2):
        mix = torch.randint(0, 3, (count, grid[0] * grid[1]), generator=generator)
        tokens = prototypes[mix] + 0.05 * torch.randn(count, grid[0] * grid[1], channels, generator=generator)
        tokens[2, 3 * grid[1] + 4] = 4 * torch.randn(channels, generator=generator)
        layers.append(standardize(tokens))
    maps = set_maps(layers, grid, (1, 3, 5), chunk_size=4, device=torch.device("cpu"))
    assert maps.shape == (count, *grid)
    assert maps.min() >= 0 and maps.max() <= 1
    assert divmod(int(maps[2].argmax()), grid[1]) == (3, 4)
    assert maps.flatten(1).amax(dim=1).argmax() == 2


# -- RsCIN -------------------------------------------------------------------------------------------------
FEATURES = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]])  # similarities 0.8, 0.6, 0, 0.96, ...
SCORES = torch.tensor([0.1, 0.2, 0.4, 0.8])


def test_rscin_by_hand():
    """k = 1 keeps each image alone; k = 2 adds its most similar other image, weighted by similarity."""
    k2 = torch.tensor([(0.1 + 0.8 * 0.2) / 1.8, (0.2 + 0.96 * 0.4) / 1.96, (0.4 + 0.96 * 0.2) / 1.96,
                       (0.8 + 0.8 * 0.4) / 1.8])
    torch.testing.assert_close(rscin(SCORES, FEATURES, k_list=(1,)), SCORES)
    torch.testing.assert_close(rscin(SCORES, FEATURES, k_list=(1, 2)), (SCORES + k2) / 2)


def test_rscin_without_the_authors_min_max_normalisation_is_the_same_up_to_an_affine_map():
    """The authors normalise scores to [0, 1] over the set first; rows of weights sum to 1, so that only shifts
    and scales the result: the same order (and AUROC), while unnormalised scores keep the maps' meaning."""
    low, high = SCORES.min(), SCORES.max()
    authors = rscin((SCORES - low) / (high - low), FEATURES)
    torch.testing.assert_close(authors, (rscin(SCORES, FEATURES) - low) / (high - low))


def test_rscin_keeps_scores_in_0_1_whatever_the_similarities():
    generator = torch.Generator().manual_seed(1)
    features = F.normalize(torch.randn(9, 5, generator=generator), dim=-1)  # some similarities are negative
    features[4] = 0  # a degenerate embedding is not even similar to itself: it keeps its own score
    scores = torch.rand(9, generator=generator)
    smoothed = rscin(scores, features, k_list=(1, 2, 3, 9, 20))
    assert torch.isfinite(smoothed).all() and smoothed.min() >= scores.min() - 1e-6
    assert smoothed[4] == pytest.approx(scores[4].item())
    assert smoothed.max() <= scores.max() + 1e-6


# -- the pipeline on musc-tiny -----------------------------------------------------------------------------
def test_presets_declare_musc_and_its_settings_once():
    real, tiny = get_preset("musc-vit-l-14-336"), get_preset("musc-tiny")
    assert (real.architecture, real.pretrained, real.method) == ("ViT-L-14-336", "openai", "musc")
    assert tiny.method == "musc" and tiny.random_weights
    assert SETTINGS[real.architecture] == MuscSettings(feature_layers=(5, 11, 17, 23), image_size=518,
                                                       r_list=(1, 3, 5))
    assert MuscSettings.for_depth(24).feature_layers == (5, 11, 17, 23)  # the authors' choice carried over
    assert MuscSettings.for_depth(12).feature_layers == (2, 5, 8, 11)


def test_a_model_folder_gets_one_layer_per_quarter_at_its_own_size():
    folder = resolve_model_dir(get_preset("musc-tiny"))
    pipeline = MuscPipeline.from_pretrained(folder, device="cpu")
    assert pipeline.settings == MuscSettings.for_depth(4) == MuscSettings((0, 1, 2, 3))
    assert pipeline.image_size == (240, 240)


def test_maps_come_back_at_each_image_size_in_0_1_and_the_same_twice(musc, images):
    results = musc(images)
    assert len(results) == len(images)
    for image, result in zip(images, results, strict=True):
        assert result.anomaly_map.shape == (image.height, image.width)
        assert result.anomaly_map.dtype == np.float32
        assert 0.0 <= result.anomaly_map.min() <= result.anomaly_map.max() <= 1.0
        assert 0.0 <= result.score <= 1.0
    again = musc(images)
    for first, second in zip(results, again, strict=True):
        assert first.score == second.score
        np.testing.assert_array_equal(first.anomaly_map, second.anomaly_map)
    assert len({round(r.score, 6) for r in results}) > 1  # images are told apart


@pytest.mark.parametrize("count", [0, MIN_SET_SIZE - 1])
def test_a_set_too_small_is_refused_with_the_minimum_and_winclip(musc, images, count):
    with pytest.raises(UserInputError) as refusal:
        musc(images[:count])
    assert str(refusal.value) == (f"MuSc scores images against each other: give at least {MIN_SET_SIZE} images or "
                                  f"frames ({count} given), or use WinCLIP for a single image.")


def test_no_hook_is_left_on_the_model_after_a_call_or_a_cancelled_one(musc, images):
    def cancel(fraction: float, message: str) -> None:
        raise Cancelled

    def hooks() -> int:
        return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in musc.clip.modules())

    musc(images)
    assert hooks() == 0
    with pytest.raises(Cancelled):
        musc(images, progress=cancel)
    assert hooks() == 0


def test_batched_encoding_equals_one_image_at_a_time(musc, images):
    """Catches attention across the batch (a batch-first transformer fed (L, N, D), or hooks reading it so)."""
    pixels = musc.preprocess(images[:3])
    batched, pooled, grid = musc.encode(pixels)
    assert grid == (14, 14) and batched[0].shape == (3, 196, 64)
    for index in range(3):
        alone, alone_pooled, _ = musc.encode(pixels[index : index + 1])
        for layer, layer_alone in zip(batched, alone, strict=True):
            torch.testing.assert_close(layer[index : index + 1], layer_alone, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(pooled[index : index + 1], alone_pooled, atol=1e-5, rtol=1e-4)
    assert (batched[-1][0] - batched[-1][1]).abs().mean() > 1e-3  # different images, different tokens


def test_batch_size_does_not_change_results(musc, images):
    one, all_at_once = musc(images, batch_size=1), musc(images, batch_size=len(images))
    for a, b in zip(one, all_at_once, strict=True):
        assert a.score == pytest.approx(b.score, abs=1e-5)
        np.testing.assert_allclose(a.anomaly_map, b.anomaly_map, atol=1e-5)


def test_hooked_tokens_are_open_clips_own_block_outputs_at_the_native_size(musc, images):
    """At the model's own input size, the hooks read what open_clip's `forward_intermediates` returns for the
    same blocks (raw residual stream, no ln_post), and the image embedding is `encode_image`'s."""
    native = MuscPipeline(musc.clip, (0.5,) * 3, (0.5,) * 3, MuscSettings((1, 3)), name="native")
    pixels = native.preprocess(images[:2])
    tokens, pooled, grid = native.encode(pixels)
    with torch.inference_mode():
        theirs = musc.clip.visual.forward_intermediates(pixels, indices=[1, 3], output_fmt="NLC")
        image_features = F.normalize(musc.clip.encode_image(pixels), dim=-1)
    assert grid == (15, 15)
    for mine, reference in zip(tokens, theirs["image_intermediates"], strict=True):
        torch.testing.assert_close(mine, reference)
    torch.testing.assert_close(pooled, image_features)


def test_the_positional_embedding_is_resized_for_another_input_size(musc):
    native = musc.clip.visual.positional_embedding
    resized = musc._positional_embedding((14, 14))
    assert resized.shape == (1 + 14 * 14, native.shape[1])
    assert torch.equal(resized[0], native[0])  # the class token's position is kept
    assert musc._positional_embedding((15, 15)) is native


def test_a_progress_report_reaches_the_end_and_says_what_runs(musc, images):
    reports: list[tuple[float, str]] = []
    musc(images, batch_size=3, progress=lambda fraction, message: reports.append((fraction, message)))
    fractions = [fraction for fraction, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert any(message.startswith("Encoded") for _, message in reports)
    assert reports[-1][1] == "Mutual scoring: 6 of 6 images (pass 12 of 12)"
