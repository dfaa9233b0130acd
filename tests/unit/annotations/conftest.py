from __future__ import annotations

import pytest

from engine.annotations.dataset import Dataset
from tests.unit.annotations.sets import example_set


@pytest.fixture
def original(tmp_path) -> Dataset:
    return example_set(tmp_path / "images")
