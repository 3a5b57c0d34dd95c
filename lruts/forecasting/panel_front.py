"""The long-format side of `LRUForecaster`: a panel of series with covariates, one global network over
all of them, one stream per series.

    fc.fit(df, id_col="unique_id", time_col="ds", target_col="y", future_covariates=["price_fc"],
           past_covariates=["volume"], static_covariates=static_df, calendar=True)
    fc.predict(future=futr_df)   # id, time, forecast, forecast_q<q>, missing_inputs, outlier_inputs
    fc.update(new_rows)          # long rows of any series, in any order; gaps, NaN, re-sent rows, outliers

The network is channel-independent over one channel: every series' windows are batched together, and
its forecast reads the future covariates of the H steps after the last observation. Those may be known
only when the forecast is asked for (`predict(future=...)`), so each series' stream keeps the network's
state *before* its last observation and that observation's inputs, and runs the last step when the
forecast is asked for: one step, O(1), like each new observation. The forecast it issues is kept until the
series' inputs change, so a forecast of a panel after new rows steps only the series they belong to.

Result columns: `missing_inputs` counts the series' inputs among its last `lookback` steps that were
missing (a NaN target, a skipped step, or an outlier); `outlier_inputs` those of them that were outliers.

Streams (`update`), per series:
- a missing reading (NaN target, or a grid step no row was given for) advances the state with the input
  marked missing; its covariates, when given, are read;
- a row at or before the last observation is a re-sent one: ignored when its target equals the one kept
  for that step (NaN equals NaN), a DataError when it differs; the raw targets of the last `lookback`
  steps are kept to tell, and an older row is refused;
- an outlier (see `OutlierRule`) enters as missing and is counted in `outlier_inputs` and listed in
  `LRUForecaster.outliers`;
- a series the forecaster was not fitted on joins from its rows, no refit (`PanelFront.join`).
Calendar features (`calendar=True`) are future covariates derived from the timestamps (see
`calendar_features`), computed for the horizon too.
"""

from __future__ import annotations

import dataclasses
import logging
import numbers
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from lruts.data.read import MISSING_CODES, new_row_numbers
from lruts.data.timestamps import Clock, advance, stored_times, with_dated_times
from lruts.errors import DataError
from lruts.forecasting.blend import stream_state_from_dict

log = logging.getLogger("lruts")

_DAY_NS = 86_400 * 10**9
GRID_AHEAD = 8  # a stream dates its steps (and their calendar features) this many times 1 + H at once


# ---------------------------------------------------------------------------------------------- calendar
def calendar_features(ts: np.ndarray, freq: str) -> tuple[np.ndarray, list[str]]:
    """sin/cos pairs of the cycles a series of step `freq` can show: below a day, the time of day and the
    day of the week; on a session, the time of day within the session (opening to the slot after the close)
    and the day of the week; daily and business days, the day of the week and of the year; weekly, the day
    of the year; monthly and longer, the month of the year. ts (n,) datetime64 → (n, 2k) float64, names."""
    from lruts.data.timestamps import business_days, session, step_ns

    ts = np.asarray(ts).astype("datetime64[ns]")
    day = ts.astype("datetime64[D]")
    step, hours = step_ns(freq), session(freq)
    tod = (ts - day.astype("datetime64[ns]")).astype(np.int64)
    daily_or_finer = business_days(freq) is not None or hours is not None or (step is not None and step <= _DAY_NS)
    cycles = []
    if step is not None and step < _DAY_NS:
        cycles.append(("time_of_day", tod / _DAY_NS))
    if hours is not None:
        size, open_ns, slots = hours
        cycles.append(("time_of_day", (tod - open_ns) / (size * slots)))
    if daily_or_finer:
        cycles.append(("day_of_week", ((day.astype(np.int64) + 3) % 7) / 7))  # 1970-01-01 was a Thursday
    if (step is not None and step >= _DAY_NS) or business_days(freq) is not None:
        year = ts.astype("datetime64[Y]").astype("datetime64[D]")
        cycles.append(("day_of_year", (day - year).astype(np.int64) / 365.25))
    if step is None and business_days(freq) is None and hours is None:
        cycles.append(("month_of_year", (ts.astype("datetime64[M]").astype(np.int64) % 12) / 12))
    columns, names = [], []
    for name, phase in cycles:
        columns += [np.sin(2 * np.pi * phase), np.cos(2 * np.pi * phase)]
        names += [f"calendar_{name}_sin", f"calendar_{name}_cos"]
    return np.stack(columns, axis=1).astype(np.float64), names


def with_calendar(panel):
    """The panel with calendar features appended to its future covariates, for every future row."""
    blocks = [
        calendar_features(advance(panel.starts[i], panel.freq, np.arange(m)), panel.freq)[0]
        for i, m in enumerate(panel.future_lengths.tolist())
    ]
    names = calendar_features(panel.starts[:1], panel.freq)[1]
    future = np.concatenate([panel.future, np.concatenate(blocks).astype(np.float32)], axis=1)
    return dataclasses.replace(panel, future=future, future_names=[*panel.future_names, *names])


# ---------------------------------------------------------------------------------------------- outliers
# a reading like the training data's is never an outlier: a scale is at least the training's largest deviation
# × TAIL_MARGIN / z, so no training reading scores above z / TAIL_MARGIN. Real series are heavy-tailed (an
# electricity client's hourly step changes: MAD 1 kWh, largest 60): by the MAD alone, 6% of one client's
# training readings and the peaks of its later, busier months scored above 10 and entered as missing
TAIL_MARGIN = 2.0
_RULE_ARRAYS = ("level_median", "level_scale", "change_scale")  # an OutlierRule's per-series arrays
_CODES = np.array(MISSING_CODES)


