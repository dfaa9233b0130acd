"""WinCLIP on the tiny preset: shapes, the batched window pass, score arithmetic, text cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from engine.anomaly.prompts import prompt_ensemble
from engine.anomaly.scoring import class_scores, harmonic_aggregation, harmonic_mean, window_patch_indices
from engine.errors import UserInputError
from engine.media import load_image


def test_maps_come_back_at_each_input_size_and_aspect(tiny_pipeline, shared_data):
    strip = load_image(next((shared_data / "anomaly" / "kolektorsdd" / "test").glob("*/*.png")))
    wide = Image.new("RGB", (317, 45), (120, 30, 200))
    results = tiny_pipeline([strip, wide], "commutator")
    assert results[0].anomaly_map.shape == (strip.height, strip.width)
    assert results[1].anomaly_map.shape == (45, 317)
    for result in results:
        assert 0.0 <= result.score <= 1.0
        assert result.anomaly_map.dtype == np.float32
        assert 0.0 <= result.anomaly_map.min() <= result.anomaly_map.max() <= 1.0


def test_same_input_gives_same_output(tiny_pipeline, metal_plate_images):
    image = load_image(metal_plate_images[0])
    first, second = tiny_pipeline([image], "metal plate")[0], tiny_pipeline([image], "metal plate")[0]
    assert first.score == second.score
    np.testing.assert_array_equal(first.anomaly_map, second.anomaly_map)


def test_batching_does_not_change_results(tiny_pipeline, metal_plate_images):
    images = [load_image(p) for p in metal_plate_images[:3]]
    one_by_one = tiny_pipeline(images, "metal plate", batch_size=1)
    batched = tiny_pipeline(images, "metal plate", batch_size=3)
    for a, b in zip(one_by_one, batched, strict=True):
        assert a.score == pytest.approx(b.score, abs=1e-5)
        np.testing.assert_allclose(a.anomaly_map, b.anomaly_map, atol=1e-5)


@pytest.mark.parametrize("scale", [2, 3])
def test_batched_window_pass_equals_each_window_alone(tiny_pipeline, metal_plate_images, scale):
    """Catches attention running across windows (e.g. a batch-first transformer fed (L, N, D))."""
    model = tiny_pipeline.model
    images = [load_image(p) for p in metal_plate_images[:2]]
    with torch.inference_mode():
        tokens = model.patch_tokens(tiny_pipeline.preprocess(images))
        batched = model.window_embeddings(tokens, scale)
        windows = model.windows(scale)
        assert batched.shape[:2] == (2, windows.shape[0])
        for index in range(0, windows.shape[0], 7):
            sequence = torch.cat([tokens[:, :1], tokens[:, windows[index] + 1]], dim=1)
            alone = model.encode_tokens(sequence)
            torch.testing.assert_close(batched[:, index], alone, atol=1e-5, rtol=1e-4)
    # windows see different patches, so their embeddings differ
    assert batched[0].std(dim=0).mean() > 1e-4


def test_window_counts_match_the_paper_grid(tiny_pipeline):
    model = tiny_pipeline.model
    assert model.grid == (15, 15)
    assert model.windows(2).shape == (196, 4)
    assert model.windows(3).shape == (169, 9)


def test_window_layout_by_hand():
    windows = window_patch_indices((2, 3), 2)
    assert windows.tolist() == [[0, 1, 3, 4], [1, 2, 4, 5]]


def test_harmonic_aggregation_by_hand():
    windows = window_patch_indices((2, 3), 2)
    scores = torch.tensor([[0.2, 0.8]])
    patches = harmonic_aggregation(scores, windows, (2, 3))
    middle = 2 / (1 / 0.2 + 1 / 0.8)  # patches 1 and 4 lie in both windows
    expected = torch.tensor([[[0.2, middle, 0.8], [0.2, middle, 0.8]]])
    torch.testing.assert_close(patches, expected)


def test_harmonic_aggregation_of_a_zero_score_is_zero_not_nan():
    windows = window_patch_indices((2, 3), 2)
    patches = harmonic_aggregation(torch.tensor([[0.0, 0.8]]), windows, (2, 3))
    assert not torch.isnan(patches).any()
    assert patches[0, 0, 0] < 1e-9 and patches[0, 0, 1] < 1e-9
    assert patches[0, 0, 2].item() == pytest.approx(0.8)


def test_harmonic_mean_by_hand():
    values = torch.tensor([[0.5, 0.25], [0.5, 1.0]])
    torch.testing.assert_close(harmonic_mean(values, dim=0), torch.tensor([0.5, 2 / (4 + 1)]))


def test_class_scores_are_softmax_of_scaled_cosine():
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    embedding = torch.tensor([[3.0, 3.0], [0.0, 2.0]])
    scores = class_scores(embedding, text, temperature=0.07)
    assert scores[0].item() == pytest.approx(0.5)
    expected = torch.softmax(torch.tensor([0.0, 1.0]) / 0.07, dim=0)[1].item()
    assert scores[1].item() == pytest.approx(expected)


def test_prompt_ensemble_sizes():
    normal, anomalous = prompt_ensemble("bottle")
    assert len(normal) == 154 and len(anomalous) == 88  # 7 and 4 states x 22 templates
    assert len(set(normal + anomalous)) == len(normal + anomalous)
    assert "a photo of a flawless bottle." in normal
    assert "a photo of a damaged bottle for anomaly detection." in anomalous  # anomalib's and the paper's
    assert "a cropped photo of the damaged bottle." in anomalous


def test_trimmed_text_context_is_exact(tiny_pipeline):
    model = tiny_pipeline.model
    prompts = [*prompt_ensemble("metal plate")[0][:5], "a photo of a scratched metal plate for visual inspection."]
    with torch.inference_mode():
        trimmed = model.encode_text(prompts)
        full = model.clip.encode_text(model.tokenizer(prompts))
    torch.testing.assert_close(trimmed, full, atol=1e-5, rtol=1e-4)


def test_text_embeddings_are_cached_per_object(tiny_pipeline, monkeypatch):
    calls = []
    original = tiny_pipeline.model.encode_text
    monkeypatch.setattr(tiny_pipeline.model, "encode_text", lambda prompts: calls.append(1) or original(prompts))
    first = tiny_pipeline.text_embeddings("cache test part")
    second = tiny_pipeline.text_embeddings("  cache   test part ")
    assert first is second and len(calls) == 1
    tiny_pipeline.text_embeddings("another part")
    assert len(calls) == 2


@pytest.mark.parametrize("name", ["", "   ", "x" * 61])
def test_bad_object_names_are_refused_with_the_rule(tiny_pipeline, name):
    with pytest.raises(UserInputError, match="object name"):
        tiny_pipeline([Image.new("RGB", (64, 64))], name)


def test_no_images_is_refused(tiny_pipeline):
    with pytest.raises(UserInputError, match="at least one image"):
        tiny_pipeline([], "bottle")


def test_text_embeddings_survive_a_restart_on_disk(tmp_path, monkeypatch):
    from engine.anomaly.pipeline import WinClipPipeline
    from engine.loading import build_random_open_clip, save_open_clip
    from engine.presets import get_preset

    monkeypatch.setenv("FEWSHOT_CACHE_DIR", str(tmp_path / "cache"))
    config = get_preset("winclip-tiny").config
    save_open_clip(build_random_open_clip(config, seed=7), config, tmp_path / "model")
    first = WinClipPipeline.from_pretrained(tmp_path / "model", device="cpu").text_embeddings("gear")

    restarted = WinClipPipeline.from_pretrained(tmp_path / "model", device="cpu")
    monkeypatch.setattr(restarted.model, "encode_text", lambda prompts: pytest.fail("text encoded again"))
    torch.testing.assert_close(restarted.text_embeddings("gear"), first)

    save_open_clip(build_random_open_clip(config, seed=8), config, tmp_path / "other")
    other = WinClipPipeline.from_pretrained(tmp_path / "other", device="cpu").text_embeddings("gear")
    assert not torch.allclose(other, first)  # another model never reads this model's cache


def test_prefix_tree_shares_prefixes_and_masks_exactly_the_ancestors():
    from engine.anomaly.winclip import PrefixTree, _prefix_chunks

    tree = PrefixTree([(1, 2, 3), (1, 2, 4), (1, 5)])
    assert tree.tokens == [1, 2, 3, 4, 5] and tree.depths == [0, 1, 2, 2, 1] and tree.ends == [2, 3, 4]
    expected = np.array([[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 0, 1, 0], [1, 0, 0, 0, 1]], bool)
    assert np.array_equal(tree.ancestors, expected)
    # Chunks never exceed the node budget, and every row lands in exactly one chunk.
    rows = [(1, 2, 3), (1, 2, 4), (1, 5), (6, 7, 8, 9)]
    chunks = _prefix_chunks(rows, max_tokens=5)
    assert sorted(i for chunk in chunks for i in chunk) == [0, 1, 2, 3]
    assert all(len(PrefixTree([rows[i] for i in chunk]).tokens) <= 5 for chunk in chunks)


def test_prefix_shared_encoding_equals_each_prompt_alone_across_chunks(tiny_pipeline, monkeypatch):
    model = tiny_pipeline.model
    prompts = [p for group in prompt_ensemble("transistor") for p in group]
    with torch.inference_mode():
        alone = torch.cat([model.clip.encode_text(model.tokenizer([p])) for p in prompts[::7]])
        monkeypatch.setattr(type(model), "MAX_TREE_TOKENS", 40)  # many small trees
        shared = model.encode_text(prompts[::7])
    torch.testing.assert_close(shared, alone, atol=1e-5, rtol=1e-4)
