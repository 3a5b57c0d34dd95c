"""One browser session's live forecast: its own stream over the shared weights.

    live = LiveStream(forecaster, series, start)   # forecaster: positioned after series rows [0, start)
    live.replay(1)                                 # the next held-out observation → advance() → forecast
    live.push(rows)                                # rows pasted or uploaded (validated by dashboard.uploads)
    live.recompute()                               # the same forecast from the whole history, timed

Every arrival goes through `LRUForecaster.advance` (the recurrent mode, O(1) per observation — what
`update()` does after reading a DataFrame) and `forecast_array()`; the time the two take (update +
forecast, no drawing) is recorded per observation, next to the time a full recompute from the whole
history takes. Arrivals are kept as arrays: DataFrames are built only for what is drawn. Nothing here
models anything: it calls the forecaster and keeps the session's bookkeeping.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lruts import LRUForecaster


@dataclass
class Recompute:
    steps: int  # length of the history recomputed from
    ms: float  # wall time of set_history over it (parallel mode)
    # largest |incremental − recomputed| over the point forecast (a recompute restarts the intervals' tracker,
    # lruts/forecasting/blend.py), None if not compared
    max_abs_diff: float | None
    cpu_ms: float | None = None  # CPU time of the process meanwhile (all threads): robust to a busy machine


class LiveScore:
    """Errors of the forecasts issued in this session against the observations that arrived after them:
    each (forecast step, actual) pair counts once, on the original scale, per series. Forecast steps are
    matched to arrivals by time, so a skipped step scores nothing, and a missing reading (NaN) is left
    out of its series' score."""

    def __init__(self, horizon: int, n_series: int) -> None:
        # (times (H,), forecast (H, C, 1+Q)) of the last H forecasts: 35 MB for 321 series, H=96
        self.pending: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=horizon)
        self.abs_err = np.zeros(n_series)
        self.sq_err = np.zeros(n_series)
        self.inside = np.zeros(n_series)
        self.pairs = np.zeros(n_series, dtype=np.int64)

    def issue(self, times: np.ndarray, forecast: np.ndarray) -> None:
        """times (H,) datetime64: the steps of forecast (H, C, 1 + Q)."""
        self.pending.append((np.asarray(times, "datetime64[ns]"), forecast.astype(np.float32)))

    def observe(self, time: np.datetime64, actual: np.ndarray) -> None:
        """actual (C,) at `time`, NaN where a series' reading is missing."""
        seen = np.isfinite(actual)
        for times, forecast in self.pending:
            k = int(np.searchsorted(times, np.datetime64(time, "ns")))
            if k == len(times) or times[k] != time:
                continue
            err = np.where(seen, forecast[k, :, 0] - actual, 0.0)
            self.abs_err += np.abs(err)
            self.sq_err += err**2
            if forecast.shape[-1] > 2:  # an interval: lowest and highest quantile
                self.inside += seen & (actual >= forecast[k, :, 1]) & (actual <= forecast[k, :, -1])
            self.pairs += seen

    def table(self, columns: list[str], quantiles: list[float]) -> pd.DataFrame:
        n = np.where(self.pairs > 0, self.pairs, np.nan)  # a series nothing was scored for: NaN, not 0
        out = pd.DataFrame({"series": columns, "MAE": self.abs_err / n, "MSE": self.sq_err / n, "pairs": self.pairs})
        if len(quantiles) >= 2:
            out[f"coverage {quantiles[0]:g}–{quantiles[-1]:g}"] = self.inside / n
        return out


