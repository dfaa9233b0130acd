"""The weight-download job's contract, through huggingface_hub's own download against a local fake hub."""

from __future__ import annotations

import os
import re

import pytest

from engine.errors import UserInputError
from engine.presets import get_preset
from engine.progress import duration
from engine.weights import DownloadMeter, is_installed, manifest
from engine.weights_download import Inputs, Params, run
from tests.fake_hub import FakeHub

PRESET = "detection-rtdetr-r18"


@pytest.fixture
def online(monkeypatch, tmp_path):
    """This process as if online, its models folder empty; returns a function that points it at a hub."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("FEWSHOT_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")

    def use(url: str) -> None:
        monkeypatch.setattr(constants, "ENDPOINT", url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")

    return use


def rtdetr_repo(weights_size: int = 3000) -> dict[str, dict[str, bytes]]:
    files = {name: os.urandom(weights_size if name.endswith(".safetensors") else 200)
             for f in manifest(get_preset(PRESET)) for name in f.names}
    return {"PekingU/rtdetr_r18vd": files}


def downloads(hub: FakeHub) -> list[str]:
    return [path for method, path in hub.requests if method == "GET" and "/resolve/" in path]


def test_a_download_job_fetches_the_loaders_files_into_the_models_folder_with_progress(online, tmp_path,
                                                                                        monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1 << 16)  # a progress update per 64 kB, not per 10 MB
    repos = rtdetr_repo(weights_size=1_500_000)
    reports: list[tuple[float, str]] = []
    with FakeHub(repos, seconds_per_mb=1.0) as hub:  # ~1.5 s: the line is reported every 0.5 s
        online(hub.url)
        assert not is_installed(get_preset(PRESET))
        result = run(Inputs(), Params(preset=PRESET), tmp_path / "out", lambda f, m: reports.append((f, m)))
    assert is_installed(get_preset(PRESET))
    files = repos["PekingU/rtdetr_r18vd"]
    assert (result.preset, result.files, result.size_bytes) == (PRESET, 3, sum(map(len, files.values())))
    for name, data in files.items():
        assert (tmp_path / "models" / PRESET / name).read_bytes() == data
    assert len(downloads(hub)) == 3  # one copy of each file, nothing else
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    during = [m for _, m in reports if m.startswith("Downloading model.safetensors: ") and " left" in m]
    assert during and all(re.fullmatch(r"Downloading model\.safetensors: [\d.]+ [kM]B of 1\.5 MB · "
                                       r"[\d.]+ [kM]B/s · about \d+ s left", m) for m in during), reports


def test_a_second_download_of_installed_files_transfers_nothing(online, tmp_path):
    with FakeHub(rtdetr_repo()) as hub:
        online(hub.url)
        run(Inputs(), Params(preset=PRESET), tmp_path / "out")
        hub.requests.clear()
        run(Inputs(), Params(preset=PRESET), tmp_path / "again")
    assert not downloads(hub)


def test_the_progress_line_gives_size_speed_and_time_left():
    reports = []
    meter = DownloadMeter(10_000_000, lambda f, m: reports.append((f, m)))
    meter.started = meter.reported_at = 100.0
    meter.done = meter.transferred = 4_000_000
    assert meter.line("unet.safetensors", now=102.0) == (
        "Downloading unet.safetensors: 4.0 MB of 10.0 MB · 2.0 MB/s · about 3 s left")
    meter.advance(6_000_000, "unet.safetensors")
    assert reports == [(1.0, "Downloading unet.safetensors: 10.0 MB of 10.0 MB")]


@pytest.mark.parametrize(("seconds", "said"), [(0.2, "1 s"), (44.6, "45 s"), (59.4, "59 s"), (61, "1 min"),
                                               (150, "2 min"), (3 * 3600 + 5 * 60, "3 h 5 min")])
def test_time_left_reads_as_a_countdown(seconds, said):
    assert duration(seconds) == said


def test_offline_the_job_says_it_cannot_download(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserInputError, match=r"offline .*make weights"):
        run(Inputs(), Params(preset=PRESET), tmp_path)


def test_an_unreachable_hub_is_said_in_plain_words(online, tmp_path):
    with FakeHub({}) as hub:
        url = hub.url
    online(url)  # closed: nothing answers there
    with pytest.raises(UserInputError, match=r"could not list the files .*is this machine online"):
        run(Inputs(), Params(preset=PRESET), tmp_path)


@pytest.mark.parametrize("preset", [None, "anomaly-tiny", "../../etc"])
def test_only_a_real_preset_can_be_downloaded(preset):
    with pytest.raises(UserInputError, match="preset"):
        Params.from_dict({"preset": preset})
