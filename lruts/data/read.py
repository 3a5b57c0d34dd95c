"""Read a raw table (CSV, TSV, Parquet, or an in-memory frame) into polars, without trusting it.

CSV files are sniffed first from their first 256 kB: byte-order mark, header encoding (UTF-8, else
latin-1 as in weather.csv), delimiter (`,` `;` tab `|`), decimal commas, a missing header row, and the
type of each column. Numeric columns are then read straight to float32 (one pass, no text copies). A
file that breaks that fast path (junk text in a numeric column, ragged lines) is re-read as text and
each cell converted on its own, so every unreadable cell is counted and reported instead of failing.
The raw file is only ever opened for reading.
"""

from __future__ import annotations

import bz2
import csv
import dataclasses
import datetime
import functools
import gzip
import lzma
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl

from lruts.data.timestamps import dated_times, format_step
from lruts.errors import DataError
from lruts.io import COMPRESSED_SUFFIXES

NULL_TOKENS = ["", "NA", "N/A", "n/a", "NaN", "nan", "NULL", "null", "None", "none", "#N/A", "-", "?"]
_SNIFF_BYTES = 256 * 1024
_MAX_LABEL_LINES = 5  # lines of units or labels under a header, at most (a TOA5 file has two)
_PREAMBLE_SAMPLE, _MAX_PREAMBLE = 220, 20  # lines read to find a header below a preamble; its longest preamble
_DELIMITERS = (",", ";", "\t", "|")
_TIME_NAMES = ("date", "datetime", "timestamp", "time", "ds", "date_time", "period", "t", "ts", "epoch", "")
_FLOAT32_MAX = 3.4028234663852886e38
BLOCK_BYTES = 16 << 20
# a column whose non-empty values are mostly text is a text column (dropped unless it is the time/id column)
NUMERIC_SHARE = 0.5


def cell_notes(written: dict[str, int], junk: dict[str, int], examples: dict[str, list[str]]) -> list[str]:
    """What a report says of cells read as numbers written for people, and of cells that hold no number
    (one line each kind; per column for the second, with some of them)."""
    lines = []
    if written:
        lines.append(
            f"read {sum(written.values())} numbers written with thousands separators, currency or percent signs, "
            f"magnitudes, or as true / false, in "
            f"{list(written)} (1,234.5 as 1234.5, $12 as 12, 10% as 10, 12.3M as 12300000, true as 1)"
        )
    for c, n in junk.items():
        lines.append(
            f"{n} cells of '{c}' hold text that is no number, read as missing: "
            f"{', '.join(map(repr, examples.get(c, [])))}"
        )
    return lines


@dataclass
class RawTable:
    """A raw table as read: `frame` has the time column as text (or its native type), value columns as
    Float32 (unreadable cells null), and text columns as String. `notes` are the repairs made while reading."""

    frame: pl.DataFrame
    time_col: str
    value_cols: list[str]
    text_cols: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    junk_cells: dict[str, int] = field(default_factory=dict)
    junk_examples: dict[str, list[str]] = field(default_factory=dict)  # a few of each column's junk cells
    written_cells: dict[str, int] = field(default_factory=dict)  # numbers written for people, read (_written)
    empty_cells: dict[str, int] = field(default_factory=dict)  # read as NaN by the block reader
    out_of_range: dict[str, int] = field(default_factory=dict)
    decimal_comma: list[str] = field(default_factory=list)  # value columns read with a decimal comma
    encoding: str = "utf-8"
    delimiter: str | None = None


def _is_number(s: str, decimal_comma: bool = False) -> bool:
    try:
        float(s.strip().replace(",", ".") if decimal_comma else s.strip())
    except ValueError:
        return _written(decimal_comma).fullmatch(s.strip()) is not None
    return True


