"""The forecasting results table: our runs (runs/<dataset>/L<L>-H<H>/results.json, written by
pipelines.train) next to the published numbers of ../shared/spec/forecasting.md, rendered as markdown
between marker comments in the results page (docs/results.md):

    <!-- forecast-results:begin --> … <!-- forecast-results:end -->

The README is a user's document and keeps a short headline table that a human updates, so the report
refuses to write into it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from lruts.errors import ConfigError
from lruts.io import replace_between

MARKER = "forecast-results"

# Published test MSE / MAE, TSLib protocol (forecasting.md): model → (lookback, {horizon: (mse, mae)})
PUBLISHED: dict[str, dict[str, tuple[str, dict[int, tuple[float, float]]]]] = {
    "ETTh1": {
        "PatchTST/64": ("512", {96: (0.370, 0.400), 192: (0.413, 0.429), 336: (0.422, 0.440), 720: (0.447, 0.468)}),
        "DLinear": ("336", {96: (0.375, 0.399), 192: (0.405, 0.416), 336: (0.439, 0.443), 720: (0.472, 0.490)}),
        "SegRNN": ("720", {96: (0.351, 0.392), 192: (0.392, 0.414), 336: (0.423, 0.433), 720: (0.466, 0.472)}),
    },
    "ETTm1": {
        "PatchTST/64": ("512", {96: (0.293, 0.346), 192: (0.333, 0.370), 336: (0.369, 0.392), 720: (0.416, 0.420)}),
        "DLinear": ("336", {96: (0.299, 0.343), 192: (0.335, 0.365), 336: (0.369, 0.386), 720: (0.425, 0.421)}),
        "SegRNN": ("720", {96: (0.293, 0.354), 192: (0.328, 0.378), 336: (0.357, 0.399), 720: (0.410, 0.430)}),
    },
}
# Datasets in the order the table shows them; others found in the runs follow alphabetically.
ORDER = ["ETTh1", "ETTm1", "weather", "exchange_rate", "electricity", "traffic", "illness"]
BASELINES = {"dlinear": "DLinear", "repeat_last": "repeat-last", "seasonal_naive": "seasonal naive"}


def collect(runs_dir: str | Path) -> dict[str, dict[int, dict]]:
    """dataset → horizon → the newest untagged results.json for it under runs_dir (any lookback)."""
    found: dict[str, dict[int, tuple[float, dict]]] = {}
    for path in Path(runs_dir).glob("*/L*-H*/results.json"):
        r = json.loads(path.read_text())
        cfg = r["config"]
        if cfg.get("tag"):  # quick runs are not protocol results
            continue
        key, h = path.parent.parent.name, int(cfg["horizon"])
        mtime = path.stat().st_mtime
        if h not in found.setdefault(key, {}) or mtime > found[key][h][0]:
            found[key][h] = (mtime, r)
    return {d: {h: r for h, (_, r) in sorted(hs.items())} for d, hs in found.items()}


def _pair(m: dict | tuple | None) -> str:
    if m is None:
        return "–"
    mse, mae = (m["mse"], m["mae"]) if isinstance(m, dict) else m
    return f"{mse:.3f} / {mae:.3f}"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _model_label(configs: list[dict]) -> str:
    """ "L=336", or for ensembles "mean of 2: L=336 / 512" (the members' lookbacks)."""
    sizes = sorted({len(c.get("ensemble") or []) for c in configs})
    lookbacks = sorted({int(m.get("lookback", c["lookback"])) for c in configs for m in (c.get("ensemble") or [{}])})
    label = f"L={' / '.join(map(str, lookbacks))}"
    if sizes == [0]:
        return label
    return f"mean of {'/'.join(str(n or 1) for n in sizes)}: {label}"


def dataset_table(name: str, runs: dict[int, dict]) -> str:
    """One dataset: a row per horizon (and their average), ours, our baselines, the published numbers."""
    published = PUBLISHED.get(name, {})
    horizons = sorted(runs)
    baseline_keys = [k for k in BASELINES if any(k in r["baselines"] for r in runs.values())]
    head = ["horizon", f"LRU (ours, {_model_label([r['config'] for r in runs.values()])})"]
    head += [f"{BASELINES[k]} (ours)" for k in baseline_keys]
    head += [f"{m} (published, L={lb})" for m, (lb, _) in published.items()]
    head += ["epochs", "minutes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for h in horizons:
        r = runs[h]
        cells = [str(h), _pair(r["test"])]
        cells += [_pair(r["baselines"].get(k)) for k in baseline_keys]
        cells += [_pair(table.get(h)) for _, table in published.values()]
        cells += [str(r["fit"]["epochs_run"]), f"{r['minutes']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if len(horizons) > 1:

        def avg(get) -> str:
            vals = [get(h) for h in horizons]
            if any(v is None for v in vals):
                return "–"
            return _pair((_mean([v[0] for v in vals]), _mean([v[1] for v in vals])))

        def metric_pair(m: dict | None) -> tuple[float, float] | None:
            return None if m is None else (m["mse"], m["mae"])

        cells = ["**avg**", "**" + avg(lambda h: metric_pair(runs[h]["test"])) + "**"]
        cells += [avg(lambda h, k=k: metric_pair(runs[h]["baselines"].get(k))) for k in baseline_keys]
        cells += [avg(lambda h, t=table: t.get(h)) for _, table in published.values()]
        cells += ["", f"{sum(runs[h]['minutes'] for h in horizons):.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_markdown(runs_dir: str | Path) -> str:
    """Every dataset with runs under runs_dir: a heading and its table."""
    found = collect(runs_dir)
    if not found:
        return "_no runs yet: `python -m pipelines.train --dataset ETTh1 --full`_"
    names = [d for d in ORDER if d in found] + sorted(d for d in found if d not in ORDER)
    parts = []
    for name in names:
        runs = found[name]
        r0 = next(iter(runs.values()))
        n_series, rows = r0["config"].get("n_series"), r0["config"].get("rows")
        parts.append(f"**{name}** ({rows:,} rows × {n_series} series), test MSE / MAE on scaled values:\n")
        parts.append(dataset_table(name, runs) + "\n")
    return "\n".join(parts).rstrip("\n")


def collect_peers(runs_dir: str | Path) -> dict[str, dict[int, dict[str, dict]]]:
    """dataset → horizon → peer model → its test metrics, from runs_dir/peers/<dataset>/H<H>/<model>.json
    (written by benchmarks/peers.py)."""
    found: dict[str, dict[int, dict[str, dict]]] = {}
    for path in Path(runs_dir).glob("peers/*/H*/*.json"):
        r = json.loads(path.read_text())
        found.setdefault(path.parent.parent.name, {}).setdefault(int(r["horizon"]), {})[r["model"]] = r["test"]
    return found


def ratio_rows(runs_dir: str | Path) -> list[dict[str, object]]:
    """Per dataset: the LRU's MSE averaged over its horizons, the best other forecast over the same horizons
    (our baselines and the peers that ran every one of them), and their ratio (> 1: something beats us)."""
    peers = collect_peers(runs_dir)
    rows = []
    for name, runs in collect(runs_dir).items():
        horizons = sorted(runs)
        others: dict[str, list[float]] = {}
        for h in horizons:
            for key, m in runs[h]["baselines"].items():
                others.setdefault(BASELINES.get(key, key), []).append(m["mse"])
            for model, m in peers.get(name, {}).get(h, {}).items():
                others.setdefault(f"{model} (peer)", []).append(m["mse"])
        complete = {k: _mean(v) for k, v in others.items() if len(v) == len(horizons)}
        lru = _mean([runs[h]["test"]["mse"] for h in horizons])
        best = min(complete, key=complete.get) if complete else None
        rows.append(
            {
                "dataset": name,
                "horizons": horizons,
                "lru": lru,
                "best_other": best,
                "best_mse": complete.get(best, math.nan),
                "ratio": lru / complete[best] if best else math.nan,
            }
        )
    return sorted(rows, key=lambda r: -r["ratio"] if not math.isnan(r["ratio"]) else math.inf)


def ratio_markdown(runs_dir: str | Path) -> str:
    """The table of ratio_rows and the worst ratio, the figure the forecast-quality target is judged on."""
    rows = ratio_rows(runs_dir)
    if not rows:
        return "no runs under " + str(runs_dir)
    lines = ["| dataset | horizons | LRU MSE | best other | its MSE | ratio |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {' '.join(map(str, r['horizons']))} | {r['lru']:.3f} | {r['best_other']} | "
            f"{r['best_mse']:.3f} | {r['ratio']:.3f} |"
        )
    worst = rows[0]
    lines.append(f"\nworst ratio: {worst['ratio']:.3f} ({worst['dataset']}, against {worst['best_other']})")
    return "\n".join(lines)


def update_results(md_path: str | Path, runs_dir: str | Path) -> Path:
    """Rewrite the results block of md_path from the runs under runs_dir."""
    md_path = Path(md_path)
    if md_path.name.lower() == "readme.md":
        raise ConfigError(
            f"{md_path}: the results report renders into a results page, not a README "
            "(the README's headline table is edited by hand); give docs/results.md or another markdown file"
        )
    text = md_path.read_text() if md_path.exists() else ""
    md_path.write_text(replace_between(text, MARKER, results_markdown(runs_dir)))
    return md_path
