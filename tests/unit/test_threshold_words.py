"""The anomaly status line says where its threshold came from in words that are not a threshold rule's name: the
set rule's "set" read as the "Set it myself" option."""

from __future__ import annotations

import pytest

from webapp import anomaly_tab


@pytest.mark.parametrize(("source", "words"), [
    ("set", "from the set's own spread"), ("user", "set by you"), ("calibrated", "calibrated on the good parts"),
    ("default", "the method's default"), ("calibrated on 3 good parts", "calibrated on 3 good parts"),
])
def test_the_threshold_source_is_said_in_words(source, words):
    line = anomaly_tab._threshold_line({"threshold": {"image": 0.42, "pixel": 0.5, "source": source},
                                        "counts": {"NG": 1, "OK": 2}})
    assert f"Threshold **0.4200** ({words}; outline above 0.5000) · 1 NG, 2 OK" in line