class LiveStream:
    def __init__(self, forecaster: LRUForecaster, series, start: int, *, initial: Recompute | None = None) -> None:
        """forecaster: positioned after rows [0, start) of `series` (shared: never mutated here);
        rows [start, len) are the held-out observations to replay."""
        self.fc = LRUForecaster.load_from(forecaster)
        self.series, self.start = series, start
        self.arrived: list[tuple[np.ndarray, np.ndarray]] = []  # (times (k,), values (k, C)) per push
        self.update_ms: list[float] = []  # wall time of each update (advance + forecast)
        self.update_cpu_ms: list[float] = []  # CPU time of the process during each update
        self.recomputed = initial
        self.score = LiveScore(self.fc.horizon, len(self.fc.columns))
        self.score.issue(self._forecast_times(self.fc), self.fc.forecast_array())
        self._base: pd.DataFrame | None = None

    # ------------------------------------------------------------------ arrivals
    @property
    def n_arrived(self) -> int:
        return len(self.update_ms)

    def _cursor(self) -> int:
        """Row of `series` of the first observation after the stream's last one."""
        return int(np.searchsorted(self.series.timestamps, self.fc.last_time, side="right"))

    def remaining(self) -> int:
        return len(self.series) - max(self._cursor(), self.start)

    def _held_out(self, k: int) -> slice:
        """Rows of `series` of the next k held-out observations."""
        lo = max(self._cursor(), self.start)
        return slice(lo, min(lo + k, len(self.series)))

    def replay(self, k: int = 1) -> int:
        """Stream the next k held-out observations; returns how many there were."""
        rows = self._held_out(k)
        if rows.stop > rows.start:
            self._advance(self.series.timestamps[rows], self.series.values[rows])
        return rows.stop - rows.start

    def push(self, rows: pd.DataFrame) -> None:
        """Advance the stream by `rows` (time column + every series), one observation at a time.
        All or nothing: if a row is rejected (DataError), the stream stays where it was."""
        self._advance(*self.fc.rows_to_arrays(rows))

    def _advance(self, times: np.ndarray, values: np.ndarray) -> None:
        fc = LRUForecaster.load_from(self.fc)
        elapsed, cpu, forecasts = [], [], []
        for i in range(len(times)):
            t0, c0 = time.perf_counter(), time.process_time()
            fc.advance(times[i : i + 1], values[i : i + 1])  # the recurrent step
            forecasts.append(fc.forecast_array())  # and the new forecast
            elapsed.append(1e3 * (time.perf_counter() - t0))
            cpu.append(1e3 * (time.process_time() - c0))
            forecasts[-1] = (self._forecast_times(fc), forecasts[-1])
        self.fc = fc
        for t, actual, issued in zip(times, np.asarray(values, np.float64), forecasts, strict=True):
            self.score.observe(t, actual)
            self.score.issue(*issued)
        self.arrived.append((np.asarray(times, "datetime64[ns]"), np.asarray(values, np.float32)))
        self.update_ms += elapsed
        self.update_cpu_ms += cpu

    @staticmethod
    def _forecast_times(fc: LRUForecaster) -> np.ndarray:
        """(H,) the steps of fc's current forecast."""
        from lruts.data.timestamps import advance

        return advance(fc.last_time, fc.freq, np.arange(1, fc.horizon + 1))

    # ------------------------------------------------------------------ full recompute
    def recompute(self) -> Recompute:
        """Recompute the forecast from the whole history (parallel mode), time it, compare it."""
        history = self.history()
        fc = LRUForecaster.load_from(self.fc)
        t0, c0 = time.perf_counter(), time.process_time()
        fc.set_history(history)
        ms, cpu_ms = 1e3 * (time.perf_counter() - t0), 1e3 * (time.process_time() - c0)
        diff = float(np.max(np.abs(fc.forecast_array()[..., 0] - self.fc.forecast_array()[..., 0])))
        self.recomputed = Recompute(len(history), ms, diff, cpu_ms)
        return self.recomputed

    # ------------------------------------------------------------------ what is drawn
    def forecast(self) -> pd.DataFrame:
        return drawn(self.fc.predict(), self.fc)

    def last_values(self) -> np.ndarray:
        """(C,) the stream's last observation."""
        if self.arrived:
            return self.arrived[-1][1][-1].astype(np.float64)
        return self.series.values[self.start - 1].astype(np.float64)

    def history(self) -> pd.DataFrame:
        """Every observation so far: the dataset's rows before `start`, then the arrivals."""
        if self._base is None:
            self._base = self._frame(0, self.start)
        if not self.arrived:
            return self._base
        return pd.concat([self._base, self._arrivals(len(self.arrived))], ignore_index=True)

    def recent(self, n: int) -> pd.DataFrame:
        """The last n observations."""
        chunks, have = 0, 0
        while chunks < len(self.arrived) and have < n:
            chunks += 1
            have += len(self.arrived[-chunks][0])
        parts = [self._arrivals(chunks)] if chunks else []
        if have < n:
            parts.insert(0, self._frame(max(0, self.start - (n - have)), self.start))
        return pd.concat(parts, ignore_index=True).tail(n)

    def _arrivals(self, chunks: int) -> pd.DataFrame:
        """The last `chunks` pushes as rows."""
        part = self.arrived[-chunks:]
        times = np.concatenate([t for t, _ in part])
        values = np.concatenate([v for _, v in part])
        return values_frame(times, values, self.fc.columns, self.fc.time_col)

    def actuals(self) -> pd.DataFrame:
        """The dataset's observations inside the current forecast's horizon (where known)."""
        lo = self._cursor()
        return self._frame(lo, min(lo + self.fc.horizon, len(self.series)))

    def _frame(self, lo: int, hi: int) -> pd.DataFrame:
        return rows_frame(self.series, lo, hi, self.fc.time_col)


def drawn(forecast: pd.DataFrame, fc: LRUForecaster) -> pd.DataFrame:
    """A forecast frame in the times the history is drawn in: as stored (a zone-aware table's forecasts come
    dated in its zone, a table of step numbers' numbered)."""
    if fc.clock is None or fc.clock.shows_stored:
        return forecast
    from lruts.data.timestamps import stored_times

    return forecast.assign(**{fc.time_col: stored_times(forecast[fc.time_col], fc.clock)})


def rows_frame(series, lo: int, hi: int, time_col: str) -> pd.DataFrame:
    """Rows [lo, hi) of a lruts Series as a DataFrame: time_col + one column per series."""
    return values_frame(series.timestamps[lo:hi], series.values[lo:hi], series.columns, time_col)


def values_frame(times: np.ndarray, values: np.ndarray, columns: list[str], time_col: str) -> pd.DataFrame:
    """Observations as a DataFrame: time_col + one column per series."""
    data = {time_col: times}
    data.update({c: values[:, j] for j, c in enumerate(columns)})
    return pd.DataFrame(data)
