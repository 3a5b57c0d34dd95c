"""Long Range Arena with the LRU: train and test one task at one scale, tracked in MLflow, and update
the results table (docs/lra_results.md).

    python -m pipelines.lra --task image --scale small              # ≤ 30 min on a 2-core CPU
    python -m pipelines.lra --task listops --scale paper            # the paper's recipe (needs a GPU)
    python -m pipelines.lra --task image --scale small --ablation   # tanh RNN … LRU, one run each
    python -m pipelines.lra --task pathfinder --scale smoke --no-track
    python -m pipelines.lra --task image --scale paper --recipe my_recipe.yaml   # e.g. `d_model: 256`
    python -m pipelines.lra --report                                # re-render the tables from runs/lra

Tasks: listops, text, retrieval, image, pathfinder, pathx. Data are read from --data-dir, or searched
in the data directories (data/, $LRUTS_DATA_DIRS, data.yaml: ../shared/datasets) and their lra/
subfolders; ListOps and Pathfinder/Path-X are generated (seeded, official layout) when the official
files are absent. Runs go to runs/lra/<task>-<scale>[-<variant>]/ (checkpoints, results.json).
"""

from __future__ import annotations

import argparse
import sys

TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")
VARIANTS = ("tanh_rnn", "linear_rnn", "complex_diagonal", "exp_ring", "lru")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m pipelines.lra", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--task", choices=TASKS)
    ap.add_argument("--scale", choices=("smoke", "small", "paper"), default="small")
    ap.add_argument("--data-dir", help="folder holding the LRA files (default: search the data directories)")
    ap.add_argument("--variant", choices=VARIANTS, default="lru", help="recurrent layer (ablation variant)")
    ap.add_argument("--ablation", action="store_true", help="run every variant in turn: " + ", ".join(VARIANTS))
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, help="with --ablation: only these variants")
    ap.add_argument("--color", action="store_true", help="image: colour sCIFAR (3 channels) instead of grayscale")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true", help="continue from runs/lra/<name>/last.pt")
    ap.add_argument("--out", default="runs/lra", help="run folder (default runs/lra)")
    ap.add_argument("--results-md", default="docs/lra_results.md", help="markdown file whose tables are updated")
    ap.add_argument("--report", action="store_true", help="only re-render the tables from the runs in --out")
    ap.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument(
        "--recipe",
        help="YAML file of recipe fields (lruts.lra.tasks.Recipe, e.g. `d_model: 256`) replacing the task's paper "
        "recipe; --scale small/smoke still shrink depth, width, epochs and batch",
    )
    g = ap.add_argument_group("overrides of the preset")
    for flag, kind in (
        ("epochs", int),
        ("batch-size", int),
        ("lr", float),
        ("max-steps-per-epoch", int),
        ("device", str),
        ("num-workers", int),
    ):
        g.add_argument(f"--{flag}", type=kind)
    for flag, kind in (("d-model", int), ("d-state", int), ("layers", int), ("dropout", float)):
        g.add_argument(f"--{flag}", type=kind)
    for flag in ("n-train", "n-val", "n-test", "generate"):
        g.add_argument(
            f"--{flag}", type=int, help="data size" if flag != "generate" else "images/expressions to generate"
        )
    return ap


def overrides(args: argparse.Namespace) -> dict[str, dict]:
    return {
        "train": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "device": args.device,
            "max_steps_per_epoch": args.max_steps_per_epoch,
            "num_workers": args.num_workers,
        },
        "model": {"d_model": args.d_model, "d_state": args.d_state, "n_layers": args.layers, "dropout": args.dropout},
        "data": {"n_train": args.n_train, "n_val": args.n_val, "n_test": args.n_test, "generate": args.generate},
    }


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.report:
        from lruts.lra.report import update_results

        print(f"updated {update_results(args.results_md, args.out)}")
        return 0
    if not args.task:
        parser().error("give --task (or --report)")
    import logging

    from lruts.lra.runner import run_ablation, run_task
    from pipelines._long_job import run_long_job

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    kwargs = dict(
        data_dir=args.data_dir,
        track=not args.no_track,
        out_dir=args.out,
        results_md=args.results_md,
        overrides=overrides(args),
        seed=args.seed,
        color=args.color,
        resume=args.resume,
        progress=not args.no_progress,
    )

    def job():
        if args.recipe:
            from lruts.lra.tasks import get_task, load_recipe

            kwargs["recipe"] = load_recipe(args.recipe, get_task(args.task).recipe)
        if args.ablation:
            return run_ablation(args.task, args.scale, variants=tuple(args.variants or VARIANTS), **kwargs)
        return [run_task(args.task, args.scale, variant=args.variant, **kwargs)]

    results, code = run_long_job(job)
    if code:
        return code
    print("\n| task | scale | variant | test % | val % | epochs | minutes |\n|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.task} | {r.scale} | {r.variant} | {100 * r.test_accuracy:.1f} | {100 * r.val_accuracy:.1f} | "
            f"{r.epochs_run} | {r.minutes:.1f} |"
        )
    print(f"\nresults: {args.out}/*/results.json; table: {args.results_md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
