"""A panel: many series in long format, each on its own regular grid from its first to its last observation.

    panel = load_panel(df, id_col="unique_id", time_col="ds", target_col="y",
                       future_covariates=["price_forecast"], past_covariates=["volume"],
                       static_covariates=static_df)          # or a CSV/Parquet path
    panel.series(3)                                          # (length,) float32 target of series 3, NaN = missing

Memory is O(total length), whatever the spans: one concatenated float32 target (NaN where a step inside
a series' span was not observed), series i at rows offsets[i] : offsets[i] + lengths[i]; past covariates
(total, P) aligned to it; future covariates (total_future, F) with their own offsets, because they may
reach past a series' last target (the rows of the forecast horizon: `predict(future=...)` reads them);
static covariates (n_series, S); start timestamps (n_series,). Nothing is stored before a series' first
observed target or, except future covariates, after its last one.

Business days ("B", inferred for daily data that never falls on a weekend, as a stock's closes): a
market holiday is a missing step inside the span, masked like any other. Future holidays are not known,
so the steps after a series' end, and the forecasts dated on them, are the next Monday-to-Friday days.

Input is checked, and every problem is one DataError line naming the series, column and timestamps:
duplicated (id, time) rows with different values (identical repeats are dropped and reported), a
covariate that is not numeric, unknown columns, a static frame with duplicate or missing ids, a series
without any observed target, timestamps off the series' grid. Missing covariate cells stay NaN (the
windows read them as 0 after scaling, i.e. the training mean) and are counted in the report. Missing-data
codes (−9999 among wind speeds: read.missing_codes) are missing cells, reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import polars as pl

from lruts.data.read import (
    CodeCells,
    DayJoin,
    RawTable,
    cell_notes,
    code_note,
    float32_losses,
    from_user_frame,
    join_date_and_time,
    missing_codes,
    read_any,
    read_frame,
    without_codes,
)
from lruts.data.timestamps import (
    CLOCK_NOTES,
    Clock,
    advance,
    format_step,
    grid_position,
    infer_freq,
    jitter_note,
    jitter_snapped,
    parse_freq,
    parse_timestamps,
    step_ns,
)
from lruts.errors import DataError

_ID, _T = "__id", "__time"


@dataclass
class SeriesReport:
    """One series as ingested: its span, and its missing steps inside it (NaN or absent rows)."""

    first: str
    last: str
    length: int
    missing_steps: int


@dataclass
class PanelReport:
    rows_raw: int = 0
    freq: str | None = None
    freq_inferred: bool = True
    duplicate_rows: int = 0  # identical repeats of an (id, time) row, dropped
    bad_timestamps: int = 0  # rows dropped: empty or unreadable timestamp
    clock: Clock | None = None  # how timestamps with a zone were read
    snapped: str | None = None  # jittered timestamps moved to their grid: what was moved (timestamps.jitter_note)
    before_start: int = 0  # rows dropped: before the series' first observed target (covariates only)
    missing_covariates: dict[str, int] = field(default_factory=dict)  # NaN cells per covariate inside the spans
    junk_cells: dict[str, int] = field(default_factory=dict)  # text that is no number, read as missing
    junk_examples: dict[str, list[str]] = field(default_factory=dict)
    written_cells: dict[str, int] = field(default_factory=dict)  # numbers written for people (1,234.5), read
    notes: list[str] = field(default_factory=list)  # what reading the file met (raw.notes: delimiter, decimal mark…)
    missing_codes: dict[str, CodeCells] = field(default_factory=dict)  # −9999 and the like, read as missing
    dated: DayJoin | None = None  # a date column joined with its times of day or day periods
    series: dict[str, SeriesReport] = field(default_factory=dict)

    def repairs(self) -> list[str]:
        """What reading the table changed or dropped (one line each; none for a clean table)."""
        lines = [*self.notes, *([self.dated.note] if self.dated else [])]
        lines += [CLOCK_NOTES[self.clock.kind]] if self.clock else []
        lines += [self.snapped] if self.snapped else []
        if self.duplicate_rows:
            lines.append(f"dropped {self.duplicate_rows} identical repeats of an (id, time) row")
        if self.bad_timestamps:
            lines.append(f"dropped {self.bad_timestamps} rows whose timestamp is empty or unreadable")
        if self.before_start:
            lines.append(f"dropped {self.before_start} rows before their series' first observed target")
        return (
            lines + cell_notes(self.written_cells, self.junk_cells, self.junk_examples) + code_note(self.missing_codes)
        )

    def summary(self) -> str:
        lines = [f"{len(self.series)} series, step {self.freq}{' (inferred)' if self.freq_inferred else ''}"]
        lines += [f"  {line}" for line in self.repairs()]
        for c, n in self.missing_covariates.items():
            lines.append(f"  covariate '{c}': {n} missing cells (read as its training mean)")
        for sid, r in self.series.items():
            if r.missing_steps:
                lines.append(f"  {sid}: {r.first} .. {r.last}, {r.missing_steps} of {r.length} steps missing")
        return "\n".join(lines)


@dataclass
class Panel:
    """Series i: target values[offsets[i] : offsets[i] + lengths[i]] (float32, NaN = missing) at
    advance(starts[i], freq, 0..lengths[i]-1); past[...same rows] (P columns); future[future_offsets[i] :
    future_offsets[i] + future_lengths[i]] (F columns, future_lengths[i] >= lengths[i]); static[i] (S)."""

    ids: list[str]
    freq: str
    values: np.ndarray  # (total,) float32
    offsets: np.ndarray  # (n_series,) int64
    lengths: np.ndarray  # (n_series,) int64
    starts: np.ndarray  # (n_series,) datetime64[ns]
    past: np.ndarray  # (total, P) float32
    future: np.ndarray  # (total_future, F) float32
    future_offsets: np.ndarray  # (n_series,) int64
    future_lengths: np.ndarray  # (n_series,) int64
    static: np.ndarray  # (n_series, S) float32
    past_names: list[str] = field(default_factory=list)
    future_names: list[str] = field(default_factory=list)
    static_names: list[str] = field(default_factory=list)
    id_col: str = "unique_id"
    time_col: str = "ds"
    target_col: str = "y"
    integer_ids: bool = False  # the given id column held integers (ids is their text: forecasts give them back)
    clock: Clock | None = None  # how timestamps with a zone were read
    snapped: bool = False  # its series' jittered timestamps were moved to their grid (new rows are, alike)
    decimal_comma: list[str] = field(default_factory=list)  # columns written with a decimal comma (new rows alike)
    report: PanelReport = field(default_factory=PanelReport, repr=False, compare=False)

    @property
    def time_of_day(self) -> str | None:
        """The time-of-day (or day-period) column its dates were joined with (report.dated)."""
        return self.report.dated.column if self.report.dated else None

    @property
    def day_periods(self) -> list[int] | None:
        """How that column numbers a day's periods: [the first, seconds each] (None: times of day)."""
        return self.report.dated.periods if self.report.dated else None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.values, self.past, self.future, self.static))

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.ids)}

    def index(self, series_id: str) -> int:
        """The position of series `series_id`; DataError naming the known ids if there is none."""
        if series_id not in self._positions:
            raise DataError(f"unknown series '{series_id}'; the panel holds {_few(self.ids)}")
        return self._positions[series_id]

    def series(self, i: int) -> np.ndarray:
        """Series i's target: (lengths[i],) float32, a view."""
        return self.values[self.offsets[i] : self.offsets[i] + self.lengths[i]]

    def timestamps(self, i: int, extra: int = 0) -> np.ndarray:
        """Series i's timestamps, and `extra` more steps after its last one: (lengths[i] + extra,) datetime64[ns]."""
        return advance(self.starts[i], self.freq, np.arange(self.lengths[i] + extra))

    def last_times(self) -> np.ndarray:
        """Each series' last timestamp: (n_series,) datetime64[ns]."""
        return advance(self.starts, self.freq, self.lengths - 1)


