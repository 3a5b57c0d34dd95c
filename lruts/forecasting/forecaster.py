"""`LRUForecaster`: the forecasting API — fit on a DataFrame, predict the next H steps, and advance
the forecast with new observations in O(1) each through the LRU's recurrent mode.

    fc = LRUForecaster(lookback=336, horizon=96, quantiles=[0.1, 0.9])
    fc.fit(df, time_col="date")              # pandas or polars: a time column + numeric series
    fc.predict()                              # DataFrame: future timestamps × series (+ quantile columns)
    fc.update(new_rows)                       # advance the state, return the new forecast
    fc.advance(times, values); fc.forecast_array()   # the same with arrays, no DataFrames (the dashboard)
    fc.save("model.lruts"); LRUForecaster.load("model.lruts")   # no pickled objects in the file

A long table (`fit(df, id_col=...)`: a panel of series with future, past and static covariates) is fitted
as one global network and streamed per series: see lruts/forecasting/panel_front.py, which the
forecaster delegates long input to.

Live data (`update`, `advance`): a NaN reading, or a grid step without a row, advances the state with the
input marked missing; a re-sent row equal to one already consumed is ignored (the raw readings of the
last `lookback` steps are kept to tell), a conflicting one is a DataError; a reading far from both the
training levels and the last reading (robust z-scores above `outlier_z`, see
panel_front.OutlierRule) enters as missing and is listed in `outliers`. `missing_inputs()` counts the
missing (and outlier) inputs among the last `lookback` steps; a long forecast has them as columns.

A forecast is defined on the whole history seen so far: the network runs over it with its state
carried (see lruts/forecasting/net.py), so `update()` after k rows equals `set_history()` over the
full history, to float tolerance. The network was trained on windows of `lookback` steps, and its
recurrence forgets (|λ| ≤ r_max), so what lies further back weighs less and less.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lruts.data.read import new_row_numbers
from lruts.data.timestamps import Clock, stored_times, with_dated_times
from lruts.errors import DataError
from lruts.forecasting.baselines import season_length
from lruts.forecasting.blend import Blend, BlendState, fit_blend, stream_state_from_dict
from lruts.forecasting.fitting import fit_with_indicator_choice, forecaster_training, indicator_options
from lruts.forecasting.net import EnsembleState, ForecastEnsemble, ForecastNetConfig, LRUForecastNet, StreamState
from lruts.forecasting.panel_front import (
    MISSING,
    OBSERVED,
    OUTLIER,
    OutlierRule,
    PanelFront,
    Recent,
    check_resent,
    on_their_own,
    warn_long_gaps,
    with_series_id,
)
from lruts.forecasting.panel_front import to_device as _to_device
from lruts.io import load_torch, save_torch
from lruts.training import TrainConfig, select_device

FORMAT = "lruts-forecaster"
# 1: one network ("net_config", the network's fields flat); 2: ensembles ("members", flat configs);
# 3: "members" always, the network's fields nested under "network"; 4: "blend" (lruts/forecasting/blend.py)
# when the forecast is blended; 5: "recent" and "outlier_rule" (re-sent rows, outliers), "panel" for a
# long-fitted forecaster. load() reads all five.
VERSION = 5


log = logging.getLogger("lruts")
ID_COLUMN = "unique_id"  # the id column given to one series fitted with covariates from a table without one


def _streamed_only(splits, lookback: int, horizon: int) -> None:
    """Say which series of a panel are too short for windows of their own (lookback + horizon and their
    validation rows): not trained or validated on, they are forecast as a series that joins after the fit
    (`_adopt_panel`). A DataError names those with fewer than `lookback` observed targets: too few to forecast."""
    panel = splits.panel
    index = [panel.ids.index(sid) for sid in splits.dropped]
    few = on_their_own(panel, index, lookback)[3]
    if few:
        raise DataError(
            f"series {', '.join(few[:5])}{' …' if len(few) > 5 else ''} have fewer observed targets than "
            f"lookback = {lookback}: too short to forecast; use a shorter lookback or drop them"
        )
    log.warning(
        "series %s are too short for windows of lookback %d + horizon %d and their validation rows: not trained or "
        "validated on; forecast from their rows by the global network, scaled by their own values",
        ", ".join(f"'{panel.ids[i]}' ({panel.lengths[i]} steps)" for i in index[:5]) + (" …" if len(index) > 5 else ""),
        lookback, horizon,
    )  # fmt: skip


def _tell_repairs(lines: list[str]) -> None:
    """What reading the user's table changed, dropped or doubts, once per fit (a pipeline prints its ingest
    report; a fit of a DataFrame had said nothing)."""
    if lines:
        log.warning("the table was read with these repairs:\n  %s", "\n  ".join(lines))


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
        outlier_z: float | None = 10.0,
        **model_options: Any,
    ) -> None:
        """model_options: any field of ForecastNetConfig (normalization, channel_independent, segment,
        ...) or, flat, of its network's DeepLRUConfig (d_model, d_state, n_layers, r_min, r_max, norm,
        dropout, ...); n_channels is taken from the data at fit(). train: the training budget (default
        fitting.forecaster_training(): at most 10 epochs of 100–300 batches of 128 windows, early stopping).
        blend=True (the default) blends the network's forecast with linear, repeat-last and seasonal-naive
        forecasts by weights fitted on the validation rows, and calibrates the quantiles there (split-conformal;
        lruts/forecasting/blend.py); blend=False: the network alone, with a quantile head. fast=False streams
        with the torch step only, never the compiled one (`lruts.fast`); both give the same forecasts.
        outlier_z: the robust z-score above which a new reading is an outlier and enters as missing
        (panel_front.OutlierRule); None: never."""
        known = ForecastNetConfig.option_names() - {"lookback", "horizon", "n_channels", "quantiles"}
        unknown = set(model_options) - known
        if unknown:
            raise TypeError(f"unknown model option(s) {sorted(unknown)}; choose from {sorted(known)}")
        for name, value in (("lookback", lookback), ("horizon", horizon)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a whole number of steps ≥ 1, got {value!r}")
        if any(not 0 < float(q) < 1 for q in quantiles):
            raise ValueError(
                f"quantiles must lie strictly between 0 and 1 (0.1, 0.9: an 80% interval), got {quantiles}"
            )
        self.lookback, self.horizon = int(lookback), int(horizon)
        self.quantiles = sorted(float(q) for q in quantiles)
        self.blend = blend
        net_quantiles = [] if blend else self.quantiles
        self.net_config = ForecastNetConfig(lookback, horizon, quantiles=net_quantiles).with_options(model_options)
        self.train_config = train or forecaster_training()
        self.net: LRUForecastNet | ForecastEnsemble | Blend | None = None
        self.blend_info: dict[str, Any] = {}  # what fit chose for the blend (weights, validation MSEs)
        self.scaler = None
        self.columns: list[str] = []
        self.time_col = "date"
        self.time_of_day: str | None = None  # a time-of-day column the table's dates were joined with (new rows too)
        self.day_periods: list[int] | None = None  # time_of_day numbers a day's periods: [the first, seconds each]
        self.freq: str | None = None
        self.step_ns: int | None = None
        self.clock: Clock | None = None  # how the fitted table's zone was read: new rows alike, forecasts in it
        self.snap = False  # the fitted table's readings were jittered: a new row is moved to its nearest step
        self.decimal_comma: list[str] = []  # the fitted table's columns written with a decimal comma: new rows alike
        self.last_time: np.datetime64 | None = None
        self.frame_kind = "pandas"
        self._stream: StreamState | EnsembleState | BlendState | None = None
        self._forecast: torch.Tensor | None = None
        self.fit_result = None
        self.fast = fast
        self._compiled: tuple[Any, Any] | None = None  # (the network, lruts.fast.CompiledStacks of it)
        self.outlier_z = outlier_z
        self.panel: PanelFront | None = None  # a long-fitted forecaster's series, covariates and streams
        self._recent: Recent | None = None  # wide: the raw readings of the last `lookback` steps
        self._outlier_rule = OutlierRule.fit([], None)
        self._outliers: list[dict] = []

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
        id_col: str | None = None,
        target_col: str = "y",
        future_covariates: list[str] | tuple[str, ...] = (),
        past_covariates: list[str] | tuple[str, ...] = (),
        static_covariates: Any = None,
        calendar: bool = False,
    ) -> LRUForecaster:
        """Validate `df` (the ingestion checks; a missing reading or a skipped step is kept missing and masked,
        never filled in), train on the first 1 − val_fraction of it with early stopping on the rest, then
        consume the whole history so `predict()` is ready.

        Wide `df`: a time column and one column per series (target_cols, default all numeric ones).
        Long `df` (id_col given): one row per (id, time) with `target_col` and the covariates, read by
        lruts.data.load_panel (time_col default "ds"): future_covariates are known ahead (predict reads
        those of the horizon), past_covariates observed with the target only, static_covariates a frame
        with one row per id or a list of columns constant per id; calendar=True adds calendar features
        derived from the timestamps as future covariates (panel_front.calendar_features). One network is
        trained over every series' windows (val_fraction of each series held out, at least the horizon).
        Covariates or calendar features without id_col: one series (target_col, or the one of target_cols)
        read as a long table of that series, its id the target's name (`unique_id` in what is returned)."""
        from lruts.data import StandardScaler, WindowDataset, load_series

        self.frame_kind = _frame_kind(df)
        if not 0 < val_fraction < 1:
            raise ValueError(
                f"val_fraction is the share of the rows held out for validation, in (0, 1); got {val_fraction}"
            )
        one_series = None
        if id_col is None and (future_covariates or past_covariates or static_covariates is not None or calendar):
            df, id_col, time_col, target_col = _one_series(df, time_col, target_col, target_cols)
            one_series = target_col
        if id_col is not None:
            return self._fit_panel(
                df, id_col, time_col or "ds", target_col, list(future_covariates), list(past_covariates),
                static_covariates, calendar, freq, val_fraction, checkpoint_dir, run, one_series,
            )  # fmt: skip
        self.panel = None
        series = load_series(df, time_col=time_col, target_cols=target_cols, freq=freq)
        _tell_repairs(series.report.repairs + series.report.warnings)
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
        self.scaler = StandardScaler.fit(values[:n_train], self.columns)
        scaled = torch.from_numpy(self.scaler.transform(values).astype(np.float32))
        train_set = WindowDataset(scaled, 0, n_train, self.lookback, self.horizon, split="train")
        val_set = WindowDataset(scaled, n_train - self.lookback, n, self.lookback, self.horizon, split="val")
        cfg = self._net_config(values.shape[1])
        self.net, self.fit_result = fit_with_indicator_choice(
            lambda missing: self._seeded(dataclasses.replace(cfg, missing=missing)),
            indicator_options(cfg.missing, bool(np.isnan(values).any())),
            train_set, val_set, self.train_config, quantiles=cfg.quantiles, point=cfg.loss,
            checkpoint_dir=checkpoint_dir, run=run,
        )  # fmt: skip
        if self.blend:
            season = season_length(series.freq)
            self.net = Blend(self.net, self.lookback, self.horizon, values.shape[1], season, self.quantiles)
            self.blend_info = fit_blend(self.net, train_set, val_set)
        self._outlier_rule = OutlierRule.fit(list(values[:n_train].T), self.outlier_z)
        self._consume(scaled)
        self._start_record(values)
        return self

    def _fit_panel(
        self, df, id_col, time_col, target_col, future, past, static, calendar, freq, val_fraction, checkpoint_dir, run,
        one_series=None,
    ) -> LRUForecaster:  # fmt: skip
        """fit() on a long table (see fit); one_series: the id given to a table of one series without one."""
        from lruts.data.panel import load_panel
        from lruts.data.panel_windows import panel_splits
        from lruts.forecasting.panel_front import with_calendar

        panel = load_panel(
            df, id_col=id_col, time_col=time_col, target_col=target_col, future_covariates=future,
            past_covariates=past, static_covariates=static, freq=freq,
        )  # fmt: skip
        _tell_repairs(panel.report.repairs())
        if calendar:
            panel = with_calendar(panel)
        splits = panel_splits(panel, self.lookback, self.horizon, val_fraction=val_fraction, drop_short=True)
        if splits.dropped:
            _streamed_only(splits, self.lookback, self.horizon)
        cfg = dataclasses.replace(
            self._net_config(1), n_future=len(panel.future_names), n_past=len(past), n_static=panel.static.shape[1]
        )
        self.net, self.fit_result = fit_with_indicator_choice(
            lambda missing: self._seeded(dataclasses.replace(cfg, missing=missing)),
            indicator_options(cfg.missing, bool(np.isnan(panel.values).any())),
            splits.train, splits.val, self.train_config, quantiles=cfg.quantiles, point=cfg.loss,
            checkpoint_dir=checkpoint_dir, run=run,
        )  # fmt: skip
        if self.blend:
            season = season_length(panel.freq)
            self.net = Blend(self.net, self.lookback, self.horizon, 1, season, self.quantiles)
            self.blend_info = fit_blend(self.net, splits.train, splits.val)
        self._adopt_panel(splits, future, calendar, one_series)
        return self

    def _adopt_panel(self, splits, future_names: list[str], calendar: bool, one_series: str | None = None) -> None:
        """Take the fitted network's panel (splits.panel: its series, covariates, scaler) as this forecaster's
        and consume every series' whole history. future_names: the user's future covariates (the panel's
        without the calendar's)."""
        panel = splits.panel
        # series too short to train on (splits.dropped) are read as a series that joins after the fit: scaled and
        # their outliers judged by all their own rows (their training rows: none)
        streamed = [panel.ids.index(sid) for sid in splits.dropped]
        scaler = copy.deepcopy(splits.scaler)
        scaler.target.mean[streamed], scaler.target.std[streamed] = on_their_own(panel, streamed, self.lookback)[:2]
        rows = splits.train_lengths.copy()
        rows[streamed] = panel.lengths[streamed]
        train_series = [panel.series(i)[:n] for i, n in enumerate(rows.tolist())]
        static_scaled = (
            splits.scaler.static.transform(panel.static.astype(np.float64))
            if panel.static.shape[1]
            else (np.zeros((len(panel), 0)))
        )
        self.panel = PanelFront(
            ids=panel.ids, freq=panel.freq, id_col=panel.id_col, time_col=panel.time_col,
            target_col=panel.target_col, future_names=future_names, past_names=panel.past_names,
            static_names=panel.static_names, calendar=calendar, scaler=scaler,
            static=torch.from_numpy(static_scaled.astype(np.float32)).to(self._device()),
            outliers=OutlierRule.fit(train_series, self.outlier_z), frame_kind=self.frame_kind,
            lookback=self.lookback, horizon=self.horizon, integer_ids=panel.integer_ids, clock=panel.clock,
            one_series=one_series, snap=panel.snapped, time_of_day=panel.time_of_day, day_periods=panel.day_periods,
            decimal_comma=panel.decimal_comma,
        )  # fmt: skip
        self.freq, self.time_col, self.columns, self.clock = panel.freq, panel.time_col, [], panel.clock
        self._compiled = None
        self.panel.consume(self.net, panel)

    def _start_record(self, values: np.ndarray) -> None:
        """Keep the raw readings of the last `lookback` steps of a wide history (T, C), NaN where missing."""
        values = np.asarray(values, dtype=np.float64)
        status = np.where(np.isnan(values), MISSING, OBSERVED).astype(np.int8)
        self._recent = Recent.start(values, status, self.lookback)

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
        fc._outlier_rule = OutlierRule.fit(list(series.values.T), fc.outlier_z)
        fc._start_record(series.values)
        return fc

    @classmethod
    def from_trained_panel(
        cls, net: LRUForecastNet | Blend, splits, future_names: list[str], *, calendar: bool = False
    ) -> LRUForecaster:
        """Wrap a network trained on a panel's windows elsewhere (the protocol pipeline): `splits` are its
        PanelSplits (panel and scaler), future_names the user's future covariates; consume every series."""
        fc = cls._wrapping(net)
        fc._adopt_panel(splits, list(future_names), calendar)
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

    def _seeded(self, cfg: ForecastNetConfig) -> LRUForecastNet:
        """A new network for `cfg`, its weights drawn from the training seed (every candidate alike)."""
        torch.manual_seed(self.train_config.seed)
        return LRUForecastNet(cfg)

    def _set_series_meta(self, series, time_col: str | None) -> None:
        from lruts.data.timestamps import step_ns, weekdays_only

        self.columns = list(series.columns)
        # the table's own time column (found by name or by its values), so new rows and forecasts use its name;
        # an unnamed DatetimeIndex's is "date"
        found = series.report.time_col if series.report else None
        self.time_col = time_col or (found if found not in (None, "index") else "date")
        self.time_of_day = series.report.time_of_day if series.report else None
        self.day_periods = series.report.day_periods if series.report else None
        self.freq = series.freq
        self.clock = Clock.from_dict(series.report.clock if series.report else None)
        self.snap = bool(series.report and series.report.snapped)  # jittered readings: new rows are snapped too
        self.decimal_comma = [c for c in self.columns if series.report and c in series.report.decimal_comma]
        if self.freq == "1d" and weekdays_only(series.timestamps):
            # a trading calendar, kept row by row by ingestion: it streams and is dated on business days
            self.freq = "1b"
        self.step_ns = step_ns(self.freq) if self.freq else None
        self.last_time = series.timestamps[-1]

    # ------------------------------------------------------------------ forecasting
    def _require_fitted(self) -> LRUForecastNet | ForecastEnsemble:
        if self.net is None or (self._forecast is None and self.panel is None):
            raise RuntimeError("the forecaster has not been fitted: call fit(df) or LRUForecaster.load(path)")
        return self.net

    def _device(self) -> torch.device:
        return self.net.head.weight.device  # not next(parameters()): ≈10 µs per call

    @torch.no_grad()
    def _consume(self, scaled: torch.Tensor) -> None:
        """Run the network over a whole scaled history (T, C), NaN where missing, in parallel mode; keep its
        stream state."""
        self.net.eval()
        self._compiled = None  # the weights may have changed (a new fit): pack them again when streaming
        observed = ~torch.isnan(scaled)
        inputs = {} if observed.all() else {"mask": observed[None].to(self._device())}
        out, self._stream = self.net.stream_from(scaled[None].to(self._device()), **inputs)
        self._forecast = out[0]

    def predict(self, future: Any = None) -> Any:
        """The forecast of the next `horizon` steps after the last observation, as a DataFrame.

        Wide: a time column, then per series its forecast and its quantiles (`<series>_q<q>`). Long: one
        row per series and step: id, time, `forecast`, `forecast_q<q>`, `missing_inputs`, `outlier_inputs`
        (see the module docstring), the steps dated by the series' frequency (business days skip
        weekends). future: long rows (id, time, the future covariates) covering each series' next
        `horizon` steps, unless they were given before (in fit's table, or an earlier call)."""
        net = self._require_fitted()
        if self.panel is not None:
            return self.panel.predict(net, self._stack_step(), self.quantiles, future)
        if future is not None:
            raise DataError("future= gives future covariates, which a forecaster fitted on a wide table has none of")
        return self._frame(self._forecast)

    @property
    def outliers(self) -> list[dict]:
        """Every new reading the outlier rule flagged (entered as missing): id (a long table's) or series
        (a wide table's column), time, value, z."""
        return self.panel.outliers if self.panel is not None else self._outliers

    def missing_inputs(self) -> dict[str, tuple[int, int]]:
        """Per series: (missing inputs, of which outliers) among its last `lookback` steps."""
        self._require_fitted()
        if self.panel is not None:
            counts = [t.recent.counts(t.seen) for t in self.panel.tracks]
            return {sid: (int(m[0]), int(o[0])) for sid, (m, o) in zip(self.panel.ids, counts, strict=True)}
        missing, outlier = self._recent.counts(self._recent.pos + 1)
        return {c: (int(m), int(o)) for c, m, o in zip(self.columns, missing, outlier, strict=True)}

    def forecast_array(self) -> np.ndarray:
        """The current forecast on the original scale: (horizon, n_series, 1 + n_quantiles)."""
        net = self._require_fitted()
        if self.panel is not None:
            return self.panel.forecast_array(net, self._stack_step()).swapaxes(0, 1)
        out = self._forecast.cpu().numpy()  # (H, C, 1 + Q): the series on axis 1, as the scaler wants it last
        return self.scaler.inverse_transform(out.swapaxes(1, 2)).swapaxes(1, 2)

    def update(self, new_rows: Any, future: Any = None, static: Any = None) -> Any:
        """Advance the forecast with new observations — no refit — and return predict(future).

        Wide: a pandas or polars DataFrame with the time column and every series (see advance()). Long:
        rows (id, time, target, every future and past covariate) of any series, in any order: per series
        its new steps in time order, a skipped step or a NaN target as missing, re-sent rows checked
        (module docstring); future: as predict's, for the H steps after these rows. A series the forecaster was
        not fitted on joins from its rows, no refit (PanelFront.join; static: its static covariates, as fit's,
        where they are not columns of its rows). Nothing is applied when a row is refused or the future
        covariates do not cover the horizon."""
        net = self._require_fitted()
        if self.panel is None:
            if static is not None:
                raise DataError(
                    "static= gives a new series' static covariates: a forecaster fitted on a wide table has none"
                )
            self.advance(*self.rows_to_arrays(new_rows))
            return self.predict(future)
        fitted = len(self.panel.ids)
        rows = self.panel.join(net, new_rows, static)  # series seen for the first time join from their rows
        try:
            plan = self.panel.plan_update(rows)
            # the forecast after these rows reads the covariates of the H steps after them: refuse before applying
            self.panel.take_future(future, {i: readings[-1][0] for i, readings in plan if readings})
        except DataError:
            self.panel.truncate(fitted)
            raise
        self.panel.apply(net, self._stack_step(), plan)
        return self.predict(future)

    @torch.no_grad()
    def advance(self, times: np.ndarray, values: np.ndarray) -> None:
        """Advance the forecast with new observations given as arrays — times (k,) datetime64, values
        (k, n_series) on the original scale in the order of `columns`, NaN where missing — checked as
        update() checks rows: in any order, a skipped grid step or a NaN as missing, re-sent rows and
        outliers as the module docstring says. Each step costs one recurrent step of the stack (O(1) in
        the history's length; with RevIN, whose window statistics change with every observation, a
        window pass over the last `lookback` observations). The new forecast is then in
        forecast_array() (or predict(), as a DataFrame)."""
        net = self._require_fitted()
        if self.panel is not None:
            raise DataError(
                "a forecaster fitted on a long table advances with update(rows): id, time, target, covariates"
            )
        rows = self._plan_wide(times, values)
        stack_step = self._stack_step()
        device = self._device()
        for time, row in rows:
            status = np.where(np.isnan(row), MISSING, OBSERVED).astype(np.int8)
            flagged = self._outlier_rule.flags(row, self._recent)
            for c in np.flatnonzero(flagged).tolist():
                z = float(self._outlier_rule.scores(row, self._recent.last_reading)[c])
                self._outliers.append({"series": self.columns[c], "time": time, "value": float(row[c]), "z": z})
            status[flagged] = OUTLIER
            mask = status == OBSERVED
            scaled = np.where(mask, self.scaler.transform(np.nan_to_num(row)[None])[0], 0.0)
            x_t = torch.from_numpy(scaled[None].astype(np.float32)).to(device)
            mask_t = None if mask.all() else torch.from_numpy(mask[None]).to(device)
            out, self._stream = net.step(x_t, self._stream, stack_step, mask_t=mask_t)
            self._recent.push(row, status)
            self._forecast = out[0]
        if rows:
            self.last_time = rows[-1][0]

    def _stack_step(self):
        """The compiled stack step for the current network (lruts.fast), packed on first use after the
        network changed; None with fast=False."""
        if not self.fast:
            return None
        if self._compiled is None or self._compiled[0] is not self.net:
            from lruts.fast import CompiledStacks

            self._compiled = (self.net, CompiledStacks(self.net))
        return self._compiled[1]

    def set_history(self, df: Any, future: Any = None) -> Any:
        """Recompute the forecast from a whole history (parallel mode) instead of updating; returns
        predict(future)."""
        from lruts.data import load_series

        net = self._require_fitted()
        if self.panel is not None:
            return self._set_panel_history(net, df, future)
        series = load_series(df, time_col=self.time_col, target_cols=self.columns, freq=self.freq)
        self.last_time = series.timestamps[-1]
        self._consume(torch.from_numpy(self.scaler.transform(series.values).astype(np.float32)))
        self._start_record(series.values)
        return self.predict()

    def _set_panel_history(self, net, df: Any, future: Any) -> Any:
        """set_history() on a long table: the series it holds restart from it, the others keep their
        streams. Its future covariates reaching past a series' last target are kept for the horizon."""
        from lruts.data.panel import load_panel
        from lruts.forecasting.panel_front import with_calendar

        front = self.panel
        panel = load_panel(
            front.as_fitted(df, "set_history()"), id_col=front.id_col, time_col=front.time_col,
            target_col=front.target_col, future_covariates=front.future_names, past_covariates=front.past_names,
            freq=front.freq,
        )  # fmt: skip
        if front.calendar:
            panel = with_calendar(panel)
        series = [front.index(sid) for sid in panel.ids]
        self._compiled = None
        front.consume(net, panel, series)
        return self.predict(future)

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
        if self.time_col not in df.columns and isinstance(df.index, pd.DatetimeIndex):  # times as the index
            df = df.reset_index(names=self.time_col)
        df = with_dated_times(df, self.time_col, self.time_of_day, self.day_periods)  # as fit read them
        expected = [self.time_col, *self.columns]
        missing = [c for c in expected if c not in df.columns]
        if missing:
            given = f" (or '{self.time_col}' as dates and '{self.time_of_day}' beside it)" if self.time_of_day else ""
            raise DataError(f"new rows lack column(s) {missing}; expected {expected}{given}")
        if df.empty:
            return np.array([], dtype="datetime64[ns]"), np.zeros((0, len(self.columns)), np.float64)
        times = stored_times(df[self.time_col], self.clock)
        block = df[self.columns]
        if all(pd.api.types.is_numeric_dtype(t) for t in block.dtypes):
            return times, block.to_numpy(np.float64)
        # column by column: ≈1 ms per column, most of an update's time with hundreds of series
        read = [new_row_numbers(block[c], "new rows", c in self.decimal_comma) for c in self.columns]
        return times, np.stack(read, axis=1)

    def _plan_wide(self, times: np.ndarray, values: np.ndarray) -> list[tuple[np.datetime64, np.ndarray]]:
        """New wide observations as the steps after the last one, in order: (time, values (C,) float64, NaN
        where missing); a grid step no row was given for is all NaN; re-sent rows are checked and left out.
        A DataError (nothing applied) for a wrong shape, a time off the grid or too old, a conflicting row."""
        from lruts.data.timestamps import advance

        times = np.asarray(times).astype("datetime64[ns]", copy=False).reshape(-1)
        values = np.array(values, dtype=np.float64)
        if values.shape != (len(times), len(self.columns)):
            raise DataError(
                f"new observations: expected values of shape ({len(times)}, {len(self.columns)}) "
                f"(one row per timestamp, one column per series {self.columns}), got {values.shape}"
            )
        values[~np.isfinite(values)] = np.nan
        steps = self._steps_after_last(times)
        new: dict[int, np.ndarray] = {}
        for r in np.argsort(steps, kind="stable").tolist():
            k, where = int(steps[r]), f"the row at {times[r]}"
            if k > 0 and k not in new:
                new[k] = values[r]
                continue
            # a re-sent row: the same step twice in this call, or one already consumed
            kept, status = (
                (new[k], [OBSERVED] * len(new[k])) if k > 0 else self._recent.reading(self._recent.pos + k, where)
            )
            for c, name in enumerate(self.columns):
                check_resent(kept[c], status[c], values[r, c], f"{where} ({name!r})")
        if not new:
            return []
        if self.freq is None:  # an irregular series: the rows as given, no grid to find gaps on
            return [(times[steps == k][0], new[k]) for k in sorted(new)]
        first = min(new)
        when = np.datetime_as_string(advance(self.last_time, self.freq, first)[()], unit="s")
        warn_long_gaps([(f"the row at {when}", first - 1)], self.lookback)
        return [
            (advance(self.last_time, self.freq, k)[()], new.get(k, np.full(len(self.columns), np.nan)))
            for k in range(1, max(new) + 1)
        ]

    def _steps_after_last(self, times: np.ndarray) -> np.ndarray:
        """Grid steps from the last observation to each of `times` (k,) int64 (≤ 0: a re-sent row); a
        DataError for a time off the grid or older than the steps kept to recognise re-sent rows."""
        from lruts.data.timestamps import advance, grid_position, snap_near

        kept = len(self._recent.values)
        if self.freq is None:
            later = times > self.last_time
            if not later.all() or np.any(np.diff(times) <= np.timedelta64(0, "ns")):
                raise DataError("new rows must come strictly after the last observation, in time order")
            return np.arange(1, len(times) + 1)
        origin = advance(self.last_time, self.freq, 1 - kept)
        if self.snap:  # a logger's jitter, as the fitted table's was
            times = snap_near(times, origin, self.step_ns)
        steps = grid_position(times, origin, self.freq)
        if (steps < 0).any():
            bad = times[steps < 0][0]
            if bad < origin:
                raise DataError(
                    f"a new row has timestamp {bad}, older than the last {kept} steps kept to recognise re-sent "
                    f"rows (the last observation is at {self.last_time}); send only rows after it"
                )
            raise DataError(
                f"a new row has timestamp {bad}, which is not a {self.freq} step after the last observation "
                f"{self.last_time}: align the timestamps to the series' grid"
            )
        return steps - (kept - 1)

    def _frame(self, forecast: torch.Tensor) -> Any:
        import pandas as pd

        from lruts.data.timestamps import advance

        arr = self.forecast_array()
        steps = np.arange(1, self.horizon + 1)
        if self.freq is None:
            times = self.last_time + steps * np.timedelta64(1, "ns")
        else:
            times = advance(self.last_time, self.freq, steps)
        # one (H, C·(1+Q)) block, columns <series>, <series>_q<q>, ... (one array per column costs ≈0.1 ms each)
        names = [n for name in self.columns for n in (name, *(f"{name}_q{q:g}" for q in self.quantiles))]
        frame = pd.DataFrame(arr.reshape(self.horizon, -1), columns=names)
        frame.insert(0, self.time_col, self.clock.show(times) if self.clock else times)
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
            "outlier_z": -1.0 if self.outlier_z is None else float(self.outlier_z),
        }
        if self.panel is not None:
            return save_torch({**blob, "panel": self.panel.to_dict()}, path)
        blob |= {
            "scaler": self.scaler.to_dict(),
            "columns": self.columns,
            "time_col": self.time_col,
            "time_of_day": self.time_of_day or "",
            "day_periods": self.day_periods or [],
            "freq": self.freq or "",
            "step_ns": self.step_ns or 0,
            "clock": self.clock.to_dict() if self.clock else {},
            "snap": self.snap,
            "decimal_comma": self.decimal_comma,
            "last_time_ns": int(self.last_time.astype("datetime64[ns]").astype(np.int64)),
            "frame_kind": self.frame_kind,
            "stream": _to_device(self._stream.to_dict(), torch.device("cpu")),
            "forecast": self._forecast.cpu(),
            "recent": self._recent.to_dict(),
            "outlier_rule": self._outlier_rule.to_dict(),
            "outliers": [{**o, "time": str(o["time"])} for o in self._outliers],
        }
        return save_torch(blob, path)

    @classmethod
    def load_from(cls, other: LRUForecaster) -> LRUForecaster:
        """An independent copy of a fitted forecaster (weights shared read-only, own stream state)."""
        other._require_fitted()
        fc = copy.copy(other)
        fc._recent, fc.panel = copy.deepcopy(other._recent), copy.deepcopy(other.panel)
        fc._stream = copy.deepcopy(other._stream)  # its interval tracker's ring is written in place
        fc._outliers = list(other._outliers)
        return fc

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
        try:
            net.load_state_dict(blob["state_dict"])
        except RuntimeError as e:  # weights of a shape or name no version of lruts wrote: a damaged file
            first = str(e).splitlines()[0]
            raise DataError(f"{path} holds weights this lruts cannot read ({first}); fit it again") from e
        dev = select_device(device)
        fc = cls._wrapping(net.to(dev), TrainConfig(**blob["train_config"]))
        fc.fast = fast
        z = float(blob.get("outlier_z", -1.0))
        fc.outlier_z = None if z < 0 else z
        if "panel" in blob:
            fc.panel = PanelFront.from_dict(blob["panel"], dev)
            fc.freq, fc.time_col, fc.frame_kind = fc.panel.freq, fc.panel.time_col, fc.panel.frame_kind
            fc.clock = fc.panel.clock
            return fc
        fc.scaler = StandardScaler.from_dict(blob["scaler"])
        fc.columns, fc.time_col, fc.frame_kind = list(blob["columns"]), blob["time_col"], blob["frame_kind"]
        fc.time_of_day = blob.get("time_of_day") or None
        fc.day_periods = list(blob.get("day_periods") or []) or None
        fc.freq, fc.step_ns = blob["freq"] or None, blob["step_ns"] or None
        fc.clock, fc.snap = Clock.from_dict(blob.get("clock")), bool(blob.get("snap", False))
        fc.decimal_comma = list(blob.get("decimal_comma", []))
        fc.last_time = np.datetime64(int(blob["last_time_ns"]), "ns")
        fc._stream = stream_state_from_dict(_to_device(blob["stream"], dev))
        fc._forecast = blob["forecast"].to(dev)
        if "recent" in blob:
            fc._recent = Recent.from_dict(blob["recent"])
            fc._outlier_rule = OutlierRule.from_dict(blob["outlier_rule"])
            fc._outliers = [{**o, "time": np.datetime64(o["time"], "ns")} for o in blob["outliers"]]
        else:  # format ≤ 4 kept no raw readings: re-sent rows cannot be recognised, nothing is flagged
            n = len(fc.columns)
            fc._recent = Recent(np.full((fc.lookback, n), np.nan), np.full((fc.lookback, n), MISSING, np.int8),
                                fc.lookback - 1, np.full(n, np.nan))  # fmt: skip
        return fc


