"""One training loop for every task (forecasting, LRA): the paper's optimiser recipe, early stopping
on validation loss, an atomic checkpoint each epoch, exact resume, DDP under torchrun.

    trainer = Trainer(model, loss_fn, TrainConfig(epochs=10), checkpoint_dir="runs/x")
    result = trainer.fit(train_set, val_set)          # resume=True continues from runs/x/last.pt

`loss_fn(model, batch) -> (mean loss tensor, number of items in the batch)`. The validation loss is
the item-weighted mean over every validation item (no batch is dropped). Batches come from
`make_loader` (below), stacked by the dataset's own `collate` when it has one.

Distributed: `torchrun --nproc_per_node=N -m pipelines.train ...` sets RANK/WORLD_SIZE; the trainer
then joins the process group (NCCL on GPUs, gloo on CPUs), wraps the model in DDP, shards training
batches with a DistributedSampler and validation items exactly (no padding), and only rank 0 writes
checkpoints and logs.

Determinism: data order and dropout of epoch e depend only on (seed, e), so a run resumed from the
checkpoint of epoch e ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from lruts.errors import ConfigError, DataError
from lruts.io import load_torch, save_torch
from lruts.optim import epoch_decay, make_optimizer, warmup_cosine
from lruts.tracking import NullRun, Run

log = logging.getLogger("lruts")

LossFn = Callable[[nn.Module, Any], tuple[torch.Tensor, int]]


REPASS_SEED = 100_003  # apart the seeds of an epoch's further passes, clear of the next epochs'


@dataclass
class TrainConfig:
    epochs: int = 20  # at most this many passes over the training windows
    batch_size: int = 32  # training windows per optimiser step
    eval_batch_size: int = 256  # validation needs no gradients: bigger batches, fewer passes
    lr: float = 1e-3  # peak learning rate (AdamW)
    lr_factor: float = 1.0  # the recurrent parameters' lr multiplier (paper: 0.1–0.5 per task)
    weight_decay: float = 0.05  # AdamW weight decay (not on the recurrent parameters)
    warmup_fraction: float = 0.1  # share of the steps the lr warms up over, before the cosine decay
    # > 0: instead of warm-up + cosine, the lr stays for hold_epochs epochs, then × epoch_decay per epoch
    # (lruts.optim.epoch_decay: the schedules of the baselines' own scripts)
    epoch_decay: float = 0.0
    hold_epochs: int = 0  # with epoch_decay: epochs at the full lr before it decays
    patience: int = 5  # epochs without a better validation loss before stopping; 0 = never stop early
    grad_clip: float = 0.0  # max grad norm; 0 = off
    # decay per optimiser step of an exponential moving average of the weights (and buffers); 0 = off.
    # With it on, validation, early stopping, best.pt and the trained model use the average.
    ema: float = 0.0
    seed: int = 0  # of the weights' initialisation, the batches' order and dropout
    device: str = "auto"  # auto | cpu | cuda | cuda:1 ...
    max_steps_per_epoch: int | None = None  # cap for smoke and small-scale runs
    # an epoch of at least this many steps: a training set of fewer batches is drawn again, each pass in a
    # fresh order, so a short series is not left with a few dozen steps (None: one pass, capped as above)
    min_steps_per_epoch: int | None = None
    num_workers: int = 0  # DataLoader worker processes
    progress: bool = True  # show progress bars


@dataclass
class FitResult:
    best_val_loss: float
    best_epoch: int
    epochs_run: int
    stopped_early: bool  # patience ran out
    stopped_by_callback: bool  # on_epoch_end asked to stop (e.g. pruned)
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_after: int = 0  # epochs a checkpoint held when this fit resumed (run by an earlier process)

    def earlier_seconds(self) -> float:
        """Training seconds an earlier process spent before this fit resumed."""
        return sum(h["epoch_seconds"] for h in self.history[: self.resumed_after])


def progress_bar(iterable=None, *, enabled: bool = True, **kwargs):
    """A tqdm progress bar (leave=False unless given) shown only when asked for and a terminal is attached:
    redirected to a file, its carriage-return updates would flood the log."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=None if enabled else True, **{"leave": False, **kwargs})


def select_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available; use --device cpu or auto")
    return device


