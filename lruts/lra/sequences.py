"""Datasets and batching for LRA: token sequences (padded per batch, with a mask), token pairs
(Retrieval) and pixel sequences (fixed length, normalised on the fly).

Batches are dicts, the model's keyword arguments plus `y`:
    tokens: {"x": (B, L) int64, "mask": (B, L) bool (true = real token), "y": (B,)}
    pairs:  {"x1", "mask1", "x2", "mask2", "y"}
    pixels: {"x": (B, L, C) float32, "y": (B,)}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset


def pad(seqs: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad int sequences with 0 to the longest: (B, L) int64 and the (B, L) bool mask."""
    length = max(1, max(len(s) for s in seqs))
    x = torch.zeros(len(seqs), length, dtype=torch.int64)
    mask = torch.zeros(len(seqs), length, dtype=torch.bool)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = torch.from_numpy(np.asarray(s, dtype=np.int64))
        mask[i, : len(s)] = True
    return x, mask


class TokenDataset(Dataset):
    """Variable-length token sequences with one label each."""

    def __init__(self, tokens: list[np.ndarray], labels: np.ndarray, split: str = "") -> None:
        if len(tokens) != len(labels):
            raise ValueError(f"{len(tokens)} sequences but {len(labels)} labels")
        self.tokens, self.labels, self.split = tokens, np.asarray(labels, dtype=np.int64), split

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.tokens[i], int(self.labels[i])

    @staticmethod
    def collate(batch) -> dict[str, torch.Tensor]:
        x, mask = pad([b[0] for b in batch])
        return {"x": x, "mask": mask, "y": torch.tensor([b[1] for b in batch], dtype=torch.int64)}


class PairDataset(Dataset):
    """Pairs of token sequences (Retrieval) with one label per pair."""

    def __init__(self, first: list[np.ndarray], second: list[np.ndarray], labels: np.ndarray, split: str = "") -> None:
        if not len(first) == len(second) == len(labels):
            raise ValueError(f"{len(first)}, {len(second)} sequences but {len(labels)} labels")
        self.first, self.second, self.split = first, second, split
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.first[i], self.second[i], int(self.labels[i])

    @staticmethod
    def collate(batch) -> dict[str, torch.Tensor]:
        x1, m1 = pad([b[0] for b in batch])
        x2, m2 = pad([b[1] for b in batch])
        return {"x1": x1, "mask1": m1, "x2": x2, "mask2": m2, "y": torch.tensor([b[2] for b in batch])}


@dataclass
class PixelDataset(Dataset):
    """Images as pixel sequences: pixels (n, L, C) uint8, normalised as (p/255 − mean) / std."""

    pixels: np.ndarray
    labels: np.ndarray
    mean: float = 0.5
    std: float = 0.25
    split: str = ""

    def __post_init__(self) -> None:
        if self.pixels.ndim == 2:
            self.pixels = self.pixels[..., None]
        if len(self.pixels) != len(self.labels):
            raise ValueError(f"{len(self.pixels)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.pixels[i], int(self.labels[i])

    def collate(self, batch) -> dict[str, torch.Tensor]:
        x = torch.from_numpy(np.stack([b[0] for b in batch])).float().div_(255.0)
        return {"x": (x - self.mean) / self.std, "y": torch.tensor([b[1] for b in batch], dtype=torch.int64)}
