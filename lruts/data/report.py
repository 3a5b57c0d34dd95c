"""The ingest report: what a raw table held and what ingestion repaired or dropped. Saved as JSON next to
the Parquet file (`<name>.report.json`) and printed by `python -m pipelines.ingest`."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


@dataclass
class IngestReport:
    name: str
    source: str  # raw file path, or "<DataFrame>"
    source_sha256: str | None = None
    options: dict = field(default_factory=dict)  # the effective ingest options (part of the cache key)
    version: int = 0  # pipeline version (part of the cache key)
    encoding: str | None = None
    delimiter: str | None = None
    time_col: str | None = None
    time_format: str | None = None
    time_of_day: str | None = None  # a time-of-day column joined to the time column's dates (validate)
    day_periods: list[int] | None = None  # time_of_day numbers periods: [the first one, seconds each]
    clock: dict | None = None  # timestamps with a zone: how they are stored (timestamps.Clock.to_dict())
    snapped: bool = False  # jittered timestamps were moved to their grid points (new rows are read alike)
    rows_raw: int = 0
    rows: int = 0
    columns: list[str] = field(default_factory=list)
    start: str | None = None
    end: str | None = None
    freq: str | None = None
    freq_inferred: bool = True
    regular: bool = True
    gaps: int = 0  # number of holes in the time grid
    missing_steps: int = 0  # grid steps absent from the raw table
    largest_gap: str | None = None
    unsorted: bool = False
    duplicate_rows: int = 0  # rows dropped because their timestamp repeats (the last one is kept)
    conflicting_duplicates: int = 0  # of those, rows whose values differed from the kept row
    bad_timestamps: int = 0  # rows dropped because the timestamp could not be read
    junk_cells: dict[str, int] = field(default_factory=dict)  # text in numeric columns, set missing
    decimal_comma: list[str] = field(default_factory=list)  # columns written with a decimal comma (new rows alike)
    non_finite: dict[str, int] = field(default_factory=dict)  # NaN/inf and beyond-float32 values, set missing
    missing_codes: dict[str, dict[str, int]] = field(
        default_factory=dict
    )  # column -> code -> cells (read.missing_codes)
    filled: dict[str, int] = field(default_factory=dict)  # missing cells filled by the fill policy
    kept_missing: dict[str, int] = field(default_factory=dict)  # missing cells kept missing (fill "mask")
    dropped_columns: dict[str, str] = field(default_factory=dict)  # column -> reason
    constant_columns: list[str] = field(default_factory=list)
    # long tables: series -> {"first", "last", "missing_steps"} (steps absent or NaN inside its own span)
    series_spans: dict[str, dict] = field(default_factory=dict)
    expected_series: int | None = None  # for named datasets: series in the full standard file
    repairs: list[str] = field(default_factory=list)  # one line per repair, in pipeline order
    warnings: list[str] = field(default_factory=list)

    @property
    def n_columns(self) -> int:
        return len(self.columns)

    @property
    def partial(self) -> bool:
        return self.expected_series is not None and self.n_columns < self.expected_series

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> IngestReport:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def save(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> IngestReport:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def summary(self) -> str:
        """A short human-readable account: shape, span, step, and every repair and warning."""
        lines = [
            f"{self.name}: {self.rows:,} rows x {self.n_columns} series ({self.rows_raw:,} raw rows) "
            f"from {self.start} to {self.end}, step {self.freq}{' (inferred)' if self.freq_inferred else ''}"
            f"{'' if self.regular else ', irregular calendar kept'}",
            f"  source: {self.source}" + (f" (sha256 {self.source_sha256[:12]}…)" if self.source_sha256 else ""),
        ]
        if self.gaps:
            lines.append(f"  gaps: {self.gaps} holes, {self.missing_steps:,} missing steps, largest {self.largest_gap}")
        lines += [
            f"  series {c}: {s['first']} .. {s['last']}, {s['missing_steps']} missing steps"
            for c, s in self.series_spans.items()
            if s["missing_steps"] or s["first"] != self.start or s["last"] != self.end
        ]
        lines += [f"  repaired: {r}" for r in self.repairs]
        lines += [f"  warning: {w}" for w in self.warnings]
        if not self.repairs and not self.warnings:
            lines.append("  clean: nothing repaired or dropped")
        return "\n".join(lines)
