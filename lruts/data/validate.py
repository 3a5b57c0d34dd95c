"""Validation and repair of a raw table, one step a function, in the order they run (see `validate`).

The result is a polars frame `timestamp: Datetime[ns]` + one Float32 column per series, time-sorted,
with distinct timestamps and finite values, missing cells null (fill "mask", the default) or filled. Each step
records what it found and what it did in the `IngestReport`. Steps that find nothing wrong do not copy the data.

Fill policy (`fill=`), for missing cells and, on a regular series, for missing grid steps:
  "ffill":           forward fill, leading missing cells back-filled (never uses future values except
                     before the first observation);
  "interpolate":     linear in time between neighbours (edges as ffill);
  "zero":            0;
  "drop":            drop rows with a missing cell, do not insert missing steps;
  "error":           raise DataError if anything is missing;
  "mask" (default):  keep missing cells (and inserted grid steps) missing, for a model that masks them (the
                     windows carry masks): nothing invented, a long table's series keep their own spans.
In a long table pivoted wide, each series is filled only inside its own span (first to last observation):
nothing is invented before a series starts or after it ends; the report lists each series' span and its
missing steps (`series_spans`).
Gaps larger than MAX_INVENTED_SHARE of the result are never filled: DataError (pass regular=False).
Duplicated timestamps keep the last row (later rows of a file are usually corrections).
Missing-data codes (a logger's −9999 among wind speeds of 0–15: read.missing_codes) are missing cells.
With exact_rows (the named benchmark datasets) duplicates, gaps and missing-data codes are reported but the
rows are kept as published, so the protocol's splits and window counts match other codebases'.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from lruts.data.read import (
    NULL_TOKENS,
    RawTable,
    cell_notes,
    code_note,
    float32_losses,
    join_date_and_time,
    missing_codes,
    without_codes,
)
from lruts.data.report import IngestReport
from lruts.data.timestamps import (
    CLOCK_NOTES,
    advance,
    business_days,
    calendar_months,
    format_step,
    grid_position,
    infer_freq,
    jitter_note,
    jitter_snapped,
    parse_freq,
    parse_timestamps,
    session,
    step_ns,
    weekdays_only,
)
from lruts.errors import DataError

FILL_POLICIES = ("ffill", "interpolate", "zero", "drop", "error", "mask")
MAX_INVENTED_SHARE = 0.5
T = "timestamp"


def _values(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if c != T]


def _off_grid(off: int, rows: int, freq: str, exact_rows: bool, report: IngestReport) -> None:
    """Timestamps off the step's grid: a few are kept as they are (reported); where most are, the readings
    come at irregular times (events, a sensor that reports on change) and no step orders them: DataError."""
    if off > 0.5 * rows and not exact_rows:
        raise DataError(
            f"'{report.name}': {off:,} of its {rows:,} timestamps are off the grid of its most common step ({freq}): "
            "readings at irregular times (events, a sensor that reports on change) have no step to forecast by; "
            "resample them to one first (pandas: df.set_index('time').resample('5min').mean())"
        )
    hint = ""
    if report.clock and report.clock["kind"] == "utc":  # a fixed local hour is two UTC hours across daylight saving
        hint = (
            "; the times had a zone and were converted to UTC, where a daylight-saving change moves a fixed local "
            "hour: if they are local times of day, drop the zone before reading them (pandas: "
            "df['date'].dt.tz_localize(None)) so that they stay on one grid"
        )
    report.warnings.append(f"{off} timestamps are off the {freq} grid: kept as they are, no gap filling{hint}")


# what a row index saved beside the data is called: pandas' `to_csv` without index=False writes a blank header
# (read as column_0, or pandas' own "Unnamed: 0"), `reset_index` an "index"; and a logger's record numbers:
# Campbell Scientific's TOA5 "RECORD", HOBOware's "#" (names compared in lower case)
_COUNTER_NAMES = {
    "a saved row index": ("column_0", "unnamed: 0", "index"),
    "a logger's record numbers": ("record", "recnbr", "recnum", "#"),
}


def _without_row_numbers(raw: RawTable, report: IngestReport) -> list[str]:
    """The value columns but a saved row index or a logger's record numbers (so named, and whole numbers rising
    in file order), which would otherwise be forecast as a series (a ramp); said in the report."""
    keep = []
    for c in raw.value_cols:
        what = next((k for k, names in _COUNTER_NAMES.items() if c.strip().lower() in names), None)
        if what and c != raw.time_col:
            v = raw.frame[c].cast(pl.Float64).to_numpy()
            if len(v) > 2 and np.isfinite(v).all() and (v == np.round(v)).all() and (np.diff(v) > 0).all():
                report.dropped_columns[c] = what
                report.repairs.append(f"dropped column '{c}': {what} ({v[0]:g}, {v[1]:g}, {v[2]:g}, …)")
                continue
        keep.append(c)
    return keep


def parse_time(frame: pl.DataFrame, time_col: str, report: IngestReport) -> pl.DataFrame:
    parsed = parse_timestamps(frame[time_col])
    report.time_col, report.time_format = time_col, parsed.layout
    if parsed.layout == "Excel serial days":
        report.repairs.append(
            f"read '{time_col}' as a spreadsheet's serial dates (days since 1899-12-30: 44197 is 2021-01-01)"
        )
    if parsed.clock:
        report.clock = parsed.clock.to_dict()
        report.repairs.append(CLOCK_NOTES[parsed.clock.kind])
    frame = frame.clone()  # in-place column edits below must not touch the caller's frame
    frame.drop_in_place(time_col)
    if T in frame.columns:
        frame = frame.rename({T: f"{T}_value"})
        report.repairs.append(f"value column '{T}' renamed '{T}_value' (the name is taken by the time column)")
    # insert_column, not select/with_columns: those rechunk a table read in blocks (a full copy)
    frame.insert_column(0, parsed.values.alias(T))
    bad = frame[T].null_count()
    if bad:
        frame = frame.filter(pl.col(T).is_not_null())
        report.bad_timestamps = bad
        report.repairs.append(f"dropped {bad} rows whose timestamp is empty or unreadable")
    return frame


def pivot_long(frame: pl.DataFrame, id_col: str, targets: list[str], report: IngestReport) -> pl.DataFrame:
    """Long format (one row per id and time) -> wide: one column per id (per id and target if several)."""
    frame = frame.with_columns(pl.col(id_col).cast(pl.String).fill_null("null"))
    dup = frame.height - frame.select(T, id_col).n_unique()
    wide = frame.pivot(on=id_col, index=T, values=targets, aggregate_function="last", sort_columns=True)
    if dup:
        report.duplicate_rows += dup
        report.repairs.append(f"dropped {dup} rows repeating an ({id_col}, time) pair, kept the last")
    if len(targets) == 1:
        wide = wide.rename({c: c.removeprefix(f"{targets[0]}_") for c in _values(wide)})
    report.repairs.append(f"long format pivoted on '{id_col}': {wide.width - 1} series")
    return wide


def sort_by_time(frame: pl.DataFrame, report: IngestReport) -> pl.DataFrame:
    if frame[T].is_sorted():
        return frame
    report.unsorted = True
    report.repairs.append("rows were not in time order: sorted (stable)")
    return frame.sort(T, maintain_order=True)


def drop_duplicate_times(frame: pl.DataFrame, exact_rows: bool, report: IngestReport, raw: RawTable) -> pl.DataFrame:
    """Rows repeating a timestamp keep the last (a correction; local times across a daylight-saving change),
    unless most timestamps repeat with other values: then the table holds several series in one column, or
    a time column coarser than its rows, and keeping one row per time would lose the rest (DataError)."""
    distinct = frame[T].n_unique()
    if distinct == frame.height:
        return frame
    dups = frame.height - distinct
    if exact_rows:
        report.warnings.append(f"{dups} repeated timestamps kept: rows as in the published file (exact_rows)")
        return frame
    distinct_rows = frame.unique(maintain_order=True)
    exact = frame.height - distinct_rows.height
    repeated = distinct_rows.filter(pl.col(T).is_duplicated())[T].n_unique()
    if repeated > 0.5 * distinct:
        what = f"'{report.name}': {repeated:,} of its {distinct:,} timestamps repeat with other values"
        what += f" ({dups - exact:,} rows)"
        ids = _id_column(raw)
        if ids is not None:
            raise DataError(
                f"{what}: several series in one table, told apart by '{ids[0]}' ({ids[1]}: one row per time "
                f"each); read it as a long table: id_col='{ids[0]}' and its target_col"
            )
        raise DataError(
            f"{what}: several series in one table (read it as a long table: id_col, the column naming each row's "
            "series), or a time column coarser than its rows (dates beside a period or hour column: combine them "
            "into one timestamp); keeping one row per time would drop the rest"
        )
    report.duplicate_rows += dups
    report.conflicting_duplicates = dups - exact
    note = ""
    if dups > exact:  # what a user checks first: two readings an hour apart at one local time (daylight saving)
        first = distinct_rows.filter(pl.col(T).is_duplicated()).head(2)
        col = next(c for c in _values(first) if first[c].n_unique() > 1) if _values(first) else None
        shown = f" ({col}: {first[col][0]:.6g} and {first[col][1]:.6g})" if col else ""
        note = (
            f"; the first at {first[T][0]}{shown}: local times across a daylight-saving change? give the "
            "timestamps their UTC offset"
        )
    report.repairs.append(
        f"dropped {dups} rows with a repeated timestamp ({exact} exact copies, {dups - exact} with other values), "
        f"kept the last of each{note}"
    )
    return frame.unique(subset=T, keep="last", maintain_order=True)


def _id_column(raw: RawTable) -> tuple[str, str] | None:
    """A text column of the raw table that tells its series apart (each of its values has one row per time),
    and some of its values, or None."""
    for c in raw.text_cols:
        if c == raw.time_col:
            continue
        ids = raw.frame[c].drop_nulls().unique(maintain_order=True)
        if len(ids) > 1 and raw.frame.select(raw.time_col, c).is_unique().all():
            shown = ", ".join(ids.head(4).cast(pl.String).to_list()) + (", …" if len(ids) > 4 else "")
            return c, f"{len(ids):,} values, {shown}"
    return None


def non_finite_to_missing(
    frame: pl.DataFrame, out_of_range: dict[str, int], empty: dict[str, int], report: IngestReport
) -> pl.DataFrame:
    """NaN/inf -> missing. `empty`: cells that were empty in the file but arrive as NaN (block reader)."""
    cols = _values(frame)
    counts = frame.select((pl.col(c).is_not_null() & ~pl.col(c).is_finite()).sum() for c in cols).row(0)
    bad = {
        c: int(n) - empty.get(c, 0) + out_of_range.get(c, 0)
        for c, n in zip(cols, counts, strict=True)
        if int(n) - empty.get(c, 0) + out_of_range.get(c, 0)
    }
    if not any(counts):
        return frame
    if bad:
        report.non_finite = bad
        report.repairs.append(f"{sum(bad.values())} NaN/inf or beyond-float32 values in {len(bad)} columns set missing")
    fix = [c for c, n in zip(cols, counts, strict=True) if n]
    return frame.with_columns(pl.when(pl.col(c).is_finite()).then(pl.col(c)).alias(c) for c in fix)


def codes_to_missing(frame: pl.DataFrame, exact_rows: bool, report: IngestReport) -> pl.DataFrame:
    """Missing-data codes (read.missing_codes: a logger's −9999 among wind speeds of 0–15) -> missing. With
    exact_rows they are reported and kept: the published benchmark files carry them and the published results
    were computed with them."""
    found = missing_codes(frame, _values(frame))
    if not found:
        return frame
    report.missing_codes = {c: {f"{v:g}": n for v, n in f.cells.items()} for c, f in found.items()}
    if exact_rows:
        report.warnings += code_note(found, kept=True)
        return frame
    report.repairs += code_note(found)
    return without_codes(frame, found)


def float32_kept(frame: pl.DataFrame, exact_rows: bool, report: IngestReport) -> None:
    """A DataError where float32 storage would round a column's changes away (read.float32_losses: a cumulative
    meter's readings); with exact_rows, a warning."""
    lost = float32_losses(frame, _values(frame))
    if lost and exact_rows:
        report.warnings += lost
    elif lost:
        more = f" ({len(lost) - 1} more columns alike)" if len(lost) > 1 else ""
        raise DataError(
            f"'{report.name}': column {lost[0]}{more}; or, if it is no series to forecast (a second clock), "
            "leave it out: target_cols=[the series]"
        )


def drop_empty_columns(frame: pl.DataFrame, report: IngestReport) -> pl.DataFrame:
    nulls = frame.null_count().row(0, named=True)
    empty = [c for c in _values(frame) if nulls[c] == frame.height]
    for c in empty:
        report.dropped_columns[c] = "no numeric values"
    if empty:
        report.repairs.append(f"dropped columns without any numeric value: {empty}")
    mostly = [c for c in _values(frame) if c not in empty and nulls[c] > 0.5 * frame.height]
    if mostly:
        report.warnings.append(f"more than half of the values are missing in {mostly}")
    return frame.drop(empty)


def frequency(frame: pl.DataFrame, freq: str | None, report: IngestReport) -> str:
    if frame.height < 2:
        raise DataError(
            f"'{report.name}' has {frame.height} usable row(s): a series needs at least 2 rows to have a step "
            "(and lookback + horizon rows to make one window)"
        )
    if freq is not None:
        report.freq, report.freq_inferred = parse_freq(freq), False
        return report.freq
    inferred = infer_freq(frame[T].to_numpy())
    assert inferred is not None
    if inferred == "1b":
        # a wide table keeps a trading calendar as its observed daily rows (regularise does not fill them),
        # as the forecaster reads it; a panel (lruts.data.panel) puts it on the business-day grid
        inferred = "1d"
    report.freq, report.freq_inferred = inferred, True
    return inferred


def snap_jitter(frame: pl.DataFrame, freq: str, exact_rows: bool, report: IngestReport) -> tuple[pl.DataFrame, str]:
    """Readings a little off a fixed step's grid (a logger's jitter: within JITTER_SHARE of a step, no two on
    one step) moved to their grid points, and the step they keep; anything else is left to `regularise`,
    which reports it off the grid."""
    step = step_ns(freq)
    ts = frame[T].to_numpy()
    found = None if exact_rows or step is None else jitter_snapped(ts, step, search=report.freq_inferred)
    if found is None or found[1] == 0:
        return frame, freq
    times, largest, step = found
    freq = report.freq = format_step(step)
    report.snapped = True
    report.repairs.append(jitter_note(int(np.count_nonzero(times != ts)), freq, largest))
    return frame.with_columns(pl.Series(T, times)), freq


def regularise(
    frame: pl.DataFrame,
    freq: str,
    regular: bool | None,
    fill: str,
    exact_rows: bool,
    report: IngestReport,
    long: bool = False,
) -> pl.DataFrame:
    """Find holes in the time grid; on a regular series insert the missing steps (as missing cells). Gaps of more
    than MAX_INVENTED_SHARE of the rows are refused (a mistyped year, a wrong step), except in a long table kept
    missing, whose series may cover different years."""
    ts = frame[T].to_numpy()
    if regular is None:
        regular = not (freq == "1d" and weekdays_only(ts))
        if not regular:
            report.warnings.append("daily series without weekends (a trading calendar): missing days are not filled")
    step = step_ns(freq)
    on_business_days = business_days(freq) is not None or session(freq) is not None
    if on_business_days:  # holes counted on the grid: nights and weekends are not steps
        pos = grid_position(ts, ts[0], freq)
        off = int(np.count_nonzero(pos < 0))
        if off:
            _off_grid(off, len(ts), freq, exact_rows, report)
            regular = False
        holes = np.diff(pos) - 1
    elif step is None:  # calendar months: let polars build the grid
        months = calendar_months(freq) or 1
        m = ts.astype("datetime64[M]").astype(np.int64)
        holes = np.diff(m) // months - 1
    else:
        offsets = (ts.astype(np.int64) - ts[0].astype(np.int64)) % step
        off = int(np.count_nonzero(offsets))
        if off:
            _off_grid(off, len(ts), freq, exact_rows, report)
            regular = False
        holes = np.diff(ts.astype(np.int64)) // step - 1
    holes = np.maximum(holes, 0)
    report.regular = regular
    report.gaps = int(np.count_nonzero(holes))
    report.missing_steps = int(holes.sum())
    if report.gaps:
        i = int(np.argmax(holes))
        report.largest_gap = f"{int(holes[i])} steps after {str(ts[i])[:19].replace('T', ' ')}"
    if report.gaps and exact_rows:
        report.warnings.append(
            f"{report.gaps} gaps kept ({report.missing_steps} missing steps): "
            "rows as in the published file (exact_rows)"
        )
        return frame
    if not report.gaps or not regular:
        if report.gaps:
            report.warnings.append(f"{report.gaps} calendar gaps kept ({report.missing_steps} steps): irregular series")
        return frame
    if fill == "error":
        raise DataError(
            f"'{report.name}' has {report.gaps} gaps ({report.missing_steps} missing {freq} steps, largest "
            f"{report.largest_gap}); pass fill='ffill' or 'interpolate' to fill them"
        )
    if fill == "drop":
        report.warnings.append(f"{report.gaps} gaps kept ({report.missing_steps} missing steps): fill='drop'")
        return frame
    total = frame.height + report.missing_steps
    if (fill != "mask" or not long) and report.missing_steps > MAX_INVENTED_SHARE * total:
        raise DataError(
            f"'{report.name}': "
            + ("filling its gaps would invent" if fill != "mask" else "its gaps would make")
            + f" {report.missing_steps:,} of {total:,} rows at step {freq} missing (largest gap {report.largest_gap})."
            " Check the timestamps (a mistyped year?) and the frequency (freq=), or keep the observed rows only"
            " with regular=False"
        )
    if on_business_days:
        grid = advance(ts[0], freq, np.arange(int(grid_position(ts[-1:], ts[0], freq)[0]) + 1))
        frame = pl.DataFrame({T: grid}).join(frame, on=T, how="left")
    else:
        frame = frame.upsample(T, every=freq)
    report.repairs.append(
        f"inserted {report.missing_steps} missing {freq} steps ({report.gaps} gaps, largest {report.largest_gap})"
    )
    return frame


def series_spans(frame: pl.DataFrame, report: IngestReport) -> None:
    """Each series' first and last observation and the missing steps between them (a long table's report)."""
    spans = {}
    for c in _values(frame):
        seen = frame[c].is_not_null()
        idx = seen.arg_true()
        if idx.len() == 0:
            continue
        lo, hi = int(idx[0]), int(idx[-1])
        spans[c] = {
            "first": str(frame[T][lo]),
            "last": str(frame[T][hi]),
            "missing_steps": hi - lo + 1 - int(seen.slice(lo, hi - lo + 1).sum()),
        }
    report.series_spans = spans


def _inside_span(c: str) -> pl.Expr:
    seen = pl.col(c).is_not_null()
    return (seen.cum_sum() > 0) & (seen.cum_sum(reverse=True) > 0)


def fill_missing(frame: pl.DataFrame, fill: str, report: IngestReport, *, per_span: bool = False) -> pl.DataFrame:
    """Fill missing cells by `fill`; per_span (a long table's series): only between a series' first and last
    observation, so nothing is invented before it starts or after it ends."""
    nulls = frame.null_count().row(0, named=True)
    todo = {c: n for c, n in nulls.items() if n and c != T}
    if per_span:
        inside = frame.select((~pl.col(c).is_not_null() & _inside_span(c)).sum() for c in todo).row(0) if todo else ()
        todo = {c: int(n) for c, n in zip(todo, inside, strict=True) if n}
    if not todo:
        return frame
    total = sum(todo.values())
    if fill == "mask":
        report.kept_missing = todo
        report.warnings.append(f"{total} missing cells in {len(todo)} columns kept missing (fill='mask')")
        return frame
    if fill == "error":
        raise DataError(f"'{report.name}' has {total} missing values ({todo}); pass fill='ffill' to fill them")
    if fill == "drop":
        before = frame.height
        frame = frame.drop_nulls()
        report.repairs.append(f"dropped {before - frame.height} rows with missing values (fill='drop')")
        return frame
    how = {
        "ffill": lambda c: pl.col(c).forward_fill().backward_fill(),
        "interpolate": lambda c: pl.col(c).interpolate().forward_fill().backward_fill(),
        "zero": lambda c: pl.col(c).fill_null(0.0),
    }[fill]
    report.filled = todo
    report.repairs.append(
        f"filled {total} missing cells in {len(todo)} columns ({fill}{', inside each series span' if per_span else ''})"
    )
    if per_span:
        return frame.with_columns(pl.when(_inside_span(c)).then(how(c)).cast(pl.Float32).alias(c) for c in todo)
    return frame.with_columns(how(c).cast(pl.Float32).alias(c) for c in todo)


def constant_columns(frame: pl.DataFrame, drop: bool, report: IngestReport) -> pl.DataFrame:
    cols = _values(frame)
    if not cols:
        return frame
    stats = frame.select(*(pl.col(c).min().alias(f"lo{i}") for i, c in enumerate(cols)),
                         *(pl.col(c).max().alias(f"hi{i}") for i, c in enumerate(cols))).row(0)  # fmt: skip
    const = [c for i, c in enumerate(cols) if stats[i] == stats[len(cols) + i]]
    if not const:
        return frame
    report.constant_columns = const
    if drop:
        for c in const:
            report.dropped_columns[c] = "constant"
        report.repairs.append(f"dropped constant columns {const}")
        return frame.drop(const)
    report.warnings.append(f"constant columns {const} kept (their scaler std is set to 1)")
    return frame


def _text_hint(frame: pl.DataFrame, cols: list[str]) -> str:
    """A value of each text column, to show the user what the reader met there."""
    hint = ""
    for c in cols:
        values = frame[c].cast(pl.String).str.strip_chars().drop_nulls()
        values = values.filter(~values.is_in(NULL_TOKENS))
        if len(values):
            hint += f"; {c!r} holds e.g. {values[0]!r}"
    return hint


def fill_policy(fill: str | None) -> str:
    """The effective policy: `fill`, or by default "mask" (kept missing)."""
    fill = fill or "mask"
    if fill not in FILL_POLICIES:
        raise DataError(f"fill='{fill}' is not a policy; use one of {FILL_POLICIES}")
    return fill


def validate(
    raw: RawTable,
    report: IngestReport,
    *,
    target_cols: list[str] | None,
    freq: str | None,
    fill: str | None,
    regular: bool | None,
    id_col: str | None,
    drop_constant: bool,
    exact_rows: bool = False,
) -> pl.DataFrame:
    """Run every step on a raw table; returns the clean frame and fills `report`."""
    fill = fill_policy(fill)
    report.rows_raw = raw.frame.height
    report.encoding, report.delimiter = raw.encoding, raw.delimiter
    report.repairs += raw.notes
    report.repairs += cell_notes(raw.written_cells, raw.junk_cells, raw.junk_examples)
    report.junk_cells = dict(raw.junk_cells)
    report.decimal_comma = list(raw.decimal_comma)
    raw, joined = join_date_and_time(raw)
    if joined:
        report.repairs.append(joined.note)
        report.time_of_day, report.day_periods = joined.column, joined.periods
    frame = raw.frame
    for c in raw.text_cols:
        report.dropped_columns[c] = "not numeric"
    wanted = list(target_cols) if target_cols else None
    if wanted:
        unknown = [c for c in wanted if c not in raw.value_cols]
        if unknown:
            why = [c for c in unknown if c in raw.text_cols]
            raise DataError(
                f"target columns {unknown} are not numeric columns of the table"
                + (f" ({why} hold text{_text_hint(raw.frame, why)})" if why else "")
                + f"; numeric columns: {raw.value_cols}"
            )
    keep = wanted or _without_row_numbers(raw, report)
    if not keep:
        raise DataError(
            f"'{report.name}' has no numeric value column (text columns: {raw.text_cols}"
            f"{_text_hint(raw.frame, raw.text_cols)})"
        )
    dropped_text = [c for c in raw.text_cols if c != raw.time_col]
    if dropped_text:
        report.repairs.append(f"dropped non-numeric columns {dropped_text}")
    wanted_cols = [raw.time_col, *([id_col] if id_col else []), *keep]
    if frame.columns != wanted_cols:
        frame = frame.select(wanted_cols)
    frame = parse_time(frame, raw.time_col, report)
    if id_col:
        frame = pivot_long(frame, id_col, keep, report)
    frame = sort_by_time(frame, report)
    frame = drop_duplicate_times(frame, exact_rows, report, raw)
    frame = non_finite_to_missing(frame, raw.out_of_range, raw.empty_cells, report)
    frame = codes_to_missing(frame, exact_rows, report)
    frame = drop_empty_columns(frame, report)
    float32_kept(frame, exact_rows, report)
    if frame.width < 2:
        raise DataError(f"'{report.name}' has no numeric value column left (dropped: {report.dropped_columns})")
    step = frequency(frame, freq, report)
    frame, step = snap_jitter(frame, step, exact_rows, report)
    frame = regularise(frame, step, regular, fill, exact_rows, report, long=id_col is not None)
    if id_col:
        series_spans(frame, report)
    frame = fill_missing(frame, fill, report, per_span=bool(id_col))
    frame = constant_columns(frame, drop_constant, report)
    if frame.width < 2 or frame.height < 2:
        raise DataError(
            f"'{report.name}': nothing usable left after validation ({frame.height} rows, {frame.width - 1} series)"
        )
    report.rows = frame.height
    report.columns = _values(frame)
    report.start, report.end = str(frame[T][0]), str(frame[T][-1])
    return frame


__all__ = ["FILL_POLICIES", "T", "fill_policy", "format_step", "validate"]
