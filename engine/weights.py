"""Which files a real preset's loader reads, where they are on this machine, and downloading them. Torch-free.

The web process marks presets "not installed" with `is_installed`; the loader finds its files with the same
`locate`, so the mark and the loader never disagree. A preset's files are found, in order:

1. in `$FEWSHOT_MODELS_DIR/<preset>/` (what `python -m engine weights` writes, or a copy of it),
2. in the Hugging Face hub cache (`HF_HOME`), whoever filled it: the project, open_clip, transformers or
   diffusers all store a repository's files under `models--org--name/snapshots/<revision>/`.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import UserInputError
from engine.presets import Preset, demo_for
from engine.progress import ProgressCallback, duration

# open_clip reads its safetensors file when the repository has one, else the pickle: so does the loader.
OPEN_CLIP_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def models_dir() -> Path:
    """Local models directory (FEWSHOT_MODELS_DIR, default ~/.cache/fewshot-studio/models)."""
    default = Path.home() / ".cache" / "fewshot-studio" / "models"
    return Path(os.environ.get("FEWSHOT_MODELS_DIR") or default).expanduser()


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class WeightFile:
    """One file the loader reads: its repository, its path there (alternatives, the first present is read),
    and the sub-folder of `<models dir>/<preset>/` that holds the repository's files."""

    repo: str
    names: tuple[str, ...]
    folder: str = ""
    optional: bool = False  # read when present (e.g. a fast tokenizer), not needed to load

    def describe(self) -> str:
        return self.names[0] + "".join(f" (or {name})" for name in self.names[1:])


def _files(repo: str, names: Iterable[str | tuple[str, ...]], folder: str = "", optional: Iterable[str] = ()
           ) -> list[WeightFile]:
    required = [WeightFile(repo, (n,) if isinstance(n, str) else n, folder) for n in names]
    return [*required, *(WeightFile(repo, (n,), folder, optional=True) for n in optional)]


def _open_clip_files(preset: Preset) -> list[WeightFile]:
    return _files(preset.config["hub_repo"], [OPEN_CLIP_WEIGHTS])


def _owlv2_files(preset: Preset) -> list[WeightFile]:
    return _files(str(preset.pretrained),
                  ["config.json", ("model.safetensors", "pytorch_model.bin"), "preprocessor_config.json",
                   "tokenizer_config.json", "vocab.json", "merges.txt"],
                  optional=["special_tokens_map.json", "tokenizer.json"])


def _rtdetr_files(preset: Preset) -> list[WeightFile]:
    return _files(str(preset.pretrained), ["config.json", "model.safetensors", "preprocessor_config.json"])


def _dinov2_files(preset: Preset) -> list[WeightFile]:
    """The model alone: AnomalyDINO sets its own input size and normalisation, so the processor config is unread."""
    return _files(str(preset.pretrained), ["config.json", "model.safetensors"])


def _sd_controlnet_files(preset: Preset) -> list[WeightFile]:
    """Only what diffusers reads for the pipeline (the SD 1.5 repository also holds multi-GB checkpoints and
    fp16 copies); the ControlNet's files go to `controlnet/` in the models directory."""
    components = [f"{name}/config.json" for name in ("text_encoder", "unet", "vae")]
    weights = ["text_encoder/model.safetensors", "unet/diffusion_pytorch_model.safetensors",
               "vae/diffusion_pytorch_model.safetensors"]
    tokenizer = [f"tokenizer/{name}" for name in ("vocab.json", "merges.txt", "tokenizer_config.json")]
    return [*_files(str(preset.pretrained), ["model_index.json", "scheduler/scheduler_config.json", *tokenizer,
                                             *components, *weights], optional=["tokenizer/special_tokens_map.json"]),
            *_files(preset.config["controlnet"], ["config.json", "diffusion_pytorch_model.safetensors"],
                    folder="controlnet/")]


