"""The dependency floors in pyproject.toml are what CI installs for its run on the floors (.ci/floors.txt)."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import REPO


def declared_floors() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    floors = {}
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        match = re.match(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*>=\s*([^,;\s]+)", requirement)
        assert match, f"{requirement!r} has no floor (>=): every dependency declares one"
        floors[match[1].lower().replace("_", "-")] = match[2]
    return floors


def pinned() -> dict[str, str]:
    lines = (REPO / ".ci" / "floors.txt").read_text().splitlines()
    pins = [line.split("#")[0].strip() for line in lines]
    return {name.lower().replace("_", "-"): version for name, version in (p.split("==") for p in pins if p)}


def test_ci_installs_exactly_the_declared_floors():
    assert pinned() == declared_floors()
