"""Protocol-exact splits and sliding windows over one shared array, read as named batches.

    splits = make_splits(load_series("electricity"), lookback=96, horizon=96)
    for batch in make_loader(splits.train, 32, shuffle=True):   # lruts.training.make_loader
        batch.x, batch.y                                         # (B, L, C), (B, H, C) float32
    len(splits.test)  # 5,165: every test window, none dropped

Splits follow ../shared/spec/forecasting.md (TSLib): ETT fixed borders, 70/10/20 elsewhere, val and
test windows look back across the border; the scaler is fitted on the train rows only. All three
splits read the one (T, C) float32 array of the series itself (no copy, whatever the number of
windows) and scale each batch as they read it: a scaled copy of the whole series would double the
memory (the target is ≤ 2× the raw size, ingest included), while scaling one (B, L + H, C) batch costs
little next to a training step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lruts.data.batch import BatchedWindows, WindowBatch
from lruts.data.scaling import StandardScaler
from lruts.data.series import Series
from lruts.errors import DataError

TRANSFORMS = (None, "returns", "log_returns")
# TSLib's ETT borders in rows of the hourly files: 12 months train, 4 val, 4 test (30-day months)
_ETT_HOURLY = (12 * 30 * 24, 16 * 30 * 24, 20 * 30 * 24)


def split_borders(n_rows: int, lookback: int, rule: str) -> dict[str, tuple[int, int]]:
    """Row ranges [lo, hi) of train, val and test, val/test including the `lookback` rows before them."""
    if rule in ("ett_hourly", "ett_minute"):
        k = 1 if rule == "ett_hourly" else 4
        train_end, val_end, test_end = (b * k for b in _ETT_HOURLY)
        if n_rows < test_end:
            raise DataError(f"the {rule} split needs {test_end} rows, the series has {n_rows}")
    elif rule == "ratio":
        n_train, n_test = int(0.7 * n_rows), int(0.2 * n_rows)
        train_end, val_end, test_end = n_train, n_rows - n_test, n_rows
    else:
        raise DataError(f"split rule '{rule}' unknown; use 'ett_hourly', 'ett_minute' or 'ratio'")
    if train_end - lookback < 0:
        raise DataError(f"lookback {lookback} is longer than the {train_end} train rows of this series")
    return {"train": (0, train_end), "val": (train_end - lookback, val_end), "test": (val_end - lookback, test_end)}


def apply_transform(values: np.ndarray, timestamps: np.ndarray, transform: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Prices -> simple returns x_t / x_{t-1} - 1 or log returns log x_t - log x_{t-1}: (T-1, C), dated t."""
    if transform is None:
        return values, timestamps
    if transform not in TRANSFORMS:
        raise DataError(f"transform '{transform}' unknown; use None, 'returns' or 'log_returns'")
    prev, cur = values[:-1].astype(np.float64), values[1:].astype(np.float64)
    if transform == "log_returns":
        if (values <= 0).any():
            cols = np.flatnonzero((values <= 0).any(axis=0)).tolist()
            raise DataError(f"log returns need positive prices; columns {cols} hold values <= 0")
        out = np.log(cur) - np.log(prev)
    else:
        if (prev == 0).any():
            cols = np.flatnonzero((prev == 0).any(axis=0)).tolist()
            raise DataError(f"returns divide by the previous price; columns {cols} hold zeros")
        out = cur / prev - 1.0
    return out.astype(np.float32), timestamps[1:]