def _robust_scale(v: np.ndarray, z: float | None = None) -> float:
    """1.4826 · the median absolute deviation of the finite values (σ for normal data); the mean absolute
    deviation when more than half are equal; 1 for a constant or empty series; given z, at least their largest
    absolute deviation × TAIL_MARGIN / z."""
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return 1.0
    dev = np.abs(v - np.median(v))
    scale = 1.4826 * float(np.median(dev))
    if scale == 0:
        scale = 1.2533 * float(dev.mean())
    if z:
        scale = max(scale, float(dev.max()) * TAIL_MARGIN / z)
    return scale if scale > 0 else 1.0


@dataclass
class OutlierRule:
    """A reading x of channel c is an outlier when both robust z-scores exceed `z`:
    |x − median of the training levels| / level_scale, and |x − the last reading| / change_scale
    (scales: `_robust_scale` of the training levels and of their step changes, at least their largest
    deviation × TAIL_MARGIN / z), and its change exceeds TAIL_MARGIN × the largest in the stream's recent
    record (`flags`). A trend (levels drift, changes stay small), a jump back to familiar levels, a reading
    as far out as the training's own or a series that now moves more than it did then is not flagged; a
    reading of 1e30 is, and so is every missing-data code (read.MISSING_CODES: a logger's −9999) whose level
    score exceeds `z`, however many follow (a run of them is no new level). z None: nothing is flagged."""

    level_median: np.ndarray  # (C,) float64
    level_scale: np.ndarray
    change_scale: np.ndarray
    z: float | None

    @classmethod
    def fit(cls, series: list[np.ndarray], z: float | None) -> OutlierRule:
        """series: each channel's training values (NaN = missing)."""
        observed = [s[np.isfinite(s)].astype(np.float64) for s in series]
        return cls(
            np.array([np.median(s) if len(s) else 0.0 for s in observed]),
            np.array([_robust_scale(s, z) for s in observed]),
            np.array([_robust_scale(np.diff(s), z) for s in observed]),
            z,
        )

    def scores(self, x: np.ndarray, last: np.ndarray, channels=slice(None)) -> np.ndarray:
        """The smaller of the two z-scores of readings x (C,) given the last readings (C,)."""
        level = np.abs(x - self.level_median[channels]) / self.level_scale[channels]
        change = np.abs(x - last) / self.change_scale[channels]
        return np.minimum(level, np.where(np.isfinite(last), change, level))

    def flags(self, x: np.ndarray, recent: Recent, channels=slice(None)) -> np.ndarray:
        """Which readings x (C,) are outliers, given the stream's record: both scores above z, and a change
        from the last reading more than TAIL_MARGIN × the largest recent one (a series that moves more than
        it did in training, a price that rose tenfold, is not flagged for moving as it now does)."""
        if self.z is None:
            return np.zeros(np.shape(x), dtype=bool)
        last = recent.last_reading
        flagged = np.isfinite(x) & (self.scores(x, last, channels) > self.z)
        if flagged.any():  # rare: the recent record is read only then
            flagged &= np.abs(x - last) > TAIL_MARGIN * recent.largest_change()
        code = (np.asarray(x)[..., None] == _CODES).any(-1)  # (np.isin: 7× slower on a row)
        if code.any():
            flagged |= code & (np.abs(x - self.level_median[channels]) / self.level_scale[channels] > self.z)
        return flagged

    def to_dict(self) -> dict:
        return {
            "level_median": self.level_median.tolist(),
            "level_scale": self.level_scale.tolist(),
            "change_scale": self.change_scale.tolist(),
            "z": -1.0 if self.z is None else float(self.z),
        }

    @classmethod
    def from_dict(cls, d: dict) -> OutlierRule:
        z = float(d["z"])
        return cls(*(np.asarray(d[k], dtype=np.float64) for k in ("level_median", "level_scale", "change_scale")),
                   None if z < 0 else z)  # fmt: skip


# ---------------------------------------------------------------------------------------------- the record
OBSERVED, MISSING, OUTLIER = 0, 1, 2