def _few(items: list, n: int = 5) -> str:
    shown = ", ".join(repr(x) for x in items[:n])
    return f"[{shown}{', …' if len(items) > n else ''}] ({len(items)})"


def _read(source, time_col: str, id_col: str) -> RawTable:
    """The table with numeric columns as Float32 (RawTable: and what reading it met)."""
    if isinstance(source, str | os.PathLike):
        path = Path(source).expanduser()
        if not path.is_file():
            raise DataError(f"'{source}' is not a file; pass a CSV/Parquet path or a pandas/polars DataFrame")
        raw = read_any(path, time_col=time_col, id_col=id_col)
    else:
        frame = from_user_frame(source)
        for name, col in (("time", time_col), ("id", id_col)):
            if col not in frame.columns:
                raise DataError(f"{name} column '{col}' not found; columns are: {frame.columns}")
        raw = read_frame(frame, time_col=time_col, id_col=id_col)
    return raw


def _check_columns(columns: list[str], text: list[str], target_col: str, covariates: dict[str, list[str]]) -> None:
    if target_col not in columns:
        raise DataError(f"target column '{target_col}' not found; columns are: {columns} (pass target_col=)")
    if target_col in text:
        raise DataError(f"target column '{target_col}' is not numeric (it holds text); choose a numeric column")
    for kind, names in covariates.items():
        unknown = [c for c in names if c not in columns]
        if unknown:
            raise DataError(f"{kind} covariates {unknown} are not columns of the table; columns are: {columns}")
        not_numeric = [c for c in names if c in text]
        if not_numeric:
            raise DataError(
                f"{kind} covariate {not_numeric} is not numeric (it holds text); encode it as numbers "
                "(e.g. one 0/1 column per category)"
            )
    seen: dict[str, str] = {}
    for kind, names in covariates.items():
        for c in names:
            if c == target_col or c in seen:
                raise DataError(f"column '{c}' is given twice (as {seen.get(c, 'target')} and {kind}); use it once")
            seen[c] = kind


