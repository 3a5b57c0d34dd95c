"""One LRA run end to end: preset → data → model → the project's Trainer (the paper's optimiser and
schedule, checkpoints, resume) → test accuracy → MLflow → results.json → the markdown table.

    result = run_task("image", "small")                       # the LRU
    results = run_ablation("image", "small")                  # every variant of lruts/lra/ablation.py
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lruts.lra.ablation import VARIANTS
from lruts.lra.tasks import Preset, Recipe, get_task, load_task_data, preset

log = logging.getLogger("lruts")


@dataclass
class RunResult:
    task: str
    scale: str
    variant: str
    test_accuracy: float
    val_accuracy: float
    test_loss: float
    best_epoch: int
    epochs_run: int
    diverged: bool
    minutes: float
    n_train: int
    n_val: int
    n_test: int
    n_parameters: int
    source: str
    command: str
    run_id: str | None
    finished: str
    preset: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def build_model(p: Preset, variant: str = "lru", d_input: int | None = None):
    """The model of preset `p`: the two-tower model for Retrieval, a classifier otherwise."""
    from lruts.lra.models import LRAClassifier, RetrievalClassifier
    from lruts.network import DeepLRUConfig

    t = get_task(p.task)
    if t.vocab_size is not None:
        d_input = p.model["d_model"]  # tokens are embedded d_model wide
    cfg = DeepLRUConfig(d_input=d_input or (3 if p.color else 1), **p.model)
    if t.kind == "pairs":
        return RetrievalClassifier(cfg, t.vocab_size, t.n_classes, variant=variant)
    return LRAClassifier(cfg, t.n_classes, vocab_size=t.vocab_size, variant=variant)


def run_task(
    task: str,
    scale: str = "small",
    *,
    data_dir: str | Path | None = None,
    variant: str = "lru",
    track: bool = True,
    out_dir: str | Path = "runs/lra",
    results_md: str | Path | None = None,
    recipe: Recipe | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    seed: int = 0,
    color: bool = False,
    resume: bool = False,
    progress: bool = True,
    command: str | None = None,
    parent_run: bool = False,
) -> RunResult:
    """Train and test one (task, scale, variant); returns the measured accuracies.

    recipe: in place of the task's paper recipe (`scale` still shrinks it, see lruts.lra.tasks).
    overrides: {"model": {...DeepLRUConfig fields}, "train": {...TrainConfig fields}, "data": {...}}.
    """
    import torch

    from lruts.io import load_torch, save_json
    from lruts.lra.models import ClassificationLoss
    from lruts.tracking import load_tracking_config, start_run
    from lruts.training import TrainConfig, Trainer, distributed_context

    track = track and distributed_context()[0] == 0  # under torchrun only rank 0 opens an MLflow run
    p = preset(task, scale, recipe)
    p.seed, p.color = seed, color
    for part, values in (overrides or {}).items():
        getattr(p, part).update({k: v for k, v in values.items() if v is not None})
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    data = load_task_data(p, data_dir)
    log.info(
        "%s/%s: %d train, %d val, %d test — %s",
        task,
        scale,
        len(data.train),
        len(data.val),
        len(data.test),
        data.source,
    )
    model = build_model(p, variant)
    n_params = sum(x.numel() for x in model.parameters())
    name = f"{task}-{scale}" + ("" if variant == "lru" else f"-{variant}")
    out = Path(out_dir) / name
    command = command or "python -m pipelines.lra " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if not resume:  # a stale best.pt of an earlier run must not stand in for this one's
        for stale in ("best.pt", "last.pt"):
            (out / stale).unlink(missing_ok=True)
    train_cfg = TrainConfig(seed=seed, progress=progress, **p.train)
    config = {
        "preset": p.as_dict(),
        "variant": variant,
        "source": data.source,
        "n_parameters": n_params,
        "command": command,
    }

    tracking = load_tracking_config() if track else None
    experiment = tracking.lra_experiment if tracking else "lruts-lra"
    with start_run(
        experiment,
        run_name=name,
        config=config,
        tracking=tracking,
        enabled=track,
        nested=parent_run,
        tags={"task": task, "scale": scale, "variant": variant},
    ) as run:
        loss_fn = ClassificationLoss()

        def on_epoch_end(epoch: int, metrics: dict[str, float]) -> None:
            acc = loss_fn.take_accuracy()  # counted during the trainer's validation pass
            metrics["val_accuracy"] = acc
            run.log_metrics({"val_accuracy": acc}, step=epoch)
            log.info("epoch %d: val accuracy %.4f", epoch, acc)

        trainer = Trainer(model, loss_fn, train_cfg, checkpoint_dir=out, run=run, on_epoch_end=on_epoch_end)
        diverged = False
        try:
            fit = trainer.fit(data.train, data.val, resume=resume)
            best_epoch, epochs_run = fit.best_epoch, fit.epochs_run
        except FloatingPointError as e:  # an unstable variant: report it, test its best epoch so far
            log.warning("%s diverged: %s", name, e)
            diverged, best_epoch, epochs_run = True, 0, 0
            if (out / "best.pt").exists():
                model.load_state_dict(load_torch(out / "best.pt", map_location=trainer.device))
        loss_fn.take_accuracy()
        val_loss = trainer.evaluate_loss(data.val)
        val_acc = loss_fn.take_accuracy()
        test_loss = trainer.evaluate_loss(data.test)
        test_acc = loss_fn.take_accuracy()
        result = RunResult(
            task=task,
            scale=scale,
            variant=variant,
            test_accuracy=test_acc,
            val_accuracy=val_acc,
            test_loss=test_loss,
            best_epoch=best_epoch,
            epochs_run=epochs_run,
            diverged=diverged,
            minutes=(time.perf_counter() - t0) / 60,
            n_train=len(data.train),
            n_val=len(data.val),
            n_test=len(data.test),
            n_parameters=n_params,
            source=data.source,
            command=command,
            run_id=run.run_id,
            finished=time.strftime("%Y-%m-%d %H:%M"),
            preset=p.as_dict(),
        )
        if trainer.is_main:
            run.log_metrics(
                {
                    "test_accuracy": test_acc,
                    "test_loss": test_loss,
                    "final_val_accuracy": val_acc,
                    "val_loss_best": val_loss,
                    "diverged": float(diverged),
                }
            )
            path = save_json(result.to_dict(), out / "results.json")
            run.log_artifact(path)
    log.info("%s: test accuracy %.4f (val %.4f) in %.1f min", name, test_acc, val_acc, result.minutes)
    if results_md is not None and trainer.is_main:
        from lruts.lra.report import update_results

        update_results(results_md, out_dir)
    return result


def run_ablation(
    task: str, scale: str = "small", *, variants: tuple[str, ...] = VARIANTS, track: bool = True, **kwargs
) -> list[RunResult]:
    """Every variant in turn, same data, seed and recipe; one MLflow run each under a parent run."""
    from lruts.tracking import load_tracking_config, start_run
    from lruts.training import distributed_context

    track = track and distributed_context()[0] == 0
    tracking = load_tracking_config() if track else None
    experiment = tracking.lra_experiment if tracking else "lruts-lra"
    results = []
    with start_run(
        experiment,
        run_name=f"{task}-{scale}-ablation",
        config={"task": task, "scale": scale, "variants": list(variants)},
        tracking=tracking,
        enabled=track,
    ) as parent:
        for v in variants:
            r = run_task(task, scale, variant=v, track=track, parent_run=track, **kwargs)
            parent.log_metrics({f"test_accuracy.{v}": r.test_accuracy})
            results.append(r)
    return results