@dataclass
class Recent:
    """A stream's last K grid positions: raw targets (K, C) float64 (NaN: missing), status (K, C) int8
    (OBSERVED, MISSING, OUTLIER), the position of the last row `pos` (row K − 1), and the last reading
    per channel (C,) (NaN before any), which an outlier's change is measured from. A reading flagged as an
    outlier counts as one: a series that jumps to a new level and stays there has one outlier, not every
    reading after the jump (a random walk's trend would otherwise shut its stream for good)."""

    values: np.ndarray
    status: np.ndarray
    pos: int
    last_reading: np.ndarray

    @classmethod
    def start(cls, history: np.ndarray, status: np.ndarray, k: int) -> Recent:
        """From a history (T, C) and its status (T, C): its last k rows, NaN/MISSING-padded in front."""
        last = np.full(history.shape[1], np.nan)
        for c in range(history.shape[1]):
            seen = np.flatnonzero(status[:, c] != MISSING)
            last[c] = history[seen[-1], c] if len(seen) else np.nan
        pad = max(0, k - len(history))
        values = np.concatenate([np.full((pad, history.shape[1]), np.nan), history[-k:]]).astype(np.float64)
        status = np.concatenate([np.full((pad, history.shape[1]), MISSING, np.int8), status[-k:]]).astype(np.int8)
        return cls(values, status, len(history) - 1, last)

    def reading(self, p: int, where: str) -> tuple[np.ndarray, np.ndarray]:
        """The raw values (C,) and status (C,) kept for position p ≤ pos; a DataError when it is older
        than the record. where: the series and time, for the message."""
        row = len(self.values) - 1 - (self.pos - p)
        if row < 0:
            raise DataError(
                f"{where}: this row is older than the last {len(self.values)} steps kept to recognise re-sent "
                "rows; send only rows after the last observation"
            )
        return self.values[row], self.status[row]

    def push(self, values: np.ndarray, status: np.ndarray) -> None:
        self.values = np.concatenate([self.values[1:], values[None]])
        self.status = np.concatenate([self.status[1:], status[None]])
        self.pos += 1
        self.last_reading = np.where(status != MISSING, values, self.last_reading)

    def largest_change(self) -> np.ndarray:
        """The largest absolute change between consecutive observed readings in the record, per channel (C,)
        (0 where there is none)."""
        both = (self.status[1:] == OBSERVED) & (self.status[:-1] == OBSERVED)
        return np.where(both, np.abs(np.diff(self.values, axis=0)), 0.0).max(axis=0, initial=0.0)

    def counts(self, seen: int) -> tuple[np.ndarray, np.ndarray]:
        """Missing and outlier inputs per channel among the last min(K, seen) positions."""
        window = self.status[-min(len(self.status), seen) :]
        return (window != OBSERVED).sum(0), (window == OUTLIER).sum(0)

    def to_dict(self) -> dict:
        return {
            "values": torch.from_numpy(self.values.copy()),
            "status": torch.from_numpy(self.status.copy()),
            "pos": int(self.pos),
            "last_reading": torch.from_numpy(self.last_reading.copy()),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Recent:
        last = d["last_reading"] if "last_reading" in d else d["last_observed"]  # the key until 2026-12-07
        return cls(d["values"].numpy(), d["status"].numpy(), int(d["pos"]), last.numpy())


def check_resent(kept: float, status: int, value: float, where: str) -> None:
    """A reading `value` for a step already consumed, whose raw value `kept` and status were recorded:
    fine (it is ignored) when equal (NaN equals NaN); a DataError when it differs. where: the series and
    time, for the message."""
    if status == MISSING and np.isnan(kept) and np.isfinite(value):
        raise DataError(
            f"{where} arrived after that step was consumed as missing (a later row came first); a stream "
            "cannot go back: send rows in time order across calls, or call set_history() with the full rows"
        )
    # equal in float32: the history a forecaster was fitted on is kept as float32, the user's row may be float64
    if not ((np.isnan(kept) and np.isnan(value)) or np.float32(kept) == np.float32(value)):
        raise DataError(
            f"{where} was already received with the value {kept}, now {value}: a re-sent row must repeat it. "
            "To correct history, call set_history() with the corrected rows"
        )


# ---------------------------------------------------------------------------------------------- the panel front
class Issued(NamedTuple):
    """A series' forecast as issued: (H, 1 + Q) on the original scale, its steps' times (H,), and how many
    of the inputs it read were missing and, of those, outliers."""

    values: np.ndarray
    times: np.ndarray
    missing: int
    outliers: int


@dataclass
class Track:
    """One series' stream: its grid origin, the network's state before the last observation (None when
    that is the first), the last observation's inputs, the raw user future covariates of positions
    pos, pos + 1, ... (ahead (n, F_user), NaN = unknown), and the record of its last readings.

    `after` is the state after the last observation once a forecast has run that step (None before):
    the next observation starts from it instead of running the step again. It reads only the covariates
    of the last observation's own step, which no later call changes. `issued` is the forecast that step
    issued, kept until a new observation or new future covariates of the series: a forecast of a panel
    steps only the series that changed."""

    start: np.datetime64
    state: Any
    last: dict[str, torch.Tensor | None]
    ahead: np.ndarray
    recent: Recent
    seen: int  # steps consumed, the last one included
    after: Any = None
    issued: Issued | None = None

    @property
    def pos(self) -> int:
        return self.recent.pos


class PanelFront:
    """What a long-fitted LRUForecaster holds beside its network (see the module docstring)."""

    def __init__(self, *, ids, freq, id_col, time_col, target_col, future_names, past_names, static_names,
                 calendar, scaler, static, outliers, frame_kind, lookback, horizon,
                 integer_ids: bool = False, clock: Clock | None = None,
                 one_series: str | None = None, snap: bool = False,
                 time_of_day: str | None = None, day_periods: list[int] | None = None,
                 decimal_comma: list[str] | None = None) -> None:  # fmt: skip
        self.ids, self.freq = list(ids), freq  # ids as text: rows are matched by str(id)
        self.integer_ids = integer_ids  # the fitted table's ids were integers: what is returned gives them back
        self.clock = clock  # how the fitted table's zone was read: new rows alike, forecasts in it
        # one series fitted from a table without an id column: the id its rows get where they have none
        self.one_series = one_series
        self.snap = snap  # the fitted table's readings were jittered: a new row is moved to its nearest step
        self.decimal_comma = list(decimal_comma or [])  # the fitted table's columns written with a decimal comma
        # the fitted table's dates were joined with this column's times of day (or day periods: [first, seconds])
        self.time_of_day, self.day_periods = time_of_day, day_periods
        self.id_col, self.time_col, self.target_col = id_col, time_col, target_col
        self.future_names, self.past_names, self.static_names = list(future_names), list(past_names), list(static_names)
        self.calendar = calendar
        self.scaler = scaler  # PanelScaler
        self.static = static  # (n_series, S) float32 tensor, scaled
        self.outlier_rule: OutlierRule = outliers
        self.frame_kind = frame_kind
        self.lookback, self.horizon = lookback, horizon
        self.tracks: list[Track] = []
        self.outliers: list[dict] = []  # every reading flagged by the outlier rule: id, time, value, z
        self._index = {s: i for i, s in enumerate(self.ids)}
        self._grids: dict[int, tuple] = {}  # per series: what _grid() last dated
        self._id_column: dict[int, Any] = {}  # the forecast frame's id column per horizon

    # ------------------------------------------------------------------ inputs of one step
    def _future_rows(self, start: np.datetime64, positions: np.ndarray, raw: np.ndarray) -> torch.Tensor:
        """Scaled future covariates (n, F) at grid `positions` of a series starting at `start`: the user's
        raw (n, F_user) and the calendar's; unknown cells read 0 (the training mean)."""
        if self.calendar:
            cal = calendar_features(advance(start, self.freq, positions), self.freq)[0]
            raw = np.concatenate([raw, cal], axis=1)
        scaled = np.nan_to_num(self.scaler.future.transform(raw.astype(np.float64)), nan=0.0)
        return torch.from_numpy(scaled.astype(np.float32))

    def index(self, series_id: str) -> int:
        """The position of series `series_id`; a DataError for an id the forecaster was not fitted on."""
        if series_id not in self._index:
            raise DataError(
                f"unknown series '{series_id}'; the forecaster was fitted on {self.ids[:5]}"
                f"{' …' if len(self.ids) > 5 else ''} ({len(self.ids)} series)"
            )
        return self._index[series_id]

    @property
    def n_future(self) -> int:
        return len(self.scaler.future.mean)

    def _scale_target(self, i: int, y: np.ndarray) -> np.ndarray:
        return (y - self.scaler.target.mean[i]) / self.scaler.target.std[i]

    def _step_inputs(self, i: int, y: float, observed: bool, past: np.ndarray) -> dict[str, torch.Tensor | None]:
        x = self._scale_target(i, y) if observed else 0.0
        p = None
        if len(self.past_names):
            p = torch.from_numpy(np.nan_to_num(self.scaler.past.transform(past[None].astype(np.float64)), nan=0.0))
            p = p.float()
        return {"x": torch.tensor([[x]], dtype=torch.float32), "mask": torch.tensor([[observed]]), "past": p}

    def _future_block(self, i: int, track: Track) -> torch.Tensor | None:
        """(1, 1 + H, F): the covariates of series i's last observation's step and of the H after it."""
        if not self.n_future:
            return None
        raw = _rows(track.ahead, 1 + self.horizon)
        if self.calendar:
            raw = np.concatenate([raw, self._grid(i, track)[1]], axis=1)
        scaled = np.nan_to_num(self.scaler.future.transform(raw.astype(np.float64)), nan=0.0)
        return torch.from_numpy(scaled.astype(np.float32))[None]

    def _grid(self, i: int, track: Track) -> tuple[np.ndarray, np.ndarray | None]:
        """Series i's times at grid positions pos, ..., pos + H (1 + H,) and their calendar features
        (1 + H, f) (None without), dated GRID_AHEAD · (1 + H) positions at a time: a stream's step slices
        them instead of dating its steps anew."""
        start, first, times, features = self._grids.get(i, (None, 0, np.empty(0, "datetime64[ns]"), None))
        n = 1 + self.horizon
        if start != track.start or not first <= track.pos <= first + len(times) - n:
            first = track.pos
            times = advance(track.start, self.freq, first + np.arange(GRID_AHEAD * n))
            features = calendar_features(times, self.freq)[0] if self.calendar else None
            self._grids[i] = (track.start, first, times, features)
        k = track.pos - first
        return times[k : k + n], None if features is None else features[k : k + n]

    def _run_last(self, net, i: int, track: Track, stack_step) -> torch.Tensor:
        """The network's step over series i's last observation: its forecast (1, H, 1, 1 + Q); the state
        after it is kept in track.after."""
        inputs = {"mask_t": track.last["mask"], "future": self._future_block(i, track), "past_t": track.last["past"]}
        inputs = to_device(inputs, self.static.device)
        static = self.static[i : i + 1] if self.static.shape[1] else None
        y, track.after = net.step(track.last["x"].to(self.static.device), track.state, stack_step, static=static,
                                  **inputs)  # fmt: skip
        return y

    # ------------------------------------------------------------------ consuming a whole history
    @torch.no_grad()
    def consume(self, net, panel, series: list[int] | None = None) -> None:
        """Set the streams of `panel`'s series (all; or the positions `series` of this front's ids, one per
        panel series) from their whole histories, in parallel mode."""
        net.eval()
        if not self.tracks:
            self.tracks = [None] * len(self.ids)
        targets = range(len(panel)) if series is None else series
        for j, i in enumerate(targets):
            self.tracks[i] = self._consume_one(net, panel, j, i)

    def _consume_one(self, net, panel, j: int, i: int) -> Track:
        y = panel.series(j).astype(np.float64)
        t_len = len(y)
        status = np.where(np.isnan(y), MISSING, OBSERVED).astype(np.int8)
        f0, m = panel.future_offsets[j], panel.future_lengths[j]
        user_future = panel.future[f0 : f0 + m, : len(self.future_names)].astype(np.float64)
        o = panel.offsets[j]
        past = panel.past[o : o + t_len].astype(np.float64)
        track = Track(panel.starts[j], None, {}, user_future[t_len - 1 :], Recent.start(y[:, None], status[:, None],
                      self.lookback), t_len)  # fmt: skip
        observed = ~np.isnan(y)
        track.last = self._step_inputs(i, y[-1], bool(observed[-1]), past[-1])
        if t_len > 1:
            n = t_len - 1
            x = torch.from_numpy(np.nan_to_num(self._scale_target(i, y[:n])).astype(np.float32))[None, :, None]
            inputs = {"mask": torch.from_numpy(observed[:n])[None, :, None]}
            if self.n_future:
                raw = _rows(user_future, n + self.horizon)
                inputs["future"] = self._future_rows(track.start, np.arange(n + self.horizon), raw)[None]
            if self.past_names:
                scaled = np.nan_to_num(self.scaler.past.transform(past[:n]), nan=0.0)
                inputs["past"] = torch.from_numpy(scaled.astype(np.float32))[None]
            if self.static.shape[1]:
                inputs["static"] = self.static[i : i + 1]
            _, track.state = net.stream_from(x.to(self.static.device), **to_device(inputs, self.static.device))
        return track

    # ------------------------------------------------------------------ forecasting
    def _covered_ahead(self, future, last: dict[int, int] | None = None) -> dict[int, np.ndarray]:
        """The `ahead` of each series `future` has rows for, with them merged in (not yet stored); a
        DataError when the user future covariates of a series whose forecast will run (one given rows here,
        one an update moves to position `last[i]`, one without a kept forecast) do not cover the horizon
        after its last observation, naming it and the missing timestamps."""
        last = last or {}
        merged = {}
        if future is not None:
            given = self._read(future, self.future_names, "the future covariates frame", "predict(future=...)")
            for i, pos, rows in self._rows_by_series(given, "the future covariates frame"):
                block = given.values[rows]
                offset = pos - self.tracks[i].pos
                keep = offset > 0  # rows at or before the last observation: already consumed
                merged[i] = _set_rows(self.tracks[i].ahead, offset[keep], block[keep])
        if self.future_names:
            stale = {i for i, t in enumerate(self.tracks) if t.issued is None}
            for i in sorted(stale | set(merged) | set(last)):
                ahead = merged.get(i, self.tracks[i].ahead)
                end = last.get(i, self.tracks[i].pos)
                skip = end - self.tracks[i].pos
                need = _rows(ahead, skip + 1 + self.horizon)[skip + 1 :]
                gaps = np.flatnonzero(~np.isfinite(need).all(axis=1))
                if len(gaps):
                    times = advance(self.tracks[i].start, self.freq, end + 1 + gaps)
                    cols = [c for k, c in enumerate(self.future_names) if not np.isfinite(need[gaps, k]).all()]
                    shown = [str(t)[:19].replace("T", " ") for t in times[:5]]
                    raise DataError(
                        f"the future covariates do not cover the horizon of series '{self.ids[i]}': {cols} missing "
                        f"at {shown}{' …' if len(times) > 5 else ''} ({len(times)} of {self.horizon} steps); pass "
                        f"them for the next {self.horizon} steps in predict(future=...) or update(..., future=...)"
                    )
        return merged

    def take_future(self, future, last: dict[int, int] | None = None) -> None:
        """Store `future`'s covariates once they cover every series' horizon (see _covered_ahead)."""
        for i, ahead in self._covered_ahead(future, last).items():
            self.tracks[i].ahead, self.tracks[i].issued = ahead, None

    @torch.inference_mode()
    def forecast_array(self, net, stack_step, future=None) -> np.ndarray:
        """(n_series, H, 1 + Q) on the original scale; stores `future`'s covariates once they cover."""
        self.take_future(future)
        for i, track in enumerate(self.tracks):
            if track.issued is None:
                y = self._run_last(net, i, track, stack_step)[0, :, 0].cpu().numpy()
                missing, outliers = (int(c[0]) for c in track.recent.counts(track.seen))
                y = y * self.scaler.target.std[i] + self.scaler.target.mean[i]
                track.issued = Issued(y, self._grid(i, track)[0][1:], missing, outliers)
        return np.stack([track.issued.values for track in self.tracks])

    @property
    def labels(self) -> list:
        """The ids as the fitted table gave them (integers, or text)."""
        return [int(s) for s in self.ids] if self.integer_ids else self.ids

    def predict(self, net, stack_step, quantiles, future=None) -> Any:
        import pandas as pd

        arr = self.forecast_array(net, stack_step, future)  # (n, H, 1 + Q)
        h = arr.shape[1]
        if h not in self._id_column:  # the dtype pandas gives the ids, chosen once
            self._id_column[h] = pd.Series(np.repeat(self.labels, h)).array
        issued = [t.issued for t in self.tracks]
        times = np.concatenate([f.times for f in issued])
        shown = self.clock.show(times) if self.clock else times
        columns = {self.id_col: self._id_column[h].copy(), self.time_col: shown, "forecast": arr[..., 0].reshape(-1)}
        for k, q in enumerate(quantiles):
            columns[f"forecast_q{q:g}"] = arr[..., 1 + k].reshape(-1)
        columns["missing_inputs"] = np.repeat(np.array([f.missing for f in issued], np.int64), h)
        columns["outlier_inputs"] = np.repeat(np.array([f.outliers for f in issued], np.int64), h)
        # in one go, on fresh arrays (the ids' a copy: a user's edit must not reach the next frame)
        frame = pd.DataFrame(columns, copy=False)
        if self.frame_kind == "polars":
            import polars as pl

            return pl.from_pandas(frame)
        return frame

    # ------------------------------------------------------------------ streaming
    def as_fitted(self, frame, call: str = "update()"):
        """`frame` (pandas or polars) as pandas, read as fit read its table: with the id column where the
        forecaster's one series was given without one, and its dates joined with their times of day (or day
        periods) where fit's were."""
        frame = _pandas(frame, call)
        frame = with_series_id(frame, self.id_col, self.one_series) if self.one_series else frame
        return with_dated_times(frame, self.time_col, self.time_of_day, self.day_periods)

    def _read(self, frame, columns: list[str], what: str, call: str) -> LongRows:
        """`frame`'s ids, times and `columns` as numbers (a DataError for a missing column, or a cell that
        holds text but no number)."""
        frame = self.as_fitted(frame, call)
        _require_columns(frame, [self.id_col, self.time_col, *columns], what)
        return read_long_rows(
            frame, self.id_col, self.time_col, columns, what, clock=self.clock, decimal_comma=self.decimal_comma
        )

    def _rows_by_series(self, rows: LongRows, what: str):
        """(series index, grid positions (k,), row positions (k,)) per series in `rows`, in the order of
        their first rows, each sorted by time; a DataError for an unknown id or a time off the series'
        grid."""
        from lruts.data.timestamps import grid_position, snap_near, step_ns

        # grouped in Python: a live feed's few rows cost microseconds this way, pandas' grouping a millisecond
        rows_of: dict[str, list[int]] = {}
        for r, sid in enumerate(rows.ids):
            rows_of.setdefault(sid, []).append(r)
        unknown = sorted(u for u in rows_of if u not in self._index)
        if unknown:
            raise DataError(
                f"{what} names unknown series {unknown[:5]}; the forecaster was fitted on {self.ids[:5]}"
                f"{' …' if len(self.ids) > 5 else ''} ({len(self.ids)} series)"
            )
        times = rows.times
        out = []
        for sid, members in rows_of.items():
            i = self._index[sid]
            idx = np.asarray(members)
            at = times[idx]
            if self.snap:  # a logger's jitter, as the fitted table's was
                at = snap_near(at, self.tracks[i].start, step_ns(self.freq))
            pos = grid_position(at, self.tracks[i].start, self.freq)
            if (pos < 0).any():
                bad = at[pos < 0][0]
                raise DataError(
                    f"{what}: series '{sid}' has a row at {bad}, off its {self.freq} grid (or before it starts at "
                    f"{self.tracks[i].start}); align the timestamps"
                )
            order = np.argsort(pos, kind="stable")
            out.append((i, pos[order], idx[order]))
        return out

    @torch.no_grad()
    def join(self, net, rows, static=None):
        """Series that `rows` (long, as update() takes them) name for the first time join the panel, no refit:
        the network and the blend are global, so a new series (a store that opened, a sensor installed) is
        forecast from its own rows, read as fit's table was (its history, and rows after its last target with
        the horizon's future covariates), scaled by its own values, its stream run over them. Where the
        forecaster reads static covariates, a new series' come as columns of its rows or in `static` (a frame
        or file with one row per series, as fit's). Returns the other series' rows (pandas). A DataError,
        nothing joined, where a new series has fewer than `lookback` observed targets or no static covariates
        the forecaster reads. `truncate(n)` takes the joined series out again."""
        from lruts.data.panel import load_panel

        if self.one_series:  # every row is the one series'
            return rows
        frame = self.as_fitted(rows)
        if self.id_col not in frame.columns:  # plan_update says what is missing
            return frame
        loc = frame.columns.get_loc(self.id_col)
        if isinstance(loc, int) and len(frame) <= CELLWISE_ROWS:  # a live feed's row or two: cell by cell, µs
            given = [frame.iat[r, loc] for r in range(len(frame))]
        else:
            given = frame[self.id_col].tolist()
        new = [s for s in dict.fromkeys(map(str, given)) if s not in self._index]
        if not new:
            return frame
        ids = frame[self.id_col].astype(str)
        in_rows = all(c in frame.columns for c in self.static_names)
        statics = (
            None if not self.static_names else static if static is not None else self.static_names if in_rows else None
        )
        if self.static_names and statics is None:
            raise DataError(
                f"new rows name series the forecaster was not fitted on {new[:5]}; it reads static covariates "
                f"{self.static_names}: give theirs as columns of their rows, or update(rows, static=<a frame with "
                f"one row per new series: '{self.id_col}' and {self.static_names}>)"
            )
        if self.integer_ids and not all(s.lstrip("-").isdigit() for s in new):
            raise DataError(f"new series {new[:5]}: the fitted table's ids are integers; give theirs as integers")
        panel = load_panel(
            frame[ids.isin(new)], id_col=self.id_col, time_col=self.time_col, target_col=self.target_col,
            future_covariates=self.future_names, past_covariates=self.past_names, static_covariates=statics,
            freq=self.freq,
        )  # fmt: skip
        if panel.static_names != self.static_names:
            raise DataError(
                f"the new series' static covariates are {panel.static_names}; the forecaster reads {self.static_names}"
            )
        mean, std, observed, short = on_their_own(panel, range(len(panel)), self.lookback)
        if short:
            raise DataError(
                f"new series {', '.join(short[:5])} join the forecaster from their own rows, and need at least "
                f"lookback = {self.lookback} observed targets each (their history): send them with it"
            )
        first = len(self.ids)
        target = self.scaler.target
        target.mean, target.std = np.concatenate([target.mean, mean]), np.concatenate([target.std, std])
        rule = OutlierRule.fit([panel.series(j).astype(np.float64) for j in range(len(panel))], self.outlier_rule.z)
        self.outlier_rule = OutlierRule(
            *(np.concatenate([getattr(self.outlier_rule, k), getattr(rule, k)]) for k in _RULE_ARRAYS),
            self.outlier_rule.z,
        )
        scaled = self.scaler.static.transform(panel.static.astype(np.float64)) if self.static_names else panel.static
        self.static = torch.cat([self.static, torch.from_numpy(scaled.astype(np.float32)).to(self.static.device)])
        self.ids += list(panel.ids)
        self._index, self._id_column = {sid: i for i, sid in enumerate(self.ids)}, {}
        self.tracks += [self._consume_one(net, panel, j, first + j) for j in range(len(panel))]
        log.info(
            "series %s joined the forecaster from their rows (%s observed targets), scaled by their own values, "
            "no refit", list(panel.ids)[:5], ", ".join(map(str, observed[:5])),
        )  # fmt: skip
        return frame[~ids.isin(new)]

    def truncate(self, n: int) -> None:
        """Take the series joined after the first `n` out again (an update refused after they joined)."""
        if len(self.ids) == n:
            return
        self.scaler.target.mean, self.scaler.target.std = self.scaler.target.mean[:n], self.scaler.target.std[:n]
        self.outlier_rule = OutlierRule(*(getattr(self.outlier_rule, k)[:n] for k in _RULE_ARRAYS), self.outlier_rule.z)
        self.static, self.ids, self.tracks = self.static[:n], self.ids[:n], self.tracks[:n]
        self._index, self._id_column = {sid: i for i, sid in enumerate(self.ids)}, {}
        self._grids = {i: g for i, g in self._grids.items() if i < n}

    def plan_update(self, rows) -> list[tuple[int, list[tuple[int, float, np.ndarray, np.ndarray]]]]:
        """Check new long rows; per series, its new readings after the last one: (position, target, past
        (P,), user future (F,)). Re-sent rows are checked and dropped. Nothing is applied."""
        given = self._read(rows, [self.target_col, *self.past_names, *self.future_names], "new rows", "update()")
        plan = []
        if not len(given.ids):
            return plan
        n_past = len(self.past_names)
        target = given.values[:, 0].copy()
        target[~np.isfinite(target)] = np.nan
        past, fut = given.values[:, 1 : 1 + n_past], given.values[:, 1 + n_past :]
        for i, pos, idx in self._rows_by_series(given, "new rows"):
            track, readings = self.tracks[i], []
            for p, r in zip(pos.tolist(), idx.tolist(), strict=True):
                if readings and readings[-1][0] == p:  # the same step twice in this call
                    check_resent(readings[-1][1], OBSERVED, target[r], self._where(i, p))
                elif p <= track.pos:
                    where = self._where(i, p)
                    kept, status = track.recent.reading(p, where)
                    check_resent(kept[0], status[0], target[r], where)
                else:
                    readings.append((p, target[r], past[r], fut[r]))
            plan.append((i, readings))
        warn_long_gaps(
            [(f"the row of {self._where(i, r[0][0])}", r[0][0] - self.tracks[i].pos - 1) for i, r in plan if r],
            self.lookback,
        )
        return plan

    def _where(self, i: int, p: int) -> str:
        """Series i at grid position p, for a message."""
        return f"series '{self.ids[i]}' at {_time(self.tracks[i].start, self.freq, p)}"

    @torch.inference_mode()
    def apply(self, net, stack_step, plan) -> None:
        """Advance each series by its planned readings, the skipped steps between them as missing."""
        for i, readings in plan:
            track = self.tracks[i]
            for p, y, past, fut in readings:
                for q in range(track.pos + 1, p + 1):
                    given = q == p
                    self._advance(net, stack_step, i, track, q, y if given else np.nan,
                                  past if given else np.full(len(self.past_names), np.nan),
                                  fut if given else None)  # fmt: skip

    def _advance(self, net, stack_step, i, track: Track, q: int, y: float, past, fut) -> None:
        if track.after is None:
            self._run_last(net, i, track, stack_step)
        track.state, track.after, track.issued = track.after, None, None
        ahead = track.ahead[1:]
        if fut is not None and len(fut):
            known = _rows(ahead, 1)[0]
            given = np.where(np.isfinite(fut), fut, known)
            if not np.array_equal(given, known, equal_nan=True):  # a revised value: copy, never write in place
                ahead = _set_rows(ahead, np.array([0]), given[None])
        track.ahead = ahead
        observed = bool(np.isfinite(y))
        status = OBSERVED if observed else MISSING
        if observed and self.outlier_rule.flags(np.array([y]), track.recent, [i])[0]:
            z = float(self.outlier_rule.scores(np.array([y]), track.recent.last_reading, [i])[0])
            label = int(self.ids[i]) if self.integer_ids else self.ids[i]
            self.outliers.append({"id": label, "time": _time(track.start, self.freq, q), "value": y, "z": z})
            observed, status = False, OUTLIER
        track.last = self._step_inputs(i, y, observed, past)
        track.recent.push(np.array([y]), np.array([status], np.int8))
        track.seen += 1

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        s = self.scaler
        return {
            "ids": self.ids, "freq": self.freq, "id_col": self.id_col, "time_col": self.time_col,
            "target_col": self.target_col, "future_names": self.future_names, "past_names": self.past_names,
            "static_names": self.static_names, "calendar": self.calendar, "frame_kind": self.frame_kind,
            "lookback": self.lookback, "horizon": self.horizon, "integer_ids": self.integer_ids,
            "clock": self.clock.to_dict() if self.clock else {}, "one_series": self.one_series or "", "snap": self.snap,
            "time_of_day": self.time_of_day or "", "day_periods": self.day_periods or [],
            "decimal_comma": self.decimal_comma,
            "scaler": {k: getattr(s, k).to_dict() for k in ("target", "future", "past", "static")},
            "static": self.static.cpu(), "outlier_rule": self.outlier_rule.to_dict(),
            "outliers": [{**o, "time": str(o["time"])} for o in self.outliers],
            "tracks": [
                {"start_ns": int(t.start.astype("datetime64[ns]").astype(np.int64)),
                 "state": None if t.state is None else _cpu(t.state.to_dict()),
                 "last": {k: v for k, v in t.last.items() if v is not None},
                 "ahead": torch.from_numpy(t.ahead.copy()), "recent": t.recent.to_dict(), "seen": t.seen}
                for t in self.tracks
            ],
        }  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict, device: torch.device) -> PanelFront:
        from lruts.data.panel_windows import PanelScaler
        from lruts.data.scaling import StandardScaler

        scaler = PanelScaler(**{k: StandardScaler.from_dict(v) for k, v in d["scaler"].items()})
        front = cls(
            ids=d["ids"], freq=d["freq"], id_col=d["id_col"], time_col=d["time_col"], target_col=d["target_col"],
            future_names=d["future_names"], past_names=d["past_names"], static_names=d["static_names"],
            calendar=d["calendar"], scaler=scaler, static=d["static"].to(device),
            outliers=OutlierRule.from_dict(d["outlier_rule"]), frame_kind=d["frame_kind"],
            lookback=d["lookback"], horizon=d["horizon"], integer_ids=d.get("integer_ids", False),
            clock=Clock.from_dict(d.get("clock")), one_series=d.get("one_series") or None,
            snap=bool(d.get("snap", False)), time_of_day=d.get("time_of_day") or None,
            decimal_comma=d.get("decimal_comma"),
            day_periods=list(d.get("day_periods") or []) or None,
        )  # fmt: skip
        front.outliers = [{**o, "time": np.datetime64(o["time"], "ns")} for o in d["outliers"]]
        front.tracks = [
            Track(np.datetime64(int(t["start_ns"]), "ns"),
                  None if t["state"] is None else stream_state_from_dict(to_device(t["state"], device)),
                  {"past": None, **{k: v.to(device) for k, v in t["last"].items()}},
                  t["ahead"].numpy(), Recent.from_dict(t["recent"]), int(t["seen"]))
            for t in d["tracks"]
        ]  # fmt: skip
        return front


