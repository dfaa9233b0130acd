"""The Anomaly tab's calls: what a call that names a model and a method learns of the method that ran."""

from __future__ import annotations

import uuid

import pytest

from tasks.registry import contract
from tasks.store import get_store
from webapp import anomaly_tab


@pytest.fixture
def one_job(tmp_path, monkeypatch):
    """run() on a stored job, its submit and stream stubbed: the first status line it yields for (preset, method)."""
    image = tmp_path / "a.png"
    image.write_bytes(b"png" * 50)

    def first_status(preset: str, method: str | None) -> str:
        params = contract("anomaly").Params.from_dict({"object_name": "plate", "preset": preset}).to_dict()
        job = get_store().create("anomaly", params, {"images": [("a.png", image)]}, owner=uuid.uuid4().hex[:8])
        monkeypatch.setattr(anomaly_tab, "submit", lambda tool, params, files, request: job)
        monkeypatch.setattr(anomaly_tab, "follow", lambda job, progress: iter([job]))
        return next(anomaly_tab.run([str(image)], None, "plate", preset, method=method))[1]

    return first_status


def test_a_method_the_model_does_not_run_is_named_with_the_models_that_run_it(one_job):
    status = one_job("winclip-tiny", "musc")
    assert status.endswith("\n\n⚠️ winclip-tiny is a WinCLIP model, so WinCLIP ran: the model decides the method, "
                           "and method musc (MuSc) was not used. To run MuSc, choose musc-vit-l-14-336 or musc-tiny.")
    assert "⚠️" not in one_job("winclip-tiny", "winclip") and "⚠️" not in one_job("musc-tiny", None)
    assert "⚠️" not in one_job("musc-tiny", "winclip")  # the radio's default, given to a call naming only a model


@pytest.mark.parametrize(("preset", "demo"), [("musc-vit-l-14-336", "MuSc"),
                                              ("anomalydino-dinov2-small", "AnomalyDINO"),
                                              ("winclip-vit-b-16-plus-240", "WinCLIP")])
def test_the_missing_weights_notice_offers_the_demo_model_of_the_same_method(preset, demo, monkeypatch):
    """It offered WinCLIP · tiny for MuSc and AnomalyDINO: picking it switched the method back to WinCLIP."""
    from tasks import client
    from webapp.model_choice import weights_notice_html

    presets = [{**p, "installed": p["random_weights"]} for p in client.presets("anomaly")]
    monkeypatch.setattr(client, "presets", lambda tool: presets)
    notice = weights_notice_html("anomaly", preset)
    assert f"pick the demo model “{demo} · tiny" in notice


def test_a_score_and_a_threshold_read_with_the_same_four_decimals_in_every_view(monkeypatch):
    """The status line (also the Jobs tab's), the gallery captions and the table gave 0.2926, 0.293 and 0.2908 for
    one job; every view now shows 4 decimals (scores.csv and scores.json keep 6, for analysis)."""
    from tasks.jobs import Job, Status

    monkeypatch.setattr(anomaly_tab, "job_file", lambda job, name: name)
    result = {"threshold": {"image": 0.292649, "pixel": 0.29481, "source": "calibrated"}, "counts": {"OK": 1},
              "mode": "WinCLIP+", "images": [{"file": "ok.jpg", "score": 0.290812, "verdict": "OK", "card": "c.png",
                                               "overlay": "o.png", "width": 8, "height": 6}],
              "frames": [{"file": "clip.mp4 @ 1.00 s", "score": 0.31, "verdict": "NG", "overlay": "f.jpg",
                          "time_s": 1.0}]}
    job = Job(id="f" * 32, tool="anomaly", params={}, status=Status.SUCCEEDED, result=result)
    gallery, rows, _ = anomaly_tab.result_views(job)
    assert "Threshold **0.2926** (calibrated; outline above 0.2948)" in anomaly_tab.status_line(job)
    assert [caption for _, caption in gallery] == ["ok.jpg · 0.2908 · OK", "clip.mp4 @ 1.00 s · 0.3100 · NG"]
    assert [row[1] for row in rows["data"]] == [0.2908, 0.31]  # numbers, for the table's sorting and the API
    assert [row[1] for row in rows["metadata"]["display_value"]] == ["0.2908", "0.3100"]
