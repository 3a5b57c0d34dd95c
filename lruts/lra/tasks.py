"""The six LRA tasks, the paper's per-task recipes (lru.md §6, the paper's Tables 8–9) as presets at
three scales, and loading each task's data.

- `paper`: the published settings (depth 6, H, N, ring, max_phase, batch, lr factor, weight decay,
  dropout, bidirectional for the path tasks, half GLU for Path-X, epochs) on the full data. Base
  learning rates are not published (0.004 is stated for sCIFAR); the others are ours, in the range of
  the S5 code's.
- `small`: the same recipe with less width (H = N = 64), depth 2, a few thousand examples and two
  epochs (≈100–200 steps; Path-X: 400 images, one epoch, batch 8), so that one task finishes well
  within 30 minutes on a 2-core CPU shared with other jobs. Far too little training to approach the
  paper's numbers: it checks the pipeline end to end and supports the ablation's comparison.
- `smoke`: a few steps on a few examples, to check that everything runs.

A recipe file (`load_recipe`, `python -m pipelines.lra --recipe file.yaml`) replaces fields of a task's
`paper` row; the scales shrink it as they shrink the paper's.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lruts.errors import ConfigError, DataError
from lruts.lra import sources
from lruts.lra.listops import VOCAB as LISTOPS_VOCAB

log = logging.getLogger("lruts")

SCALES = ("smoke", "small", "paper")


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """One row of the paper's LRA table (Tables 8–9): the network and optimiser a task is trained with."""

    n_layers: int  # depth: LRU blocks stacked
    d_model: int  # H: width of the residual stream between blocks
    d_state: int  # N: complex state size of each LRU
    r_min: float  # inner radius of the ring the eigenvalues are drawn from at init
    r_max: float  # outer radius of that ring
    max_phase: float  # eigenvalue phases drawn in [0, max_phase] at init
    batch_size: int  # examples per optimiser step
    lr_factor: float  # learning rate of the recurrent parameters (ν, θ, γ, B) relative to lr
    weight_decay: float  # AdamW weight decay of the non-recurrent parameters
    dropout: float  # dropout inside each block
    bidirectional: bool  # a second LRU reads the sequence backwards (the path tasks)
    epochs: int  # passes over the training set
    lr: float  # base learning rate; published only for sCIFAR (0.004), ours for the other tasks
    glu: str = "full"  # "full" GLU in each block, or the "half" GLU (Path-X)


@dataclass(frozen=True, kw_only=True)
class Task:
    name: str
    title: str
    kind: str  # tokens | pairs | pixels
    n_classes: int
    max_len: int
    vocab_size: int | None  # None: real-valued pixel input
    paper_accuracy: float  # LRU, paper Table 3
    recipe: Recipe
    data: dict[str, dict[str, int | None]]  # scale → n_train, n_val, n_test (None = all)


