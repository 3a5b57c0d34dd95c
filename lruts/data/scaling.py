"""Standard scaling per variable, fitted on the train rows only (TSLib protocol; sklearn semantics)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lruts.errors import DataError, ShapeError


def chunk_rows_for(n_channels: int, budget: int = 8 << 20) -> int:
    """Rows per chunk so that a float64 temporary of (rows, n_channels) stays within `budget` bytes."""
    return max(1, budget // (8 * max(n_channels, 1)))


def observed_stats(blocks) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std per column over (rows, K) blocks, NaN left out (std 1 when constant or empty)."""
    total = count = squares = None
    blocks = list(blocks)
    for b in blocks:
        b64 = b.astype(np.float64)
        ok = ~np.isnan(b64)
        s, c = np.where(ok, b64, 0.0).sum(axis=0), ok.sum(axis=0)
        total, count = (s, c) if total is None else (total + s, count + c)
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    for b in blocks:
        d = np.square(np.nan_to_num(b.astype(np.float64) - mean, nan=0.0)).sum(axis=0)
        squares = d if squares is None else squares + d
    std = np.sqrt(np.divide(squares, count, out=np.zeros_like(squares), where=count > 0))
    std[std == 0] = 1.0
    return mean, std


@dataclass
class StandardScaler:
    """x_scaled = (x - mean) / std per variable. mean, std: (C,) float64; std is the population std
    (ddof=0) and 1 for a constant variable, as sklearn's StandardScaler.

    transform / inverse_transform take numpy arrays or torch tensors whose last axis is the C variables,
    or, for channel-independent items (last axis 1), `channel=` the variable index of each sample:
    an int or a (B,) array/tensor for x of shape (B, ..., 1).
    """

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float64).reshape(-1)
        self.std = np.asarray(self.std, dtype=np.float64).reshape(-1)
        if self.mean.shape != self.std.shape:
            raise ShapeError(f"scaler mean {self.mean.shape} and std {self.std.shape} differ")

    @classmethod
    def fit(cls, x: np.ndarray, columns: list[str] | None = None) -> StandardScaler:
        """Fit on x: (T, C), its missing values (NaN) left out, in float64 over row chunks of ≈8 MB (no float64
        copy of x). A column with no value is refused (named from `columns`)."""
        if x.ndim != 2 or x.shape[0] == 0:
            raise ShapeError(f"fit expects a non-empty (T, C) array, got shape {x.shape}")
        empty = np.flatnonzero(np.isnan(x).all(axis=0))
        if len(empty):
            names = [columns[c] for c in empty] if columns is not None else empty.tolist()
            raise DataError(
                f"column(s) {names} hold no reading in the {len(x)} rows the scaler is fitted on (the training "
                "rows): drop them, or fit on a later stretch of the table where they have readings"
            )
        chunk_rows = chunk_rows_for(x.shape[1])
        mean, std = observed_stats(x[lo : lo + chunk_rows] for lo in range(0, x.shape[0], chunk_rows))
        if not (np.isfinite(mean).all() and np.isfinite(std).all()):
            raise DataError("cannot fit the scaler: the train rows hold inf or values too large to square")
        return cls(mean, std)

    @property
    def n_channels(self) -> int:
        return self.mean.shape[0]

    def _stats(self, x, channel):
        mean, std = self.mean, self.std
        if channel is not None:
            idx = channel.cpu().numpy() if hasattr(channel, "cpu") else np.asarray(channel)
            mean, std = mean[idx], std[idx]
            if mean.ndim == 1:  # (B,) -> (B, 1, ..., 1)
                shape = (-1,) + (1,) * (x.ndim - 1)
                mean, std = mean.reshape(shape), std.reshape(shape)
        elif x.shape[-1] != self.n_channels:
            raise ShapeError(f"last axis has {x.shape[-1]} variables, the scaler {self.n_channels}; pass channel=")
        if hasattr(x, "cpu"):
            import torch

            return (
                torch.as_tensor(mean, dtype=x.dtype, device=x.device),
                torch.as_tensor(std, dtype=x.dtype, device=x.device),
            )
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
        return np.asarray(mean, dtype=dtype), np.asarray(std, dtype=dtype)

    def transform(self, x, *, channel=None):
        mean, std = self._stats(x, channel)
        return (x - mean) / std

    def inverse_transform(self, x, *, channel=None):
        mean, std = self._stats(x, channel)
        return x * std + mean

    def to_dict(self) -> dict:
        """JSON-able: {"mean": [...], "std": [...]}."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> StandardScaler:
        try:
            return cls(np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64))
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"not a saved StandardScaler (expected keys 'mean' and 'std' with numbers): {e}") from None
