"""What every benchmark shares: device choice, CUDA sync, and one configuration per child process
(so that each configuration's peak memory is its own)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def sync(device: str) -> None:
    """Wait for queued GPU work, so timings measure it."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def pick_device(requested: str | None) -> tuple[str, str]:
    """(device, description): the requested one, else cuda when present, else cpu."""
    import torch

    device = requested or ("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.startswith("cuda") else f"{torch.get_num_threads()} threads"
    return device, name


def child_run(one: str | None, run_one: Callable[..., dict[str, Any]]) -> bool:
    """In a child started by `run_isolated`: run the configuration, print its JSON, return True."""
    if not one:
        return False
    print(json.dumps(run_one(**json.loads(one))))
    return True


def run_isolated(script: str, config: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one configuration of `script` in a fresh process and return its result."""
    done = subprocess.run([sys.executable, script, "--one", json.dumps(config)], cwd=REPO, capture_output=True,
                          text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])