TWO_PI = 2 * math.pi
TASKS: dict[str, Task] = {
    "listops": Task(
        name="listops",
        title="ListOps",
        kind="tokens",
        n_classes=10,
        max_len=2048,
        vocab_size=len(LISTOPS_VOCAB),
        paper_accuracy=60.2,
        recipe=Recipe(
            n_layers=6,
            d_model=128,
            d_state=256,
            r_min=0.0,
            r_max=0.99,
            max_phase=TWO_PI,
            batch_size=32,
            lr_factor=0.5,
            weight_decay=0.05,
            dropout=0.0,
            bidirectional=False,
            epochs=27,
            lr=0.003,
        ),
        data={
            "paper": {"n_train": 96_000, "n_val": 2_000, "n_test": 2_000},
            "small": {"n_train": 3_200, "n_val": 400, "n_test": 1_000},
            "smoke": {"n_train": 48, "n_val": 16, "n_test": 16},
        },
    ),
    "text": Task(
        name="text",
        title="Text (IMDB bytes)",
        kind="tokens",
        n_classes=2,
        max_len=4096,
        vocab_size=257,
        paper_accuracy=89.4,
        recipe=Recipe(
            n_layers=6,
            d_model=256,
            d_state=192,
            r_min=0.5,
            r_max=0.9,
            max_phase=TWO_PI,
            batch_size=32,
            lr_factor=0.1,
            weight_decay=0.05,
            dropout=0.1,
            bidirectional=False,
            epochs=64,
            lr=0.004,
        ),
        data={
            "paper": {"n_train": None, "n_val": 2_500, "n_test": None},
            "small": {"n_train": 1_600, "n_val": 400, "n_test": 1_000},
            "smoke": {"n_train": 32, "n_val": 16, "n_test": 16},
        },
    ),
    "retrieval": Task(
        name="retrieval",
        title="Retrieval (AAN)",
        kind="pairs",
        n_classes=2,
        max_len=4000,
        vocab_size=257,
        paper_accuracy=89.9,
        recipe=Recipe(
            n_layers=6,
            d_model=128,
            d_state=256,
            r_min=0.5,
            r_max=0.9,
            max_phase=TWO_PI,
            batch_size=64,
            lr_factor=0.5,
            weight_decay=0.05,
            dropout=0.1,
            bidirectional=False,
            epochs=44,
            lr=0.002,
        ),
        data={
            "paper": {"n_train": None, "n_val": None, "n_test": None},
            "small": {"n_train": 1_600, "n_val": 400, "n_test": 1_000},
            "smoke": {"n_train": 16, "n_val": 8, "n_test": 8},
        },
    ),
    "image": Task(
        name="image",
        title="Image (CIFAR-10)",
        kind="pixels",
        n_classes=10,
        max_len=1024,
        vocab_size=None,
        paper_accuracy=89.0,
        recipe=Recipe(
            n_layers=6,
            d_model=512,
            d_state=384,
            r_min=0.9,
            r_max=0.999,
            max_phase=TWO_PI,
            batch_size=50,
            lr_factor=0.25,
            weight_decay=0.05,
            dropout=0.1,
            bidirectional=False,
            epochs=200,
            lr=0.004,
        ),
        data={
            "paper": {"n_train": 45_000, "n_val": 5_000, "n_test": None},
            "small": {"n_train": 3_200, "n_val": 500, "n_test": 1_000},
            "smoke": {"n_train": 32, "n_val": 16, "n_test": 16},
        },
    ),
    "pathfinder": Task(
        name="pathfinder",
        title="Pathfinder (32×32)",
        kind="pixels",
        n_classes=2,
        max_len=1024,
        vocab_size=None,
        paper_accuracy=95.1,
        recipe=Recipe(
            n_layers=6,
            d_model=192,
            d_state=256,
            r_min=0.9,
            r_max=0.999,
            max_phase=TWO_PI,
            batch_size=64,
            lr_factor=0.25,
            weight_decay=0.05,
            dropout=0.0,
            bidirectional=True,
            epochs=200,
            lr=0.004,
        ),
        data={
            "paper": {"n_train": None, "n_val": None, "n_test": None, "generate": 200_000},
            "small": {"n_train": 3_200, "n_val": 400, "n_test": 400, "generate": 4_000},
            "smoke": {"n_train": 32, "n_val": 8, "n_test": 8, "generate": 60},
        },
    ),
    "pathx": Task(
        name="pathx",
        title="Path-X (128×128)",
        kind="pixels",
        n_classes=2,
        max_len=16384,
        vocab_size=None,
        paper_accuracy=94.2,
        recipe=Recipe(
            n_layers=6,
            d_model=128,
            d_state=256,
            r_min=0.999,
            r_max=0.9999,
            max_phase=math.pi / 10,
            batch_size=32,
            lr_factor=0.25,
            weight_decay=0.05,
            dropout=0.0,
            bidirectional=True,
            epochs=50,
            lr=0.002,
            glu="half",
        ),
        data={
            "paper": {"n_train": None, "n_val": None, "n_test": None, "generate": 200_000},
            "small": {"n_train": 400, "n_val": 50, "n_test": 50, "generate": 500},
            "smoke": {"n_train": 8, "n_val": 4, "n_test": 4, "generate": 20},
        },
    ),
}


_KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def load_recipe(path: str | Path, base: Recipe) -> Recipe:
    """`base` with the fields a YAML file sets replaced, e.g. `d_model: 256` and `lr: 0.001` on their own
    lines; fields left out keep base's values."""
    from lruts.io import read_yaml_mapping

    values = read_yaml_mapping(path, "recipe fields", "e.g. `d_model: 256`")
    kinds = {f.name: type(getattr(base, f.name)) for f in dataclasses.fields(Recipe)}
    unknown = set(values) - set(kinds)
    if unknown:
        raise ConfigError(f"{path}: unknown recipe field(s) {sorted(unknown)}; known: {sorted(kinds)}")
    for name, value in values.items():
        kind = kinds[name]
        # YAML reads 1 for 1.0; a bool is an int to isinstance, but never a width or a rate
        fits = isinstance(value, (int, float)) if kind is float else isinstance(value, kind)
        if isinstance(value, bool) is not (kind is bool) or not fits:
            raise ConfigError(f"{path}: recipe field {name} must be {_KIND_NAMES[kind]}, got {value!r}")
        if kind is float:
            values[name] = float(value)
    return dataclasses.replace(base, **values)


@dataclass
class Preset:
    """Everything a run needs: the model (DeepLRUConfig fields), training (TrainConfig fields), data."""

    task: str
    scale: str
    model: dict[str, Any]
    train: dict[str, Any]
    data: dict[str, Any]
    color: bool = False  # image: the paper's colour sCIFAR (3 channels) instead of LRA's grayscale
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise DataError(f"unknown LRA task {name!r}; choose one of {', '.join(TASKS)}")
    return TASKS[name]


