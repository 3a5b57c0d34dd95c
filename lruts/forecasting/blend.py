"""The forecast a user gets: the LRU network's forecast blended with simple forecasts, and calibrated intervals.

    f_k(x): (batch, H, C) for k = network, linear, linear per series, repeat-last, seasonal naive, linear of levels
    ŷ_h  = Σ_k w_{h,k} f_k(x)_h                     w_h on the simplex, one weight vector per horizon step
    q_τ  = ŷ + s(x)·r_τ[h, c]                        r_τ: the τ-quantile of (y − ŷ)/s(x) on validation windows

- The weights are fitted on validation windows by least squares on the simplex (exactly, over the
  active sets of the K forecasts), so on validation the blend is never worse than any of its parts. A
  series whose future the lookback explains linearly gets a linear map; the network keeps the weight it
  earns. A gain on validation that is within sampling error of the best simple forecast (repeat-last,
  seasonal naive) is not trusted: the blend is then that simple forecast alone, which is what a random
  walk calls for (`Evidence`: a t test and a sign test over blocks of windows; at horizons validation
  spans less than twice, on the first steps it does span twice). Validation is one stretch of the series,
  so the training rows' later parts are asked too (the relative map, refitted before each, against the
  same simple forecast): a gain validation shows is not trusted where the history says otherwise (a
  stock's validation months rewarded a pattern the years before did not), and one a validation too short
  for its test cannot show is trusted where the history shows it in every part. fit logs why, and warns
  where neither could tell. Weights are shared by the series (a
  panel's short series would overfit their own) and differ per horizon step (the network's lead usually
  shrinks with the horizon).
- The linear forecasts are ridge regressions of the next H steps on the last L, both relative to the last
  value (NLinear, fitted in closed form on the training windows, each penalty chosen on validation): one
  map shared by every series, and one map per series (up to MAX_SERIES_MAPS series). Beside them, one
  shared map of the values themselves and a constant (DLinear's form): free to pull a long forecast back
  toward the series' usual level, which a series that reverts rewards (electricity-6 at H = 720: validation
  MSE 0.252 against the relative map's 0.307) and a random walk punishes (exchange_rate at H = 192: 0.385
  against 0.222). It joins the blend only where it also beat the relative map on the later parts of the
  training rows (`_RollingFolds`): a random walk's validation stretch may wander back toward old levels, once
  for every validation window alike. Validation weighs them.
- Where the network reads known-future covariates, the shared relative map reads them too: those of the last
  step and of the H ahead, (1 + H)·F more features (while they stay under MAX_SHARED_FEATURES), so a
  covariate's effect enters the blend in closed form (an ARX map), where the network's covariate head
  starts at zero and learns at the optimiser's pace (a promotion worth 20 on a daily series: about 4 after
  the default 1,000 steps). electricity_prices (day-ahead load and generation): its validation MSE 0.242 →
  0.130, the network's 0.143.
- Intervals are locally adaptive split-conformal: each quantile level τ is the blend plus s·r_τ, where s
  is how much the series moves now (the RMS of its steps over the lookback) and r_τ the τ-quantile of
  the blend's validation residuals divided by their s, at that horizon step and series. So the 80%
  interval [q_0.1, q_0.9] covers 80% of validation outcomes per step and series, and of future ones as
  far as they resemble them in that unit: an interval widens when its series turns volatile. Quantile
  heads trained with a pinball loss have no such guarantee. The residuals are the weights' out of sample
  (each block of validation windows under weights fitted on the others) and their quantiles are taken at
  the plotting positions k/(n + 1), the finite-sample step of split conformal: both matter where
  validation is short (a monthly series' two years), and neither where it holds thousands of windows. A
  blend that kept a simple forecast has nothing fitted, so its residuals on the training windows are as
  honest: its offsets are the quantiles over the training and validation windows (years, where validation
  holds one long horizon's worth of months), and the unit is chosen out of sample (the training windows'
  offsets scored on validation).
- Intervals stay calibrated online by quantile tracking (Angelopoulos, Barber & Bates 2023, "Conformal
  PID control", its P part): each observed value y_t updates, per series c and level τ, the offset of
  every horizon step h whose forecast, issued h steps earlier, it completes:
      r_τ[h, c] ← r_τ[h, c] + η[h, c]·(τ − 1{y_t ≤ q_τ})      (a miss widens, a hit narrows)
  with η[h, c] = TRACKING_RATE × the width of the validation interval at (h, c) in the offsets' units / h:
  step h learns of its misses h steps late, and h updates pile up before the first one shows, so a step
  not divided by the delay overshoots and swings at long horizons (its Winkler score grows). Chosen
  over ACI (Gibbs & Candès 2021), which tracks the level α_t and reads a quantile of a fixed residual
  set: when the residuals' scale itself moves (a level that grew, a calmer or wilder year) no level of
  the validation set fits and ACI's α_t saturates at 0 or 1, while the tracked offset moves to wherever
  the new quantile lies. Whatever the data, Σ_t (1{y_t ≤ q_τ,t} − τ) = (r_0 − r_T)/η: a tracker's miss
  rate stays within |r_T − r_0|/(η·T) of nominal. The window pass (`forward`, what fit_blend calibrates
  on) uses the validation offsets; a stream and the evaluation harness (`replay`) the tracked ones. The
  value at time t updates the offsets before the forecast issued at t is.

A stream keeps the last max(L, m) observations for the simple forecasts beside the network's own stream
state: O(L·H) per observation, independent of the history's length, and equal to the window pass; and
the bounds of the last H forecasts for the tracker in a ring (Calibration), O(H²·C·Q) memory, one
gather and one write of O(H·C·Q) per observation (a step leaves what the state it was given reads). A stream
started from a history (`stream_from`) starts its tracker from the validation offsets.

Masks and covariates go to the network; the simple forecasts read the values with the missing ones
carried forward (the network's fill), and the weights and offsets are fitted on the series of each validation
window whose targets were all observed (in a wide table the window's other series stay: a sensor dead through
validation leaves the others calibrated, and its own offsets are those of every series).
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import nn

from lruts.errors import ShapeError
from lruts.forecasting.metrics import winkler
from lruts.forecasting.net import (
    ForecastEnsemble,
    LRUForecastNet,
    StreamState,
    batch_inputs,
    carry_forward,
    fill_missing,
    last_steps,
    observed_only,
)
from lruts.forecasting.net import stream_state_from_dict as net_stream_state

if TYPE_CHECKING:
    from lruts.data.batch import WindowBatch

log = logging.getLogger("lruts")

__all__ = ["CANDIDATES", "Blend", "BlendState", "Calibration", "fit_blend", "stream_state_from_dict", "track"]

CANDIDATES = ("network", "linear", "linear_per_series", "repeat_last", "seasonal_naive", "linear_levels")
SIMPLE = ("repeat_last", "seasonal_naive")  # forecasts with nothing fitted: the blend must beat them clearly
# how clearly: the blend replaces the best simple forecast only where its validation loss is lower at this
# level, by a one-sided t test over blocks of windows or a one-sided sign test over them (Evidence); a near
# random walk keeps repeat-last
EVIDENCE_LEVEL = 0.025
# fewer blocks than this and not even a blend better in every block passes the sign test (2^-n ≥ EVIDENCE_LEVEL)
SIGN_BLOCKS = math.ceil(-math.log2(EVIDENCE_LEVEL))
SCALE_EPS = 1e-6  # keeps the local scale of a flat window positive
MAX_SERIES_MAPS = 64  # above this many series only the shared linear map: one (L+1)² Gram matrix per series
# the shared map reads the known-future covariates too while its features stay within this many (a Gram of 128 MB)
MAX_SHARED_FEATURES = 4096
RIDGE_PENALTIES = tuple(10.0**k for k in range(-2, 8))  # × the Gram matrix's mean diagonal / 1e3
# the map of levels is admitted to the blend only where it beat the relative map on the training rows: each map
# refitted on the windows whose targets end before each of the last FOLDS of 2·FOLDS equal parts of the rows
FOLDS = 5
MAX_CALIBRATION_FLOATS = 2**25  # validation windows kept for the weights and residuals: ≤ 128 MB of forecasts
# the quantile tracker's step × its delay, as a fraction of the validation interval's width (module doc); one
# value for every dataset: the lowest mean interval score over the second half of each dataset's validation
# windows, the tracker replayed there from offsets fitted on the first half (docs/guide.md)
TRACKING_RATE = 0.3


class _Ring:
    """The bounds of the forecasts issued at consecutive origins (batch, H + 1, H, C, Q), origin s in slot
    s mod (H + 1), NaN where none was issued; `frontier`: the origin the next in-place write is for."""

    def __init__(self, bounds: torch.Tensor, frontier: int) -> None:
        self.bounds, self.frontier = bounds, frontier


@dataclass
class Calibration:
    """A stream's quantile tracker: the offsets now (batch, H, C, Q), and the τ-bounds of the forecasts
    issued at the last H origins, in a ring shared with the stream's later states; `t` origins have
    been issued. H + 1 slots: issuing writes the slot of origin t − H − 1, which state t no longer reads,
    so a step leaves the state it was given as it was without copying the H² bounds. A second step
    from the same state (a sibling) copies the ring first."""

    offsets: torch.Tensor
    ring: _Ring
    t: int

    @classmethod
    def start(cls, offsets: torch.Tensor, dtype: torch.dtype) -> Calibration:
        """Nothing issued yet: offsets (batch, H, C, Q); dtype: the forecasts'."""
        b, h = offsets.shape[:2]
        return cls(offsets, _Ring(offsets.new_full((b, h + 1, *offsets.shape[1:]), math.nan, dtype=dtype), 0), 0)

    @classmethod
    def from_issued(cls, offsets: torch.Tensor, issued: torch.Tensor) -> Calibration:
        """offsets (batch, H, C, Q) and the bounds of the last H forecasts (batch, H, H, C, Q), oldest first."""
        h = issued.shape[1]
        return cls(offsets, _Ring(torch.cat([issued, torch.full_like(issued[:, :1], math.nan)], dim=1), h), h)

    @property
    def horizon(self) -> int:
        return self.offsets.shape[1]

    def _slots(self, origins: torch.Tensor) -> torch.Tensor:
        """The ring's slots of these origins; a ShapeError when a later state has overwritten them."""
        self._check_current()
        return origins % (self.horizon + 1)

    def _check_current(self) -> None:
        if self.ring.frontier > self.t + 1:
            raise ShapeError(
                "this stream state was stepped past by a later state sharing its interval tracker: step the "
                "latest state, or copy.deepcopy() a state before stepping it twice"
            )

    def issued(self) -> torch.Tensor:
        """The bounds of the last H forecasts (batch, H, H, C, Q), oldest first."""
        return self.ring.bounds[:, self._slots(torch.arange(self.t - self.horizon, self.t))]

    def due(self) -> torch.Tensor:
        """The bounds for the value observed now (batch, H, C, Q): row h from the forecast issued h + 1 steps ago."""
        self._check_current()
        bounds = self.ring.bounds  # (batch, H + 1, H, C, Q)
        return bounds.flatten(1, 2).index_select(1, _due_rows(self.horizon, self.t % (self.horizon + 1), bounds.device))

    def issue(self, offsets: torch.Tensor, bounds: torch.Tensor) -> Calibration:
        """The tracker after issuing a forecast with these offsets and τ-bounds (batch, H, C, Q)."""
        ring = self.ring
        if ring.frontier != self.t:  # a sibling issued first: this branch gets its own ring
            ring = _Ring(ring.bounds[:, self._slots(torch.arange(self.horizon + 1))], self.t)  # a copy
        ring.bounds[:, self.t % (self.horizon + 1)] = bounds
        ring.frontier = self.t + 1
        return Calibration(offsets, ring, self.t + 1)


