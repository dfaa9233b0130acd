"""Zero-shot anomaly segmentation (WinCLIP)."""

from engine.anomaly.pipeline import AnomalyResult, ReferenceMemory, WinClipPipeline, get_pipeline

__all__ = ["AnomalyResult", "ReferenceMemory", "WinClipPipeline", "get_pipeline"]
