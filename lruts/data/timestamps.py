"""Timestamps: parse a text column in any common layout, name a series' step ("1h", "15m", "1d", "1b",
"5m@07:00-21:00"), and step along its grid (`advance`, `grid_position`).

Accepted: ISO 8601 (with or without `T`, fractional seconds, UTC offsets or `Z`), `2016/7/1 2:00`
(unpadded), dates only, `dd.mm.yyyy`, `mm/dd/yyyy` / `dd/mm/yyyy` (whichever parses every value;
month-first wins a tie), `yyyymmdd`, `yyyymm` (1800–2199), months without a day (`1982 Apr`, `Apr 1982`,
`1982-04`: the first of the month), quarters (`1990Q1`, `1990-Q1`, `1990 Q1`: its first day), ISO weeks (`2015-W02`: its
Monday; `2015-W02-3`: its Wednesday), years (`1990`: 1 January), and epoch numbers (seconds, ms, µs or
ns, by magnitude; four digits are a year, not the first hours of 1970). Whole numbers below STEP_NUMBERS_BELOW
are no plausible epoch (1970's first four months) but step numbers (1, 2, 3, …: a simulation's or a sensor's
sample index): stored as that many seconds, and given back as numbers (`Clock` "steps").

Timestamps that carry a zone (UTC offsets in text, a zone-aware column) are stored without one, by a clock
(`Clock`): dates, whose every value is a local midnight (a daily or monthly table exported with its zone,
`2021-03-28 00:00:00+01:00` then `2021-03-29 00:00:00+02:00`), keep their local wall clock, so they stay
on one grid of days across a daylight-saving change; anything else is converted to UTC, which has no
repeated or missing hours. The clock chosen when a table is read is kept: new rows are read by it, and
forecasts are dated in the zone of a zone-aware column.
"""

from __future__ import annotations

import contextlib
import functools
import re
from dataclasses import dataclass

import numpy as np
import polars as pl

from lruts.errors import DataError

_FORMATS = (
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S%#z",
    "%Y-%m-%dT%H:%M:%S%#z",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%dT%H:%M%#z",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%Y%m%d %H:%M:%S",
    "%Y%m%d",
    # a 12-hour clock (a US spreadsheet's "1/2/2024 1:00 PM")
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%d/%m/%Y %I:%M:%S %p",
    "%d/%m/%Y %I:%M %p",
    "%Y-%m-%d %I:%M:%S %p",
    "%Y-%m-%d %I:%M %p",
    # month names (a market data site's "Jun 28, 2024", a report's "28 Jun 2024", "28-Jun-2024"); %b takes "June" too
    "%b %d, %Y",
    "%B %d, %Y",
    "%b %d %Y",
    "%d %b %Y",
    "%d %B %Y",
    "%d-%b-%Y",
    "%d %b %Y %H:%M:%S",
    "%d-%b-%Y %H:%M:%S",
)
# months written without a day: parsed as the first of the month (a day is appended, chrono needs one)
_MONTH_FORMATS = ("%Y %b", "%b %Y", "%Y-%m", "%Y/%m")
_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")
_QUARTER = r"^(\d{4})[- ]?Q([1-4])$"
_ISO_WEEK = r"^(\d{4})-?W(\d{2})(?:-?([1-7]))?$"
_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
# largest plausible epoch magnitude for each unit, checked in this order
_EPOCH_UNITS = (("s", 1e11), ("ms", 1e14), ("us", 1e17), ("ns", float("inf")))
# a format is accepted when it parses at least this share of the values; the rest are dropped and reported
MIN_PARSED_SHARE = 0.9


CLOCK_NOTES = {  # what a report says of each kind of Clock
    "utc": "timestamps carried a zone: converted to UTC, stored without a zone",
    "local": "timestamps carried a zone and were all local midnights (dates): read as those dates, without a zone",
    "steps": "the time column holds step numbers (whole numbers, no plausible epoch): forecasts are numbered on",
}
STEP_NUMBERS_BELOW = 10_000_000  # as epoch seconds: before 26 April 1970
# a spreadsheet's serial dates: day 25569 is 1970-01-01 (day 0 is 1899-12-30); read as dates only in a column named
# for a date and within 1970–2099, else they are step numbers
_EXCEL_EPOCH_DAY, _EXCEL_LAST_DAY = 25_569, 73_051
_EXCEL_NAME = re.compile(r"date|timestamp", re.IGNORECASE)
_ISO_NAIVE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?")
_FEED_ROWS = 16  # new rows up to this many with ISO times are read without polars
_OFFSET = r"([+-])(\d{2}):?(\d{2})$"  # a UTC offset ending a timestamp ("Z" and none: 0)


