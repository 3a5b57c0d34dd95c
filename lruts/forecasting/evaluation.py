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
    """Forecasts and actuals for every window of a split, scaled: (windows, H, C[, 1 + Q])."""

    pred: np.ndarray
    true: np.ndarray


@torch.no_grad()
def predict_windows(
    model: Model, dataset: Dataset, *, batch_size: int = 256, device: str | torch.device = "cpu", progress: bool = False
) -> Predictions:
    """Run `model` over every window batch (lruts.data.WindowBatch) of `dataset`, no window dropped, order kept;
    the batch's mask and covariates, when it has them, go to the model too (net.batch_inputs). A Blend over
    one series' consecutive windows gets the intervals its stream would issue (Blend.replay)."""
    if isinstance(model, nn.Module):
        model.eval()
    online = isinstance(model, Blend) and _consecutive_windows(dataset)
    preds, trues, scales, observed = [], [], [], []
    loader = make_loader(dataset, batch_size, shuffle=False)
    for batch in progress_bar(loader, desc="evaluating", enabled=progress):
        inputs = batch.to(device)
        preds.append(model(inputs.x, **batch_inputs(inputs)).float().cpu())
        trues.append(batch.y)
        if online:
            scales.append(model.local_scale(inputs.x, inputs.mask).float().cpu())
            observed.append(torch.isfinite(batch.y) if batch.y_mask is None else batch.y_mask & torch.isfinite(batch.y))
    pred, true = torch.cat(preds), torch.cat(trues)
    if online and len(pred):
        here = model.offsets.device
        replayed = model.replay(*(t.to(here) for t in (pred, torch.cat(scales), true.float(), torch.cat(observed))))
        pred = replayed.float().cpu()
    if len(pred) != len(dataset):
        raise AssertionError(f"evaluated {len(pred)} windows, the split has {len(dataset)}")
    return Predictions(pred.numpy(), true.numpy())


def _consecutive_windows(dataset: Dataset) -> bool:
    """Whether `dataset`'s windows are one series' at consecutive origins (what a stream issues)."""
    return isinstance(dataset, WindowDataset) and dataset.stride == 1 and not dataset.channel_independent


def score(
    p: Predictions, scaler, *, naive_scale: np.ndarray | None = None, quantiles: list[float] | None = None
) -> dict[str, float]:
    """Protocol metrics on scaled values (and over the windows PatchTST scores: module docstring),
    then MASE/sMAPE on the original scale.

    naive_scale: per-series in-sample seasonal-naive MAE on the original training rows (for MASE).
    quantiles: with ≥ 2 levels, the coverage and the interval (Winkler) score of [lowest, highest], on
    scaled values, are reported too."""
    point = p.pred[..., 0]
    out = {"mse": metrics.mse(point, p.true), "mae": metrics.mae(point, p.true), "windows": float(len(point))}
    scored = len(point) - len(point) % PATCHTST_TEST_BATCH  # the windows in full batches (module docstring)
    if scored:
        out["mse_patchtst_windows"] = metrics.mse(point[:scored], p.true[:scored])
        out["mae_patchtst_windows"] = metrics.mae(point[:scored], p.true[:scored])
    orig_pred = scaler.inverse_transform(point)
    orig_true = scaler.inverse_transform(p.true)
    out["smape"] = metrics.smape(orig_pred, orig_true)
    if naive_scale is not None:
        out["mase"] = metrics.mase(orig_pred, orig_true, naive_scale)
    if quantiles and len(quantiles) >= 2:
        lo, hi = p.pred[..., 1], p.pred[..., len(quantiles)]
        nominal = quantiles[-1] - quantiles[0]
        out[f"coverage_{quantiles[0]:g}_{quantiles[-1]:g}"] = metrics.coverage(lo, hi, p.true)
        out["nominal_coverage"] = nominal
        out["winkler"] = metrics.winkler(lo, hi, p.true, nominal)
    return out


def rolling_origin(p: Predictions, stride: int) -> list[dict[str, float]]:
    """Backtest table: the test windows whose origins are `stride` steps apart (from the first), one
    row per origin with its MSE and MAE on scaled values."""
    rows = []
    for i in range(0, len(p.pred), stride):
        rows.append(
            {
                "origin": i,
                "mse": metrics.mse(p.pred[i, ..., 0], p.true[i]),
                "mae": metrics.mae(p.pred[i, ..., 0], p.true[i]),
            }
        )
    return rows
