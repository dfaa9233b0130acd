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


KNN_MAX_SIMILARITIES = 1 << 24  # similarities held at once by the nearest-neighbour search: 64 MiB in float32


def association_scores(embeddings: torch.Tensor, memory: torch.Tensor,
                       max_similarities: int = KNN_MAX_SIMILARITIES) -> torch.Tensor:
    """Distance to the nearest memory embedding, (1 - cosine) / 2, in [0, 1] (WinCLIP+ and AnomalyDINO).

    `embeddings` is (..., n, D), `memory` (M, D); returns (..., n). Queries go through in chunks of
    max(1, max_similarities // M) rows, so the similarity matrix never holds more than `max_similarities`
    values (or one row, M values, for a larger memory), however many references the memory holds.
    """
    queries = F.normalize(embeddings.float(), dim=-1)
    bank = F.normalize(memory.float(), dim=-1).T
    flat = queries.reshape(-1, queries.shape[-1])
    step = max(1, max_similarities // max(bank.shape[1], 1))
    nearest = torch.cat([(chunk @ bank).amax(dim=-1) for chunk in flat.split(step)])
    return ((1.0 - nearest) / 2.0).clamp(0.0, 1.0).reshape(queries.shape[:-1])