# ---------------------------------------------------------------------------------------------- helpers
def split_future(rows, front: PanelFront):
    """Long pandas rows → (observed rows, future-covariate rows): a series' rows after its last target in `rows`
    (target empty) carry the covariates of the horizon to come, as in fit's table; a series whose rows have no
    target at all gives only future covariates."""
    import pandas as pd

    rows = front.as_fitted(rows)
    times = pd.Series(stored_times(rows[front.time_col], front.clock), index=rows.index)
    observed = rows[front.target_col].notna()
    last = times.where(observed).groupby(rows[front.id_col]).transform("max")  # NaT: no target in `rows`
    future = ~observed & (last.isna() | (times > last))
    return rows[~future], rows[future]


def warn_long_gaps(gaps: list[tuple[str, int]], lookback: int) -> None:
    """Say where new rows skip more steps than the lookback: gaps (where, missing steps before the row). They
    stream as missing (an outage), but a mistyped date does the same, and the forecast then reads no
    observation until `lookback` more rows arrive."""
    long = [(where, n) for where, n in gaps if n > lookback]
    if long:
        where, n = long[0]
        log.warning(
            "update(): %s comes %d steps after the last observation, more than the lookback (%d)%s: the steps "
            "between are streamed as missing, and the forecast reads no observation until %d more rows arrive; "
            "if the date is wrong, set_history() restarts from a corrected table",
            where, n + 1, lookback, f" (and {len(long) - 1} more series)" if len(long) > 1 else "", lookback,
        )  # fmt: skip


