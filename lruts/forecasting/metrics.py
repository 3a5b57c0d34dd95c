"""Forecast metrics. Arrays are (windows, horizon, series); every element counts once."""

from __future__ import annotations

import numpy as np


def mse(pred: np.ndarray, true: np.ndarray) -> float:
    return float(np.mean((pred - true) ** 2))


def mae(pred: np.ndarray, true: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - true)))


def smape(pred: np.ndarray, true: np.ndarray) -> float:
    """Symmetric MAPE in percent: mean of 200·|ŷ − y| / (|ŷ| + |y|), with 0/0 counted as 0."""
    num = np.abs(pred - true)
    den = np.abs(pred) + np.abs(true)
    ratio = np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)
    return float(200.0 * np.mean(ratio))


def naive_scale(train: np.ndarray, season: int = 1) -> np.ndarray:
    """Per-series in-sample MAE of the seasonal naive forecast on the training rows (T, C) → (C,), over the pairs
    of observed values (NaN: missing)."""
    if len(train) <= season:
        raise ValueError(f"need more than season={season} training rows to scale MASE, got {len(train)}")
    return np.nanmean(np.abs(train[season:] - train[:-season]), axis=0)


def coverage(lower: np.ndarray, upper: np.ndarray, true: np.ndarray) -> float:
    """Fraction of actual values inside [lower, upper]."""
    return float(np.mean((true >= lower) & (true <= upper)))


def winkler(lower: np.ndarray, upper: np.ndarray, true: np.ndarray, nominal: float) -> float:
    """Mean interval (Winkler) score of [lower, upper] as a `nominal` (e.g. 0.8) interval: its width, plus
    2/α times how far each actual value falls outside it (α = 1 − nominal). Lower is better; it rewards
    narrow intervals only while they keep their coverage."""
    alpha = 1.0 - nominal
    miss = np.maximum(lower - true, 0) + np.maximum(true - upper, 0)
    return float(np.mean(upper - lower + 2.0 / alpha * miss))
