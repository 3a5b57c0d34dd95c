"""The forecasting loss: the point forecast's MSE (the protocol's metric) or MAE, plus the pinball loss
of the quantiles, over the observed targets only.

    loss = forecast_loss(net(batch.x), batch.y, quantiles, "mse", y_mask=batch.y_mask)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POINT_LOSSES = {"mse": F.mse_loss, "mae": F.l1_loss}


def observed_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of `values` over the entries `mask` marks observed (None: every entry); mask broadcasts to
    values. No entry observed: 0."""
    if mask is None:
        return values.mean()
    mask = mask.expand_as(values)
    return torch.where(mask, values, 0.0).sum() / mask.sum().clamp(min=1)


def pinball_loss(pred: torch.Tensor, y: torch.Tensor, quantiles: list[float], mask: torch.Tensor | None = None):
    """Mean pinball loss. pred: (..., Q) quantile forecasts, y: (...) targets, mask: (...) bool or None."""
    q = torch.tensor(quantiles, dtype=pred.dtype, device=pred.device)
    err = y[..., None] - pred
    return observed_mean(torch.maximum(q * err, (q - 1) * err), None if mask is None else mask[..., None])


def forecast_loss(
    out: torch.Tensor,
    y: torch.Tensor,
    quantiles: list[float],
    point: str = "mse",
    *,
    y_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """out: (B, H, C, 1 + Q) the network's point and quantile forecasts; y: (B, H, C) the targets;
    y_mask: (B, H, C) bool, True where y was observed (None: all). Masked-out targets add nothing to
    the loss and give no gradient. point: "mse" or "mae"."""
    if y_mask is not None:
        # a missing target may be stored as NaN: NaN · 0 would still poison the gradient, so zero it first
        y = torch.where(y_mask, y, 0.0)
    loss = observed_mean(POINT_LOSSES[point](out[..., 0], y, reduction="none"), y_mask)
    if quantiles:
        loss = loss + pinball_loss(out[..., 1:], y, quantiles, y_mask)
    return loss
