"""The named batch every forecasting model, loss and metric reads: the target window, its future, and
the covariates and missing-value masks that travel with them.

    batch = splits.train.__getitems__([0, 5, 9])     # what the loader yields, B = 3
    model(batch.x); forecast_loss(out, batch.y, quantiles, y_mask=batch.y_mask)

A field left None is absent: no covariates of that kind, or (masks) every value observed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch.utils.data import Dataset


@dataclass
class WindowBatch:
    x: torch.Tensor  # (B, L, C) float32: the target's lookback window
    y: torch.Tensor  # (B, H, C) float32: the target's next H steps
    future_covariates: torch.Tensor | None = None  # (B, L + H, F): known ahead (calendar, planned values)
    past_covariates: torch.Tensor | None = None  # (B, L, P): observed with the target, unknown ahead
    static: torch.Tensor | None = None  # (B, S): one vector per series
    mask: torch.Tensor | None = None  # (B, L, C) bool: True where x was observed
    y_mask: torch.Tensor | None = None  # (B, H, C) bool: True where y was observed

    def __len__(self) -> int:
        return self.x.shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> WindowBatch:
        """The same batch with every tensor on `device`."""
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return WindowBatch(
            **{k: None if v is None else v.to(device, non_blocking=non_blocking) for k, v in moved.items()}
        )


class BatchedWindows(Dataset):
    """A window dataset whose batched `__getitems__(indices)` builds the WindowBatch itself (one gather
    instead of one item at a time); item i is a batch of one, and the loader's collate passes batches on."""

    def __getitems__(self, indices: list[int]) -> WindowBatch:
        raise NotImplementedError

    def __getitem__(self, i: int) -> WindowBatch:
        return self.__getitems__([i])

    @staticmethod
    def collate(batch: WindowBatch) -> WindowBatch:
        return batch
