"""raw file -> validated, typed, time-sorted Parquet under data/, with its report; idempotent by content hash.

    result = ingest("ETTh1")                      # a named dataset, found by files.resolve_raw
    result = ingest("uploads/my.csv", time_col="when", freq="1h", dest_dir="uploads")
    result.parquet, result.report, result.reused

Output: <data home>/<dest_dir>/<name>.parquet (`timestamp` + one float32 column per series) and
<name>.report.json. The cache key is the raw file's SHA-256, the effective options and the pipeline
version: unchanged input is not re-read, a changed file (or option) is re-ingested. Writes are atomic
(temp file + rename), so concurrent ingests of the same dataset are safe. Nothing is written outside
the data home (uploads: names are sanitised and `dest_dir` must stay inside it).
"""

from __future__ import annotations

import csv
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lruts.data.files import data_home, resolve_raw, sha256_of
from lruts.data.registry import DatasetSpec, get_spec
from lruts.data.report import IngestReport
from lruts.errors import DataError
from lruts.io import safe_name

log = logging.getLogger(__name__)

PIPELINE_VERSION = 7  # 2: long tables keep each series' span and outages (fill='mask' by default); 3: years,
# quarters and ISO weeks read as dates, numbers written for people (1,234.5 · $12 · 10%) read, not set missing;
# 4: local midnights with a zone read as dates (timestamps.Clock), step numbers as steps, a logger's jitter moved
# to its grid, true/false as 1/0; 5: missing-data codes (−9999 among wind speeds) read as missing; 6: a wide
# table's gaps and NaN cells kept missing too (fill='mask' for every table); 7: a column's decimal commas read by
# what its text shows (30,5 · 1.234,5), in a comma-separated file or a frame too


class PartialDatasetWarning(UserWarning):
    """A named dataset loaded from a partial copy (fewer series than the standard file)."""


@dataclass
class IngestResult:
    parquet: Path
    report: IngestReport
    reused: bool  # True when an up-to-date Parquet file was found and nothing was re-read


