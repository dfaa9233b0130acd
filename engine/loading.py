"""One loading path for every model: a preset resolves to a directory, its family's loader reads it.

Where that directory comes from, in order (`engine.weights` finds the files, torch-free, so the web page's
"not installed" mark and this loader never disagree):
1. `$FEWSHOT_MODELS_DIR/<preset>/` (an offline site copies downloaded weights there),
2. the Hugging Face hub cache, whoever filled it (this project, open_clip, transformers, diffusers), or the
   hub itself when online, for presets with real weights; nothing is written outside the hub cache,
3. for presets with random weights, a directory built once from the preset's small config.

Tests build a tiny model, save it (`save_open_clip` for CLIP), and load it back by path,
exactly as real weights are loaded. Other families (transformers, diffusers) register a
`ModelFamily` with the same abilities.
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
from engine.weights import (
    OPEN_CLIP_WEIGHTS,
    download,
    hub_offline,
    locate,
    models_dir,
    places_searched,
    plan_download,
    repositories,
)

log = logging.getLogger(__name__)

CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")

T = TypeVar("T")

__all__ = ["hub_offline", "models_dir"]  # re-exported: callers of the loader find the settings here too


@dataclass(frozen=True)
class ModelFamily:
    """How one kind of model is stored on disk and built with random weights.

    Every family stores a model as one directory; `resolve_model_dir` finds or builds it the same
    way for all of them, and each family's loader reads only that directory. Which files a real
    preset needs is `engine.weights.manifest`.
    """

    name: str
    is_complete: Callable[[Path], bool]
    build_random: Callable[[Preset, Path], None]
    describe: Callable[[Preset], str]  # what the real weights are, for the missing-weights message


FAMILIES: dict[str, ModelFamily] = {}
# Families other than open_clip register themselves when their module is imported.
FAMILY_MODULES: dict[str, str] = {
    "open_clip": __name__,
    "owlv2": "engine.completion.model",
    "sd-controlnet-inpaint": "engine.insertion.model",
    "rt_detr": "engine.models.rtdetr",
    "dinov2": "engine.models.dinov2",
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
    describe=lambda preset: f"open_clip {preset.architecture}, {preset.pretrained}, "
                            f"repository {preset.config['hub_repo']}",
))


def _materialize_random(preset: Preset, family: ModelFamily, directory: Path) -> Path:
    """Build a random-weight preset once and store it, so it loads like any other model. A folder left by an
    older version that lacks files is moved aside first."""
    tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    family.build_random(preset, tmp)
    if directory.is_dir() and not family.is_complete(directory):
        stale = directory.with_name(f".{directory.name}.stale-{os.getpid()}-{threading.get_ident()}")
        try:
            directory.rename(stale)
            shutil.rmtree(stale, ignore_errors=True)
        except OSError:  # another process moved it first
            pass
    try:
        tmp.rename(directory)
    except OSError:  # another process won the race; its copy is identical
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def resolve_repo_dirs(preset: Preset) -> dict[str, Path]:
    """The folder holding each hub repository's files of a real preset: the models directory, the hub cache,
    or, online, the hub cache after downloading exactly the files the loader reads."""
    found = locate(preset)
    failure: Exception | None = None
    if found is None and not hub_offline():
        try:
            download(plan_download(preset), None)
        except Exception as exc:  # offline, network error, file missing upstream: all say the same to the user
            failure = exc
        found = locate(preset)
    if found is not None:
        return found
    family = family_of(preset)
    retry = ("Or unset HF_HUB_OFFLINE to let this machine download them." if hub_offline()
             else "Downloading them here failed too (is this machine offline?).")
    log.warning("Weights for preset %s not found: looked in %s%s", preset.name, ", ".join(places_searched(preset)),
                f"; the download failed: {type(failure).__name__}: {failure}" if failure else "")
    raise WeightsNotFoundError(  # server paths go to the log above, not to the user
        f"Weights for preset '{preset.name}' ({family.describe(preset)}) "
        f"are not on this machine: neither in the models folder (FEWSHOT_MODELS_DIR) nor in the Hugging Face "
        f"cache (HF_HOME). "
        f"Fix: on a machine with internet run `make weights` (or `python -m engine weights "
        f"--preset {preset.name}`), copy its models folder to this machine and point FEWSHOT_MODELS_DIR "
        f"at it. {retry}" + (f" ({type(failure).__name__})" if failure else "")
    ) from failure


def resolve_model_dir(preset: Preset) -> Path:
    """Find (or, for random-weight presets, build) the directory that holds a preset's weights (for a preset
    made of several repositories, the main one's)."""
    family = family_of(preset)
    if preset.random_weights:
        local = models_dir() / preset.name
        if local.is_dir() and family.is_complete(local):
            return local
        local.parent.mkdir(parents=True, exist_ok=True)
        return _materialize_random(preset, family, local)
    return resolve_repo_dirs(preset)[repositories(preset)[0]]


def not_a_model_dir(directory: Path, kind: str, needs: str) -> UserInputError:
    """The refusal of a folder that lacks a model's files: it names the folder only (a server path must not
    reach the user) and logs the full path for the operator."""
    log.warning("%s is not %s: it needs %s", directory, kind, needs)
    return UserInputError(f"Model folder '{directory.name}' is not {kind}: it needs {needs}. Rebuild or copy it "
                          "again into the models folder (FEWSHOT_MODELS_DIR).")


def load_open_clip(
    source: str | Path, device: torch.device, dtype: torch.dtype
) -> tuple[torch.nn.Module, Callable[..., torch.Tensor], dict[str, Any]]:
    """Load (model, tokenizer, preprocess config) from a model directory, a preset name or 'hf-hub:repo'.

    A directory (a random-weight preset's, or one saved by `save_open_clip`) carries its config; a real
    preset's weights file (open_clip's safetensors or pickle, wherever `engine.weights` finds it) is read with
    the architecture's config and the tag's preprocessing from open_clip itself, so the cache that open_clip
    fills, which holds only the weights file, loads as well.
    """
    import open_clip

    source = str(source)
    if source.startswith("hf-hub:"):  # open_clip's own hub loading (config and weights from the repository)
        model, name = open_clip.create_model(source, device=device), source
    elif Path(source).expanduser().is_dir() or get_preset(source).random_weights:
        path = Path(source).expanduser()
        directory = path if path.is_dir() else resolve_model_dir(get_preset(source))
        if not is_model_dir(directory):
            raise not_a_model_dir(directory, "a model directory",
                                  f"{CONFIG_FILE} and a weights file ({', '.join(_WEIGHT_SUFFIXES)})")
        name = f"local-dir:{directory}"
        model = open_clip.create_model(name, device=device)
    else:
        preset = get_preset(source)
        directory = resolve_model_dir(preset)
        weights = next(directory / f for f in OPEN_CLIP_WEIGHTS if (directory / f).is_file())
        tag = open_clip.get_pretrained_cfg(preset.architecture, preset.pretrained) or {}
        preprocess = {k: tag[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag}
        name = preset.architecture
        # A weights path, unlike a tag, does not tell open_clip that OpenAI's weights were trained with QuickGELU
        model = open_clip.create_model(name, pretrained=str(weights), device=device,
                                       force_preprocess_cfg=preprocess,
                                       force_quick_gelu=bool(tag.get("quick_gelu", False)))
    model = model.to(device=device, dtype=dtype).eval().requires_grad_(False)
    tokenizer = open_clip.get_tokenizer(name)
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