def _one_series(df: Any, time_col: str | None, target_col: str, target_cols: list[str] | None):
    """A wide table of one series fitted with covariates, as the long table of one series the panel path reads:
    (the table with an id column, its name, the time column, the target column). The series' id is its
    target's name; the time column, where not given, the table's first column of times."""
    from lruts.data.read import from_user_frame, pick_time_col

    if isinstance(df, str | Path):
        raise DataError(
            "covariates and calendar features need a long table: pass id_col= (one row per series and time, "
            "the target in target_col=); for a file of one series, read it first (pandas.read_csv(path)) and fit "
            "the DataFrame"
        )
    if target_cols is not None and len(target_cols) != 1:
        raise DataError(
            f"covariates with several target columns {list(target_cols)} need a long table: one row per series and "
            "time, the series' id in id_col= and its value in target_col="
        )
    target = target_cols[0] if target_cols else target_col
    names = from_user_frame(df).schema
    if ID_COLUMN in names:
        raise DataError(f"the table has a column '{ID_COLUMN}': if it names the series, pass id_col='{ID_COLUMN}'")
    if target not in names:
        raise DataError(
            f"covariates and calendar features on a table without id_col read one series: name it with "
            f"target_col= (columns: {list(names)}); several series with covariates need a long table (id_col=)"
        )
    times = [n for n, t in names.items() if t.is_temporal()]
    time_col = time_col or (times[0] if times else pick_time_col(list(names), None, {}))
    return with_series_id(df, ID_COLUMN, target), ID_COLUMN, time_col, target


def _frame_kind(df: Any) -> str:
    return "polars" if type(df).__module__.startswith("polars") else "pandas"
