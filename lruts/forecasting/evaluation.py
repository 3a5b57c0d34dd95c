"""The benchmark protocol's evaluation (forecasting.md): every test window, MSE and MAE on the scaled
values; MASE and sMAPE on the original scale; interval coverage for quantile forecasts; and a
rolling-origin backtest.

PatchTST's published numbers are not over every test window: its test loader (PatchTST_supervised/
data_provider/data_factory.py) sets drop_last=True with the scripts' batch of 128, and its test()
stacks the batches, so the last n mod 128 windows (ETTh1: 97 / 1 / 113 / 113 at H = 96 / 192 / 336
/ 720) are never scored. `score` reports the protocol's MSE/MAE over every window, and beside them the
same over the windows PatchTST scores, to compare like with like.

A model here is anything mapping x: (batch, L, C) scaled → (batch, H, C, 1 + Q). A blended forecaster's
intervals are scored as its stream issues them (blend.py, online calibration): over a split's windows in
time order, starting from the validation offsets at the first window's origin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from lruts.data import WindowDataset
from lruts.forecasting import metrics
from lruts.forecasting.blend import Blend
from lruts.forecasting.net import batch_inputs
from lruts.training import make_loader, progress_bar

Model = Callable[[torch.Tensor], torch.Tensor]

PATCHTST_TEST_BATCH = 128  # PatchTST's scripts/PatchTST/etth1.sh, ettm1.sh: --batch_size 128


@dataclass
class Predictions:
    """Forecasts and actuals for every window of a split, scaled: (windows, H, C[, 1 + Q]).

    mask: (windows, H, C) bool, True where the target was observed (None: all were); series: (windows,)
    the panel series of each window (None: a wide table, whose series are the C columns)."""

    pred: np.ndarray
    true: np.ndarray
    mask: np.ndarray | None = None
    series: np.ndarray | None = None


@torch.no_grad()
def predict_windows(
    model: Model, dataset: Dataset, *, batch_size: int = 256, device: str | torch.device = "cpu", progress: bool = False
) -> Predictions:
    """Run `model` over every window batch (lruts.data.WindowBatch) of `dataset`, no window dropped, order kept;
    the batch's mask and covariates, when it has them, go to the model too (net.batch_inputs). A Blend over
    one series' consecutive windows gets the intervals its stream would issue (Blend.replay)."""
    if isinstance(model, nn.Module):
        model.eval()
    runs = _stream_runs(dataset) if isinstance(model, Blend) else None
    online = runs is not None
    preds, trues, masks, scales, observed = [], [], [], [], []
    loader = make_loader(dataset, batch_size, shuffle=False)
    for batch in progress_bar(loader, desc="evaluating", enabled=progress):
        inputs = batch.to(device)
        preds.append(model(inputs.x, **batch_inputs(inputs)).float().cpu())
        trues.append(batch.y)
        masks.append(batch.y_mask)
        if online:
            scales.append(model.local_scale(inputs.x, inputs.mask).float().cpu())
            observed.append(torch.isfinite(batch.y) if batch.y_mask is None else batch.y_mask & torch.isfinite(batch.y))
    pred, true = torch.cat(preds), torch.cat(trues)
    if online and len(pred):
        here = model.offsets.device
        scale, seen = torch.cat(scales), torch.cat(observed)
        for run in runs:  # each series' windows, as its own stream issues them
            parts = (pred[run], scale[run], true[run].float(), seen[run])
            pred[run] = model.replay(*(t.to(here) for t in parts)).float().cpu()
    if len(pred) != len(dataset):
        raise AssertionError(f"evaluated {len(pred)} windows, the split has {len(dataset)}")
    pred, true = pred.numpy(), true.numpy()
    mask = None  # every target observed, unless a batch says otherwise
    if any(m is not None for m in masks):
        mask = np.concatenate(
            [np.ones(t.shape, bool) if m is None else m.numpy() for m, t in zip(masks, trues, strict=True)]
        )
    series = dataset.series_of(np.arange(len(dataset))) if hasattr(dataset, "series_of") else None
    return Predictions(pred, true, mask, series)


def original_scale(p: Predictions, scaler, values: np.ndarray) -> np.ndarray:
    """Scaled values (windows, H, C) of `p`'s windows on the original scale: a panel's (scaler.target, one
    mean and std per series) by each window's series, a wide table's by column."""
    if p.series is None:
        return scaler.inverse_transform(values)
    target = scaler.target
    return values * target.std[p.series][:, None, None] + target.mean[p.series][:, None, None]


