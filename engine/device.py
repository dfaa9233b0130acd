"""Choice of the torch device and dtype: cuda > mps > cpu, overridable by FEWSHOT_DEVICE."""

from __future__ import annotations

import os

import torch

from engine.errors import UserInputError

_ACCEPTED = ("auto", "cuda", "mps", "cpu")


def select_device(preference: str | None = None) -> torch.device:
    """Return the best available device, or the one named by `preference` / FEWSHOT_DEVICE."""
    choice = (preference or os.environ.get("FEWSHOT_DEVICE") or "auto").strip().lower()
    kind = choice.split(":")[0]
    if kind not in _ACCEPTED:
        raise UserInputError(f"Unknown device {choice!r}; accepted: {', '.join(_ACCEPTED)} (e.g. 'cuda:1').")
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise UserInputError("FEWSHOT_DEVICE asks for cuda, but no CUDA device is visible to torch.")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise UserInputError("FEWSHOT_DEVICE asks for mps, but the MPS backend is not available.")
    return torch.device(choice)


def select_dtype(device: torch.device) -> torch.dtype:
    """Half precision on CUDA (fast, enough for inference); float32 elsewhere (CPU and MPS are
    slower or less exact in half precision for these models)."""
    return torch.float16 if device.type == "cuda" else torch.float32


_OUT_OF_MEMORY_TEXTS = ("out of memory", "can't allocate memory")  # MPS and the CPU allocator raise RuntimeError


def is_out_of_memory(exc: BaseException) -> bool:
    """True when `exc` is a device running out of memory: CUDA's OutOfMemoryError, or the RuntimeError
    that MPS and the CPU allocator raise."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(text in str(exc) for text in _OUT_OF_MEMORY_TEXTS)
