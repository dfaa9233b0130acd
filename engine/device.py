"""Choice of the torch device and dtype: cuda > mps > cpu, overridable by FEWSHOT_DEVICE; bf16 on CPUs that have
it (FEWSHOT_CPU_BF16)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from engine.errors import UserInputError

_ACCEPTED = ("auto", "cuda", "mps", "cpu")
_BF16_SETTINGS = ("auto", "on", "off")


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


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX): there bf16 is about twice as fast as
    float32; elsewhere torch emulates it, slower than float32."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:  # not Linux: ask torch which kernels it picked
            return "AMX" in torch.backends.cpu.get_cpu_capability().upper()
    flags = set(cpuinfo.split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def cpu_bf16_setting() -> str:
    """FEWSHOT_CPU_BF16: auto (the default), on or off."""
    setting = (os.environ.get("FEWSHOT_CPU_BF16") or "auto").strip().lower()
    if setting not in _BF16_SETTINGS:
        raise UserInputError(f"FEWSHOT_CPU_BF16 is {setting!r}; accepted: {', '.join(_BF16_SETTINGS)}.")
    return setting


def select_dtype(device: torch.device, bf16_safe: bool | None = None) -> torch.dtype:
    """Half precision on CUDA (fast, enough for inference). On a CPU, for models that run in bfloat16
    (`bf16_safe` not None: the anomaly methods), bfloat16 when FEWSHOT_CPU_BF16 is `on`, or `auto` on a CPU with
    native bf16 where the model's maps stay within 1e-2 of float32 (`bf16_safe`, measured by bench/anomaly.py);
    float32 otherwise, and on MPS (slower or less exact in half precision)."""
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and bf16_safe is not None:
        setting = cpu_bf16_setting()
        if setting == "on" or (setting == "auto" and bf16_safe and cpu_has_native_bf16()):
            return torch.bfloat16
    return torch.float32


_OUT_OF_MEMORY_TEXTS = ("out of memory", "can't allocate memory")  # MPS and the CPU allocator raise RuntimeError


def is_out_of_memory(exc: BaseException) -> bool:
    """True when `exc` is a device running out of memory: CUDA's OutOfMemoryError, or the RuntimeError
    that MPS and the CPU allocator raise."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(text in str(exc) for text in _OUT_OF_MEMORY_TEXTS)