@dataclass(frozen=True)
class Clock:
    """How a table's timestamps that carried a zone are stored (module doc), new rows read, forecasts dated."""

    kind: str  # "local": the wall clock (dates), "utc", or "steps": step numbers stored as seconds
    zone: str | None = None  # the column's own zone (a zone-aware column): forecasts are dated in it

    def __post_init__(self) -> None:
        if self.kind not in CLOCK_NOTES:
            raise ValueError(f"a clock is one of {list(CLOCK_NOTES)}, got {self.kind!r}")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "zone": self.zone}

    @classmethod
    def from_dict(cls, d: dict | None) -> Clock | None:
        return cls(d["kind"], d.get("zone")) if d else None

    @property
    def shows_stored(self) -> bool:
        """Whether `show` gives the stored times back as they are."""
        return self.zone is None and self.kind != "steps"

    def show(self, times: np.ndarray):
        """Stored times (n,) datetime64[ns] as the table gave them: step numbers (int64), in its zone where it
        had one (a pandas DatetimeIndex), else as stored."""
        if self.kind == "steps":
            return np.asarray(times, "datetime64[s]").astype(np.int64)
        if self.zone is None:
            return times
        import pandas as pd

        index = pd.DatetimeIndex(times)
        if self.kind == "local":  # a midnight that daylight saving skips (a few zones) is the day's first hour
            return index.tz_localize(self.zone, ambiguous=True, nonexistent="shift_forward")
        return index.tz_localize("UTC").tz_convert(self.zone)


def dated_times(dates: pl.Series, of_day: pl.Series, periods: list[int] | None = None) -> pl.Series:
    """A date column and its rows' times of day, or (`periods`: [the first, seconds each]) a day's numbered
    periods (a grid operator's settlement periods 1..48, hours 0..23), as one column of text timestamps for
    parse_timestamps: how ingestion joins them (read.join_date_and_time) and `update()` its new rows'.
    A period past the day's last, or not a whole number, gives no time (null)."""
    if isinstance(dates.dtype, pl.Datetime):  # pandas' parsed dates: midnights
        dates = dates.dt.date()
    if periods:
        first, seconds = periods
        p = of_day.cast(pl.Float64, strict=False)
        ns = ((p - first) * seconds * 1_000_000_000).cast(pl.Int64, strict=False)
        whole = (p == p.round(0)) & (ns >= 0) & (ns < 86_400 * 1_000_000_000)
        of_day = ns.set(~whole.fill_null(False), None).cast(pl.Time)
    return dates.cast(pl.String) + " " + of_day.cast(pl.String)


def with_dated_times(frame, time_col: str, time_of_day: str | None, periods: list[int] | None = None):
    """A pandas frame of new rows whose `time_col` holds dates and `time_of_day` their times of day (or, with
    `periods`, numbered day periods), as the fitted table's were: `time_col` then holds the joined timestamps
    (text, for stored_times) and `time_of_day` is gone. A frame without that column is returned as it is (its
    times are whole already, or it lacks them: the caller says what is missing); a DataError where its times are
    dates alone."""
    if not time_of_day or time_col not in frame.columns:
        return frame
    if time_of_day not in frame.columns:
        import pandas as pd

        col = frame[time_col]
        if len(col) and not pd.api.types.is_datetime64_any_dtype(col) and not any(":" in str(v) for v in col):
            raise DataError(
                f"new rows lack column(s) ['{time_of_day}']: their '{time_col}' holds dates alone, which the fitted "
                f"table's '{time_of_day}' completed; give it beside them, or whole timestamps"
            )
        return frame
    when = dated_times(*(pl.from_pandas(frame[c]) for c in (time_col, time_of_day)), periods)
    return frame.drop(columns=time_of_day).assign(**{time_col: when.to_numpy()})