def preset(task: str, scale: str = "small", recipe: Recipe | None = None) -> Preset:
    """The task's recipe (or `recipe` in its place) at `scale` (see the module docstring)."""
    t = get_task(task)
    if scale not in SCALES:
        raise DataError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    r = recipe or t.recipe
    model = {
        "n_layers": r.n_layers,
        "d_model": r.d_model,
        "d_state": r.d_state,
        "r_min": r.r_min,
        "r_max": r.r_max,
        "max_phase": r.max_phase,
        "bidirectional": r.bidirectional,
        "glu": r.glu,
        "dropout": r.dropout,
        "norm": "batch",
        "prenorm": True,
    }
    train = {
        "epochs": r.epochs,
        "batch_size": r.batch_size,
        "lr": r.lr,
        "lr_factor": r.lr_factor,
        "weight_decay": r.weight_decay,
        "warmup_fraction": 0.1,
        "patience": 0,
    }
    if scale == "small":
        model.update(n_layers=2, d_model=64, d_state=64)
        train.update(epochs=SMALL_EPOCHS[task], batch_size=8 if task == "pathx" else 32, patience=0)
    elif scale == "smoke":
        model.update(n_layers=1, d_model=16, d_state=16)
        train.update(epochs=1, batch_size=8 if task != "pathx" else 4, max_steps_per_epoch=2, patience=0)
    return Preset(task, scale, model, train, dict(t.data[scale]))


SMALL_EPOCHS = {"listops": 2, "text": 2, "retrieval": 2, "image": 2, "pathfinder": 2, "pathx": 1}


# ---------------------------------------------------------------------------------------- data
@dataclass
class TaskData:
    train: Any
    val: Any
    test: Any
    source: str  # where the data came from, for the results


