"""Trained classifiers as named artifacts, shared by web and workers.

    <artifact dir>/models/<name>/model.json          name, classes, base preset, settings, metrics
    <artifact dir>/models/<name>/weights.safetensors head, zero-shot head and LoRA adapters (no backbone)

Models are written to a temporary folder and renamed into place (a half-saved model is never seen);
the downloadable file is a zip of the folder, and the same zip can be uploaded on another installation.
Names follow the rules of `tasks.reference_sets`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from engine.archives import extract_zip
from engine.errors import UserInputError
from tasks.config import get_settings
from tasks.reference_sets import _NAME

META_FILE = "model.json"


def root() -> Path:
    return get_settings().artifact_dir / "models"


def folder(name: str) -> Path:
    name = (name or "").strip()
    if not _NAME.match(name) or ".." in name:
        raise UserInputError(f"Model name {name!r} is not accepted: use 1 to 60 letters, digits, spaces, "
                             "'.', '-' or '_', starting with a letter or digit.")
    return root() / name


def check_free(name: str) -> None:
    """Refuse a name already taken, before a training job spends time on it."""
    if folder(name).exists():
        raise UserInputError(f"A model named '{name.strip()}' already exists: pick another name or delete it.")


def save(name: str, source: Path) -> dict[str, Any]:
    """Copy a model folder written by the engine under `name` (its model.json gets that name)."""
    from engine.finetune.model import read_meta

    check_free(name)
    meta = {**read_meta(source), "name": name.strip()}
    root().mkdir(parents=True, exist_ok=True)
    tmp = root() / f".tmp-{os.getpid()}-{time.monotonic_ns()}"
    shutil.copytree(source, tmp)
    (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
    try:
        tmp.rename(folder(name))
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserInputError(f"A model named '{name.strip()}' was saved at the same moment; "
                             "pick another name.") from None
    return meta


def import_zip(name: str, archive: Path) -> dict[str, Any]:
    """Register a downloaded model zip under `name`, checking it is a model for a known preset."""
    from engine.finetune.model import read_meta
    from engine.presets import get_preset

    with tempfile.TemporaryDirectory(dir=root().parent if root().parent.is_dir() else None) as work:
        extracted = extract_zip(archive, Path(work) / "model", display_name=archive.name, max_bytes=512 * 2**20)
        get_preset(read_meta(extracted)["base_preset"])
        return save(name, extracted)


def get(name: str) -> dict[str, Any]:
    try:
        return json.loads((folder(name) / META_FILE).read_text())
    except (OSError, ValueError):
        known = ", ".join(m["name"] for m in list_models()) or "none saved yet"
        raise UserInputError(f"No model named '{name.strip()}' (saved models: {known}).") from None


def path(name: str) -> Path:
    get(name)
    return folder(name)


def export_zip(name: str, target_dir: Path) -> Path:
    """A zip of the model (adapters and head only) for download."""
    source = path(name)
    target_dir.mkdir(parents=True, exist_ok=True)
    return Path(shutil.make_archive(str(target_dir / source.name), "zip", source))


def list_models() -> list[dict[str, Any]]:
    """Saved models, newest first."""
    models = []
    for meta_file in root().glob(f"*/{META_FILE}") if root().is_dir() else []:
        try:
            models.append(json.loads(meta_file.read_text()))
        except (OSError, ValueError):
            continue
    return sorted(models, key=lambda m: m.get("created_at", 0), reverse=True)


def delete(name: str) -> None:
    shutil.rmtree(path(name))
