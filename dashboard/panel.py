"""One browser session's stream over a forecaster fitted on a long table (a panel of series with covariates).

    rows = known_rows(forecaster, "prices.csv", "future.csv")  # what the dashboard knows: targets, covariates
    live = PanelStream(forecaster, rows)                        # forecaster: shared, never mutated here
    live.replay(["NP"], 1)                # the chosen series' next held-out row → update() → forecast
    live.push(read_rows(data, "new.csv", forecaster))          # rows uploaded, one update() per row
    live.history("NP", 200), live.forecast("NP"), live.covariates("NP", 200)   # what is drawn

Every row goes through `LRUForecaster.update` alone (O(1) per observation), with the future covariates
of the horizon after it from the rows known so far (the dataset, the future file, uploads). A series'
rows after its last target are its future covariates, as in `fit`'s table. Each push returns a
`StreamReport`: steps advanced, missing inputs, re-sent rows ignored, outliers flagged. A rejected row
(DataError) rejects the whole push: the stream stays where it was. No Streamlit here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dashboard.live import drawn
from lruts import LRUForecaster
from lruts.errors import DataError
from lruts.forecasting.panel_front import split_future


@dataclass
class StreamReport:
    rows: int = 0  # rows sent to update()
    steps: int = 0  # grid steps the streams advanced
    missing: int = 0  # of them entered as missing: a NaN target or a step no row was sent for
    resent: int = 0  # rows at or before a series' last observation, identical to it: ignored
    outliers: list[dict] = field(default_factory=list)  # readings flagged and entered as missing
    joined: list[str] = field(default_factory=list)  # series the forecaster was not fitted on, joined from their rows

    def summary(self) -> str:
        flagged = ", ".join(f"{o['id']} at {pd.Timestamp(o['time'])}: {o['value']:g} (z {o['z']:.0f})"
                            for o in self.outliers[:3])  # fmt: skip
        return (
            f"{self.rows} row(s) → {self.steps} step(s), {self.missing} entered as missing (gap or NaN), "
            f"{self.resent} re-sent row(s) ignored, {len(self.outliers)} outlier(s) flagged"
            + (f": {flagged}{' …' if len(self.outliers) > 3 else ''}" if flagged else "")
            + (f"; joined without a refit: {', '.join(self.joined)}" if self.joined else "")
        )


def columns_of(fc: LRUForecaster) -> list[str]:
    """The columns a long-fitted forecaster's rows carry: id, time, target, future and past covariates."""
    p = fc.panel
    return [p.id_col, p.time_col, p.target_col, *p.future_names, *p.past_names]


def _rows_frame(frame, fc: LRUForecaster, what: str) -> pd.DataFrame:
    """A polars or pandas table as long rows: columns_of(fc), the id as text, the time parsed, values float64;
    a missing target column reads as NaN (a file of future covariates), any other missing column a DataError."""
    from lruts.data.timestamps import stored_times

    p = fc.panel
    frame = p.as_fitted(frame)
    if p.target_col not in frame.columns:
        frame = frame.assign(**{p.target_col: np.nan})
    missing = [c for c in columns_of(fc) if c not in frame.columns]
    if missing:
        raise DataError(
            f"{what} lacks column(s) {missing}; this model reads the columns {columns_of(fc)} "
            "(rows after a series' last target may leave the target empty: they give future covariates)"
        )
    times = stored_times(frame[p.time_col], p.clock, what)  # as the fitted table's were read
    out = pd.DataFrame({p.id_col: frame[p.id_col].astype(str).to_numpy(), p.time_col: times})
    for c in columns_of(fc)[2:]:
        values = pd.to_numeric(frame[c], errors="coerce")
        junk = values.isna() & frame[c].notna() & (frame[c].astype(str).str.strip() != "")
        if junk.any():
            raise DataError(
                f"{what}: column '{c}' has {int(junk.sum())} value(s) that are not numbers, e.g. "
                f"{frame[c][junk].head(3).tolist()}; leave a cell empty for a missing value"
            )
        out[c] = values.to_numpy(np.float64)
    return out.sort_values([p.id_col, p.time_col], kind="stable").reset_index(drop=True)


