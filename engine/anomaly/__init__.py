"""Anomaly inspection (WinCLIP, WinCLIP+): one torch-free contract module per job kind (`inspect_images`,
`inspect_video`, `evaluate`); the pipeline and the engine work import torch when they are imported."""
