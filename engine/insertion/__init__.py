"""Object insertion in images and videos (InVi)."""

from engine.insertion.pipeline import FrameRegion, ImageInsertion, InsertionPipeline, InsertionSettings, get_pipeline

__all__ = ["FrameRegion", "ImageInsertion", "InsertionPipeline", "InsertionSettings", "get_pipeline"]
