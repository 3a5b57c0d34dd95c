"""Baselines run through the same harness as the LRU: repeat-last, seasonal naive, DLinear and PatchTST.

All map a window x: (batch, L, C) of scaled values to a forecast (batch, H, C, 1), like LRUForecastNet.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lruts.forecasting.net import window_stats


def season_length(freq: str | None) -> int:
    """The seasonal period in steps of a canonical frequency: a day below daily sampling (48 for "30m"), a
    session's slots (169 for "5m@07:00-21:00": yesterday's same slot), a week for daily and business days, a
    year for weekly and monthly data; 0 where none is known."""
    if not freq:
        return 0
    from lruts.data.timestamps import session, step_ns

    hours = session(freq)
    if hours is not None:
        return hours[2]

    if freq.endswith("mo"):
        months = int(freq[:-2])
        return 12 // months if 12 % months == 0 and months < 12 else 0
    if freq.endswith("b"):  # business days: a week of five
        return 5 if freq == "1b" else 0
    step, day = step_ns(freq), 86_400 * 10**9
    if step < day:
        return day // step if day % step == 0 else 0
    return {day: 7, 7 * day: 52}.get(step, 0)


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


class PatchTST(nn.Module):
    """Nie et al. 2023, supervised, channel-independent; the defaults are its ETTh1 script's
    (scripts/PatchTST/etth1.sh: patches of 16 every 8 steps with the last value repeated 8 times at the
    end, d_model 16, 4 heads, d_ff 128, 3 layers, dropout 0.3, no head dropout; run with lookback 512 it
    is PatchTST/64). RevIN without affine weights, learnable positional encoding, post-norm BatchNorm
    encoder layers whose attention scores carry over from layer to layer (its res_attention), and a
    flatten head over every patch's output."""

    def __init__(
        self,
        lookback: int,
        horizon: int,
        *,
        patch_len: int = 16,
        stride: int = 8,
        d_model: int = 16,
        n_heads: int = 4,
        d_ff: int = 128,
        n_layers: int = 3,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if lookback < patch_len or d_model % n_heads:
            raise ValueError(
                f"need lookback ≥ patch_len and d_model divisible by n_heads, "
                f"got {lookback}, {patch_len}, {d_model}, {n_heads}"
            )
        self.patch_len, self.stride = patch_len, stride
        self.n_patches = (lookback - patch_len) // stride + 2  # + 1 for the padding at the end
        self.embed = nn.Linear(patch_len, d_model)
        self.position = nn.Parameter(torch.empty(self.n_patches, d_model).uniform_(-0.02, 0.02))
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(_PatchTSTLayer(d_model, n_heads, d_ff, dropout) for _ in range(n_layers))
        self.head = nn.Linear(d_model * self.n_patches, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        mean, std = window_stats(x)
        z = ((x - mean) / std).transpose(1, 2)  # (B, C, L)
        z = torch.cat([z, z[..., -1:].expand(-1, -1, self.stride)], dim=-1)
        z = z.unfold(-1, self.patch_len, self.stride).reshape(b * c, self.n_patches, self.patch_len)
        h, scores = self.dropout(self.embed(z) + self.position), None
        for layer in self.layers:
            h, scores = layer(h, scores)
        y = self.head(h.transpose(1, 2).reshape(b * c, -1)).reshape(b, c, -1).transpose(1, 2)
        return (y * std + mean)[..., None]


class _PatchTSTLayer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model))
        self.norm_attn, self.norm_ff = nn.BatchNorm1d(d_model), nn.BatchNorm1d(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, prev: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        b, n, d = h.shape
        q, k, v = self.qkv(h).reshape(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) * (d // self.n_heads) ** -0.5
        if prev is not None:
            scores = scores + prev
        attended = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(b, n, d)
        # dropout twice on the attention's output, as there: its projection's, then the layer's
        h = self.norm_attn((h + self.dropout(self.dropout(self.out(attended)))).transpose(1, 2)).transpose(1, 2)
        h = self.norm_ff((h + self.dropout(self.ff(h))).transpose(1, 2)).transpose(1, 2)
        return h, scores