def known_rows(fc: LRUForecaster, dataset: str, future: str | None = None) -> pd.DataFrame:
    """The rows the dashboard knows for a long-fitted forecaster: the dataset's (a registered name or a CSV/Parquet
    path; a one-series model of a wide file, as the MS setting trains, reads it as that series), then
    the future file's (future covariates after the dataset; its target, if any, is ignored)."""
    from pathlib import Path

    from lruts.data import resolve_raw
    from lruts.data.read import read_any
    from lruts.data.registry import get_spec

    p = fc.panel

    def rows(source: str) -> pd.DataFrame:
        frame = read_any(resolve_raw(source, download=False) if get_spec(source) else Path(source), time_col=p.time_col)
        frame = frame.frame.to_pandas()
        if p.id_col not in frame.columns and len(p.ids) == 1:  # one series of a wide file (the MS setting)
            frame[p.id_col] = p.ids[0]
        return _rows_frame(frame, fc, source)

    frames = [rows(dataset)]
    if future:
        extra = rows(future)
        frames.append(extra.assign(**{p.target_col: np.nan}))
    rows = pd.concat(frames, ignore_index=True).drop_duplicates([p.id_col, p.time_col], keep="first")
    return rows.sort_values([p.id_col, p.time_col], kind="stable").reset_index(drop=True)


def read_rows(data: bytes, filename: str, fc: LRUForecaster) -> pd.DataFrame:
    """Uploaded CSV/Parquet bytes → long rows (columns_of(fc)). Raises DataError with the file's name."""
    from dashboard.uploads import save_upload
    from lruts.data.read import read_any

    path = save_upload(data, filename)
    try:
        raw = read_any(path, time_col=fc.panel.time_col, id_col=fc.panel.id_col)
    except DataError as e:  # name the file as the user knows it, not as it was stored
        raise DataError(str(e).replace(path.name, filename)) from None
    finally:
        path.unlink(missing_ok=True)
    junk = {c: n for c, n in raw.junk_cells.items() if c in columns_of(fc) and n}
    if junk:
        raise DataError(
            f"{filename}: {sum(junk.values())} value(s) that are not numbers (per column: {junk}); "
            "leave a cell empty for a missing value"
        )
    return _rows_frame(raw.frame, fc, filename)


