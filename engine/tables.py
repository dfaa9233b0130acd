"""CSV files a spreadsheet opens safely.

A cell of text that starts like a formula (=, +, -, @, a tab or a carriage return) is written with a leading
apostrophe, which spreadsheets show as text: a file name, zip folder or class name chosen by someone else (the
classes of a model shared with everyone) such as `=HYPERLINK("http://…"&A2)` would otherwise run in the
spreadsheet of the user who downloads the table. Numbers stay numbers.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """`value` as a spreadsheet should show it: text that starts like a formula gets a leading apostrophe."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([cell(name) for name in header])
        writer.writerows([cell(value) for value in row] for row in rows)


def write_records(path: Path, columns: Sequence[str], records: Iterable[Mapping[str, Any]]) -> None:
    """Records as rows of `columns` (a missing key is an empty cell, other keys are left out)."""
    write_csv(path, columns, ([record.get(column, "") for column in columns] for record in records))
