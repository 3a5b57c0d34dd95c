"""Baselines run through the same harness as the LRU: repeat-last, seasonal naive and DLinear.

All map a window x: (batch, L, C) of scaled values to a forecast (batch, H, C, 1), like LRUForecastNet.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# seasonal period per sampling step (one day, or one year for weekly data)
SEASON = {"10m": 144, "15m": 96, "1h": 24, "1d": 7, "1w": 52}


class RepeatLast(nn.Module):
    def __init__(self, horizon: int) -> None:
        super().__init__()
        self.horizon = horizon

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1:, :, None].expand(-1, self.horizon, -1, -1)


class SeasonalNaive(nn.Module):
    """ŷ_{t+h} = x_{t+h−m·⌈h/m⌉}: the value one (or more) seasons earlier."""

    def __init__(self, horizon: int, season: int) -> None:
        super().__init__()
        self.horizon, self.season = horizon, season

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] < self.season:
            raise ValueError(f"seasonal naive needs lookback ≥ season ({self.season}), got {x.shape[1]}")
        last_season = x[:, -self.season :]
        reps = -(-self.horizon // self.season)
        return last_season.repeat(1, reps, 1)[:, : self.horizon, :, None]


class DLinear(nn.Module):
    """Zeng et al. 2023: moving-average trend + remainder, one linear map L → H each, shared over series."""

    def __init__(self, lookback: int, horizon: int, kernel: int = 25) -> None:
        super().__init__()
        self.kernel = kernel
        self.seasonal = nn.Linear(lookback, horizon)
        self.trend = nn.Linear(lookback, horizon)
        for lin in (self.seasonal, self.trend):
            nn.init.constant_(lin.weight, 1.0 / lookback)
            nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # moving average with edge replication, as in the reference implementation
        pad = (self.kernel - 1) // 2
        xt = x.permute(0, 2, 1)  # (B, C, L)
        padded = torch.cat(
            [xt[..., :1].expand(-1, -1, pad), xt, xt[..., -1:].expand(-1, -1, self.kernel - 1 - pad)], -1
        )
        trend = F.avg_pool1d(padded, self.kernel, stride=1)
        out = self.seasonal(xt - trend) + self.trend(trend)  # (B, C, H)
        return out.permute(0, 2, 1)[..., None]