def _dedup(frame: pl.DataFrame, cols: list[str], report: PanelReport) -> pl.DataFrame:
    """Drop identical repeats of an (id, time) row; DataError naming the first conflicting one."""
    keys = frame.select(_ID, _T).is_duplicated()
    if not keys.any():
        return frame
    repeated = frame.filter(keys)
    distinct = repeated.unique(subset=[_ID, _T, *cols], maintain_order=True)
    conflict = distinct.filter(distinct.select(_ID, _T).is_duplicated())
    if conflict.height:
        a, b = conflict.head(2).rows(named=True)
        differ = [c for c in cols if a[c] != b[c]]
        raise DataError(
            f"series '{a[_ID]}' has two rows at {a[_T]} with different values in {differ} "
            f"({a[differ[0]]} and {b[differ[0]]}); keep one row per (id, time)"
        )
    report.duplicate_rows = repeated.height - distinct.height
    return frame.unique(subset=[_ID, _T], keep="first", maintain_order=True)


def _static_table(source, id_col: str) -> tuple[str, pl.DataFrame, list[str]]:
    """A static covariates frame, or CSV/Parquet file, read as the long table is: (what to call it in a message,
    the table with its ids as text and numeric columns as Float32, its text columns)."""
    if isinstance(source, str | os.PathLike):
        what = f"the static covariates file '{source}'"
        path = Path(source).expanduser()
        if not path.is_file():
            raise DataError(
                f"{what} does not exist; give a CSV/Parquet file with one row per series: '{id_col}' and "
                "numeric columns"
            )
        try:  # the id column stands where a time column would: kept as it is, not read as a value
            raw = read_any(path, time_col=id_col, id_col=id_col)
        except DataError as e:
            raise DataError(f"{what}: {e}") from None
    else:
        what = "the static covariates frame"
        given = from_user_frame(source)
        if id_col not in given.columns:
            raise DataError(f"{what} has no id column '{id_col}'; columns are: {given.columns}")
        raw = read_frame(given, time_col=id_col)
    return what, raw.frame.with_columns(pl.col(id_col).cast(pl.String)), raw.text_cols


