"""The anomaly tab's words: the status line says where its threshold came from in words that are not a threshold
rule's name (the set rule's "set" read as the "Set it myself" option); the downloads' label names only the kinds of
file the run produced."""

from __future__ import annotations

import pytest

from webapp import anomaly_tab


@pytest.mark.parametrize(("source", "words"), [
    ("set", "from the set's own spread"), ("user", "user"), ("calibrated", "calibrated"), ("default", "default"),
    ("calibrated on 3 good parts", "calibrated on 3 good parts"),
])
def test_the_threshold_source_is_said_in_words(source, words):
    line = anomaly_tab._threshold_line({"threshold": {"image": 0.42, "pixel": 0.5, "source": source},
                                        "counts": {"NG": 1, "OK": 2}})
    assert f"Threshold **0.4200** ({words}; outline above 0.5000) · 1 NG, 2 OK" in line


@pytest.mark.parametrize(("names", "label"), [
    (["/tmp/gradio/ab12/0000_plate_map.png", "0000_plate_overlay.png", "0000_plate_card.png", "scores.json",
      "scores.csv"],
     "Downloads (scores.csv, scores.json, 16-bit maps)"),  # images: no overlay video
    (["overlay.mp4", "frame_0001_overlay.jpg", "scores.json", "scores.csv"],
     "Downloads (scores.csv, scores.json, overlay video)"),  # a video: no maps
    ([], "Downloads"), (None, "Downloads"),  # before a run, or a failed one
])
def test_the_downloads_label_names_only_what_the_run_produced(names, label):
    assert anomaly_tab.downloads_label(names).label == label
