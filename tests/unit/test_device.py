"""Device and dtype choice: bf16 on CPUs that have it, per FEWSHOT_CPU_BF16 and each model's measured safety."""

from __future__ import annotations

import pytest
import torch

from engine import device
from engine.device import cpu_has_native_bf16, select_dtype
from engine.errors import UserInputError

CPU = torch.device("cpu")
AVX2_ONLY = "flags : fpu sse2 avx avx2 fma"
SAPPHIRE_RAPIDS = "flags : fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile"


def test_native_bf16_is_read_from_the_cpu_flags():
    assert not cpu_has_native_bf16(AVX2_ONLY)
    assert cpu_has_native_bf16(SAPPHIRE_RAPIDS)
    assert cpu_has_native_bf16("flags : avx512f avx512_bf16")


@pytest.mark.parametrize(("setting", "native", "safe", "expected"), [
    ("auto", True, True, torch.bfloat16),
    ("auto", True, False, torch.float32),  # maps drift more than 1e-2: not by default
    ("auto", False, True, torch.float32),  # emulated bf16 is slower than float32
    ("on", False, False, torch.bfloat16),
    ("off", True, True, torch.float32),
    ("on", True, None, torch.float32),  # a model that never runs in bf16 (insertion, completion)
])
def test_cpu_dtype(monkeypatch, setting, native, safe, expected):
    monkeypatch.setenv("FEWSHOT_CPU_BF16", setting)
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: native)
    assert select_dtype(CPU, bf16_safe=safe) == expected


def test_cuda_stays_half_and_a_bad_setting_is_named(monkeypatch):
    monkeypatch.setenv("FEWSHOT_CPU_BF16", "maybe")
    assert select_dtype(torch.device("cuda"), bf16_safe=True) == torch.float16
    with pytest.raises(UserInputError, match="FEWSHOT_CPU_BF16 is 'maybe'; accepted: auto, on, off"):
        select_dtype(CPU, bf16_safe=True)
