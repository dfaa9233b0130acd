"""Sample inputs the project makes itself, one set per tool, for the tabs' "Try a sample" buttons.

`python -m assets.make` draws them with numpy and Pillow (nothing copied from a dataset) and rebuilds the
committed files byte for byte. The values a sample fills in besides its files (object name, prompt, box) are here,
next to the geometry they describe, so the drawing and the page never disagree.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent

ANOMALY_OBJECT = "metal plate"
ANOMALY_INSPECT = ("plate_ok.jpg", "plate_scratch.jpg", "plate_dent.jpg", "plate_stain.jpg")
ANOMALY_GOOD = ("good_1.jpg", "good_2.jpg", "good_3.jpg")
ANOMALY_VIDEO = "conveyor.mp4"
ANOMALY_VIDEO_GOOD = ("conveyor_good_1.jpg", "conveyor_good_2.jpg")  # good parts framed as in the video

COMPLETION_IMAGES = ("tray_1.jpg", "tray_2.jpg")
COMPLETION_ANNOTATIONS = "tray_partial_coco.json"

INSERTION_IMAGE = "desk.jpg"
INSERTION_VIDEO = "desk.mp4"
INSERTION_PROMPT = "a red apple, photo"
INSERTION_BOX = (150, 102, 214, 166)  # x0, y0, x1, y1 on the empty part of the desk, in the image and the clip

CLASSIFIER_ZIP = "parts_3_classes.zip"
CLASSIFIER_CLASSES = ("hex nut", "washer", "screw")
DETECTOR_ZIP = "nuts_and_washers_coco.zip"


def path(tool: str, name: str) -> Path:
    """A sample file of a tool's folder."""
    return ROOT / tool / name