def stored_times(col, clock: Clock | None, what: str = "new rows") -> np.ndarray:
    """New rows' times (a pandas Series) as a series read by `clock` stores them: (n,) datetime64[ns], naive.
    Times without a zone are taken as they are; with one, by the series' clock (a series read without a zone
    stores UTC: ingestion's rule); text is read by parse_timestamps, as a file's."""
    import pandas as pd

    kind = clock.kind if clock else "utc"
    if kind == "steps" and pd.api.types.is_numeric_dtype(col):
        return np.asarray(col, np.int64).astype("datetime64[s]").astype("datetime64[ns]")
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        col = col.astype(str)  # years, yyyymm, epoch seconds, a spreadsheet's serial dates: read as a file's digits
    if not isinstance(col.dtype, pd.DatetimeTZDtype) and not pd.api.types.is_datetime64_dtype(col):
        if not all(isinstance(v, str) for v in col):
            col = pd.to_datetime(col)  # datetime objects, pandas Timestamps
        else:
            text = [v.strip() for v in col.tolist()]
            if len(text) <= _FEED_ROWS and all(_ISO_NAIVE.fullmatch(v) for v in text):
                # a live feed's ISO times without a zone: what parse_timestamps reads them as, without its per-call
                # cost (≈ 0.8 ms of a one-row update); an impossible date (02-30) is left to it to refuse
                with contextlib.suppress(ValueError):
                    return np.array([v.replace(" ", "T") for v in text], dtype="datetime64[ns]")
            parsed = parse_timestamps(pl.Series(str(col.name), text, dtype=pl.String), kind)
            if parsed.values.null_count():
                bad = [v for v, t in zip(col, parsed.values, strict=True) if t is None][:3]
                raise DataError(f"{what}: could not read the time(s) {bad} in '{col.name}'")
            return parsed.values.to_numpy().astype("datetime64[ns]")
    if isinstance(col.dtype, pd.DatetimeTZDtype):  # dates: the wall clock of the table's zone, where known
        local = col.dt.tz_convert(clock.zone) if kind == "local" and clock.zone else col
        col = (local if kind == "local" else col.dt.tz_convert("UTC")).dt.tz_localize(None)
    times = col.to_numpy("datetime64[ns]")
    if np.isnat(times).any():
        raise DataError(
            f"{what}: {int(np.isnat(times).sum())} row(s) have no time in '{col.name}'; give each row its time"
        )
    return times


@dataclass
class ParsedTime:
    values: pl.Series  # Datetime("ns"), naive (by `clock` where the input carried a zone); null where unparseable
    layout: str  # the format used, e.g. "%Y/%m/%d %H:%M" or "epoch[s]"
    clock: Clock | None = None  # None: the input carried no zone


class _Finish:
    """Stores parsed timestamps without a zone: by the clock kind asked for, or (None) the one the values call
    for."""

    def __init__(self, kind: str | None, text: pl.Series | None = None) -> None:
        self.kind, self.text = kind, text

    def __call__(self, parsed: pl.Series, layout: str) -> ParsedTime:
        zone = getattr(parsed.dtype, "time_zone", None)
        if zone is None:
            return ParsedTime(parsed.cast(pl.Datetime("ns")), layout)
        utc = parsed.dt.convert_time_zone("UTC").dt.replace_time_zone(None).cast(pl.Datetime("ns"))
        local = self._wall_clock(parsed, utc)
        present = local.drop_nulls()
        midnights = present.len() > 0 and bool((present.dt.truncate("1d") == present).all())
        # text's offsets name no zone (polars reads them as UTC): its forecasts are dated as stored
        clock = Clock(self.kind or ("local" if midnights else "utc"), None if self.text is not None else zone)
        return ParsedTime(local if clock.kind == "local" else utc, layout, clock)

    def _wall_clock(self, parsed: pl.Series, utc: pl.Series) -> pl.Series:
        """The local time each value was written in: a zone-aware column's own, text's UTC + its offset."""
        if self.text is None:
            return parsed.dt.replace_time_zone(None).cast(pl.Datetime("ns"))
        sign, hours, minutes = (self.text.str.extract(_OFFSET, k) for k in (1, 2, 3))
        direction = 1 - 2 * (sign == "-").fill_null(False).cast(pl.Int64)
        offset_minutes = (hours.cast(pl.Int64) * 60 + minutes.cast(pl.Int64)).fill_null(0) * direction
        return utc + (offset_minutes * 60_000_000_000).cast(pl.Duration("ns"))