def mase_per_series(p: Predictions, scaler, naive_scale: np.ndarray) -> np.ndarray:
    """Each series' MASE: its MAE over its test windows' observed targets on the original scale, divided
    by its own in-sample seasonal-naive MAE (`naive_scale`, (n_series,)); (n_series,), NaN for a series
    with no scored target or a zero scale."""
    err = np.abs(original_scale(p, scaler, p.pred[..., 0]) - original_scale(p, scaler, p.true))
    observed = np.ones(err.shape, bool) if p.mask is None else p.mask
    err = np.where(observed, err, 0.0)
    if p.series is None:  # wide: series = columns
        total, count = err.sum(axis=(0, 1)), observed.sum(axis=(0, 1))
    else:
        total = np.bincount(p.series, err.sum(axis=(1, 2)), minlength=len(naive_scale))
        count = np.bincount(p.series, observed.sum(axis=(1, 2)), minlength=len(naive_scale))
    ok = (count > 0) & (naive_scale > 0)
    out = np.full(len(naive_scale), np.nan)
    out[ok] = total[ok] / count[ok] / naive_scale[ok]
    return out


def _stream_runs(dataset: Dataset) -> list[torch.Tensor] | None:
    """The window indices of each series at consecutive origins (what one stream issues), or None when the
    windows are not (a stride > 1, channel-independent samples)."""
    if isinstance(dataset, WindowDataset):
        usable = dataset.stride == 1 and not dataset.channel_independent
        return [torch.arange(len(dataset))] if usable else None
    if getattr(dataset, "stride", None) == 1 and hasattr(dataset, "series_of"):  # a panel's: series by series
        series = torch.from_numpy(np.asarray(dataset.series_of(np.arange(len(dataset)))))
        counts = torch.unique_consecutive(series, return_counts=True)[1].tolist()
        return list(torch.split(torch.arange(len(dataset)), counts))
    return None


def score(
    p: Predictions, scaler, *, naive_scale: np.ndarray | None = None, quantiles: list[float] | None = None
) -> dict[str, float]:
    """Protocol metrics on scaled values (and over the windows PatchTST scores: module docstring),
    then MASE/sMAPE on the original scale; targets the mask marks missing count in none of them.

    scaler: a wide table's StandardScaler, or a panel's PanelScaler. naive_scale: per-series in-sample
    seasonal-naive MAE on the original training rows: "mase" and "mase_median" are the mean and median of
    the series' MASEs (mase_per_series). quantiles: with ≥ 2 levels, the coverage and the interval
    (Winkler) score of [lowest, highest], on scaled values, are reported too."""

    def kept(a: np.ndarray) -> np.ndarray:  # the observed targets (a flat array), or all of them as they are
        return a if p.mask is None else a[p.mask[: len(a)]]

    point = p.pred[..., 0]
    out = {"mse": metrics.mse(kept(point), kept(p.true)), "mae": metrics.mae(kept(point), kept(p.true))}
    out["windows"] = float(len(point))
    scored = len(point) - len(point) % PATCHTST_TEST_BATCH  # the windows in full batches (module docstring)
    if scored and p.series is None:
        out["mse_patchtst_windows"] = metrics.mse(kept(point[:scored]), kept(p.true[:scored]))
        out["mae_patchtst_windows"] = metrics.mae(kept(point[:scored]), kept(p.true[:scored]))
    orig_pred = original_scale(p, scaler, point)
    orig_true = original_scale(p, scaler, p.true)
    out["smape"] = metrics.smape(kept(orig_pred), kept(orig_true))
    if naive_scale is not None:
        per_series = mase_per_series(p, scaler, naive_scale)
        if np.isfinite(per_series).any():
            out["mase"] = float(np.nanmean(per_series))
            out["mase_median"] = float(np.nanmedian(per_series))
        else:
            out["mase"] = float("nan")
    if quantiles and len(quantiles) >= 2:
        lo, hi = kept(p.pred[..., 1]), kept(p.pred[..., len(quantiles)])
        nominal = quantiles[-1] - quantiles[0]
        out[f"coverage_{quantiles[0]:g}_{quantiles[-1]:g}"] = metrics.coverage(lo, hi, kept(p.true))
        out["nominal_coverage"] = nominal
        out["winkler"] = metrics.winkler(lo, hi, kept(p.true), nominal)
    return out


def rolling_origin(p: Predictions, stride: int) -> list[dict[str, float]]:
    """Backtest table: the test windows whose origins are `stride` steps apart (from the first; a panel's
    windows are numbered series by series), one row per origin with its MSE and MAE on scaled values over
    its observed targets (a panel window has at least one: PanelWindows skips the others)."""
    rows = []
    for i in range(0, len(p.pred), stride):
        pred, true = p.pred[i, ..., 0], p.true[i]
        if p.mask is not None:
            pred, true = pred[p.mask[i]], true[p.mask[i]]
        rows.append({"origin": i, "mse": metrics.mse(pred, true), "mae": metrics.mae(pred, true)})
    return rows
