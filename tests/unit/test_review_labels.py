"""The completion review's picture: two proposals with the same box keep both ids in sight (the annotator writes
each label at its box's corner, the first box's on top), and a padded label still reads back as its proposal."""

from __future__ import annotations

from PIL import Image

from webapp import completion_tab as tab


def proposal(pid: int, box: list[float], score: float) -> dict:
    return {"id": pid, "box": box, "score": score, "category": "nut", "exemplar": False}


def test_proposals_with_one_box_draw_their_ids_apart(tmp_path, monkeypatch):
    Image.new("RGB", (100, 80)).save(tmp_path / "preview.png")
    monkeypatch.setattr(tab.client, "artifact_path", lambda job, name: tmp_path / name)
    item = {"file": "tray.png", "preview": "preview.png", "preview_scale": 1.0, "height": 80, "existing": [],
            "proposals": [proposal(1, [10, 10, 20, 20], 0.9), proposal(2, [10, 10, 20, 20], 0.8),
                          proposal(3, [10, 10, 20, 20], 0.7), proposal(4, [50, 40, 10, 10], 0.6)]}
    review = {"job": "j", "accepted": [], "rejected": [], "edited": {}, "added": [], "doc": {"images": [item]}}
    labels = [box["label"] for box in tab.annotator_value(review, item, 0.0, selected=1)["boxes"]]
    assert labels == ["#1 ◀", " " * 16 + "#2", " " * 26 + "#3", "#4"]  # past "#1 ◀", then past "#2" too
    assert [int(tab.LABEL.match(label).group(2)) for label in labels] == [1, 2, 3, 4]
