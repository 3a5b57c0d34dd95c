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

ForecastEnsemble averages several such networks (they may differ in lookback and settings); it
windows and streams like one.

A stream step runs the stack's step through `stack_step` when given one (`lruts.fast.CompiledStacks`:
the same step compiled), else `DeepLRU.step`; everything around the stack is written here once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from lruts.errors import ConfigError, ShapeError
from lruts.lru import check_input
from lruts.network import DeepLRU, DeepLRUConfig, States

# the stack's step: (body, u_t (batch, d_input), states) → (h (batch, d_model), states); lruts.fast's is compiled
StackStepFn = Callable[[DeepLRU, torch.Tensor, States | None], tuple[torch.Tensor, States]]


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
    segment: int = 16  # patch length P: the LRU runs L/P steps
    linear_skip: bool = True  # a linear path from the last L inputs to the forecast, around the LRU
    # the point forecast's training loss: the protocol's MSE, or the absolute error (robust to outliers)
    loss: Literal["mse", "mae"] = "mse"
    quantiles: list[float] = field(default_factory=list)
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
        if self.lookback and not 1 <= self.segment <= self.lookback:
            raise ValueError(f"segment must be between 1 and lookback={self.lookback}, got {self.segment}")
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
    (batch, P, C), the first one repeated before the start; the count."""

    def __init__(self, lru: list[list[torch.Tensor]], recent: torch.Tensor, values: torch.Tensor, seen: int) -> None:
        self.lru, self.recent, self.values, self.seen = lru, recent, values, seen

    @property
    def last(self) -> torch.Tensor:
        return self.values[:, -1]

    def to_dict(self) -> dict[str, object]:
        return {"lru": self.lru, "recent": self.recent, "values": self.values, "seen": self.seen}

    @classmethod
    def from_dict(cls, d: dict) -> StreamState:
        return cls([list(s) for s in d["lru"]], d["recent"], d["values"], int(d["seen"]))


class LRUForecastNet(nn.Module):
    def __init__(self, cfg: ForecastNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c_seq = 1 if cfg.channel_independent else cfg.n_channels
        self.c_seq = c_seq
        self.body = DeepLRU(replace(cfg.network, d_input=cfg.segment * c_seq))
        self.n_out = 1 + len(cfg.quantiles)
        self.head = nn.Linear(cfg.network.d_model, cfg.horizon * c_seq * self.n_out)
        if cfg.linear_skip:
            self.skip = nn.Linear(cfg.lookback, cfg.horizon)
            nn.init.zeros_(self.skip.weight)  # starts as "no change from the anchor"; learns from there
            nn.init.zeros_(self.skip.bias)
        if cfg.normalization == "revin":
            self.revin_weight = nn.Parameter(torch.ones(cfg.n_channels))
            self.revin_bias = nn.Parameter(torch.zeros(cfg.n_channels))

    # ------------------------------------------------------------------ window mode (training, protocol)
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, L', C) scaled, any L' ≥ 1 → (batch, H, C, 1 + Q): point forecast, then quantiles."""
        check_input(x, 3, self.cfg.n_channels, "(batch, lookback, n_channels)", "forecaster input")
        u, loc, scale = self._normalise(x)
        h, _ = self.body(self._patches(self._sequences(u)))
        return self._output(h[:, -1], loc, scale, x.shape[0], self._skip(x, u, loc))

    def _skip(self, x: torch.Tensor, u: torch.Tensor, loc: torch.Tensor) -> torch.Tensor | None:
        """The linear skip path's forecast (batch, H, C) from the last L steps (replicate-padded at the
        front when fewer were seen), in the frame the head's output is in; None without it."""
        if not self.cfg.linear_skip:
            return None
        z = u if self.cfg.normalization == "revin" else x - loc[:, None]
        z = last_steps(z, self.cfg.lookback)
        return self.skip(z.transpose(1, 2)).transpose(1, 2)

    def _normalise(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Network input u (batch, L', C), and what the output is measured from: loc (batch, C), scale."""
        mode = self.cfg.normalization
        if mode == "anchor":
            d = torch.diff(x, dim=1, prepend=x[:, :1])  # first difference of the first step is 0
            return d, self._anchor(x), None
        if mode == "revin":
            mean, std = window_stats(x)
            u = (x - mean) / std * self.revin_weight + self.revin_bias
            return u, mean[:, 0], std[:, 0]
        return x, torch.zeros_like(x[:, -1]), None

    def _anchor(self, x: torch.Tensor) -> torch.Tensor:
        """The level forecasts are measured from: the last value, or the mean of the last P values
        (steps before the first observation count as the first observation)."""
        if self.cfg.anchor == "last":
            return x[:, -1]
        return last_steps(x, self.cfg.segment).mean(1)

    def _sequences(self, u: torch.Tensor) -> torch.Tensor:
        """(batch, T, C) → the sequences the body reads: (batch·C, T, 1) channel-independent, else as is."""
        return u.permute(0, 2, 1).reshape(-1, u.shape[1], 1) if self.cfg.channel_independent else u

    def _patches(self, seq: torch.Tensor) -> torch.Tensor:
        """(B', T, c) → (B', ceil(T/P), P·c): patches ending at the last step, zero-padded at the front."""
        p = self.cfg.segment
        seq = F.pad(seq, (0, 0, (-seq.shape[1]) % p, 0))
        return seq.reshape(seq.shape[0], seq.shape[1] // p, p * seq.shape[2])

    def _output(
        self,
        h_last: torch.Tensor,
        loc: torch.Tensor,
        scale: torch.Tensor | None,
        batch: int,
        skip: torch.Tensor | None = None,
    ):
        cfg = self.cfg
        out = self.head(h_last)  # (B', H·c·(1+Q))
        out = (
            out.reshape(batch, cfg.n_channels, cfg.horizon, self.n_out).permute(0, 2, 1, 3)
            if cfg.channel_independent
            else out.reshape(batch, cfg.horizon, cfg.n_channels, self.n_out)
        )
        if skip is not None:  # moves the point forecast; the quantiles below are offsets from it
            out = torch.cat([out[..., :1] + skip[..., None], out[..., 1:]], dim=-1)
        if cfg.normalization == "revin":
            out = (out - self.revin_bias[:, None]) / (self.revin_weight[:, None] + 1e-10)
            out = out * scale[:, None, :, None]
        if len(cfg.quantiles):  # quantile columns as offsets above/below the point forecast
            out = torch.cat([out[..., :1], out[..., :1] + out[..., 1:]], dim=-1)
        return out + loc[:, None, :, None]

    # ------------------------------------------------------------------ stream mode (O(1) per observation)
    def step(
        self, x_t: torch.Tensor, state: StreamState | None, stack_step: StackStepFn | None = None
    ) -> tuple[torch.Tensor, StreamState]:
        """Advance by one observation x_t: (batch, C) scaled → forecast (batch, H, C, 1 + Q), new state.

        Equals forward() over the whole history seen so far (exactly, in eval mode); state=None starts.
        RevIN re-normalises its window at every observation, so a RevIN stream re-runs the window pass
        over the last L observations instead (O(L) per observation, still independent of the history's
        length) and equals forward() over them. stack_step: how to run the stack's step (lruts.fast);
        default `DeepLRU.step`."""
        check_input(x_t, 2, self.cfg.n_channels, "(batch, n_channels)", "observation")
        if state is not None and state.last.shape != x_t.shape:
            raise ShapeError(f"observation {tuple(x_t.shape)} does not match the stream's {tuple(state.last.shape)}")
        if self.cfg.normalization == "revin":
            return self._window_step(x_t, state)
        p = self.cfg.segment
        if state is None:
            b = x_t.shape[0] * (self.cfg.n_channels if self.cfg.channel_independent else 1)
            state = StreamState(
                [self.body.initial_state(b) for _ in range(p)],
                x_t.new_zeros(b, p, self.c_seq),
                x_t[:, None].expand(-1, self._kept, -1),  # before the first observation: the first one
                0,
            )
        if state.recent.shape[1:] != (p, self.c_seq) or state.values.shape[1] != self._kept:
            raise ShapeError(
                f"stream state of shapes {tuple(state.recent.shape)} / {tuple(state.values.shape)} does not belong "
                f"to this network (patch {p}, {self.c_seq} channel(s) per sequence, {self._kept} kept steps)"
            )
        phase = state.seen % p  # the alignment whose patch this observation completes
        # before the first observation `values` holds it: its first difference is 0
        u = x_t - state.last if self.cfg.normalization == "anchor" else x_t
        recent = torch.cat([state.recent[:, 1:], self._sequences(u[:, None])], dim=1)  # (B', P, c)
        u_body = recent.reshape(recent.shape[0], -1)
        if stack_step is None:
            h, lru_phase = self.body.step(u_body, state.lru[phase])
        else:
            h, lru_phase = stack_step(self.body, u_body, state.lru[phase])
        values = torch.cat([state.values[:, 1:], x_t[:, None]], dim=1)
        loc = self._anchor(values) if self.cfg.normalization == "anchor" else torch.zeros_like(x_t)
        out = self._output(h, loc, None, x_t.shape[0], self._skip(values, values, loc))
        lru = list(state.lru)
        lru[phase] = lru_phase
        return out, StreamState(lru, recent, values, state.seen + 1)

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

    def stream_from(self, history: torch.Tensor) -> tuple[torch.Tensor, StreamState]:
        """Consume a whole history (batch, T, C) in parallel mode; return its forecast and stream state.

        Cost O(T): one parallel pass per patch alignment, each over T/P patches (RevIN: one window pass
        over the last L observations)."""
        check_input(history, 3, self.cfg.n_channels, "(batch, time, n_channels)", "history")
        p, t_len = self.cfg.segment, history.shape[1]
        if self.cfg.normalization == "revin":
            state = StreamState([], history.new_zeros(0), last_steps(history, self._kept).clone(), t_len)
            return self(history[:, -self.cfg.lookback :]), state
        u, loc, _ = self._normalise(history)
        seq = self._sequences(u)
        lru: list[list[torch.Tensor] | None] = [None] * p
        forecast = None
        for k in range(p):  # the alignment whose last patch ends k steps before the end
            end = t_len - k
            if end <= 0:
                lru[(end - 1) % p] = self.body.initial_state(seq.shape[0])
                continue
            h, states = self.body(self._patches(seq[:, :end]))
            lru[(end - 1) % p] = states
            if k == 0:
                forecast = self._output(h[:, -1], loc, None, history.shape[0], self._skip(history, u, loc))
        recent = F.pad(seq, (0, 0, max(0, p - t_len), 0))[:, -p:]
        return forecast, StreamState(lru, recent, last_steps(history, self._kept).clone(), t_len)


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (batch, L, C) with L the longest member lookback → the members' mean (batch, H, C, 1 + Q)."""
        check_input(x, 3, self.members[0].cfg.n_channels, "(batch, lookback, n_channels)", "forecaster input")
        if x.shape[1] < self.lookback:
            raise ShapeError(f"ensemble input has {x.shape[1]} steps; its longest member needs {self.lookback}")
        return sum(m(x[:, -m.cfg.lookback :]) for m in self.members) / len(self.members)

    def stream_from(self, history: torch.Tensor) -> tuple[torch.Tensor, EnsembleState]:
        pairs = [m.stream_from(history) for m in self.members]
        return sum(out for out, _ in pairs) / len(pairs), EnsembleState([state for _, state in pairs])

    def step(
        self, x_t: torch.Tensor, state: EnsembleState | None, stack_step: StackStepFn | None = None
    ) -> tuple[torch.Tensor, EnsembleState]:
        """Each member's LRUForecastNet.step; the members' mean forecast and their states."""
        states = state.members if state is not None else [None] * len(self.members)
        if len(states) != len(self.members):
            raise ShapeError(
                f"stream state of {len(states)} members does not belong to this {len(self.members)}-member ensemble"
            )
        pairs = [m.step(x_t, s, stack_step) for m, s in zip(self.members, states, strict=True)]
        return sum(out for out, _ in pairs) / len(pairs), EnsembleState([s for _, s in pairs])


def window_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """RevIN's statistics of each window and series: x (batch, L, C) → mean, std (batch, 1, C), the std
    the population one with 1e-5 added to the variance (RevIN's eps)."""
    return x.mean(dim=1, keepdim=True), torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + 1e-5)


def last_steps(x: torch.Tensor, n: int) -> torch.Tensor:
    """The last n steps of x: (batch, T, C) → (batch, n, C), the first step repeated in front if T < n."""
    return F.pad(x.transpose(1, 2), (max(0, n - x.shape[1]), 0), mode="replicate")[..., -n:].transpose(1, 2)
