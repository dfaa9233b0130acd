"""Trained classifiers and detectors as named artifacts, shared by web and workers.

    <artifact dir>/models/<name>/model.json          task, name, classes, base preset, settings, metrics,
                                                     owner, shared
    <artifact dir>/models/<name>/weights.safetensors classifier: head, zero-shot head and LoRA adapters;
                                                     detector: what training changed (no frozen backbone)

Models are written to a temporary folder and renamed into place (a half-saved model is never seen);
the downloadable file is a zip of the folder, and the same zip can be uploaded on another installation.
Names, owners, sharing, atomic saving and listing are `tasks.named_folders`, shared with reference sets: a
signed-in user's models lie in `models/_users/<owner key>/<name>/`, private until shared (read-only for others:
they can use and download it, not delete it). Jobs look models up as the job's owner.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from engine.archives import extract_zip
from engine.errors import UserInputError
from engine.models.saved import MODEL_FILE, TASKS, WEIGHTS_FILE, read_meta, task_of
from tasks.named_folders import NamedFolders
from tasks.quota import check_room
from tasks.store import tree_bytes

MODELS = NamedFolders("models", "model.json", "model", "models")
# Every user's model list parses each model.json of every user (to see which are shared): an uploaded one is
# bounded, far above what training writes (its largest part, a 1,000-class confusion matrix, is a few MB).
MAX_UPLOADED_META_BYTES = 16 * 2**20
PRESET_TOOLS = {"classify": "finetune", "detect": "finetune-detect"}  # the presets each kind of model builds on


def root() -> Path:
    return MODELS.root


def check_free(name: str, *, owner: str | None = None) -> None:
    """Refuse a name `owner` already uses, before a training job spends time on it."""
    MODELS.check_free(name, owner)


def save(name: str, source: Path, *, owner: str | None = None) -> dict[str, Any]:
    """Copy a model folder written by the engine as `owner`'s `name` (private; its model.json gets that name)."""
    check_room(owner, tree_bytes(source), "this model")

    def copy_model(folder: Path) -> dict[str, Any]:
        meta = read_meta(source)
        shutil.copytree(source, folder)
        return meta

    return MODELS.publish(name, copy_model, owner)


def import_zip(name: str, archive: Path, *, owner: str | None = None) -> dict[str, Any]:
    """Register a downloaded model zip as `owner`'s `name`, checking it is a classifier or detector for a known
    preset."""
    from engine.presets import get_preset

    with tempfile.TemporaryDirectory(dir=root().parent if root().parent.is_dir() else None) as work:
        extracted = _model_folder(extract_zip(archive, Path(work) / "model", display_name=archive.name,
                                              max_bytes=512 * 2**20))
        meta_bytes = (extracted / MODEL_FILE).stat().st_size if (extracted / MODEL_FILE).is_file() else 0
        if meta_bytes > MAX_UPLOADED_META_BYTES:
            raise UserInputError(f"{archive.name}: its {MODEL_FILE} takes {meta_bytes / 2**20:.0f} MB; a model file's "
                                 f"{MODEL_FILE} is at most {MAX_UPLOADED_META_BYTES // 2**20} MB.")
        try:
            meta = read_meta(extracted)
        except UserInputError as exc:  # its messages start with the folder's name, here a scratch folder's
            raise UserInputError(f"{archive.name} is not a model file downloaded from this tool: "
                                 f"{str(exc).removeprefix(f'{extracted.name}: ')}") from None
        preset = get_preset(meta["base_preset"])
        if preset.tool != PRESET_TOOLS[task_of(meta)] or not (extracted / WEIGHTS_FILE).is_file():
            raise UserInputError(f"{archive.name}: the model file is incomplete or its base preset {preset.name} is "
                                 f"not a {TASKS[task_of(meta)]} preset.")
        return save(name, extracted, owner=owner)


def _model_folder(extracted: Path) -> Path:
    """Where the model lies in an extracted model zip: its top, or the one folder holding a model.json (a
    downloaded model unzipped and zipped again as a folder, as the Finder or Explorer does)."""
    if (extracted / MODEL_FILE).is_file():
        return extracted
    inside = [meta.parent for meta in extracted.glob(f"*/{MODEL_FILE}")
              if not meta.parent.name.startswith(".") and meta.parent.name != "__MACOSX"]
    return inside[0] if len(inside) == 1 else extracted


def resolve(ref: str, *, owner: str | None = None) -> tuple[Path, dict[str, Any]]:
    """(folder, meta) of a model `owner` may use: their own by name, or another user's shared one as "user/name"."""
    return MODELS.resolve(ref, owner)


def get(ref: str, *, owner: str | None = None) -> dict[str, Any]:
    return MODELS.get(ref, owner)


def path(ref: str, *, owner: str | None = None) -> Path:
    return MODELS.resolve(ref, owner)[0]


def export_zip(ref: str, target_dir: Path, *, owner: str | None = None) -> Path:
    """A zip of a model `owner` may use (adapters and head only), for download."""
    source = path(ref, owner=owner)
    target_dir.mkdir(parents=True, exist_ok=True)
    return Path(shutil.make_archive(str(target_dir / source.name), "zip", source))


def list_models(task: str | None = None, *, owner: str | None = None) -> list[dict[str, Any]]:
    """The models `owner` may use (their own, then others' shared ones); with `task` ("classify" or "detect"),
    only those."""
    return [meta for meta in MODELS.list(owner) if task is None or task_of(meta) == task]


def set_shared(ref: str, shared: bool, *, owner: str | None = None) -> dict[str, Any]:
    """Share one's own model with every user (they can use and download it), or make it private again."""
    return MODELS.set_shared(ref, shared, owner)


def delete(ref: str, *, owner: str | None = None) -> None:
    """Delete one's own model."""
    MODELS.delete(ref, owner)
