"""Pascal VOC XML: exact round trip, bad files and objects skipped with the reason."""

from __future__ import annotations

from engine.annotations.read import read_dataset
from engine.annotations.voc import write_voc
from tests.unit.annotations.sets import boxes_of, files_in, make_images


def test_voc_round_trip_is_exact(tmp_path, original):
    write_voc(original, tmp_path / "voc")
    xml = (tmp_path / "voc" / "gray.xml").read_text()
    assert "<xmin>20.5</xmin>" in xml and "<xmax>37</xmax>" in xml and "<width>37</width>" in xml
    back = read_dataset(files_in(tmp_path / "images", tmp_path / "voc"))
    assert back.source_format == "voc" and back.skipped == []
    assert boxes_of(back) == boxes_of(original) and back.categories == ["bolt", "nut"]


def test_voc_bad_files_and_objects_are_skipped(tmp_path):
    make_images(tmp_path / "images")
    voc = tmp_path / "voc"
    voc.mkdir()
    (voc / "gray.xml").write_text(
        "<annotation><filename>gray.png</filename><size><width>37</width><height>23</height></size>"
        "<object><name>bolt</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>11</xmax><ymax>7</ymax></bndbox></object>"
        "<object><name>bolt</name></object>"
        "<object><name>nut</name><bndbox><xmin>5</xmin><ymin>2</ymin><xmax>5</xmax><ymax>7</ymax></bndbox></object>"
        "</annotation>")
    (voc / "color.xml").write_text("<annotation>\n<filename>color.jpg</filename>\n<object><name>x</name>\n")
    (voc / "evil.xml").write_text('<!DOCTYPE a [<!ENTITY x "y">]><annotation>&x;</annotation>')
    dataset = read_dataset(files_in(tmp_path / "images", voc))
    assert boxes_of(dataset) == {"gray.png": [(1.0, 2.0, 10.0, 5.0, "bolt")], "color.jpg": []}
    errors = sorted(item["error"] for item in dataset.skipped)
    assert errors[0].startswith("color.xml line 4 column 0: not well-formed XML")
    assert "evil.xml: XML with a DOCTYPE" in errors[1]
    assert errors[2] == "gray.xml object 2: needs a <name> and a <bndbox>."
    assert errors[3].startswith("gray.xml object 3: the box has zero or negative size")
