"""Zero-shot anomaly segmentation (WinCLIP)."""

from engine.anomaly.pipeline import AnomalyResult, WinClipPipeline, get_pipeline

__all__ = ["AnomalyResult", "WinClipPipeline", "get_pipeline"]
