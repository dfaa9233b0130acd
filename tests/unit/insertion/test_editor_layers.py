"""webapp.insertion_tab.painted: the layers painted on a canvas that reach a job are those that mark a pixel."""

from __future__ import annotations

import gradio as gr
import pytest
from PIL import Image

from webapp.insertion_tab import painted


def test_an_empty_layer_is_no_mark_and_a_drawn_or_unreadable_one_is_kept(tmp_path):
    """The editor sends its layer even when nothing was drawn; as the only mark it made a job that failed at once."""
    empty, drawn, broken = tmp_path / "empty.png", tmp_path / "drawn.png", tmp_path / "broken.png"
    Image.new("RGBA", (40, 30), (0, 0, 0, 0)).save(empty)
    layer = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    layer.putpixel((5, 5), (255, 0, 255, 255))
    layer.save(drawn)
    broken.write_bytes(b"not a png")  # kept: the run names what is wrong with it
    assert painted([str(empty), str(drawn), None, str(broken)]) == [str(drawn), str(broken)]
    assert painted([str(empty)]) == []
    assert painted(None) == []


def test_more_layers_than_a_run_takes_are_refused_before_any_is_read(tmp_path, monkeypatch):
    """The page sends one layer; the API could name one uploaded file thousands of times, each decoded here."""
    read = []
    monkeypatch.setattr("webapp.insertion_tab.marks_a_pixel", lambda layer: read.append(layer) or True)
    with pytest.raises(gr.Error) as refused:
        painted([str(tmp_path / "stroke.png")] * 9)
    assert refused.value.message.startswith("9 painted layers were sent: at most 8 are taken")
    assert read == []
    assert painted([str(tmp_path / "stroke.png")] * 8) == [str(tmp_path / "stroke.png")] * 8