# a number written for people, by its decimal mark: thousands separators (1,234.5 · 1 234.5 · 1'234 | 1.234,5),
# a currency sign before or after it ($1,234.50 · 12 €), a percent sign after it (10.1%: read as 10.1), a
# magnitude after it (a market data site's volumes: 12.34M, 850.5K, 1.2B; not a lower-case m or b: metres)
_SEPARATORS = {False: ", '\u00a0", True: ". '\u00a0"}
_SIGNS = "$€£¥"
_MAGNITUDES = {"K": 1e3, "k": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
_MAGNITUDE = f"[{''.join(_MAGNITUDES)}]"


@functools.cache
def _written(decimal_comma: bool) -> re.Pattern:
    point, sep = ("," if decimal_comma else "\\."), _SEPARATORS[decimal_comma]
    digits = f"([1-9]\\d{{0,2}}([{sep}]\\d{{3}})+|\\d+)({point}\\d*)?"  # no group after a leading 0: 0,125
    return re.compile(f"[-+]?[{_SIGNS}]?\\s?[-+]?{digits}\\s?({_MAGNITUDE}|[%{_SIGNS}])?")


# weather.csv as distributed by TSLib: the latin-1 '²' and 'µ' of the Jena units became U+FFFD
_UNIT_FIXES = (("(\ufffdmol", "(µmol"), ("m\ufffd/", "m²/"), ("m\ufffd)", "m²)"))


def _fix_replacement_chars(name: str) -> str:
    for bad, good in _UNIT_FIXES:
        name = name.replace(bad, good)
    return name


@dataclass
class _Sniff:
    names: list[str]
    has_header: bool
    delimiter: str
    decimal_comma: bool
    encoding: str
    skip_bytes_bom: bool
    sample_rows: list[list[str]]
    notes: list[str]
    skip: int  # the file's lines before the first row of data (a preamble, the header, blank lines)


def _sniff(path: Path) -> _Sniff:
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    if not head.strip():
        raise DataError(f"{path.name} is empty: a CSV with a header row, a time column and value columns is expected")
    notes: list[str] = []
    bom = head.startswith(b"\xef\xbb\xbf")
    if bom:
        head = head[3:]
        notes.append("removed a UTF-8 byte-order mark")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head[:4096]:
        raise DataError(f"{path.name} is not a UTF-8/latin-1 text CSV (UTF-16 or binary content); save it as UTF-8 CSV")
    lines = head.split(b"\n")
    if len(head) == _SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line of the chunk may be cut
    at = [i for i, ln in enumerate(lines) if ln.strip()]  # each non-blank line's line number in the file
    lines = [lines[i].rstrip(b"\r") for i in at]
    preamble = _preamble([ln.decode("utf-8", errors="replace") for ln in lines[:_PREAMBLE_SAMPLE]])
    if preamble:
        shown = lines[0].decode("utf-8", errors="replace")[:60]
        notes.append(f"skipped {preamble} line(s) before the header (a logger's preamble: {shown!r}…)")
        lines = lines[preamble:]
    try:
        header = lines[0].decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        header = lines[0].decode("latin-1")
        encoding = "latin-1"
        notes.append("header is not UTF-8: decoded as latin-1")
    body = [ln.decode("utf-8", errors="replace") for ln in lines[1:200]]

    def counts(d: str) -> list[int]:
        return [len(r) for r in csv.reader([header, *body], delimiter=d)]

    best, best_score = ",", (-1, -1)
    for d in _DELIMITERS:
        c = counts(d)
        consistent = sum(1 for n in c if n == c[0])
        score = (consistent if c[0] >= 2 else 0, c[0])
        if score > best_score:
            best, best_score = d, score
    delimiter = best
    names = next(csv.reader([header], delimiter=delimiter))
    if len(names) < 2:
        raise DataError(
            f"{path.name}: found a single column (no ',', ';', tab or '|' delimiter in the header "
            f"{header[:80]!r}); a time column and at least one value column are needed"
        )
    if delimiter != ",":
        notes.append(f"delimiter is {delimiter!r}")
    rows = list(csv.reader(body, delimiter=delimiter))
    decimal_comma = delimiter != "," and any(re.fullmatch(r"\s*-?\d+,\d+\s*", v) for r in rows[:50] for v in r)
    if decimal_comma:
        notes.append("decimal commas read as decimal points")
    # a header of digits only ("date,0,1,2") is still a header; a first row that starts with a date is data
    first_is_data = any(ch.isdigit() for ch in names[0])
    has_header = not (first_is_data and all(_is_number(v) for v in names[1:] if v.strip()))
    if has_header and rows and all(len(r) == len(names) + 1 and not r[-1].strip() for r in rows):
        names.append("")  # every line ends with a delimiter (an empty last field): a column, dropped as empty
    labels = 0  # lines under the header that hold units or labels ("Deg C", "Avg"), not readings
    if has_header:
        while labels < min(_MAX_LABEL_LINES, len(rows) - 1) and not any(ch.isdigit() for ch in "".join(rows[labels])):
            labels += 1
    if labels:
        notes.append(f"skipped {labels} line(s) under the header that hold units or labels, not readings: {rows[0]}")
        rows = rows[labels:]
    if not has_header:
        rows = [names, *rows]
        names = [f"column_{i}" for i in range(len(names))]
        notes.append("no header row: columns named column_0, column_1, ...")
    clean = [n.strip() for n in names]
    if any("\ufffd" in n for n in clean):
        clean = [_fix_replacement_chars(n) for n in clean]
        notes.append(
            "header held U+FFFD replacement characters (latin-1 bytes lost by an earlier conversion): "
            "units restored where known (m² and µmol)"
        )
    fixed = []
    for i, n in enumerate(clean):
        n = n or f"column_{i}"
        while n in fixed:
            n = f"{n}_{i}"
        fixed.append(n)
    if fixed != clean and has_header:
        notes.append("blank or duplicated column names made unique")
    skip = at[preamble + labels] + 1 if has_header else at[0]  # the file's lines before the first row of data
    return _Sniff(fixed, has_header, delimiter, decimal_comma, encoding, bom, rows, notes, skip)


def _preamble(lines: list[str]) -> int:
    """How many lines precede a table's header: a logger's metadata (Campbell Scientific's TOA5 station line,
    a title) is another width than the table. The header is the first line as wide as most of the sampled
    lines, for the delimiter that makes the most lines that wide, and it must read as a header (a data line
    starts with a date and holds numbers): else 0."""
    best, best_score = 0, (0, 0)
    for d in _DELIMITERS:
        widths = [len(r) for r in csv.reader(lines, delimiter=d)]
        mode = max(set(widths), key=widths.count)
        if mode >= 2 and (widths.count(mode), mode) > best_score:
            best, best_score = widths.index(mode), (widths.count(mode), mode)
            delimiter = d
    if not 0 < best <= _MAX_PREAMBLE:
        return 0
    names = next(csv.reader([lines[best]], delimiter=delimiter))
    looks_like_data = any(ch.isdigit() for ch in names[0]) and all(_is_number(v) for v in names[1:] if v.strip())
    return 0 if looks_like_data else best


def pick_time_col(names: list[str], time_col: str | None, sample: dict[str, list[str]]) -> str:
    """The time column: `time_col` if given, else a column named like a date, else the first column
    when its values look like timestamps. DataError otherwise."""
    if time_col is not None:
        if time_col not in names:
            raise DataError(f"time column '{time_col}' not found; columns are: {names}")
        return time_col
    lowered = {n.lower(): n for n in names}
    for cand in _TIME_NAMES:
        if cand in lowered:
            return lowered[cand]
    first = names[0]
    values = [v for v in sample.get(first, []) if v.strip()]
    if values:
        from lruts.data.timestamps import parse_timestamps

        try:
            parse_timestamps(pl.Series(first, values))
            return first
        except DataError:
            pass
    shown = [n[:40] for n in names[:12]] + ([f"… {len(names) - 12} more"] if len(names) > 12 else [])
    raise DataError(f"no time column found among {shown}: name it 'date' or pass time_col=")


def _column_kinds(sn: _Sniff, time_col: str, id_col: str | None) -> tuple[list[str], list[str], list[str]]:
    """(numeric, text, true/false) columns by the sniffed rows; true/false ones read as 1/0, as a boolean
    column of a DataFrame reads."""
    numeric, text, flags = [], [], []
    for j, name in enumerate(sn.names):
        if name in (time_col, id_col):
            continue
        vals = [r[j].strip() for r in sn.sample_rows if j < len(r) and r[j].strip() not in NULL_TOKENS]
        ok = sum(_is_number(v, sn.decimal_comma) or _is_number(v, True) for v in vals)  # 30,5: to_float32 reads
        if vals and all(v.lower() in ("true", "false") for v in vals):
            flags.append(name)
        else:
            (numeric if not vals or ok >= NUMERIC_SHARE * len(vals) else text).append(name)
    return numeric, text, flags


# numbers that loggers and exports write for "no reading" (-9999: NOAA, FLUXNET, the weather benchmark's wind
# speeds; -99 and -999: survey and statistics packages; 65535, 32767, -32768: a 16-bit sensor's error words),
# read as missing only where they are plainly no reading (missing_codes); no positive code below 9999: a
# corrected reading of 999 among 10-40 is a reading
MISSING_CODES = (-99.0, -999.0, -9999.0, 9999.0, -99999.0, 99999.0, -999999.0, 999999.0, 65535.0, 32767.0, -32768.0)


@dataclass
class CodeCells:
    """A column's missing-data codes: cells per code, and the range of its other values."""

    cells: dict[float, int]
    low: float
    high: float


def missing_codes(frame: pl.DataFrame, cols: list[str]) -> dict[str, CodeCells]:
    """Per column of `cols` (Float32, nulls missing), the MISSING_CODES it holds that are plainly no reading: beyond
    the range of the column's other values by more than that range, or negative where every other value is ≥ 0
    (a wind speed's −9999). A code inside the values' range, or near it, is a value like the others."""
    codes = list(MISSING_CODES)
    if not cols or frame.is_empty():
        return {}
    holding = [c for c, has in frame.select(pl.col(cols).is_in(codes).any()).row(0, named=True).items() if has]
    found = {}
    for c in holding:
        s = frame[c].drop_nulls()
        is_code = s.is_in(codes)
        others = s.filter(~is_code)
        if others.is_empty():
            continue
        low, high = float(others.min()), float(others.max())
        span = high - low
        counts = s.filter(is_code).value_counts()
        cells = {float(v): int(n) for v, n in counts.iter_rows() if v < low - span or v > high + span or (v < 0 <= low)}
        if cells:
            found[c] = CodeCells(cells, low, high)
    return found


def without_codes(frame: pl.DataFrame, found: dict[str, CodeCells]) -> pl.DataFrame:
    """`frame` with the cells of `found` (missing_codes) missing."""
    return frame.with_columns(
        pl.when(pl.col(c).is_in(list(f.cells))).then(None).otherwise(pl.col(c)).alias(c) for c, f in found.items()
    )


def _cells(n: int) -> str:
    return f"{n:,} cell{'' if n == 1 else 's'}"


def code_note(found: dict[str, CodeCells], kept: bool = False) -> list[str]:
    """What a report says of missing-data codes (one line; none where there were none)."""
    if not found:
        return []
    each = ", ".join(
        f"{' and '.join(f'{v:g}' for v in f.cells)} in '{c}' ({_cells(sum(f.cells.values()))}; its other values "
        f"{f.low:.6g} to {f.high:.6g})"
        for c, f in found.items()
    )
    if kept:
        return [f"missing-data codes kept as published (exact_rows): {each}"]
    return [f"read missing-data codes as missing: {each}"]


def float32_losses(frame: pl.DataFrame, cols: list[str], by: str | None = None) -> list[str]:
    """What float32 storage loses (lruts holds values as float32, 7 significant digits): per column of `cols`
    (rows in time order; per series of column `by`), where a series' typical change (the median of its
    non-zero steps) spans at most 2 float32 steps at its largest magnitude, its changes are rounded away (a
    cumulative meter's 123,456,789 Wh rounds to multiples of 8 while it moves by 10; whole numbers below 2^24
    moving by 1 are exact): one line each, with how to keep them, empty where nothing is lost."""
    if not cols or frame.is_empty():
        return []
    exprs = []
    for c in cols:
        steps = pl.col(c).drop_nulls().diff().abs()
        exprs += [pl.col(c).abs().max().alias(f"{c}\0top"), steps.filter(steps > 0).median().alias(f"{c}\0change")]
    stats = frame.group_by(by, maintain_order=True).agg(exprs) if by else frame.select(exprs)
    lines = []
    for c in cols:
        for row in stats.select(*([by] if by else []), f"{c}\0top", f"{c}\0change").iter_rows():
            top, change = row[-2:]
            rounding = float(np.spacing(np.float32(top))) if top is not None else 0.0
            if change is None or change > 2 * rounding:
                continue
            who = f"'{c}' of series '{row[0]}'" if by else f"'{c}'"
            lines.append(
                f"{who} reaches {top:.6g}, where float32 (how lruts holds values) rounds to steps of "
                f"{rounding:.3g}, and moves by {change:.3g} typically: its changes would be "
                f"lost. Subtract its first value (a meter's reading since the start), or forecast its differences"
            )
            break
    return lines


@dataclass
class RawCells:
    """What to_float32 met, per column: junk (text that is not a number, now null), huge (beyond the float32
    range, now null), written (numbers written for people, read: _written), and the columns that are mostly
    text (left as they are, for the caller to drop)."""

    junk: dict[str, int] = field(default_factory=dict)
    junk_examples: dict[str, list[str]] = field(default_factory=dict)  # up to three distinct junk values
    huge: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    text: list[str] = field(default_factory=list)
    decimal_comma: list[str] = field(default_factory=list)  # text columns read with a decimal comma (decimal_marks)
    notes: list[str] = field(default_factory=list)  # what decimal_marks decided, where the text said it


def to_float32(frame: pl.DataFrame, cols: list[str], decimal_comma: bool = False) -> tuple[pl.DataFrame, RawCells]:
    """Convert `cols` of any type to Float32, text as `text_numbers` reads it: with a decimal comma where
    decimal_comma (the file's mark), else by the mark its text shows (`decimal_marks`). Returns the frame and
    what the conversion met (RawCells)."""
    cells = RawCells()
    texts = [c for c in cols if not (frame[c].dtype.is_numeric() or frame[c].dtype == pl.Boolean)]
    comma = set(texts) if decimal_comma else decimal_marks(frame, texts, cells.notes)
    exprs = []
    for c in cols:
        s = frame[c]
        if c not in texts:
            f64 = s.cast(pl.Float64)
            if s.dtype == pl.Boolean and s.len() > s.null_count():  # true / false as 1 / 0, said as a file's is
                cells.written[c] = s.len() - s.null_count()
        else:
            t, f64, written = text_numbers(s, c in comma)
            junk = t.is_not_null() & f64.is_null()
            bad = int(junk.sum())
            if bad > (1 - NUMERIC_SHARE) * max(t.len() - t.null_count(), 1):
                cells.text.append(c)
                continue
            if c in comma:
                cells.decimal_comma.append(c)
            if written:
                cells.written[c] = written
            if bad:
                cells.junk[c] = bad
                cells.junk_examples[c] = t.filter(junk).unique(maintain_order=True).head(3).to_list()
        over = int((f64.is_finite() & (f64.abs() > _FLOAT32_MAX)).sum())
        if over:
            cells.huge[c] = over
            f64 = f64.set(f64.is_finite() & (f64.abs() > _FLOAT32_MAX), None)
        exprs.append(f64.cast(pl.Float32).alias(c))
    return frame.with_columns(exprs), cells


def decimal_marks(frame: pl.DataFrame, cols: list[str], notes: list[str]) -> set[str]:
    """Which text columns of a table write the decimal mark as a comma. A number with a comma reads one way
    only when it is no number the other way: 30,53 and 1.234,5 only with a decimal comma, 1,234.5 and
    1,234,567 only with a thousands separator; 30,531 reads either way. A column that shows one mark has it;
    a column that shows neither takes the table's (one locale per table), and where the table shows none
    either its commas are read as thousands separators, said in `notes` with how to read them otherwise."""
    shows: dict[str, str] = {}
    either: dict[str, str] = {}
    for c in cols:
        t = frame[c].cast(pl.String).str.strip_chars()
        t = t.filter(t.str.contains(",", literal=True)).unique().head(10_000)
        if t.is_empty():
            continue
        point, comma = (text_numbers(t, mark)[1].is_not_null() for mark in (False, True))
        only_comma, only_point = int((comma & ~point).sum()), int((point & ~comma).sum())
        if only_comma and not only_point:
            shows[c] = "comma"
        elif only_point:
            shows[c] = "point"
        elif comma.any():
            either[c] = t.filter(comma)[0]
    table = set(shows.values())
    comma = {c for c, mark in shows.items() if mark == "comma"} | (set(either) if table == {"comma"} else set())
    if comma:
        notes.append(f"decimal commas read as decimal points in {sorted(comma)} (30,5 as 30.5)")
    if either and not table:
        shown = ", ".join(f"{c!r} ({v!r})" for c, v in either.items())
        notes.append(
            f"the commas of {shown} are read as thousands separators (30,531 as 30531): no number there shows "
            "which mark it is; if the comma is the decimal mark, give the column as numbers (pandas: "
            "df[col].str.replace(',', '.').astype(float)) or the file with ';' as the delimiter"
        )
    return comma


def text_numbers(column: pl.Series, decimal_comma: bool = False) -> tuple[pl.Series, pl.Series, int]:
    """A column of text as numbers: (the text, stripped, null where empty or a NULL_TOKEN; Float64, null where
    the text is missing or no number; how many numbers were written for people, `_written`, and read). Where
    the text is set and the number null, the cell held text that is no number."""
    t = column.cast(pl.String).str.strip_chars()
    t = t.set(t.is_in(NULL_TOKENS).fill_null(False), None)
    f64 = _parse_numbers(t, decimal_comma)
    written = t.is_not_null() & f64.is_null() & t.str.contains(f"^(?:{_written(decimal_comma).pattern})$")
    truth = t.str.to_lowercase().replace_strict({"true": 1.0, "false": 0.0}, default=None, return_dtype=pl.Float64)
    if not written.any() and truth.is_null().all():
        return t, f64, 0
    plain = t.str.replace_all(f"[{_SEPARATORS[decimal_comma]}{_SIGNS}%\\s]", "")
    magnitude = plain.str.extract(f"({_MAGNITUDE})$").replace_strict(_MAGNITUDES, default=1.0, return_dtype=pl.Float64)
    plain = plain.str.replace(f"{_MAGNITUDE}$", "")
    f64 = pl.select(pl.when(written).then(_parse_numbers(plain, decimal_comma) * magnitude).otherwise(f64)).to_series()
    f64 = f64.fill_null(truth)  # true / false, as a boolean column reads: 1 / 0
    return t, f64, int(written.sum()) + int(truth.is_not_null().sum())


def new_row_numbers(column, what: str, decimal_comma: bool = False):
    """A column of new rows for update() (pandas Series) as float64 numpy: missing cells NaN, numbers written
    for people read (`text_numbers`, with a decimal comma where the fitted table's column had one); a
    DataError naming the first cell that holds text but no number (it would otherwise stream in as a missing
    reading: a real reading lost without a word)."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return column.to_numpy(np.float64, na_value=np.nan)
    cells = [None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v) for v in column.tolist()]
    t, f64, _ = text_numbers(
        pl.Series(column.name if isinstance(column.name, str) else "v", cells, pl.String), decimal_comma
    )
    junk = (t.is_not_null() & f64.is_null()).arg_true()
    if len(junk):
        raise DataError(
            f"{what}: column '{column.name}' holds {t[junk[0]]!r} (row {junk[0]} of the new rows), not a number; "
            "send NaN or None for a missing reading"
        )
    return f64.to_numpy().astype(np.float64)


def _parse_numbers(t: pl.Series, decimal_comma: bool) -> pl.Series:
    """Text → Float64 (null where it is not a number), with a decimal comma where decimal_comma."""
    return (t.str.replace(",", ".", literal=True) if decimal_comma else t).cast(pl.Float64, strict=False)


def _read_in_blocks(
    path: Path, schema: dict, *, skip_lines: int, block: int | None = None, **options
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Parse the file in blocks of whole lines, copying each block's numbers into one numpy array per
    column (capacity estimated from the file size, grown if needed) that polars then wraps without a
    copy. polars' own reader holds the whole file text next to the parsed columns, and its allocator
    keeps the freed block buffers: ≈2× the float32 table at peak; this way the peak is the table plus a
    block. Empty cells come back as NaN; their count per column is returned with the frame."""
    block = block or BLOCK_BYTES
    options = {k: v for k, v in options.items() if k not in ("skip_rows", "raise_if_empty")}
    numeric = [c for c, t in schema.items() if t == pl.Float32]
    text = [c for c in schema if c not in numeric]
    size = path.stat().st_size
    cols: dict[str, np.ndarray] = {}
    parts: dict[str, list[pl.Series]] = {c: [] for c in text}
    empty = dict.fromkeys(numeric, 0)
    n = 0

    def take(chunk: bytes) -> None:
        nonlocal n, cols
        df = pl.read_csv(chunk, schema=schema, raise_if_empty=False, **options)
        m = df.height
        if not cols:
            cap = int(size / max(len(chunk), 1) * m * 1.05) + m + 1024
            cols = {c: np.empty(cap, dtype=np.float32) for c in numeric}
        cap = len(next(iter(cols.values()))) if cols else 0
        if n + m > cap:
            cols = {c: np.resize(a, max(2 * cap, n + m)) for c, a in cols.items()}
        for c in numeric:
            empty[c] += df[c].null_count()
            cols[c][n : n + m] = df[c].to_numpy()
        for c in text:
            parts[c].append(df[c])
        n += m

    with open(path, "rb") as f:
        for _ in range(skip_lines):
            f.readline()
        carry = b""
        while True:
            buf = f.read(block)
            if not buf:
                break
            buf = carry + buf
            cut = buf.rfind(b"\n") + 1
            carry, buf = buf[cut:], buf[:cut]
            if buf.strip():
                take(buf)
        if carry.strip():
            take(carry)
    if n == 0:
        return pl.DataFrame(schema=schema), {}
    series = {c: pl.Series(c, cols[c][:n]) for c in numeric}
    series |= {c: pl.concat(parts[c]) for c in text}
    return pl.DataFrame([series[c] for c in schema]), {c: k for c, k in empty.items() if k}


def read_csv(path: Path, *, time_col: str | None = None, id_col: str | None = None) -> RawTable:
    """Read a delimited text file; see the module docstring for what is detected and repaired."""
    sn = _sniff(path)
    sample = {n: [r[j] if j < len(r) else "" for r in sn.sample_rows] for j, n in enumerate(sn.names)}
    if id_col is not None and id_col not in sn.names:
        raise DataError(f"id column '{id_col}' not found; columns are: {sn.names}")
    tcol = pick_time_col(sn.names, time_col, sample)
    numeric, text, flags = _column_kinds(sn, tcol, id_col)
    common = dict(
        separator=sn.delimiter,
        has_header=False,
        skip_rows=sn.skip,
        encoding="utf8-lossy",
        null_values=NULL_TOKENS,
        decimal_comma=sn.decimal_comma,
        raise_if_empty=False,
    )
    schema = {n: (pl.Float32 if n in numeric else pl.String) for n in sn.names}
    notes = list(sn.notes)
    cells = RawCells()
    empty: dict[str, int] = {}
    try:
        frame, empty = _read_in_blocks(path, schema, skip_lines=sn.skip, **common)
        if flags:  # read as text: true / false as 1 / 0
            frame, cells = to_float32(frame, flags, sn.decimal_comma)
            text += cells.text
    except pl.exceptions.PolarsError:
        # junk text in a numeric column, ragged lines, ...: read everything as text and convert cell by cell
        frame = pl.read_csv(path, schema={n: pl.String for n in sn.names}, truncate_ragged_lines=True, **common)
        header = pl.all_horizontal(pl.col(n).str.strip_chars() == n.strip() for n in sn.names).fill_null(False)
        repeats = int(frame.select(header.sum()).item()) if sn.has_header else 0
        if repeats:  # files concatenated with their headers
            frame = frame.filter(~header)
            notes.append(f"dropped {repeats} line(s) repeating the header (files joined end to end)")
        frame, cells = to_float32(frame, numeric + flags, sn.decimal_comma)
        text += cells.text
        notes.append("re-read as text: some lines or cells did not parse (ragged lines are cut to the header's width)")
        notes += cells.notes
    if frame.height == 0:
        raise DataError(f"{path.name} has a header but no data rows")
    return RawTable(
        frame=frame,
        time_col=tcol,
        value_cols=[n for n in sn.names if n not in (tcol, id_col) and n not in text],
        text_cols=text,
        notes=notes,
        junk_cells=cells.junk,
        junk_examples=cells.junk_examples,
        written_cells=cells.written,
        empty_cells=empty,
        out_of_range=cells.huge,
        decimal_comma=[c for c in numeric + flags if c not in text] if sn.decimal_comma else cells.decimal_comma,
        encoding=sn.encoding,
        delimiter=sn.delimiter,
    )


def read_frame(frame: pl.DataFrame, *, time_col: str | None = None, id_col: str | None = None) -> RawTable:
    """Bring an in-memory or Parquet table to the same form as `read_csv`."""
    if frame.width == 0 or frame.height == 0:
        raise DataError("the table is empty: a time column and at least one value column with data rows are needed")
    if id_col is not None and id_col not in frame.columns:
        raise DataError(f"id column '{id_col}' not found; columns are: {frame.columns}")
    sample = {c: [str(v) for v in frame[c].head(200).to_list() if v is not None] for c in frame.columns}
    tcol = time_col
    if tcol is None:
        native = [c for c in frame.columns if isinstance(frame[c].dtype, pl.Datetime | pl.Date)]
        tcol = native[0] if native else pick_time_col(frame.columns, None, sample)
    elif tcol not in frame.columns:
        raise DataError(f"time column '{tcol}' not found; columns are: {frame.columns}")
    cols = [c for c in frame.columns if c not in (tcol, id_col)]
    frame, cells = to_float32(frame, cols)
    return RawTable(
        frame=frame,
        time_col=tcol,
        value_cols=[c for c in cols if c not in cells.text],
        text_cols=cells.text,
        notes=cells.notes,
        junk_cells=cells.junk,
        junk_examples=cells.junk_examples,
        written_cells=cells.written,
        out_of_range=cells.huge,
        decimal_comma=cells.decimal_comma,
    )


def from_user_frame(df: object) -> pl.DataFrame:
    """A polars or pandas DataFrame as polars (a pandas DatetimeIndex or PeriodIndex becomes a column, periods their
    first instant; a pandas Series is a one-column frame)."""
    if isinstance(df, pl.DataFrame):
        return df
    if isinstance(df, pl.LazyFrame):
        return df.collect()
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(df, pd.Series):
        df = df.to_frame(name=df.name if df.name is not None else "y")
    if pd is not None and isinstance(df, pd.DataFrame):
        # the index is a column where it holds times or has a name that no column has; row numbers (a filtered
        # or shuffled frame's) are not a series
        timelike = isinstance(df.index, pd.DatetimeIndex | pd.PeriodIndex)
        if isinstance(df.index, pd.MultiIndex):  # a long table indexed by (id, time): its levels are columns
            named = all(n is not None and n not in df.columns for n in df.index.names)
            df = df.reset_index(drop=not named)
        else:
            free = df.index.name not in df.columns  # set_index("date", drop=False) leaves the column too
            df = df.reset_index(drop=not (free and (timelike or df.index.name is not None)))
        repeated = sorted({str(c) for c in df.columns if list(df.columns).count(c) > 1})
        if repeated:
            raise DataError(f"columns {repeated} appear more than once; give each column its own name")
        periods = [c for c in df.columns if isinstance(df[c].dtype, pd.PeriodDtype)]
        if periods:
            df = df.assign(**{c: df[c].dt.to_timestamp() for c in periods})
        # numbers and text in one column (a spreadsheet's "n/a"), which pyarrow refuses: text, read cell by cell
        # like a file's
        mixed = [c for c in df.columns if pd.api.types.infer_dtype(df[c], skipna=True) in ("mixed", "mixed-integer")]
        if mixed:
            df = df.assign(**{c: df[c].astype(str).where(df[c].notna(), None) for c in mixed})
        df = df.rename(columns={c: str(c) for c in df.columns})
        # zone-aware columns cross as UTC and get their zone back in polars (pyarrow reads them through
        # Series.values, which pandas 3.1 warns about on every fit)
        zones = {c: _zone_name(df[c].dt.tz) for c in df.columns if isinstance(df[c].dtype, pd.DatetimeTZDtype)}
        df = df.assign(**{c: df[c].dt.tz_convert("UTC").dt.tz_localize(None) for c in zones})
        return pl.from_pandas(df).with_columns(
            pl.col(c).dt.replace_time_zone("UTC").dt.convert_time_zone(zone) for c, zone in zones.items()
        )
    hint = (
        ": an array has no timestamps; put it in a DataFrame beside its times, e.g. "
        "pandas.DataFrame({'date': times, 'y': values}), or beside step numbers: "
        "pandas.DataFrame({'step': range(len(values)), 'y': values})"
        if isinstance(df, np.ndarray | list | tuple)
        else ""
    )
    raise DataError(f"expected a dataset name, a file path or a polars/pandas DataFrame, got {type(df).__name__}{hint}")


def _zone_name(tz) -> str:
    """A pandas column's time zone as polars names it: its IANA key, or a fixed offset of whole hours as
    "+02:00" (polars knows no other fixed offsets: those read as UTC, the same instants)."""
    if isinstance(tz, datetime.timezone):
        hours, rest = divmod(int(tz.utcoffset(None).total_seconds()), 3600)
        return "UTC" if rest else f"{hours:+03d}:00"
    return getattr(tz, "key", None) or getattr(tz, "zone", None) or str(tz)


# compressed files by their first bytes: decompressed to a temporary file and read as what they hold
_COMPRESSED = ((b"\x1f\x8b", "gzip", gzip.open), (b"BZh", "bzip2", bz2.open), (b"\xfd7zXZ\x00", "xz", lzma.open))


def read_any(path: Path, *, time_col: str | None = None, id_col: str | None = None) -> RawTable:
    """Read a raw CSV/TSV/TXT or Parquet file, or one compressed (gzip, bzip2, xz, or a zip holding one file)."""
    if not path.is_file():
        raise DataError(f"{path} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise DataError(
            f"{path.name} is empty (0 bytes): a CSV with a header row, a time column and value columns is expected"
        )
    with open(path, "rb") as f:
        head = f.read(64)
    for magic, kind, opener in _COMPRESSED:
        if head.startswith(magic):
            return _read_unpacked(path, kind, lambda folder, o=opener: _decompress(path, o, folder), time_col, id_col)
    if path.suffix.lower() in (".xlsx", ".xlsm", ".xls", ".ods") or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise DataError(
            f"{path.name} is a spreadsheet, which is not read: save the sheet as CSV, or read it with pandas "
            "(pandas.read_excel) and pass the DataFrame"
        )
    if head.startswith(b"PK\x03\x04"):
        return _read_unpacked(path, "zip", lambda folder: _unzip_one(path, folder), time_col, id_col)
    if head.lstrip()[:1] in (b"[", b"{"):
        raise DataError(
            f"{path.name} looks like JSON, which is not read: give a CSV/TSV or Parquet file, or read it with "
            "pandas (pandas.read_json) and pass the DataFrame"
        )
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            frame = pl.read_parquet(path)
        except (pl.exceptions.PolarsError, OSError) as e:
            raise DataError(f"{path.name} is not a readable Parquet file ({str(e).splitlines()[0]})") from None
        return read_frame(frame, time_col=time_col, id_col=id_col)
    return read_csv(path, time_col=time_col, id_col=id_col)


def _read_unpacked(path: Path, kind: str, unpack, time_col: str | None, id_col: str | None) -> RawTable:
    """read_any of what a compressed file holds: `unpack(folder)` writes it into a temporary folder and returns
    its path (named as in the archive, or as `path` without its .gz/.bz2/.xz suffix)."""
    with tempfile.TemporaryDirectory(prefix="lruts-") as tmp:
        try:
            inner = unpack(Path(tmp))
        except (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError) as e:
            raise DataError(f"{path.name}: could not decompress it as {kind} ({e})") from None
        raw = read_any(inner, time_col=time_col, id_col=id_col)
    raw.notes.insert(0, f"decompressed ({kind})")
    return raw


def _decompress(path: Path, opener, folder: Path) -> Path:
    target = folder / (path.stem if path.suffix.lower() in COMPRESSED_SUFFIXES else path.name)
    _copy(opener(path, "rb"), target)
    return target


def _unzip_one(path: Path, folder: Path) -> Path:
    """Extract the one file a zip holds (its name keeps its suffix: .csv or .parquet) into `folder`."""
    with zipfile.ZipFile(path) as z:
        files = [m for m in z.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")]
        if len(files) != 1:
            names = [m.filename for m in files][:5]
            raise DataError(f"{path.name} holds {len(files)} files {names}: unzip it and give one of them")
        target = folder / Path(files[0].filename).name
        _copy(z.open(files[0]), target)
    return target


def _copy(source, target: Path) -> None:
    with source, open(target, "wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)


__all__ = [
    "DayJoin",
    "RawTable",
    "from_user_frame",
    "join_date_and_time",
    "new_row_numbers",
    "read_any",
    "read_csv",
    "read_frame",
    "text_numbers",
    "to_float32",
]


# ---------------------------------------------------------------------- a date beside its time of day
_TIME_OF_DAY = r"^\s*\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*$"
_PERIOD_NAME = re.compile(r"period|hour|interval|^hh$", re.IGNORECASE)
_PERIODS_A_DAY = (24, 48, 96, 144, 288, 1440)  # hours, half-hours, quarters, 10, 5 and 1 minutes


class DayJoin(NamedTuple):
    """What join_date_and_time joined: the time-of-day (or period) column, the periods' numbering ([the first,
    seconds each]; None for times of day), and the report's line."""

    column: str
    periods: list[int] | None
    note: str


def join_date_and_time(raw: RawTable, by: str | None = None) -> tuple[RawTable, DayJoin | None]:
    """A date column beside a time-of-day column (UCI's household power: `Date;Time`, many loggers' exports) or
    beside a column numbering each day's periods (a grid operator's SETTLEMENT_PERIOD: `_day_periods`) -> one
    timestamp in the time column (read alone, each date repeats for every reading of its day), and what was
    joined (None: nothing). by: a long table's id column (its dates repeat for every series as well)."""
    dates = raw.frame[raw.time_col]
    midnights = isinstance(dates.dtype, pl.Datetime) and (dates.dt.truncate("1d") == dates).all()  # pandas' dates
    if not (midnights or dates.dtype == pl.Date or (dates.dtype == pl.String and not dates.str.contains(":").any())):
        return raw, None
    periods = _day_periods(raw, dates, by)
    if periods is not None:
        c, first, seconds = periods
        beyond = int((raw.frame[c] - first >= 86400 // seconds).sum())
        note = (
            f"joined the date column '{raw.time_col}' and the period column '{c}' ({86400 // seconds} a day, from "
            f"{first}: {format_step(seconds * 10**9)} each) into one timestamp"
            + (f"; {beyond} rows of periods past the day's last (a clock change's extra hour) cannot be placed "
               "without the zone and are dropped (their timestamps unreadable)" if beyond else "")
        )  # fmt: skip
        joined = dated_times(dates, raw.frame[c], [first, seconds])
        frame = raw.frame.with_columns(joined.alias(raw.time_col)).drop(c)
        raw = dataclasses.replace(raw, frame=frame, value_cols=[v for v in raw.value_cols if v != c])
        return raw, DayJoin(c, [first, seconds], note)
    for c in raw.text_cols:
        times = raw.frame[c]
        if c != raw.time_col and times.dtype == pl.Time:
            times = times.cast(pl.String)
        if c in (raw.time_col, by) or times.dtype != pl.String or times.null_count() == len(times):
            continue
        if times.drop_nulls().str.contains(_TIME_OF_DAY).all():
            frame = raw.frame.with_columns(dated_times(dates, times).alias(raw.time_col)).drop(c)
            raw = dataclasses.replace(raw, frame=frame, text_cols=[t for t in raw.text_cols if t != c])
            note = f"joined the date column '{raw.time_col}' and the time-of-day column '{c}' into one timestamp"
            return raw, DayJoin(c, None, note)
    return raw, None


def _day_periods(raw: RawTable, dates: pl.Series, by: str | None) -> tuple[str, int, int] | None:
    """A numeric column numbering each date's rows (a grid operator's SETTLEMENT_PERIOD 1..48, an hour 0..23):
    named for it, whole numbers from 0 or 1, as many a day on most dates (of each series, `by` a long table's
    id column) as a day has steps of a common length (two more on a daylight-saving day). (column, first
    period, seconds per period), or None."""
    named = [c for c in raw.value_cols if _PERIOD_NAME.search(c)]
    if not named:
        return None
    keys = pl.DataFrame({"d": dates, **({"id": raw.frame[by]} if by else {})})
    n = int(keys.group_by(keys.columns).len()["len"].mode().sort()[-1])  # rows on most dates (of each series)
    if n not in _PERIODS_A_DAY:
        return None
    for c in named:
        p = raw.frame[c].drop_nulls()
        if p.is_empty() or not (p == p.round(0)).all() or int(p.min()) not in (0, 1):
            continue
        if int(p.max()) - int(p.min()) + 1 <= n + 2:
            return c, int(p.min()), 86400 // n
    return None
