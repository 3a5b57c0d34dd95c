"""Ingest a dataset: raw CSV/Parquet -> validated Parquet + report under data/.

    python -m pipelines.ingest --dataset ETTh1
    python -m pipelines.ingest --dataset all             # every named dataset found on this machine
    python -m pipelines.ingest --path my.csv --time-col when --freq 1h [--targets a,b] [--fill interpolate]
    python -m pipelines.ingest --path stocks.csv --id-col Symbol --targets Close   # long: one series per id
    python -m pipelines.ingest --list                    # named datasets and where their files are
    python -m pipelines.ingest --path prices.csv --id-col unique_id --target y --future-covariates Exogenous1 day_0
    python -m pipelines.ingest --dataset electricity_prices   # a registered panel: its declared covariates
    python -m pipelines.ingest --path sales.csv --id-col store --static-file stores.csv   # one row per store

Outages and gaps stay missing (--fill mask, the default; another --fill fills them); a long table
(--id-col) also keeps the time before each series starts or after it ends missing (another --fill fills inside
each series' span only) and reports every series' span and missing steps. A panel with covariates
(--target or a covariate flag, or a dataset the registry declares a panel) is read as pipelines.train
reads it: one target per series, its covariates kept as covariates (not as more targets); it is checked
and reported (series, spans, missing steps, each covariate's missing cells), and no Parquet is written:
the pipelines read the file itself.
Prints the ingest report (rows, span, step, gaps, repairs, warnings); it is also saved as
data/<name>.report.json. Exit status 2 with a one-line message on a data problem.
"""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m pipelines.ingest", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--dataset", help="a named dataset (see --list), or 'all'")
    what.add_argument("--path", help="a CSV/TSV/Parquet file")
    what.add_argument("--list", action="store_true", help="list the named datasets and where their raw files are")
    ap.add_argument("--time-col", help="time column (default: 'date'-like name, else the first column)")
    ap.add_argument("--targets", help="comma-separated value columns to keep (default: every numeric column)")
    ap.add_argument("--id-col", help="long format: one series per value of this column, each on its own span")
    ap.add_argument("--target", help="a panel's target column (default: the registry's, else 'y'): one series per id")
    ap.add_argument("--future-covariates", nargs="*", metavar="COL", help="a panel's columns known ahead")
    ap.add_argument("--past-covariates", nargs="*", metavar="COL", help="a panel's columns observed up to now")
    ap.add_argument("--static-covariates", nargs="*", metavar="COL", help="a panel's columns constant per series")
    ap.add_argument("--static-file", help="a panel's static covariates from a CSV/Parquet file with one row per series")
    ap.add_argument("--freq", help="step, e.g. 1h, 15m, 10min, 1d, 7d, 1mo (default: inferred)")
    ap.add_argument(
        "--fill",
        choices=["ffill", "interpolate", "zero", "drop", "error", "mask"],
        help="missing-value policy (default: mask, i.e. kept missing; the others fill or drop them)",
    )
    ap.add_argument("--irregular", action="store_true", help="keep observed rows only: do not insert missing steps")
    ap.add_argument("--name", help="output name (default: dataset name or file stem)")
    ap.add_argument("--dest-dir", help="sub-folder of data/ to write to")
    ap.add_argument("--force", action="store_true", help="re-ingest even if the Parquet file is up to date")
    return ap


def _list() -> int:
    from lruts.data import DATASETS, resolve_raw
    from lruts.errors import DataError

    for name, spec in DATASETS.items():
        try:
            where = str(resolve_raw(name, download=False))
        except DataError:
            where = f"missing (source: {spec.url or spec.source})"
        print(f"{name:14s} {spec.expected_shape[0]:>7,} x {spec.n_series:<4d} {spec.freq:>4s} {spec.split:11s} {where}")
    return 0


def _is_panel(source: str, args: argparse.Namespace) -> bool:
    from lruts.data.registry import get_spec

    spec = get_spec(source)
    given = (args.target, args.future_covariates, args.past_covariates, args.static_covariates, args.static_file)
    return (spec is not None and spec.panel) or any(v is not None for v in given)


def _report_panel(source: str, args: argparse.Namespace) -> None:
    """Read `source` as a panel with its covariates (the flags, else the registry's) and print its report."""
    from lruts.forecasting.experiment import ExperimentConfig, load_data, with_dataset_defaults

    cfg = with_dataset_defaults(
        ExperimentConfig(
            dataset=source, id_col=args.id_col, target=args.target, time_col=args.time_col,
            future_covariates=args.future_covariates, past_covariates=args.past_covariates,
            static_covariates=args.static_covariates, static_file=args.static_file,
        )
    )  # fmt: skip
    panel = load_data(cfg)
    print(panel.report.summary())
    print(f"  target '{cfg.target}', one series per '{cfg.id_col}'")
    for kind, names in (("future", panel.future_names), ("past", panel.past_names), ("static", panel.static_names)):
        if names:
            print(f"  {kind} covariates: {', '.join(names)}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from lruts.data import DATASETS, ingest, resolve_raw
    from lruts.errors import DataError, LrutsError

    if args.list:
        return _list()
    options = dict(
        time_col=args.time_col,
        target_cols=[c.strip() for c in args.targets.split(",")] if args.targets else None,
        id_col=args.id_col,
        freq=args.freq,
        fill=args.fill,
        regular=False if args.irregular else None,
        name=args.name,
        dest_dir=args.dest_dir,
        force=args.force,
    )
    if args.dataset == "all":
        sources = []
        for name in DATASETS:
            try:
                resolve_raw(name, download=False)
                sources.append(name)
            except DataError as e:
                print(f"skipped {name}: {str(e).splitlines()[0]}", file=sys.stderr)
    else:
        sources = [args.dataset or args.path]
    status = 0
    for source in sources:
        try:
            if _is_panel(source, args):
                _report_panel(source, args)
                continue
            result = ingest(source, **options)
        except LrutsError as e:
            print(f"error: {e}", file=sys.stderr)
            status = 2
            continue
        print(result.report.summary())
        state = "up to date, reused" if result.reused else "written"
        print(f"  -> {result.parquet} ({state}); report: {result.parquet.with_suffix('.report.json')}")
    return status


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
