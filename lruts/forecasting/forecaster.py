"""`LRUForecaster`: the forecasting API — fit on a DataFrame, predict the next H steps, and advance
the forecast with new observations in O(1) each through the LRU's recurrent mode.

    fc = LRUForecaster(lookback=336, horizon=96, quantiles=[0.1, 0.9])
    fc.fit(df, time_col="date")              # pandas or polars: a time column + numeric series
    fc.predict()                              # DataFrame: future timestamps × series (+ quantile columns)
    fc.update(new_rows)                       # advance the state, return the new forecast
    fc.advance(times, values); fc.forecast_array()   # the same with arrays, no DataFrames (the dashboard)
    fc.save("model.lruts"); LRUForecaster.load("model.lruts")   # no pickled objects in the file

A forecast is defined on the whole history seen so far: the network runs over it with its state
carried (see lruts/forecasting/net.py), so `update()` after k rows equals `set_history()` over the
full history, to float tolerance. The network was trained on windows of `lookback` steps, and its
recurrence forgets (|λ| ≤ r_max), so what lies further back weighs less and less.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lruts.errors import DataError
from lruts.forecasting.baselines import season_length
from lruts.forecasting.blend import Blend, BlendState, fit_blend, stream_state_from_dict
from lruts.forecasting.fitting import fit_forecast_net
from lruts.forecasting.net import EnsembleState, ForecastEnsemble, ForecastNetConfig, LRUForecastNet, StreamState
from lruts.io import load_torch, save_torch
from lruts.training import TrainConfig, select_device

FORMAT = "lruts-forecaster"
# 1: one network ("net_config", the network's fields flat); 2: ensembles ("members", flat configs);
# 3: "members" always, the network's fields nested under "network"; 4: "blend" (lruts/forecasting/blend.py)
# when the forecast is blended. load() reads all four.
VERSION = 4


class LRUForecaster:
    def __init__(
        self,
        lookback: int = 336,
        horizon: int = 96,
        *,
        quantiles: list[float] | tuple[float, ...] = (),
        train: TrainConfig | None = None,
        blend: bool = True,
        fast: bool = True,
        **model_options: Any,
    ) -> None:
        """model_options: any field of ForecastNetConfig (normalization, channel_independent, segment,
        ...) or, flat, of its network's DeepLRUConfig (d_model, d_state, n_layers, r_min, r_max, norm,
        dropout, ...); n_channels is taken from the data at fit(). blend=True (the default) blends the
        network's forecast with linear, repeat-last and seasonal-naive forecasts by weights fitted on the
        validation rows, and calibrates the quantiles there (split-conformal; lruts/forecasting/blend.py);
        blend=False: the network alone, with a quantile head. fast=False streams with the torch step only,
        never the compiled one (`lruts.fast`); both give the same forecasts."""
        known = ForecastNetConfig.option_names() - {"lookback", "horizon", "n_channels", "quantiles"}
        unknown = set(model_options) - known
        if unknown:
            raise TypeError(f"unknown model option(s) {sorted(unknown)}; choose from {sorted(known)}")
        self.lookback, self.horizon = lookback, horizon
        self.quantiles = sorted(float(q) for q in quantiles)
        self.blend = blend
        net_quantiles = [] if blend else self.quantiles
        self.net_config = ForecastNetConfig(lookback, horizon, quantiles=net_quantiles).with_options(model_options)
        self.train_config = train or TrainConfig()
        self.net: LRUForecastNet | ForecastEnsemble | Blend | None = None
        self.blend_info: dict[str, Any] = {}  # what fit chose for the blend (weights, validation MSEs)
        self.scaler = None
        self.columns: list[str] = []
        self.time_col = "date"
        self.freq: str | None = None
        self.step_ns: int | None = None
        self.last_time: np.datetime64 | None = None
        self.frame_kind = "pandas"
        self._stream: StreamState | EnsembleState | BlendState | None = None
        self._forecast: torch.Tensor | None = None
        self.fit_result = None
        self.fast = fast
        self._compiled: tuple[Any, Any] | None = None  # (the network, lruts.fast.CompiledStacks of it)

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        df: Any,
        *,
        time_col: str | None = None,
        target_cols: list[str] | None = None,
        freq: str | None = None,
        val_fraction: float = 0.1,
        checkpoint_dir: str | Path | None = None,
        run=None,
    ) -> LRUForecaster:
        """Validate `df` (the ingestion checks), train on the first 1 − val_fraction of it with early
        stopping on the rest, then consume the whole history so `predict()` is ready."""
        from lruts.data import StandardScaler, WindowDataset, load_series

        self.frame_kind = _frame_kind(df)
        series = load_series(df, time_col=time_col, target_cols=target_cols, freq=freq)
        values = series.values
        n = len(values)
        n_val = max(int(val_fraction * n), self.horizon)
        n_train = n - n_val
        if n_train < self.lookback + self.horizon:
            raise DataError(
                f"{n} rows are too few for lookback={self.lookback} + horizon={self.horizon} with "
                f"{val_fraction:.0%} held out for validation; need at least "
                f"{int((self.lookback + self.horizon) / (1 - val_fraction)) + 1} rows, or lower the lookback"
            )
        self._set_series_meta(series, time_col)
        self.scaler = StandardScaler.fit(values[:n_train])
        scaled = torch.from_numpy(self.scaler.transform(values).astype(np.float32))
        train_set = WindowDataset(scaled, 0, n_train, self.lookback, self.horizon, split="train")
        val_set = WindowDataset(scaled, n_train - self.lookback, n, self.lookback, self.horizon, split="val")
        torch.manual_seed(self.train_config.seed)
        self.net = LRUForecastNet(self._net_config(values.shape[1]))
        self.fit_result = fit_forecast_net(
            self.net,
            train_set,
            val_set,
            self.train_config,
            quantiles=self.net.cfg.quantiles,
            point=self.net.cfg.loss,
            checkpoint_dir=checkpoint_dir,
            run=run,
        )
        if self.blend:
            season = season_length(series.freq)
            self.net = Blend(self.net, self.lookback, self.horizon, values.shape[1], season, self.quantiles)
            self.blend_info = fit_blend(self.net, train_set, val_set)
        self._consume(scaled)
        return self

    @classmethod
    def from_trained(
        cls, net: LRUForecastNet | ForecastEnsemble, scaler, series, *, time_col: str = "date"
    ) -> LRUForecaster:
        """Wrap a network (or an ensemble) trained elsewhere, the protocol pipeline, with its scaler;
        consume `series`."""
        fc = cls._wrapping(net)
        fc.scaler = scaler
        fc._set_series_meta(series, time_col)
        fc._consume(torch.from_numpy(scaler.transform(series.values).astype(np.float32)))
        return fc

    @classmethod
    def _wrapping(
        cls, net: LRUForecastNet | ForecastEnsemble | Blend, train: TrainConfig | None = None
    ) -> LRUForecaster:
        """A forecaster around a built network: its lookback (an ensemble's longest), horizon, quantiles
        and, for one network, its configuration."""
        inner = net.net if isinstance(net, Blend) else net
        if isinstance(inner, ForecastEnsemble):
            cfg, lookback = inner.members[0].cfg, inner.lookback
        else:
            cfg, lookback = inner.cfg, inner.cfg.lookback
        quantiles = net.quantiles if isinstance(net, Blend) else cfg.quantiles
        fc = cls(lookback, cfg.horizon, quantiles=quantiles, train=train, blend=isinstance(net, Blend))
        if not isinstance(inner, ForecastEnsemble):
            fc.net_config = cfg
        fc.net = net.eval()
        return fc

    def _net_config(self, n_channels: int) -> ForecastNetConfig:
        return dataclasses.replace(self.net_config, n_channels=n_channels)

    def _set_series_meta(self, series, time_col: str | None) -> None:
        from lruts.data.timestamps import step_ns

        self.columns = list(series.columns)
        self.time_col = time_col or "date"
        self.freq = series.freq
        self.step_ns = step_ns(series.freq) if series.freq else None
        self.last_time = series.timestamps[-1]

    # ------------------------------------------------------------------ forecasting
    def _require_fitted(self) -> LRUForecastNet | ForecastEnsemble:
        if self.net is None or self._forecast is None:
            raise RuntimeError("the forecaster has not been fitted: call fit(df) or LRUForecaster.load(path)")
        return self.net

    def _device(self) -> torch.device:
        return self.net.head.weight.device  # not next(parameters()): ≈10 µs per call

    @torch.no_grad()
    def _consume(self, scaled: torch.Tensor) -> None:
        """Run the network over a whole scaled history (T, C) in parallel mode; keep its stream state."""
        self.net.eval()
        self._compiled = None  # the weights may have changed (a new fit): pack them again when streaming
        out, self._stream = self.net.stream_from(scaled[None].to(self._device()))
        self._forecast = out[0]

    def predict(self) -> Any:
        """The forecast of the next `horizon` steps after the last observation, as a DataFrame."""
        self._require_fitted()
        return self._frame(self._forecast)

    def forecast_array(self) -> np.ndarray:
        """The current forecast on the original scale: (horizon, n_series, 1 + n_quantiles)."""
        self._require_fitted()
        out = self._forecast.cpu().numpy()  # (H, C, 1 + Q): the series on axis 1, as the scaler wants it last
        return self.scaler.inverse_transform(out.swapaxes(1, 2)).swapaxes(1, 2)

    def update(self, new_rows: Any) -> Any:
        """Advance the forecast with new observations (a pandas or polars DataFrame: the time column and
        every series) — no refit — and return predict(). See advance()."""
        self.advance(*self.rows_to_arrays(new_rows))
        return self.predict()

    @torch.no_grad()
    def advance(self, times: np.ndarray, values: np.ndarray) -> None:
        """Advance the forecast with new observations given as arrays — times (k,) datetime64, values
        (k, n_series) on the original scale in the order of `columns` — checked as update() checks rows.
        Each costs one recurrent step of the stack (O(1) in the history's length; with RevIN, whose
        window statistics change with every observation, a window pass over the last `lookback`
        observations). The new forecast is then in forecast_array() (or predict(), as a DataFrame)."""
        net = self._require_fitted()
        times, values = self._check_new(times, values)
        scaled = torch.from_numpy(self.scaler.transform(values).astype(np.float32)).to(self._device())
        stack_step = self._stack_step()
        for k in range(len(scaled)):
            out, self._stream = net.step(scaled[k : k + 1], self._stream, stack_step)
        if len(scaled):
            self._forecast = out[0]
            self.last_time = times[-1]

    def _stack_step(self):
        """The compiled stack step for the current network (lruts.fast), packed on first use after the
        network changed; None with fast=False."""
        if not self.fast:
            return None
        if self._compiled is None or self._compiled[0] is not self.net:
            from lruts.fast import CompiledStacks

            self._compiled = (self.net, CompiledStacks(self.net))
        return self._compiled[1]

    def set_history(self, df: Any) -> Any:
        """Recompute the forecast from a whole history (parallel mode) instead of updating; returns predict()."""
        from lruts.data import load_series

        self._require_fitted()
        series = load_series(df, time_col=self.time_col, target_cols=self.columns, freq=self.freq)
        self.last_time = series.timestamps[-1]
        self._consume(torch.from_numpy(self.scaler.transform(series.values).astype(np.float32)))
        return self.predict()

    def rows_to_arrays(self, new_rows: Any) -> tuple[np.ndarray, np.ndarray]:
        """New rows (pandas or polars DataFrame) as (times (k,) datetime64[ns], values (k, n_series)) for
        advance(); a clear error when a column is missing or a value is not a number."""
        import pandas as pd

        df = (
            new_rows.to_pandas()
            if hasattr(new_rows, "to_pandas") and not isinstance(new_rows, pd.DataFrame)
            else new_rows
        )
        if not isinstance(df, pd.DataFrame):
            raise DataError(f"update() takes a pandas or polars DataFrame, got {type(new_rows).__name__}")
        missing = [c for c in [self.time_col, *self.columns] if c not in df.columns]
        if missing:
            raise DataError(f"new rows lack column(s) {missing}; expected {[self.time_col, *self.columns]}")
        if df.empty:
            return np.array([], dtype="datetime64[ns]"), np.zeros((0, len(self.columns)), np.float64)
        times = pd.to_datetime(df[self.time_col]).to_numpy(dtype="datetime64[ns]")
        block = df[self.columns]
        if all(pd.api.types.is_numeric_dtype(t) for t in block.dtypes):
            return times, block.to_numpy(np.float64)
        # column by column: ≈1 ms per column, most of an update's time with hundreds of series
        return times, block.apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)

    def _check_new(self, times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New observations must be finite and continue the series: one step after the last, no gaps."""
        times = np.asarray(times).astype("datetime64[ns]", copy=False).reshape(-1)
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (len(times), len(self.columns)):
            raise DataError(
                f"new observations: expected values of shape ({len(times)}, {len(self.columns)}) "
                f"(one row per timestamp, one column per series {self.columns}), got {values.shape}"
            )
        bad = ~np.isfinite(values)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise DataError(
                f"new row at {times[r]} has a missing or non-numeric value in {self.columns[c]!r}; "
                "fill it before update()"
            )
        if self.step_ns:
            expected = self.last_time + np.arange(1, len(times) + 1) * np.timedelta64(self.step_ns, "ns")
            wrong = np.nonzero(times != expected)[0]
            if len(wrong):
                i = wrong[0]
                raise DataError(
                    f"new row {i} has timestamp {times[i]}, expected {expected[i]} (one {self.freq} step after "
                    f"the previous observation): rows must continue the series without gaps or duplicates"
                )
        elif np.any(np.diff(np.concatenate([[self.last_time], times])) <= np.timedelta64(0, "ns")):
            raise DataError("new rows must come strictly after the last observation, in time order")
        return times, values.astype(np.float32)

    def _frame(self, forecast: torch.Tensor) -> Any:
        import pandas as pd

        arr = self.forecast_array()
        step = np.timedelta64(self.step_ns or 1, "ns")
        times = self.last_time + np.arange(1, self.horizon + 1) * step
        # one (H, C·(1+Q)) block, columns <series>, <series>_q<q>, ... (one array per column costs ≈0.1 ms each)
        names = [n for name in self.columns for n in (name, *(f"{name}_q{q:g}" for q in self.quantiles))]
        frame = pd.DataFrame(arr.reshape(self.horizon, -1), columns=names)
        frame.insert(0, self.time_col, times)
        if self.frame_kind == "polars":
            import polars as pl

            return pl.from_pandas(frame)
        return frame

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write weights, configuration, scaler and stream state; load() reads it back without unpickling."""
        net = self._require_fitted()
        inner = net.net if isinstance(net, Blend) else net
        members = inner.members if isinstance(inner, ForecastEnsemble) else [inner]
        blob = {
            "format": FORMAT,
            "version": VERSION,
            "members": [asdict(m.cfg) for m in members],
            "ensemble": isinstance(inner, ForecastEnsemble),
            **({"blend": net.config()} if isinstance(net, Blend) else {}),
            "train_config": asdict(self.train_config),
            "state_dict": {k: v.cpu() for k, v in net.state_dict().items()},
            "scaler": self.scaler.to_dict(),
            "columns": self.columns,
            "time_col": self.time_col,
            "freq": self.freq or "",
            "step_ns": self.step_ns or 0,
            "last_time_ns": int(self.last_time.astype("datetime64[ns]").astype(np.int64)),
            "frame_kind": self.frame_kind,
            "stream": _to_cpu(self._stream.to_dict()),
            "forecast": self._forecast.cpu(),
        }
        return save_torch(blob, path)

    @classmethod
    def load_from(cls, other: LRUForecaster) -> LRUForecaster:
        """An independent copy of a fitted forecaster (weights shared read-only, own stream state)."""
        import copy

        other._require_fitted()
        return copy.copy(other)

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", *, fast: bool = True) -> LRUForecaster:
        """A saved forecaster (any format version), on `device`, ready to predict and update."""
        from lruts.data import StandardScaler

        path = Path(path)
        if not path.is_file():
            raise DataError(f"no forecaster file at {path}")
        try:
            blob = load_torch(path)
        except Exception as e:
            raise DataError(f"{path} is not a readable lruts forecaster file ({e})") from e
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise DataError(f"{path} is not an lruts forecaster file")
        if blob["version"] > VERSION:
            raise DataError(f"{path} was written by a newer lruts (format {blob['version']}); upgrade lruts")
        configs = blob.get("members") or [blob["net_config"]]
        members = [LRUForecastNet(ForecastNetConfig().with_options(c)) for c in configs]
        net = ForecastEnsemble(members) if blob.get("ensemble", "members" in blob) else members[0]
        if "blend" in blob:
            net = Blend(net, **blob["blend"])
        net.load_state_dict(blob["state_dict"])
        dev = select_device(device)
        fc = cls._wrapping(net.to(dev), TrainConfig(**blob["train_config"]))
        fc.fast = fast
        fc.scaler = StandardScaler.from_dict(blob["scaler"])
        fc.columns, fc.time_col, fc.frame_kind = list(blob["columns"]), blob["time_col"], blob["frame_kind"]
        fc.freq, fc.step_ns = blob["freq"] or None, blob["step_ns"] or None
        fc.last_time = np.datetime64(int(blob["last_time_ns"]), "ns")
        fc._stream = stream_state_from_dict(_to_device(blob["stream"], dev))
        fc._forecast = blob["forecast"].to(dev)
        return fc


def _frame_kind(df: Any) -> str:
    return "polars" if type(df).__module__.startswith("polars") else "pandas"


def _to_cpu(obj: Any) -> Any:
    return _to_device(obj, torch.device("cpu"))


def _to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_device(v, device) for v in obj]
    return obj
