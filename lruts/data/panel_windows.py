"""Windows cut inside each series of a panel, read as named batches; a train/val split per series by time.

    splits = panel_splits(load_panel(df, ...), lookback=96, horizon=24)
    for batch in make_loader(splits.train, 64, shuffle=True):    # lruts.training.make_loader
        batch.x, batch.y, batch.mask, batch.y_mask                 # (B, L, 1), (B, H, 1), bool masks
        batch.future_covariates, batch.past_covariates, batch.static   # (B, L+H, F), (B, L, P), (B, S)

Window w is (series s, start row r): rows r .. r + L + H of series s only, so no window crosses a series
boundary or reads time before a series starts. The index is O(series + skipped windows), not a pair of
ints per window: with stride 1 there are about as many windows as rows, so even 4-byte pairs would take
twice the float32 target itself. Windows are numbered series by series; (s, r) comes from the cumulative
window counts by a binary search per batch, after stepping over the skipped ones (see `_locate`). Each
batch gathers its rows from the panel's arrays.

Missing targets: mask / y_mask are False there and the value is 0 (the loss leaves masked targets out).
A window whose H targets are all missing is skipped. Missing covariate cells read 0 after scaling (their
training mean).

Scaling, fitted on the training rows only: the target per series (a global model over series of very
different levels, say a corner shop and a supermarket, learns shapes, not levels; `scaler.target` holds
each series' mean and std, channel = series index, to unscale its forecast), covariates globally per
column (a temperature means the same in every series), static covariates over the series.

Split per series by time, like the protocol: the last max(horizon, ceil(test_fraction · length)) rows of
each series are test (with test_fraction > 0; the pipelines' protocol), the max(horizon, ceil(val_fraction ·
length)) rows before them validation, the rest training; val and test windows look back `lookback` rows
across their border. `borders` (train_end, val_end, test_end) instead gives every series the same row
borders: a one-series panel made from a protocol dataset (ETT's "MS" setting) keeps the protocol's.

A series too short for one training window (training rows < lookback + horizon) is refused with a message
naming it, not padded: a padded window trains on lookbacks that are mostly padding, and the forecast of
such a series would rest on fewer observations than the model was built for, which the user should decide
about (shorter lookback, or drop the series). drop_short=True (the pipelines) decides for them: such a
series gets no window in any split and is listed in `dropped`; it stays in the panel, so a forecaster
still streams and forecasts it with the global model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from lruts.data.batch import BatchedWindows, WindowBatch
from lruts.data.panel import Panel, _few
from lruts.data.scaling import StandardScaler, observed_stats
from lruts.errors import DataError


@dataclass
class PanelScaler:
    """target: per series (channel = series index); future, past: per column; static: per column."""

    target: StandardScaler
    future: StandardScaler
    past: StandardScaler
    static: StandardScaler


def fit_panel_scaler(panel: Panel, train_lengths: np.ndarray) -> PanelScaler:
    """Statistics of the first train_lengths[i] rows of each series i."""
    rows = list(zip(panel.offsets.tolist(), train_lengths.tolist(), strict=True))
    t_mean, t_std = np.empty(len(panel)), np.empty(len(panel))
    for i, (o, n) in enumerate(rows):
        t_mean[i], t_std[i] = (s[0] for s in observed_stats([panel.values[o : o + n, None]]))
    past = observed_stats(panel.past[o : o + n] for o, n in rows)
    future = observed_stats(
        panel.future[o : o + n] for o, n in zip(panel.future_offsets.tolist(), train_lengths.tolist(), strict=True)
    )
    static = observed_stats([panel.static]) if panel.static.shape[1] else (np.zeros(0), np.zeros(0))
    return PanelScaler(StandardScaler(t_mean, t_std), StandardScaler(*future), StandardScaler(*past),
                       StandardScaler(*static))  # fmt: skip


class PanelWindows(BatchedWindows):
    """Windows of `panel` starting at local rows lo[i] .. hi[i] - L - H of each series i (stride apart),
    skipping windows whose targets are all missing. Item w: x (L, 1), y (H, 1) of series `series_of(w)`."""

    def __init__(
        self,
        panel: Panel,
        lo: np.ndarray,
        hi: np.ndarray,
        lookback: int,
        horizon: int,
        scaler: PanelScaler,
        *,
        stride: int = 1,
        split: str = "",
    ) -> None:
        if lookback < 1 or horizon < 1 or stride < 1:
            raise DataError(f"lookback, horizon and stride must be >= 1 (got {lookback}, {horizon}, {stride})")
        self.panel, self.lookback, self.horizon, self.stride, self.split = panel, lookback, horizon, stride, split
        self.scaler = scaler
        span = lookback + horizon
        counts = np.maximum((hi - lo - span) // stride + 1, 0).astype(np.int64)
        self._lo, self._hi = np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)
        self._first = np.concatenate([[0], np.cumsum(counts)])  # candidate windows of series i: first[i] .. first[i+1]
        skipped = []
        for i in np.flatnonzero(counts).tolist():
            seen = np.concatenate([[0], np.cumsum(~np.isnan(panel.series(i)), dtype=np.int64)])
            s = lo[i] + stride * np.arange(counts[i])
            skipped.append(self._first[i] + np.flatnonzero(seen[s + span] == seen[s + lookback]))
        skipped = np.concatenate(skipped) if skipped else np.zeros(0, dtype=np.int64)
        # kept windows before each skipped candidate: window w is candidate w + #(these <= w)
        self._kept_before_skip = skipped - np.arange(len(skipped))
        self._n = int(self._first[-1]) - len(skipped)
        # per-batch arithmetic in numpy, float32 (torch's thread pool costs ~ms per small op on a busy machine)
        self._mean = scaler.target.mean.astype(np.float32)
        self._inv_std = (1.0 / scaler.target.std).astype(np.float32)
        self._cov = {
            k: (s.mean.astype(np.float32), (1.0 / s.std).astype(np.float32))
            for k, s in (("future", scaler.future), ("past", scaler.past), ("static", scaler.static))
        }
        self._span = np.arange(span)

    def __len__(self) -> int:
        return self._n

    @property
    def index_nbytes(self) -> int:
        return self._lo.nbytes + self._hi.nbytes + self._first.nbytes + self._kept_before_skip.nbytes

    def _locate(self, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Windows i -> (series, first lookback row inside it): two (B,) int64 arrays."""
        candidate = i + np.searchsorted(self._kept_before_skip, i, side="right")
        s = np.searchsorted(self._first, candidate, side="right") - 1
        return s, self._lo[s] + (candidate - self._first[s]) * self.stride

    def _positions(self, indices) -> np.ndarray:
        n = len(self)
        i = np.asarray(indices, dtype=np.int64)
        i = np.where(i < 0, i + n, i)
        if ((i < 0) | (i >= n)).any():
            raise IndexError(f"window {np.asarray(indices)[(i < 0) | (i >= n)][0]} out of range for {n} items")
        return i

    def series_of(self, i) -> np.ndarray:
        """Series index of each window: (B,) int64 (an int for an int)."""
        return self._locate(self._positions(i))[0]

    def window_start(self, i) -> np.ndarray:
        """Row of each window's first lookback step inside its series: (B,) int64 (an int for an int)."""
        return self._locate(self._positions(i))[1]

    def target_position(self, indices) -> np.ndarray:
        """Where each window's targets begin and end, as fractions of its series' rows in this split: (B, 2)."""
        s, st = self._locate(self._positions(indices))
        first = st - self._lo[s] + self.lookback
        return np.stack([first, first + self.horizon - 1], axis=1) / (self._hi[s] - self._lo[s])[:, None]

    def timestamps_of(self, i: int) -> np.ndarray:
        """Timestamps of window i's targets: (H,) datetime64[ns]."""
        from lruts.data.timestamps import advance

        s, st = int(self.series_of(i)), int(self.window_start(i))
        return advance(self.panel.starts[s], self.panel.freq, st + self.lookback + np.arange(self.horizon))

    def _covariates(self, kind: str, arr: np.ndarray, rows: np.ndarray) -> torch.Tensor | None:
        if arr.shape[1] == 0:
            return None
        mean, inv_std = self._cov[kind]
        v = arr[rows]  # a gather: this batch's own copy
        v -= mean
        v *= inv_std
        np.nan_to_num(v, copy=False, nan=0.0)
        return torch.from_numpy(v)

    def __getitems__(self, indices: list[int]) -> WindowBatch:
        """Windows `indices` as one batch: x (B, L, 1), y (B, H, 1), mask/y_mask bool, covariates if any."""
        s, st = self._locate(self._positions(indices))
        p, L = self.panel, self.lookback
        rows = (p.offsets[s] + st)[:, None] + self._span  # (B, L + H)
        v = p.values[rows]
        observed = ~np.isnan(v)
        v -= self._mean[s][:, None]
        v *= self._inv_std[s][:, None]
        v[~observed] = 0.0
        v, observed = torch.from_numpy(v[..., None]), torch.from_numpy(observed[..., None])
        return WindowBatch(
            x=v[:, :L],
            y=v[:, L:],
            future_covariates=self._covariates("future", p.future, (p.future_offsets[s] + st)[:, None] + self._span),
            past_covariates=self._covariates("past", p.past, rows[:, :L]),
            static=self._covariates("static", p.static, s),
            mask=observed[:, :L],
            y_mask=observed[:, L:],
        )

    def __repr__(self) -> str:
        return (
            f"PanelWindows({self.split or 'rows'}, {len(self.panel)} series, L={self.lookback}, H={self.horizon}, "
            f"stride={self.stride}, {len(self)} windows)"
        )


