"""Trained classifiers and detectors as named artifacts, shared by web and workers.

    <artifact dir>/models/<name>/model.json          task, name, classes, base preset, settings, metrics
    <artifact dir>/models/<name>/weights.safetensors classifier: head, zero-shot head and LoRA adapters;
                                                     detector: what training changed (no frozen backbone)

Models are written to a temporary folder and renamed into place (a half-saved model is never seen);
the downloadable file is a zip of the folder, and the same zip can be uploaded on another installation.
Names, atomic saving and listing are `tasks.named_folders`, shared with reference sets.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from engine.archives import extract_zip
from engine.errors import UserInputError
from engine.finetune.artifacts import TASKS, WEIGHTS_FILE, read_meta, task_of
from tasks.named_folders import NamedFolders

MODELS = NamedFolders("models", "model.json", "model", "models")
PRESET_TOOLS = {"classify": "finetune", "detect": "finetune-detect"}  # the presets each kind of model builds on


def root() -> Path:
    return MODELS.root


def check_free(name: str) -> None:
    """Refuse a name already taken, before a training job spends time on it."""
    MODELS.check_free(name)


def save(name: str, source: Path) -> dict[str, Any]:
    """Copy a model folder written by the engine under `name` (its model.json gets that name)."""

    def copy_model(folder: Path) -> dict[str, Any]:
        meta = read_meta(source)
        shutil.copytree(source, folder)
        return meta

    return MODELS.publish(name, copy_model)


def import_zip(name: str, archive: Path) -> dict[str, Any]:
    """Register a downloaded model zip under `name`, checking it is a classifier or detector for a known preset."""
    from engine.presets import get_preset

    with tempfile.TemporaryDirectory(dir=root().parent if root().parent.is_dir() else None) as work:
        extracted = extract_zip(archive, Path(work) / "model", display_name=archive.name, max_bytes=512 * 2**20)
        try:
            meta = read_meta(extracted)
        except UserInputError as exc:
            raise UserInputError(f"{archive.name} is not a model file downloaded from this tool: {exc}") from None
        preset = get_preset(meta["base_preset"])
        if preset.tool != PRESET_TOOLS[task_of(meta)] or not (extracted / WEIGHTS_FILE).is_file():
            raise UserInputError(f"{archive.name}: the model file is incomplete or its base preset {preset.name} is "
                                 f"not a {TASKS[task_of(meta)]} preset.")
        return save(name, extracted)


def get(name: str) -> dict[str, Any]:
    return MODELS.get(name)


def path(name: str) -> Path:
    get(name)
    return MODELS.folder(name)


def export_zip(name: str, target_dir: Path) -> Path:
    """A zip of the model (adapters and head only) for download."""
    source = path(name)
    target_dir.mkdir(parents=True, exist_ok=True)
    return Path(shutil.make_archive(str(target_dir / source.name), "zip", source))


def list_models(task: str | None = None) -> list[dict[str, Any]]:
    """Saved models, newest first; with `task` ("classify" or "detect"), only those."""
    return [meta for meta in MODELS.list() if task is None or task_of(meta) == task]


def delete(name: str) -> None:
    MODELS.delete(name)