def parse_timestamps(col: pl.Series, kind: str | None = None) -> ParsedTime:
    """Parse a column of timestamps (text, integer, date or datetime) into naive Datetime("ns"); values that
    carry a zone are stored by a Clock of `kind` ("local" or "utc"; None: local where every value is a local
    midnight, else UTC).

    Raises DataError when no layout parses at least MIN_PARSED_SHARE of the non-empty values.
    """
    if isinstance(col.dtype, pl.Datetime | pl.Date):
        finish = _Finish(kind)
        unit, zone = getattr(col.dtype, "time_unit", None) or "us", getattr(col.dtype, "time_zone", None)
        return finish(col.cast(pl.Datetime(unit, zone)), "native")
    text = col.cast(pl.String).str.strip_chars()
    finish = _Finish(kind, text)
    present = text.drop_nulls()
    present = present.filter(present != "")
    if present.len() == 0:
        raise DataError(f"time column '{col.name}' is empty")
    if present.str.contains(r"^[12]\d{3}$").all():  # years 1000-2999 (as epoch seconds: 1970's first hours)
        return finish((text + "-01-01").str.to_datetime("%Y-%m-%d", strict=False), "%Y")
    if present.str.contains(_QUARTER).all():
        parts = pl.DataFrame({"year": text.str.extract(_QUARTER, 1), "quarter": text.str.extract(_QUARTER, 2)})
        first_day = parts.cast(pl.Int32).select(pl.date("year", pl.col("quarter") * 3 - 2, 1)).to_series()
        return finish(first_day, "quarter")
    if present.str.contains(_ISO_WEEK).all():
        day = text.str.extract(_ISO_WEEK, 3).fill_null("1")
        iso = text.str.extract(_ISO_WEEK, 1) + "-W" + text.str.extract(_ISO_WEEK, 2) + "-" + day
        return finish(iso.str.to_date("%G-W%V-%u", strict=False), "ISO week")
    if present.str.contains(r"^[+-]?\d+(\.\d+)?$").all():
        if present.str.len_chars().eq(8).all():
            by_date = text.str.to_datetime("%Y%m%d", strict=False)
            if by_date.null_count() == text.null_count() + (text == "").sum():
                return finish(by_date, "%Y%m%d")
        if present.str.contains(r"^(1[89]|2[01])\d\d(0[1-9]|1[0-2])$").all():  # yyyymm: months (SQL exports)
            return finish((text + "01").str.to_datetime("%Y%m%d", strict=False), "%Y%m")
        if kind != "steps" and _excel_dates(col.name, present):  # a spreadsheet's dates as day numbers
            seconds = ((text.cast(pl.Float64, strict=False) - _EXCEL_EPOCH_DAY) * 86_400).round(0).cast(pl.Int64)
            return finish((seconds * 1_000_000_000).cast(pl.Datetime("ns")), "Excel serial days")
        whole = present.str.contains(r"^\d+$").all() and int(present.cast(pl.Int64).max()) < STEP_NUMBERS_BELOW
        if whole and kind in (None, "steps"):
            seconds = (text.cast(pl.Int64, strict=False) * 1_000_000_000).cast(pl.Datetime("ns"))
            return ParsedTime(seconds, "steps", Clock("steps"))
        return _parse_epoch(text)
    best: tuple[int, str, pl.Series] | None = None
    # explicit layouts first: polars guesses 07/01/2016 as 7 January
    for fmt in (*_FORMATS, *_MONTH_FORMATS, None):
        try:
            if fmt in _MONTH_FORMATS:
                parsed = (text + " 1").str.to_datetime(f"{fmt} %d", strict=False, time_unit="ns")
            else:
                parsed = text.str.to_datetime(fmt, strict=False, time_unit="ns")
        except pl.exceptions.PolarsError:
            continue  # polars could not infer a layout from the first value, or the format is invalid for it
        ok = parsed.len() - parsed.null_count()
        if best is None or ok > best[0]:
            best = (ok, fmt or "inferred", parsed)
        if ok == present.len():
            break
    if best is None or best[0] < MIN_PARSED_SHARE * present.len():
        bad = (
            present.head(3).to_list() if best is None else text.filter(best[2].is_null()).drop_nulls().head(3).to_list()
        )
        raise DataError(
            f"time column '{col.name}': could not read the timestamps (examples: {bad}). Use ISO 8601 "
            "('2016-07-01 02:00:00', optionally with a UTC offset), 'yyyy/m/d h:mm', a date, a month ('1982-04'), a "
            "quarter ('1990Q1'), an ISO week ('2015-W02'), a year, or epoch seconds; "
            "or pass time_col= to choose another column."
        )
    return finish(best[2], best[1])


def _excel_dates(name: str | None, present: pl.Series) -> bool:
    """Whether numbers in a time column are a spreadsheet's serial dates (days since 1899-12-30, a fraction for
    the time of day): the column is named for a date and every value falls in 1970–2099 (25569–73050)."""
    if not name or not _EXCEL_NAME.search(name):
        return False
    days = present.cast(pl.Float64, strict=False)
    return days.null_count() == 0 and float(days.min()) >= _EXCEL_EPOCH_DAY and float(days.max()) < _EXCEL_LAST_DAY


