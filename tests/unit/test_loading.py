"""One loading path for tiny and real models; the missing-weights message; device choice."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from engine.anomaly.pipeline import WinClipPipeline
from engine.device import select_device, select_dtype
from engine.errors import UserInputError, WeightsNotFoundError
from engine.loading import build_random_open_clip, get_pipeline, load_open_clip, models_dir, save_open_clip
from engine.presets import PRESETS, get_preset, presets_for


def test_tiny_model_saved_to_a_directory_loads_through_the_real_path(tmp_path):
    config = get_preset("winclip-tiny").config
    original = build_random_open_clip(config, seed=123)
    save_open_clip(original, config, tmp_path / "my-model")
    loaded, tokenizer, preprocess = load_open_clip(tmp_path / "my-model", torch.device("cpu"), torch.float32)
    pixels = torch.randn(2, 3, 240, 240)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.encode_image(pixels), original.encode_image(pixels))
        text = tokenizer(["a photo of a bottle."])
        torch.testing.assert_close(loaded.encode_text(text), original.encode_text(text))
    assert tuple(preprocess["size"]) == (240, 240) and len(preprocess["mean"]) == 3
    pipeline = WinClipPipeline.from_pretrained(tmp_path / "my-model", device="cpu")
    assert pipeline([Image.new("RGB", (50, 80))], "bottle")[0].anomaly_map.shape == (80, 50)


def test_random_weight_presets_are_built_once_into_the_models_dir():
    pipeline = get_pipeline(WinClipPipeline, "winclip-tiny")
    assert (models_dir() / "winclip-tiny" / "open_clip_config.json").is_file()
    assert get_pipeline(WinClipPipeline, "winclip-tiny") is pipeline  # a worker loads each model once


def test_missing_real_weights_offline_name_the_preset_the_places_and_the_fix(caplog):
    with pytest.raises(WeightsNotFoundError) as caught:
        load_open_clip("winclip-vit-b-16-plus-240", torch.device("cpu"), torch.float32)
    logged = [r.getMessage() for r in caplog.records if "not found: looked in" in r.getMessage()]
    assert len(logged) == 1 and str(models_dir()) in logged[0]  # the server's places, for its operator
    assert "None" not in logged[0] and "download failed" not in logged[0]  # offline: no download was tried
    message = str(caught.value)
    assert "winclip-vit-b-16-plus-240" in message
    from huggingface_hub.constants import HF_HUB_CACHE

    assert str(models_dir()) not in message and HF_HUB_CACHE not in message  # server paths go to the log only
    assert "Hugging Face cache (HF_HOME)" in message and "unset HF_HUB_OFFLINE" in message
    assert "make weights" in message and "FEWSHOT_MODELS_DIR" in message


def test_unknown_preset_lists_the_accepted_ones():
    with pytest.raises(UserInputError, match=r"accepted: .*winclip-tiny, winclip-vit-b-16-plus-240"):
        get_preset("winclip-huge")


def test_a_directory_without_weights_is_refused(tmp_path):
    (tmp_path / "open_clip_config.json").write_text("{}")
    with pytest.raises(UserInputError, match="not a model directory"):
        load_open_clip(tmp_path, torch.device("cpu"), torch.float32)


def test_presets_name_real_weights_and_label_random_ones():
    real = get_preset("winclip-vit-b-16-plus-240")
    assert (real.architecture, real.pretrained) == ("ViT-B-16-plus-240", "laion400m_e31")
    assert not real.random_weights
    for preset in PRESETS.values():
        assert preset.random_weights == ("random weights" in preset.label)
    assert presets_for("anomaly")[0].name == "winclip-vit-b-16-plus-240"


def test_device_choice_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.delenv("FEWSHOT_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert select_device().type == "cpu"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert select_device().type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device().type == "cuda"
    assert select_dtype(torch.device("cuda")) == torch.float16
    assert select_dtype(torch.device("cpu")) == torch.float32
    assert select_dtype(torch.device("mps")) == torch.float32


def test_device_override_and_its_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("cpu").type == "cpu"
    with pytest.raises(UserInputError, match="no CUDA device"):
        select_device("cuda")
    with pytest.raises(UserInputError, match="accepted: auto, cuda, mps, cpu"):
        select_device("tpu")