def _take(n: int, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if limit is None or limit >= n else np.sort(rng.choice(n, size=limit, replace=False))


def _split_off(n: int, n_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, val) indices with `n_val` held out for validation."""
    perm = np.random.default_rng(seed + 1).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def load_task_data(p: Preset, data_dir: str | Path | None = None) -> TaskData:
    loader = {
        "listops": _listops,
        "text": _text,
        "retrieval": _retrieval,
        "image": _image,
        "pathfinder": _pathfinder,
        "pathx": _pathfinder,
    }[p.task]
    return loader(p, data_dir)


def _listops(p: Preset, data_dir) -> TaskData:
    from lruts.lra import listops
    from lruts.lra.sequences import TokenDataset

    d = p.data
    folder = sources.find(listops.FOLDER, data_dir, kind="dir")
    if folder is not None and (folder / listops.SPLITS["train"]).is_file():
        source = f"official TSVs in {folder}"
    else:
        name = f"listops-seed{p.seed}-{d['n_train']}-{d['n_val']}-{d['n_test']}"
        root = sources.generated_dir(name)
        folder = root / listops.FOLDER
        if not (root / ".complete").is_file():
            log.info("generating ListOps (%s) into %s", name, root)
            listops.generate_listops_release(
                root, n_train=d["n_train"], n_val=d["n_val"], n_test=d["n_test"], seed=p.seed
            )
            (root / ".complete").write_text("ok\n")
        source = f"generated (seed {p.seed}) in {folder}"
    out = {}
    for split in ("train", "val", "test"):
        tokens, labels = listops.read_listops_split(folder / listops.SPLITS[split], limit=d.get(f"n_{split}"))
        out[split] = TokenDataset(tokens, labels, split)
    return TaskData(out["train"], out["val"], out["test"], source)


def _text(p: Preset, data_dir) -> TaskData:
    from lruts.lra import text
    from lruts.lra.sequences import TokenDataset

    max_len = get_task("text").max_len
    path = sources.find("imdb_all.jsonl.xz", data_dir, kind="file") or sources.find(
        "imdb_all.jsonl", data_dir, kind="file"
    )
    if path is not None:
        data, source = text.read_imdb_jsonl(path, max_len), f"{path.name} (official 25k/25k split)"
    else:
        acl = sources.find("aclImdb", data_dir, kind="dir")
        if acl is None:
            raise DataError(
                "LRA Text needs IMDB: imdb_all.jsonl.xz or the aclImdb/ folder in one of:\n"
                + sources.describe_search(data_dir)
            )
        data, source = text.read_aclimdb(acl, max_len), f"{acl} (official 25k/25k split)"
    d, rng = p.data, np.random.default_rng(p.seed)
    tokens, labels = data["train"]
    tr, va = _split_off(len(labels), d["n_val"], p.seed)
    tr = tr[_take(len(tr), d["n_train"], rng)]
    tt, tl = data["test"]
    te = _take(len(tl), d["n_test"], rng)
    return TaskData(
        TokenDataset([tokens[i] for i in tr], labels[tr], "train"),
        TokenDataset([tokens[i] for i in va], labels[va], "val"),
        TokenDataset([tt[i] for i in te], tl[te], "test"),
        source + f"; val = {d['n_val']} held out of train",
    )


def _retrieval(p: Preset, data_dir) -> TaskData:
    from lruts.lra import retrieval
    from lruts.lra.sequences import PairDataset

    folder = sources.find(retrieval.FOLDER, data_dir, kind="dir")
    if folder is None or not all((folder / f).is_file() for f in retrieval.SPLITS.values()):
        raise DataError(retrieval.missing_message(sources.describe_search(data_dir)))
    max_len = get_task("retrieval").max_len
    out = {}
    for split, name in retrieval.SPLITS.items():
        a, b, y = retrieval.read_aan_split(folder / name, max_len, limit=p.data.get(f"n_{split}"))
        out[split] = PairDataset(a, b, y, split)
    return TaskData(out["train"], out["val"], out["test"], f"official TSVs in {folder}")


def _image(p: Preset, data_dir) -> TaskData:
    from lruts.lra import image
    from lruts.lra.sequences import PixelDataset

    d = p.data
    n_train_all = None if d["n_train"] is None else d["n_train"] + d["n_val"]
    limits = {"train": n_train_all, "test": d["n_test"]}
    batches = sources.find("cifar-10-batches-py", data_dir, kind="dir")
    if batches is not None:
        data, source = image.read_cifar_batches(batches, limits, p.seed), f"python batches in {batches}"
    else:
        tree = next(
            (f for f in (sources.find(n, data_dir, kind="dir") for n in ("cifar10", "cifar-10", "cifar10_jpeg")) if f),
            None,
        ) or sources.find("cifar10_jpeg.zip", data_dir, kind="file")
        if tree is None:
            raise DataError(
                "LRA Image needs CIFAR-10: cifar-10-batches-py/, an image tree cifar10/{train,test}/<class>/ "
                "or cifar10_jpeg.zip in one of:\n" + sources.describe_search(data_dir)
            )
        data = image.read_image_tree(tree, limits, p.seed)
        lossy = " (JPEG, lossy)" if tree.suffix == ".zip" or any(tree.rglob("*.jpg")) else ""
        source = f"{tree.name}{lossy}"
    x, y = data["train"]
    xt, yt = data["test"]
    if not p.color:
        x, xt = image.to_grayscale(x), image.to_grayscale(xt)
    tr, va = _split_off(len(y), d["n_val"], p.seed)
    mean, std = float(x[tr].mean() / 255), float(x[tr].std() / 255)
    kind = "colour" if p.color else "grayscale"
    return TaskData(
        PixelDataset(x[tr], y[tr], mean, std, "train"),
        PixelDataset(x[va], y[va], mean, std, "val"),
        PixelDataset(xt, yt, mean, std, "test"),
        f"{source}, {kind}; val = {d['n_val']} held out of train",
    )


def _pathfinder(p: Preset, data_dir) -> TaskData:
    from lruts.lra import pathfinder
    from lruts.lra.sequences import PixelDataset

    size = 32 if p.task == "pathfinder" else 128
    rel = f"pathfinder{size}/{pathfinder.SUBSET}"
    base = sources.find(rel, data_dir, kind="dir")
    d = p.data
    if base is not None and (base / "metadata").is_dir():
        source = f"official images in {base}"
    else:
        name = f"pathfinder{size}-seed{p.seed}-n{d['generate']}"
        root = sources.generated_dir(name)
        base = root / rel
        if not (root / ".complete").is_file():
            log.info("generating %d Pathfinder images (%d×%d) into %s", d["generate"], size, size, root)
            workers = min(8, os.cpu_count() or 1)
            pathfinder.generate_pathfinder(root, d["generate"], size=size, seed=p.seed, workers=workers)
            (root / ".complete").write_text("ok\n")
        source = f"generated (seed {p.seed}, {d['generate']} images) in {base}"
    x, y = pathfinder.read_pathfinder(base)
    idx = pathfinder.split_80_10_10(len(y))
    rng = np.random.default_rng(p.seed)
    parts = {s: idx[s][_take(len(idx[s]), d.get(f"n_{s}"), rng)] for s in ("train", "val", "test")}
    mean, std = float(x[parts["train"]].mean() / 255), float(x[parts["train"]].std() / 255) or 1.0
    ds = {s: PixelDataset(x[i], y[i], mean, std, s) for s, i in parts.items()}
    return TaskData(ds["train"], ds["val"], ds["test"], source + "; random 80/10/10 split (seed 42)")
