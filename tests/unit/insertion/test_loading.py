"""The real insertion preset's layout in the hub cache (SD 1.5 and the ControlNet as two repositories), loaded by
diffusers' own from_pretrained with a read-only models directory, twice at once, writing nothing."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.insertion.model import load_pipeline
from engine.loading import resolve_model_dir
from engine.presets import PRESETS, Preset, get_preset
from engine.weights import is_installed, locate
from tests.hub_cache import put_in_hub_cache, read_only

SD_REPO, CONTROLNET_REPO = "org/tiny-sd", "org/tiny-controlnet"
REPO = Path(__file__).resolve().parents[3]  # not from tests.conftest: importing it would reset the worker's settings


@pytest.fixture
def hub_with_the_tiny_pipeline(tmp_path, monkeypatch):
    """The tiny preset's files stored as the two hub repositories hold the real ones: SD 1.5's slow-tokenizer
    files (vocab.json, merges.txt), the ControlNet at the top of its own repository."""
    import huggingface_hub.constants

    built = resolve_model_dir(get_preset("insertion-tiny"))
    cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    sd_files = {str(p.relative_to(built)): p for p in built.rglob("*")
                if p.is_file() and p.relative_to(built).parts[0] != "controlnet" and p.name != "tokenizer.json"}
    tokenizer = json.loads((built / "tokenizer" / "tokenizer.json").read_text())["model"]
    sd_files["tokenizer/vocab.json"] = json.dumps(tokenizer["vocab"]).encode()
    sd_files["tokenizer/merges.txt"] = b"#version: 0.2\n"
    put_in_hub_cache(cache, SD_REPO, sd_files)
    put_in_hub_cache(cache, CONTROLNET_REPO, {p.name: p for p in (built / "controlnet").iterdir()})
    preset = Preset(name="test-real-insertion", tool="insertion", label="test", architecture="test",
                    family="sd-controlnet-inpaint", pretrained=SD_REPO, config={"controlnet": CONTROLNET_REPO})
    monkeypatch.setitem(PRESETS, preset.name, preset)
    return preset


def fingerprint(pipe) -> str:
    """One hash of every weight of the pipeline's networks and of its tokenizer's ids for a prompt."""
    digest = hashlib.sha256()
    for name in ("unet", "controlnet", "vae", "text_encoder"):
        for key, tensor in sorted(getattr(pipe, name).state_dict().items()):
            digest.update(key.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(json.dumps([pipe.tokenizer("a red car").input_ids, type(pipe.scheduler).__name__]).encode())
    return digest.hexdigest()


def load_in_a_worker_process() -> None:
    """A worker's start: the preset from the environment, the models directory read-only, one load."""
    os.environ["HF_HUB_CACHE"] = os.environ["TEST_HUB_CACHE"]  # read by huggingface_hub when imported
    preset = Preset(name="test-real-insertion", tool="insertion", label="test", architecture="test",
                    family="sd-controlnet-inpaint", pretrained=SD_REPO, config={"controlnet": CONTROLNET_REPO})
    PRESETS[preset.name] = preset
    with read_only(Path(os.environ["FEWSHOT_MODELS_DIR"])):
        print(fingerprint(load_pipeline(preset.name, torch.float32)))


def test_insertion_loads_from_the_hub_cache_with_a_read_only_models_dir_in_two_workers_at_once(
        hub_with_the_tiny_pipeline, tmp_path, monkeypatch):
    import huggingface_hub.constants

    expected = fingerprint(load_pipeline("insertion-tiny", torch.float32))
    models = tmp_path / "read-only-models"
    models.mkdir()
    monkeypatch.setenv("FEWSHOT_MODELS_DIR", str(models))
    with read_only(models):
        with pytest.raises(PermissionError):  # the guard works: nothing can be written there
            (models / "probe").mkdir()
        assert is_installed(hub_with_the_tiny_pipeline)
    env = {**os.environ, "TEST_HUB_CACHE": huggingface_hub.constants.HF_HUB_CACHE, "PYTHONPATH": str(REPO)}
    code = "from tests.unit.insertion.test_loading import load_in_a_worker_process as f; f()"
    workers = [subprocess.Popen([sys.executable, "-c", code], env=env, cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [worker.communicate(timeout=240) for worker in workers]
    for worker, (out, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err[-3000:]
        assert out.strip().splitlines()[-1] == expected
    assert list(models.iterdir()) == []


def test_a_copied_models_folder_loads_and_a_missing_controlnet_file_is_not_installed(
        hub_with_the_tiny_pipeline, tmp_path, monkeypatch):
    preset = hub_with_the_tiny_pipeline
    cached = locate(preset)
    models = tmp_path / "models"
    monkeypatch.setenv("FEWSHOT_MODELS_DIR", str(models))
    shutil.copytree(cached[SD_REPO], models / preset.name)  # what `make weights` writes
    shutil.copytree(cached[CONTROLNET_REPO], models / preset.name / "controlnet")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    assert locate(preset) == {SD_REPO: models / preset.name, CONTROLNET_REPO: models / preset.name / "controlnet"}
    assert is_installed(preset)
    with read_only(models):
        assert load_pipeline(preset.name, torch.float32).controlnet is not None
    (models / preset.name / "controlnet" / "diffusion_pytorch_model.safetensors").unlink()
    assert not is_installed(preset)