@functools.cache
def _due_rows(horizon: int, phase: int, device: torch.device) -> torch.Tensor:
    """Where Calibration.due() reads in a ring's bounds flattened to (batch, (H + 1)·H, C, Q) at an origin t with
    t mod (H + 1) = phase: step h of the forecast issued at t − 1 − h. Kept: a stream reads one every step."""
    steps = torch.arange(horizon, device=device)
    return (phase - 1 - steps) % (horizon + 1) * horizon + steps


def track(
    offsets: torch.Tensor,
    due: torch.Tensor,
    y: torch.Tensor,
    observed: torch.Tensor,
    rates: torch.Tensor,
    levels: torch.Tensor,
) -> torch.Tensor:
    """One observation's quantile-tracking update (module doc): offsets (..., H, C, Q); due (..., H, C, Q)
    the bounds that fall due now, row h from the forecast issued h + 1 steps ago (NaN: none); y (..., C)
    and observed (..., C) bool: the new value and whether it was observed; rates η (H, C); levels τ (Q,).
    A missing value, or a bound never issued, updates nothing."""
    below = (y[..., None, :, None] <= due).to(offsets.dtype)
    active = torch.isfinite(due) & observed[..., None, :, None]
    return offsets + torch.where(active, rates[..., None] * (levels - below), 0.0)


