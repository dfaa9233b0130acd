"""The committed samples are what `python -m assets.make` draws, byte for byte, and stay small."""

from __future__ import annotations

from pathlib import Path

import assets
from assets.make import make

SAMPLE_SUFFIXES = (".jpg", ".json", ".mp4", ".zip")


def committed() -> dict[str, bytes]:
    return {p.relative_to(assets.ROOT).as_posix(): p.read_bytes()
            for p in sorted(assets.ROOT.rglob("*")) if p.suffix in SAMPLE_SUFFIXES}


def test_the_generator_rebuilds_the_committed_samples_byte_for_byte(tmp_path: Path):
    written = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in make(tmp_path)}
    ours = committed()
    assert sorted(written) == sorted(ours)
    changed = [name for name in written if written[name] != ours[name]]
    assert not changed, f"rebuilt differently (run python -m assets.make and commit, or fix what varies): {changed}"


def test_samples_stay_small_and_every_named_file_exists():
    assert sum(len(data) for data in committed().values()) < 2_000_000
    named = [("anomaly", n) for n in (*assets.ANOMALY_INSPECT, *assets.ANOMALY_GOOD, assets.ANOMALY_VIDEO,
                                      *assets.ANOMALY_VIDEO_GOOD)]
    named += [("completion", n) for n in (*assets.COMPLETION_IMAGES, assets.COMPLETION_ANNOTATIONS)]
    named += [("insertion", assets.INSERTION_IMAGE), ("insertion", assets.INSERTION_VIDEO)]
    named += [("finetune", assets.CLASSIFIER_ZIP), ("finetune", assets.DETECTOR_ZIP)]
    assert all(assets.path(tool, name).is_file() for tool, name in named)