def _parse_epoch(text: pl.Series) -> ParsedTime:
    num = text.cast(pl.Float64, strict=False)
    peak = float(num.abs().max() or 0.0)
    unit = next(u for u, limit in _EPOCH_UNITS if peak < limit)
    ns = (num * _NS[unit]).round(0).cast(pl.Int64, strict=False)
    return ParsedTime(ns.cast(pl.Datetime("ns")), f"epoch[{unit}]")


# ----------------------------------------------------------------------------------------------------------------
# frequencies

_UNITS_NS = (
    ("d", 86_400 * 10**9),
    ("h", 3_600 * 10**9),
    ("m", 60 * 10**9),
    ("s", 10**9),
    ("ms", 10**6),
    ("us", 10**3),
    ("ns", 1),
)
_ALIASES = {
    "m": "m", "min": "m", "t": "m", "minute": "m", "minutes": "m", "mins": "m",
    "h": "h", "hour": "h", "hours": "h", "hr": "h",
    "d": "d", "day": "d", "days": "d",
    "b": "b", "bd": "b", "bday": "b", "bdays": "b", "business": "b",
    "w": "w", "week": "w", "weeks": "w",
    "s": "s", "sec": "s", "second": "s", "seconds": "s",
    "ms": "ms", "l": "ms", "us": "us", "u": "us", "ns": "ns", "n": "ns",
    "mo": "mo", "month": "mo", "months": "mo",
    "q": "q", "qs": "q", "qe": "q", "quarter": "q",
    "y": "y", "a": "y", "ys": "y", "ye": "y", "year": "y", "years": "y",
}  # fmt: skip


def format_step(step_ns: int) -> str:
    """A fixed step in nanoseconds as "15m", "1h", "7d", ..."""
    for unit, size in _UNITS_NS:
        if step_ns % size == 0:
            return f"{step_ns // size}{unit}"
    raise AssertionError("unreachable: every step is a whole number of ns")


