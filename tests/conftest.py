"""Test settings: offline, tiny models, a private artifact store; shared data from ../shared/data."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_SANDBOX = Path(tempfile.mkdtemp(prefix="fewshot-tests-"))
# Set before any project module reads its settings.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["FEWSHOT_MODELS_DIR"] = str(_SANDBOX / "models")
os.environ["FEWSHOT_ARTIFACT_DIR"] = str(_SANDBOX / "artifacts")
os.environ["FEWSHOT_CACHE_DIR"] = str(_SANDBOX / "cache")
os.environ.pop("FEWSHOT_REDIS_URL", None)
os.environ.setdefault("FEWSHOT_DEVICE", "cpu")
os.environ["FEWSHOT_CPU_BF16"] = "off"  # goldens are float32 on any CPU; the bf16 choice has its own tests

REPO = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str) -> None:
    """Skip locally when a system dependency is missing; in CI the same test must fail instead."""
    if not condition:
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: this test must run)")
        pytest.skip(reason)


@pytest.fixture(autouse=True)
def pillow_pixel_limit(monkeypatch) -> None:
    """engine.media sets Pillow's process-wide pixel limit from FEWSHOT_MAX_IMAGE_PIXELS as it reads: a test that
    lowers the setting would otherwise leave the next test's Pillow at its limit (a DecompressionBombError)."""
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)


@pytest.fixture(scope="session")
def sandbox() -> Path:
    return _SANDBOX


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = Path(os.environ.get("FEWSHOT_SHARED_DATA", REPO.parent / "shared" / "data"))
    require(root.is_dir(), f"shared data not found at {root}")
    return root


@pytest.fixture(scope="session")
def metal_plate_images(shared_data: Path) -> list[Path]:
    return sorted((shared_data / "anomaly" / "mpdd_metal_plate" / "test").glob("*/*.png"))


@pytest.fixture(scope="session")
def tiny_pipeline():
    from engine.anomaly.pipeline import WinClipPipeline
    from engine.loading import get_pipeline

    return get_pipeline(WinClipPipeline, "winclip-tiny")


@pytest.fixture
def tiny_scorer(tiny_pipeline):
    """WinCLIP on the tiny preset, as inspections and evaluations use it."""
    from engine.anomaly.scorers import WinClipScorer

    return WinClipScorer(tiny_pipeline)


def calibrated(scorer, object_name, references):
    """The threshold an inspection calibrates from these good parts."""
    from engine.anomaly.common import AnomalyParams
    from engine.anomaly.inspection import resolve_threshold

    scorer.prepare(AnomalyParams(object_name=object_name), references)
    return resolve_threshold(scorer, "calibrate")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report on the test item, so fixtures can keep screenshots of failures; a failure in a
    browser says what the page logged as errors (`page_errors`, kept by the page fixture)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
    if report.failed and hasattr(item, "page_errors"):
        report.sections.append(("the page's errors", "\n".join(item.page_errors) or "none"))


@pytest.fixture
def worker_env(monkeypatch) -> Iterator[Callable[..., None]]:
    """Set environment variables that the embedded workers must see: they are restarted with them, and
    stopped at the end, so that the next submission starts them again with the test's environment undone."""
    from tasks import embedded

    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        embedded.stop()
        embedded.ensure_started()

    yield set_env
    embedded.stop()