class WindowDataset(BatchedWindows):
    """Sliding windows over rows [start, stop) of a shared (T, C) float32 tensor, scaled on read.

    Window w starts at row s = start + w·stride; its item is x = rows [s, s+L), y = rows [s+L, s+L+H),
    each as (rows - mean) / std with the scaler's statistics (none given: returned as stored).
    Multivariate: item i = window i, x: (L, C), y: (H, C). Channel-independent: item i = window
    i // C of channel i % C (window-major), x: (L, 1), y: (H, 1); `channel_of(i)` gives the channel.
    Missing values (NaN in the rows: a wide table read with fill="mask") come as 0 with the batch's mask and
    y_mask False there; rows without any give batches without masks.
    """

    def __init__(
        self,
        data: np.ndarray | torch.Tensor,
        start: int,
        stop: int,
        lookback: int,
        horizon: int,
        *,
        stride: int = 1,
        channel_independent: bool = False,
        timestamps: np.ndarray | None = None,
        split: str = "",
        scaler: StandardScaler | None = None,
    ) -> None:
        if data.ndim != 2:
            raise DataError(f"window data must be (T, C), got shape {tuple(data.shape)}")
        if lookback < 1 or horizon < 1 or stride < 1:
            raise DataError(f"lookback, horizon and stride must be >= 1 (got {lookback}, {horizon}, {stride})")
        if not 0 <= start <= stop <= data.shape[0]:
            raise DataError(f"rows [{start}, {stop}) are outside the series of {data.shape[0]} rows")
        # numpy, not torch, does the per-batch arithmetic: torch's intra-op thread pool costs ~ms per small op
        # on a busy 2-core machine, numpy's single-threaded loop ~20 µs
        self.data = data.numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
        self.start, self.stop = start, stop
        self.lookback, self.horizon, self.stride = lookback, horizon, stride
        self.channel_independent = channel_independent
        self.n_channels = data.shape[1]
        self.timestamps = timestamps
        self.split = split
        self.scaler = scaler
        if scaler is not None:
            self._mean = scaler.mean.astype(self.data.dtype)
            self._inv_std = (1.0 / scaler.std).astype(self.data.dtype)
        self.missing = bool(np.isnan(self.data[start:stop]).any())
        span = stop - start - lookback - horizon
        self.n_windows = span // stride + 1 if span >= 0 else 0

    def __len__(self) -> int:
        return self.n_windows * (self.n_channels if self.channel_independent else 1)

    def _index(self, i: int) -> int:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"window {i} out of range for {n} items")
        return i

    def window_start(self, i):
        """Row of the first lookback step of item i (an int), or of items i (an array: no range check)."""
        if isinstance(i, int | np.integer):
            i = self._index(int(i))
        else:
            i = np.asarray(i, dtype=np.int64)
            i = np.where(i < 0, i + len(self), i)
        w = i // self.n_channels if self.channel_independent else i
        return self.start + w * self.stride

    def target_position(self, indices) -> np.ndarray:
        """Where each item's targets begin and end, as fractions of the split's rows: (B, 2) in [0, 1)."""
        first = self.window_start(np.asarray(indices, dtype=np.int64)) - self.start + self.lookback
        return np.stack([first, first + self.horizon - 1], axis=1) / (self.stop - self.start)

    def channel_of(self, i: int) -> int | None:
        """The channel item i holds (channel-independent), or None (multivariate: all channels)."""
        i = self._index(i)
        return i % self.n_channels if self.channel_independent else None

    def timestamps_of(self, i: int) -> np.ndarray:
        """Timestamps of item i's targets: (H,) datetime64[ns]."""
        if self.timestamps is None:
            raise DataError("this dataset was built without timestamps")
        s = self.window_start(i) + self.lookback
        return self.timestamps[s : s + self.horizon]

    def __getitems__(self, indices: list[int]) -> WindowBatch:
        """Items `indices` as one batch: x (B, L, C), y (B, H, C) (C = 1 channel-independent). The
        loader calls this once per batch: one gather and one scaling for the whole batch."""
        n = len(self)
        i = np.asarray(indices, dtype=np.int64)
        i = np.where(i < 0, i + n, i)
        if ((i < 0) | (i >= n)).any():
            raise IndexError(f"window {np.asarray(indices)[(i < 0) | (i >= n)][0]} out of range for {n} items")
        span = self.lookback + self.horizon
        if self.channel_independent:
            c = i % self.n_channels
            rows = (self.start + i // self.n_channels * self.stride)[:, None] + np.arange(span)  # (B, L + H)
            values = self.data[rows, c[:, None]][..., None]  # (B, L + H, 1)
            if self.scaler is not None:  # in place: `values` is this batch's own copy
                values -= self._mean[c][:, None, None]
                values *= self._inv_std[c][:, None, None]
        else:
            # a copy of each window's contiguous block: faster than gathering its rows one by one
            values = np.stack([self.data[s : s + span] for s in (self.start + i * self.stride).tolist()])
            if self.scaler is not None:
                values -= self._mean
                values *= self._inv_std
        if not self.missing:
            values = torch.from_numpy(values)
            return WindowBatch(x=values[:, : self.lookback], y=values[:, self.lookback :])
        observed = ~np.isnan(values)
        values, observed = torch.from_numpy(np.where(observed, values, 0.0)), torch.from_numpy(observed)
        lb = self.lookback
        return WindowBatch(x=values[:, :lb], y=values[:, lb:], mask=observed[:, :lb], y_mask=observed[:, lb:])

    def __repr__(self) -> str:
        layout = "channel-independent" if self.channel_independent else "multivariate"
        return (
            f"WindowDataset({self.split or 'rows'} [{self.start}, {self.stop}), L={self.lookback}, H={self.horizon}, "
            f"stride={self.stride}, C={self.n_channels}, {layout}, {len(self)} items)"
        )


@dataclass
class Splits:
    """train/val/test windows over one scaled array; `scaler` un-scales; `borders` are the row ranges
    (val/test including their lookback rows); `series` is the series as given (before any transform)."""

    train: WindowDataset
    val: WindowDataset
    test: WindowDataset
    scaler: StandardScaler
    borders: dict[str, tuple[int, int]]
    series: Series
    lookback: int
    horizon: int
    rule: str
    transform: str | None = None
    timestamps: np.ndarray | None = None  # of the rows the borders index (shifted by one with a transform)


def make_splits(
    series: Series,
    lookback: int,
    horizon: int,
    *,
    stride: int = 1,
    eval_stride: int = 1,
    channel_independent: bool = False,
    transform: str | None = None,
    rule: str | None = None,
) -> Splits:
    """Split `series` by the protocol (rule: default series.split), fit the scaler on the train rows,
    and return window datasets over the series' own array that scale each item on read.

    stride: step between training windows; eval_stride: between val/test windows (keep 1 for published
    comparisons: the protocol evaluates every test window). transform: None, "returns" or "log_returns"
    (for prices; applied before splitting, so the series is one row shorter).
    """
    rule = rule or series.split
    values, timestamps = apply_transform(series.values, series.timestamps, transform)
    borders = split_borders(values.shape[0], lookback, rule)
    lo, hi = borders["train"]
    scaler = StandardScaler.fit(values[lo:hi], series.columns)
    data = values  # the series' own array (or the transformed copy): shared by the three splits
    sets = {}
    for name, (a, b) in borders.items():
        sets[name] = WindowDataset(
            data,
            a,
            b,
            lookback,
            horizon,
            stride=stride if name == "train" else eval_stride,
            channel_independent=channel_independent,
            timestamps=timestamps,
            split=name,
            scaler=scaler,
        )
        if sets[name].n_windows == 0:
            raise DataError(
                f"'{series.name}': the {name} split (rows {a}..{b}, {b - a} rows) is shorter than lookback + horizon "
                f"= {lookback + horizon}; use a shorter lookback/horizon or a longer series"
            )
    return Splits(**sets, scaler=scaler, borders=borders, series=series, lookback=lookback, horizon=horizon,
                  rule=rule, transform=transform, timestamps=timestamps)  # fmt: skip
