"""Selective LoRA (Bafghi et al. 2025, after TAPS, Wallingford et al. 2022): a learned on/off indicator per block.

Every candidate block of the image tower has a LoRA and a real-valued score s. In the forward pass the
block's LoRA output is multiplied by the indicator I(s) = 1 if s >= THRESHOLD else 0 (exactly 0 or 1, so an
active block computes what plain LoRA computes, bit for bit, and a saved model can keep only the active
blocks' adapters); in the backward pass the gradient goes straight through the threshold to s, as if I were
the identity. An L1 penalty on the scores, `sparsity` x mean |s| over the candidates (TAPS's penalty, averaged
so that the weight does not depend on the depth), pulls scores down: a block stays on only while its
adapter lowers the task loss faster than the penalty pulls.

Constants (TAPS's indicator and penalty; the values are this module's choices, no reference code was at
hand to copy them from):
- THRESHOLD 0.1 and SCORE_INIT 1.0: every block starts on, as in TAPS, where all layers start tuned and the
  penalty switches them off.
- SCORE_LR 0.05, no weight decay: AdamW moves a parameter by about its learning rate per step whatever the
  gradient's size, so at the adapters' 1e-3 a score could not cross from 1.0 to 0.1 in a run of 60 steps;
  at 0.05 a block whose adapter does not help is off after about 20 steps.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

THRESHOLD = 0.1
SCORE_INIT = 1.0
SCORE_LR = 0.05


class HardThreshold(torch.autograd.Function):
    """Forward: 1.0 where score >= THRESHOLD else 0.0. Backward: the incoming gradient, unchanged."""

    @staticmethod
    def forward(ctx: Any, scores: torch.Tensor) -> torch.Tensor:
        return (scores >= THRESHOLD).to(scores.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad


class BlockGates(nn.Module):
    """One learned score per candidate block; `gate(i)` multiplies block i's LoRA output (`blocks[i]` is the
    tower's block index)."""

    def __init__(self, blocks: list[int]) -> None:
        super().__init__()
        self.blocks = list(blocks)
        self.scores = nn.Parameter(torch.full((len(blocks),), SCORE_INIT))

    def gate(self, index: int) -> torch.Tensor:
        return HardThreshold.apply(self.scores)[index]

    def penalty(self) -> torch.Tensor:
        """mean |s|: the L1 penalty, times the sparsity weight in the loss."""
        return self.scores.abs().mean()

    def active(self) -> list[int]:
        """The tower's block indices whose indicator is on."""
        return [block for block, score in zip(self.blocks, self.scores.tolist(), strict=True) if score >= THRESHOLD]

    def report(self) -> dict[str, Any]:
        """Per-block scores, the active blocks and their share: what the result and the CLI show."""
        active = self.active()
        return {"candidates": self.blocks, "scores": [round(s, 6) for s in self.scores.tolist()],
                "threshold": THRESHOLD, "active": active, "active_share": len(active) / len(self.blocks)}


def active_blocks_line(blocks: dict[str, Any]) -> str:
    """'3 of 12 (25 %): 4, 9, 11' (or '0 of 12 (0 %): none') from `BlockGates.report()`."""
    active, candidates = blocks["active"], len(blocks["candidates"])
    listed = ", ".join(str(b) for b in active) or "none"
    return f"{len(active)} of {candidates} ({100 * len(active) / candidates:.0f} %): {listed}"