class PanelStream:
    def __init__(self, forecaster: LRUForecaster, rows: pd.DataFrame) -> None:
        """forecaster: fitted on a long table (shared: never mutated here); rows: known_rows()."""
        self.fc = LRUForecaster.load_from(forecaster)
        p = self.fc.panel
        self.id_col, self.time_col, self.target_col = p.id_col, p.time_col, p.target_col
        self.by_id: dict[str, pd.DataFrame] = {
            str(sid): g.reset_index(drop=True) for sid, g in rows.groupby(self.id_col, sort=False)
        }
        self.reports: list[StreamReport] = []
        self.forecast_problem: str | None = None  # why there is no forecast (e.g. future covariates missing)
        self._forecast = self._predict(self.fc)

    @property
    def ids(self) -> list[str]:
        return self.fc.panel.ids

    def _predict(self, fc: LRUForecaster) -> pd.DataFrame | None:
        try:
            self.forecast_problem = None
            return drawn(fc.predict(), fc)
        except DataError as e:
            self.forecast_problem = str(e)
            return None

    # ------------------------------------------------------------------ where each series is
    def last_time(self, sid: str) -> np.datetime64:
        """The time of series `sid`'s last observation (consumed step)."""
        from lruts.data.timestamps import advance

        p = self.fc.panel
        return advance(p.tracks[p.index(sid)].start, p.freq, _position(self.fc, sid))[()]

    def _rows(self, sid: str) -> pd.DataFrame:
        self.fc.panel.index(sid)  # a DataError naming an unknown id
        return self.by_id.get(sid, pd.DataFrame(columns=columns_of(self.fc)))

    def held_out(self, sid: str) -> pd.DataFrame:
        """Known rows of `sid` after its last observation, up to its last known target: what replay streams."""
        rows = self._rows(sid)
        observed = rows[np.isfinite(rows[self.target_col].to_numpy(np.float64))]
        if observed.empty:
            return rows.iloc[:0]
        t = rows[self.time_col]
        return rows[(t > self.last_time(sid)) & (t <= observed[self.time_col].iloc[-1])]

    # ------------------------------------------------------------------ arrivals
    def replay(self, ids: list[str], k: int = 1) -> StreamReport:
        """Stream the next k held-out rows of each series in `ids`."""
        return self.push(pd.concat([self.held_out(sid).head(k) for sid in ids], ignore_index=True))

    def push(self, rows: pd.DataFrame) -> StreamReport:
        """Advance by long rows (columns_of(fc)), one update() per row of a series' observed part; the rows
        after a series' last target only give future covariates. A series the forecaster was not fitted on
        joins from all its rows in one update() (PanelFront.join). All or nothing: a DataError leaves the
        stream where it was."""
        fc = LRUForecaster.load_from(self.fc)
        report, outliers_before = StreamReport(), len(fc.outliers)
        forecast = None
        new = ~rows[self.id_col].astype(str).isin(fc.panel.ids)
        joined = {}
        if new.any():
            forecast = fc.update(rows[new])
            joined = {str(sid): g.sort_values(self.time_col).reset_index(drop=True) for sid, g in rows[new].groupby(
                self.id_col, sort=False)}  # fmt: skip
            report.joined, report.rows = list(joined), int(new.sum())
            report.steps = sum(_position(fc, sid) + 1 for sid in joined)
            rows = rows[~new]
        merged = {**self._merged(rows), **joined}
        readings = split_future(rows, fc.panel)[0].index  # after a series' last target: future covariates only
        for sid, part in rows.groupby(self.id_col, sort=False):
            sid = str(sid)
            stream = part[part.index.isin(readings)]
            for r in range(len(stream)):
                row = stream.iloc[r : r + 1]
                t, before = row[self.time_col].iloc[0], _position(fc, sid)
                forecast = fc.update(row, future=self._future(merged[sid], t, fc))
                steps = _position(fc, sid) - before
                report.rows += 1
                report.resent += int(steps == 0)
                report.steps += steps
                report.missing += max(steps - 1, 0) + int(steps > 0 and not np.isfinite(row[self.target_col].iloc[0]))
        report.outliers = list(fc.outliers[outliers_before:])
        self.fc, self.by_id = fc, {**self.by_id, **merged}
        self._forecast = forecast if forecast is not None else self._predict(fc)
        if forecast is not None:
            self.forecast_problem = None
        self.reports.append(report)
        return report

    def _merged(self, rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """Each series in `rows`: its known rows with `rows` laid over them (the new ones win), and the
        target of a step the rows skip (streamed as missing) blanked, so the history drawn is what was streamed."""
        out = {}
        for sid, part in rows.groupby(self.id_col, sort=False):
            known = self.by_id.get(str(sid), part.iloc[:0])
            t = known[self.time_col]
            after = max(part[self.time_col].min(), self.last_time(str(sid)))
            skipped = known[(t > after) & (t < part[self.time_col].max()) & ~t.isin(part[self.time_col])]
            both = pd.concat([part, skipped.assign(**{self.target_col: np.nan}), known], ignore_index=True)
            both = both.drop_duplicates(self.time_col, keep="first").sort_values(self.time_col, kind="stable")
            out[str(sid)] = both.reset_index(drop=True)
        return out

    def _future(self, rows: pd.DataFrame, t, fc: LRUForecaster) -> pd.DataFrame | None:
        """The future covariates of `rows` in the horizon after time t, or None when the model has none."""
        p = fc.panel
        if not p.future_names:
            return None
        after = rows[rows[self.time_col] > t].head(fc.horizon)
        return after[[self.id_col, self.time_col, *p.future_names]].dropna(subset=p.future_names)

    # ------------------------------------------------------------------ what is drawn
    def forecast(self, sid: str) -> pd.DataFrame:
        """The current forecast of `sid`: time, forecast, forecast_q<q>, missing_inputs, outlier_inputs (empty
        when there is none: see forecast_problem)."""
        if self._forecast is None:
            return pd.DataFrame(columns=[self.time_col, "forecast"])
        f = self._forecast
        return f[f[self.id_col].astype(str) == sid].drop(columns=self.id_col).reset_index(drop=True)

    def history(self, sid: str, n: int) -> pd.DataFrame:
        """The last n known rows of `sid` up to its last observation (time, target, covariates)."""
        rows = self._rows(sid)
        return rows[rows[self.time_col] <= self.last_time(sid)].tail(n).reset_index(drop=True)

    def actuals(self, sid: str) -> pd.DataFrame:
        """The known targets of `sid` inside the current forecast's horizon."""
        return self.held_out(sid).head(self.fc.horizon)

    def covariates(self, sid: str, n: int) -> pd.DataFrame:
        """The covariates drawn beside `sid`'s forecast: time, then its future covariates over the last n steps
        and the horizon, its past covariates over the last n steps only (NaN after the last observation)."""
        p = self.fc.panel
        rows = self._rows(sid)
        last = self.last_time(sid)
        shown = rows[rows[self.time_col] <= last].tail(n)
        ahead = rows[rows[self.time_col] > last].head(self.fc.horizon)
        out = pd.concat([shown, ahead], ignore_index=True)[[self.time_col, *p.future_names, *p.past_names]]
        out.loc[out[self.time_col] > last, p.past_names] = np.nan
        return out


def _position(fc: LRUForecaster, sid: str) -> int:
    """The grid position of series `sid`'s last observation."""
    return fc.panel.tracks[fc.panel.index(sid)].pos
