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