def _rows(a: np.ndarray, n: int) -> np.ndarray:
    """The first n rows of a (m, F), NaN rows appended when m < n."""
    if len(a) >= n:
        return a[:n]
    return np.concatenate([a, np.full((n - len(a), a.shape[1]), np.nan)])


def _set_rows(a: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A copy of a (m, F), grown with NaN rows as needed, with rows[k] set to values[k]."""
    out = _rows(a, max(len(a), int(rows.max()) + 1 if len(rows) else 0)).copy()
    out[rows] = values
    return out


def _time(start: np.datetime64, freq: str, p: int) -> np.datetime64:
    return advance(start, freq, p)[()]


class LongRows(NamedTuple):
    """Long rows, read once: ids (n,) str, times (n,) datetime64[ns], values (n, k) float64 (NaN: missing)."""

    ids: list[str]
    times: np.ndarray
    values: np.ndarray


CELLWISE_ROWS = 8  # up to this many rows are read cell by cell: ≈ 1.5 µs a cell, against ≈ 10 µs a column


def on_their_own(panel, index, lookback: int) -> tuple[np.ndarray, np.ndarray, list[int], list[str]]:
    """Series of `panel` (by `index`) read from their own rows alone, by a network fitted without them (a series
    that joins after the fit, or one too short to train on): their targets' mean and std over all their rows
    (as fit's scaler reads a series' training rows), their observed targets, and those with fewer than
    `lookback` observed, as "'id' (n)": too few to scale and to fill a window."""
    from lruts.data.scaling import observed_stats

    index = list(index)
    stats = [observed_stats([panel.series(i)[:, None]]) for i in index]
    observed = [int(np.isfinite(panel.series(i)).sum()) for i in index]
    few = [f"'{panel.ids[i]}' ({n})" for i, n in zip(index, observed, strict=True) if n < lookback]
    mean, std = (np.array([s[k][0] for s in stats], np.float64) for k in (0, 1))
    return mean, std, observed, few


def read_long_rows(
    frame,
    id_col: str,
    time_col: str,
    columns: list[str],
    what: str = "new rows",
    *,
    clock: Clock | None = None,
    decimal_comma: list[str] = (),
) -> LongRows:
    """A pandas frame's ids, times and `columns` (a live feed's row or two cell by cell, where every time is
    a pandas Timestamp without a time zone and every value a real number: the column-wise reading gives
    the same arrays, and takes the rest; text cells as `new_row_numbers` reads them)."""
    import pandas as pd

    if len(frame) <= CELLWISE_ROWS:
        at, locs = frame.iat, [frame.columns.get_loc(c) for c in (id_col, time_col, *columns)]
        if all(isinstance(k, int) for k in locs):  # a repeated column name gives a slice or mask here
            cells = [[at[r, k] for k in locs] for r in range(len(frame))]
            times = [row[1] for row in cells]
            values = [row[2:] for row in cells]
            if all(type(t) is pd.Timestamp and t.tzinfo is None for t in times) and all(
                isinstance(v, numbers.Real) for row in values for v in row
            ):
                return LongRows(
                    [str(row[0]) for row in cells],
                    np.array([t.asm8 for t in times], "datetime64[ns]"),
                    np.array(values, np.float64).reshape(len(frame), len(columns)),
                )
    times = stored_times(frame[time_col], clock, what)  # a zone read by the fitted table's clock
    as_numbers = [new_row_numbers(frame[c], what, c in decimal_comma) for c in columns]
    values = np.stack(as_numbers, axis=1) if as_numbers else np.empty((len(frame), 0))
    return LongRows([str(sid) for sid in frame[id_col].tolist()], times, values)


def with_series_id(frame, id_col: str, series_id: str):
    """A pandas or polars frame of one series with its id column added (a table given without one)."""
    names = frame.collect_schema().names() if hasattr(frame, "collect_schema") else frame.columns
    if id_col in names:
        return frame
    if type(frame).__module__.startswith("polars"):
        import polars as pl

        return frame.with_columns(pl.lit(series_id).alias(id_col))
    return _pandas(frame, "a series' rows").assign(**{id_col: series_id})


def _pandas(frame, what: str):
    import pandas as pd

    if hasattr(frame, "to_pandas") and not isinstance(frame, pd.DataFrame):
        frame = frame.to_pandas()
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{what} takes a pandas or polars DataFrame, got {type(frame).__name__}")
    if isinstance(frame.index, pd.MultiIndex) and all(n is not None and n not in frame for n in frame.index.names):
        frame = frame.reset_index()  # rows indexed by (id, time), as fit may have read them
    return frame


def _require_columns(frame, needed: list[str], what: str) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(f"{what} lack column(s) {missing}; expected {needed}")


def _cpu(obj):
    return to_device(obj, torch.device("cpu"))


def to_device(obj, device: torch.device):
    """Every tensor in nested dicts and lists moved to `device`."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_device(v, device) for v in obj]
    return obj