def distributed_context() -> tuple[int, int]:
    """(rank, world_size); joins the process group when started by torchrun with several processes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        cfg: TrainConfig,
        *,
        checkpoint_dir: str | Path | None = None,
        run: Run | None = None,
        on_epoch_end: Callable[[int, dict[str, float]], bool | None] | None = None,
        distributed: bool = True,
    ) -> None:
        """on_epoch_end(epoch, metrics) may return True to stop (e.g. an Optuna pruner). The loaders
        stack items with the dataset's `collate` when it has one (see make_loader).

        distributed=False trains on this process alone even under torchrun (a side model that only
        rank 0 fits, such as a baseline)."""
        self.cfg = cfg
        self.loss_fn = loss_fn
        self.run = run or NullRun()
        self.on_epoch_end = on_epoch_end
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.averaged: torch.optim.swa_utils.AveragedModel | None = None
        self._best_weights: dict[str, torch.Tensor] | None = None
        self.rank, self.world = distributed_context() if distributed else (0, 1)
        self.device = select_device(cfg.device)
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        self.model = model.to(self.device)
        self.ddp = (
            nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device] if self.device.type == "cuda" else None
            )
            if self.world > 1
            else None
        )

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ data
    def _train_loader(self, dataset: Dataset, epoch: int) -> Iterator[Any]:
        """The batches of `epoch`, endless: one pass in an order seeded by (seed, epoch), then passes in orders
        of their own (the epoch takes its steps from the front: more than one pass only under min_steps_per_epoch)."""
        for again in itertools.count():
            order = epoch + REPASS_SEED * again  # the first pass: as without min_steps_per_epoch
            loader = make_loader(
                dataset,
                self.cfg.batch_size,
                shuffle=True,
                seed=self.cfg.seed * 7919 + order,
                num_workers=self.cfg.num_workers,
                distributed=self.world > 1,
            )
            if self.world > 1:
                loader.sampler.set_epoch(order)
            yield from loader

    def eval_loader(self, dataset: Dataset) -> DataLoader:
        """Every item once; under DDP each rank gets an exact, unpadded share."""
        return make_loader(
            dataset,
            self.cfg.eval_batch_size,
            shuffle=False,
            num_workers=self.cfg.num_workers,
            distributed=self.world > 1,
        )

    def _steps_per_epoch(self, dataset: Dataset) -> int:
        n = max(math.ceil(len(dataset) / self.world / self.cfg.batch_size), self.cfg.min_steps_per_epoch or 0)
        return min(n, self.cfg.max_steps_per_epoch) if self.cfg.max_steps_per_epoch else n

    # ------------------------------------------------------------------ loop
    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")

    def to_device(self, batch: Any) -> Any:
        """A batch on the trainer's device: anything with .to(device) (a tensor, a named batch such as
        lruts.data.WindowBatch), or a tuple, list or dict of tensors."""
        if isinstance(batch, (list, tuple)):
            return type(batch)(b.to(self.device, non_blocking=True) for b in batch)
        if isinstance(batch, dict):
            return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        return batch.to(self.device, non_blocking=True)

    @torch.no_grad()
    def evaluate_loss(self, dataset: Dataset, model: nn.Module | None = None) -> float:
        """Item-weighted mean loss of `model` (default: the trainer's) over every item of `dataset`
        (all ranks together)."""
        model = self.model if model is None else model
        model.eval()
        total = torch.zeros(2, dtype=torch.float64, device=self.device)
        for batch in self.eval_loader(dataset):
            with self._autocast():
                loss, n = self.loss_fn(model, self.to_device(batch))
            total += torch.tensor([loss.item() * n, n], dtype=torch.float64, device=self.device)
        if self.world > 1:
            dist.all_reduce(total)
        return (total[0] / total[1]).item() if total[1] > 0 else float("nan")

    def fit(self, train_set: Dataset, val_set: Dataset, *, resume: bool = False) -> FitResult:
        cfg = self.cfg
        if len(train_set) == 0:
            raise ValueError("the training set is empty: check the dataset length against lookback + horizon")
        net = self.ddp or self.model
        steps = self._steps_per_epoch(train_set)
        opt = make_optimizer(self.model, cfg.lr, weight_decay=cfg.weight_decay, lr_factor=cfg.lr_factor)
        sched = (
            epoch_decay(opt, steps, decay=cfg.epoch_decay, hold_epochs=cfg.hold_epochs)
            if cfg.epoch_decay
            else warmup_cosine(opt, cfg.epochs * steps, warmup_fraction=cfg.warmup_fraction)
        )
        self.averaged = self._averaged_model()
        judged = self._judged()
        state = {"epoch": 0, "best_val": float("inf"), "best_epoch": 0, "bad_epochs": 0, "history": []}
        if resume:
            state = self._load_checkpoint(opt, sched, state)
        resumed_after = state["epoch"]

        # a checkpoint whose patience had run out is a finished fit: resuming it trains no further epoch
        stopped_early = bool(cfg.patience and state["bad_epochs"] >= cfg.patience)
        stopped_by_callback = False
        for epoch in range(state["epoch"] + 1, 0 if stopped_early else cfg.epochs + 1):
            torch.manual_seed(cfg.seed * 7919 + epoch)  # dropout of epoch e depends on (seed, e) only
            t0 = time.perf_counter()
            train_loss = self._train_epoch(net, train_set, opt, sched, epoch, steps)
            val_loss = self.evaluate_loss(val_set, judged)
            metrics = {
                "train_loss": train_loss,
                "val_loss": val_loss,
                "lr": opt.param_groups[-1]["lr"],
                "epoch_seconds": time.perf_counter() - t0,
            }
            improved = val_loss < state["best_val"]
            if improved:
                state.update(best_val=val_loss, best_epoch=epoch, bad_epochs=0)
            else:
                state["bad_epochs"] += 1
            state["epoch"] = epoch
            state["history"].append({"epoch": epoch, **metrics})
            if self.is_main:
                self.run.log_metrics(metrics, step=epoch)
                log.info(
                    "epoch %d/%d train %.4f val %.4f%s",
                    epoch,
                    cfg.epochs,
                    train_loss,
                    val_loss,
                    " *" if improved else "",
                )
                self._save_checkpoint(opt, sched, state, best=improved)
            if improved and self.checkpoint_dir is None:
                self._best_weights = {k: v.detach().clone() for k, v in judged.state_dict().items()}
            if self.on_epoch_end and self.on_epoch_end(epoch, metrics):
                stopped_by_callback = True
                break
            if cfg.patience and state["bad_epochs"] >= cfg.patience:
                stopped_early = True
                break
        self._restore_best()
        return FitResult(
            state["best_val"],
            state["best_epoch"],
            state["epoch"],
            stopped_early,
            stopped_by_callback,
            state["history"],
            resumed_after,
        )

    def _train_epoch(self, net, train_set, opt, sched, epoch: int, steps: int) -> float:
        net.train()
        total, count = 0.0, 0
        bar = progress_bar(
            total=steps, desc=f"epoch {epoch}/{self.cfg.epochs}", enabled=self.cfg.progress and self.is_main
        )
        # islice: the epoch's steps, and no batch drawn past them
        for i, batch in enumerate(itertools.islice(self._train_loader(train_set, epoch), steps)):
            with self._autocast():
                loss, n = self.loss_fn(net, self.to_device(batch))
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {loss.item()} at epoch {epoch}, step {i}; lower --lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if self.cfg.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            opt.step()
            sched.step()
            if self.averaged is not None:
                self.averaged.update_parameters(self.model)
            total += loss.item() * n
            count += n
            bar.update()
            bar.set_postfix(loss=f"{total / count:.4f}")
        bar.close()
        return total / max(count, 1)

    def _judged(self) -> nn.Module:
        """The weights validation scores, early stopping keeps and fit() returns."""
        return self.averaged.module if self.averaged is not None else self.model

    def _averaged_model(self) -> torch.optim.swa_utils.AveragedModel | None:
        """torch's EMA of the weights and buffers (BatchNorm statistics too), updated after each step."""
        if not self.cfg.ema:
            return None
        if not 0.0 < self.cfg.ema < 1.0:
            raise ConfigError(f"ema: the decay per step, in (0, 1) (e.g. 0.99), or 0 for off; got {self.cfg.ema}")
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        return AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(self.cfg.ema), use_buffers=True)

    # ------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self, opt, sched, state: dict, *, best: bool) -> None:
        if self.checkpoint_dir is None:
            return
        ckpt = {
            "model": self.model.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "state": state,
            "config": asdict(self.cfg),
        }
        if self.averaged is not None:
            ckpt["averaged"] = self.averaged.state_dict()
        save_torch(ckpt, self.checkpoint_dir / "last.pt")
        if best:
            save_torch(self._judged().state_dict(), self.checkpoint_dir / "best.pt")

    def _load_checkpoint(self, opt, sched, default: dict) -> dict:
        path = self.checkpoint_dir / "last.pt" if self.checkpoint_dir else None
        if path is None or not path.exists():
            log.info("no checkpoint at %s; starting from scratch", path)
            return default
        ckpt = load_torch(path, map_location=self.device)
        self.model.load_state_dict(ckpt["model"])
        if (self.averaged is None) != ("averaged" not in ckpt):
            raise ConfigError(
                f"{path} was written with ema {ckpt['config'].get('ema', 0.0)}, this run has ema {self.cfg.ema}: "
                "resume with the same setting, or start afresh without --resume"
            )
        if self.averaged is not None:
            self.averaged.load_state_dict(ckpt["averaged"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        log.info("resumed from %s after epoch %d", path, ckpt["state"]["epoch"])
        return ckpt["state"]

    def _restore_best(self) -> None:
        """Early stopping keeps the weights of the best validation epoch."""
        if self._best_weights is not None:
            self.model.load_state_dict(self._best_weights)
            return
        if self.checkpoint_dir is None:
            return
        if self.world > 1:
            dist.barrier()  # every rank waits until rank 0 has written best.pt
        if (self.checkpoint_dir / "best.pt").exists():
            self.model.load_state_dict(load_torch(self.checkpoint_dir / "best.pt", map_location=self.device))


class PermutationSampler(Sampler[int]):
    """torch's RandomSampler without its memory: the same permutation of range(n), drawn from the same
    generator, yielded in chunks from an int32 tensor (4 bytes an index) instead of a Python list of every
    index (≈ 36 bytes an index: more than a panel's numbers for millions of windows)."""

    chunk = 65_536  # indices turned into Python ints at a time

    def __init__(self, n: int, generator: torch.Generator) -> None:
        self.n, self.generator = n, generator
        self.dtype = torch.int32 if n < 2**31 else torch.int64  # randperm draws the same order for either

    def __iter__(self):
        perm = torch.randperm(self.n, generator=self.generator, dtype=self.dtype)
        for start in range(0, self.n, self.chunk):
            yield from perm[start : start + self.chunk].tolist()

    def __len__(self) -> int:
        return self.n

    @property
    def nbytes(self) -> int:
        """Bytes of the permutation an iteration holds (a torch tensor: invisible to tracemalloc)."""
        return self.n * self.dtype.itemsize


class EvalShardSampler(Sampler[int]):
    """Distributed evaluation without padding: replica r gets items r, r+R, r+2R, ... so every item is
    evaluated exactly once across replicas (DistributedSampler would repeat some to even the shards).
    Reduce sums and counts across replicas, not per-replica means."""

    def __init__(self, n: int, num_replicas: int, rank: int) -> None:
        self.n, self.num_replicas, self.rank = n, num_replicas, rank

    def __iter__(self):
        return iter(range(self.rank, self.n, self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.num_replicas))

    def set_epoch(self, epoch: int) -> None:  # same interface as DistributedSampler
        pass


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
    distributed: bool = False,
    num_replicas: int | None = None,
    rank: int | None = None,
) -> DataLoader:
    """A DataLoader over `dataset` whose batches are stacked by `dataset.collate` when the dataset has
    one (window datasets build a named batch; LRA datasets pad sequences), else by torch's default.

    Shuffling is seeded (`seed`), in RandomSampler's order at a fraction of its memory (PermutationSampler).
    distributed=True: a DistributedSampler for training (call loader.sampler.set_epoch(epoch) each epoch);
    without shuffling (evaluation: val/test splits, or any dataset read in order) an EvalShardSampler that
    evaluates every item exactly once. drop_last is refused for a dataset whose `split` is val or test:
    every item is evaluated.
    """
    split = getattr(dataset, "split", "")
    if drop_last and split in ("val", "test"):
        raise DataError(f"drop_last=True would skip {split} windows; the protocol evaluates every one")
    common = dict(
        batch_size=batch_size,
        num_workers=num_workers,
        drop_last=drop_last,
        persistent_workers=num_workers > 0,
        collate_fn=getattr(dataset, "collate", None),
    )
    if distributed:
        if num_replicas is None or rank is None:
            if not dist.is_available() or not dist.is_initialized():
                raise DataError(
                    "distributed=True needs an initialised process group or explicit num_replicas= and rank="
                )
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if split in ("val", "test") or not shuffle:
            sampler = EvalShardSampler(len(dataset), num_replicas, rank)
        else:
            sampler = DistributedSampler(dataset, num_replicas, rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
        return DataLoader(dataset, sampler=sampler, **common)
    generator = torch.Generator()
    generator.manual_seed(seed)
    # the loader draws its workers' base seed from `generator` before the sampler draws the permutation,
    # as with shuffle=True: the order for a seed is RandomSampler's
    sampler = PermutationSampler(len(dataset), generator) if shuffle else None
    return DataLoader(dataset, sampler=sampler, generator=generator, **common)
