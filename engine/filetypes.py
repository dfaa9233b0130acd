"""The file types each input accepts, declared once for the engine, the CLI and the web tabs (torch-free)."""

from __future__ import annotations

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".avi", ".mkv")
YAML_SUFFIXES = (".yaml", ".yml")
ANNOTATION_SUFFIXES = (".json", ".txt", ".xml", *YAML_SUFFIXES, ".names")  # COCO, YOLO (+ data.yaml, names), VOC
ARCHIVE_SUFFIXES = (".zip",)
IMAGES_OR_ZIP = [*IMAGE_SUFFIXES, *ARCHIVE_SUFFIXES]  # lists: what the upload components take
ANNOTATIONS_OR_ZIP = [*ANNOTATION_SUFFIXES, *ARCHIVE_SUFFIXES]
