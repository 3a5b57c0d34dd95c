"""The LRU encoder-forecaster: lookback L in, horizon H out, a direct multi-horizon head.

    x: (batch, L, C) scaled values  →  forecast: (batch, H, C)  [and quantiles: (batch, H, C, Q)]

Pieces (each an option; defaults chosen on validation splits, see docs/experiments.md):
- normalisation
    "anchor": the network reads first differences x_t − x_{t−1} and forecasts the change from the
              last observed value: ŷ_{t+h} = x_t + f_h(...). Level-invariant, like RevIN/NLinear
              (f(x + c) = f(x) + c), and every input step is fixed once observed, so a stream can be
              advanced one observation at a time exactly (`step`).
    "revin":  per-window instance normalisation (mean/std of the lookback, learnable affine),
              undone on the output. Window statistics change with every new observation, so a
              stream must recompute the window: `step` is not available.
    "none":   the scaled values as they are.
- channel_independent: each variable is its own sequence through one shared network (PatchTST);
  otherwise all C variables are mixed in one sequence.
- segment P: the input is cut into non-overlapping patches of P steps aligned with the last
  observation (the first patch zero-padded at the front), each linearly projected to one token, so
  the LRU runs L/P steps instead of L (SegRNN/PatchTST). A stream keeps P states, one per patch
  alignment: each new observation completes exactly one alignment's patch, so advancing costs one
  stack step whatever the history's length, and equals re-running the window over the whole history.
- The body is a DeepLRU; its last output feeds a linear head with H (× C when mixing) outputs,
  plus Q quantile outputs per step when quantiles are requested.
- linear_skip: a linear map from the last L inputs (in the normalisation's frame: x − anchor, or the
  RevIN-normalised window) straight to the H outputs, shared by the series, added to the head's
  forecast (NLinear/RLinear as a skip path around the LRU); on by default. A stream keeps the last L
  observations for it: O(L·H) per observation, independent of the history's length.
- missing values (mask, False where a value is unknown): each is filled by the last observed value of its
  series (before the first: the first observed), so the anchor is the last observed value and RevIN's
  statistics are those of the observed values; with `missing` the network also reads 1 − mask per step.
- covariates: per step, each sequence reads [u, missing indicator, future covariates, past covariates]
  (n_future F, n_past P; the same for every series of a batch row), patched like u; the static ones (S)
  are appended to every token. The forecast adds a linear map of the future covariates of the last
  observed step and of the H forecast steps, ((1 + H)·F) → H: with anchor normalisation the forecast is a
  change from the last value, which depends on the covariates at both ends.

ForecastEnsemble averages several such networks (they may differ in lookback and settings); it
windows and streams like one.

A stream step runs the stack's step through `stack_step` when given one (`lruts.fast.CompiledStacks`:
the same step compiled), else `DeepLRU.step`; everything around the stack is written here once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from lruts.errors import ConfigError, ShapeError
from lruts.lru import check_input
from lruts.network import DeepLRU, DeepLRUConfig, States

if TYPE_CHECKING:  # the data package (polars) loads when data is read, not when a forecaster is imported
    from lruts.data.batch import WindowBatch

# the stack's step: (body, u_t (batch, d_input), states) → (h (batch, d_model), states); lruts.fast's is compiled
StackStepFn = Callable[[DeepLRU, torch.Tensor, States | None], tuple[torch.Tensor, States]]


SEGMENT = 16  # the default patch length


@dataclass
class ForecastNetConfig:
    # the sizes the data and the task give: 0 until whoever builds the network from data fills them
    lookback: int = 0  # L: steps of history in a training window
    horizon: int = 0  # H: steps forecast
    n_channels: int = 0  # C: series
    # anchor: read differences, forecast the change from the last value; revin: per-window instance
    # normalisation, undone on the output; none: the scaled values
    normalization: Literal["anchor", "revin", "none"] = "anchor"
    anchor: Literal["last", "patch_mean"] = "last"  # what "anchor" forecasts the change from
    channel_independent: bool = True  # each series its own sequence through one shared network
    segment: int = SEGMENT  # patch length P: the LRU runs L/P steps (a lookback shorter than the default: one patch)
    linear_skip: bool = True  # a linear path from the last L inputs to the forecast, around the LRU
    # the point forecast's training loss: the protocol's MSE, or the absolute error (robust to outliers)
    loss: Literal["mse", "mae"] = "mse"
    quantiles: list[float] = field(default_factory=list)
    # covariates the network reads (0: none): known ahead (F), observed with the target only (P), static (S)
    n_future: int = 0
    n_past: int = 0
    n_static: int = 0
    # read a missing-value indicator (1 − mask) beside each value, where the data has a missing value: None, the
    # fit trains the network both ways and keeps the lower validation loss (fitting.indicator_options)
    missing: bool | None = None
    # the body, smaller and more regularised than the paper's (chosen on ETTh1's validation split); its
    # d_input (segment × series per sequence) is filled by LRUForecastNet
    network: DeepLRUConfig = field(
        default_factory=lambda: DeepLRUConfig(
            d_model=64, d_state=128, n_layers=2, r_max=0.99, norm="layer", dropout=0.2
        )
    )

    def __post_init__(self) -> None:
        if self.normalization not in ("anchor", "revin", "none"):
            raise ValueError(f"normalization must be anchor, revin or none, got {self.normalization!r}")
        if self.loss not in ("mse", "mae"):
            raise ValueError(f"loss must be 'mse' or 'mae', got {self.loss!r}")
        if self.anchor not in ("last", "patch_mean"):
            raise ValueError(f"anchor must be 'last' or 'patch_mean', got {self.anchor!r}")
        if self.lookback and self.segment == SEGMENT > self.lookback:  # a short lookback (yearly data, say)
            self.segment = self.lookback
        if self.lookback and not 1 <= self.segment <= self.lookback:
            raise ValueError(f"segment must be between 1 and lookback={self.lookback}, got {self.segment}")
        if min(self.n_future, self.n_past, self.n_static) < 0:
            raise ValueError(
                f"covariate counts must be ≥ 0, got n_future={self.n_future}, n_past={self.n_past}, "
                f"n_static={self.n_static}"
            )
        if any(not 0 < q < 1 for q in self.quantiles):
            raise ValueError(f"quantiles must lie in (0, 1), got {self.quantiles}")
        self.quantiles = sorted(float(q) for q in self.quantiles)

    @classmethod
    def option_names(cls) -> set[str]:
        """The names `with_options` takes: this config's fields and, flat, the network's."""
        return {f.name for f in fields(cls)} | {f.name for f in fields(DeepLRUConfig)} - {"d_input"}

    def with_options(self, options: Mapping[str, Any]) -> ForecastNetConfig:
        """A copy with `options` set. The network's fields may be nested (`network: {d_model: 64}`, the
        saved form) or flat (`d_model=64`: LRUForecaster's keywords, format-1/2 files, older configs)."""
        options = dict(options)
        network = options.pop("network", None) or {}
        if isinstance(network, DeepLRUConfig):
            network = asdict(network)
        unknown = set(options) - self.option_names() | set(network) - {f.name for f in fields(DeepLRUConfig)}
        if unknown:
            raise ConfigError(f"unknown model setting(s) {sorted(unknown)}; known: {sorted(self.option_names())}")
        flat = {k: options.pop(k) for k in list(options) if k not in {f.name for f in fields(self)}}
        return replace(self, **options, network=replace(self.network, **network, **flat))


class StreamState:
    """What a stream carries between observations: for each of the P patch alignments, the LRU
    states after its last complete patch; the last P network inputs; the last P observations
    (batch, P, C), missing ones carried forward, the first one repeated before the start; the count;
    which series have been observed (batch, C) bool, None while every observation was."""

    def __init__(
        self,
        lru: list[list[torch.Tensor]],
        recent: torch.Tensor,
        values: torch.Tensor,
        seen: int,
        observed: torch.Tensor | None = None,
    ) -> None:
        self.lru, self.recent, self.values, self.seen, self.observed = lru, recent, values, seen, observed

    @property
    def last(self) -> torch.Tensor:
        return self.values[:, -1]

    def to_dict(self) -> dict[str, object]:
        d = {"lru": self.lru, "recent": self.recent, "values": self.values, "seen": self.seen}
        return d if self.observed is None else {**d, "observed": self.observed}

    @classmethod
    def from_dict(cls, d: dict) -> StreamState:
        return cls([list(s) for s in d["lru"]], d["recent"], d["values"], int(d["seen"]), d.get("observed"))


class LRUForecastNet(nn.Module):
    def __init__(self, cfg: ForecastNetConfig) -> None:
        super().__init__()
        cfg = replace(cfg, missing=bool(cfg.missing))  # a network reads the indicator or not: None is not yet decided
        self.cfg = cfg
        c_seq = 1 if cfg.channel_independent else cfg.n_channels
        self.c_seq = c_seq
        # what a sequence reads per step: its series' values (and missing indicators), then the covariates
        self.c_in = c_seq * (1 + cfg.missing) + cfg.n_future + cfg.n_past
        self.body = DeepLRU(replace(cfg.network, d_input=cfg.segment * self.c_in + cfg.n_static))
        self.n_out = 1 + len(cfg.quantiles)
        self.head = nn.Linear(cfg.network.d_model, cfg.horizon * c_seq * self.n_out)
        if cfg.linear_skip:
            self.skip = nn.Linear(cfg.lookback, cfg.horizon)
            nn.init.zeros_(self.skip.weight)  # starts as "no change from the anchor"; learns from there
            nn.init.zeros_(self.skip.bias)
        if cfg.n_future:
            self.future_head = nn.Linear((1 + cfg.horizon) * cfg.n_future, cfg.horizon * c_seq)
            nn.init.zeros_(self.future_head.weight)  # like the skip path: no effect until learnt
            nn.init.zeros_(self.future_head.bias)
        if cfg.normalization == "revin":
            self.revin_weight = nn.Parameter(torch.ones(cfg.n_channels))
            self.revin_bias = nn.Parameter(torch.zeros(cfg.n_channels))

    # ------------------------------------------------------------------ window mode (training, protocol)
    def forward(
        self,
        x: torch.Tensor,
        *,
        mask: torch.Tensor | None = None,
        future: torch.Tensor | None = None,
        past: torch.Tensor | None = None,
        static: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: (batch, L', C) scaled, any L' ≥ 1 → (batch, H, C, 1 + Q): point forecast, then quantiles.

        mask: (batch, L', C) bool, False where x is missing (its value there is ignored, NaN included);
        future: (batch, L' + H, F) covariates of the lookback and of the forecast steps; past: (batch, L', P);
        static: (batch, S). Each is required exactly when the config's count of it is > 0."""
        x = observed_only(x, mask, "mask")
        check_input(x, 3, self.cfg.n_channels, "(batch, lookback, n_channels)", "forecaster input")
        batch, t_len = x.shape[:2]
        self._check_inputs(x.shape[0], future, past, static, steps=t_len)
        x = fill_missing(x, mask)
        u, loc, scale = self._normalise(x, mask)
        seq = self._sequences(u, mask, None if future is None else future[:, :t_len], past)
        h, _ = self.body(self._tokens(self._patches(seq), static))
        ahead = None if future is None else future[:, t_len - 1 :]
        return self._output(h[:, -1], loc, scale, batch, self._extra(x, u, loc, ahead))

    def _check_inputs(self, batch: int, future, past, static, *, steps: int | None) -> None:
        """The covariates against the batch size and the config; steps: the window's length (None: a
        stream's one step, whose future block is (batch, 1 + H, F) and past (batch, P))."""
        cfg = self.cfg
        ahead = cfg.horizon + (1 if steps is None else steps)
        expected = {
            "future": (cfg.n_future, "n_future", future, (batch, ahead, cfg.n_future)),
            "past": (cfg.n_past, "n_past", past, (batch, cfg.n_past) if steps is None else (batch, steps, cfg.n_past)),
            "static": (cfg.n_static, "n_static", static, (batch, cfg.n_static)),
        }
        for kind, (width, setting, t, shape) in expected.items():
            if width == 0 and t is not None:
                raise ShapeError(
                    f"{kind} covariates given, but this network was built without them ({setting}=0): "
                    f"build it with {setting}={t.shape[-1]} to read them"
                )
            if width and t is None:
                raise ShapeError(f"this network reads {width} {kind} covariate(s) ({setting}): pass them {shape}")
            if width and tuple(t.shape) != shape:
                raise ShapeError(f"{kind} covariates: expected shape {shape}, got {tuple(t.shape)}")

    def _extra(
        self, x: torch.Tensor, u: torch.Tensor, loc: torch.Tensor, ahead: torch.Tensor | None
    ) -> torch.Tensor | None:
        """What is added to the head's point forecast (batch, H, C or 1), in its frame: the skip path's
        forecast and the future covariates' (ahead: (batch, 1 + H, F)); None without either."""
        extra = self._skip(x, u, loc)
        if ahead is None:
            return extra
        effect = self.future_head(ahead.reshape(ahead.shape[0], -1)).reshape(-1, self.cfg.horizon, self.c_seq)
        return effect if extra is None else extra + effect

    def _skip(self, x: torch.Tensor, u: torch.Tensor, loc: torch.Tensor) -> torch.Tensor | None:
        """The linear skip path's forecast (batch, H, C) from the last L steps (replicate-padded at the
        front when fewer were seen), in the frame the head's output is in; None without it."""
        if not self.cfg.linear_skip:
            return None
        z = u if self.cfg.normalization == "revin" else x - loc[:, None]
        z = last_steps(z, self.cfg.lookback)
        return self.skip(z.transpose(1, 2)).transpose(1, 2)

    def _normalise(
        self, x: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Network input u (batch, L', C), and what the output is measured from: loc (batch, C), scale.
        x has its missing values filled; RevIN's statistics are those of the observed ones."""
        mode = self.cfg.normalization
        if mode == "anchor":
            d = torch.diff(x, dim=1, prepend=x[:, :1])  # first difference of the first step is 0
            return d, self._anchor(x), None
        if mode == "revin":
            mean, std = window_stats(x, mask)
            u = (x - mean) / std * self.revin_weight + self.revin_bias
            return u, mean[:, 0], std[:, 0]
        return x, torch.zeros_like(x[:, -1]), None

    def _anchor(self, x: torch.Tensor) -> torch.Tensor:
        """The level forecasts are measured from: the last value, or the mean of the last P values
        (steps before the first observation count as the first observation)."""
        if self.cfg.anchor == "last":
            return x[:, -1]
        return last_steps(x, self.cfg.segment).mean(1)

    def _sequences(
        self,
        u: torch.Tensor,
        mask: torch.Tensor | None = None,
        future: torch.Tensor | None = None,
        past: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(batch, T, C) inputs, mask (batch, T, C), covariates (batch, T, F) and (batch, T, P) → the
        sequences the body reads, (B', T, c_in): per series (batch·C sequences) channel-independent, else
        one per batch row. A series' sequence reads [u, 1 − mask if `missing`, its row's covariates]."""
        per_series = [u]
        if self.cfg.missing:
            per_series.append(torch.zeros_like(u) if mask is None else (~mask).to(u.dtype))
        shared = [c for c in (future, past) if c is not None]
        if not self.cfg.channel_independent:
            return torch.cat(per_series + shared, dim=-1) if len(per_series) + len(shared) > 1 else u
        # the single-part, single-series and single-covariate cases skip a copy each (a stream's step is
        # made of such small operations)
        seq = per_series[0][..., None] if len(per_series) == 1 else torch.stack(per_series, dim=-1)
        seq = seq.permute(0, 2, 1, 3).reshape(-1, u.shape[1], len(per_series))
        if shared:
            shared = shared[0] if len(shared) == 1 else torch.cat(shared, dim=-1)
            seq = torch.cat([seq, shared if u.shape[2] == 1 else shared.repeat_interleave(u.shape[2], dim=0)], dim=-1)
        return seq

    def _per_sequence(self, static: torch.Tensor) -> torch.Tensor:
        """(batch, S) → (B', S): one row per sequence the body reads."""
        return static.repeat_interleave(self.cfg.n_channels, dim=0) if self.cfg.channel_independent else static

    def _patches(self, seq: torch.Tensor) -> torch.Tensor:
        """(B', T, c) → (B', ceil(T/P), P·c): patches ending at the last step, zero-padded at the front."""
        p = self.cfg.segment
        seq = F.pad(seq, (0, 0, (-seq.shape[1]) % p, 0))
        return seq.reshape(seq.shape[0], seq.shape[1] // p, p * seq.shape[2])

    def _tokens(self, patches: torch.Tensor, static: torch.Tensor | None) -> torch.Tensor:
        """(B', N, P·c) patches → the tokens the body reads: each with the static covariates appended."""
        if static is None:
            return patches
        return torch.cat([patches, self._per_sequence(static)[:, None].expand(-1, patches.shape[1], -1)], dim=-1)

    def _output(
        self,
        h_last: torch.Tensor,
        loc: torch.Tensor,
        scale: torch.Tensor | None,
        batch: int,
        extra: torch.Tensor | None = None,
    ):
        cfg = self.cfg
        out = self.head(h_last)  # (B', H·c·(1+Q))
        out = (
            out.reshape(batch, cfg.n_channels, cfg.horizon, self.n_out).permute(0, 2, 1, 3)
            if cfg.channel_independent
            else out.reshape(batch, cfg.horizon, cfg.n_channels, self.n_out)
        )
        if extra is not None:  # moves the point forecast; the quantiles below are offsets from it
            point = out[..., :1] + extra[..., None]
            out = torch.cat([point, out[..., 1:]], dim=-1) if self.n_out > 1 else point
        if cfg.normalization == "revin":
            out = (out - self.revin_bias[:, None]) / (self.revin_weight[:, None] + 1e-10)
            out = out * scale[:, None, :, None]
        if len(cfg.quantiles):  # quantile columns as offsets above/below the point forecast
            out = torch.cat([out[..., :1], out[..., :1] + out[..., 1:]], dim=-1)
        return out + loc[:, None, :, None]

    # ------------------------------------------------------------------ stream mode (O(1) per observation)
    def step(
        self,
        x_t: torch.Tensor,
        state: StreamState | None,
        stack_step: StackStepFn | None = None,
        *,
        mask_t: torch.Tensor | None = None,
        future: torch.Tensor | None = None,
        past_t: torch.Tensor | None = None,
        static: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, StreamState]:
        """Advance by one observation x_t: (batch, C) scaled → forecast (batch, H, C, 1 + Q), new state.

        mask_t: (batch, C) bool, False where this reading is missing (the state advances with it marked
        missing); future: (batch, 1 + H, F) the covariates of this step and of the next H; past_t:
        (batch, P); static: (batch, S). Equals forward() over the whole history seen so far (exactly, in
        eval mode); state=None starts. With normalization "none" a series whose first readings are
        missing is an exception: the window fills them with its first observed value, which a stream
        cannot know yet. RevIN re-normalises its window at every observation, so a RevIN stream re-runs
        the window pass over the last L observations instead (O(L) per observation, still independent of
        the history's length) and equals forward() over them; it takes neither masks nor covariates.
        stack_step: how to run the stack's step (lruts.fast); default `DeepLRU.step`."""
        x_t = observed_only(x_t, mask_t, "mask_t")
        check_input(x_t, 2, self.cfg.n_channels, "(batch, n_channels)", "observation")
        if state is not None and state.last.shape != x_t.shape:
            raise ShapeError(f"observation {tuple(x_t.shape)} does not match the stream's {tuple(state.last.shape)}")
        self._check_inputs(x_t.shape[0], future, past_t, static, steps=None)
        if self.cfg.normalization == "revin":
            self._refuse_revin_stream(mask_t, future, past_t, static)
            return self._window_step(x_t, state)
        p = self.cfg.segment
        if state is None:
            b = x_t.shape[0] * (self.cfg.n_channels if self.cfg.channel_independent else 1)
            state = StreamState(
                [self.body.initial_state(b) for _ in range(p)],
                x_t.new_zeros(b, p, self.c_in),
                # before the first observation: the first one (a missing one: 0 until its first observed value)
                (x_t if mask_t is None else torch.where(mask_t, x_t, 0.0))[:, None].expand(-1, self._kept, -1),
                0,
                None if mask_t is None else torch.zeros_like(mask_t),
            )
        if state.recent.shape[1:] != (p, self.c_in) or state.values.shape[1] != self._kept:
            raise ShapeError(
                f"stream state of shapes {tuple(state.recent.shape)} / {tuple(state.values.shape)} does not belong "
                f"to this network (patch {p}, {self.c_in} input(s) per sequence and step, {self._kept} kept steps)"
            )
        phase = state.seen % p  # the alignment whose patch this observation completes
        values, x_t, observed = carry_forward(state.values, state.observed, x_t, mask_t)
        # before the first observation `values` holds it: its first difference is 0
        u = x_t - values[:, -1] if self.cfg.normalization == "anchor" else x_t
        seq = self._sequences(
            u[:, None],
            None if mask_t is None else mask_t[:, None],
            None if future is None else future[:, :1],
            None if past_t is None else past_t[:, None],
        )
        recent = torch.cat([state.recent[:, 1:], seq], dim=1)  # (B', P, c_in)
        u_body = self._tokens(recent.reshape(recent.shape[0], 1, -1), static)[:, 0]
        if stack_step is None:
            h, lru_phase = self.body.step(u_body, state.lru[phase])
        else:
            h, lru_phase = stack_step(self.body, u_body, state.lru[phase])
        values = torch.cat([values[:, 1:], x_t[:, None]], dim=1)
        loc = self._anchor(values) if self.cfg.normalization == "anchor" else torch.zeros_like(x_t)
        out = self._output(h, loc, None, x_t.shape[0], self._extra(values, values, loc, future))
        lru = list(state.lru)
        lru[phase] = lru_phase
        return out, StreamState(lru, recent, values, state.seen + 1, observed)

    @staticmethod
    def _refuse_revin_stream(*given: torch.Tensor | None) -> None:
        if any(t is not None for t in given):
            raise ConfigError(
                "a RevIN network streams by re-running its window over the last observations, which keeps no "
                "masks or covariates: stream it without them, or use normalization='anchor'"
            )

    def _window_step(self, x_t: torch.Tensor, state: StreamState | None) -> tuple[torch.Tensor, StreamState]:
        if state is None:
            state = StreamState([], x_t.new_zeros(0), x_t[:, None].expand(-1, self._kept, -1), 0)
        values = torch.cat([state.values[:, 1:], x_t[:, None]], dim=1)
        seen = state.seen + 1
        return self(values[:, -min(seen, self.cfg.lookback) :]), StreamState([], state.recent, values, seen)

    @property
    def _kept(self) -> int:
        """How many recent observations a stream keeps: the anchor's P, the skip path's or RevIN's L."""
        window = self.cfg.linear_skip or self.cfg.normalization == "revin"
        return max(self.cfg.segment, self.cfg.lookback if window else 0)

    def stream_from(
        self,
        history: torch.Tensor,
        *,
        mask: torch.Tensor | None = None,
        future: torch.Tensor | None = None,
        past: torch.Tensor | None = None,
        static: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, StreamState]:
        """Consume a whole history (batch, T, C) in parallel mode; return its forecast and stream state.
        mask (batch, T, C), future (batch, T + H, F), past (batch, T, P), static (batch, S): as forward().

        Cost O(T): one parallel pass per patch alignment, each over T/P patches (RevIN: one window pass
        over the last L observations)."""
        history = observed_only(history, mask, "mask")
        check_input(history, 3, self.cfg.n_channels, "(batch, time, n_channels)", "history")
        p, t_len = self.cfg.segment, history.shape[1]
        self._check_inputs(history.shape[0], future, past, static, steps=t_len)
        if self.cfg.normalization == "revin":
            self._refuse_revin_stream(mask, future, past, static)
            state = StreamState([], history.new_zeros(0), last_steps(history, self._kept).clone(), t_len)
            return self(history[:, -self.cfg.lookback :]), state
        history = fill_missing(history, mask)
        u, loc, _ = self._normalise(history, mask)
        seq = self._sequences(u, mask, None if future is None else future[:, :t_len], past)
        lru: list[list[torch.Tensor] | None] = [None] * p
        forecast = None
        for k in range(p):  # the alignment whose last patch ends k steps before the end
            end = t_len - k
            if end <= 0:
                lru[(end - 1) % p] = self.body.initial_state(seq.shape[0])
                continue
            h, states = self.body(self._tokens(self._patches(seq[:, :end]), static))
            lru[(end - 1) % p] = states
            if k == 0:
                ahead = None if future is None else future[:, t_len - 1 :]
                forecast = self._output(h[:, -1], loc, None, history.shape[0], self._extra(history, u, loc, ahead))
        recent = F.pad(seq, (0, 0, max(0, p - t_len), 0))[:, -p:]
        observed = None if mask is None else mask.any(dim=1)
        return forecast, StreamState(lru, recent, last_steps(history, self._kept).clone(), t_len, observed)


class EnsembleState:
    """An ensemble's stream: one StreamState per member."""

    def __init__(self, members: list[StreamState]) -> None:
        self.members = members

    def to_dict(self) -> dict[str, object]:
        return {"members": [m.to_dict() for m in self.members]}

    @classmethod
    def from_dict(cls, d: dict) -> EnsembleState:
        return cls([StreamState.from_dict(m) for m in d["members"]])


def stream_state_from_dict(d: dict) -> StreamState | EnsembleState:
    return (EnsembleState if "members" in d else StreamState).from_dict(d)


class ForecastEnsemble(nn.Module):
    """The mean forecast of several LRUForecastNets of one horizon, series and quantiles, which may
    differ in lookback and architecture (N-BEATS averages members over lookbacks the same way). Window
    mode takes the longest lookback and gives each member its own last steps; a stream carries one
    state per member, so it stays O(1) per observation per member and equals the window mode."""

    def __init__(self, members: list[LRUForecastNet]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        first = members[0].cfg
        for m in members[1:]:
            if (m.cfg.horizon, m.cfg.n_channels, m.cfg.quantiles) != (first.horizon, first.n_channels, first.quantiles):
                raise ValueError("ensemble members must share horizon, n_channels and quantiles")
        self.members = nn.ModuleList(members)
        self.lookback = max(m.cfg.lookback for m in members)

    @property
    def head(self) -> nn.Linear:  # where the weights live (LRUForecaster._device)
        return self.members[0].head

    def forward(self, x: torch.Tensor, **inputs: torch.Tensor) -> torch.Tensor:
        """x: (batch, L, C) with L the longest member lookback → the members' mean (batch, H, C, 1 + Q);
        inputs: LRUForecastNet.forward's mask and covariates over those L steps, each member given its own
        last steps."""
        check_input(x, 3, self.members[0].cfg.n_channels, "(batch, lookback, n_channels)", "forecaster input")
        if x.shape[1] < self.lookback:
            raise ShapeError(f"ensemble input has {x.shape[1]} steps; its longest member needs {self.lookback}")
        outs = []
        for m in self.members:
            x_m, inputs_m = _cut_to(m.cfg.lookback, x, inputs)
            outs.append(m(x_m, **inputs_m))
        return sum(outs) / len(outs)

    def stream_from(self, history: torch.Tensor, **inputs: torch.Tensor) -> tuple[torch.Tensor, EnsembleState]:
        pairs = [m.stream_from(history, **inputs) for m in self.members]
        return sum(out for out, _ in pairs) / len(pairs), EnsembleState([state for _, state in pairs])

    def step(
        self,
        x_t: torch.Tensor,
        state: EnsembleState | None,
        stack_step: StackStepFn | None = None,
        **inputs: torch.Tensor | None,
    ) -> tuple[torch.Tensor, EnsembleState]:
        """Each member's LRUForecastNet.step (inputs: its mask_t and covariates); the members' mean
        forecast and their states."""
        states = state.members if state is not None else [None] * len(self.members)
        if len(states) != len(self.members):
            raise ShapeError(
                f"stream state of {len(states)} members does not belong to this {len(self.members)}-member ensemble"
            )
        pairs = [m.step(x_t, s, stack_step, **inputs) for m, s in zip(self.members, states, strict=True)]
        return sum(out for out, _ in pairs) / len(pairs), EnsembleState([s for _, s in pairs])


def _cut_to(lookback: int, x: torch.Tensor, inputs: dict[str, torch.Tensor]):
    """x (batch, T, C) and its keyword inputs cut to the last `lookback` steps (future covariates: those
    and the H after them; static ones as they are)."""
    start = x.shape[1] - lookback
    return x[:, start:], {k: v if k == "static" else v[:, start:] for k, v in inputs.items()}


def window_stats(x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """RevIN's statistics of each window and series: x (batch, L, C) → mean, std (batch, 1, C), the std
    the population one with 1e-5 added to the variance (RevIN's eps); over the observed values only when a
    mask (batch, L, C) bool is given (a series with none observed: mean 0, std of the eps)."""
    if mask is None:
        return x.mean(dim=1, keepdim=True), torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + 1e-5)
    weight = mask.to(x.dtype)
    count = weight.sum(dim=1, keepdim=True).clamp(min=1)
    mean = (x * weight).sum(dim=1, keepdim=True) / count
    var = ((x - mean) ** 2 * weight).sum(dim=1, keepdim=True) / count
    return mean, torch.sqrt(var + 1e-5)


def observed_only(x: torch.Tensor, mask: torch.Tensor | None, name: str) -> torch.Tensor:
    """x with the values a mask of its shape (bool, True where observed) marks missing set to 0, so that
    a NaN there is never read; mask None: x itself."""
    if mask is None:
        return x
    if (
        not isinstance(x, torch.Tensor)
        or not isinstance(mask, torch.Tensor)
        or mask.shape != x.shape
        or mask.dtype != torch.bool
    ):
        raise ShapeError(
            f"{name}: expected a bool tensor of the input's shape {tuple(getattr(x, 'shape', ()))}, True where a "
            f"value was observed; got {getattr(mask, 'dtype', type(mask).__name__)} {tuple(getattr(mask, 'shape', ()))}"
        )
    return torch.where(mask, x, 0.0)


def fill_missing(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """x (batch, T, C) with each value the mask (batch, T, C) bool marks missing replaced by the last
    observed value of its series before it (before the first: the first observed; a series with none
    observed: 0). What x holds under a False mask, NaN included, reaches neither the result nor its
    gradient. mask None: x itself."""
    if mask is None:
        return x
    steps = torch.arange(x.shape[1], device=x.device)[None, :, None]
    last = torch.where(mask, steps, -1).cummax(dim=1).values
    first = mask.int().argmax(dim=1, keepdim=True)  # the first observed step (0 when there is none)
    source = torch.where(last < 0, first, last)
    return torch.gather(torch.where(mask, x, 0.0), 1, source)


def carry_forward(
    values: torch.Tensor, observed: torch.Tensor | None, x_t: torch.Tensor, mask_t: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One observation of a stream, as fill_missing fills a window. values (batch, K, C): the last K
    values so far; observed (batch, C) bool: which series have been observed (None: all); x_t (batch, C);
    mask_t (batch, C) bool or None (all observed) → (values with a series' past set to x_t where x_t is
    its first observed value, x_t with missing entries the last value, the new `observed`)."""
    if mask_t is None and observed is None:
        return values, x_t, None
    mask_t = torch.ones_like(x_t, dtype=torch.bool) if mask_t is None else mask_t
    observed = torch.ones_like(mask_t) if observed is None else observed
    if bool(observed.all()):  # no reading can be a series' first: skip the pass over the kept values
        return values, torch.where(mask_t, x_t, values[:, -1]), observed
    values = torch.where((mask_t & ~observed)[:, None], x_t[:, None], values)
    return values, torch.where(mask_t, x_t, values[:, -1]), observed | mask_t


def batch_inputs(batch: WindowBatch) -> dict[str, torch.Tensor]:
    """The keyword inputs a forecasting model reads from a batch beside `batch.x`: its mask and covariates,
    the absent ones left out (a model without them is called as model(batch.x))."""
    given = {
        "mask": batch.mask,
        "future": batch.future_covariates,
        "past": batch.past_covariates,
        "static": batch.static,
    }
    return {k: v for k, v in given.items() if v is not None}


def last_steps(x: torch.Tensor, n: int) -> torch.Tensor:
    """The last n steps of x: (batch, T, C) → (batch, n, C), the first step repeated in front if T < n."""
    if x.shape[1] >= n:  # a view: the padding below costs a copy on every streamed observation
        return x[:, x.shape[1] - n :]
    return F.pad(x.transpose(1, 2), (n - x.shape[1], 0), mode="replicate").transpose(1, 2)