MANIFESTS: dict[str, Callable[[Preset], list[WeightFile]]] = {
    "open_clip": _open_clip_files,
    "owlv2": _owlv2_files,
    "rt_detr": _rtdetr_files,
    "dinov2": _dinov2_files,
    "sd-controlnet-inpaint": _sd_controlnet_files,
}


def manifest(preset: Preset) -> list[WeightFile]:
    """The files the loader reads for a real preset (none for a random-weight preset: it is built here)."""
    return [] if preset.random_weights else MANIFESTS[preset.family](preset)


def repositories(preset: Preset) -> list[str]:
    """The preset's hub repositories, the main one first."""
    return list(dict.fromkeys(f.repo for f in manifest(preset)))


def _in_models_dir(preset: Preset) -> dict[str, Path] | None:
    root = models_dir() / preset.name
    files = manifest(preset)
    if not all(any((root / f.folder / name).is_file() for name in f.names) for f in files if not f.optional):
        return None
    return {f.repo: root / f.folder for f in files}


def _cached(f: WeightFile) -> tuple[str, Path] | None:
    """(name, snapshot folder) of the first of a file's alternatives that the hub cache holds."""
    from huggingface_hub import try_to_load_from_cache

    for name in f.names:
        path = try_to_load_from_cache(f.repo, name)
        if isinstance(path, str):
            return name, Path(path).parents[len(Path(name).parts) - 1]
    return None


def _in_hub_cache(preset: Preset) -> dict[str, Path] | None:
    folders: dict[str, Path] = {}
    for f in manifest(preset):
        found = _cached(f)
        if found is None:
            if f.optional:
                continue
            return None
        if folders.setdefault(f.repo, found[1]) != found[1]:  # files of two revisions: not one snapshot
            return None
    return folders


def locate(preset: Preset) -> dict[str, Path] | None:
    """The folder holding each hub repository's files of a real preset (models directory first, then the hub
    cache), or None when some file the loader needs is on neither."""
    return _in_models_dir(preset) or _in_hub_cache(preset)


def is_installed(preset: Preset) -> bool:
    """True when a preset loads without a download: random weights (built here) or every file found."""
    return preset.random_weights or locate(preset) is not None


def check_runnable(preset: Preset) -> None:
    """Refuse, before a job is stored, a preset whose weights are missing on a machine that downloads none (a job
    with it would fail at once), with what the model choice's notice advises: the demo model, or installing them."""
    if not hub_offline() or is_installed(preset):
        return
    demo = demo_for(preset)
    try_demo = f"To try the tool now, pick the demo model “{demo.label}” ({demo.name}). " if demo else ""
    raise UserInputError(
        f"The weights of the model “{preset.label}” ({preset.name}) are not installed on this machine, and it "
        f"downloads none (HF_HUB_OFFLINE is set): a job with it would fail, so nothing was submitted. {try_demo}"
        f"Otherwise whoever runs this app installs its weights: `make weights` on a machine with internet, then "
        f"copies the models folder here (README, \"Models and weights\").")


def places_searched(preset: Preset) -> list[str]:
    """Where `locate` looks for a preset, for the details a user can unfold (operator-facing, not a message)."""
    from huggingface_hub.constants import HF_HUB_CACHE

    return [str(models_dir() / preset.name),
            *(f"{HF_HUB_CACHE}/models--{repo.replace('/', '--')}" for repo in repositories(preset))]


# -- downloading ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedFile:
    """One file to download: the alternative the repository has, with its size and checksum there."""

    repo: str
    name: str
    folder: str
    size: int
    sha256: str | None  # large (LFS) files
    git_sha1: str  # every file: git's blob id

    @property
    def local(self) -> str:
        return self.folder + self.name


