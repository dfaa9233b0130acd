"""One loading path for every model: a preset resolves to a directory, its family's loader reads it.

Where that directory comes from, in order:
1. `$FEWSHOT_MODELS_DIR/<preset>/` (an offline site copies downloaded weights there),
2. the Hugging Face hub cache (or the hub itself when online) for presets with real weights,
3. for presets with random weights, a directory built once from the preset's small config.

Tests build a tiny model, save it (`save_open_clip` for CLIP), and load it back by path,
exactly as real weights are loaded. Other families (transformers, diffusers) register a
`ModelFamily` with the same four abilities.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch

from engine.device import select_device
from engine.errors import UserInputError, WeightsNotFoundError
from engine.presets import Preset, get_preset

log = logging.getLogger(__name__)

CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")

T = TypeVar("T")


def models_dir() -> Path:
    """Local models directory (FEWSHOT_MODELS_DIR, default ~/.cache/fewshot-studio/models)."""
    default = Path.home() / ".cache" / "fewshot-studio" / "models"
    return Path(os.environ.get("FEWSHOT_MODELS_DIR") or default).expanduser()


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ModelFamily:
    """How one kind of model is stored on disk, built with random weights, and fetched from the hub.

    Every family stores a model as one directory; `resolve_model_dir` finds or builds it the same
    way for all of them, and each family's loader reads only that directory.
    """

    name: str
    is_complete: Callable[[Path], bool]
    build_random: Callable[[Preset, Path], None]
    fetch: Callable[[Preset, bool, Path | None], Path]  # (preset, local_files_only, local_dir) -> directory
    describe: Callable[[Preset], str]  # what the real weights are, for the missing-weights message


FAMILIES: dict[str, ModelFamily] = {}
# Families other than open_clip register themselves when their module is imported.
FAMILY_MODULES: dict[str, str] = {
    "open_clip": __name__,
    "owlv2": "engine.completion.model",
    "sd-controlnet-inpaint": "engine.insertion.model",
    "rt_detr": "engine.models.rtdetr",
}


def register_family(family: ModelFamily) -> ModelFamily:
    FAMILIES[family.name] = family
    return family


def family_of(preset: Preset) -> ModelFamily:
    if preset.family not in FAMILIES and preset.family in FAMILY_MODULES:
        import importlib

        importlib.import_module(FAMILY_MODULES[preset.family])
    try:
        return FAMILIES[preset.family]
    except KeyError:
        raise UserInputError(f"Preset {preset.name!r} has an unknown model family {preset.family!r}.") from None


def is_model_dir(path: Path) -> bool:
    """An open_clip model directory: its config and a weights file."""
    return (path / CONFIG_FILE).is_file() and any(p.suffix in _WEIGHT_SUFFIXES for p in path.iterdir())


def hub_repo(preset: Preset) -> str:
    """The hub repository open_clip names for a preset's pretrained tag."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(preset.architecture, preset.pretrained)
    repo = (cfg or {}).get("hf_hub", "").strip("/")
    if not repo:
        raise WeightsNotFoundError(
            f"open_clip knows no hub repository for {preset.architecture} / {preset.pretrained}."
        )
    return repo


def hub_snapshot(repo: str, local_files_only: bool, local_dir: Path | None = None,
                 allow_patterns: list[str] | None = None) -> Path:
    """A hub repository's files, from the cache (offline) or downloaded, as a local directory."""
    from huggingface_hub import snapshot_download

    return Path(
        snapshot_download(repo, allow_patterns=allow_patterns, local_files_only=local_files_only,
                          local_dir=local_dir)
    )


def save_open_clip(model: torch.nn.Module, model_cfg: dict[str, Any], directory: Path) -> Path:
    """Write a model in the directory layout that `load_open_clip` reads (open_clip's hub layout)."""
    from safetensors.torch import save_model

    directory.mkdir(parents=True, exist_ok=True)
    preprocess = dict(getattr(getattr(model, "visual", None), "preprocess_cfg", {}) or {})
    (directory / CONFIG_FILE).write_text(json.dumps({"model_cfg": model_cfg, "preprocess_cfg": preprocess}))
    save_model(model, str(directory / WEIGHTS_FILE))
    return directory


def build_random_open_clip(model_cfg: dict[str, Any], seed: int = 0) -> torch.nn.Module:
    """An open_clip CLIP from a config dict with seeded random weights (same weights every time)."""
    from dataclasses import asdict

    from open_clip.model import CLIP
    from open_clip.transform import PreprocessCfg

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIP(**model_cfg)
    model.visual.preprocess_cfg = {**asdict(PreprocessCfg()), "size": model.visual.image_size}
    return model.eval()


register_family(ModelFamily(
    name="open_clip",
    is_complete=is_model_dir,
    build_random=lambda preset, directory: save_open_clip(
        build_random_open_clip(preset.config), preset.config, directory),
    fetch=lambda preset, local_only, local_dir: hub_snapshot(
        hub_repo(preset), local_only, local_dir,
        allow_patterns=[CONFIG_FILE, "*.safetensors", "open_clip_pytorch_model.bin"]),
    describe=lambda preset: f"open_clip {preset.architecture}, {preset.pretrained}, repository {hub_repo(preset)}",
))