def output_dir(dest_dir: str | os.PathLike | None) -> Path:
    """`dest_dir` inside the data home (created). DataError if it would point outside it."""
    home = data_home()
    out = (home / dest_dir).resolve() if dest_dir is not None else home
    if out != home and home not in out.parents:
        raise DataError(
            f"dest_dir {dest_dir!s} is outside the data folder {home}; use a sub-folder name such as 'uploads'"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def _warn_partial(spec: DatasetSpec | None, report: IngestReport, path: str) -> None:
    if spec is None or not report.partial:
        return
    msg = (
        f"dataset '{spec.name}' loaded from a partial copy {Path(path).name}: it has {report.n_columns} of the "
        f"{spec.n_series} expected series; results are not comparable with published full-dataset numbers"
    )
    warnings.warn(msg, PartialDatasetWarning, stacklevel=3)


def _locate(source: str | os.PathLike) -> tuple[DatasetSpec | None, Path]:
    spec = get_spec(str(source)) if isinstance(source, str) else None
    if spec is not None and not Path(source).is_file():
        return spec, resolve_raw(spec.name)
    path = Path(source).expanduser()
    if not path.is_file():
        raise DataError(
            f"'{source}' is neither a named dataset nor an existing file; named datasets: see lruts.data.DATASETS"
        )
    return None, path


def _options(spec: DatasetSpec | None, **given: object) -> dict:
    from lruts.data.validate import fill_policy

    opts = dict(given)
    if spec is not None:
        opts["time_col"] = opts["time_col"] or spec.time_col
        opts["target_cols"] = opts["target_cols"] or (list(spec.target_cols) if spec.target_cols else None)
        opts["id_col"] = opts["id_col"] or spec.id_col
        opts["freq"] = opts["freq"] or spec.freq
        opts["regular"] = spec.regular if opts["regular"] is None else opts["regular"]
        opts["exact_rows"] = spec.exact_rows if opts["exact_rows"] is None else opts["exact_rows"]
    opts["exact_rows"] = bool(opts["exact_rows"])
    opts["fill"] = fill_policy(opts["fill"])
    if opts["target_cols"] is not None:
        opts["target_cols"] = list(opts["target_cols"])
    return opts


def build_report(name: str, source: str, spec: DatasetSpec | None, options: dict) -> IngestReport:
    return IngestReport(
        name=name,
        source=source,
        options=options,
        version=PIPELINE_VERSION,
        expected_series=spec.n_series if spec else None,
    )


def check_against_spec(spec: DatasetSpec | None, report: IngestReport, file_name: str) -> None:
    if spec is None:
        return
    known = spec.sha256.get(file_name)
    if known and report.source_sha256 and known != report.source_sha256:
        report.warnings.append(
            f"{file_name} differs from the published file (sha256 {known[:12]}…): results may not compare"
        )
    if report.rows != spec.expected_shape[0]:
        report.warnings.append(f"{report.rows} rows where the standard file has {spec.expected_shape[0]}")
    if report.partial:
        report.warnings.append(f"partial copy: {report.n_columns} of {spec.n_series} series")


@contextmanager
def library_errors_as_data_errors(what: str) -> Iterator[None]:
    """Turn an error raised deep inside polars/pyarrow/csv on malformed input into one DataError."""
    import polars as pl

    try:
        yield
    except (pl.exceptions.PolarsError, UnicodeError, csv.Error, OverflowError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{what} could not be read as a time-series table: {first}") from None


def write_parquet(frame, path: Path, *, group_bytes: int = 8 << 20) -> None:
    """Write atomically (temp file + rename), one row group of ≈8 MB at a time: polars' writer encodes
    the whole table at once (+75% of the table at peak for 321 float32 series)."""
    import pyarrow.parquet as pq

    rows = max(1024, group_bytes // (4 * max(frame.width, 1)))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with pq.ParquetWriter(tmp, frame.slice(0, 0).to_arrow().schema, compression="zstd") as writer:
            for lo in range(0, frame.height, rows):
                writer.write_table(frame.slice(lo, rows).to_arrow())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def ingest(
    source: str | os.PathLike,
    *,
    time_col: str | None = None,
    target_cols: list[str] | tuple[str, ...] | None = None,
    freq: str | None = None,
    fill: str | None = None,
    force: bool = False,
    dest_dir: str | os.PathLike | None = None,
    name: str | None = None,
    regular: bool | None = None,
    id_col: str | None = None,
    drop_constant: bool = False,
    exact_rows: bool | None = None,
) -> IngestResult:
    """Ingest a named dataset or a CSV/TSV/Parquet file into `<data home>/<dest_dir>/<name>.parquet`.

    time_col: the time column (default: the spec's, else a column named like a date, else the first);
    target_cols: value columns to keep (default: every numeric column); freq: the step ("1h", "15m",
    "1d", ...; default: inferred); fill: policy for missing values, see lruts.data.validate (default
    "mask": kept missing); regular: insert missing grid steps (default: the spec's, else True
    unless the series is a daily trading calendar); id_col: pivot a long table (one row per id and time)
    wide, each series missing outside its own span, its outages reported (report.series_spans); exact_rows: keep
    duplicated timestamps and gaps as they are (default: True for the named benchmark datasets, whose
    protocol counts rows of the published file); drop_constant: drop constant columns; force: re-ingest
    even if up to date; dest_dir, name: where the Parquet goes (inside the data home) and its stem.
    Raises DataError with a message saying what is wrong and how to fix it.
    """
    from lruts.data.read import read_any
    from lruts.data.validate import validate

    spec, path = _locate(source)
    options = _options(
        spec,
        time_col=time_col,
        target_cols=target_cols,
        freq=freq,
        fill=fill,
        regular=regular,
        id_col=id_col,
        drop_constant=drop_constant,
        exact_rows=exact_rows,
    )
    stem = safe_name(name or (spec.name if spec else str(path)))
    out = output_dir(dest_dir)
    parquet, report_path = out / f"{stem}.parquet", out / f"{stem}.report.json"
    digest = sha256_of(path)
    if not force and parquet.is_file() and report_path.is_file():
        try:
            old = IngestReport.load(report_path)
        except (ValueError, TypeError, OSError):
            old = None  # unreadable report: ingest again
        if old and old.source_sha256 == digest and old.options == options and old.version == PIPELINE_VERSION:
            log.info("%s: up to date (%s)", stem, parquet)
            _warn_partial(spec, old, old.source)
            return IngestResult(parquet, old, reused=True)

    report = build_report(spec.name if spec else stem, str(path), spec, options)
    report.source_sha256 = digest
    with library_errors_as_data_errors(path.name):
        raw = read_any(path, time_col=options["time_col"], id_col=options["id_col"])
        frame = validate(
            raw,
            report,
            target_cols=options["target_cols"],
            freq=options["freq"],
            fill=options["fill"],
            regular=options["regular"],
            id_col=options["id_col"],
            drop_constant=drop_constant,
            exact_rows=options["exact_rows"],
        )
        del raw
    check_against_spec(spec, report, path.name)
    write_parquet(frame, parquet)
    del frame
    report.save(report_path)
    log.info("ingested %s -> %s\n%s", path, parquet, report.summary())
    _warn_partial(spec, report, str(path))
    return IngestResult(parquet, report, reused=False)