def _static(frame: pl.DataFrame, ids: list[str], static_covariates, id_col: str) -> tuple[np.ndarray, list[str]]:
    if static_covariates is None:
        return np.zeros((len(ids), 0), dtype=np.float32), []
    if isinstance(static_covariates, list | tuple):
        names = list(static_covariates)
        per_id = frame.group_by(_ID, maintain_order=True).agg(
            *(pl.col(c).drop_nulls().n_unique().alias(f"n{j}") for j, c in enumerate(names)),
            *(pl.col(c).drop_nulls().first().alias(c) for c in names),
        )
        for j, c in enumerate(names):
            varying = per_id.filter(pl.col(f"n{j}") > 1)
            if varying.height:
                raise DataError(
                    f"static covariate '{c}' changes over time in series '{varying[_ID][0]}'; a static covariate "
                    "holds one value per series (pass it as a past or future covariate instead)"
                )
        table = per_id.select(_ID, *names)
    else:
        what, table, text = _static_table(static_covariates, id_col)
        names = [c for c in table.columns if c != id_col]
        if text:
            raise DataError(
                f"{what}: static covariate {text} is not numeric (it holds text); encode it as numbers "
                "(e.g. one 0/1 column per category)"
            )
        table = table.rename({id_col: _ID})
        dup = table.filter(table[_ID].is_duplicated())[_ID].unique(maintain_order=True).to_list()
        if dup:
            raise DataError(f"{what} repeats ids {_few(dup)}; give one row per series")
        missing = sorted(set(ids) - set(table[_ID].to_list()))
        if missing:
            raise DataError(f"{what} has no row for series {_few(missing)}; add one per series")
    table = pl.DataFrame({_ID: ids}).join(table, on=_ID, how="left")
    values = table.select(names).to_numpy().astype(np.float32) if names else np.zeros((len(ids), 0), np.float32)
    bad = ~np.isfinite(values)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataError(f"static covariate '{names[j]}' is missing for series '{ids[i]}'; give every series a value")
    return values, names


def _panel_freq(
    ts: np.ndarray, row_series: np.ndarray, freq: str | None, report: PanelReport
) -> tuple[str, list[str | None]]:
    """`freq` normalised, or the step inferred series by series that covers the most rows; and each series'
    own step (None where given, or where a series has one row)."""
    bounds = np.flatnonzero(np.diff(row_series)) + 1  # rows are sorted by series, then time
    if freq is not None:
        report.freq, report.freq_inferred = parse_freq(freq), False
        return report.freq, [None] * (len(bounds) + 1)
    own = [infer_freq(part) for part in np.split(ts, bounds)]
    votes: dict[str, int] = {}
    for f, n in zip(own, np.diff([0, *bounds, len(ts)]), strict=True):
        if f is not None:
            votes[f] = votes.get(f, 0) + int(n)
    if not votes:
        raise DataError("every series has a single timestamp: the step cannot be inferred; pass freq=")
    report.freq = max(votes, key=votes.get)
    return report.freq, own


def _snap_jitter(frame: pl.DataFrame, freq: str | None, report: PanelReport) -> pl.DataFrame:
    """Each series' readings a little off a fixed step's grid (a logger's jitter, as `validate.snap_jitter`
    reads a wide table's) moved to their grid points, where every such series keeps to the same step."""
    given = step_ns(parse_freq(freq)) if freq is not None else None
    if freq is not None and given is None:  # months, business days, sessions: no fixed step to snap to
        return frame
    ts = frame[_T].to_numpy().astype("datetime64[ns]")
    series = frame[_ID].to_numpy()
    bounds = np.flatnonzero(series[1:] != series[:-1]) + 1
    snapped, steps = [], set()
    for part in np.split(ts, bounds):
        own = given or (step_ns(f) if (f := infer_freq(part)) is not None else None)
        found = jitter_snapped(part, own, search=given is None) if own is not None and len(part) >= 3 else (part, 0, 0)
        if found is None:
            return frame  # not jitter: the grid check after reports the rows off it
        snapped.append(found[:2])
        if found[1]:
            steps.add(found[2])
    if not steps:
        return frame
    if len(steps) > 1:
        return frame  # jittered series of different steps: the panel's step decides below
    times = np.concatenate([t for t, _ in snapped])
    report.snapped = jitter_note(
        int(np.count_nonzero(times != ts)), format_step(steps.pop()), max(d for _, d in snapped)
    )
    return frame.with_columns(pl.Series(_T, times))


