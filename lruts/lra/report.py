"""The LRA results tables, rendered from the runs' results.json files into a markdown document
between marker comments (the text around them is left as written):

    <!-- lra-results:begin --> … <!-- lra-results:end -->
    <!-- lra-ablation:begin --> … <!-- lra-ablation:end -->
"""

from __future__ import annotations

import json
from pathlib import Path

from lruts.io import replace_between
from lruts.lra.ablation import TITLES, VARIANTS
from lruts.lra.tasks import TASKS

MARKERS = {"results": "lra-results", "ablation": "lra-ablation"}


def collect(out_dir: str | Path) -> list[dict]:
    """Every results.json under out_dir (newest last)."""
    rows = [json.loads(p.read_text()) for p in Path(out_dir).glob("*/results.json")]
    return sorted(rows, key=lambda r: r.get("finished", ""))


def _pct(x: float) -> str:
    return "–" if x != x else f"{100 * x:.1f}"


def results_table(rows: list[dict]) -> str:
    """One line per task: the paper's LRU accuracy and ours at the largest scale we ran."""
    order = {"smoke": 0, "small": 1, "paper": 2}
    best: dict[str, dict] = {}
    for r in rows:
        if r["variant"] != "lru":
            continue
        cur = best.get(r["task"])
        if cur is None or order[r["scale"]] >= order[cur["scale"]]:
            best[r["task"]] = r
    lines = [
        "| task | paper LRU (test %) | ours (test %) | scale | model | train / val / test | epochs | minutes | data |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, t in TASKS.items():
        r = best.get(name)
        if r is None:
            lines.append(f"| {t.title} | {t.paper_accuracy:.1f} | not run | – | – | – | – | – | – |")
            continue
        m = r["preset"]["model"]
        model = f"{m['n_layers']}×(H={m['d_model']}, N={m['d_state']})" + (" bidir" if m["bidirectional"] else "")
        lines.append(
            f"| {t.title} | {t.paper_accuracy:.1f} | {_pct(r['test_accuracy'])} | {r['scale']} | {model} | "
            f"{r['n_train']} / {r['n_val']} / {r['n_test']} | {r['epochs_run']} | {r['minutes']:.1f} | "
            f"{r['source'].replace(str(Path.cwd()) + '/', '')} |"
        )
    return "\n".join(lines)


def ablation_table(rows: list[dict]) -> str:
    """The ablation variants of the newest (task, scale) that has them all or most of them."""
    groups: dict[tuple[str, str], dict[str, dict]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["scale"]), {})[r["variant"]] = r
    candidates = [(k, v) for k, v in groups.items() if len(v) > 1]
    if not candidates:
        return "_no ablation run yet_"
    (task, scale), runs = max(candidates, key=lambda kv: (len(kv[1]), max(r["finished"] for r in kv[1].values())))
    first = next(iter(runs.values()))
    m = first["preset"]["model"]
    lines = [
        f"Task `{task}`, scale `{scale}`: {m['n_layers']}×(H={m['d_model']}, N={m['d_state']}), "
        f"{first['n_train']} / {first['n_val']} / {first['n_test']} train / val / test examples, "
        f"seed {first['preset'].get('seed', 0)}.",
        "",
        "| variant | test % | val % | epochs | diverged | minutes | parameters |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in VARIANTS:
        r = runs.get(v)
        if r is None:
            lines.append(f"| {TITLES[v]} | not run | | | | | |")
            continue
        lines.append(
            f"| {TITLES[v]} | {_pct(r['test_accuracy'])} | {_pct(r['val_accuracy'])} | {r['epochs_run']} | "
            f"{'yes' if r['diverged'] else 'no'} | {r['minutes']:.1f} | {r['n_parameters']:,} |"
        )
    return "\n".join(lines)


def update_results(md_path: str | Path, out_dir: str | Path) -> Path:
    """Rewrite both tables in `md_path` from the runs in `out_dir`."""
    md_path = Path(md_path)
    rows = collect(out_dir)
    text = md_path.read_text() if md_path.exists() else "# Long Range Arena results\n"
    text = replace_between(text, MARKERS["results"], results_table(rows))
    text = replace_between(text, MARKERS["ablation"], ablation_table(rows))
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(text)
    return md_path
