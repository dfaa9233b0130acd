"""The tiny insertion pipeline, loaded once for every insertion test."""

from __future__ import annotations

import pytest

from engine.insertion.pipeline import InsertionPipeline
from engine.loading import get_pipeline


@pytest.fixture(scope="session")
def pipeline() -> InsertionPipeline:
    return get_pipeline(InsertionPipeline, "insertion-tiny")
