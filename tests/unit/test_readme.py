"""The README's reference tables list what the code has: every job kind and every setting."""

from __future__ import annotations

import re

from tasks.registry import TOOLS
from tests.conftest import REPO

README = (REPO / "README.md").read_text()
INTERNAL_SETTINGS = {"FEWSHOT_WORKER_PARENT_PID"}  # set by tasks.embedded for the workers it starts


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_job_table_lists_every_tool_of_the_registry_with_its_contract_module():
    rows = re.findall(r"^\| `(\w+)` \| `([\w.]+)` \|", section("Python API and command line"), re.MULTILINE)
    assert dict(rows) == {name: tool.contract for name, tool in TOOLS.items()}


def test_the_configuration_table_lists_every_setting_the_code_reads():
    read = set()
    for path in [*REPO.glob("engine/**/*.py"), *REPO.glob("tasks/**/*.py"), *REPO.glob("webapp/**/*.py")]:
        read |= set(re.findall(r"[\"'](FEWSHOT_[A-Z0-9_]+)[\"']", path.read_text()))
    listed = set(re.findall(r"`(FEWSHOT_[A-Z0-9_]+)`", section("Configuration")))
    assert read - INTERNAL_SETTINGS - listed == set()
    assert listed - read == set()
