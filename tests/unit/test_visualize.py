"""Chart helpers: axis ranges fitted to the data."""

from __future__ import annotations

import pytest

from engine.visualize import fitted_range


@pytest.mark.parametrize("values, expected", [
    ([0.2963, 0.301, 0.3207], (0.28, 0.33)),  # close scores fill the axis, with a margin
    ([0.5], (0.48, 0.52)),  # one value: the minimum span around it
    ([0.0, 1.0], (0.0, 1.0)),  # never beyond the bounds
    ([0.98, 0.99], (0.96, 1.0)),
])
def test_an_axis_range_fits_the_values(values, expected):
    low, high = fitted_range(values)
    assert (low, high) == pytest.approx(expected)
    assert low <= min(values) and high >= max(values)
