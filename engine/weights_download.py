"""The contract of weight-download jobs: a real preset's files, fetched from the Hugging Face hub into the models
folder with the whole download's progress (bytes, speed, time left), as `python -m engine weights` does.

A job, not a call in the web process: a download of gigabytes runs for minutes and must survive the page that
started it. Afterwards the installed check finds the files (`engine.weights.locate`), so the page's "not installed"
marks go. Torch-free, like every contract.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from engine.errors import UserInputError
from engine.params import Inputs as BaseInputs
from engine.params import Params as BaseParams
from engine.params import Result as BaseResult
from engine.params import param
from engine.presets import PRESETS
from engine.progress import Cancelled, ProgressCallback, ignore_progress

REAL_PRESETS = tuple(sorted(name for name, preset in PRESETS.items() if not preset.random_weights))


@dataclass(frozen=True)
class Params(BaseParams):
    preset: str | None = param(None, "the model whose weights to download", choices=REAL_PRESETS)

    def check(self) -> None:
        if self.preset is None:
            raise UserInputError(f"preset: name the model to download, one of {', '.join(REAL_PRESETS)}.")


@dataclass(frozen=True)
class Inputs(BaseInputs):
    """A download takes no files."""


@dataclass
class Result(BaseResult):
    preset: str
    files: int
    size_bytes: int


def run(inputs: Inputs, params: Params, out_dir: Path, progress: ProgressCallback = ignore_progress) -> Result:
    """Ask the hub for exactly the files the loader reads, download them into the models folder, check each."""
    from engine.presets import get_preset
    from engine.weights import download, hub_offline, human_size, models_dir, plan_download

    if hub_offline():
        raise UserInputError("This machine is set to work offline (HF_HUB_OFFLINE): weights cannot be downloaded "
                             "here. Install them with `make weights` on a machine with internet.")
    preset = get_preset(params.preset)
    progress(0.0, "Asking the Hugging Face hub for the files and their sizes")
    try:
        planned = plan_download(preset)
    except Exception as exc:  # no network, hub down, repository moved: all say the same to the user
        raise UserInputError(f"The Hugging Face hub could not list the files of {preset.label} "
                             f"({type(exc).__name__}); is this machine online?") from exc
    target = models_dir() / preset.name
    try:
        target.mkdir(parents=True, exist_ok=True)
        writable = os.access(target, os.W_OK)
    except OSError:
        writable = False  # a read-only models folder: the hub cache, where the loader also looks
    size = sum(item.size for item in planned)
    progress(0.0, f"Downloading {len(planned)} files, {human_size(size)}")
    try:
        download(planned, target if writable else None, progress=progress)
    except Cancelled:
        raise
    except Exception as exc:  # the connection dropped, the disk filled, a file arrived damaged
        raise UserInputError(f"The download of {preset.label} stopped ({type(exc).__name__}). Start it again: "
                             "files already complete are kept and an interrupted one resumes.") from exc
    return Result(preset.name, len(planned), size)