@dataclass
class PanelSplits:
    """train/val(/test) windows over one panel; train_lengths[i]: training rows of series i (the scaler's);
    val_ends[i]: the row where its test rows start (its length without a test split); dropped: the ids of
    the series too short for a training window (drop_short), which have no windows."""

    train: PanelWindows
    val: PanelWindows
    scaler: PanelScaler
    train_lengths: np.ndarray
    panel: Panel
    lookback: int
    horizon: int
    test: PanelWindows | None = None
    val_ends: np.ndarray | None = None
    dropped: list[str] = field(default_factory=list)


def panel_splits(
    panel: Panel,
    lookback: int,
    horizon: int,
    *,
    val_fraction: float = 0.2,
    test_fraction: float = 0.0,
    borders: tuple[int, int, int] | None = None,
    drop_short: bool = False,
    stride: int = 1,
    eval_stride: int = 1,
) -> PanelSplits:
    """Split each series by time (see the module docstring) and fit the scaler on the training rows."""
    if not 0 < val_fraction < 1 or not 0 <= test_fraction < 1 - val_fraction:
        raise DataError(
            f"val_fraction must be in (0, 1) and test_fraction in [0, 1 - val_fraction), got {val_fraction}, "
            f"{test_fraction}"
        )
    if borders is not None:
        train_end, val_end, test_end = borders
        if (panel.lengths < test_end).any():
            i = int(np.argmax(panel.lengths < test_end))
            raise DataError(f"series '{panel.ids[i]}' has {panel.lengths[i]} rows; the protocol needs {test_end}")
        train_lengths = np.full(len(panel), train_end, dtype=np.int64)
        val_ends, test_ends = np.full_like(train_lengths, val_end), np.full_like(train_lengths, test_end)
    else:
        n_test = np.maximum(horizon, np.ceil(test_fraction * panel.lengths)) if test_fraction else 0
        test_ends = panel.lengths.copy()
        val_ends = (test_ends - n_test).astype(np.int64)
        train_lengths = (val_ends - np.maximum(horizon, np.ceil(val_fraction * panel.lengths))).astype(np.int64)
    short = np.flatnonzero(train_lengths < lookback + horizon)
    dropped = [panel.ids[i] for i in short.tolist()]
    if len(short) and (not drop_short or len(short) == len(panel)):
        names = [f"{panel.ids[i]} ({panel.lengths[i]} steps)" for i in short.tolist()]
        held = 1 - val_fraction - test_fraction
        need = math.ceil((lookback + horizon) / held) if borders is None else lookback + horizon
        raise DataError(
            f"series {_few(names)} are too short for lookback {lookback} + horizon {horizon} and their validation "
            f"and test rows (about {need} steps needed); use a shorter lookback or drop them"
        )
    if len(short):  # no window in any split, and no rows in the scaler's statistics
        train_lengths[short], val_ends[short], test_ends[short] = 0, 0, 0
    scaler = fit_panel_scaler(panel, train_lengths)
    lo = np.maximum(train_lengths - lookback, 0)
    train = PanelWindows(
        panel, np.zeros_like(train_lengths), train_lengths, lookback, horizon, scaler, stride=stride, split="train"
    )
    val = PanelWindows(panel, lo, val_ends, lookback, horizon, scaler, stride=eval_stride, split="val")
    test = None
    if test_fraction or borders is not None:
        test_lo = np.maximum(val_ends - lookback, 0)
        test = PanelWindows(panel, test_lo, test_ends, lookback, horizon, scaler, stride=eval_stride, split="test")
    return PanelSplits(train, val, scaler, train_lengths, panel, lookback, horizon, test, val_ends, dropped)
