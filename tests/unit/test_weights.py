"""Real presets' weights: found in the models directory or in a hub cache filled by anyone (the project, open_clip),
marked installed by the same torch-free check the loader uses, and downloaded one copy per file."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_model

from engine.errors import WeightsNotFoundError
from engine.loading import build_random_open_clip, load_open_clip
from engine.presets import PRESETS, Preset, get_preset
from engine.weights import (
    OPEN_CLIP_WEIGHTS,
    PlannedFile,
    download,
    file_matches,
    human_size,
    is_installed,
    locate,
    manifest,
    plan_download,
)
from tests.hub_cache import put_in_hub_cache

ARCHITECTURE = "fewshot-test-tiny-clip"  # registered with open_clip below, as if it were one of its built-ins
REPO = "org/tiny-clip"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def models(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("FEWSHOT_MODELS_DIR", str(folder))
    return folder


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A tiny CLIP whose config open_clip knows by name (the way open_clip knows ViT-B-16-plus-240's)."""
    import open_clip

    config = get_preset("winclip-tiny").config
    folder = tmp_path_factory.mktemp("open_clip_configs")
    (folder / f"{ARCHITECTURE}.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder / f"{ARCHITECTURE}.json")
    model = build_random_open_clip(config, seed=7)
    weights = folder / "open_clip_model.safetensors"
    save_model(model, str(weights))
    pickle = folder / "open_clip_pytorch_model.bin"
    torch.save(model.state_dict(), pickle)
    return SimpleNamespace(model=model, config=config, safetensors=weights, pickle=pickle)


@pytest.fixture
def real_preset(monkeypatch):
    preset = Preset(name="test-real-clip", tool="anomaly", label="test", architecture=ARCHITECTURE,
                    pretrained="test-tag", config={"hub_repo": REPO})
    monkeypatch.setitem(PRESETS, preset.name, preset)
    return preset


def assert_loads_the_same_model(preset: Preset, original: torch.nn.Module) -> None:
    loaded, tokenizer, preprocess = load_open_clip(preset.name, torch.device("cpu"), torch.float32)
    pixels = torch.randn(1, 3, 240, 240)
    text = tokenizer(["a photo of a bottle."])
    with torch.inference_mode():
        torch.testing.assert_close(loaded.encode_image(pixels), original.encode_image(pixels))
        torch.testing.assert_close(loaded.encode_text(text), original.encode_text(text))
    assert tuple(preprocess["size"]) == (240, 240)


def test_open_clip_preset_loads_from_the_models_dir(tiny_clip, real_preset, models, hub_cache):
    assert not is_installed(real_preset)
    (models / real_preset.name).mkdir()
    (models / real_preset.name / "open_clip_model.safetensors").write_bytes(tiny_clip.safetensors.read_bytes())
    assert is_installed(real_preset)
    assert_loads_the_same_model(real_preset, tiny_clip.model)


def test_open_clip_preset_loads_from_the_projects_hub_download(tiny_clip, real_preset, models, hub_cache):
    """The project's earlier download: open_clip's config next to the weights in the hub cache."""
    config = json.dumps({"model_cfg": tiny_clip.config, "preprocess_cfg": {}}).encode()
    put_in_hub_cache(hub_cache, REPO, {"open_clip_config.json": config,
                                       "open_clip_model.safetensors": tiny_clip.safetensors})
    assert is_installed(real_preset)
    assert_loads_the_same_model(real_preset, tiny_clip.model)


@pytest.mark.parametrize("weights_file", OPEN_CLIP_WEIGHTS)
def test_open_clip_preset_loads_from_open_clips_own_hub_download(tiny_clip, real_preset, models, hub_cache,
                                                                 weights_file):
    """open_clip's `pretrained=` download stores the weights file only (safetensors, or the pickle of an older
    open_clip or a repository without safetensors): the architecture's config comes from open_clip."""
    source = tiny_clip.safetensors if weights_file.endswith(".safetensors") else tiny_clip.pickle
    snapshot = put_in_hub_cache(hub_cache, REPO, {weights_file: source})
    assert locate(real_preset) == {REPO: snapshot}
    assert_loads_the_same_model(real_preset, tiny_clip.model)
    assert list(models.iterdir()) == []  # loading wrote nothing into the models directory


def test_a_tag_trained_with_quick_gelu_loads_with_quick_gelu(tiny_clip, real_preset, models, hub_cache, monkeypatch):
    """OpenAI's weights (MuSc's ViT-L-14-336 'openai') were trained with QuickGELU: open_clip knows it from the tag,
    not from the weights path the loader passes, so the loader must say it (plain GELU would run silently)."""
    import open_clip

    monkeypatch.setattr(open_clip, "get_pretrained_cfg", lambda architecture, tag: {"quick_gelu": True})
    put_in_hub_cache(hub_cache, REPO, {"open_clip_model.safetensors": tiny_clip.safetensors})
    loaded, _, _ = load_open_clip(real_preset.name, torch.device("cpu"), torch.float32)
    assert type(loaded.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"


def test_a_real_preset_on_neither_place_is_not_installed_and_its_load_says_so(tiny_clip, real_preset, models,
                                                                              hub_cache):
    put_in_hub_cache(hub_cache, REPO, {"open_clip_config.json": b"{}"})  # config alone: no weights
    assert not is_installed(real_preset)
    with pytest.raises(WeightsNotFoundError, match=r"test-real-clip.*unset HF_HUB_OFFLINE"):
        load_open_clip(real_preset.name, torch.device("cpu"), torch.float32)


def test_presets_name_the_repository_open_clip_downloads_for_their_tag():
    """The web process reads `hub_repo` without importing open_clip; it must be open_clip's own mapping, and the
    label must say which weights those are (open_clip's e32 tag downloads the e31 repository)."""
    import open_clip

    for preset in PRESETS.values():
        if preset.family == "open_clip" and not preset.random_weights:
            tag = open_clip.get_pretrained_cfg(preset.architecture, preset.pretrained)
            assert tag["hf_hub"].strip("/") == preset.config["hub_repo"]
    winclip = get_preset("winclip-vit-b-16-plus-240")
    assert winclip.pretrained == "laion400m_e31" and winclip.config["hub_repo"].endswith(".laion400m_e31")
    assert "epoch 31" in winclip.label
    assert open_clip.get_pretrained_cfg("ViT-B-16-plus-240", "laion400m_e32")["hf_hub"].strip("/") == \
        winclip.config["hub_repo"]


def test_random_weight_presets_are_always_installed_and_real_ones_are_not_here():
    assert all(is_installed(p) for p in PRESETS.values() if p.random_weights)
    assert not any(is_installed(p) for p in PRESETS.values() if not p.random_weights)  # tests run offline, empty


def test_the_installed_check_imports_no_torch():
    code = ("import sys; from engine.presets import PRESETS; from engine.weights import is_installed; "
            "[is_installed(p) for p in PRESETS.values()]; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


class FakeApi:
    """The hub's answer to get_paths_info for a repository that holds every copy (as laion's ViT-B-32 does)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.asked: list[tuple[str, list[str]]] = []

    def get_paths_info(self, repo, paths):
        from huggingface_hub.hf_api import RepoFile

        self.asked.append((repo, paths))
        return [RepoFile(path=name, size=len(data), oid=hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest(),
                         lfs={"size": len(data), "oid": hashlib.sha256(data).hexdigest(), "pointerSize": 130}
                         if name.endswith((".safetensors", ".bin")) else None)
                for name, data in self.files.items() if name in paths]


def test_the_download_plan_takes_one_copy_of_each_file_the_loader_reads():
    api = FakeApi({"open_clip_model.safetensors": b"s" * 10, "open_clip_pytorch_model.bin": b"b" * 12,
                   "model.safetensors": b"t" * 11, "open_clip_config.json": b"{}"})
    planned = plan_download(get_preset("finetune-clip-vit-b-32"), api)
    assert [(p.repo, p.name, p.size) for p in planned] == [
        ("laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "open_clip_model.safetensors", 10)]
    api = FakeApi({"open_clip_pytorch_model.bin": b"b" * 12})  # no safetensors upstream: the pickle, as open_clip
    assert [p.name for p in plan_download(get_preset("winclip-vit-b-16-plus-240"), api)] == [
        "open_clip_pytorch_model.bin"]


def test_the_insertion_files_come_from_both_repositories_without_fp16_or_checkpoint_copies():
    files = manifest(get_preset("insertion-sd15-controlnet-inpaint"))
    assert {f.repo for f in files} == {"stable-diffusion-v1-5/stable-diffusion-v1-5",
                                       "lllyasviel/control_v11p_sd15_inpaint"}
    names = [f.folder + name for f in files for name in f.names]
    assert len(names) == len(set(names))
    assert {"unet/diffusion_pytorch_model.safetensors", "controlnet/diffusion_pytorch_model.safetensors"} <= {*names}
    assert not any("fp16" in name or name.endswith((".ckpt", ".bin")) for name in names)


def test_a_download_is_checked_against_the_hubs_size_and_checksum(tmp_path):
    data = b"weights" * 100
    api = FakeApi({"config.json": b"{}", "model.safetensors": data, "preprocessor_config.json": b"{}"})
    planned = plan_download(get_preset("detection-rtdetr-r18"), api)

    def fake_download(repo, name, local_dir):
        path = local_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(api.files[name])
        return str(path)

    paths = download(planned, tmp_path / "detection-rtdetr-r18", fake_download)
    assert sorted(p.name for p in paths) == ["config.json", "model.safetensors", "preprocessor_config.json"]
    corrupt = replace(next(p for p in planned if p.name == "model.safetensors"), sha256="0" * 64)
    with pytest.raises(OSError, match="does not match the hub's size and checksum"):
        download([corrupt], tmp_path / "again", fake_download)
    assert not file_matches(tmp_path / "missing", PlannedFile("r", "x", "", 1, None, "0"))


def test_weights_command_lists_one_copy_with_sizes_then_downloads_and_checks(monkeypatch, tmp_path, capsys):
    import huggingface_hub

    from engine.__main__ import main

    files = {"open_clip_model.safetensors": b"s" * 2_000_000, "open_clip_pytorch_model.bin": b"b" * 2_000_001,
             "model.safetensors": b"t" * 1_999_999, "open_clip_config.json": b"{}"}
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda: FakeApi(files))

    def fake_download(repo, name, local_dir):  # huggingface_hub's download, without the network
        (local_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (local_dir / name).write_bytes(files[name])
        return str(local_dir / name)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    args = ["weights", "--preset", "finetune-clip-vit-b-32", "--models-dir", str(tmp_path)]
    assert main([*args, "--dry-run"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0] == f"1 file, 2.0 MB in all, into {tmp_path}:"
    assert [line.split()[0] for line in listed[2:]] == ["open_clip_model.safetensors"]
    assert not (tmp_path / "finetune-clip-vit-b-32").exists()
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("1 files checked against the hub's sizes and checksums")
    assert [p.name for p in (tmp_path / "finetune-clip-vit-b-32").iterdir()] == ["open_clip_model.safetensors"]
    monkeypatch.setenv("FEWSHOT_MODELS_DIR", str(tmp_path))
    assert is_installed(get_preset("finetune-clip-vit-b-32"))


def test_weights_command_offline_says_it_cannot_list_sizes(capsys):
    from engine.__main__ import main

    assert main(["weights", "--dry-run", "--preset", "winclip-vit-b-16-plus-240"]) == 0
    out = capsys.readouterr().out
    assert "size unknown offline" in out and "open_clip_model.safetensors (or open_clip_pytorch_model.bin)" in out
    assert main(["weights", "--preset", "winclip-vit-b-16-plus-240"]) == 2
    assert "unset it on a machine with internet" in capsys.readouterr().err


@pytest.mark.parametrize("size, shown", [(0, "0 B"), (231, "231 B"), (999, "999 B"), (12_400, "12.4 kB"),
                                         (5_250_000, "5.2 MB"), (1_530_000_000, "1.5 GB")])
def test_a_size_is_whole_bytes_then_one_decimal(size, shown):
    """As the page's file lists now write them: "231 B", never "231.0 B"; one decimal from kB up, GB too."""
    assert human_size(size) == shown