_FREQ_HELP = "use e.g. '1h', '15m', '10min', '1d', 'B', '7d', '1mo', or a session '5min@07:00-21:00'"
_SESSION = re.compile(r"\s*([^@]+?)\s*@\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
_DAY_NS = 86_400 * 10**9
_MINUTE_NS = 60 * 10**9


def parse_freq(freq: str) -> str:
    """Normalise a user frequency ("H", "1h", "15min", "15T", "D", "B", "W", "M", "1mo") to the canonical form.

    Upper-case "M" is a month (pandas), lower-case "m" a minute (polars); "B" a business day (Monday to Friday).
    A session "5min@07:00-21:00" is steps of 5 minutes from 07:00 to 21:00 inclusive on business days."""
    m = _SESSION.fullmatch(freq)
    if m:
        return _parse_session(freq, m)
    m = re.fullmatch(r"\s*(\d*)\s*([A-Za-z]+)\s*", freq)
    if not m:
        raise DataError(f"frequency '{freq}' not understood; {_FREQ_HELP}")
    n = int(m.group(1) or 1)
    unit = m.group(2)
    key = "mo" if unit in ("M", "MS", "ME") else unit.lower()
    key = _ALIASES.get(key)
    if key is None or n <= 0:
        raise DataError(f"frequency '{freq}' not understood; {_FREQ_HELP}")
    if key == "w":
        return f"{7 * n}d"
    if key == "q":
        return f"{3 * n}mo"
    if key == "y":
        return f"{12 * n}mo"
    return f"{n}{key}"


def _parse_session(freq: str, m: re.Match) -> str:
    try:
        size = step_ns(parse_freq(m.group(1)))
    except DataError:
        size = None  # an unknown unit: the message below says what a session's step must be
    if size is None or size >= _DAY_NS:
        raise DataError(
            f"session '{freq}': the step '{m.group(1)}' must be a fixed step under a day (e.g. '5min', '1h')"
        )
    h_open, m_open, h_close, m_close = (int(g) for g in m.groups()[1:])
    if h_open > 23 or h_close > 23 or m_open > 59 or m_close > 59:
        raise DataError(f"session '{freq}': opening and closing times are 'HH:MM' between 00:00 and 23:59")
    open_ns, close_ns = (h_open * 60 + m_open) * _MINUTE_NS, (h_close * 60 + m_close) * _MINUTE_NS
    if open_ns >= close_ns:
        raise DataError(
            f"session '{freq}': the opening time must come before the closing time on the same day "
            "(a session across midnight is not supported)"
        )
    if (close_ns - open_ns) % size:
        raise DataError(
            f"session '{freq}': {m.group(4)}:{m.group(5)} is not a whole number of {format_step(size)} steps after "
            f"{m.group(2)}:{m.group(3)}; make the closing time the last step's timestamp"
        )
    return _session_name(size, open_ns, close_ns)


def _session_name(size: int, open_ns: int, close_ns: int) -> str:
    def clock(ns: int) -> str:
        return f"{ns // (60 * _MINUTE_NS):02d}:{ns // _MINUTE_NS % 60:02d}"

    return f"{format_step(size)}@{clock(open_ns)}-{clock(close_ns)}"


@functools.cache  # these four read a frequency string on every stream step: each string is parsed once
def session(freq: str) -> tuple[int, int, int] | None:
    """A canonical session frequency ("5m@07:00-21:00") as (step ns, opening time of day ns, slots a day:
    169 here), or None for any other frequency."""
    m = re.fullmatch(r"(\d+(?:ns|us|ms|h|m|s))@(\d\d):(\d\d)-(\d\d):(\d\d)", freq)
    if not m:
        return None
    size = step_ns(m.group(1))
    h_open, m_open, h_close, m_close = (int(g) for g in m.groups()[1:])
    open_ns = (h_open * 60 + m_open) * _MINUTE_NS
    return size, open_ns, ((h_close * 60 + m_close) * _MINUTE_NS - open_ns) // size + 1


# a reading within this share of a step from its grid point is that step's reading (a logger's jitter)
JITTER_SHARE = 0.1
_COMMON_STEPS = tuple(
    n * unit
    for unit, counts in ((10**9, (1, 2, 5, 10, 15, 20, 30)), (60 * 10**9, (1, 2, 5, 10, 15, 20, 30)),
                         (3600 * 10**9, (1, 2, 3, 4, 6, 8, 12)), (_DAY_NS, (1, 7)))
    for n in counts
)  # fmt: skip


def snap_to_grid(ts: np.ndarray, step: int) -> tuple[np.ndarray, int] | None:
    """Jittered timestamps (n,) datetime64[ns] on a grid of `step` ns: each moved to its nearest grid point,
    and the largest move; None where some reading is more than JITTER_SHARE of a step off, or two land on one
    point (readings between steps, not jitter). The grid's phase is the readings' median one, rounded to a
    whole multiple of the step (round hours, for an hourly logger) where that is within the tolerance."""
    t = np.asarray(ts, "datetime64[ns]").astype(np.int64)
    tolerance = int(JITTER_SHARE * step)
    phase = (t - t[0] + step // 2) % step - step // 2  # each reading's offset from the first one's phase
    anchor = int(t[0] + np.median(phase))
    rounded = round(anchor / step) * step
    if abs(rounded - anchor) <= tolerance:
        anchor = rounded
    snapped = nearest_steps(t, anchor, step)
    if np.abs(t - snapped).max() > tolerance or (np.diff(snapped) <= 0).any():
        return None
    return snapped.astype("datetime64[ns]"), int(np.abs(t - snapped).max())


def jitter_snapped(ts: np.ndarray, step: int, search: bool) -> tuple[np.ndarray, int, int] | None:
    """Readings (n,) of one series on the grid of `step` ns up to a logger's jitter: (them at their grid points,
    the largest move, the step they keep: with `search`, the one `jitter_step` finds from `step`); themselves,
    0 and `step` where they are on it already; None where they are off it by more than jitter."""
    t = np.asarray(ts, "datetime64[ns]")
    if not ((t.astype(np.int64) - t[0].astype(np.int64)) % step).any():
        return t, 0, step
    step = jitter_step(t, step) if search else step
    fitted = snap_to_grid(t, step) if step is not None else None
    return None if fitted is None else (*fitted, step)


def snap_near(times: np.ndarray, anchor, step: int) -> np.ndarray:
    """New readings (datetime64[ns]) within JITTER_SHARE of a step of the grid of `step` ns through `anchor`
    moved to their grid points; the others as they are (a stream of a table read with jitter)."""
    near = nearest_steps(times, anchor, step).astype("datetime64[ns]")
    return np.where(np.abs((times - near).astype(np.int64)) <= JITTER_SHARE * step, near, times)


def jitter_note(moved: int, freq: str, largest_ns: int) -> str:
    """What a report says of readings snapped to their grid."""
    off = f"at most {largest_ns / 1e9:.3g} s off"
    return f"{moved} timestamps moved to their nearest {freq} step (a logger's jitter: {off})"


def nearest_steps(t: np.ndarray, anchor, step: int) -> np.ndarray:
    """Each of t (ns, int64 or datetime64) at the nearest point of the grid of `step` ns through `anchor`."""
    t, anchor = (np.asarray(v) for v in (t, anchor))
    t, anchor = (v.astype("datetime64[ns]").astype(np.int64) if v.dtype.kind == "M" else v for v in (t, anchor))
    return anchor + np.round((t - anchor) / step).astype(np.int64) * step


def jitter_step(ts: np.ndarray, step: int) -> int | None:
    """The step of readings that keep to a grid up to jitter: of `step` (the most common gap, which jitter
    can make a second off) and the common step nearest the gaps' median, the one the readings keep to most
    closely; None if neither holds them within JITTER_SHARE."""
    gaps = np.diff(np.asarray(ts, "datetime64[ns]").astype(np.int64))
    if len(gaps) == 0:
        return None
    median = float(np.median(gaps))
    nearest = min(_COMMON_STEPS, key=lambda s: abs(s - median))
    fits = {s: snapped[1] for s in (nearest, step) if (snapped := snap_to_grid(ts, s)) is not None}
    return min(fits, key=fits.get) if fits else None


@functools.cache
def step_ns(freq: str) -> int | None:
    """The fixed step of a canonical frequency in ns, or None for calendar steps (months, business days,
    sessions)."""
    if session(freq) is not None:
        return None
    m = re.fullmatch(r"(\d+)(ns|us|ms|mo|b|d|h|m|s)", freq)
    if not m:
        raise DataError(f"frequency '{freq}' not understood")
    if m.group(2) in ("mo", "b"):
        return None
    return int(m.group(1)) * dict(_UNITS_NS)[m.group(2)]


def weekdays_only(ts: np.ndarray) -> bool:
    """True when timestamps (datetime64) span at least two weeks and none falls on a Saturday or Sunday."""
    ts = ts.astype("datetime64[ns]")
    if len(ts) == 0 or ts.max() - ts.min() < np.timedelta64(14, "D"):
        return False
    return bool(np.is_busday(ts.astype("datetime64[D]")).all())


def infer_freq(ts: np.ndarray) -> str | None:
    """The most common step of sorted, distinct timestamps (datetime64[ns]); months when the steps are
    28-31 days apart on the same day of the month; business days ("1b") for daily steps that never fall on
    a weekend over at least two weeks (a stock's closes: a market holiday is then a missing business day,
    not a gap); a session ("5m@07:00-21:00", see `_infer_session`) for steps under a day that keep to
    weekday opening hours. None with fewer than 2 timestamps."""
    if len(ts) < 2:
        return None
    diffs = np.diff(ts.astype("datetime64[ns]").astype(np.int64))
    steps, counts = np.unique(diffs, return_counts=True)
    mode = int(steps[np.argmax(counts)])
    day = _DAY_NS
    if mode == day and weekdays_only(ts):
        return "1b"
    if mode < day:
        return _infer_session(ts, mode) or format_step(mode)
    if 28 * day <= mode <= 31 * day or 89 * day <= mode <= 92 * day or 365 * day <= mode <= 366 * day:
        months = ts.astype("datetime64[M]").astype(np.int64)
        mdiff = np.diff(months)
        mvals, mcounts = np.unique(mdiff, return_counts=True)
        n = int(mvals[np.argmax(mcounts)])
        if n > 0:
            return f"{n}mo"
    return format_step(mode)


# a session's opening and closing times are those most days are seen at: a few days that open late or close
# early (an outage) keep it a session; a continuous series with random gaps has no such days
SESSION_FULL_DAYS = 0.5


def _infer_session(ts: np.ndarray, step: int) -> str | None:
    """The session of step `step` (ns, under a day) that sorted timestamps keep to, or None: weekdays only
    over at least two weeks, every time of day on the step's grid within one window [open, close] shorter
    than a day minus a step, and at least SESSION_FULL_DAYS of the days seen from open to close."""
    ts = ts.astype("datetime64[ns]")
    if not weekdays_only(ts):
        return None
    day = ts.astype("datetime64[D]")
    tod = (ts - day.astype("datetime64[ns]")).astype(np.int64)
    open_ns, close_ns = int(tod.min()), int(tod.max())
    if close_ns - open_ns >= _DAY_NS - step or np.any((tod - open_ns) % step):
        return None
    if open_ns % _MINUTE_NS or close_ns % _MINUTE_NS:  # a session is named in whole minutes
        return None
    first = np.flatnonzero(np.r_[True, day[1:] != day[:-1]])
    last = np.r_[first[1:] - 1, len(ts) - 1]
    full = (tod[first] == open_ns) & (tod[last] == close_ns)
    if full.mean() < SESSION_FULL_DAYS:
        return None
    return _session_name(step, open_ns, close_ns)


@functools.cache
def calendar_months(freq: str) -> int | None:
    m = re.fullmatch(r"(\d+)mo", freq)
    return int(m.group(1)) if m else None


@functools.cache
def business_days(freq: str) -> int | None:
    m = re.fullmatch(r"(\d+)b", freq)
    return int(m.group(1)) if m else None


# ----------------------------------------------------------------------------------------------------------------
# grid arithmetic: one step of any canonical frequency, forwards (advance) and backwards (grid_position)
#
# Business days are Monday to Friday: future holidays are not known, so a forecast is dated on the next
# business days and a holiday in a stream is a missing step (masked), not a gap that breaks the series.
# A session ("5m@07:00-21:00") is the slots open, open + step, ..., close of each business day, numbered
# across days: the slot after a day's close is the next business day's opening, and a time outside the
# session or on a weekend is off the grid. A holiday is a missing session (its slots masked) and a
# forecast is dated on the next business days' sessions, as for business days.
# Months keep the day of the month (the last day stays the last day: 31 Jan -> 28/29 Feb -> 31 Mar).


def _month_parts(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ts -> its month, its day's offset in the month (days), its time of day (ns)."""
    month = ts.astype("datetime64[M]")
    day = ts.astype("datetime64[D]")
    return month, (day - month.astype("datetime64[D]")).astype(np.int64), (ts - day).astype(np.int64)


def advance(ts: np.datetime64 | np.ndarray, freq: str, k: int | np.ndarray = 1) -> np.ndarray:
    """The k-th timestamp after `ts` on the grid of `freq` (canonical, see parse_freq): datetime64[ns],
    broadcast over ts and k. advance(friday, "1b", 1) is the Monday after; on a session, the slot after
    the close is the next business day's opening."""
    ts = np.asarray(ts, dtype="datetime64[ns]")
    k = np.asarray(k, dtype=np.int64)
    step = step_ns(freq)
    if step is not None:
        return ts + (k * step).astype("timedelta64[ns]")
    hours = session(freq)
    if hours is not None:
        size, open_ns, slots = hours
        day = ts.astype("datetime64[D]")
        slot = ((ts - day).astype(np.int64) - open_ns) // size + k
        day = np.busday_offset(day, slot // slots, roll="forward")
        return day.astype("datetime64[ns]") + (open_ns + slot % slots * size).astype("timedelta64[ns]")
    n_b = business_days(freq)
    if n_b is not None:
        day = ts.astype("datetime64[D]")
        tod = ts - day.astype("datetime64[ns]")
        return np.busday_offset(day, k * n_b, roll="forward").astype("datetime64[ns]") + tod
    months = calendar_months(freq) or 1
    month, offset, tod = _month_parts(ts)
    last = (month + 1).astype("datetime64[D]") - ts.astype("datetime64[D]") == np.timedelta64(1, "D")
    target = month + k * months
    length = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    offset = np.where(last, length - 1, np.minimum(offset, length - 1))
    day = target.astype("datetime64[D]") + offset.astype("timedelta64[D]")
    return day.astype("datetime64[ns]") + tod.astype("timedelta64[ns]")


def grid_position(ts: np.ndarray, origin: np.datetime64 | np.ndarray, freq: str) -> np.ndarray:
    """Steps of `freq` from `origin` to each ts: (n,) int64, -1 where ts is not on the grid that starts at
    origin (a step off it, a weekend on business days, outside a session's hours) or lies before it. Inverse
    of `advance`."""
    ts = np.asarray(ts, dtype="datetime64[ns]")
    origin = np.asarray(origin, dtype="datetime64[ns]")
    step = step_ns(freq)
    if step is not None:
        delta = (ts - origin).astype(np.int64)
        pos = delta // step
        ok = delta % step == 0
    else:
        n_b, hours = business_days(freq), session(freq)
        if n_b is not None:
            steps = np.busday_count(origin.astype("datetime64[D]"), ts.astype("datetime64[D]"))
            pos = steps // n_b
        elif hours is not None:
            size, open_ns, slots = hours
            days = np.busday_count(origin.astype("datetime64[D]"), ts.astype("datetime64[D]"))
            slot = ((ts - ts.astype("datetime64[D]")).astype(np.int64) - open_ns) // size
            origin_slot = ((origin - origin.astype("datetime64[D]")).astype(np.int64) - open_ns) // size
            pos = days * slots + slot - origin_slot
        else:
            months = calendar_months(freq) or 1
            steps = (ts.astype("datetime64[M]") - origin.astype("datetime64[M]")).astype(np.int64)
            pos = steps // months
        ok = advance(origin, freq, pos) == ts
    return np.where(ok & (pos >= 0), pos, -1).astype(np.int64)