def _check_coarser(ids: list[str], own: list[str | None], step: str, lengths: np.ndarray, counts: np.ndarray) -> None:
    """Refuse series of a coarser step than the panel's (weekly rows in a daily panel; judged from 3 rows): on
    the panel's grid most of their steps would be missing, and their forecast would step by the panel's step."""
    coarser = [
        f"'{sid}' ({f})" for sid, f, n, k in zip(ids, own, lengths.tolist(), counts.tolist(), strict=True)
        if f is not None and f != step and k >= 3 and 2 * k < n
    ]  # fmt: skip
    if coarser:
        shown = ", ".join(coarser[:5]) + (f" and {len(coarser) - 5} more" if len(coarser) > 5 else "")
        raise DataError(
            f"series {shown} step more coarsely than the panel's {step} (the step most rows have): on its grid "
            "most of their steps would be missing; fit them apart, or pass freq= to read every series on one grid"
        )


def load_panel(
    source,
    *,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
    future_covariates: list[str] | tuple[str, ...] = (),
    past_covariates: list[str] | tuple[str, ...] = (),
    static_covariates=None,
    freq: str | None = None,
) -> Panel:
    """Read a long table (pandas/polars DataFrame, or a CSV/TSV/Parquet path): one row per (id, time).

    future_covariates: columns known ahead (kept past a series' last target: the horizon's rows);
    past_covariates: columns observed only up to now; static_covariates: a frame with one row per id
    (id_col + numeric columns), a CSV/Parquet path to one, or a list of columns constant per id; freq: the
    step ("1h", "1d", "B", "1mo", ...; None: the most common step over the series, business days for daily
    data that never falls on a weekend). Raises DataError (see the module docstring).
    """
    report = PanelReport()
    raw, report.dated = join_date_and_time(_read(source, time_col, id_col), by=id_col)
    frame, text = raw.frame, raw.text_cols
    report.junk_cells, report.junk_examples, report.written_cells = raw.junk_cells, raw.junk_examples, raw.written_cells
    report.notes = list(raw.notes)
    report.rows_raw = frame.height
    future, past = list(future_covariates), list(past_covariates)
    static_cols = list(static_covariates) if isinstance(static_covariates, list | tuple) else []
    _check_columns(frame.columns, text, target_col, {"future": future, "past": past, "static": static_cols})
    numeric = [target_col, *future, *past]
    parsed = parse_timestamps(frame[time_col])
    integer_ids = frame[id_col].dtype.is_integer()
    frame = frame.select(pl.col(id_col).cast(pl.String).alias(_ID), parsed.values.alias(_T), *numeric, *static_cols)
    report.bad_timestamps, report.clock = frame[_T].null_count(), parsed.clock
    frame = frame.filter(pl.col(_T).is_not_null())
    no_id = frame.filter(pl.col(_ID).is_null())
    if no_id.height:
        raise DataError(
            f"{no_id.height} rows have no value in the id column '{id_col}' (the first at {no_id[_T][0]}): give "
            "each row its series' id, or drop those rows"
        )
    # NaN and inf are missing, like empty cells: one null per missing value from here on
    frame = frame.with_columns(pl.when(pl.col(c).is_finite()).then(pl.col(c)).alias(c) for c in numeric)
    codes = missing_codes(frame, numeric)
    frame, report.missing_codes = without_codes(frame, codes), codes
    frame = _dedup(frame, [*numeric, *static_cols], report).sort(_ID, _T, maintain_order=True)
    lost = float32_losses(frame, numeric, by=_ID)
    if lost:
        raise DataError(f"column {lost[0]}" + (f" ({len(lost) - 1} more alike)" if len(lost) > 1 else ""))
    frame = _snap_jitter(frame, freq, report)

    # each series starts at its first observed target; earlier rows (covariates only) are dropped
    first = frame.filter(pl.col(target_col).is_not_null()).group_by(_ID).agg(pl.col(_T).min().alias("__first"))
    all_ids = frame[_ID].unique(maintain_order=True).to_list()
    empty = sorted(set(all_ids) - set(first[_ID].to_list()))
    if empty:
        raise DataError(
            f"series {_few(empty)} have no observed value of '{target_col}'; drop them or fix the target column"
        )
    frame = frame.join(first, on=_ID, how="left", maintain_order="left")
    before = frame["__first"] > frame[_T]
    report.before_start = int(before.sum())
    frame = frame.filter(~before)

    ids = frame[_ID].unique(maintain_order=True).to_list()
    row_series = frame[_ID].cast(pl.Enum(ids)).to_physical().to_numpy().astype(np.int64)
    starts = first.join(pl.DataFrame({_ID: ids}), on=_ID, how="right")["__first"].to_numpy()
    starts = starts.astype("datetime64[ns]")
    ts = frame[_T].to_numpy().astype("datetime64[ns]")
    step, own = _panel_freq(ts, row_series, freq, report)
    pos = grid_position(ts, starts[row_series], step)
    if (pos < 0).any():
        r = int(np.argmax(pos < 0))
        sid, origin = ids[row_series[r]], starts[row_series[r]]
        raise DataError(
            f"series '{sid}' has a row at {ts[r]}, off its {step} grid starting {origin}; "
            "pass the right freq= or align the timestamps"
        )
    target = frame[target_col].to_numpy().astype(np.float32)
    observed = ~np.isnan(target)
    n = len(ids)
    lengths = np.zeros(n, dtype=np.int64)
    np.maximum.at(lengths, row_series[observed], pos[observed] + 1)
    _check_coarser(ids, own, step, lengths, np.bincount(row_series[observed], minlength=n))
    future_lengths = lengths.copy()
    if future:
        has_future = frame.select(pl.any_horizontal(pl.col(c).is_not_null() for c in future)).to_series().to_numpy()
        np.maximum.at(future_lengths, row_series[has_future], pos[has_future] + 1)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    future_offsets = np.concatenate([[0], np.cumsum(future_lengths)[:-1]]).astype(np.int64)

    inside = pos < lengths[row_series]  # rows after the last target carry only future covariates
    rows = offsets[row_series[inside]] + pos[inside]
    values = np.full(int(lengths.sum()), np.nan, dtype=np.float32)
    values[rows] = target[inside]
    past_arr = np.full((len(values), len(past)), np.nan, dtype=np.float32)
    for j, c in enumerate(past):
        past_arr[rows, j] = frame[c].to_numpy()[inside]
    future_arr = np.full((int(future_lengths.sum()), len(future)), np.nan, dtype=np.float32)
    future_rows = future_offsets[row_series] + pos
    for j, c in enumerate(future):
        future_arr[future_rows, j] = frame[c].to_numpy()
    static, static_names = _static(frame, ids, static_covariates, id_col)

    report.missing_covariates = {c: int(np.isnan(past_arr[:, j]).sum()) for j, c in enumerate(past)}
    for j, c in enumerate(future):
        span = np.concatenate([future_arr[o : o + m, j] for o, m in zip(future_offsets, lengths, strict=True)])
        report.missing_covariates[c] = int(np.isnan(span).sum())
    report.missing_covariates = {c: k for c, k in report.missing_covariates.items() if k}
    missing = np.bincount(row_series[observed], minlength=n)
    lasts = advance(starts, step, lengths - 1)
    report.series = {
        sid: SeriesReport(str(starts[i])[:19].replace("T", " "), str(lasts[i])[:19].replace("T", " "),
                          int(lengths[i]), int(lengths[i] - missing[i]))
        for i, sid in enumerate(ids)
    }  # fmt: skip
    return Panel(
        ids=ids,
        freq=step,
        values=values,
        offsets=offsets,
        lengths=lengths,
        starts=starts,
        past=past_arr,
        future=future_arr,
        future_offsets=future_offsets,
        future_lengths=future_lengths,
        static=static,
        past_names=past,
        future_names=future,
        static_names=static_names,
        id_col=id_col,
        time_col=time_col,
        integer_ids=integer_ids,
        clock=parsed.clock,
        snapped=report.snapped is not None,
        decimal_comma=[c for c in raw.decimal_comma if c in numeric],
        target_col=target_col,
        report=report,
    )