@dataclass
class BlendState:
    """A blended stream: the network's stream state, the last max(L, m) observations (batch, K, C) with
    missing ones carried forward, which series have been observed (batch, C), None while all were, and
    the quantile tracker (None: it starts from the validation offsets, as in a file saved without it)."""

    net: StreamState | object  # an ensemble's: EnsembleState
    values: torch.Tensor
    observed: torch.Tensor | None = None
    calibration: Calibration | None = None

    def to_dict(self) -> dict[str, object]:
        d = {"net": self.net.to_dict(), "values": self.values}
        if self.observed is not None:
            d["observed"] = self.observed
        if self.calibration is not None:
            d |= {"offsets": self.calibration.offsets, "issued": self.calibration.issued()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> BlendState:
        calibration = Calibration.from_issued(d["offsets"], d["issued"]) if "offsets" in d else None
        return cls(net_stream_state(d["net"]), d["values"], d.get("observed"), calibration)


def stream_state_from_dict(d: dict) -> BlendState | StreamState | object:
    """A saved stream state of a blend, a network or an ensemble."""
    return BlendState.from_dict(d) if "net" in d else net_stream_state(d)


class Blend(nn.Module):
    """A forecast network (LRUForecastNet or ForecastEnsemble) blended with simple forecasts (module doc).

    net: x (batch, L', C) → (batch, H, C, 1) point forecasts; lookback L: what the linear map reads;
    season m: the seasonal naive's period (0: none). Forward → (batch, H, C, 1 + Q)."""

    def __init__(
        self,
        net: LRUForecastNet | ForecastEnsemble,
        lookback: int,
        horizon: int,
        n_channels: int,
        season: int,
        quantiles,
    ) -> None:
        super().__init__()
        self.net = net
        self.lookback, self.horizon, self.n_channels = lookback, horizon, n_channels
        self.season = season if 0 < season <= lookback else 0
        self.quantiles = sorted(float(q) for q in quantiles)
        # ridge maps from [window − last, 1] (L + 1) to the next H steps − last: shared, and one per series; the
        # shared one also reads the future covariates of the last step and the H ahead, where the network does
        ahead = (1 + horizon) * _n_future(net)
        self.covariate_rows = ahead if lookback + 1 + ahead <= MAX_SHARED_FEATURES else 0
        self.register_buffer("shared_map", torch.zeros(lookback + 1 + self.covariate_rows, horizon))
        self.register_buffer("level_map", torch.zeros(lookback + 1, horizon))  # [window, 1] → the next H steps
        self.register_buffer(
            "series_maps", torch.zeros(n_channels if n_channels <= MAX_SERIES_MAPS else 0, lookback + 1, horizon)
        )
        weights = torch.zeros(horizon, len(CANDIDATES))
        weights[:, 0] = 1.0  # until fitted: the network alone
        self.register_buffer("weights", weights)
        self.register_buffer("offsets", torch.zeros(horizon, n_channels, len(self.quantiles)))
        self.register_buffer("adaptive", torch.tensor(True))  # conformal residuals in local scales (or raw)
        self.tracking_rate = TRACKING_RATE  # 0: the validation offsets throughout (plain split conformal)

    def _load_from_state_dict(self, state_dict, prefix, *args) -> None:
        # the first blend (format 4, 2026-12-06) had four parts, network, linear, repeat-last and seasonal
        # naive, its linear map an nn.Linear of the window − last: the shared map's [weightᵀ; bias]
        if prefix + "linear.weight" in state_dict:
            weight, bias = state_dict.pop(prefix + "linear.weight"), state_dict.pop(prefix + "linear.bias")
            state_dict[prefix + "shared_map"] = torch.cat([weight.T, bias[None]])
            state_dict.setdefault(prefix + "series_maps", torch.zeros_like(self.series_maps))
            first = state_dict[prefix + "weights"]
            weights = first.new_zeros(len(first), len(CANDIDATES))
            weights[:, [CANDIDATES.index(k) for k in ("network", "linear", "repeat_last", "seasonal_naive")]] = first
            state_dict[prefix + "weights"] = weights
        # a blend saved before the choice of units had its offsets in raw units; one saved before the map of
        # levels has neither it nor its weight (0)
        state_dict.setdefault(prefix + "adaptive", torch.tensor(False))
        state_dict.setdefault(prefix + "level_map", torch.zeros_like(self.level_map))
        shared = state_dict.get(prefix + "shared_map")  # one saved before it read the covariates: none of them
        if shared is not None and len(shared) < len(self.shared_map):
            state_dict[prefix + "shared_map"] = torch.cat(
                [shared, shared.new_zeros(len(self.shared_map) - len(shared), shared.shape[1])]
            )
        weights = state_dict.get(prefix + "weights")
        if weights is not None and weights.shape[1] < len(CANDIDATES):
            missing = weights.new_zeros(len(weights), len(CANDIDATES) - weights.shape[1])
            state_dict[prefix + "weights"] = torch.cat([weights, missing], dim=1)
        super()._load_from_state_dict(state_dict, prefix, *args)

    @property
    def head(self) -> nn.Linear:  # where the weights live (LRUForecaster._device)
        return self.net.head

    def config(self) -> dict[str, object]:
        """What rebuilds this blend around its network (a saved forecaster's "blend")."""
        return {
            "lookback": self.lookback,
            "horizon": self.horizon,
            "n_channels": self.n_channels,
            "season": self.season,
            "quantiles": self.quantiles,
        }

    # ------------------------------------------------------------------ the parts and the blend
    def candidates(
        self, x: torch.Tensor, network: torch.Tensor, *, mask: torch.Tensor | None = None, ahead=None
    ) -> torch.Tensor:
        """The K forecasts (batch, H, C, K) from the observations x (batch, T, C), T ≥ 1, and the network's;
        mask (batch, T, C) bool: False where x is missing (carried forward from the last observed value);
        ahead (batch, 1 + H, F): the future covariates of the last step and the H ahead, where the network
        reads them."""
        x = fill_missing(observed_only(x, mask, "mask"), mask)
        last = x[:, -1]
        z = ridge_features(x, self.lookback)  # (batch, C, L + 1)
        shared = (self.with_covariates(z, ahead) @ self.shared_map).transpose(1, 2) + last[:, None]
        repeat = last[:, None].expand(-1, self.horizon, -1)
        per_series = (
            torch.einsum("bci,cih->bhc", z, self.series_maps) + last[:, None] if len(self.series_maps) else repeat
        )
        parts = [network, shared, per_series, repeat]
        if self.season:
            season = last_steps(x, self.season)
            parts.append(season.repeat(1, -(-self.horizon // self.season), 1)[:, : self.horizon])
        else:
            parts.append(repeat)  # weight 0 when fitted without a season
        parts.append((level_features(x, self.lookback) @ self.level_map).transpose(1, 2))
        return torch.stack(parts, dim=-1)

    def with_covariates(self, z: torch.Tensor, ahead: torch.Tensor | None) -> torch.Tensor:
        """The shared map's features: ridge_features z (batch, C, L + 1), then the covariates ahead (batch,
        1 + H, F) flattened, where the map reads them."""
        if not self.covariate_rows:
            return z
        if ahead is None:
            raise ShapeError("this blend's linear map reads the future covariates: pass them (batch, 1 + H, F)")
        flat = ahead.reshape(len(ahead), 1, -1).to(z.dtype).expand(-1, z.shape[1], -1)
        return torch.cat([z, flat], dim=-1)

    def local_scale(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """How much each series moves now: the root mean square of its steps over the last L values,
        x (batch, T, C) → (batch, C). The conformal residuals are measured in this unit, so an interval
        widens when its series turns volatile (locally adaptive split conformal)."""
        x = last_steps(fill_missing(observed_only(x, mask, "mask"), mask), self.lookback)
        if not self.adaptive:
            return torch.ones_like(x[:, 0])
        return torch.sqrt(torch.diff(x, dim=1).pow(2).mean(dim=1) + SCALE_EPS)

    def blend(self, parts: torch.Tensor, scale: torch.Tensor, offsets: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, H, C, K), the local scale (batch, C) and the offsets ((batch,) H, C, Q; default the
        validation ones) → the point forecast and its quantiles (batch, H, C, 1 + Q)."""
        return self._with_bounds(self._point(parts), scale, offsets)

    def _point(self, parts: torch.Tensor) -> torch.Tensor:
        """(batch, H, C, K) → the blend's point forecast (batch, H, C)."""
        return (parts * self.weights[:, None]).sum(-1)

    def _with_bounds(self, point: torch.Tensor, scale: torch.Tensor, offsets: torch.Tensor | None) -> torch.Tensor:
        """The point forecast (batch, H, C) → with its quantiles (batch, H, C, 1 + Q) (see blend())."""
        point = point[..., None]
        offsets = self.offsets if offsets is None else offsets
        return torch.cat([point, point + scale[:, None, :, None] * offsets], dim=-1)

    def _stream_point(self, values: torch.Tensor, network: torch.Tensor, ahead=None) -> torch.Tensor:
        """The blend's point forecast (batch, H, C) from a stream's kept values (batch, K, C), the
        network's forecast (batch, H, C) and the covariates ahead (batch, 1 + H, F; where the shared map
        reads them): blend(candidates(...)) as one affine map of the values, since every part but the
        network's is linear in them, plus the shared map's term of the covariates. Equal up to rounding; a
        stream's step is made of small operations, and this is three instead of two dozen."""
        network_weight, maps, bias = self._folded(values)
        per_series = torch.matmul(values.permute(2, 0, 1), maps).permute(1, 2, 0)  # (C, B, K) @ (C, K, H)
        point = torch.addcmul(per_series + bias, network_weight, network)
        if self.covariate_rows:  # (batch, (1 + H)·F) @ ((1 + H)·F, H), weighted as the shared map per step
            covariates = ahead.reshape(len(ahead), -1).to(point.dtype) @ self.shared_map[self.lookback + 1 :].to(point)
            point = point + (self.weights[:, 1].to(point) * covariates)[..., None]
        return point

    def _folded(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(the network's weight (H, 1), maps (C, K, H), bias (H, C)) of _stream_point, in like's dtype and
        device, kept while the weights and linear maps hold (fit_blend and loading write them in place)."""
        maps = (self.weights, self.shared_map, self.series_maps, self.level_map)
        key = (*((t._version, t.data_ptr()) for t in maps),
               like.dtype, like.device)  # fmt: skip
        if getattr(self, "_folded_cache", (None,))[0] != key:
            self._folded_cache = (key, *(t.to(like) for t in self._fold()))
        return self._folded_cache[1:]

    def _fold(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """_folded's map in float64. Over the kept values v (K, per series) with last = v[K − 1]: linear
        forecast Σ_i (v[K − L + i] − last)·map[i] + map[L] + last; repeat-last: last; seasonal naive at step
        h: v[K − m + h mod m] (without a season: repeat-last); linear of levels Σ_i v[K − L + i]·map[i] + map[L]."""
        k, lookback, h = self._kept, self.lookback, self.horizon
        w = self.weights.double()  # (H, 6): a weight per candidate (CANDIDATES)
        maps = w.new_zeros(self.n_channels, k, h)
        bias = w.new_zeros(h, self.n_channels)

        def add_linear(ridge: torch.Tensor, weight: torch.Tensor) -> None:  # ridge (C or 1, L + 1, H)
            maps[:, k - lookback :] += weight * ridge[:, :lookback]
            maps[:, -1] += weight * (1 - ridge[:, :lookback].sum(1))
            bias.add_((weight * ridge[:, lookback]).T)

        add_linear(self.shared_map.double()[None], w[:, 1])
        if len(self.series_maps):
            add_linear(self.series_maps.double(), w[:, 2])
        else:
            maps[:, -1] += w[:, 2]
        maps[:, -1] += w[:, 3]
        if self.season:
            steps = torch.arange(h, device=w.device)
            maps[:, k - self.season + steps % self.season, steps] += w[:, 4]
        else:
            maps[:, -1] += w[:, 4]
        level = self.level_map.double()
        maps[:, k - lookback :] += w[:, 5] * level[:lookback]
        bias.add_((w[:, 5] * level[lookback])[:, None])
        return w[:, :1], maps, bias

    # ------------------------------------------------------------------ online calibration
    @property
    def rates(self) -> torch.Tensor:
        """The quantile tracker's step η (H, C): TRACKING_RATE × the validation interval's width in the
        offsets' units / the horizon step (its feedback's delay; a single quantile has no width: its
        offset stays)."""
        if len(self.quantiles) < 2:
            return self.offsets.new_zeros(self.offsets.shape[:2])
        delay = torch.arange(1, self.horizon + 1, dtype=self.offsets.dtype, device=self.offsets.device)
        return self.tracking_rate * (self.offsets[..., -1] - self.offsets[..., 0]) / delay[:, None]

    def _levels(self, like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(self.quantiles, dtype=like.dtype, device=like.device)

    def _tracking(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(rates, levels) for offsets like `like`, kept while the offsets, the rate and the dtype hold: a
        stream's step would otherwise rebuild them from scratch (half a dozen small tensors)."""
        key = (self.tracking_rate, self.offsets._version, self.offsets.data_ptr(), like.dtype, like.device)
        if getattr(self, "_tracking_cache", (None,))[0] != key:
            self._tracking_cache = (key, self.rates, self._levels(like))
        return self._tracking_cache[1:]

    def _calibrated(
        self, point: torch.Tensor, scale: torch.Tensor, calibration: Calibration | None, y=None, observed=None
    ) -> tuple[torch.Tensor, Calibration]:
        """The forecast (batch, H, C, 1 + Q) of the point forecast (batch, H, C) issued with the tracked offsets,
        after the new value y (batch, C) observed where `observed` (batch, C) bool updated them, and the tracker
        after it (a new one)."""
        if calibration is None:
            calibration = Calibration.start(self.offsets.expand(point.shape[0], *self.offsets.shape), point.dtype)
        offsets = calibration.offsets
        if y is not None:
            offsets = track(offsets, calibration.due(), y, observed, *self._tracking(offsets))
        forecast = self._with_bounds(point, scale, offsets)
        return forecast, calibration.issue(offsets, forecast[..., 1:])

    @torch.no_grad()
    def replay(self, forecast: torch.Tensor, scale: torch.Tensor, y: torch.Tensor, observed: torch.Tensor):
        """The intervals a stream issues over windows at consecutive origins of one series: forecast
        (N, H, C, 1 + Q) from the window pass, scale (N, C) their local scales, y (N, H, C) their targets,
        observed (N, H, C) bool → the forecasts with the quantiles the stream started at the first origin
        issues (the same point forecasts). Window k's value at its origin is window k − 1's first target."""
        out = forecast.clone()
        point, quantiles = out[..., :1], out[..., 1:]
        offsets, rates, levels = self.offsets, self.rates, self._levels(forecast)
        steps = torch.arange(self.horizon, device=forecast.device)
        for k in range(len(out)):
            if k:
                # the forecasts completed by the value at origin k: window k − 1 − h's at step h
                issued = k - 1 - steps
                due = quantiles[issued.clamp(min=0), steps]
                due = torch.where((issued >= 0)[:, None, None], due, math.nan)
                offsets = track(offsets, due, y[k - 1, 0], observed[k - 1, 0], rates, levels)
            quantiles[k] = point[k] + scale[k][None, :, None] * offsets
        return out

    def forward(self, x: torch.Tensor, **inputs: torch.Tensor) -> torch.Tensor:
        """x (batch, T, C) and the network's mask and covariates (LRUForecastNet.forward) → (batch, H, C, 1 + Q)."""
        mask = inputs.get("mask")
        parts = self.candidates(x, self.net(x, **inputs)[..., 0], mask=mask, ahead=_ahead(inputs, x.shape[1]))
        return self.blend(parts, self.local_scale(x, mask))

    # ------------------------------------------------------------------ stream mode
    @property
    def _kept(self) -> int:
        return max(self.lookback, self.season)

    def stream_from(self, history: torch.Tensor, **inputs: torch.Tensor) -> tuple[torch.Tensor, BlendState]:
        """history (batch, T, C) and the network's mask and covariates (LRUForecastNet.stream_from)."""
        out, state = self.net.stream_from(history, **inputs)
        mask = inputs.get("mask")
        values = last_steps(fill_missing(observed_only(history, mask, "mask"), mask), self._kept).clone()
        observed = None if mask is None else mask.any(dim=1)
        point = self._point(self.candidates(values, out[..., 0], ahead=_ahead(inputs, history.shape[1])))
        forecast, calibration = self._calibrated(point, self.local_scale(values), None)
        return forecast, BlendState(state, values, observed, calibration)

    def step(
        self, x_t: torch.Tensor, state: BlendState | None, stack_step=None, **inputs: torch.Tensor | None
    ) -> tuple[torch.Tensor, BlendState]:
        """Advance by one observation x_t (batch, C), with the network's mask_t and covariates
        (LRUForecastNet.step): the network's step, the last observations and the quantile tracker."""
        out, net_state = self.net.step(x_t, None if state is None else state.net, stack_step, **inputs)
        mask_t = inputs.get("mask_t")
        if state is None:
            # before the first observation: the first one (a missing one: 0 until its first observed value)
            first = x_t if mask_t is None else torch.where(mask_t, x_t, 0.0)
            state = BlendState(
                None, first[:, None].expand(-1, self._kept, -1), None if mask_t is None else torch.zeros_like(mask_t)
            )
        elif state.values.shape[1:] != (self._kept, x_t.shape[1]):
            raise ShapeError(f"stream state {tuple(state.values.shape)} does not belong to this forecaster")
        seen = torch.isfinite(x_t) if mask_t is None else mask_t & torch.isfinite(x_t)
        y_t = x_t
        values, x_t, observed = carry_forward(state.values, state.observed, x_t, mask_t)
        values = torch.cat([values[:, 1:], x_t[:, None]], dim=1)
        point, scale = self._stream_point(values, out[..., 0], inputs.get("future")), self.local_scale(values)
        forecast, calibration = self._calibrated(point, scale, state.calibration, y_t, seen)
        return forecast, BlendState(net_state, values, observed, calibration)


# ---------------------------------------------------------------------- fitting
@torch.no_grad()
def fit_blend(blend: Blend, train_set, val_set, batch_size: int = 256) -> dict[str, object]:
    """Fit the linear forecast on `train_set`, then the weights and the conformal offsets on `val_set`
    (window datasets whose `__getitems__` give WindowBatches of the blend's lookback, or longer).
    Returns what was chosen: the ridge penalties, the weights per step, the validation MSE of each part."""
    blend.eval()
    device = blend.weights.device
    penalties, folds = _fit_linear(blend, train_set, val_set, batch_size, device)
    usable = _usable(blend)
    if not folds["admitted"]:
        log.info(
            "the map of levels is left out of the blend: %s",
            f"refitted on the training rows before each of {len(folds['levels'])} later parts of them, its squared "
            f"error was {sum(folds['levels']) / sum(folds['relative']):.1%} of the relative map's" if folds["levels"]
            else "the training rows hold no later part to compare it with the relative map on (too short, or flat)",
        )  # fmt: skip
        usable[CANDIDATES.index("linear_levels")] = False
    # (N, H, C, K), (N, H, C), (N, C)
    parts, y, scale, spacing, seen = _calibration_windows(blend, val_set, batch_size, device)
    weights = simplex_least_squares(parts, y, usable=usable)
    blocks = _blocks(len(y), blend.horizon, spacing)
    evidence = _evidence_against_the_simple_forecasts(blend, parts, y, weights, blocks, folds)
    if not evidence.trusted:
        _report_untrusted(evidence)
        weights = torch.zeros_like(weights)
        weights[:, evidence.simple] = 1.0
    blend.weights.copy_(weights)
    residual = _unseen_as_nan(y - (parts * weights[:, None]).sum(-1), seen)
    if blend.quantiles:
        # fitted weights are calibrated on residuals they were not fitted on (_out_of_block_residuals); a simple
        # forecast has nothing fitted: its residuals on the training windows are as honest as on validation's,
        # and they span years where validation spans months (one window's worth at long horizons)
        if evidence.trusted:
            _fit_offsets(blend, _unseen_as_nan(_out_of_block_residuals(parts, y, usable, blocks), seen), scale)
        else:
            _fit_offsets(blend, residual, scale, _residuals(blend, train_set, batch_size, device))
    part_mse = ((parts - y[..., None]) ** 2).sum(dim=(0, 1, 2)) / (seen.sum() * blend.horizon)
    return {
        "val_mse_blend": float(residual.pow(2).nanmean()),  # what registration compares for a blended forecaster
        "ridge_penalties": penalties,
        # the relative map's and the map of levels' squared errors on the later parts of the training rows
        "training_folds": folds,
        "weights": {name: [round(float(w), 4) for w in weights[:, k]] for k, name in enumerate(CANDIDATES)},
        "val_mse": {name: float(part_mse[k]) for k, name in enumerate(CANDIDATES) if _usable(blend)[k]},
        "calibration_windows": int(y.shape[0]),
        # the blend's loss minus the best simple forecast's, over blocks of windows (Evidence)
        "t_against_simple": evidence.t,
        "t_steps": evidence.steps,  # the horizon steps compared (H, or the first ones validation spans twice)
        "blocks_better": [evidence.better, evidence.blocks],
        "history_parts_better": [evidence.history_better, evidence.history_parts],  # the relative map's (Evidence)
    }


def _fit_offsets(blend: Blend, residual: torch.Tensor, scale: torch.Tensor, earlier=None) -> None:
    """The conformal offsets from the validation residuals (N, H, C), in the series' local scales (N, C) or
    raw, whichever gives the lower interval score on validation (both cover as asked there). Given the
    residuals and scales of earlier windows (a simple forecast's on the training windows), the unit is chosen
    out of sample, by the score on validation of the offsets the earlier windows give, and the offsets are
    the quantiles of both."""
    levels = torch.tensor(blend.quantiles, dtype=residual.dtype, device=residual.device)

    def offsets_in(adaptive: bool, r: torch.Tensor, s: torch.Tensor) -> torch.Tensor:  # (H, C, Q)
        return _sample_quantiles(r / (s if adaptive else torch.ones_like(s))[:, None], levels).permute(1, 2, 0)

    def score(adaptive: bool, offsets: torch.Tensor) -> float:
        bounds = (scale if adaptive else torch.ones_like(scale))[:, None, :, None] * offsets  # (N, H, C, Q)
        seen = ~torch.isnan(residual)  # a missing target has no residual
        lower, upper, target = (t[seen].cpu().numpy() for t in (bounds[..., 0], bounds[..., -1], residual))
        return winkler(lower, upper, target, float(levels[-1] - levels[0]))

    fit_on = (residual, scale) if earlier is None else earlier
    adaptive = min((True, False), key=lambda a: score(a, offsets_in(a, *fit_on)))
    if earlier is not None:
        residual, scale = (torch.cat([e, v]) for e, v in zip(earlier, (residual, scale), strict=True))
    blend.adaptive.fill_(adaptive)
    blend.offsets.copy_(offsets_in(adaptive, residual, scale))


def _sample_quantiles(r: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """The τ-quantiles of n samples along the first axis at the plotting positions k/(n + 1) (Hyndman & Fan's
    type 6): the k-th smallest of n exchangeable residuals lies below a fresh one with probability k/(n + 1),
    so an interval between these quantiles covers a fresh residual with the nominal probability on average,
    the finite-sample step of split conformal (its rank ⌈(n + 1)(1 − α)⌉). torch.quantile's positions
    (k − 1)/(n − 1) make a narrower interval: an 80% one from 24 residuals covers 74%.

    r (N, H, C) may hold NaN for a window's series whose targets were not all observed (_unseen_as_nan): each
    series' quantiles are then over its own windows, and a series with none takes those of every series'."""
    if bool(torch.isnan(r).any()):
        everyone = r.transpose(1, 2).reshape(-1, r.shape[1])  # (N·C, H)
        everyone = _sample_quantiles(everyone[~torch.isnan(everyone).any(dim=1)], levels)  # (Q, H)
        series = []
        for c in range(r.shape[2]):
            own = r[:, :, c][~torch.isnan(r[:, :, c]).any(dim=1)]
            series.append(_sample_quantiles(own, levels) if len(own) else everyone)
        return torch.stack(series, dim=-1)
    n = r.shape[0]
    at = ((n + 1) * levels - 1) / (n - 1) if n > 1 else levels
    return torch.quantile(r, at.clamp(0, 1), dim=0)


class Evidence(NamedTuple):
    """How the blend compares with the best simple forecast on validation, over blocks of windows."""

    simple: int  # the best simple forecast's index in CANDIDATES
    t: float  # the t statistic of the blend's mean squared-error difference to it
    steps: int  # the horizon steps compared (H, or the first ones validation spans twice)
    better: int  # blocks in which the blend's loss is lower
    blocks: int
    # the later parts of the training rows in which the relative map, refitted on the windows before each, beat
    # the same simple forecast (_RollingFolds), and how many parts were scored
    history_better: int = 0
    history_parts: int = 0

    @property
    def trusted(self) -> bool:
        """Validation holds one stretch of the series, the training rows' later parts hold others: the blend
        is trusted where validation shows it better and the history does not say otherwise, or where the
        history shows it and validation agrees.
        - The history says otherwise where the relative map lost to the simple forecast in more of its parts
          than it won: a stock's validation months are one regime (a trend, a calm spell) that every block
          of them shares, and a fit that bets on it loses on the next.
        - The history shows it where validation holds too few blocks for its sign test to pass at all (a few
          years of weekly data hold 2 or 3): validation as one block, the blend better there on average,
          and the parts as more, the relative map better there, pass the same sign test (FOLDS parts:
          better in all of them). Not where validation could have shown it and did not: a stock's
          relative map beats repeat-last in all five parts about once in 32 fits by chance alone."""
        lost = self.history_parts - self.history_better
        history = (
            self.blocks < SIGN_BLOCKS
            and self.t < 0
            and _sign_test(self.history_better + 1, self.history_parts + 1) < EVIDENCE_LEVEL
        )
        return (self.shown_on_validation and lost <= self.history_better) or history

    @property
    def shown_on_validation(self) -> bool:
        """The blend's loss is lower at EVIDENCE_LEVEL by a one-sided t test over the blocks (Student's t with
        blocks − 1 degrees of freedom: with 2 blocks t must reach −12.7, with 30 about −2.05), or in so many
        blocks that a one-sided sign test rejects "no better" (one block's far larger gain, a holiday week the
        simple forecast misses, inflates the t statistic's standard error but not this)."""
        return (
            _t_test(self.t, self.blocks - 1) < EVIDENCE_LEVEL or _sign_test(self.better, self.blocks) < EVIDENCE_LEVEL
        )


def _report_untrusted(evidence: Evidence) -> None:
    """Tell the user the forecast is a simple one, and why: at INFO where validation could have shown better
    (a random walk's repeat-last is the right forecast) or the history said otherwise, as a WARNING where
    validation holds too few blocks of windows for its test to pass at all and the history did not show it
    either (a short history: the fitted parts may be better, but unproven)."""
    simple = CANDIDATES[evidence.simple]
    history = f"{evidence.history_better} of {evidence.history_parts} later parts of the training rows"
    if evidence.blocks == 0:
        log.warning(
            "the forecast is %s alone: validation holds fewer than two windows (lookback + horizon), too few to "
            "compare the fitted parts with it; a longer history, or a larger val_fraction, gives it more",
            simple,
        )
        return
    if evidence.shown_on_validation:
        log.info(
            "the forecast is %s alone: on validation the fitted parts were better (t = %.2f over %d blocks of "
            "windows, better in %d), but the relative map, refitted before each, beat it in only %s: the "
            "validation stretch rewarded what the history does not",
            simple, evidence.t, evidence.blocks, evidence.better, history,
        )  # fmt: skip
        return
    few = evidence.blocks < SIGN_BLOCKS
    log.log(
        logging.WARNING if few else logging.INFO,
        "the forecast is %s alone: on validation the fitted parts were not better beyond sampling error "
        "(t = %.2f over %d blocks of windows, better in %d)%s%s",
        simple, evidence.t, evidence.blocks, evidence.better,
        f"; the relative map, refitted before each, beat it in {history}, not all"
        if evidence.history_parts else "",
        f"; {evidence.blocks} blocks are too few to tell (the test needs {SIGN_BLOCKS} or more): a longer "
        "history, or a larger val_fraction, gives it more" if few else "",
    )  # fmt: skip


def _t_test(t: float, df: int) -> float:
    """P(T ≤ t) for Student's t with `df` degrees of freedom (the one-sided p-value of a negative t), exact
    by the finite sums of Abramowitz & Stegun 26.7.3–4; NaN without a degree of freedom or a statistic."""
    if df < 1 or math.isnan(t):
        return math.nan
    theta = math.atan(t / math.sqrt(df))
    c, term, total = math.cos(theta) ** 2, 1.0, 1.0
    for k in range(1, (df - 1) // 2 + (df % 2 == 0)):  # the cos² series: (df − 3)/2 terms if odd, (df − 2)/2 if even
        term *= c * ((2 * k) / (2 * k + 1) if df % 2 else (2 * k - 1) / (2 * k))
        total += term
    if df % 2:  # P(|T| ≤ t) for odd df
        both = 2 / math.pi * (theta + (math.sin(theta) * math.cos(theta) * total if df > 1 else 0.0))
    else:
        both = math.sin(theta) * total
    return (1 + both) / 2


def _sign_test(better: int, blocks: int) -> float:
    """P(at least `better` of `blocks` fair coin flips come up heads)."""
    return sum(math.comb(blocks, k) for k in range(better, blocks + 1)) / 2.0**blocks


def _evidence_against_the_simple_forecasts(
    blend: Blend, parts, y, weights, blocks: tuple[int, int, int], folds
) -> Evidence:
    """The blend against the best simple forecast on validation (repeat-last or seasonal naive). Windows
    overlap, so their losses are correlated: they are compared over the means of blocks of windows that
    together span ≥ H steps. Where validation spans fewer than two such blocks the comparison is over the
    first steps of the horizon that two blocks do span: a blend that cannot beat the simple forecast at the
    lead times validation can resolve is not trusted beyond them, and one that clearly does keeps its
    weights (fitted per step on the same windows) at every step. Beside it, the history's verdict on the
    relative map against the same simple forecast (`folds`: _RollingFolds.errors). blocks: _blocks."""
    usable = _usable(blend)
    simple = [k for k, name in enumerate(CANDIDATES) if name in SIMPLE and usable[k]]
    loss = ((parts - y[..., None]) ** 2).mean(dim=2)  # (N, H, K) per window and step
    blended = (((parts * weights[:, None]).sum(-1) - y) ** 2).mean(dim=2)  # (N, H)
    steps, per_block, n_blocks = blocks
    if steps < 1:
        return Evidence(min(simple, key=lambda k: float(loss[..., k].mean())), math.nan, 0, 0, 0)
    loss, blended = loss[:, :steps].mean(1), blended[:, :steps].mean(1)
    best = min(simple, key=lambda k: float(loss[:, k].mean()))
    diff = (blended - loss[:, best]).double()
    means = diff[: n_blocks * per_block].reshape(n_blocks, per_block).mean(1)
    better, sd = int((means < 0).sum()), float(means.std())
    # no verdict where the lookback holds no season (seasonal naive then reads values the map's features lack)
    simple_errors = folds["simple"].get(CANDIDATES[best])
    history = (
        (sum(r < e for r, e in zip(folds["relative"], simple_errors, strict=True)), len(simple_errors))
        if simple_errors is not None
        else (0, 0)
    )
    mean = float(means.mean())
    t = (-math.inf if mean < 0 else math.inf) if sd == 0 else mean / (sd / math.sqrt(n_blocks))
    return Evidence(best, t, steps, better, n_blocks, *history)


def _blocks(n_windows: int, horizon: int, spacing: float) -> tuple[int, int, int]:
    """Validation's windows (n, `spacing` steps apart) in blocks: the horizon steps two blocks span (H, or
    fewer on a short validation), the windows per block (spanning those steps) and the whole blocks."""
    steps = min(horizon, int(n_windows // 2 * spacing))
    per_block = max(1, math.ceil(steps / spacing))
    return steps, per_block, n_windows // per_block


def _out_of_block_residuals(parts, y, usable: list[bool], blocks: tuple[int, int, int]) -> torch.Tensor:
    """The blend's residuals (N, H, C) on each block of validation windows under weights fitted on the
    other blocks (cross-fitting, as K-fold CV+: Barber, Candès, Ramdas & Tibshirani 2021). Split conformal
    needs residuals the forecast was not fitted on; the weights are fitted per horizon step on validation,
    and on a short validation (two blocks of a monthly series: 24 windows for up to six weights per step)
    their own residuals are too small, and the interval too narrow, by what the fit absorbed. With many
    blocks each fold's weights are the blend's nearly, and so are the residuals. Windows at a block's edge
    share target steps with the next block's: the folds are contiguous so that only those do."""
    _, per_block, n_blocks = blocks
    block = (torch.arange(len(y), device=y.device) // per_block).clamp(max=n_blocks - 1)
    normal = [_normal_equations(parts[block == b], y[block == b]) for b in range(n_blocks)]
    gram, cross = (sum(e[i] for e in normal) for i in (0, 1))
    residual = torch.empty_like(y)
    for b, (g, c) in enumerate(normal):
        w = _simplex(gram - g, cross - c, usable).to(parts.dtype)
        residual[block == b] = y[block == b] - (parts[block == b] * w[:, None]).sum(-1)
    return residual


def _n_future(net) -> int:
    """How many future covariates a network (or an ensemble's first member) reads."""
    net = net.members[0] if isinstance(net, ForecastEnsemble) else net
    return getattr(getattr(net, "cfg", None), "n_future", 0)


def _ahead(inputs: dict, steps: int) -> torch.Tensor | None:
    """The future covariates of a window's last step and of the H after it, from a network's inputs whose
    "future" covers the window's `steps` and the H ahead (None without covariates)."""
    future = inputs.get("future")
    return None if future is None else future[:, steps - 1 :]


def _usable(blend: Blend) -> list[bool]:
    return [True, True, len(blend.series_maps) > 0, True, bool(blend.season), True]


def _batches(dataset, batch_size: int, indices=None):
    indices = list(range(len(dataset))) if indices is None else indices
    for start in range(0, len(indices), batch_size):
        batch: WindowBatch = dataset.__getitems__(indices[start : start + batch_size])
        yield batch


def level_features(x: torch.Tensor, lookback: int) -> torch.Tensor:
    """[the last L values, 1] per series: x (batch, T, C) → (batch, C, L + 1)."""
    z = last_steps(x, lookback).transpose(1, 2)
    return torch.cat([z, torch.ones_like(z[..., :1])], dim=-1)


def ridge_features(x: torch.Tensor, lookback: int) -> torch.Tensor:
    """[the last L values − the last value, 1] per series: level_features relative to the last value."""
    z = level_features(x, lookback)
    z[..., :-1] -= x[:, -1, :, None]
    return z


def best_ridge(gram: torch.Tensor, cross: torch.Tensor, val_gram: torch.Tensor, val_cross: torch.Tensor):
    """The ridge solution W of (Gram matrix, cross products) of the training windows whose validation error
    tr(WᵀG_vW) − 2tr(WᵀR_v) is the smallest over RIDGE_PENALTIES (× the Gram matrix's mean diagonal / 1e3),
    and its penalty. The intercept (the features' last column) is penalised too: a drift learnt on the
    training years is the first thing to go wrong on a random walk, where the heaviest penalty leaves
    repeat-last."""
    best = (math.inf, None, None)
    for p in RIDGE_PENALTIES:
        w = ridge(gram, cross, p)
        err = float((w * (val_gram @ w)).sum() - 2 * (w * val_cross).sum())
        if err < best[0]:
            best = (err, w, p)
    return best[1], best[2]


def ridge(gram: torch.Tensor, cross: torch.Tensor, penalty: float) -> torch.Tensor:
    """(G + penalty × G's mean diagonal / 1e3 · I)⁻¹ R: the ridge solution at one of RIDGE_PENALTIES. The
    mean over the window's features; a flat series varies in none of them (only the constant does), and a
    set of windows none of whose targets were all observed in nothing: then the penalty's unit is the
    constant's, or 1, and the map is zero where there was nothing to fit."""
    d = gram.diagonal()
    unit = d[:-1].mean() if d[:-1].any() else d.mean() if d.any() else 1.0
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device) * (unit / 1e3)
    return torch.linalg.solve(gram + penalty * eye, cross)


def _fit_linear(blend: Blend, train_set, val_set, batch_size: int, device) -> tuple[dict, dict]:
    """Ridge regression of y − last on ridge_features, one map shared by the series and one per series, and
    of y on [window, 1] shared by the series (the map of levels), each penalty chosen by validation MSE
    (computed from validation Gram matrices: no pass per penalty). Returns the penalties, and the training
    rows' verdict on whether the map of levels is admitted to the blend (`_RollingFolds.errors`)."""
    folds = _RollingFolds()

    def grams(dataset, folded: bool = False):
        c, size, wide = blend.n_channels, blend.lookback + 1, len(blend.shared_map)
        gram = torch.zeros(c, size, size, dtype=torch.float64, device=device)
        cross = torch.zeros(c, size, blend.horizon, dtype=torch.float64, device=device)
        if blend.covariate_rows:  # the shared map's own sums, with the covariates (else the per-series ones summed)
            shared_gram = torch.zeros(wide, wide, dtype=torch.float64, device=device)
            shared_cross = torch.zeros(wide, blend.horizon, dtype=torch.float64, device=device)
        level_gram = torch.zeros(size, size, dtype=torch.float64, device=device)
        level_cross = torch.zeros(size, blend.horizon, dtype=torch.float64, device=device)
        for first, batch in zip(range(0, len(dataset), batch_size), _batches(dataset, batch_size), strict=True):
            batch = batch.to(device)
            x = fill_missing(observed_only(batch.x, batch.mask, "mask"), batch.mask).double()
            last, y = x[:, -1:].transpose(1, 2), batch.y.double().transpose(1, 2)  # (B, C, 1), (B, C, H)
            z, t = ridge_features(x, blend.lookback), y - last
            shared = blend.with_covariates(z, _ahead(batch_inputs(batch), x.shape[1]))
            levels = level_features(x, blend.lookback)
            if batch.y_mask is not None:  # a series' window counts only where all its targets were observed
                keep = batch.y_mask.all(dim=1)[..., None].double()  # (B, C, 1)
                z, t, levels, y = z * keep, torch.nan_to_num(t) * keep, levels * keep, torch.nan_to_num(y) * keep
                shared = shared * keep
            gram += torch.einsum("bci,bcj->cij", z, z)
            cross += torch.einsum("bci,bch->cih", z, t)
            if blend.covariate_rows:
                shared_gram += torch.einsum("bci,bcj->ij", shared, shared)
                shared_cross += torch.einsum("bci,bch->ih", shared, t)
            level_gram += torch.einsum("bci,bcj->ij", levels, levels)
            level_cross += torch.einsum("bci,bch->ih", levels, y)
            if folded:
                where = dataset.target_position(range(first, first + len(batch.x)))
                folds.add(torch.as_tensor(where, device=device), {"relative": (shared, t), "levels": (levels, y)})
        if not blend.covariate_rows:
            shared_gram, shared_cross = gram.sum(0), cross.sum(0)
        return gram, cross, shared_gram, shared_cross, level_gram, level_cross

    gram, cross, shared_gram, shared_cross, level_gram, level_cross = grams(train_set, folded=True)
    val_gram, val_cross, val_shared_gram, val_shared_cross, val_level_gram, val_level_cross = grams(val_set)

    shared, penalty = best_ridge(shared_gram, shared_cross, val_shared_gram, val_shared_cross)
    blend.shared_map.copy_(shared)
    level_map, level_penalty = best_ridge(level_gram, level_cross, val_level_gram, val_level_cross)
    blend.level_map.copy_(level_map)
    penalties = []
    for c in range(len(blend.series_maps)):
        w, p = best_ridge(gram[c], cross[c], val_gram[c], val_cross[c])
        blend.series_maps[c].copy_(w)
        penalties.append(p)
    errors = folds.errors({"relative": penalty, "levels": level_penalty}, _simple_maps(blend))
    return {"shared": penalty, "per_series": penalties, "levels": level_penalty}, errors


class _RollingFolds:
    """The relative map against the map of levels on the training rows, before validation weighs them.

    Validation holds one stretch of the series: a random walk that happens to wander back towards earlier
    levels there rewards the map of levels in every block of validation windows alike (one event, shared by
    all of them), and no test over those blocks sees through it; on a later stretch the walk wanders
    elsewhere and the map costs what repeat-last would not (benchmarks/random_walks.py: +32% at L 336, H 96).
    A series that reverts does so on every stretch. So each map, at the penalty validation chose for it, is
    refitted on the windows whose targets end before each of the last FOLDS of 2·FOLDS equal parts of each
    series' training rows, and scored on the windows whose targets begin in that part; the map of levels is
    admitted where its squared error summed over the parts is no larger than the relative map's. The same
    parts score repeat-last and seasonal naive against the relative map, the history's word in `Evidence`.
    Gram matrices per part, summed in the pass over the training windows that fits the maps."""

    def __init__(self) -> None:
        self.sums: dict[tuple[str, str, int], list[torch.Tensor]] = {}  # (role, map, part) → [Gram, cross, Σt²]

    def add(self, where: torch.Tensor, pairs: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """where (B, 2): each window's targets' first and last row, as fractions of its series' rows;
        pairs: map → (features (B, C, L + 1), targets (B, C, H)), zero where a target is missing."""
        part = (where * 2 * FOLDS).long().clamp(max=2 * FOLDS - 1)
        for role, column, wanted in (("scored", 0, range(FOLDS, 2 * FOLDS)), ("fitted", 1, range(2 * FOLDS - 1))):
            for k in set(part[:, column].tolist()) & set(wanted):
                rows = part[:, column] == k
                for name, (z, t) in pairs.items():
                    z, t = z[rows], t[rows]
                    sums = (torch.einsum("bci,bcj->ij", z, z), torch.einsum("bci,bch->ih", z, t), t.square().sum())
                    have = self.sums.setdefault((role, name, k), [torch.zeros_like(v) for v in sums])
                    for total, v in zip(have, sums, strict=True):
                        total += v

    def _total(self, role: str, name: str, parts) -> list[torch.Tensor] | None:
        have = [self.sums[(role, name, k)] for k in parts if (role, name, k) in self.sums]
        return [sum(v) for v in zip(*have, strict=True)] if have else None

    def errors(self, penalties: dict[str, float], simple: dict[str, torch.Tensor]) -> dict[str, object]:
        """Each map's squared error per part it was scored on, and whether the map of levels is admitted (not
        where no part could be scored: a history too short to tell); beside them, on the same parts, those of
        the simple forecasts, given as fixed maps of the relative map's features (`simple`: name → (F, H))."""
        out: dict[str, object] = {name: [] for name in penalties}
        out["simple"] = {name: [] for name in simple}
        for k in range(FOLDS, 2 * FOLDS):
            sums = {n: (self._total("fitted", n, range(k)), self._total("scored", n, [k])) for n in penalties}
            if any(f is None or s is None or not f[0].diagonal()[:-1].any() for f, s in sums.values()):
                continue
            for name, ((gram, cross, _), scored) in sums.items():
                out[name].append(_squared_error(ridge(gram, cross, penalties[name]), *scored))
            for name, w in simple.items():
                out["simple"][name].append(_squared_error(w, *sums["relative"][1]))
        out["admitted"] = bool(out["levels"]) and sum(out["levels"]) <= sum(out["relative"])
        return out


def _squared_error(w: torch.Tensor, gram: torch.Tensor, cross: torch.Tensor, tt: torch.Tensor) -> float:
    """Σ (t − zW)² from the sums Σ zzᵀ, Σ ztᵀ and Σ t² of the windows scored."""
    return float((w * (gram @ w)).sum() - 2 * (w * cross).sum() + tt)


def _simple_maps(blend: Blend) -> dict[str, torch.Tensor]:
    """Repeat-last and seasonal naive as maps of the relative map's features (the last L values − the last
    value, 1, then any covariates), whose targets are relative to the last value: repeat-last the zero map,
    seasonal naive step h the value one season earlier (where the lookback holds a season)."""
    like = {"dtype": torch.float64, "device": blend.shared_map.device}  # as the folds' Gram sums
    shape = (len(blend.shared_map), blend.horizon)
    maps = {"repeat_last": torch.zeros(shape, **like)}
    if 0 < blend.season <= blend.lookback:
        seasonal = torch.zeros(shape, **like)
        h = torch.arange(blend.horizon, device=blend.shared_map.device)
        seasonal[blend.lookback - blend.season + h % blend.season, h] = 1.0
        maps["seasonal_naive"] = seasonal
    return maps


def _residuals(blend: Blend, dataset, batch_size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The fitted blend's residuals (N, H, C) and local scales (N, C) on `dataset`'s windows (as
    _calibration_windows keeps them); the network is not run when its weight is 0."""
    network = bool(blend.weights[:, 0].any())
    parts, y, scale, _, seen = _calibration_windows(blend, dataset, batch_size, device, network=network)
    return _unseen_as_nan(y - blend._point(parts), seen), scale


def _unseen_as_nan(residual: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """Residuals (N, H, C) with NaN where the window's series had a missing target (seen (N, C) False)."""
    return residual if bool(seen.all()) else torch.where(seen[:, None], residual, math.nan)


def _calibration_windows(blend: Blend, val_set, batch_size: int, device, network: bool = True):
    """The parts' forecasts (N, H, C, K), the targets (N, H, C) and the local scales (N, C) on validation
    windows evenly spread over the split (all of them while they fit in MAX_CALIBRATION_FLOATS), the spacing
    of the windows in steps, and which series' targets were all observed in each window (N, C). A series
    with a missing target is 0 in both that window's parts and targets, so it adds nothing to the weights'
    least squares or the evidence's losses (its residuals: _unseen_as_nan); a window with none left out.
    network=False: zeros in the network's place."""
    n = len(val_set)
    per_window = blend.horizon * blend.n_channels * (len(CANDIDATES) + 1)
    keep = max(1, min(n, MAX_CALIBRATION_FLOATS // per_window))
    indices = sorted({round(i * (n - 1) / max(keep - 1, 1)) for i in range(keep)}) if keep < n else None
    spacing = (n - 1) / max(keep - 1, 1) if indices is not None else 1.0
    parts, targets, scales, seen = [], [], [], []
    for batch in _batches(val_set, batch_size, indices):
        batch = batch.to(device)
        inputs = batch_inputs(batch)
        net = blend.net(batch.x, **inputs)[..., 0] if network else batch.x.new_zeros(batch.y.shape)
        ahead = _ahead(inputs, batch.x.shape[1])
        p, y = blend.candidates(batch.x, net, mask=batch.mask, ahead=ahead), batch.y
        observed = torch.ones_like(y[:, 0], dtype=torch.bool) if batch.y_mask is None else batch.y_mask.all(dim=1)
        keep = observed.any(dim=1)
        observed = observed[keep]
        parts.append(torch.where(observed[:, None, :, None], p[keep], 0.0))
        targets.append(torch.where(observed[:, None], y[keep], 0.0))
        scales.append(blend.local_scale(batch.x, batch.mask)[keep])
        seen.append(observed)
    return torch.cat(parts), torch.cat(targets), torch.cat(scales), spacing, torch.cat(seen)


def simplex_least_squares(parts: torch.Tensor, y: torch.Tensor, usable: list[bool]) -> torch.Tensor:
    """Per horizon step h, the w ≥ 0 with Σw = 1 minimising Σ (Σ_k w_k parts[..., h, :, k] − y)²; parts
    (N, H, C, K), y (N, H, C) → (H, K). Exact: the best over every active set of the usable parts (the
    equality-constrained least squares of each set, kept where it is non-negative)."""
    return _simplex(*_normal_equations(parts, y), usable)


def _normal_equations(parts: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per horizon step, the Gram matrix (H, K, K) of the parts' forecasts and their cross products with the
    targets (H, K), in double precision: what the weights' least squares reads, summable over windows."""
    p = parts.double().transpose(0, 1).reshape(parts.shape[1], -1, parts.shape[-1])  # (H, N·C, K)
    t = y.double().transpose(0, 1).reshape(y.shape[1], -1)  # (H, N·C)
    return p.transpose(1, 2) @ p, (p * t[..., None]).sum(1)


def _simplex(gram: torch.Tensor, cross: torch.Tensor, usable: list[bool]) -> torch.Tensor:
    """simplex_least_squares from the normal equations (H, K, K), (H, K)."""
    k_all = [k for k, ok in enumerate(usable) if ok]
    best = torch.full(cross.shape[:1], math.inf, dtype=torch.float64, device=cross.device)
    weights = torch.zeros_like(cross)
    for size in range(1, len(k_all) + 1):
        for subset in itertools.combinations(k_all, size):
            w = _equality_constrained(gram[:, subset][:, :, subset], cross[:, subset])  # (H, |S|)
            full = torch.zeros_like(weights)
            full[:, list(subset)] = w
            objective = (full[:, None] @ gram @ full[..., None])[:, 0, 0] - 2 * (full * cross).sum(-1)
            better = (w >= -1e-12).all(-1) & (objective < best)
            best = torch.where(better, objective, best)
            weights = torch.where(better[:, None], full.clamp(min=0), weights)
    return (weights / weights.sum(-1, keepdim=True)).float()


def _equality_constrained(gram: torch.Tensor, cross: torch.Tensor) -> torch.Tensor:
    """argmin wᵀGw − 2cᵀw subject to Σw = 1, batched over the first axis: the KKT system. Two equal forecasts
    (the shared and the per-series map of one series) make G singular: a ridge of 1e-9 × its mean diagonal
    (at least 1e-9) keeps the system solvable (an absolute one vanishes in rounding where values are large)."""
    h, k = cross.shape
    ridge = 1e-9 * gram.diagonal(dim1=1, dim2=2).mean(-1).clamp(min=1.0)[:, None, None]
    kkt = torch.zeros(h, k + 1, k + 1, dtype=gram.dtype, device=gram.device)
    kkt[:, :k, :k] = 2 * gram + ridge * torch.eye(k, dtype=gram.dtype, device=gram.device)
    kkt[:, :k, k] = 1
    kkt[:, k, :k] = 1
    rhs = torch.cat([2 * cross, torch.ones(h, 1, dtype=gram.dtype, device=gram.device)], dim=1)
    return torch.linalg.solve(kkt, rhs)[:, :k]