def _materialize_random(preset: Preset, family: ModelFamily, directory: Path) -> Path:
    """Build a random-weight preset once and store it, so it loads like any other model."""
    tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    family.build_random(preset, tmp)
    try:
        tmp.rename(directory)
    except OSError:  # another process won the race; its copy is identical
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def resolve_model_dir(preset: Preset) -> Path:
    """Find (or, for random-weight presets, build) the directory that holds a preset's weights."""
    family = family_of(preset)
    local = models_dir() / preset.name
    if local.is_dir() and family.is_complete(local):
        return local
    if preset.random_weights:
        local.parent.mkdir(parents=True, exist_ok=True)
        return _materialize_random(preset, family, local)
    try:
        return family.fetch(preset, hub_offline(), None)
    except Exception as exc:  # offline, no cache, network error: all say the same to the user
        from huggingface_hub.constants import HF_HUB_CACHE

        retry = ("Or unset HF_HUB_OFFLINE to let this machine download them." if hub_offline()
                 else "Downloading them here failed too (is this machine offline?).")

        log.warning("Weights for preset %s not found: looked in %s and in the Hugging Face cache %s (%s: %s)",
                    preset.name, local, HF_HUB_CACHE, type(exc).__name__, exc)
        raise WeightsNotFoundError(  # server paths go to the log above, not to the user
            f"Weights for preset '{preset.name}' ({family.describe(preset)}) "
            f"are not on this machine: neither in the models folder (FEWSHOT_MODELS_DIR) nor in the Hugging Face "
            f"cache (HF_HOME). "
            f"Fix: on a machine with internet run `make weights` (or `python -m engine weights "
            f"--preset {preset.name}`), copy its models folder to this machine and point FEWSHOT_MODELS_DIR "
            f"at it. {retry} ({type(exc).__name__})"
        ) from exc


def not_a_model_dir(directory: Path, kind: str, needs: str) -> UserInputError:
    """The refusal of a folder that lacks a model's files: it names the folder only (a server path must not
    reach the user) and logs the full path for the operator."""
    log.warning("%s is not %s: it needs %s", directory, kind, needs)
    return UserInputError(f"Model folder '{directory.name}' is not {kind}: it needs {needs}. Rebuild or copy it "
                          "again into the models folder (FEWSHOT_MODELS_DIR).")


def download_preset(preset: Preset, target_root: Path | None = None) -> Path:
    """Download a preset's real weights into `<models dir>/<preset>` (for `make weights`)."""
    if preset.random_weights:
        return resolve_model_dir(preset)
    target = (target_root or models_dir()) / preset.name
    return family_of(preset).fetch(preset, False, target)


def load_open_clip(
    source: str | Path, device: torch.device, dtype: torch.dtype
) -> tuple[torch.nn.Module, Callable[..., torch.Tensor], dict[str, Any]]:
    """Load (model, tokenizer, preprocess config) from a model directory, a preset name or 'hf-hub:repo'.

    Every form ends in the same call: open_clip reading a local directory.
    """
    import open_clip

    source = str(source)
    if source.startswith("hf-hub:"):
        directory = hub_snapshot(source.removeprefix("hf-hub:"), local_files_only=hub_offline(),
                                 allow_patterns=[CONFIG_FILE, "*.safetensors", "open_clip_pytorch_model.bin"])
    elif Path(source).expanduser().is_dir():
        directory = Path(source).expanduser()
    else:
        directory = resolve_model_dir(get_preset(source))
    if not is_model_dir(directory):
        raise not_a_model_dir(directory, "a model directory",
                              f"{CONFIG_FILE} and a weights file ({', '.join(_WEIGHT_SUFFIXES)})")
    model = open_clip.create_model(f"local-dir:{directory}", device=device)
    model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
    tokenizer = open_clip.get_tokenizer(f"local-dir:{directory}")
    preprocess = dict(getattr(model.visual, "preprocess_cfg", {}) or {})
    return model, tokenizer, preprocess


class ModelCache:
    """Keeps each loaded model for the life of the process: a worker loads a model once."""

    def __init__(self) -> None:
        self._items: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], factory: Callable[[], T]) -> T:
        with self._lock:
            if key not in self._items:
                self._items[key] = factory()
            return self._items[key]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


MODEL_CACHE = ModelCache()


class Pretrained(Protocol):
    @classmethod
    def from_pretrained(cls, source: str | Path, device: Any) -> Any: ...


P = TypeVar("P", bound=Pretrained)


def get_pipeline(pipeline: type[P], source: str | Path, device: str | None = None) -> P:
    """The process-wide pipeline of a class for a source and device: loaded on first use, then reused."""
    resolved = select_device(device)
    return MODEL_CACHE.get((pipeline.__name__, str(source), str(resolved)),
                           lambda: pipeline.from_pretrained(source, resolved))


def recover_from_out_of_memory() -> str:
    """Drop every cached model and hand cached blocks back to the driver, so the next job starts from an
    empty device; returns what the device holds now, for the job's message."""
    import gc

    MODEL_CACHE.clear()
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
        free, total = torch.cuda.mem_get_info()
        return f"{free / 2**30:.1f} of {total / 2**30:.1f} GiB of GPU memory are free now"
    if getattr(torch, "mps", None) is not None and torch.backends.mps.is_available():
        torch.mps.empty_cache()
    return "the device's cached memory was released"
