"""WinCLIP's score arithmetic: window layout, class scores and harmonic aggregation.

Pure tensor functions, independent of the backbone, so they can be checked by hand.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def window_patch_indices(grid: tuple[int, int], size: int, stride: int = 1) -> torch.Tensor:
    """Row-major patch indices of every `size` x `size` window: shape (windows, size * size)."""
    rows, cols = grid
    index = torch.arange(rows * cols).reshape(rows, cols)
    windows = index.unfold(0, size, stride).unfold(1, size, stride)
    return windows.reshape(-1, size * size)


def class_scores(embeddings: torch.Tensor, text_embeddings: torch.Tensor, temperature: float) -> torch.Tensor:
    """Probability of the anomalous class: softmax over (normal, anomalous) of cosine / temperature.

    `embeddings` is (..., D), `text_embeddings` is (2, D) with the normal class first.
    """
    similarity = F.normalize(embeddings.float(), dim=-1) @ F.normalize(text_embeddings.float(), dim=-1).T
    return (similarity / temperature).softmax(dim=-1)[..., 1]


def harmonic_mean(values: torch.Tensor, dim: int) -> torch.Tensor:
    """Harmonic mean along `dim`; a zero anywhere gives zero."""
    return values.shape[dim] / (1.0 / values).sum(dim=dim)


def harmonic_aggregation(window_scores: torch.Tensor, windows: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Score of each patch as the harmonic mean of the scores of the windows that cover it.

    `window_scores` is (B, windows), `windows` the (windows, k*k) patch indices; returns (B, rows, cols).
    """
    n_patches = grid[0] * grid[1]
    covers = torch.zeros(windows.shape[0], n_patches, dtype=window_scores.dtype, device=window_scores.device)
    covers.scatter_(1, windows.to(window_scores.device), 1.0)
    # A zero score would make inf * 0 = nan in the product below; a tiny floor keeps its result ~0.
    inverse = 1.0 / window_scores.clamp_min(1e-12)
    patch_scores = covers.sum(dim=0) / (inverse @ covers)
    return patch_scores.reshape(-1, *grid)


def association_scores(embeddings: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """WinCLIP+ few-shot score: distance to the nearest reference embedding, (1 - cosine) / 2, in [0, 1].

    `embeddings` is (B, n, D), `memory` (M, D); returns (B, n).
    """
    similarity = F.normalize(embeddings.float(), dim=-1) @ F.normalize(memory.float(), dim=-1).T
    return (1.0 - similarity.amax(dim=-1)) / 2.0