def plan_download(preset: Preset, api=None) -> list[PlannedFile]:
    """Exactly one copy of each file the loader reads, as the hub lists it (needs the network)."""
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    api = api or HfApi()
    files = manifest(preset)
    planned = []
    for repo in repositories(preset):
        wanted = [f for f in files if f.repo == repo]
        listed = {entry.path: entry for entry in api.get_paths_info(repo, [n for f in wanted for n in f.names])
                  if isinstance(entry, RepoFile)}
        for f in wanted:
            entry = next((listed[name] for name in f.names if name in listed), None)
            if entry is None:
                if f.optional:
                    continue
                raise FileNotFoundError(f"{repo} has none of {', '.join(f.names)}")
            planned.append(PlannedFile(repo, entry.path, f.folder, entry.size,
                                       entry.lfs.sha256 if entry.lfs else None, entry.blob_id))
    return planned


def file_matches(path: Path, planned: PlannedFile) -> bool:
    """Size and checksum (sha256 of large files, git's blob id of the others) equal the hub's."""
    if not path.is_file() or path.stat().st_size != planned.size:
        return False
    digest = hashlib.sha256() if planned.sha256 else hashlib.sha1(f"blob {planned.size}\0".encode())
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest() == (planned.sha256 or planned.git_sha1)


class DownloadMeter:
    """Bytes done across a download's files, reported as a fraction with size, speed and time left (a job's
    progress line). huggingface_hub reports each file's bytes through the tqdm class it is given."""

    REPORT_EVERY_S = 0.5

    def __init__(self, total: int, progress: ProgressCallback) -> None:
        self.total, self.progress = max(total, 1), progress
        self.done = self.transferred = 0
        self.started = self.reported_at = time.monotonic()

    def advance(self, count: int, name: str, transferred: bool = True) -> None:
        self.done += count
        self.transferred += count if transferred else 0
        now = time.monotonic()
        if now - self.reported_at >= self.REPORT_EVERY_S or self.done >= self.total:
            self.reported_at = now
            self.progress(min(self.done / self.total, 1.0), self.line(name, now))

    def line(self, name: str, now: float) -> str:
        speed = self.transferred / max(now - self.started, 1e-6)
        line = f"Downloading {name}: {human_size(self.done)} of {human_size(self.total)}"
        if self.transferred and self.done < self.total:
            line += f" · {human_size(speed)}/s · about {duration((self.total - self.done) / speed)} left"
        return line

    def tqdm_class(self, name: str) -> type:
        """A tqdm that also advances this meter (still when huggingface_hub's bars are disabled)."""
        from tqdm.auto import tqdm

        meter = self

        class Reporting(tqdm):
            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, **kwargs)
                resumed = kwargs.get("initial") or 0
                if resumed:  # bytes an interrupted download already has
                    meter.advance(resumed, name, transferred=False)

            def update(self, n: float | None = 1) -> bool | None:
                meter.advance(int(n or 0), name)
                return super().update(n)

        return Reporting


def download(planned: list[PlannedFile], target: Path | None, download_file=None,
             progress: ProgressCallback | None = None) -> list[Path]:
    """Download planned files into `target` (None: the hub cache), then check each against the hub's size and
    checksum. huggingface_hub resumes an interrupted file; it shows a progress bar per file, or with `progress`
    the whole download is reported there (bytes, speed, time left)."""
    from huggingface_hub import hf_hub_download

    download_file = download_file or hf_hub_download
    meter = DownloadMeter(sum(item.size for item in planned), progress) if progress else None
    paths = []
    for item in planned:
        where = {} if target is None else {"local_dir": target / item.folder}
        if meter is not None:
            where["tqdm_class"] = meter.tqdm_class(item.local)
            before = meter.done
        path = Path(download_file(item.repo, item.name, **where))
        if not file_matches(path, item):
            raise OSError(f"{item.repo}/{item.name} does not match the hub's size and checksum after the download; "
                          "delete it and run the download again.")
        if meter is not None:  # a file already there reports no bytes
            meter.advance(before + item.size - meter.done, item.local, transferred=False)
        paths.append(path)
    return paths


def human_size(size: float) -> str:
    """A byte count as every message writes it: whole bytes ("231 B"), then one decimal ("12.4 kB", "1.5 GB")."""
    for unit in ("B", "kB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
